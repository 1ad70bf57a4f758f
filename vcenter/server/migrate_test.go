package server

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/host/agent"
	"github.com/podsphere/podsphere/host/sim"
)

// hostWatch sees the sim runtimes of a test's agents directly: after
// every start on any of them (the only way a VM comes to run) it counts
// the hosts running that VM, and a sampler counts them again on every
// pass of its loop, so the test knows the most hosts that ever ran a VM
// at once. A host whose agent the test killed is left out once marked
// dead: its copy is fenced in real life (HA's business, not migration's).
type hostWatch struct {
	mu     sync.Mutex
	rts    map[string]*watchedRT
	dead   map[string]bool
	most   map[string]int // VM path -> most live hosts running it at once
	passes int            // sampler passes
	starts int
}

// watchedRT is a sim runtime that tells its hostWatch of every start and
// whose Stop can be held (gate) to catch a migration while it stops.
type watchedRT struct {
	*sim.Driver
	w        *hostWatch
	name     string
	gate     chan struct{} // closed: stops go through
	stopping chan string   // VM paths whose Stop began (buffered)
}

func newHostWatch(t *testing.T, hosts ...string) *hostWatch {
	w := &hostWatch{rts: map[string]*watchedRT{}, dead: map[string]bool{}, most: map[string]int{}}
	for _, h := range hosts {
		open := make(chan struct{})
		close(open)
		w.rts[h] = &watchedRT{Driver: sim.New(8000, 16384, ""), w: w, name: h, gate: open, stopping: make(chan string, 16)}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			w.mu.Lock()
			w.countAll(ctx)
			w.passes++
			w.mu.Unlock()
			time.Sleep(time.Millisecond) // a sampling rate, not a wait for an outcome
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// countAll records, for every VM some live host runs, how many run it. Call with mu held.
func (w *hostWatch) countAll(ctx context.Context) {
	n := map[string]int{}
	for h, rt := range w.rts {
		if w.dead[h] {
			continue
		}
		vms, err := rt.Driver.List(ctx)
		if err != nil {
			continue
		}
		for _, v := range vms {
			if v.PowerState == api.PoweredOn {
				n[v.Path]++
			}
		}
	}
	for p, c := range n {
		w.most[p] = max(w.most[p], c)
	}
}

func (w *hostWatch) mostHosts(path string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.most[path]
}

func (w *hostWatch) pass() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.passes
}

// runsOn lists the live hosts whose runtime runs the VM at path.
func (w *hostWatch) runsOn(path string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for h, rt := range w.rts {
		vms, _ := rt.Driver.List(context.Background())
		for _, v := range vms {
			if v.Path == path && v.PowerState == api.PoweredOn && !w.dead[h] {
				out = append(out, h)
			}
		}
	}
	return out
}

func (r *watchedRT) Start(ctx context.Context, id string) error {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	if err := r.Driver.Start(ctx, id); err != nil {
		return err
	}
	r.w.starts++
	r.w.countAll(ctx)
	return nil
}

func (r *watchedRT) Stop(ctx context.Context, id string, timeout time.Duration) error {
	if st, err := r.Driver.Status(ctx, id); err == nil {
		select {
		case r.stopping <- st.Path:
		default:
		}
	}
	r.w.mu.Lock()
	gate := r.gate
	r.w.mu.Unlock()
	select {
	case <-gate:
	case <-ctx.Done():
		return ctx.Err() // the agent died while stopping it: it runs on
	}
	return r.Driver.Stop(ctx, id, timeout)
}

// hold makes host's stops wait until the returned release is called.
func (w *hostWatch) hold(host string) (release func()) {
	g := make(chan struct{})
	w.mu.Lock()
	w.rts[host].gate = g
	w.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(g) }) }
}

