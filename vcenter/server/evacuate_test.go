package server

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/sim"
)

// enterMaintenance asks for maintenance mode on host name as psc does.
func (e *env) enterMaintenance(t *testing.T, name string, evacuateOff bool, timeout int) {
	t.Helper()
	o, err := e.admin.Get(ctxT(t), cluster+"/"+name)
	if err != nil {
		t.Fatal(err)
	}
	o.SetSpec(api.HostSpec{Maintenance: true, EvacuatePoweredOff: evacuateOff, MaintenanceTimeoutSeconds: timeout})
	if _, err := e.admin.Update(ctxT(t), o); err != nil {
		t.Fatalf("entering maintenance on %s: %v", name, err)
	}
}

func (e *env) hostSpec(t *testing.T, name string) api.HostSpec {
	t.Helper()
	o, err := e.admin.Get(ctxT(t), cluster+"/"+name)
	if err != nil {
		t.Fatal(err)
	}
	var s api.HostSpec
	_ = o.DecodeSpec(&s)
	return s
}

// readyWatch counts, at every change the store commits, the replica set's
// members that are running, ready and not being removed, and keeps the
// lowest count seen once armed.
type readyWatch struct {
	mu      sync.Mutex
	owner   string
	ready   map[string]bool
	armed   bool
	lowest  int
	changes int // observations while armed
}

