package controllers

import (
	"errors"
	"io"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// haBed is an inventory on a fake clock with an HA controller over it,
// and gossip's alive set in the test's hands.
type haBed struct {
	t     *testing.T
	dir   string
	clock *fakeClock
	inv   *inventory.Inventory
	ha    *HA
	alive []string
}

func newHABed(t *testing.T) *haBed {
	b := &haBed{t: t, dir: t.TempDir(), clock: &fakeClock{now: epoch}}
	b.open()
	t.Cleanup(func() { b.inv.Close() })
	return b
}

// open opens the inventory and starts a new HA controller over it: a
// vcenter (re)started.
func (b *haBed) open() {
	inv, err := inventory.Open(b.dir, inventory.Options{Now: b.clock.Now, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		b.t.Fatal(err)
	}
	b.inv = inv
	b.ha = NewHA(inv, HAOptions{Alive: func() []string { return b.alive }, Logger: log.New(io.Discard, "", 0)})
}

func (b *haBed) must(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b *haBed) join(name string) {
	_, err := b.inv.Join(api.JoinRequest{Name: name, Cluster: cluster, Address: "127.0.0.1:1", Runtime: "sim", CPUCapacity: 8000, MemCapacity: 16384})
	b.must(err)
}

func (b *haBed) vm(name string) (*api.Object, api.VMSpec, api.VMStatus) {
	o, err := b.inv.Get(dc + "/vm/" + name)
	b.must(err)
	var s api.VMSpec
	var st api.VMStatus
	_ = o.DecodeSpec(&s)
	_ = o.DecodeStatus(&st)
	return o, s, st
}

// report says, as the VM's host would, that it runs there.
func (b *haBed) report(name string) {
	o, s, _ := b.vm(name)
	o.SetStatus(api.VMStatus{PowerState: api.PoweredOn, Host: s.Host, Ready: true, ReadySince: b.clock.now})
	_, err := b.inv.SetStatus("host", o)
	b.must(err)
}

// cluster makes the datacenter, the cluster with spec, and the VMs (name
// -> restart priority) on esx-02, running there.
func (b *haBed) cluster(spec api.ClusterSpec, vms map[string]string) {
	_, err := b.inv.Create("admin", api.New(api.KindDatacenter, dc, nil))
	b.must(err)
	// Groups name existing VMs only: they and their rules come once the VMs exist.
	groups, rules := spec.Groups, spec.Rules
	spec.Groups, spec.Rules = nil, nil
	_, err = b.inv.Create("admin", api.New(api.KindCluster, cluster, spec))
	b.must(err)
	b.join("esx-02")
	defer func() {
		if len(groups)+len(rules) == 0 {
			return
		}
		c, err := b.inv.Get(cluster)
		b.must(err)
		spec.Groups, spec.Rules = groups, rules
		c.SetSpec(spec)
		_, err = b.inv.Change("admin", c)
		b.must(err)
	}()
	for name, prio := range vms {
		_, err := b.inv.Create("admin", api.New(api.KindVirtualMachine, dc+"/vm/"+name, api.VMSpec{Pool: root, NumCPU: 1, MemoryMB: 64,
			CPU: api.Allocation{Limit: -1, Shares: api.Shares{Level: "normal"}}, Mem: api.Allocation{Limit: -1, Shares: api.Shares{Level: "normal"}},
			PowerState: api.PoweredOn, HA: api.HAPolicy{RestartPriority: prio}}))
		b.must(err)
		b.report(name)
	}
}

func (b *haBed) restarts(name string) int {
	n := 0
	for _, o := range b.inv.List(store.Query{Kind: api.KindEvent}).Items {
		var ev api.EventSpec
		_ = o.DecodeSpec(&ev)
		if ev.Target == dc+"/vm/"+name && ev.Type == "VmRestartedOnAlternateHostEvent" {
			n++
		}
	}
	return n
}

// TestHAResumesAfterVCenterRestart: vcenter stops in the middle of a
// failover (the high priority VM restarted, the low one waiting for it
// to run); the next vcenter neither restarts the first again nor forgets
// the second, and waits the full fencing time from its own start before
// it trusts a silence it did not hear begin.
func TestHAResumesAfterVCenterRestart(t *testing.T) {
	b := newHABed(t)
	b.cluster(api.ClusterSpec{HA: api.HAConfig{Enabled: true}}, map[string]string{"top": "high", "low": "low"})
	b.join("esx-01")
	b.join("esx-03")
	b.alive = []string{cluster + "/esx-01", cluster + "/esx-03"} // esx-02 went silent at the start

	b.ha.Pass()
	if _, s, _ := b.vm("top"); s.Host != cluster+"/esx-02" {
		t.Fatalf("top restarted on %s before esx-02's fencing time", s.Host)
	}
	b.clock.now = b.clock.now.Add(11 * time.Second) // past fence 6 s + margin 4 s
	b.ha.Pass()
	_, s, st := b.vm("top")
	if s.Host == cluster+"/esx-02" || st.Host != s.Host || st.PowerState != api.PoweredOff || st.HA == nil ||
		st.HA.Attempts != 1 || st.HA.RestartedFrom != cluster+"/esx-02" {
		t.Fatalf("top after esx-02 failed: host %s, status %+v", s.Host, st)
	}
	if _, s, _ := b.vm("low"); s.Host != cluster+"/esx-02" {
		t.Fatalf("low restarted on %s while top is not running yet", s.Host)
	}

	// vcenter is killed and started again.
	b.must(b.inv.Close())
	b.open()
	b.ha.Pass()
	if n := b.restarts("top"); n != 1 {
		t.Errorf("top restarted %d times, want once", n)
	}
	// The old host's late report of top is refused.
	o, _, _ := b.vm("top")
	o.SetStatus(api.VMStatus{PowerState: api.PoweredOn, Host: cluster + "/esx-02"})
	if _, err := b.inv.SetStatus("host", o); !errors.Is(err, api.ErrConflict) {
		t.Errorf("esx-02 reporting top after its restart elsewhere: %v, want ErrConflict", err)
	}
	// top runs on its new host, and its attempts are cleared; low is not
	// restarted yet: the new vcenter did not hear esx-02 go silent, so it
	// counts the fencing time from its own start.
	b.report("top")
	b.ha.Pass()
	if _, _, st := b.vm("top"); st.HA == nil || st.HA.Attempts != 0 || st.HA.RestartedAt.IsZero() {
		t.Errorf("top's HA record once it runs: %+v", st.HA)
	}
	if _, s, _ := b.vm("low"); s.Host != cluster+"/esx-02" {
		t.Fatalf("low restarted on %s before the fencing time since vcenter's start", s.Host)
	}
	b.clock.now = b.clock.now.Add(11 * time.Second)
	b.ha.Pass()
	if _, s, _ := b.vm("low"); s.Host == cluster+"/esx-02" {
		t.Errorf("low not restarted once top runs")
	}
	if n, m := b.restarts("top"), b.restarts("low"); n != 1 || m != 1 {
		t.Errorf("restarts: top %d, low %d, want one each", n, m)
	}
}

// TestHADependencyRule: a VM of a group that depends on another group is
// restarted only once that group's VMs run, whatever their priorities
// would allow (equal here); the cluster's groups and depends rules are
// what the controller reads.
func TestHADependencyRule(t *testing.T) {
	b := newHABed(t)
	b.cluster(api.ClusterSpec{HA: api.HAConfig{Enabled: true},
		Groups: []api.ClusterGroup{{Name: "dbs", Kind: "vm", VMs: []string{"db"}}, {Name: "webs", Kind: "vm", VMs: []string{"web"}}},
		Rules:  []api.ClusterRule{{Name: "web-after-db", Enabled: true, Kind: "depends", VMGroup: "webs", DependsOnVMGroup: "dbs"}},
	}, map[string]string{"db": "", "web": ""})
	b.join("esx-01")
	b.alive = []string{cluster + "/esx-01"}
	b.clock.now = b.clock.now.Add(11 * time.Second)
	b.ha.Pass()
	if _, s, _ := b.vm("db"); s.Host != cluster+"/esx-01" {
		t.Fatalf("db on %s, want restarted on esx-01", s.Host)
	}
	if _, s, _ := b.vm("web"); s.Host != cluster+"/esx-02" {
		t.Fatalf("web restarted on %s before db runs", s.Host)
	}
	b.report("db")
	b.ha.Pass()
	if _, s, _ := b.vm("web"); s.Host != cluster+"/esx-01" {
		t.Errorf("web on %s once db runs, want restarted on esx-01", s.Host)
	}
}

// TestHALeavesPinnedVMs: a VM pinned to a failed host (vm.create -host, a
// DaemonSet's member) stays there, with no attempt counted, and does not
// hold up the lower priorities.
func TestHALeavesPinnedVMs(t *testing.T) {
	b := newHABed(t)
	b.cluster(api.ClusterSpec{HA: api.HAConfig{Enabled: true}}, map[string]string{"web": "low"})
	_, err := b.inv.Create("admin", api.New(api.KindVirtualMachine, dc+"/vm/agent", api.VMSpec{Pool: root, NumCPU: 1, MemoryMB: 64,
		CPU: api.Allocation{Limit: -1, Shares: api.Shares{Level: "normal"}}, Mem: api.Allocation{Limit: -1, Shares: api.Shares{Level: "normal"}},
		PowerState: api.PoweredOn, Host: cluster + "/esx-02", Pinned: true, HA: api.HAPolicy{RestartPriority: "highest"}}))
	b.must(err)
	b.report("agent")
	b.join("esx-01")
	b.alive = []string{cluster + "/esx-01"}
	b.clock.now = b.clock.now.Add(11 * time.Second)
	b.ha.Pass()
	if _, s, _ := b.vm("web"); s.Host != cluster+"/esx-01" {
		t.Errorf("web on %s, want restarted on esx-01", s.Host)
	}
	if _, s, st := b.vm("agent"); s.Host != cluster+"/esx-02" || st.HA != nil {
		t.Errorf("pinned agent: host %s, HA record %+v", s.Host, st.HA)
	}
	// ha.plan says so too.
	plan, err := b.inv.HAPlan(cluster, []string{"esx-02"})
	b.must(err)
	if len(plan.NotRestarted) != 1 || plan.NotRestarted[0].VM != dc+"/vm/agent" || !strings.Contains(plan.NotRestarted[0].Reason, "pinned") {
		t.Errorf("ha.plan -fail esx-02: not restarted %+v, want agent (pinned)", plan.NotRestarted)
	}
}

// TestHASettlesWhileAFailedHostStaysDown: once a failed host's VMs are
// restarted (a disabled one left there), HA stops planning again at
// every pass while nothing changes, and plans again as soon as
// something does: the VM left behind given a restart priority is
// restarted, and a host failing next is seen.
func TestHASettlesWhileAFailedHostStaysDown(t *testing.T) {
	b := newHABed(t)
	b.cluster(api.ClusterSpec{HA: api.HAConfig{Enabled: true}}, map[string]string{"top": "high", "keep": "disabled"})
	b.join("esx-01")
	b.join("esx-03")
	snapshots := 0
	h := NewHA(b.inv, HAOptions{Alive: func() []string { return b.alive }, Logger: log.New(io.Discard, "", 0),
		Observe: func(HAPass) { snapshots++ }})
	b.alive = []string{cluster + "/esx-01", cluster + "/esx-03"} // esx-02 went silent
	h.Pass()
	b.clock.now = b.clock.now.Add(11 * time.Second) // past fence 6 s + margin 4 s
	h.Pass()
	if _, s, _ := b.vm("top"); s.Host == cluster+"/esx-02" {
		t.Fatalf("top was not restarted off esx-02")
	}
	b.report("top")
	for range 3 {
		h.Pass() // clears top's record, then finds nothing to do
	}
	before := snapshots
	for range 5 {
		b.clock.now = b.clock.now.Add(time.Second)
		h.Pass()
	}
	if snapshots != before {
		t.Errorf("%d snapshots in 5 passes with esx-02 failed and nothing to do, want none", snapshots-before)
	}

	// keep, left on esx-02, is given a restart priority.
	o, s, _ := b.vm("keep")
	s.HA.RestartPriority = "medium"
	o.SetSpec(s)
	_, err := b.inv.Change("admin", o)
	b.must(err)
	h.Pass()
	if _, s, _ := b.vm("keep"); s.Host == cluster+"/esx-02" || b.restarts("keep") != 1 {
		t.Fatalf("keep given a restart priority on failed esx-02: still on %s, %d restarts", s.Host, b.restarts("keep"))
	}
	b.report("keep")
	for range 3 {
		h.Pass()
	}

	// esx-03 fails too: its silence is seen at once.
	before = snapshots
	b.alive = []string{cluster + "/esx-01"}
	h.Pass()
	if snapshots == before {
		t.Errorf("a second silent host did not end the settled state")
	}
}

// TestHAWaitsOutTheFencingTimeWithoutPlanning: without heartbeat
// datastores, a silent host's fate is known only once its fencing time
// has run out; HA does not plan again meanwhile, and restarts its VMs at
// the first pass after it.
func TestHAWaitsOutTheFencingTimeWithoutPlanning(t *testing.T) {
	b := newHABed(t)
	b.cluster(api.ClusterSpec{HA: api.HAConfig{Enabled: true}}, map[string]string{"top": "high"})
	b.join("esx-01")
	snapshots := 0
	h := NewHA(b.inv, HAOptions{Alive: func() []string { return b.alive }, Logger: log.New(io.Discard, "", 0),
		Observe: func(HAPass) { snapshots++ }})
	b.alive = []string{cluster + "/esx-01"} // esx-02 went silent
	h.Pass()
	if snapshots != 1 {
		t.Fatalf("%d snapshots at the first silent pass, want 1", snapshots)
	}
	for range 9 {
		b.clock.now = b.clock.now.Add(time.Second)
		h.Pass()
	}
	if snapshots != 1 {
		t.Errorf("%d snapshots within esx-02's fencing time (6 s + 4 s), want 1", snapshots)
	}
	if _, s, _ := b.vm("top"); s.Host != cluster+"/esx-02" {
		t.Fatalf("top restarted on %s within esx-02's fencing time", s.Host)
	}
	b.clock.now = b.clock.now.Add(1100 * time.Millisecond) // 10.1 s silent
	h.Pass()
	if _, s, _ := b.vm("top"); s.Host != cluster+"/esx-01" || b.restarts("top") != 1 {
		t.Fatalf("after esx-02's fencing time, top is on %s (%d restarts), want restarted on esx-01", s.Host, b.restarts("top"))
	}
}

// reportFailed says, as the VM's host would, that it could not power it on.
func (b *haBed) reportFailed(name, why string) {
	o, s, _ := b.vm(name)
	o.SetStatus(api.VMStatus{PowerState: api.PoweredOff, Host: s.Host, Message: why, PowerOnFailed: why})
	_, err := b.inv.SetStatus("host", o)
	b.must(err)
}

func (b *haBed) events(name, typ string) []api.EventSpec {
	var out []api.EventSpec
	for _, o := range b.inv.List(store.Query{Kind: api.KindEvent}).Items {
		var ev api.EventSpec
		_ = o.DecodeSpec(&ev)
		if ev.Target == dc+"/vm/"+name && ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// TestHARetriesWhereTheHostCouldNotStartIt: a VM HA restarted on a host
// that reports it could not power it on is a failed attempt, recorded
// once (also across a vcenter restart) and retried on another host after
// the backoff delay; a host that does start it in the meantime keeps it.
func TestHARetriesWhereTheHostCouldNotStartIt(t *testing.T) {
	b := newHABed(t)
	b.cluster(api.ClusterSpec{HA: api.HAConfig{Enabled: true}}, map[string]string{"db": "high"})
	b.join("esx-01")
	b.join("esx-03")
	b.alive = []string{cluster + "/esx-01", cluster + "/esx-03"}
	b.clock.now = b.clock.now.Add(11 * time.Second)
	b.ha.Pass()
	_, s, _ := b.vm("db")
	first := s.Host
	if first == cluster+"/esx-02" {
		t.Fatal("db not restarted once esx-02 failed")
	}
	b.reportFailed("db", "create: image db:2 not found in the content library")
	b.ha.Pass()
	b.ha.Pass()
	b.must(b.inv.Close()) // vcenter restarts: the failure is recorded once
	b.open()
	b.ha.Pass()
	_, s, st := b.vm("db")
	if s.Host != first || st.HA == nil || st.HA.Attempts != 1 || st.HA.GaveUp ||
		st.HA.LastError != "host "+api.Base(first)+" could not start it: create: image db:2 not found in the content library" {
		t.Fatalf("db within the backoff delay: on %s, HA %+v", s.Host, st.HA)
	}
	if evs := b.events("db", "VmFailoverFailed"); len(evs) != 1 || evs[0].Category != "warning" || evs[0].User != inventory.HAUser ||
		!strings.Contains(evs[0].Message, "could not start db on "+api.Base(first)+" (attempt 1 of 5): create: image db:2 not found in the content library; trying another host") {
		t.Fatalf("failure events: %+v", evs)
	}

	b.clock.now = b.clock.now.Add(3 * time.Second) // past the 2 s before attempt 2
	b.ha.Pass()
	_, s, st = b.vm("db")
	if s.Host == first || s.Host == cluster+"/esx-02" || st.HA == nil || st.HA.Attempts != 2 || st.HA.RestartedFrom != first {
		t.Fatalf("db's second attempt: on %s (first %s), HA %+v", s.Host, first, st.HA)
	}
	if n := b.restarts("db"); n != 2 {
		t.Errorf("%d restart events, want 2", n)
	}
	// The second host fails too, but starts it before the next attempt is due.
	second := s.Host
	b.reportFailed("db", "start: exec format error")
	b.ha.Pass()
	b.report("db")
	b.clock.now = b.clock.now.Add(7 * time.Second) // past the 6 s before attempt 3
	b.ha.Pass()
	if _, s, st = b.vm("db"); s.Host != second || st.HA == nil || st.HA.Attempts != 0 || st.HA.LastError != "" {
		t.Errorf("db running on %s: now on %s, HA %+v", second, s.Host, st.HA)
	}
	if n := b.restarts("db"); n != 2 {
		t.Errorf("%d restart events, want 2", n)
	}
}
