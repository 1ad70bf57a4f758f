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
		{"stop hides ip, restart keeps it and counts", []step{
			{op: "create", id: "a"},
			{op: "start", id: "a"},
			{op: "stop", id: "a", power: api.PoweredOff, ip: ""},
			{op: "stop", id: "a", power: api.PoweredOff},
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
