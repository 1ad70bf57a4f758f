// Package fdm is the host's HA process, vSphere's FDM to the agent's hostd:
// a small process of its own beside the host agent, so that what keeps the
// host's datastore heartbeat and its VMs' locks alive does not stop when
// the agent crashes (the VMs run on, and a restarted agent adopts them).
//
// Every ha.Timings.DatastoreHeartbeat it writes the host's heartbeat on
// each heartbeat datastore, renews the lock of every VM this host runs
// (read from containerd directly) and holds, and kills any local copy of a
// VM whose lock another host holds or was released. It probes vcenter, the
// peer hosts and the isolation addresses; when none answers for
// IsolationDetection the host is isolated and the cluster's isolation
// response is applied (powerOff, shutdown, or disabled: leave VMs running),
// each VM stopped that way recorded released on the datastore for vcenter.
// Without heartbeat datastores the locks live in the state directory and
// are not renewed while the host is isolated or vcenter reports it not
// responding: the fence in each VM then kills it FenceTime later.
//
// The decisions are the pure Isolation and Decide; this file is the I/O.
package fdm

import (
	"context"
	"fmt"
	"log"
	"maps"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/host/halock"
	"github.com/podsphere/podsphere/internal/hads"
)

// Config is one host's FDM.
type Config struct {
	Name    string // host name, esx-01
	Cluster string // cluster path, /dc1/host/c1

	VCenter   string // vcenter's API URL
	JoinToken string // the agent's join token: it authenticates API reads
	// Datastores are the heartbeat datastores (absolute directories every
	// host of the cluster mounts); the first also holds the VMs' locks.
	// Empty: self-fencing, locks in StateDir.
	Datastores []string
	// IsolationAddresses, when set, replace the cluster's (HAConfig) and
	// the default (the host's default gateway, if any). vcenter and the
	// peer hosts are probed whatever this says. ADDR or ADDR:PORT.
	IsolationAddresses []string
	// Address is the host's management IP, written into its heartbeat for
	// its peers to probe; "" = the local address that routes to vcenter.
	Address  string
	StateDir string // fdm.lock, fdm.pid, fdm-state.json; the lock root without datastores

	VMs     RuntimeVMs
	Timings ha.Timings // zero: ha.DefaultTimings()
	Probe   Prober     // nil: TCPProbe
	Logger  *log.Logger
}

// FDM runs one host's HA process. Make it with New, run it with Run.
type FDM struct {
	cfg   Config
	host  string
	t     ha.Timings
	locks *halock.Locks
	vc    *client.Client
	vcAt  string // vcenter's API host:port, probed
	log   *log.Logger

	iso          Isolation
	shuttingDown map[string]time.Time

	mu    sync.Mutex
	cache cache

	// dsDown remembers datastores whose last write failed, to log changes only.
	dsDown map[string]bool
	// lastVMs is the last listing the runtime gave; listFailing says the
	// runtime does not answer now.
	lastVMs     []LocalVM
	listFailing bool
	// unconfirmed: self-fencing and vcenter's word is older than the grace (logged once).
	unconfirmed bool
	// ticks counts completed ticks (tests wait on it).
	ticks func(n int)
}