func (w *readyWatch) observe(old, new *api.Object) {
	o := new
	if o == nil {
		o = old
	}
	if o.Kind != api.KindVirtualMachine || o.Owner != w.owner {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if new == nil {
		delete(w.ready, o.Path)
	} else {
		var s api.VMSpec
		var st api.VMStatus
		_ = new.DecodeSpec(&s)
		_ = new.DecodeStatus(&st)
		w.ready[o.Path] = st.Ready && st.PowerState == api.PoweredOn && !s.Removing
	}
	if !w.armed {
		return
	}
	n := 0
	for _, r := range w.ready {
		if r {
			n++
		}
	}
	w.changes++
	w.lowest = min(w.lowest, n)
}

func (w *readyWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, r := range w.ready {
		if r {
			n++
		}
	}
	return n
}

// Maintenance with -evacuate on a host of three sim agents: the replica
// set's member there is replaced on another host before it stops, so the
// set never has fewer than 3 ready members at any committed change; the
// standalone VM is cold-migrated (same UID, another host, running there);
// the powered-off VM is re-registered elsewhere; the DaemonSet's member
// stops; then the host is in maintenance, each move an event.
func TestMaintenanceEvacuates(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three sim agents with gossip")
	}
	e := startVCenter(t, Config{Gossip: "127.0.0.1:0", Timings: testTimings()})
	e.inventory(t, nil)
	for _, n := range []string{"esx-01", "esx-02", "esx-03"} {
		e.startAgent(t, n, sim.New(8000, 16384, ""), e.s.JoinToken())
	}
	for _, n := range []string{"esx-01", "esx-02", "esx-03"} {
		e.waitState(t, n, api.HostConnected, 30*time.Second)
	}
	const rs = dc + "/replicaset/web"
	w := &readyWatch{owner: rs, ready: map[string]bool{}, lowest: 1 << 30}
	e.s.store.AddIndex(w.observe)
	e.mustCreate(t, api.New(api.KindReplicaSet, rs, rsSpec(rootRP, 3, map[string]string{"app": "web"})))
	ds := api.DaemonSetSpec{Pool: rootRP, Selector: api.LabelSelector{MatchLabels: map[string]string{"app": "mon"}},
		Template: api.VMTemplate{Labels: map[string]string{"app": "mon"}, Spec: api.VMSpec{NumCPU: 1, MemoryMB: 64,
			Containers: []api.Container{{Name: "main", Image: "busybox"}}}}}
	e.mustCreate(t, api.New(api.KindDaemonSet, dc+"/daemonset/mon", ds))
	db := vm("db", rootRP, 0, api.PoweredOn)
	var dbSpec api.VMSpec
	_ = db.DecodeSpec(&dbSpec)
	dbSpec.Containers = []api.Container{{Name: "main", Image: "busybox"}}
	db.SetSpec(dbSpec)
	db = e.mustCreate(t, db)
	eventually(t, "3 ready members and db running", 30*time.Second, func() bool {
		_, st := e.vmStatus(t, "db")
		return w.count() == 3 && st.PowerState == api.PoweredOn
	})
	dbSpec, _ = e.vmStatus(t, "db")
	target := api.Base(dbSpec.Host)
	cold := vm("cold", rootRP, 0, api.PoweredOff)
	var cs api.VMSpec
	_ = cold.DecodeSpec(&cs)
	cs.Host = cluster + "/" + target
	cold.SetSpec(cs)
	e.mustCreate(t, cold)

	w.mu.Lock()
	w.armed = true
	w.mu.Unlock()
	e.enterMaintenance(t, target, true, 60)
	if st := e.hostStatus(t, target); st.State != api.HostConnected || st.Maintenance == nil || st.Maintenance.VMsLeft == 0 {
		t.Fatalf("%s right after host.maintenance.enter: state %s, progress %+v; want connected (entering) with VMs left", target, st.State, st.Maintenance)
	}
	e.waitState(t, target, api.HostMaintenance, 60*time.Second)

	w.mu.Lock()
	lowest, changes := w.lowest, w.changes
	w.mu.Unlock()
	if changes == 0 {
		t.Fatal("no member change observed during the evacuation")
	}
	if lowest < 3 {
		t.Errorf("ready members fell to %d during the evacuation (over %d observed changes), want >= 3", lowest, changes)
	}
	for _, m := range e.members(t, rs) {
		var s api.VMSpec
		_ = m.DecodeSpec(&s)
		if s.Host == cluster+"/"+target {
			t.Errorf("member %s is still on %s", m.Path, target)
		}
	}
	for _, m := range e.members(t, dc+"/daemonset/mon") {
		var s api.VMSpec
		_ = m.DecodeSpec(&s)
		if s.Host == cluster+"/"+target && !s.Removing {
			t.Errorf("DaemonSet member %s still runs on %s", m.Path, target)
		}
	}
	o, spec, _ := e.getVM(t, "db")
	if o.UID != db.UID || spec.Host == cluster+"/"+target || spec.PowerState != api.PoweredOn {
		t.Errorf("db after evacuation: uid %s (was %s), host %s, power %s", o.UID, db.UID, spec.Host, spec.PowerState)
	}
	eventually(t, "db running on its new host", 30*time.Second, func() bool {
		_, st := e.vmStatus(t, "db")
		return st.PowerState == api.PoweredOn && st.Host == spec.Host
	})
	_, coldSpec, _ := e.getVM(t, "cold")
	if coldSpec.Host == cluster+"/"+target || coldSpec.PowerState != api.PoweredOff {
		t.Errorf("cold after -evacuate: host %s, power %s; want another host, powered off", coldSpec.Host, coldSpec.PowerState)
	}
	if !hasEvent(e.eventsFor(t, dc+"/vm/db"), "VmMigratedEvent", "migrated from "+target) {
		t.Errorf("no VmMigratedEvent for db: %v", eventTypes(e.eventsFor(t, dc+"/vm/db")))
	}
	for _, ev := range e.eventsFor(t, dc+"/vm/db") {
		if ev.Type == "VmMigratedEvent" && ev.User != "controller:evacuation" {
			t.Errorf("db's migration recorded as %q, want controller:evacuation", ev.User)
		}
	}
	if !hasEvent(e.eventsFor(t, cluster+"/"+target), "EnteredMaintenanceModeEvent", "entered maintenance mode") {
		t.Errorf("no EnteredMaintenanceModeEvent: %v", eventTypes(e.eventsFor(t, cluster+"/"+target)))
	}
	if p := e.hostStatus(t, target).Maintenance; p == nil || !p.Done || p.VMsLeft != 0 || p.Moved < 4 {
		t.Errorf("progress at the end: %+v; want done, 0 left, >= 4 moved", p)
	}
}

