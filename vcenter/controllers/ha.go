package controllers

import (
	"context"
	"fmt"
	"hash/fnv"
	"log"
	"strings"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/internal/hads"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// HAInterval is how often the HA controller looks at every HA cluster:
// twice per datastore heartbeat, so a lapsed lock is seen within 250 ms.
const HAInterval = 250 * time.Millisecond

// HAOptions configure the HA controller.
type HAOptions struct {
	// Datastores are the heartbeat datastores' roots (hads.CheckRoot'ed);
	// with none, HA relies on self-fencing times.
	Datastores []string
	// Timings are the planner's (zero: ha.DefaultTimings()); a cluster's
	// ready timeout and post-ready delay override theirs.
	Timings ha.Timings
	// Alive lists the host paths gossip calls alive now (memberlist's
	// view, quicker than the inventory's connection state). nil: the
	// inventory's connection state is gossip's word.
	Alive func() []string
	// Grace is how long after start a host gossip does not list yet still
	// counts as gossiping unless the inventory calls it notResponding: a
	// restarted vcenter needs a moment to hear from its hosts again.
	Grace time.Duration
	// Interval between passes (0: HAInterval).
	Interval time.Duration
	Logger   *log.Logger
	// Observe, when set, is told what each pass over a cluster that took
	// a snapshot cost (benchmarks, diagnostics). It runs inside the pass.
	Observe func(HAPass)
}

// HAPass is what one pass over one cluster cost: Snapshot is the
// inventory snapshot and the datastore reads, Decide the planner
// (ha.Decide), Total the whole pass including acting on the plan.
type HAPass struct {
	Cluster                 string
	Start                   time.Time
	Snapshot, Decide, Total time.Duration
	VMs, Restarts, Waiting  int
}

// HA is vSphere HA's master: every Interval, for each cluster with HA
// enabled, it takes the cluster's state from the inventory, gossip and
// the heartbeat datastores, asks the pure planner (ha.Decide) what to do,
// and does it through the inventory: hosts declared failed, VMs restarted
// elsewhere (inventory.Failover), refused attempts counted in the VMs' HA
// records (inventory.FailoverFailed), records cleared once VMs run again.
// It is level-triggered: everything it decides from is in the inventory
// and on the datastores, and the attempts are in the VMs' status, so a
// restarted vcenter carries on where the last one stopped. What it keeps
// in memory only tells events apart (a host's verdict changed) and when a
// host was last heard (a restarted vcenter waits from its own start).
type HA struct {
	inv *inventory.Inventory
	opt HAOptions
	log *log.Logger

	mu        sync.Mutex
	start     time.Time
	lastAlive map[string]time.Time // host path -> last pass gossip listed it
	verdicts  map[string]string    // host path -> verdict last recorded
	quiet     map[string]bool      // cluster path -> the last full pass found nothing to do
	// settled is, per cluster, what the last full pass saw when its only
	// silent hosts were failed ones with nothing left to restart, or ones
	// still within their fencing time: while it is unchanged (and until
	// the first of those fencing times runs out) there is nothing to plan.
	settled map[string]settledState
	passes  uint64
	warned  bool // every datastore unreadable, said once
}

// NewHA makes the HA controller over inv.
func NewHA(inv *inventory.Inventory, opt HAOptions) *HA {
	if opt.Interval <= 0 {
		opt.Interval = HAInterval
	}
	if opt.Timings.LockLease == 0 {
		opt.Timings = ha.DefaultTimings()
	}
	if opt.Logger == nil {
		opt.Logger = log.Default()
	}
	return &HA{inv: inv, opt: opt, log: opt.Logger, start: inv.Now(),
		lastAlive: map[string]time.Time{}, verdicts: map[string]string{}, quiet: map[string]bool{},
		settled: map[string]settledState{}}
}

// Run passes every Interval until ctx ends.
func (h *HA) Run(ctx context.Context) {
	h.mu.Lock()
	h.start = h.inv.Now()
	h.mu.Unlock()
	tick := time.NewTicker(h.opt.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		h.Pass()
	}
}

// Passes is how many passes have run; tests wait on it.
func (h *HA) Passes() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.passes
}