// New checks cfg and names the first bad field.
func New(cfg Config) (*FDM, error) {
	bad := func(field, why string) (*FDM, error) {
		return nil, fmt.Errorf("fdm config: %s %s: %w", field, why, api.ErrInvalid)
	}
	if err := api.ValidName(cfg.Name); err != nil {
		return bad("Name", err.Error())
	}
	if r, err := api.ParsePath(cfg.Cluster); err != nil || r.Kind != api.KindCluster {
		return bad("Cluster", fmt.Sprintf("%q is not a cluster path like /dc1/host/c1", cfg.Cluster))
	}
	vcAt, err := vcenterAddr(cfg.VCenter)
	if err != nil {
		return bad("VCenter", fmt.Sprintf("%q: %v", cfg.VCenter, err))
	}
	if cfg.JoinToken == "" {
		return bad("JoinToken", "is empty")
	}
	if cfg.StateDir == "" {
		return bad("StateDir", "is empty")
	}
	if cfg.VMs == nil {
		return bad("VMs", "is nil")
	}
	if cfg.Address != "" && net.ParseIP(cfg.Address) == nil {
		return bad("Address", fmt.Sprintf("%q is not an IP address", cfg.Address))
	}
	for _, a := range cfg.IsolationAddresses {
		host, port, err := net.SplitHostPort(withPort(a))
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n <= 0 || n > 65535 {
			return bad("IsolationAddresses", fmt.Sprintf("%q: want ADDR or ADDR:PORT", a))
		}
	}
	if cfg.Timings.DatastoreHeartbeat <= 0 {
		cfg.Timings = ha.DefaultTimings()
	}
	if t := cfg.Timings; t.LockLease <= 2*t.DatastoreHeartbeat || t.SelfFenceGrace >= t.FenceMargin || t.FenceTime <= 2*t.DatastoreHeartbeat {
		// Any of these lets a VM outlive what vcenter assumes, or die of one late write.
		return bad("Timings", fmt.Sprintf("lock lease %s and fence time %s must exceed two heartbeats (%s), self-fence grace %s must stay under the fence margin %s",
			t.LockLease, t.FenceTime, t.DatastoreHeartbeat, t.SelfFenceGrace, t.FenceMargin))
	}
	if cfg.Probe == nil {
		cfg.Probe = TCPProbe
	}
	if cfg.Logger == nil {
		cfg.Logger = log.New(os.Stderr, "fdm "+cfg.Name+": ", log.LstdFlags)
	}
	vc, err := client.New(cfg.VCenter, cfg.JoinToken)
	if err != nil {
		return bad("VCenter", err.Error())
	}
	host := cfg.Cluster + "/" + cfg.Name
	locks, err := halock.New(halock.Config{Host: host, Datastores: cfg.Datastores, StateDir: cfg.StateDir, Timings: cfg.Timings})
	if err != nil {
		return nil, err
	}
	if cfg.Address == "" {
		cfg.Address = localAddressTo(vcAt)
	}
	return &FDM{
		cfg: cfg, host: host, t: cfg.Timings, locks: locks, vc: vc, vcAt: vcAt, log: cfg.Logger,
		iso:          Isolation{Detection: cfg.Timings.IsolationDetection},
		shuttingDown: map[string]time.Time{},
		dsDown:       map[string]bool{},
	}, nil
}

