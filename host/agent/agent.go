// Package agent is the host agent, podsphere's ESXi: it registers the host
// with vcenter, gossips so vcenter knows it is alive, and reconciles the VMs
// vcenter assigned to it onto the host's runtime, reporting their status
// back. The decisions are the pure Plan; this file and reconcile.go are the
// I/O around it.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/host/halock"
	"github.com/podsphere/podsphere/host/ingress"
	"github.com/podsphere/podsphere/host/runtime"
	"github.com/podsphere/podsphere/internal/gossip"
)

// Config is one host agent's configuration.
type Config struct {
	Name    string // host name, esx-01
	Cluster string // cluster path, /dc1/host/c1; the host is /dc1/host/c1/esx-01

	VCenter   string // vcenter's URL, http://127.0.0.1:8989
	JoinToken string // shared secret: authenticates the join and keys the gossip

	Join       []string // gossip seeds (vcenter's gossip address); added to the join reply's
	GossipBind string   // where to gossip, 127.0.0.1:0 for any port; default 0.0.0.0:7946

	Runtime runtime.Runtime
	// APIListen is where the agent serves its own API (logs, exec, metrics)
	// for vcenter to relay to, e.g. 10.0.0.5:0; "" serves none. An
	// unspecified IP is advertised as the gossip address's IP.
	APIListen string
	// CPUMHz and MemMB override the capacity the runtime reports (0 = ask the runtime).
	CPUMHz, MemMB int64

	// Locks, when set, are HA's VM locks on this host's heartbeat
	// datastore (or its state directory): the agent takes a VM's lock
	// before it starts the VM and removes it after a normal stop or
	// delete, and does not start a VM whose lock another host holds.
	Locks *halock.Locks

	// LB are the parts acting on the cluster's load balancing (service
	// rules, DNS, ...): each gets the Services, the cluster and its hosts
	// after every change, and every LBResync (0 = DefaultLBResync).
	LB       []LBConsumer
	LBResync time.Duration

	// Ingress, when set, is the host's Ingress proxy: it is one of the LB
	// consumers, answers on IngressListen, and its access log is served at
	// GET /ingress/log of the agent API.
	Ingress       *ingress.Proxy
	IngressListen ingress.Listeners

	Timings gossip.Timings // zero value = gossip.DefaultTimings()
	Logger  *log.Logger    // nil = stderr
}

// Agent runs one host. Make it with New, run it with Run.
type Agent struct {
	cfg  Config
	host string // inventory path
	log  *log.Logger

	ready      chan struct{}
	mu         sync.Mutex
	gossipAddr string
	agentAddr  string
	usage      usage
}

// New checks cfg and names the first bad field.
func New(cfg Config) (*Agent, error) {
	bad := func(field, why string) (*Agent, error) {
		return nil, fmt.Errorf("host agent config: %s %s: %w", field, why, api.ErrInvalid)
	}
	if err := api.ValidName(cfg.Name); err != nil {
		return bad("Name", err.Error())
	}
	if r, err := api.ParsePath(cfg.Cluster); err != nil || r.Kind != api.KindCluster {
		return bad("Cluster", fmt.Sprintf("%q is not a cluster path like /dc1/host/c1", cfg.Cluster))
	}
	if cfg.VCenter == "" {
		return bad("VCenter", "is empty (want http://HOST:PORT)")
	}
	if _, err := client.New(cfg.VCenter, ""); err != nil {
		return bad("VCenter", err.Error())
	}
	if cfg.JoinToken == "" {
		return bad("JoinToken", "is empty")
	}
	if cfg.Runtime == nil {
		return bad("Runtime", "is nil")
	}
	if cfg.CPUMHz < 0 || cfg.MemMB < 0 {
		return bad("CPUMHz/MemMB", "must not be negative")
	}
	if cfg.GossipBind == "" {
		cfg.GossipBind = "0.0.0.0:7946"
	}
	if cfg.Timings == (gossip.Timings{}) {
		cfg.Timings = gossip.DefaultTimings()
	}
	if err := cfg.Timings.ValidateAgent(); err != nil {
		return bad("Timings", err.Error())
	}
	host := cfg.Cluster + "/" + cfg.Name
	if cfg.Locks != nil && cfg.Locks.Host() != host {
		return bad("Locks", fmt.Sprintf("are for host %s, not %s", cfg.Locks.Host(), host))
	}
	// Checked early: a bad bind address would otherwise fail only in Run.
	if _, err := gossip.MemberlistConfig(host, cfg.GossipBind, gossip.GossipKey(cfg.JoinToken), cfg.Timings); err != nil {
		return bad("GossipBind", err.Error())
	}
	if cfg.Logger == nil {
		cfg.Logger = log.New(os.Stderr, "host "+cfg.Name+": ", log.LstdFlags)
	}
	cfg.Join = slices.Clone(cfg.Join)
	cfg.LB = slices.Clone(cfg.LB)
	if cfg.Ingress != nil {
		cfg.LB = append(cfg.LB, cfg.Ingress)
	}
	for i, lc := range cfg.LB {
		if lc == nil {
			return bad(fmt.Sprintf("LB[%d]", i), "is nil")
		}
	}
	if cfg.LBResync < 0 {
		return bad("LBResync", "must not be negative")
	}
	return &Agent{cfg: cfg, host: host, log: cfg.Logger, ready: make(chan struct{})}, nil
}