// A maintenance that would break HA's failover level waits, saying why
// (status and one event), and at its timeout the host is back in service
// with the reason, its VM still where it ran.
func TestMaintenanceWaitsForHAAndTimesOut(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, &api.ClusterSpec{HA: api.HAConfig{Enabled: true, AdmissionControlEnabled: true, HostFailuresTolerated: 1}})
	e.joinHost(t, "esx-01", 10000, 65536)
	e.joinHost(t, "esx-02", 10000, 65536)
	e.mustCreate(t, vm("a", rootRP, 4000, api.PoweredOn))
	_, s, _ := e.getVM(t, "a")
	from := api.Base(s.Host)
	e.enterMaintenance(t, from, false, 2)
	eventually(t, "the HA wait in the host's progress", 10*time.Second, func() bool {
		p := e.hostStatus(t, from).Maintenance
		return p != nil && strings.Contains(p.Waiting, "HA admission control") && strings.Contains(p.Waiting, "cannot enter maintenance mode now")
	})
	if !hasEvent(e.eventsFor(t, cluster+"/"+from), "EnteringMaintenanceModeWaitingEvent", "HA admission control") {
		t.Errorf("no waiting event: %v", eventTypes(e.eventsFor(t, cluster+"/"+from)))
	}
	eventually(t, "the timeout to take the host back", 20*time.Second, func() bool { return !e.hostSpec(t, from).Maintenance })
	st := e.hostStatus(t, from)
	if st.State != api.HostConnected || st.Maintenance == nil || !strings.Contains(st.Maintenance.Error, "maintenance timeout of 2s expired with 1 of 1 VMs left") ||
		!strings.Contains(st.Maintenance.Error, "HA admission control") {
		t.Errorf("after the timeout: state %s, progress %+v", st.State, st.Maintenance)
	}
	if !hasEvent(e.eventsFor(t, cluster+"/"+from), "EnterMaintenanceModeFailedEvent", "back in service") {
		t.Errorf("no failure event: %v", eventTypes(e.eventsFor(t, cluster+"/"+from)))
	}
	if _, s, _ := e.getVM(t, "a"); api.Base(s.Host) != from || s.PowerState != api.PoweredOn {
		t.Errorf("a moved or stopped: host %s, power %s", s.Host, s.PowerState)
	}
	// Back in service: new VMs land there again.
	if _, err := e.admin.Update(ctxT(t), mustGet(t, e, cluster+"/"+from)); err != nil {
		t.Errorf("host spec after the timeout is not writable as is: %v", err)
	}
}

