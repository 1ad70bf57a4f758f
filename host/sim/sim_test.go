package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/runtime"
)

func spec(id string) runtime.VMSpec {
	return runtime.VMSpec{ID: id, Path: "/dc1/vm/" + id, NumCPU: 1, MemoryMB: 256,
		Containers: []api.Container{{Name: "web", Image: "nginx"}, {Name: "log", Image: "busybox"}}}
}

// clock is a fake time source that moves one second per reading.
func clock() func() time.Time {
	t := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Second); return t }
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	type step struct {
		op      string // create, start, stop, crash, delete
		id      string
		wantErr error
		// expectations on id after the step (skipped when gone)
		power    string
		ip       string
		restarts int
		gone     bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"create is powered off, no ip", []step{
			{op: "create", id: "a", power: api.PoweredOff},
		}},
		{"start gives boot time and first ip", []step{
			{op: "create", id: "a", power: api.PoweredOff},
			{op: "start", id: "a", power: api.PoweredOn, ip: "10.250.3.2"},
		}},
		{"start and create are idempotent", []step{
			{op: "create", id: "a"},
			{op: "start", id: "a", power: api.PoweredOn, ip: "10.250.3.2"},
			{op: "start", id: "a", power: api.PoweredOn, ip: "10.250.3.2", restarts: 0},
			{op: "create", id: "a", power: api.PoweredOn, ip: "10.250.3.2"},
		}},
		{"stop hides ip, power-on keeps it and is no restart", []step{
			{op: "create", id: "a"},
			{op: "start", id: "a"},
			{op: "stop", id: "a", power: api.PoweredOff, ip: ""},
			{op: "stop", id: "a", power: api.PoweredOff},
			{op: "start", id: "a", power: api.PoweredOn, ip: "10.250.3.2", restarts: 0},
		}},
		{"a start after a crash is a restart and counts", []step{
			{op: "create", id: "a"},
			{op: "start", id: "a"},
			{op: "crash", id: "a", power: api.PoweredOff},
			{op: "start", id: "a", power: api.PoweredOn, ip: "10.250.3.2", restarts: 1},
			{op: "stop", id: "a", power: api.PoweredOff, restarts: 1},
			{op: "start", id: "a", power: api.PoweredOn, ip: "10.250.3.2", restarts: 1},
		}},
		{"ips are unique and reused after delete", []step{
			{op: "create", id: "a"}, {op: "start", id: "a", ip: "10.250.3.2"},
			{op: "create", id: "b"}, {op: "start", id: "b", ip: "10.250.3.3"},
			{op: "delete", id: "a", gone: true},
			{op: "create", id: "c"}, {op: "start", id: "c", ip: "10.250.3.2"},
		}},
		{"crash powers off", []step{
			{op: "create", id: "a"}, {op: "start", id: "a"},
			{op: "crash", id: "a", power: api.PoweredOff},
		}},
		{"unknown vm", []step{
			{op: "start", id: "x", wantErr: api.ErrNotFound, gone: true},
			{op: "stop", id: "x", wantErr: api.ErrNotFound, gone: true},
			{op: "delete", id: "x", gone: true},
		}},
		{"empty id", []step{
			{op: "create", id: "", wantErr: api.ErrInvalid, gone: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(2000, 4096, "10.250.3")
			d.now = clock()
			for i, s := range tc.steps {
				var err error
				switch s.op {
				case "create":
					err = d.Create(ctx, spec(s.id))
				case "start":
					err = d.Start(ctx, s.id)
				case "stop":
					err = d.Stop(ctx, s.id, time.Second)
				case "crash":
					err = d.Crash(s.id, 137)
				case "delete":
					err = d.Delete(ctx, s.id)
				}
				if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
					t.Fatalf("step %d %s %s: err = %v, want %v", i, s.op, s.id, err, s.wantErr)
				}
				st, err := d.Status(ctx, s.id)
				if s.gone {
					if !errors.Is(err, api.ErrNotFound) {
						t.Fatalf("step %d: Status = %+v, %v; want ErrNotFound", i, st, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: Status: %v", i, err)
				}
				if s.power != "" && st.PowerState != s.power {
					t.Errorf("step %d %s: power %s, want %s", i, s.op, st.PowerState, s.power)
				}
				if (s.ip != "" || s.power == api.PoweredOff) && st.IP != s.ip {
					t.Errorf("step %d %s: ip %q, want %q", i, s.op, st.IP, s.ip)
				}
				if st.Restarts != s.restarts {
					t.Errorf("step %d %s: restarts %d, want %d", i, s.op, st.Restarts, s.restarts)
				}
				on := st.PowerState == api.PoweredOn
				if on == st.BootTime.IsZero() {
					t.Errorf("step %d %s: power %s with boot time %v", i, s.op, st.PowerState, st.BootTime)
				}
				for _, c := range st.Containers {
					if on != (c.State == "running") {
						t.Errorf("step %d %s: container %s %s while VM %s", i, s.op, c.Name, c.State, st.PowerState)
					}
					if s.op == "crash" && c.ExitCode != 137 {
						t.Errorf("crashed container exit code %d", c.ExitCode)
					}
				}
			}
		})
	}
}

