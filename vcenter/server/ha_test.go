package server

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/host/sim"
	"github.com/podsphere/podsphere/internal/hads"
)

// haTestTimings are HA's figures shortened so a drill takes a second or
// two: fencing 0.5 s + 0.5 s, locks 1 s + 0.25 s, attempts 0.2 s apart.
func haTestTimings() ha.Timings {
	t := ha.DefaultTimings()
	t.FenceTime, t.FenceMargin = 500*time.Millisecond, 500*time.Millisecond
	t.DatastoreHeartbeat, t.DatastoreTimeout = 100*time.Millisecond, 500*time.Millisecond
	t.LockLease, t.LockMargin = time.Second, 250*time.Millisecond
	t.RestartDelays = []time.Duration{0, 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond}
	return t
}

// haLab is a vcenter with gossip and HA, and sim host agents.
type haLab struct {
	*env
	agents map[string]*runningAgent
	rts    map[string]*sim.Driver
}

func haCluster() *api.ClusterSpec {
	return &api.ClusterSpec{HA: api.HAConfig{Enabled: true}}
}

func startHALab(t *testing.T, cfg Config, spec *api.ClusterSpec, cpuMHz int64, hosts ...string) *haLab {
	t.Helper()
	if testing.Short() {
		t.Skip("runs gossip and HA with real (shortened) timings")
	}
	cfg.Gossip, cfg.Timings = "127.0.0.1:0", testTimings()
	if cfg.HATimings.LockLease == 0 {
		cfg.HATimings = haTestTimings()
	}
	l := &haLab{env: startVCenter(t, cfg), agents: map[string]*runningAgent{}, rts: map[string]*sim.Driver{}}
	l.inventory(t, spec)
	for _, h := range hosts {
		l.rts[h] = sim.New(cpuMHz, 16384, "")
		l.agents[h] = l.startAgent(t, h, l.rts[h], l.s.JoinToken())
	}
	for _, h := range hosts {
		l.waitState(t, h, api.HostConnected, 30*time.Second)
	}
	return l
}

// placeOn runs create with every host but host in maintenance mode, so
// DRS has no other choice for what create powers on.
func (l *haLab) placeOn(t *testing.T, host string, create func()) {
	t.Helper()
	for h := range l.agents {
		if h != host {
			l.setMaintenance(t, h, true)
		}
	}
	create()
	for h := range l.agents {
		if h != host {
			l.setMaintenance(t, h, false)
		}
	}
}

// createOn creates VMs powered on, on host: each is created pinned there
// (vm.create -host), then unpinned, so HA may restart it elsewhere. (Putting
// the other hosts in maintenance instead would evacuate their VMs and take
// their capacity out of the root pool.)
func (l *haLab) createOn(t *testing.T, host string, vms ...*api.Object) {
	t.Helper()
	for _, o := range vms {
		var s api.VMSpec
		if err := o.DecodeSpec(&s); err != nil {
			t.Fatal(err)
		}
		s.Host, s.Pinned = cluster+"/"+host, true
		o.SetSpec(s)
		l.mustCreate(t, o)
		if got := l.hostOf(t, o.Name()); got != host {
			t.Fatalf("%s placed on %s, want %s", o.Name(), got, host)
		}
		for try := 0; ; try++ { // its host's status reports race with the change
			cur, err := l.s.inv.Get(o.Path)
			if err != nil {
				t.Fatal(err)
			}
			_ = cur.DecodeSpec(&s)
			s.Pinned = false
			cur.SetSpec(s)
			if _, err = l.s.inv.Change("test", cur); err == nil {
				break
			} else if !errors.Is(err, api.ErrConflict) || try == 20 {
				t.Fatalf("unpinning %s: %v", o.Name(), err)
			}
		}
	}
}

func (l *haLab) running(t *testing.T, name string, within time.Duration) string {
	t.Helper()
	return l.runningOff(t, name, "", within)
}