// Pass looks at every cluster with HA enabled once.
func (h *HA) Pass() {
	h.mu.Lock()
	defer func() {
		h.passes++
		h.mu.Unlock()
	}()
	var alive map[string]bool
	if h.opt.Alive != nil {
		alive = map[string]bool{}
		for _, p := range h.opt.Alive() {
			alive[p] = true
		}
	}
	for _, c := range h.inv.List(store.Query{Kind: api.KindCluster}).Items {
		var cs api.ClusterSpec
		_ = c.DecodeSpec(&cs)
		if !cs.HA.Enabled {
			delete(h.quiet, c.Path)
			delete(h.settled, c.Path)
			continue
		}
		if err := h.cluster(c.Path, alive); err != nil {
			h.log.Printf("vSphere HA: cluster %s: %v", c.Path, err)
		}
	}
}

// gossips says whether gossip counts host (path, in state) alive now.
func (h *HA) gossips(path, state string, alive map[string]bool, now time.Time) bool {
	if alive == nil {
		return state != api.HostNotResponding
	}
	if alive[path] {
		return true
	}
	return now.Sub(h.start) < h.opt.Grace && state != api.HostNotResponding
}

// cluster runs one pass over one cluster.
func (h *HA) cluster(path string, alive map[string]bool) error {
	now := h.inv.Now()
	silentHosts := h.silentHosts(path, alive, now)
	if h.quiet[path] && len(silentHosts) == 0 {
		return nil // nothing failed, nothing in flight: no snapshot to take
	}
	// A host that stays failed for hours, or the 10 s a silent host is
	// given to fence itself, would otherwise cost a snapshot and a plan
	// every pass (60 ms of CPU with 50,000 VMs). Once a pass found every
	// silent host failed or within its fencing time and nothing else to
	// do, the next passes skip until the silent hosts, a VM registered on
	// one of them or the cluster's settings change, or the first fencing
	// time runs out. Heartbeat datastores can change a verdict without any
	// of these: with them, every pass looks.
	fp := ""
	if len(silentHosts) > 0 && len(h.opt.Datastores) == 0 {
		fp = h.fingerprint(path, silentHosts)
		if s, ok := h.settled[path]; ok && fp != "" && s.fp == fp && (s.until.IsZero() || now.Before(s.until)) {
			return nil
		}
	}
	delete(h.settled, path)
	pass := HAPass{Cluster: path, Start: time.Now()}
	snap, err := h.inv.HASnapshot(path, h.opt.Timings)
	if err != nil {
		return err
	}
	if h.opt.Observe != nil {
		defer func() {
			pass.Total = time.Since(pass.Start)
			h.opt.Observe(pass)
		}()
	}
	st := &snap.State
	st.Config.Datastores = len(h.opt.Datastores) > 0
	silent := false
	for i := range st.Hosts {
		x := &st.Hosts[i]
		hp := snap.HostPaths[x.Name]
		x.Gossip = h.gossips(hp, snap.HostState[x.Name], alive, now)
		if x.Gossip {
			h.lastAlive[hp] = now
		} else {
			silent = true
		}
		// Silent since the last time anyone heard it; a vcenter that was
		// not running cannot know more than its own start.
		x.SilentSince = latest(x.SilentSince, h.lastAlive[hp], h.start)
	}
	gossip := map[string]bool{}
	for _, x := range st.Hosts {
		gossip[x.Name] = x.Gossip
	}
	snap.DropPinned(func(host string) bool { return !gossip[host] })
	if silent && st.Config.Datastores {
		if !h.readDatastores(snap) {
			return nil // blind: no verdict on a silent host without its heartbeats
		}
	}
	pass.Snapshot = time.Since(pass.Start)
	decideStart := time.Now()
	plan := ha.Decide(*st)
	pass.Decide = time.Since(decideStart)
	pass.VMs, pass.Restarts, pass.Waiting = len(st.VMs), len(plan.Restarts), len(plan.Waiting)
	work, settles, until := h.settles(st, plan)

	live := map[string]bool{}
	down := map[string]bool{}
	for _, v := range plan.Hosts {
		hp := snap.HostPaths[v.Host]
		live[v.Host] = v.State == ha.HostLive
		if v.State != ha.HostLive {
			down[hp] = true
		}
		if h.verdicts[hp] == v.State {
			continue
		}
		if v.State != ha.HostLive {
			if err := h.inv.HAHostVerdict(hp, v.State, v.Reason); err != nil {
				return err
			}
		}
		h.verdicts[hp] = v.State
	}

	// Only the VMs the plan restarts and those with an HA record are
	// looked up: a map of all 50,000 would cost more than the plan.
	vms := make(map[string]ha.VM, len(plan.Restarts)+len(snap.Records))
	for _, r := range plan.Restarts {
		vms[r.VM] = ha.VM{}
	}
	for name := range snap.Records {
		vms[name] = ha.VM{}
	}
	for _, v := range st.VMs {
		if _, ok := vms[v.Name]; ok {
			vms[v.Name] = v
		}
	}
	attempts := len(st.Config.Timings.RestartDelays)
	// Each restart is its own transaction, so that one refused or failed
	// restart leaves the others be. They run side by side (with the
	// clearing of the records below) and so share the store's commits:
	// one after another, each waiting for its own fsync, 500 restarts
	// took 5 s. Placement still sees every earlier restart, as the index
	// follows each write when it is staged.
	// A VM a live host could not start after HA restarted it there is a
	// failed attempt, recorded (with its event) as soon as the host says
	// so, before any retry.
	startFailed := func(name string) func() {
		rec, v := snap.Records[name], vms[name]
		if rec == nil || rec.LastError != "" || rec.GaveUp || !live[v.Host] || !ha.StartFailed(v) {
			return nil
		}
		vp, hp, n := snap.VMPaths[name], snap.HostPaths[v.Host], rec.Attempts
		return func() {
			if err := h.inv.FailoverStartFailed(vp, hp, n, attempts); err != nil {
				h.log.Printf("vSphere HA: recording that %s could not start %s: %v", hp, vp, err)
			}
		}
	}
	var acts []func()
	restarting := make(map[string]bool, len(plan.Restarts))
	for _, r := range plan.Restarts {
		restarting[r.VM] = true
		record := startFailed(r.VM)
		acts = append(acts, func() {
			if record != nil {
				record()
			}
			h.restart(r, snap.VMPaths[r.VM], snap.HostPaths[vms[r.VM].Host], attempts, down)
		})
	}

	// A VM that runs again on a live host starts afresh.
	for name, rec := range snap.Records {
		v := vms[name]
		if rec.Attempts == 0 && rec.LastError == "" && !rec.GaveUp {
			continue
		}
		work = true
		if record := startFailed(name); record != nil {
			if !restarting[name] {
				acts = append(acts, record)
			}
			continue
		}
		if !live[v.Host] || !v.Running || (needsReady(st.Config.ReadyCondition) && !v.Ready) {
			continue
		}
		vp := snap.VMPaths[name]
		acts = append(acts, func() {
			if err := h.inv.FailoverDone(vp); err != nil {
				h.log.Printf("vSphere HA: clearing the HA record of %s: %v", vp, err)
			}
		})
	}
	parallel(acts)
	h.quiet[path] = !silent && !work
	if silent && !work && settles && fp != "" {
		h.settled[path] = settledState{fp: fp, until: until}
	}
	return nil
}