func TestIPRanges(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		prefix string
		n      int // VMs to start
		last   string
		err    error
	}{
		{"10.250.7", 1, "10.250.7.2", nil},
		{"10.250.7", 253, "10.250.7.254", nil},
		{"10.250.7", 254, "", api.ErrInsufficientResources},
		{"10.250", 300, "10.250.1.45", nil},
		{IPPrefix(0), 1, "10.250.0.2", nil},
		{IPPrefix(300), 1, "10.251.44.2", nil},
		{"bogus", 1, "", api.ErrInvalid},
		{"10.1.2.3", 1, "", api.ErrInvalid},
	} {
		d := New(1, 1, tc.prefix)
		var last runtime.VMState
		var err error
		for i := range tc.n {
			id := fmt.Sprint(i)
			if err = d.Create(ctx, spec(id)); err != nil {
				break
			}
			if err = d.Start(ctx, id); err != nil {
				break
			}
			last, _ = d.Status(ctx, id)
		}
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s x%d: err %v, want %v", tc.prefix, tc.n, err, tc.err)
			}
			continue
		}
		if err != nil || last.IP != tc.last {
			t.Errorf("%s x%d: last ip %q (err %v), want %q", tc.prefix, tc.n, last.IP, err, tc.last)
		}
	}
}