// HostPath is the host's inventory path, its gossip node name too.
func (a *Agent) HostPath() string { return a.host }

// Ready is closed once the host has joined vcenter and its gossip.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// GossipAddr is where the host gossips, host:port; empty before Ready.
func (a *Agent) GossipAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gossipAddr
}

// AgentAddr is where the agent's own API listens, host:port; empty before
// Ready or when it serves none.
func (a *Agent) AgentAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.agentAddr
}

// ErrJoinRefused is returned by Run when vcenter rejects the join token.
var ErrJoinRefused = errors.New("vcenter refused the join token")

// Run joins vcenter and reconciles until ctx ends. It then leaves the gossip
// cluster and returns nil, leaving every VM running: an agent restart must
// not disturb them. It fails at once if vcenter refuses the join token;
// while vcenter is unreachable it keeps retrying. Call Run once.
func (a *Agent) Run(ctx context.Context) error {
	t := a.cfg.Timings
	c, err := client.New(a.cfg.VCenter, a.cfg.JoinToken)
	if err != nil {
		return err
	}
	capacity, err := a.capacity(ctx)
	if err != nil {
		return err
	}

	// Gossip first, to tell vcenter the address; joining the cluster waits for the join reply.
	mc, err := gossip.MemberlistConfig(a.host, a.cfg.GossipBind, gossip.GossipKey(a.cfg.JoinToken), t)
	if err != nil {
		return err
	}
	mc.LogOutput = nil
	mc.Logger = gossip.Logger(a.log)
	live := &liveMembers{addrs: map[string]string{}}
	mc.Events = live
	list, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("host %s: start gossip on %s: %w", a.host, a.cfg.GossipBind, err)
	}
	addr := list.LocalNode().Address()
	var apiLn net.Listener
	var agentAddr string
	if a.cfg.APIListen != "" {
		if apiLn, agentAddr, err = a.listenAPI(list.LocalNode().Addr.String()); err != nil {
			_ = list.Shutdown()
			return err
		}
	}
	fail := func(err error) error {
		_ = list.Shutdown()
		if apiLn != nil {
			apiLn.Close()
		}
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	reply, err := a.join(ctx, c, api.JoinRequest{
		Name:         a.cfg.Name,
		Cluster:      a.cfg.Cluster,
		Address:      addr,
		Runtime:      a.cfg.Runtime.Name(),
		CPUCapacity:  capacity.CPUMHz,
		MemCapacity:  capacity.MemMB,
		AgentAddress: agentAddr,
	})
	if err != nil {
		return fail(err)
	}
	if reply.Host != nil && reply.Host.Path != "" && reply.Host.Path != a.host {
		a.log.Printf("vcenter registered this host as %s, not %s; gossiping as %s", reply.Host.Path, a.host, a.host)
	}
	// A runtime that hands out VM addresses takes them from the host's pod subnet.
	if sa, ok := a.cfg.Runtime.(interface{ SetPodSubnet(string) }); ok && reply.PodSubnet != "" {
		sa.SetPodSubnet(reply.PodSubnet)
	}
	nw, _ := a.cfg.Runtime.(runtime.Networker)
	if nw != nil && reply.PodSubnet != "" {
		if err := nw.SetupNetwork(ctx, reply.PodSubnet); err != nil {
			return fail(fmt.Errorf("host %s: network for pod subnet %s: %w", a.host, reply.PodSubnet, err))
		}
	}
	// Before any VM is made: their resolv.conf names this resolver.
	consumers := slices.Clone(a.cfg.LB)
	if dns := a.startDNS(ctx, c); dns != nil {
		defer dns.res.Close()
		consumers = append(consumers, dns)
	}
	seeds := slices.Clone(a.cfg.Join)
	for _, s := range reply.GossipSeed {
		if !slices.Contains(seeds, s) {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		a.log.Printf("no gossip seed from config or vcenter: vcenter will not see this host alive")
	} else if _, err := list.Join(seeds); err != nil {
		a.log.Printf("gossip join %v: %v (retrying every %v)", seeds, err, t.RejoinInterval)
	}
	a.mu.Lock()
	a.gossipAddr = addr
	a.agentAddr = agentAddr
	a.mu.Unlock()
	close(a.ready)
	a.log.Printf("joined vcenter %s as %s (%s, %d MHz, %d MB), gossiping on %s",
		a.cfg.VCenter, a.host, a.cfg.Runtime.Name(), capacity.CPUMHz, capacity.MemMB, addr)

	gctx, stopGossip := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.keepGossip(gctx, c, list, live, seeds)
	}()
	if nw != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.keepPeerRoutes(gctx, c, nw)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.reportUsage(gctx, c, agentAddr)
	}()
	if len(consumers) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.keepLB(gctx, c, consumers)
		}()
	}
	if a.cfg.Ingress != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.serveIngress(gctx)
		}()
	}
	if apiLn != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.serveAPI(apiLn, gctx.Done())
		}()
		a.log.Printf("agent API on %s", agentAddr)
	}

	rec := newReconciler(a, c)
	if n, ok := a.cfg.Runtime.(runtime.Notifier); ok {
		n.SetNotify(rec.notify)
		defer n.SetNotify(nil)
	}
	rec.run(ctx)

	stopGossip()
	wg.Wait()
	// Leave so vcenter hears at once rather than after the suspicion time;
	// the VMs keep running.
	if err := list.Leave(t.LeaveTimeout); err != nil {
		a.log.Printf("leave gossip: %v (vcenter will find the host failed instead)", err)
	}
	if err := list.Shutdown(); err != nil {
		return fmt.Errorf("host %s: stop gossip: %w", a.host, err)
	}
	a.log.Printf("stopped; VMs left running")
	return nil
}