// runningOff waits until VM name runs where it is registered, on another
// host than off, and says where.
func (l *haLab) runningOff(t *testing.T, name, off string, within time.Duration) string {
	t.Helper()
	eventually(t, name+" running on its host, not "+off, within, func() bool {
		spec, st := l.vmStatus(t, name)
		return st.PowerState == api.PoweredOn && st.Host == spec.Host && api.Base(spec.Host) != off
	})
	return l.hostOf(t, name)
}

func withPriority(o *api.Object, prio string) *api.Object {
	var s api.VMSpec
	_ = o.DecodeSpec(&s)
	s.HA.RestartPriority = prio
	o.SetSpec(s)
	return o
}

// TestHARestartsVMsOfAFailedHost: without heartbeat datastores, the VMs
// of a host that stopped gossiping are restarted on the others once the
// host has been silent past its self-fencing time; each restart leaves
// an event, the dead host's reservations are released, a replica set
// keeps its own members (no replacement), a disabled VM stays, and the
// host coming back stops its stale copies without overwriting anything.
func TestHARestartsVMsOfAFailedHost(t *testing.T) {
	l := startHALab(t, Config{}, haCluster(), 8000, "esx-01", "esx-02", "esx-03")
	const rs = dc + "/replicaset/web"
	l.placeOn(t, "esx-02", func() {
		for _, o := range []*api.Object{vm("db", rootRP, 1000, api.PoweredOn), vm("app", rootRP, 1000, api.PoweredOn),
			withPriority(vm("scratch", rootRP, 500, api.PoweredOn), "disabled"),
			api.New(api.KindReplicaSet, rs, rsSpec(rootRP, 3, map[string]string{"app": "web"}))} {
			l.mustCreate(t, o)
		}
		eventually(t, "3 members on esx-02", 10*time.Second, func() bool {
			n := 0
			for _, m := range l.members(t, rs) {
				if l.hostOf(t, m.Name()) == "esx-02" {
					n++
				}
			}
			return n == 3
		})
	})
	var members []string
	for _, m := range l.members(t, rs) {
		members = append(members, m.Name())
		l.running(t, m.Name(), 30*time.Second)
	}
	sort.Strings(members)
	for _, n := range []string{"db", "app", "scratch"} {
		l.running(t, n, 30*time.Second)
	}
	// esx-02 runs everything; db, app and scratch reserve 2500 MHz there.
	if u := l.poolCPU(t, rootRP); u.Reservation != 24000 {
		t.Fatalf("root pool %d MHz with three 8000 MHz hosts", u.Reservation)
	}

	killed := time.Now()
	l.agents["esx-02"].stop(t)
	l.waitState(t, "esx-02", api.HostNotResponding, 10*time.Second)
	if u := l.poolCPU(t, rootRP); u.Reservation != 16000+2500 {
		t.Errorf("root pool %d MHz with esx-02 not responding, want 18500 (its VMs' 2500 MHz still held)", u.Reservation)
	}
	for _, n := range []string{"db", "app"} {
		l.runningOff(t, n, "esx-02", 20*time.Second)
		t.Logf("%s running on %s %v after esx-02 stopped", n, l.hostOf(t, n), time.Since(killed).Round(10*time.Millisecond))
		evs := l.eventsFor(t, dc+"/vm/"+n)
		if !hasEvent(evs, "VmRestartedOnAlternateHostEvent", fmt.Sprintf("vSphere HA restarted %s on %s (host esx-02 failed", n, l.hostOf(t, n))) {
			t.Errorf("%s: no restart event: %q", n, eventTypes(evs))
		}
		for _, ev := range evs {
			if ev.Type == "VmRestartedOnAlternateHostEvent" && ev.User != "vSphere HA" {
				t.Errorf("restart event by %q, want vSphere HA", ev.User)
			}
		}
		eventually(t, n+"'s HA attempts cleared once it runs", 10*time.Second, func() bool {
			_, st := l.vmStatus(t, n)
			return st.HA != nil && st.HA.Attempts == 0 && st.HA.RestartedFrom == cluster+"/esx-02" && !st.HA.RestartedAt.IsZero()
		})
	}
	if !hasEvent(l.eventsFor(t, cluster+"/esx-02"), "DasHostFailedEvent", "vSphere HA declared host esx-02 failed: silent for") {
		t.Errorf("no DasHostFailedEvent: %q", eventTypes(l.eventsFor(t, cluster+"/esx-02")))
	}
	// Every member runs on a live host again, as the same VM: the set made none.
	for _, m := range members {
		l.runningOff(t, m, "esx-02", 20*time.Second)
	}
	var after []string
	for _, m := range l.members(t, rs) {
		after = append(after, m.Name())
	}
	sort.Strings(after)
	if strings.Join(after, ",") != strings.Join(members, ",") {
		t.Errorf("members %v after the failover, want the same %v", after, members)
	}
	for _, m := range after {
		for _, ev := range l.eventsFor(t, dc+"/vm/"+m) {
			if ev.Type == "VmCreatedEvent" && ev.Time.After(killed) {
				t.Errorf("member %s created during the failover", m)
			}
		}
	}
	// Restart priority disabled: left on its host.
	if h := l.hostOf(t, "scratch"); h != "esx-02" {
		t.Errorf("scratch (restart priority disabled) moved to %s", h)
	}
	// The dead host keeps only scratch's reservation.
	if u := l.poolCPU(t, rootRP); u.Reservation != 16000+500 {
		t.Errorf("root pool %d MHz after the failover, want 16500 (only scratch's 500 MHz left on esx-02)", u.Reservation)
	}

	// A late report of the old host is refused: the VM is registered elsewhere.
	o, _, st := l.getVM(t, "db")
	st.Host, st.PowerState = cluster+"/esx-02", api.PoweredOn
	o.SetStatus(st)
	if _, err := l.join.UpdateStatus(ctxT(t), o); !errors.Is(err, api.ErrConflict) {
		t.Errorf("status of db from esx-02 after its restart elsewhere: %v, want ErrConflict", err)
	}
	// esx-02 comes back: it stops and deletes its stale copies of the
	// restarted VMs, and runs scratch on as before.
	l.agents["esx-02"] = l.startAgent(t, "esx-02", l.rts["esx-02"], l.s.JoinToken())
	l.waitState(t, "esx-02", api.HostConnected, 30*time.Second)
	eventually(t, "esx-02 runs only scratch", 20*time.Second, func() bool {
		vms, err := l.rts["esx-02"].List(ctxT(t))
		return err == nil && len(vms) == 1 && strings.HasSuffix(vms[0].Path, "/scratch")
	})
	for _, n := range append([]string{"db", "app"}, members...) {
		l.runningOff(t, n, "esx-02", 10*time.Second)
	}
}