// restart carries out one of the plan's restarts of the VM at vp,
// registered on host from, or records why it cannot be.
func (h *HA) restart(r ha.Restart, vp, from string, attempts int, down map[string]bool) {
	if r.Host == "" {
		if err := h.inv.FailoverFailed(vp, from, r.Reason, r.Attempt, attempts); err != nil {
			h.log.Printf("vSphere HA: recording the failed restart of %s: %v", vp, err)
		}
		return
	}
	_, _, err := h.inv.Failover(vp, from, r.Reason, r.Attempt, down)
	switch {
	case inventory.Refusal(err):
		if err := h.inv.FailoverFailed(vp, from, api.Message(err), r.Attempt, attempts); err != nil {
			h.log.Printf("vSphere HA: recording the failed restart of %s: %v", vp, err)
		}
	case err != nil:
		h.log.Printf("vSphere HA: restarting %s: %v", vp, err)
	}
}

// HAWriters bounds the inventory writes one HA pass makes at once.
const HAWriters = 32

// parallel runs acts, HAWriters at a time, in their order, and returns
// when all are done.
func parallel(acts []func()) {
	if len(acts) == 1 {
		acts[0]()
		return
	}
	next := make(chan func())
	var wg sync.WaitGroup
	for range min(HAWriters, len(acts)) {
		wg.Go(func() {
			for act := range next {
				act()
			}
		})
	}
	for _, act := range acts {
		next <- act
	}
	close(next)
	wg.Wait()
}

// needsReady says whether the ready condition asks for the readiness probe.
func needsReady(cond string) bool { return cond == ha.ReadyGuestHb || cond == ha.ReadyAppHb }

// silentHosts lists, without a snapshot, the hosts of the cluster that
// gossip does not call alive, and notes when it heard the others.
func (h *HA) silentHosts(cluster string, alive map[string]bool, now time.Time) []string {
	var silent []string
	for _, o := range h.inv.List(store.Query{Kind: api.KindHost, Prefix: cluster + "/"}).Items {
		var st api.HostStatus
		_ = o.DecodeStatus(&st)
		if !h.gossips(o.Path, st.State, alive, now) {
			silent = append(silent, o.Path)
			continue
		}
		h.lastAlive[o.Path] = now
	}
	return silent
}