func mustGet(t *testing.T, e *env, path string) *api.Object {
	t.Helper()
	o, err := e.admin.Get(ctxT(t), path)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// A replica set whose member cannot be replaced elsewhere (no room): the
// timeout gives up and the set heals back to its replicas, none left
// stopping or surplus.
func TestMaintenanceTimeoutHealsReplicaSet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two sim agents with gossip")
	}
	e := startVCenter(t, Config{Gossip: "127.0.0.1:0", Timings: testTimings()})
	e.inventory(t, nil)
	for _, n := range []string{"esx-01", "esx-02"} {
		e.startAgent(t, n, sim.New(10000, 65536, ""), e.s.JoinToken())
		e.waitState(t, n, api.HostConnected, 30*time.Second)
	}
	const rs = dc + "/replicaset/big"
	spec := rsSpec(rootRP, 2, map[string]string{"app": "big"})
	spec.Template.Spec.CPU = alloc(6000, -1, false)
	e.mustCreate(t, api.New(api.KindReplicaSet, rs, spec))
	eventually(t, "2 members ready", 30*time.Second, func() bool {
		n := 0
		for _, m := range e.members(t, rs) {
			var st api.VMStatus
			_ = m.DecodeStatus(&st)
			if st.Ready {
				n++
			}
		}
		return n == 2
	})
	e.enterMaintenance(t, "esx-01", false, 2)
	eventually(t, "the refused replacement in the set's status", 10*time.Second, func() bool {
		o := mustGet(t, e, rs)
		var st api.ReplicaSetStatus
		_ = o.DecodeStatus(&st)
		return len(st.Waiting) > 0 && strings.Contains(st.Waiting[0].Message, "insufficient cpu") && strings.Contains(st.Waiting[0].VM, "replacing a member on esx-01")
	})
	eventually(t, "the timeout to take esx-01 back", 20*time.Second, func() bool { return !e.hostSpec(t, "esx-01").Maintenance })
	if p := e.hostStatus(t, "esx-01").Maintenance; p == nil || !strings.Contains(p.Error, "timeout") {
		t.Errorf("progress after the timeout: %+v", p)
	}
	eventually(t, "the set back at 2 members, one per host", 20*time.Second, func() bool {
		ms := e.members(t, rs)
		hosts := map[string]bool{}
		for _, m := range ms {
			var s api.VMSpec
			_ = m.DecodeSpec(&s)
			if s.Removing || s.PowerState != api.PoweredOn {
				return false
			}
			hosts[s.Host] = true
		}
		return len(ms) == 2 && len(hosts) == 2
	})
}