// Run holds the host's single-instance lock and ticks until ctx ends. On
// return the VMs are left running: their locks lapse unless another FDM
// takes over within LockLease (FenceTime without datastores).
func (f *FDM) Run(ctx context.Context) error {
	release, err := singleInstance(f.cfg.StateDir)
	if err != nil {
		return err
	}
	defer release()
	f.mu.Lock()
	f.cache = readCache(f.cfg.StateDir)
	if !f.cache.IsolatedSince.IsZero() {
		f.iso.Restore(f.cache.IsolatedSince)
		f.log.Printf("vSphere HA: this host was isolated since %s when the previous FDM stopped; it stays so until an address answers",
			f.cache.IsolatedSince.Format(time.RFC3339))
	}
	f.mu.Unlock()
	mode := fmt.Sprintf("heartbeat datastores %v, VM locks on %s", f.cfg.Datastores, f.locks.Root())
	if f.locks.SelfFencing() {
		mode = fmt.Sprintf("no heartbeat datastore: self-fencing, VM locks in %s, fence time %s", f.locks.Root(), f.locks.Lease())
	}
	f.log.Printf("vSphere HA agent for %s (address %s): %s", f.host, f.cfg.Address, mode)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		f.watchVCenter(ctx)
	}()
	go func() {
		defer wg.Done()
		f.probeLoop(ctx)
	}()
	defer wg.Wait()
	tick := time.NewTicker(f.t.DatastoreHeartbeat)
	defer tick.Stop()
	for n := 1; ; n++ {
		f.tick(ctx, time.Now())
		if f.ticks != nil {
			f.ticks(n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// snapshot is a copy of what vcenter last said.
func (f *FDM) snapshot() cache {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cache
	c.Responses = maps.Clone(c.Responses)
	c.Peers = maps.Clone(c.Peers)
	return c
}

// probeLoop probes every heartbeat tick, on its own goroutine: a round
// whose addresses are silent takes up to two ProbeTimeouts (vcenter, then
// the rest), and the heartbeats and lock renewals must not wait for it.
func (f *FDM) probeLoop(ctx context.Context) {
	tick := time.NewTicker(f.t.DatastoreHeartbeat)
	defer tick.Stop()
	for {
		targets := f.targets(f.snapshot(), f.peerHeartbeats(), localIPs())
		probes := probeAll(ctx, f.cfg.Probe, targets, f.t.ProbeTimeout)
		if ctx.Err() != nil {
			return
		}
		f.mu.Lock()
		changed := f.iso.Observe(time.Now(), probes)
		f.mu.Unlock()
		if changed {
			f.isolationChanged(probes)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// verdict is the isolation verdict of the last probe round.
func (f *FDM) verdict() (bool, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.iso.Isolated()
}

// tick is one heartbeat: write the heartbeats, then renew, release or
// kill per Decide, with the isolation verdict of the last probe round.
func (f *FDM) tick(ctx context.Context, now time.Time) {
	c := f.snapshot()
	isolated, since := f.verdict()
	response := ""
	if isolated {
		response = EffectiveResponse(f.clusterResponse(c), "")
	}
	hb := hads.Heartbeat{Host: f.host, Address: f.cfg.Address, Time: now, Isolated: isolated, IsolatedSince: since, Response: response,
		ConfigRead: c.Fetched}
	f.writeHeartbeats(hb)

	vms, err := f.cfg.VMs.List(ctx)
	if err != nil {
		// containerd restarting: the VMs' shims run on. Renewing what ran
		// at the last good listing keeps them alive and is safe, as a lock
		// this host holds keeps every other host off the VM anyway.
		if !f.listFailing {
			f.log.Printf("list VMs: %v (renewing the locks of the %d VMs seen last)", err, len(f.lastVMs))
		}
		f.listFailing = true
		vms = slices.Clone(f.lastVMs)
	} else {
		if f.listFailing {
			f.log.Printf("list VMs: the runtime answers again")
		}
		f.listFailing, f.lastVMs = false, slices.Clone(vms)
	}
	for i := range vms {
		vms[i].Response = EffectiveResponse(f.clusterResponse(c), c.Responses[vms[i].UID])
	}
	locks, err := hads.ReadLocks(f.locks.Root())
	if err != nil {
		f.log.Printf("read VM locks: %v", err)
		return // nothing renewed: the fences stop the VMs if this lasts
	}
	timeout := DefaultShutdownTimeout
	if s := c.HA.ShutdownTimeoutSeconds; s > 0 {
		timeout = time.Duration(s) * time.Second
	}
	steps := Decide(Input{
		Now: now, Host: f.host, VMs: vms, Locks: locks, Isolated: isolated, Lease: f.locks.Lease(),
		SelfFencing: f.locks.SelfFencing(), Confirmed: now.Sub(c.Confirmed) < f.t.SelfFenceGrace,
		ShuttingDown: f.shuttingDown, ShutdownTimeout: timeout,
	})
	if confirmed := now.Sub(c.Confirmed) < f.t.SelfFenceGrace; f.locks.SelfFencing() && confirmed == f.unconfirmed {
		f.unconfirmed = !confirmed
		if confirmed {
			f.log.Printf("vSphere HA: vcenter confirms %s connected: VM locks renewed again", f.host)
		} else {
			f.log.Printf("vSphere HA: no heartbeat datastore and vcenter has not confirmed %s connected for %s: VM locks are no longer renewed, the fences stop the VMs %s after the last renewal",
				f.host, f.t.SelfFenceGrace, f.locks.Lease())
		}
	}
	running := map[string]bool{}
	for _, vm := range vms {
		running[vm.UID] = vm.Running
	}
	for uid := range f.shuttingDown {
		if !running[uid] {
			delete(f.shuttingDown, uid)
		}
	}
	for _, s := range steps {
		f.apply(ctx, now, s)
	}
}

// clusterResponse is the cluster's isolation response, or disabled when
// HA is off there (nothing would restart what the host stopped).
func (f *FDM) clusterResponse(c cache) string {
	if !c.HA.Enabled {
		return ResponseDisabled
	}
	return c.HA.IsolationResponse
}

func (f *FDM) apply(ctx context.Context, now time.Time, s Step) {
	root := f.locks.Root()
	switch s.Kind {
	case Renew:
		if err := hads.WriteLock(root, hads.Lock{UID: s.UID, VM: s.VM, Host: f.host, State: hads.Held, Renewed: now}); err != nil {
			f.log.Printf("vm %s: renew lock: %v", s.VM, err)
		}
	case Release:
		if err := hads.WriteLock(root, hads.Lock{UID: s.UID, VM: s.VM, Host: f.host, State: hads.Released, Renewed: now, Reason: s.Reason}); err != nil {
			f.log.Printf("vm %s: release lock: %v", s.VM, err)
			return
		}
		f.log.Printf("vSphere HA: vm %s stopped by the %s; its lock is released for vcenter to restart it", s.VM, s.Reason)
	case Kill:
		f.log.Printf("vSphere HA: powering off vm %s: %s", s.VM, s.Reason)
		if err := f.cfg.VMs.Kill(ctx, s.UID); err != nil {
			f.log.Printf("vm %s: kill: %v", s.VM, err)
		}
	case Shutdown:
		f.log.Printf("vSphere HA: shutting down vm %s: %s", s.VM, s.Reason)
		f.shuttingDown[s.UID] = now
		if err := f.cfg.VMs.Terminate(ctx, s.UID); err != nil {
			f.log.Printf("vm %s: shutdown: %v", s.VM, err)
		}
	}
}

// targets is every address the isolation verdict asks: vcenter, the peer
// hosts (vcenter's list, cached, and the datastores' heartbeats) and the
// isolation addresses.
func (f *FDM) targets(c cache, heartbeats map[string]hads.Heartbeat, local map[string]bool) []Probe {
	seen := map[string]bool{}
	var out []Probe
	add := func(addr, kind string) {
		// This host's own addresses answer whatever the network does.
		if host, _, err := net.SplitHostPort(addr); err == nil && local[host] {
			return
		}
		if addr != "" && !seen[addr] {
			seen[addr] = true
			out = append(out, Probe{Addr: addr, Kind: kind})
		}
	}
	add(f.vcAt, "vcenter")
	for _, h := range slices.Sorted(maps.Keys(c.Peers)) {
		if h != f.host {
			add(c.Peers[h], "peer "+api.Base(h))
		}
	}
	for _, h := range slices.Sorted(maps.Keys(heartbeats)) {
		if hb := heartbeats[h]; h != f.host && hb.Address != "" && time.Since(hb.Time) < time.Hour {
			add(withPort(hb.Address), "peer "+api.Base(h))
		}
	}
	addrs := f.cfg.IsolationAddresses
	if len(addrs) == 0 {
		addrs = c.HA.IsolationAddresses
	}
	if len(addrs) == 0 {
		if gw := DefaultGateway(); gw != "" {
			addrs = []string{gw}
		}
	}
	for _, a := range addrs {
		add(withPort(a), "isolation address")
	}
	return out
}

// peerHeartbeats reads the other hosts' heartbeats off the datastores.
func (f *FDM) peerHeartbeats() map[string]hads.Heartbeat {
	out := map[string]hads.Heartbeat{}
	for _, ds := range f.cfg.Datastores {
		hbs, err := hads.ReadHeartbeats(ds)
		if err != nil {
			continue
		}
		for h, hb := range hbs {
			if cur, ok := out[h]; !ok || hb.Time.After(cur.Time) {
				out[h] = hb
			}
		}
	}
	return out
}

// writeHeartbeats writes hb on every datastore (on the lock root when
// self-fencing, for people and tools to read), logging only changes.
func (f *FDM) writeHeartbeats(hb hads.Heartbeat) {
	roots := f.cfg.Datastores
	if len(roots) == 0 {
		roots = []string{f.locks.Root()}
	}
	for _, ds := range roots {
		err := hads.WriteHeartbeat(ds, hb)
		switch {
		case err != nil && !f.dsDown[ds]:
			f.log.Printf("vSphere HA: heartbeat datastore %s: %v", ds, err)
			f.dsDown[ds] = true
		case err == nil && f.dsDown[ds]:
			f.log.Printf("vSphere HA: heartbeat datastore %s is writable again", ds)
			delete(f.dsDown, ds)
		}
	}
}

func (f *FDM) isolationChanged(probes []Probe) {
	f.mu.Lock()
	isolated, since := f.iso.Isolated()
	f.cache.IsolatedSince = since
	c := f.cache
	f.mu.Unlock()
	if err := writeCache(f.cfg.StateDir, c); err != nil {
		f.log.Printf("save isolation state: %v", err)
	}
	if !isolated {
		var who []string
		for _, p := range probes {
			if p.Reachable {
				who = append(who, p.Kind+" "+p.Addr)
			}
		}
		f.log.Printf("vSphere HA: host %s is no longer isolated (%v answered)", f.host, who)
		return
	}
	var asked []string
	for _, p := range probes {
		asked = append(asked, p.Kind+" "+p.Addr)
	}
	sort.Strings(asked)
	f.log.Printf("vSphere HA: host %s is isolated: none of %v answered for %s; isolation response %s",
		f.host, asked, f.t.IsolationDetection, EffectiveResponse(f.clusterResponse(c), ""))
}