func (a *Agent) capacity(ctx context.Context) (runtime.Capacity, error) {
	c := runtime.Capacity{CPUMHz: a.cfg.CPUMHz, MemMB: a.cfg.MemMB}
	if c.CPUMHz > 0 && c.MemMB > 0 {
		return c, nil
	}
	rc, err := a.cfg.Runtime.Capacity(ctx)
	if err != nil {
		return c, fmt.Errorf("host %s: runtime %s capacity: %w", a.host, a.cfg.Runtime.Name(), err)
	}
	if c.CPUMHz == 0 {
		c.CPUMHz = rc.CPUMHz
	}
	if c.MemMB == 0 {
		c.MemMB = rc.MemMB
	}
	return c, nil
}

// join registers the host, retrying while vcenter is unreachable.
func (a *Agent) join(ctx context.Context, c *client.Client, req api.JoinRequest) (*api.JoinReply, error) {
	for attempt := 0; ; attempt++ {
		reply, err := c.Join(ctx, req)
		switch {
		case err == nil:
			return reply, nil
		case errors.Is(err, api.ErrUnauthorized):
			return nil, fmt.Errorf("host %s: %w: check the join token (%v)", a.host, ErrJoinRefused, err)
		case !errors.Is(err, api.ErrUnavailable):
			return nil, fmt.Errorf("host %s: join vcenter at %s: %w", a.host, a.cfg.VCenter, err)
		}
		d := a.backoff(attempt)
		a.log.Printf("join vcenter: %v (retrying in %v)", err, d.Round(time.Millisecond))
		if !sleep(ctx, d) {
			return nil, ctx.Err()
		}
	}
}