func TestListCapacityLogsExecMetrics(t *testing.T) {
	ctx := context.Background()
	d := New(2400, 8192, "10.250.1")
	if d.Name() != "sim" {
		t.Errorf("Name = %q", d.Name())
	}
	if c, _ := d.Capacity(ctx); c != (runtime.Capacity{CPUMHz: 2400, MemMB: 8192}) {
		t.Errorf("Capacity = %+v", c)
	}
	for _, id := range []string{"b", "a"} {
		_ = d.Create(ctx, spec(id))
	}
	_ = d.Start(ctx, "a")
	l, _ := d.List(ctx)
	if len(l) != 2 || l[0].ID != "a" || l[0].PowerState != api.PoweredOn || l[1].PowerState != api.PoweredOff {
		t.Errorf("List = %+v", l)
	}
	l[0].Containers[0].State = "mutated"
	if st, _ := d.Status(ctx, "a"); st.Containers[0].State != "running" {
		t.Error("List shares state with the driver")
	}

	var buf bytes.Buffer
	if err := d.Logs(ctx, "a", "web", false, &buf); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "container web image nginx") || strings.Contains(out, "busybox") || strings.Count(out, "\n") < 3 {
		t.Errorf("Logs(web) =\n%s", out)
	}
	buf.Reset()
	_ = d.Logs(ctx, "a", "", false, &buf)
	if !strings.Contains(buf.String(), "busybox") {
		t.Errorf("Logs(all) misses a container:\n%s", buf.String())
	}
	if err := d.Logs(ctx, "a", "nope", false, &buf); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Logs(unknown container) = %v", err)
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := d.Logs(fctx, "a", "web", true, &buf); err != nil {
		t.Errorf("Logs(follow) = %v", err)
	}

	if _, err := d.Exec(ctx, "a", "web", []string{"sh"}, &buf, &buf); !errors.Is(err, api.ErrUnavailable) {
		t.Errorf("Exec = %v, want ErrUnavailable", err)
	}
	if _, err := d.Exec(ctx, "zz", "web", nil, &buf, &buf); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Exec(unknown) = %v", err)
	}
	if m, err := d.Metrics(ctx, "a"); err != nil || m != (runtime.Metrics{}) {
		t.Errorf("Metrics = %+v, %v", m, err)
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	d := New(1, 1, "10.250")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				id := fmt.Sprintf("%d-%d", w, i)
				_ = d.Create(ctx, spec(id))
				_ = d.Start(ctx, id)
				_, _ = d.List(ctx)
				_ = d.Stop(ctx, id, 0)
				if i%2 == 0 {
					_ = d.Delete(ctx, id)
				}
			}
		}()
	}
	wg.Wait()
	if l, _ := d.List(ctx); len(l) != 8*25 {
		t.Errorf("%d VMs left, want %d", len(l), 8*25)
	}
}

// Hundreds of hosts in one process must be cheap.
func BenchmarkHostsInProcess(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		for h := range 500 {
			d := New(10000, 65536, IPPrefix(h))
			_ = d.Create(ctx, spec("a"))
			_ = d.Start(ctx, "a")
		}
	}
}