// vm.migrate: a cold migration keeps the VM's identity and moves it to the
// named host, or where DRS chooses; refusals name the reason and change
// nothing.
func TestMigrate(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	e.joinHost(t, "esx-01", 10000, 65536)
	e.joinHost(t, "esx-02", 10000, 65536)
	e.joinHost(t, "esx-03", 4000, 65536)
	a := e.mustCreate(t, vm("a", rootRP, 5000, api.PoweredOn))
	var s api.VMSpec
	_ = a.DecodeSpec(&s)
	other := map[string]string{cluster + "/esx-01": cluster + "/esx-02", cluster + "/esx-02": cluster + "/esx-01"}[s.Host]
	if other == "" {
		t.Fatalf("a placed on %s, want esx-01 or esx-02", s.Host)
	}
	a.Labels = map[string]string{"tier": "db"}
	if a, _ = e.admin.Update(ctxT(t), a); a == nil {
		t.Fatal("labelling a failed")
	}

	out, err := e.admin.Migrate(ctxT(t), dc+"/vm/a", other)
	if err != nil {
		t.Fatalf("migrate a to %s: %v", other, err)
	}
	var ns api.VMSpec
	_ = out.DecodeSpec(&ns)
	// Recorded, not moved: a stays registered where it runs until that
	// host says it stopped it.
	if out.UID != a.UID || ns.Host != s.Host || ns.PowerState != api.PoweredOn || ns.Migration == nil || ns.Migration.Host != other || ns.Migration.User != "admin" {
		t.Fatalf("after migrate: uid %s/%s host %s power %s migration %+v; want still on %s, migrating to %s", out.UID, a.UID, ns.Host, ns.PowerState, ns.Migration, s.Host, other)
	}
	if !hasEvent(e.eventsFor(t, a.Path), "VmBeingMigratedEvent", "stopping it on "+api.Base(s.Host)+", then starting it on "+api.Base(other)) {
		t.Errorf("no VmBeingMigratedEvent: %v", eventTypes(e.eventsFor(t, a.Path)))
	}
	if ts := e.tasksFor(t, a.Path); len(ts) == 0 || ts[len(ts)-1].Name != "MigrateVM_Task" || ts[len(ts)-1].Initiator != "admin" {
		t.Errorf("tasks: %+v", ts)
	}
	// Its 5000 MHz are held on both hosts meanwhile: 6000 fits on neither.
	if _, err := e.admin.Create(ctxT(t), vm("big", rootRP, 6000, api.PoweredOn)); !errors.Is(err, api.ErrInsufficientResources) {
		t.Errorf("a 6000 MHz VM while a moves between the two 10000 MHz hosts: %v, want insufficient resources", err)
	}
	// Asking again for the same move is a no-op; another destination waits.
	if _, err := e.admin.Migrate(ctxT(t), dc+"/vm/a", cluster+"/esx-03"); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "is being migrated to "+api.Base(other)) {
		t.Errorf("migrate a elsewhere mid-migration: %v", err)
	}
	// The record is vcenter's: an edit dropping it is refused.
	{
		o, spec, _ := e.getVM(t, "a")
		spec.Migration = nil
		o.SetSpec(spec)
		if _, err := e.admin.Update(ctxT(t), o); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "spec.migration is vcenter's record") {
			t.Errorf("editing spec.migration away: %v", err)
		}
	}
	// A report its host wrote before it saw the migration (no echo) does
	// not complete it, nor does a report from the destination.
	e.report(t, "a", s.Host, api.VMStatus{PowerState: api.PoweredOff}, nil)
	e.report(t, "a", other, api.VMStatus{PowerState: api.PoweredOff, MigrationStopped: ns.Migration.ID}, api.ErrConflict)
	if _, cur, _ := e.getVM(t, "a"); cur.Host != s.Host || cur.Migration == nil {
		t.Fatalf("a moved on a report that does not confirm the stop: host %s migration %+v", cur.Host, cur.Migration)
	}
	e.report(t, "a", s.Host, api.VMStatus{PowerState: api.PoweredOff, MigrationStopped: ns.Migration.ID}, nil)
	out, ns, nst := e.getVM(t, "a")
	if out.UID != a.UID || out.Path != a.Path || out.Labels["tier"] != "db" || ns.Pool != rootRP || ns.Host != other || ns.PowerState != api.PoweredOn || ns.Migration != nil {
		t.Errorf("after the stop: uid %s/%s path %s labels %v pool %s host %s power %s migration %+v", out.UID, a.UID, out.Path, out.Labels, ns.Pool, ns.Host, ns.PowerState, ns.Migration)
	}
	if nst.Host != other || nst.PowerState == api.PoweredOn {
		t.Errorf("status after the move: host %q (%s), want %s, off until it reports", nst.Host, nst.PowerState, other)
	}
	if !hasEvent(e.eventsFor(t, a.Path), "VmMigratedEvent", "migrated from "+api.Base(s.Host)+" to "+api.Base(other)+" by admin") {
		t.Errorf("no VmMigratedEvent: %v", eventTypes(e.eventsFor(t, a.Path)))
	}
	e.report(t, "a", other, api.VMStatus{PowerState: api.PoweredOn}, nil)

	// Without a host DRS chooses among the others: esx-03 cannot take
	// 5000 MHz, so it goes back.
	out, err = e.admin.Migrate(ctxT(t), dc+"/vm/a", "")
	if err != nil {
		t.Fatalf("migrate a (DRS): %v", err)
	}
	_ = out.DecodeSpec(&ns)
	if ns.Migration == nil || ns.Migration.Host != s.Host || !strings.Contains(ns.Migration.Why, "DRS chose it") {
		t.Errorf("DRS moves a to %+v, want %s", ns.Migration, s.Host)
	}
	e.report(t, "a", other, api.VMStatus{PowerState: api.PoweredOff, MigrationStopped: ns.Migration.ID}, nil)
	if _, cur, _ := e.getVM(t, "a"); cur.Host != s.Host {
		t.Errorf("a after the DRS migration: %s, want %s", cur.Host, s.Host)
	}
	e.report(t, "a", s.Host, api.VMStatus{PowerState: api.PoweredOn}, nil)

	refusals := []struct {
		name, vm, host string
		want           error
		msg            string
	}{
		{"no room", "a", cluster + "/esx-03", api.ErrInsufficientResources, "not enough unreserved CPU"},
		{"another cluster", "a", "/dc1/host/c2/esx-01", api.ErrInvalid, "podsphere migrates within a cluster"},
		{"no such host", "a", cluster + "/esx-09", api.ErrInvalid, "host /dc1/host/c1/esx-09 does not exist"},
		{"not a host", "a", rootRP, api.ErrInvalid, "not a host"},
		{"not a VM", "Resources", cluster + "/esx-01", api.ErrInvalid, ""},
	}
	for _, r := range refusals {
		before, _ := e.admin.Get(ctxT(t), dc+"/vm/a")
		path := dc + "/vm/" + r.vm
		if r.vm == "Resources" {
			path = rootRP
		}
		_, err := e.admin.Migrate(ctxT(t), path, r.host)
		if !errors.Is(err, r.want) || !strings.Contains(err.Error(), r.msg) {
			t.Errorf("%s: %v, want %v naming %q", r.name, err, r.want, r.msg)
		}
		if after, _ := e.admin.Get(ctxT(t), dc+"/vm/a"); after.ResourceVersion != before.ResourceVersion {
			t.Errorf("%s: the refused migration changed a", r.name)
		}
	}
	if !hasEvent(e.eventsFor(t, a.Path), "VmFailedMigrateEvent", "not enough unreserved CPU") {
		t.Errorf("no VmFailedMigrateEvent: %v", eventTypes(e.eventsFor(t, a.Path)))
	}

	// The VM does not compete with itself: a pool whose fixed reservation
	// it fills alone still lets it move.
	e.mustCreate(t, pool(rootRP+"/fixed", alloc(3000, -1, false), nil))
	e.mustCreate(t, vm("f", rootRP+"/fixed", 3000, api.PoweredOn))
	_, fs, _ := e.getVM(t, "f")
	dest := map[string]string{cluster + "/esx-01": cluster + "/esx-02", cluster + "/esx-02": cluster + "/esx-01", cluster + "/esx-03": cluster + "/esx-01"}[fs.Host]
	if _, err := e.admin.Migrate(ctxT(t), dc+"/vm/f", dest); err != nil {
		t.Errorf("migrate f, which fills its pool's reservation: %v", err)
	}
	fo, fs2, _ := e.getVM(t, "f")
	if fs2.Migration == nil {
		t.Fatalf("f: no migration recorded")
	}
	e.report(t, "f", fs.Host, api.VMStatus{PowerState: api.PoweredOff, MigrationStopped: fs2.Migration.ID}, nil)
	if _, fs3, _ := e.getVM(t, "f"); fs3.Host != dest {
		t.Errorf("f after its host stopped it: on %s (%v), want %s", fs3.Host, eventTypes(e.eventsFor(t, fo.Path)), dest)
	}

	// A host in maintenance takes nothing.
	e.enterMaintenance(t, "esx-03", false, 0)
	e.mustCreate(t, vm("small", rootRP, 0, api.PoweredOn))
	if _, err := e.admin.Migrate(ctxT(t), dc+"/vm/small", cluster+"/esx-03"); !errors.Is(err, api.ErrInsufficientResources) || !strings.Contains(err.Error(), "in maintenance mode") {
		t.Errorf("migrate to a host in maintenance: %v", err)
	}
	// A pinned VM moves only where it is told.
	p := vm("pinned", rootRP, 0, api.PoweredOn)
	var ps api.VMSpec
	_ = p.DecodeSpec(&ps)
	ps.Host, ps.Pinned = cluster+"/esx-01", true
	p.SetSpec(ps)
	e.mustCreate(t, p)
	if _, err := e.admin.Migrate(ctxT(t), dc+"/vm/pinned", ""); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "pinned to esx-01: name the destination with -host") {
		t.Errorf("migrate a pinned VM without -host: %v", err)
	}
	out, err = e.admin.Migrate(ctxT(t), dc+"/vm/pinned", cluster+"/esx-02")
	if err != nil {
		t.Fatalf("migrate pinned -host esx-02: %v", err)
	}
	_ = out.DecodeSpec(&ps)
	e.report(t, "pinned", cluster+"/esx-01", api.VMStatus{PowerState: api.PoweredOff, MigrationStopped: ps.Migration.ID}, nil)
	_, ps, _ = e.getVM(t, "pinned")
	if ps.Host != cluster+"/esx-02" || !ps.Pinned {
		t.Errorf("pinned after migrate: host %s pinned %v, want pinned to esx-02", ps.Host, ps.Pinned)
	}
	checkMigrateAbandoned(t, e)
}