// keepGossip rejoins the seeds when this host has lost vcenter: when no seed
// is among its live gossip members (vcenter restarted, or was forgotten
// after a long partition), or when vcenter reports the host not responding
// though it runs (vcenter refused its new address, say).
func (a *Agent) keepGossip(ctx context.Context, c *client.Client, list *memberlist.Memberlist, live *liveMembers, seeds []string) {
	if len(seeds) == 0 {
		return
	}
	t := a.cfg.Timings
	local := time.NewTicker(t.RejoinInterval)
	defer local.Stop()
	remote := time.NewTicker(t.StatusInterval)
	defer remote.Stop()
	failing := false // log a run of failed rejoins once
	rejoin := func(why string) {
		n, err := list.Join(seeds)
		switch {
		case err != nil && !failing:
			a.log.Printf("gossip rejoin (%s): %v (retrying every %v)", why, err, t.RejoinInterval)
		case err == nil:
			a.log.Printf("gossip rejoined %d seed(s): %s", n, why)
		}
		failing = err != nil
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-local.C:
			if !seedAlive(ctx, live, seeds) {
				rejoin("no seed is a live member")
			}
		case <-remote.C:
			o, err := c.Get(ctx, a.host)
			if err != nil {
				continue
			}
			var st api.HostStatus
			if o.DecodeStatus(&st) == nil && st.State == api.HostNotResponding {
				rejoin("vcenter reports the host not responding")
			}
		}
	}
}

// liveMembers is the gossip members' addresses as memberlist's event
// callbacks report them. memberlist calls them holding its node lock, the
// only time a member's address can be read safely: the nodes Members()
// returns are rewritten in place whenever a member re-announces itself (a
// restarted vcenter refuting its old incarnation), so reading their
// Address() outside the callbacks is a data race (hashicorp/memberlist#306).
type liveMembers struct {
	mu    sync.Mutex
	addrs map[string]string // node name -> host:port; suspect members included, as in Members()
}

func (l *liveMembers) NotifyJoin(n *memberlist.Node)   { l.set(n.Name, n.Address()) }
func (l *liveMembers) NotifyUpdate(n *memberlist.Node) { l.set(n.Name, n.Address()) }
func (l *liveMembers) NotifyLeave(n *memberlist.Node)  { l.set(n.Name, "") }

func (l *liveMembers) set(name, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if addr == "" {
		delete(l.addrs, name)
	} else {
		l.addrs[name] = addr
	}
}

// addresses is the set of live members' addresses.
func (l *liveMembers) addresses() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]bool, len(l.addrs))
	for _, a := range l.addrs {
		out[a] = true
	}
	return out
}

// seedAlive says whether any seed address is a live gossip member.
func seedAlive(ctx context.Context, members *liveMembers, seeds []string) bool {
	live := members.addresses()
	for _, s := range seeds {
		if live[s] {
			return true
		}
		host, port, err := net.SplitHostPort(s)
		if err != nil || net.ParseIP(host) != nil {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		ips, err := net.DefaultResolver.LookupHost(rctx, host)
		cancel()
		for _, ip := range ips {
			if live[net.JoinHostPort(ip, port)] {
				return true
			}
		}
	}
	return false
}

// backoff is the delay before retry attempt (0-based): RetryMin doubling up
// to RetryMax, with up to half of it random so many hosts spread out.
func (a *Agent) backoff(attempt int) time.Duration {
	d := Backoff(attempt, a.cfg.Timings.RetryMin, a.cfg.Timings.RetryMax)
	return d/2 + rand.N(d/2+1)
}

// Backoff is min doubled attempt times, capped at max.
func Backoff(attempt int, min, max time.Duration) time.Duration {
	d := min
	for range attempt {
		if d >= max/2 {
			return max
		}
		d *= 2
	}
	return d
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