// The sim records the hash of the spec a VM was created with, keeps it when
// Create is repeated, and a VM created again after Delete gets the new one.
func TestSpecHash(t *testing.T) {
	ctx := context.Background()
	d := New(1000, 1024, "10.250.0")
	old := spec("a")
	if err := d.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	hashOf := func() string {
		st, err := d.Status(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		l, _ := d.List(ctx)
		if len(l) != 1 || l[0].SpecHash != st.SpecHash {
			t.Errorf("List reports %+v, Status hash %s", l, st.SpecHash)
		}
		return st.SpecHash
	}
	if h := hashOf(); h == "" || h != runtime.SpecHash(old) {
		t.Fatalf("SpecHash = %q, want %q", h, runtime.SpecHash(old))
	}
	changed := spec("a")
	changed.Mem.Limit = 64
	_ = d.Create(ctx, changed) // exists: kept as it is
	if h := hashOf(); h != runtime.SpecHash(old) {
		t.Errorf("repeated Create changed the hash to %s", h)
	}
	_ = d.Start(ctx, "a")
	if h := hashOf(); h != runtime.SpecHash(old) {
		t.Errorf("Start changed the hash to %s", h)
	}
	_ = d.Stop(ctx, "a", 0)
	_ = d.Delete(ctx, "a")
	_ = d.Create(ctx, changed)
	if h := hashOf(); h != runtime.SpecHash(changed) || h == runtime.SpecHash(old) {
		t.Errorf("after re-create SpecHash = %s, want %s", h, runtime.SpecHash(changed))
	}
}

// fakeClock is a settable time source.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestProbesPassAfterTheirDelay(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := New(10000, 10000, "10.250.3")
	d.now = clk.now
	start := clk.now()

	plain := spec("plain")
	probed := spec("probed")
	probed.Containers[0].StartupProbe = &api.Probe{Exec: &api.ExecAction{Command: []string{"true"}}, InitialDelaySeconds: 2}
	probed.Containers[0].ReadinessProbe = &api.Probe{HTTPGet: &api.HTTPGetAction{Port: api.Int(80)}, InitialDelaySeconds: 5}
	probed.Containers[1].ReadinessProbe = &api.Probe{TCPSocket: &api.TCPSocketAction{Port: api.Int(80)}, InitialDelaySeconds: 3}
	for _, s := range []runtime.VMSpec{plain, probed} {
		if err := d.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if st, _ := d.Status(ctx, s.ID); st.Ready {
			t.Fatalf("%s ready before it started", s.ID)
		}
		if err := d.Start(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := d.Status(ctx, "plain")
	if !st.Ready || !st.ReadySince.Equal(start) || !st.Containers[0].Ready || !st.Containers[0].Started {
		t.Fatalf("VM without probes: %+v", st)
	}
	for _, c := range []struct {
		after          time.Duration
		started, ready bool // of container 0
		vmReady        bool
	}{
		{0, false, false, false},
		{2 * time.Second, true, false, false},
		{4 * time.Second, true, false, false},
		{5 * time.Second, true, true, true},
	} {
		clk.t = start.Add(c.after)
		st, _ := d.Status(ctx, "probed")
		if st.Containers[0].Started != c.started || st.Containers[0].Ready != c.ready || st.Ready != c.vmReady {
			t.Fatalf("after %v: %+v", c.after, st)
		}
	}
	st, _ = d.Status(ctx, "probed")
	if !st.ReadySince.Equal(start.Add(5 * time.Second)) {
		t.Fatalf("ReadySince %v, want start+5s", st.ReadySince)
	}
	if err := d.Stop(ctx, "probed", 0); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.Status(ctx, "probed"); st.Ready || st.Containers[0].Ready {
		t.Fatalf("stopped VM ready: %+v", st)
	}
}

func TestProbeDelayNotifies(t *testing.T) {
	ctx := context.Background()
	d := New(10000, 10000, "10.250.3")
	got := make(chan string, 4)
	d.SetNotify(func(id string) { got <- id })
	s := spec("slow")
	s.Containers[0].ReadinessProbe = &api.Probe{HTTPGet: &api.HTTPGetAction{Port: api.Int(80)}, InitialDelaySeconds: 1}
	if err := d.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, "slow"); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-got:
		if st, _ := d.Status(ctx, id); id != "slow" || !st.Ready {
			t.Fatalf("notified %q, status %+v", id, st)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no notice when the readiness delay ran out")
	}
	// A VM deleted before its delay runs out tells nobody.
	if err := d.Stop(ctx, "slow", 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, "slow"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "slow"); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-got:
		t.Fatalf("notice for deleted VM %s", id)
	case <-time.After(1500 * time.Millisecond):
	}
}