// TestHAGivesUpWhenNothingFits: a VM no surviving host can take is tried
// RestartDelays times, each attempt a warning event, then given up with an
// error event; its HA record says why, and its status no longer says it
// runs on the failed host.
func TestHAGivesUpWhenNothingFits(t *testing.T) {
	l := startHALab(t, Config{}, haCluster(), 2000, "esx-01", "esx-02")
	l.createOn(t, "esx-01", vm("a", rootRP, 1500, api.PoweredOn))
	l.createOn(t, "esx-02", vm("b", rootRP, 1500, api.PoweredOn))
	l.running(t, "b", 30*time.Second)
	l.agents["esx-02"].stop(t)
	eventually(t, "HA gives up on b", 20*time.Second, func() bool {
		_, st := l.vmStatus(t, "b")
		return st.HA != nil && st.HA.GaveUp
	})
	spec, st := l.vmStatus(t, "b")
	if st.HA.Attempts != 5 || !strings.Contains(st.HA.LastError, "unreserved") || spec.Host != cluster+"/esx-02" {
		t.Errorf("b after giving up: host %s, HA %+v", spec.Host, *st.HA)
	}
	if st.PowerState != api.PoweredOff || !strings.Contains(st.Message, "host esx-02 failed; vSphere HA could not restart it") {
		t.Errorf("b's status after giving up: %s, %q", st.PowerState, st.Message)
	}
	evs := l.eventsFor(t, dc+"/vm/b")
	for i := 1; i < 5; i++ {
		if !hasEvent(evs, "VmFailoverFailed", fmt.Sprintf("(attempt %d of 5; host esx-02 failed)", i)) {
			t.Errorf("no warning for attempt %d: %q", i, eventTypes(evs))
		}
	}
	if !hasEvent(evs, "VmFailoverFailed", "vSphere HA gave up restarting b after 5 attempts") {
		t.Errorf("no give-up event: %q", eventTypes(evs))
	}
}