// startWatchedAgent runs a host agent on the watched runtime of host.
func (e *env) startWatchedAgent(t *testing.T, w *hostWatch, host string) *runningAgent {
	t.Helper()
	a, err := agent.New(agent.Config{Name: host, Cluster: cluster, VCenter: e.url, JoinToken: e.s.JoinToken(),
		Join: []string{e.s.GossipAddr()}, GossipBind: "127.0.0.1:0", Runtime: w.rts[host],
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

// migrationLab is a vcenter with gossip and two or three watched sim
// agents, and db (not pinned) running on the first host.
func migrationLab(t *testing.T, cfg Config, spec *api.ClusterSpec, hosts ...string) (*env, *hostWatch, map[string]*runningAgent) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs sim agents with gossip")
	}
	cfg.Gossip, cfg.Timings = "127.0.0.1:0", testTimings()
	e := startVCenter(t, cfg)
	e.inventory(t, spec)
	w := newHostWatch(t, hosts...)
	agents := map[string]*runningAgent{}
	for _, h := range hosts {
		agents[h] = e.startWatchedAgent(t, w, h)
	}
	for _, h := range hosts {
		e.waitState(t, h, api.HostConnected, 30*time.Second)
	}
	db := vm("db", rootRP, 1000, api.PoweredOn)
	var s api.VMSpec
	_ = db.DecodeSpec(&s)
	s.Containers = []api.Container{{Name: "main", Image: "busybox"}}
	db.SetSpec(s)
	for _, h := range hosts[1:] {
		setMaintenanceRetrying(t, e, h, true) // DRS has hosts[0] only
	}
	e.mustCreate(t, db)
	for _, h := range hosts[1:] {
		setMaintenanceRetrying(t, e, h, false)
	}
	eventually(t, "db running on "+hosts[0], 30*time.Second, func() bool {
		_, st := e.vmStatus(t, "db")
		return st.PowerState == api.PoweredOn && st.Host == cluster+"/"+hosts[0]
	})
	return e, w, agents
}

// setMaintenanceRetrying sets a host's maintenance flag, re-reading the
// host when its own status report changed it in between.
func setMaintenanceRetrying(t *testing.T, e *env, host string, on bool) {
	t.Helper()
	for i := 0; ; i++ {
		o := mustGet(t, e, cluster+"/"+host)
		o.SetSpec(api.HostSpec{Maintenance: on})
		_, err := e.admin.Update(ctxT(t), o)
		if err == nil {
			return
		}
		if !errors.Is(err, api.ErrConflict) || i == 10 {
			t.Fatalf("maintenance %s %v: %v", host, on, err)
		}
	}
}

// confirmStops reports, as the hosts' agents would, the VMs being
// cold-migrated off host stopped there, and the VMs migrated from it
// running where they went (for tests whose hosts have no agent).
func (e *env) confirmStops(t *testing.T, host string) {
	t.Helper()
	l, err := e.admin.List(ctxT(t), client.ListOptions{Kind: api.KindVirtualMachine})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range l.Items {
		var spec api.VMSpec
		var st api.VMStatus
		_ = o.DecodeSpec(&spec)
		_ = o.DecodeStatus(&st)
		switch {
		case spec.Migration != nil && spec.Host == cluster+"/"+host:
			st = api.VMStatus{Host: spec.Host, PowerState: api.PoweredOff, MigrationStopped: spec.Migration.ID}
		case spec.Migration == nil && spec.PowerState == api.PoweredOn && st.Host == spec.Host && st.PowerState != api.PoweredOn:
			st = api.VMStatus{Host: spec.Host, PowerState: api.PoweredOn} // its new host started it
		default:
			continue
		}
		o.SetStatus(st)
		if _, err := e.join.UpdateStatus(ctxT(t), o); err != nil && !errors.Is(err, api.ErrConflict) {
			t.Fatalf("confirming the stop of %s on %s: %v", o.Path, host, err)
		}
	}
}

// waitPasses waits until the sampler has looked at the runtimes n more times.
func waitPasses(t *testing.T, w *hostWatch, n int) {
	t.Helper()
	from := w.pass()
	eventually(t, "the runtime sampler to pass", 10*time.Second, func() bool { return w.pass() >= from+n })
}

// A cold migration of a running VM stops it on its host before it starts
// on the destination: while the old host is still stopping it, the VM
// stays registered there and the destination does not run it; the
// sampler and every start on either runtime never see it run on two
// hosts; it ends running on the destination as the same VM, each step
// an event recorded as the admin who asked.
func TestMigrateStopsBeforeItStarts(t *testing.T) {
	e, w, _ := migrationLab(t, Config{}, nil, "esx-01", "esx-02")
	const path = dc + "/vm/db"
	before := mustGet(t, e, path)
	release := w.hold("esx-01")
	defer release()
	if _, err := e.admin.Migrate(ctxT(t), path, cluster+"/esx-02"); err != nil {
		t.Fatalf("migrate db: %v", err)
	}
	select {
	case p := <-w.rts["esx-01"].stopping:
		if p != path {
			t.Fatalf("esx-01 stops %s, want db", p)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("esx-01 did not begin stopping db")
	}
	waitPasses(t, w, 5)
	spec, st := e.vmStatus(t, "db")
	if spec.Host != cluster+"/esx-01" || spec.Migration == nil || spec.Migration.Host != cluster+"/esx-02" {
		t.Errorf("db while esx-01 stops it: host %s, migration %+v; want still on esx-01, migrating to esx-02", spec.Host, spec.Migration)
	}
	if on := w.runsOn(path); len(on) != 1 || on[0] != "esx-01" {
		t.Errorf("db runs on %v while esx-01 stops it, want esx-01 only", on)
	}
	if st.Host != cluster+"/esx-01" {
		t.Errorf("db's status from %s while esx-01 stops it", st.Host)
	}
	release()
	eventually(t, "db running on esx-02", 30*time.Second, func() bool {
		spec, st := e.vmStatus(t, "db")
		return spec.Migration == nil && st.PowerState == api.PoweredOn && st.Host == cluster+"/esx-02"
	})
	waitPasses(t, w, 5)
	if n := w.mostHosts(path); n != 1 {
		t.Errorf("db ran on %d hosts at once during its migration (%d sampler passes, %d starts), want 1", n, w.pass(), w.starts)
	}
	if on := w.runsOn(path); len(on) != 1 || on[0] != "esx-02" {
		t.Errorf("db runs on %v after the migration, want esx-02 only", on)
	}
	after := mustGet(t, e, path)
	if after.UID != before.UID {
		t.Errorf("db's UID changed: %s -> %s", before.UID, after.UID)
	}
	evs := e.eventsFor(t, path)
	being, done := -1, -1
	for i, ev := range evs {
		switch ev.Type {
		case "VmBeingMigratedEvent":
			being = i
		case "VmMigratedEvent":
			done = i
			if ev.User != "admin" || !strings.Contains(ev.Message, "db migrated from esx-01 to esx-02 by admin") {
				t.Errorf("VmMigratedEvent by %q: %s", ev.User, ev.Message)
			}
		}
	}
	if being < 0 || done < being {
		t.Errorf("events: want VmBeingMigratedEvent then VmMigratedEvent: %v", eventTypes(evs))
	}
}

// A vcenter restart in the middle of a migration (the old host still
// stopping the VM while vcenter is down) finishes it: the inventory holds
// the migration, the old host's report after the restart completes it,
// and the VM never runs on two hosts.
func TestMigrateSurvivesVCenterRestart(t *testing.T) {
	e, w, _ := migrationLab(t, Config{}, nil, "esx-01", "esx-02")
	const path = dc + "/vm/db"
	release := w.hold("esx-01")
	defer release()
	if _, err := e.admin.Migrate(ctxT(t), path, cluster+"/esx-02"); err != nil {
		t.Fatalf("migrate db: %v", err)
	}
	select {
	case <-w.rts["esx-01"].stopping:
	case <-time.After(20 * time.Second):
		t.Fatal("esx-01 did not begin stopping db")
	}
	addr, gossipAddr := e.s.Addr(), e.s.GossipAddr()
	if err := e.s.Close(); err != nil {
		t.Fatalf("closing vcenter: %v", err)
	}
	release() // esx-01 stops db while vcenter is down: its report waits
	eventually(t, "db stopped on esx-01", 10*time.Second, func() bool { return len(w.runsOn(path)) == 0 })
	e2 := startVCenter(t, Config{DataDir: e.dir, Listen: addr, Gossip: gossipAddr, Timings: testTimings()})
	if spec, _ := e2.vmStatus(t, "db"); spec.Migration == nil && spec.Host != cluster+"/esx-02" {
		t.Fatalf("after the restart db is on %s with no migration: the migration was lost", spec.Host)
	}
	eventually(t, "db running on esx-02 after the restart", 60*time.Second, func() bool {
		spec, st := e2.vmStatus(t, "db")
		return spec.Migration == nil && st.PowerState == api.PoweredOn && st.Host == cluster+"/esx-02"
	})
	waitPasses(t, w, 5)
	if n := w.mostHosts(path); n != 1 {
		t.Errorf("db ran on %d hosts at once, want 1", n)
	}
	if !hasEvent(e2.eventsFor(t, path), "VmMigratedEvent", "db migrated from esx-01 to esx-02 by admin") {
		t.Errorf("no VmMigratedEvent: %v", eventTypes(e2.eventsFor(t, path)))
	}
}

// The old host fails before it stopped the VM: the migration is HA's to
// finish. HA restarts the VM once (on the migration's destination or
// another host), drops the migration in the same write with an event, the
// late confirmation of the old host changes nothing, and no two live
// hosts run it.
func TestMigrateSourceFailsHAFinishes(t *testing.T) {
	e, w, agents := migrationLab(t, Config{HATimings: haTestTimings()}, haCluster(), "esx-01", "esx-02", "esx-03")
	const path = dc + "/vm/db"
	release := w.hold("esx-01")
	defer release()
	if _, err := e.admin.Migrate(ctxT(t), path, cluster+"/esx-02"); err != nil {
		t.Fatalf("migrate db: %v", err)
	}
	select {
	case <-w.rts["esx-01"].stopping:
	case <-time.After(20 * time.Second):
		t.Fatal("esx-01 did not begin stopping db")
	}
	_, _, st := e.getVM(t, "db")
	w.mu.Lock()
	w.dead["esx-01"] = true // its copy runs on, as a failed host's does until it fences itself
	w.mu.Unlock()
	agents["esx-01"].stop(t)
	eventually(t, "HA restarting db off esx-01", 30*time.Second, func() bool {
		spec, st := e.vmStatus(t, "db")
		return spec.Migration == nil && st.PowerState == api.PoweredOn && st.Host == spec.Host && spec.Host != cluster+"/esx-01"
	})
	waitPasses(t, w, 5)
	if n := w.mostHosts(path); n != 1 {
		t.Errorf("db ran on %d live hosts at once, want 1", n)
	}
	evs := e.eventsFor(t, path)
	if !hasEvent(evs, "VmFailedMigrateEvent", "its host esx-01 failed before it stopped it; vSphere HA restarts it on") ||
		!hasEvent(evs, "VmRestartedOnAlternateHostEvent", "vSphere HA restarted db on") {
		t.Errorf("events: %v", eventTypes(evs))
	}
	n := 0
	for _, ev := range evs {
		if ev.Type == "VmRestartedOnAlternateHostEvent" {
			n++
		}
		if ev.Type == "VmMigratedEvent" {
			t.Errorf("the migration completed as well as HA's restart: %s", ev.Message)
		}
	}
	if n != 1 {
		t.Errorf("%d HA restarts of db, want 1", n)
	}
	// esx-01's confirmation arrives late: refused, nothing moves.
	o, spec, _ := e.getVM(t, "db")
	where := spec.Host
	late := api.VMStatus{Host: cluster + "/esx-01", PowerState: api.PoweredOff, HA: st.HA, MigrationStopped: "esx-02@1"}
	o.SetStatus(late)
	if _, err := e.join.UpdateStatus(ctxT(t), o); !errors.Is(err, api.ErrConflict) {
		t.Errorf("esx-01's late report: %v, want ErrConflict", err)
	}
	if _, spec, _ := e.getVM(t, "db"); spec.Host != where {
		t.Errorf("db moved to %s after esx-01's late report", spec.Host)
	}
}