func TestCompletion(t *testing.T) {
	ctx := context.Background()
	cmd := func(c ...string) api.Container { return api.Container{Name: "job", Image: "busybox", Command: c} }
	for _, tc := range []struct {
		name   string
		policy string
		init   []api.Container
		cs     []api.Container
		power  string
		phase  string
		states string // container states, init first
	}{
		{"never true", "Never", nil, []api.Container{cmd("true")}, api.PoweredOff, api.PhaseSucceeded, "exited"},
		{"never exit 3", "Never", nil, []api.Container{cmd("sh", "-c", "exit 3")}, api.PoweredOff, api.PhaseFailed, "exited"},
		{"never one of two runs", "Never", nil, []api.Container{cmd("true"), {Name: "srv", Image: "nginx"}}, api.PoweredOn, "", "exited running"},
		{"onfailure true", "OnFailure", nil, []api.Container{cmd("/bin/true")}, api.PoweredOff, api.PhaseSucceeded, "exited"},
		{"onfailure false keeps running", "OnFailure", nil, []api.Container{cmd("false")}, api.PoweredOn, "", "running"},
		{"always true keeps running", "Always", nil, []api.Container{cmd("true")}, api.PoweredOn, "", "running"},
		{"unmodelled command runs", "Never", nil, []api.Container{cmd("sleep", "1")}, api.PoweredOn, "", "running"},
		{"init then main", "Always", []api.Container{{Name: "setup", Image: "busybox"}}, []api.Container{cmd("httpd")}, api.PoweredOn, "", "exited running"},
		{"init fails, never", "Never", []api.Container{{Name: "setup", Image: "busybox", Command: []string{"false"}}}, []api.Container{cmd("httpd")}, api.PoweredOff, api.PhaseFailed, "exited created"},
		{"init fails, always", "Always", []api.Container{{Name: "setup", Image: "busybox", Command: []string{"false"}}}, []api.Container{cmd("httpd")}, api.PoweredOn, "", "exited created"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(10000, 10000, "10.250.3")
			s := runtime.VMSpec{ID: "j", Path: "/dc1/vm/j", RestartPolicy: tc.policy, InitContainers: tc.init, Containers: tc.cs}
			if err := d.Create(ctx, s); err != nil {
				t.Fatal(err)
			}
			if err := d.Start(ctx, "j"); err != nil {
				t.Fatal(err)
			}
			st, _ := d.Status(ctx, "j")
			var states []string
			for _, c := range st.Containers {
				states = append(states, c.State)
			}
			if st.PowerState != tc.power || st.Phase != tc.phase || strings.Join(states, " ") != tc.states {
				t.Fatalf("power %s phase %q states %v, want %s %q %s", st.PowerState, st.Phase, states, tc.power, tc.phase, tc.states)
			}
			if len(tc.init) > 0 && (!st.Containers[0].Init || st.Containers[1].Init) {
				t.Fatalf("init flags wrong: %+v", st.Containers)
			}
			if st.Ready != (tc.power == api.PoweredOn && !strings.Contains(tc.states, "created") && !strings.HasPrefix(tc.name, "never one")) {
				t.Fatalf("ready %v: %+v", st.Ready, st)
			}
		})
	}
	t.Run("crash under Never fails the VM", func(t *testing.T) {
		d := New(10000, 10000, "10.250.3")
		s := runtime.VMSpec{ID: "c", Path: "/dc1/vm/c", RestartPolicy: "Never", Containers: []api.Container{{Name: "srv", Image: "nginx"}}}
		_ = d.Create(ctx, s)
		_ = d.Start(ctx, "c")
		_ = d.Crash("c", 137)
		if st, _ := d.Status(ctx, "c"); st.Phase != api.PhaseFailed || st.PowerState != api.PoweredOff {
			t.Fatalf("after crash: %+v", st)
		}
		if err := d.Start(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		if st, _ := d.Status(ctx, "c"); st.Phase != "" || st.PowerState != api.PoweredOn {
			t.Fatalf("a new run clears the phase: %+v", st)
		}
	})
}

// TestResize: a running VM's size changes in place (same boot, address and
// restart count, the new spec hash); a change of its containers is refused.
func TestResize(t *testing.T) {
	ctx := context.Background()
	d := New(2000, 4096, "10.250.3")
	d.now = clock()
	s := spec("a")
	if err := d.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	before, _ := d.Status(ctx, "a")
	bigger := s
	bigger.NumCPU, bigger.MemoryMB = 2, 512
	if err := d.Resize(ctx, bigger); err != nil {
		t.Fatalf("Resize: %v", err)
	}
	after, _ := d.Status(ctx, "a")
	if after.PowerState != api.PoweredOn || !after.BootTime.Equal(before.BootTime) || after.IP != before.IP || after.Restarts != 0 {
		t.Errorf("resize changed the running VM: %+v -> %+v", before, after)
	}
	if after.SpecHash != runtime.SpecHash(bigger) || after.ShapeHash != runtime.ShapeHash(s) {
		t.Errorf("hashes after resize %q/%q", after.SpecHash, after.ShapeHash)
	}
	other := bigger
	other.Containers = []api.Container{{Name: "web", Image: "nginx:2"}}
	if err := d.Resize(ctx, other); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("Resize with new containers = %v, want ErrInvalid", err)
	}
}