// checkMigrateAbandoned (TestMigrate, on its inventory): a power-off
// mid-migration cancels it, the VM staying where it is registered; a
// destination that can no longer take the VM once its host stopped it
// (here: it entered maintenance) abandons the move and powers the VM on
// again where it was, each with a VmFailedMigrateEvent saying why.
func checkMigrateAbandoned(t *testing.T, e *env) {
	for _, n := range []string{"c", "d"} {
		o := vm(n, rootRP, 0, api.PoweredOn)
		var s api.VMSpec
		_ = o.DecodeSpec(&s)
		s.Host, s.Pinned = cluster+"/esx-01", true
		o.SetSpec(s)
		e.mustCreate(t, o)
		if _, err := e.admin.Migrate(ctxT(t), dc+"/vm/"+n, cluster+"/esx-02"); err != nil {
			t.Fatalf("migrate %s: %v", n, err)
		}
	}
	if _, err := e.admin.Power(ctxT(t), dc+"/vm/d", "off"); err != nil {
		t.Fatal(err)
	}
	if _, s, _ := e.getVM(t, "d"); s.Migration != nil || s.Host != cluster+"/esx-01" || s.PowerState != api.PoweredOff {
		t.Errorf("d powered off mid-migration: host %s power %s migration %+v; want off on esx-01, no migration", s.Host, s.PowerState, s.Migration)
	}
	if !hasEvent(e.eventsFor(t, dc+"/vm/d"), "VmFailedMigrateEvent", "it was powered off by admin before it stopped") {
		t.Errorf("d: %v", eventTypes(e.eventsFor(t, dc+"/vm/d")))
	}
	_, cs, _ := e.getVM(t, "c")
	e.enterMaintenance(t, "esx-02", false, 0)
	e.report(t, "c", cluster+"/esx-01", api.VMStatus{PowerState: api.PoweredOff, MigrationStopped: cs.Migration.ID}, nil)
	if _, s, _ := e.getVM(t, "c"); s.Migration != nil || s.Host != cluster+"/esx-01" || s.PowerState != api.PoweredOn {
		t.Errorf("c after its destination went into maintenance: host %s power %s migration %+v; want on again on esx-01", s.Host, s.PowerState, s.Migration)
	}
	if !hasEvent(e.eventsFor(t, dc+"/vm/c"), "VmFailedMigrateEvent", "could not be started on esx-02 after esx-01 stopped it") ||
		!hasEvent(e.eventsFor(t, dc+"/vm/c"), "VmFailedMigrateEvent", "is powered on again on esx-01") {
		t.Errorf("c: %v", eventTypes(e.eventsFor(t, dc+"/vm/c")))
	}
}

// report writes VM name's status as host (a path) reports it, as its
// agent would; want is the error expected (nil: accepted).
func (e *env) report(t *testing.T, name, host string, st api.VMStatus, want error) {
	t.Helper()
	o := mustGet(t, e, dc+"/vm/"+name)
	st.Host = host
	o.SetStatus(st)
	_, err := e.join.UpdateStatus(ctxT(t), o)
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("report of %s from %s: %v, want %v", name, api.Base(host), err, want)
	}
}