// TestHARestartsByPriority: a failed host's highest priority VM is
// restarted first; the lower one waits until it runs.
func TestHARestartsByPriority(t *testing.T) {
	l := startHALab(t, Config{}, haCluster(), 8000, "esx-01", "esx-02")
	l.createOn(t, "esx-02", withPriority(vm("low", rootRP, 100, api.PoweredOn), "low"),
		withPriority(vm("top", rootRP, 100, api.PoweredOn), "highest"), vm("mid", rootRP, 100, api.PoweredOn))
	for _, n := range []string{"low", "top", "mid"} {
		l.running(t, n, 30*time.Second)
	}
	l.agents["esx-02"].stop(t)
	restartedAt := map[string]uint64{}
	for _, n := range []string{"low", "top", "mid"} {
		l.runningOff(t, n, "esx-02", 20*time.Second)
		for _, ev := range l.eventsFor(t, dc+"/vm/"+n) {
			if ev.Type == "VmRestartedOnAlternateHostEvent" {
				restartedAt[n] = ev.Key
			}
		}
	}
	if !(restartedAt["top"] < restartedAt["mid"] && restartedAt["mid"] < restartedAt["low"]) {
		t.Errorf("restart order by event key: top %d, mid %d, low %d; want highest, then medium, then low", restartedAt["top"], restartedAt["mid"], restartedAt["low"])
	}
}

// fakeFDM writes what the hosts' HA processes would on a heartbeat
// datastore: every 50 ms each host's heartbeat (unless silenced, with
// isolated set as told) and the lock of every VM it renews.
type fakeFDM struct {
	root string
	mu   sync.Mutex
	// beat: host path -> "" (silent), "ok" or "isolated".
	beat map[string]string
	// renew: VM UID -> lock to renew (Renewed is set at each write).
	renew map[string]hads.Lock
	stop  chan struct{}
	done  chan struct{}
}

func startFakeFDM(t *testing.T, root string) *fakeFDM {
	f := &fakeFDM{root: root, beat: map[string]string{}, renew: map[string]hads.Lock{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			f.mu.Lock()
			now := time.Now()
			for h, mode := range f.beat {
				if mode != "" {
					_ = hads.WriteHeartbeat(root, hads.Heartbeat{Host: h, Time: now, Isolated: mode == "isolated"})
				}
			}
			for _, l := range f.renew {
				l.Renewed = now
				_ = hads.WriteLock(root, l)
			}
			f.mu.Unlock()
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(f.stop); <-f.done })
	return f
}

