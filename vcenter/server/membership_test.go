package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/agent"
	"github.com/podsphere/podsphere/host/sim"
	"github.com/podsphere/podsphere/internal/gossip"
)

// testTimings are membership's defaults (the gossip figures docs/membership.md
// documents) with the agent's own loops and backoff shortened.
func testTimings() gossip.Timings {
	t := gossip.DefaultTimings()
	t.StatusInterval = 200 * time.Millisecond
	t.RejoinInterval = 200 * time.Millisecond
	t.RetryMin = 10 * time.Millisecond
	t.RetryMax = 200 * time.Millisecond
	t.LastSeenInterval = time.Second
	return t
}

type runningAgent struct {
	a      *agent.Agent
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func (e *env) startAgent(t *testing.T, name string, rt *sim.Driver, token string) *runningAgent {
	t.Helper()
	a, err := agent.New(agent.Config{Name: name, Cluster: cluster, VCenter: e.url, JoinToken: token,
		Join: []string{e.s.GossipAddr()}, GossipBind: "127.0.0.1:0", Runtime: rt,
		Timings: testTimings(), Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningAgent{a: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the agent, which leaves the gossip gracefully, and waits for Run.
func (r *runningAgent) stop(t *testing.T) {
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("agent Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop within 30 s")
		}
	})
}

func (e *env) hostStatus(t *testing.T, name string) api.HostStatus {
	t.Helper()
	o, err := e.admin.Get(ctxT(t), cluster+"/"+name)
	if err != nil {
		return api.HostStatus{}
	}
	var st api.HostStatus
	_ = o.DecodeStatus(&st)
	return st
}

func (e *env) vmStatus(t *testing.T, name string) (api.VMSpec, api.VMStatus) {
	t.Helper()
	_, spec, st := e.getVM(t, name)
	return spec, st
}

// waitState waits for a host's connection state and says how long it took.
func (e *env) waitState(t *testing.T, name, state string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	eventually(t, name+" "+state, within, func() bool { return e.hostStatus(t, name).State == state })
	return time.Since(start)
}

// TestMembership: vcenter and three sim host agents on loopback. Hosts join
// and connect, run the VMs placed on them, turn notResponding when they stop
// gossiping (gracefully or not) and connected again when they come back.
func TestMembership(t *testing.T) {
	if testing.Short() {
		t.Skip("runs gossip with real timings")
	}
	tm := testTimings()
	e := startVCenter(t, Config{Gossip: "127.0.0.1:0", Timings: tm})
	e.inventory(t, nil)

	// A wrong join token is refused, and nothing is registered.
	bad, err := agent.New(agent.Config{Name: "esx-09", Cluster: cluster, VCenter: e.url, JoinToken: "not-the-join-token",
		Join: []string{e.s.GossipAddr()}, GossipBind: "127.0.0.1:0", Runtime: sim.New(1000, 1024, ""),
		Timings: tm, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Run(ctxT(t)); !errors.Is(err, agent.ErrJoinRefused) {
		t.Fatalf("agent with a wrong token: Run = %v, want ErrJoinRefused", err)
	}
	if _, err := e.admin.Get(ctxT(t), cluster+"/esx-09"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("refused host registered: %v", err)
	}

	names := []string{"esx-01", "esx-02", "esx-03"}
	rts := map[string]*sim.Driver{}
	agents := map[string]*runningAgent{}
	for _, n := range names {
		rts[n] = sim.New(8000, 16384, "") // addresses come from the host's pod subnet
		agents[n] = e.startAgent(t, n, rts[n], e.s.JoinToken())
	}
	for _, n := range names {
		e.waitState(t, n, api.HostConnected, 30*time.Second)
		st := e.hostStatus(t, n)
		if st.CPUCapacity != 8000 || st.MemCapacity != 16384 || st.Runtime != "sim" || st.PodSubnet == "" || st.Joined.IsZero() || st.LastSeen.IsZero() {
			t.Errorf("%s status %+v", n, st)
		}
	}
	eventually(t, "4 gossip members", 30*time.Second, func() bool { return e.s.member.NumMembers() == 4 })
	if u := e.poolCPU(t, rootRP); u.Reservation != 24000 {
		t.Errorf("root pool %d MHz with three 8000 MHz hosts connected", u.Reservation)
	}

	// VMs placed on the hosts run there and report an address from the host's subnet.
	on := map[string]string{}
	for i := range 3 {
		name := fmt.Sprintf("web%d", i)
		e.mustCreate(t, vm(name, rootRP, 1000, api.PoweredOn))
		on[name] = e.hostOf(t, name)
	}
	for name, host := range on {
		eventually(t, name+" running on "+host, 30*time.Second, func() bool {
			spec, st := e.vmStatus(t, name)
			return st.PowerState == api.PoweredOn && st.IP != "" && st.Host == spec.Host && !st.BootTime.IsZero()
		})
		_, st := e.vmStatus(t, name)
		_, subnet, _ := net.ParseCIDR(e.hostStatus(t, host).PodSubnet)
		if ip := net.ParseIP(st.IP); ip == nil || subnet == nil || !subnet.Contains(ip) {
			t.Errorf("%s on %s has IP %q outside the host's pod subnet %s", name, host, st.IP, e.hostStatus(t, host).PodSubnet)
		}
		if !hasEvent(e.eventsFor(t, dc+"/vm/"+name), "VmStateChangedEvent", "is poweredOn on "+host) {
			t.Errorf("no VmStateChangedEvent for %s", name)
		}
	}

	// Graceful stop: the agent leaves the gossip, so vcenter hears at once;
	// the documented bound for a silent host is the most it may take.
	bound := tm.DetectionBound(4)
	agents["esx-02"].stop(t)
	took := e.waitState(t, "esx-02", api.HostNotResponding, bound+5*time.Second)
	t.Logf("esx-02 left gracefully: notResponding after %v (documented bound for a silent host of 4 members: %v)", took.Round(time.Millisecond), bound)
	if !hasEvent(e.eventsFor(t, cluster+"/esx-02"), "HostNotRespondingEvent", "stopped gossiping") {
		t.Error("no HostNotRespondingEvent for esx-02")
	}
	// esx-02 lends no free capacity now; what its running VMs reserve stays counted.
	var held int64
	for name, host := range on {
		if host == "esx-02" {
			spec, _ := e.vmStatus(t, name)
			held += spec.CPU.Reservation
		}
	}
	if u := e.poolCPU(t, rootRP); u.Reservation != 16000+held {
		t.Errorf("root pool %d MHz with esx-02 not responding, want %d", u.Reservation, 16000+held)
	}
	// A host that is not responding gets no new VMs.
	for i := range 3 {
		name := fmt.Sprintf("while%d", i)
		e.mustCreate(t, vm(name, rootRP, 100, api.PoweredOn))
		if h := e.hostOf(t, name); h == "esx-02" {
			t.Errorf("%s placed on esx-02, which is not responding", name)
		}
	}
	for _, n := range []string{"esx-01", "esx-03"} {
		if st := e.hostStatus(t, n).State; st != api.HostConnected {
			t.Errorf("%s is %s while esx-02 is away", n, st)
		}
	}

	// Restart: connected again, its VMs adopted, not restarted.
	var onTwo string
	for name, host := range on {
		if host == "esx-02" {
			onTwo = name
		}
	}
	var bootBefore time.Time
	if onTwo != "" {
		_, st := e.vmStatus(t, onTwo)
		bootBefore = st.BootTime
	}
	agents["esx-02"] = e.startAgent(t, "esx-02", rts["esx-02"], e.s.JoinToken())
	took = e.waitState(t, "esx-02", api.HostConnected, 30*time.Second)
	t.Logf("esx-02 restarted: connected after %v", took.Round(time.Millisecond))
	if !hasEvent(e.eventsFor(t, cluster+"/esx-02"), "HostConnectedEvent", "") {
		t.Error("no HostConnectedEvent for esx-02")
	}
	eventually(t, "4 gossip members again", 30*time.Second, func() bool { return e.s.member.NumMembers() == 4 })
	if onTwo != "" {
		_, st := e.vmStatus(t, onTwo)
		if st.PowerState != api.PoweredOn || !st.BootTime.Equal(bootBefore) {
			t.Errorf("%s after its host's agent restarted: %s booted %v (was %v)", onTwo, st.PowerState, st.BootTime, bootBefore)
		}
	}

	// Crash: a host node that stops gossiping without leaving. It is a bare
	// memberlist node, as an agent killed with -9 would leave behind.
	const crashName = "esx-04"
	if _, err := e.join.Join(ctxT(t), api.JoinRequest{Name: crashName, Cluster: cluster, Runtime: "sim",
		CPUCapacity: 8000, MemCapacity: 16384, Address: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	mc, err := gossip.MemberlistConfig(cluster+"/"+crashName, "127.0.0.1:0", gossip.GossipKey(e.s.JoinToken()), tm)
	if err != nil {
		t.Fatal(err)
	}
	list, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	shut := false
	t.Cleanup(func() {
		if !shut {
			_ = list.Shutdown()
		}
	})
	if _, err := list.Join([]string{e.s.GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "5 gossip members", 30*time.Second, func() bool { return e.s.member.NumMembers() == 5 })
	if st := e.hostStatus(t, crashName).State; st != api.HostConnected {
		t.Fatalf("%s is %s after joining", crashName, st)
	}
	bound = tm.DetectionBound(5)
	shut = true
	_ = list.Shutdown()                                            // no leave message: silence
	took = e.waitState(t, crashName, api.HostNotResponding, bound) // the documented bound is the promise
	t.Logf("%s crashed: notResponding after %v (DetectionBound(5) = %v, ExpectedDetection(5) = %v)",
		crashName, took.Round(time.Millisecond), bound, tm.ExpectedDetection(5))
	for _, n := range names {
		if st := e.hostStatus(t, n).State; st != api.HostConnected {
			t.Errorf("%s is %s after another host crashed", n, st)
		}
	}
}