type settledState struct {
	fp    string
	until time.Time // zero: until the fingerprint changes
}

// settles looks at a plan: work is whether it restarts anything or waits
// for anything but a host's fencing time; settles whether every silent
// host is failed or (without datastores) within its fencing time, the
// first of which runs out at until (zero if none). Without datastores
// nothing but time or an inventory write can end that wait.
func (h *HA) settles(st *ha.State, plan ha.Plan) (work, settles bool, until time.Time) {
	t := st.Config.Timings
	fence := map[string]time.Time{} // unreachable host -> when its fencing time runs out
	settles = true
	for _, v := range plan.Hosts {
		switch {
		case v.State == ha.HostLive || v.State == ha.HostFailed:
		case v.State == ha.HostUnreachable && !st.Config.Datastores:
			fence[v.Host] = time.Time{}
		default:
			settles = false
		}
	}
	for _, x := range st.Hosts {
		if _, ok := fence[x.Name]; ok {
			end := x.SilentSince.Add(t.FenceTime + t.FenceMargin)
			fence[x.Name] = end
			if until.IsZero() || end.Before(until) {
				until = end
			}
		}
	}
	work = len(plan.Restarts) > 0
	if len(plan.Waiting) == 0 || work {
		return work, settles, until
	}
	waiting := make(map[string]bool, len(plan.Waiting))
	for _, w := range plan.Waiting {
		waiting[w.VM] = true
	}
	for _, v := range st.VMs {
		if waiting[v.Name] {
			if _, ok := fence[v.Host]; !ok {
				return true, settles, until
			}
		}
	}
	return false, settles, until
}

// fingerprint is what a settled cluster's plan depends on: its settings
// (the cluster's spec, not its status, which others write), which hosts
// are silent, and every write of the VMs registered on them. Taken
// before the snapshot, so a write the pass does not see changes it. ""
// if the cluster cannot be read.
func (h *HA) fingerprint(cluster string, silent []string) string {
	c, err := h.inv.Get(cluster)
	if err != nil {
		return ""
	}
	spec := fnv.New64a()
	spec.Write(c.Spec)
	return fmt.Sprintf("%x %d %s", spec.Sum64(), h.inv.HAHostsVersion(silent), strings.Join(silent, ","))
}

// readDatastores fills in the hosts' newest heartbeats and the VMs'
// newest locks over every heartbeat datastore. It is false when no
// datastore could be read: HA then cannot tell a failed host from a
// datastore it lost, and decides nothing.
func (h *HA) readDatastores(snap *inventory.HASnapshot) bool {
	beats := map[string]hads.Heartbeat{}
	locks := map[string]hads.Lock{}
	read := 0
	for _, root := range h.opt.Datastores {
		hbs, err := hads.ReadHeartbeats(root)
		if err != nil {
			h.log.Printf("vSphere HA: heartbeat datastore %s: %v", root, err)
			continue
		}
		ls, err := hads.ReadLocks(root)
		if err != nil {
			h.log.Printf("vSphere HA: heartbeat datastore %s: %v", root, err)
			continue
		}
		read++
		for host, hb := range hbs {
			if cur, ok := beats[host]; !ok || hb.Time.After(cur.Time) {
				beats[host] = hb
			}
		}
		for uid, l := range ls {
			if cur, ok := locks[uid]; !ok || l.Renewed.After(cur.Renewed) {
				locks[uid] = l
			}
		}
	}
	if read == 0 {
		if !h.warned {
			h.log.Printf("vSphere HA: no heartbeat datastore can be read: no silent host is declared failed until one can")
			h.warned = true
		}
		return false
	}
	h.warned = false
	st := &snap.State
	for i := range st.Hosts {
		if hb, ok := beats[snap.HostPaths[st.Hosts[i].Name]]; ok {
			st.Hosts[i].Heartbeat, st.Hosts[i].Isolated = hb.Time, hb.Isolated
		}
	}
	for i := range st.VMs {
		v := &st.VMs[i]
		l, ok := locks[snap.UIDs[v.Name]]
		if !ok {
			continue
		}
		switch {
		case l.State == hads.Released && l.Host == snap.HostPaths[v.Host]:
			v.Released = true
		case l.State == hads.Held:
			v.Lock = l.Renewed // whoever holds it may run it: wait for it to lapse
		}
	}
	return true
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}