func (f *fakeFDM) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// TestHAWithHeartbeatDatastores: with a heartbeat datastore, a silent host
// whose heartbeat stopped is failed, but each of its VMs is restarted only
// once its lock lapsed; a host that still heartbeats and says it is
// isolated keeps its VMs, but one its isolation response released is
// restarted at once.
func TestHAWithHeartbeatDatastores(t *testing.T) {
	root := t.TempDir()
	l := startHALab(t, Config{HADatastores: []string{root}}, haCluster(), 8000, "esx-01", "esx-02", "esx-03")
	f := startFakeFDM(t, root)
	h := func(n string) string { return cluster + "/" + n }
	f.set(func() {
		for _, n := range []string{"esx-01", "esx-02", "esx-03"} {
			f.beat[h(n)] = "ok"
		}
	})
	l.createOn(t, "esx-02", vm("held", rootRP, 100, api.PoweredOn), vm("lapsing", rootRP, 100, api.PoweredOn))
	l.createOn(t, "esx-03", vm("released", rootRP, 100, api.PoweredOn), vm("stays", rootRP, 100, api.PoweredOn))
	uid := map[string]string{}
	for _, n := range []string{"held", "lapsing", "released", "stays"} {
		l.running(t, n, 30*time.Second)
		o, s, _ := l.getVM(t, n)
		uid[n] = o.UID
		f.set(func() { f.renew[o.UID] = hads.Lock{UID: o.UID, VM: o.Path, Host: s.Host, State: hads.Held} })
	}

	// esx-02 crashes: no gossip, no heartbeat, and the locks of its VMs
	// stop being renewed, but for "held" (as if its process still ran).
	// esx-03 is isolated: it still heartbeats, says so, and its isolation
	// response stopped "released".
	l.agents["esx-02"].stop(t)
	l.agents["esx-03"].stop(t)
	f.set(func() {
		f.beat[h("esx-02")] = ""
		f.beat[h("esx-03")] = "isolated"
		delete(f.renew, uid["lapsing"])
		delete(f.renew, uid["released"])
		_ = hads.WriteLock(root, hads.Lock{UID: uid["released"], VM: dc + "/vm/released", Host: h("esx-03"), State: hads.Released,
			Renewed: time.Now(), Reason: "isolation response powerOff"})
	})
	if got := l.runningOff(t, "released", "esx-03", 10*time.Second); got != "esx-01" {
		t.Errorf("released restarted on %s, want esx-01", got)
	}
	if !hasEvent(l.eventsFor(t, dc+"/vm/released"), "VmRestartedOnAlternateHostEvent", "host esx-03's isolation response stopped it") {
		t.Errorf("released: %q", eventTypes(l.eventsFor(t, dc+"/vm/released")))
	}
	l.runningOff(t, "lapsing", "esx-02", 10*time.Second)
	if !hasEvent(l.eventsFor(t, h("esx-02")), "DasHostFailedEvent", "no datastore heartbeat for over 500ms") {
		t.Errorf("esx-02: %q", eventTypes(l.eventsFor(t, h("esx-02"))))
	}
	if !hasEvent(l.eventsFor(t, h("esx-03")), "DasHostIsolatedEvent", "says it is isolated") {
		t.Errorf("esx-03: %q", eventTypes(l.eventsFor(t, h("esx-03"))))
	}
	// Passes after "lapsing" moved, "held" (lock fresh) and "stays"
	// (isolated host, not released) are where they were.
	p := l.s.HA().Passes()
	eventually(t, "8 more HA passes", 10*time.Second, func() bool { return l.s.HA().Passes() >= p+8 })
	if got := l.hostOf(t, "held"); got != "esx-02" {
		t.Errorf("held (lock renewed) moved to %s", got)
	}
	if got := l.hostOf(t, "stays"); got != "esx-03" {
		t.Errorf("stays (isolated host, not released) moved to %s", got)
	}
	// The lock of "held" lapses: restarted.
	f.set(func() { delete(f.renew, uid["held"]) })
	l.runningOff(t, "held", "esx-02", 10*time.Second)
	if got := l.hostOf(t, "stays"); got != "esx-03" {
		t.Errorf("stays moved to %s", got)
	}
}

// TestHADatastoreFlagChecked: a heartbeat datastore vcenter cannot use
// stops it at start, naming the flag and the path.
func TestHADatastoreFlagChecked(t *testing.T) {
	for _, root := range []string{"relative/dir", "/nonexistent/podsphere-ha"} {
		_, err := New(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", HADatastores: []string{root}, Logger: quietLogger(t)})
		if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "--ha-datastore") || !strings.Contains(err.Error(), root) {
			t.Errorf("--ha-datastore %s: %v, want ErrInvalid naming the flag and the path", root, err)
		}
	}
}
