package containerd

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/runtime"
)

func TestLimitsFor(t *testing.T) {
	const mhz = 2000
	for _, tc := range []struct {
		name string
		spec runtime.VMSpec
		want Limits
	}{
		{"unlimited", runtime.VMSpec{CPU: api.Allocation{Limit: -1}, Mem: api.Allocation{Limit: -1}}, Limits{}},
		{"numCPU caps", runtime.VMSpec{NumCPU: 2, MemoryMB: 256, CPU: api.Allocation{Limit: -1}, Mem: api.Allocation{Limit: -1}},
			Limits{CPUQuota: 200000, MemLimit: 256 << 20}},
		{"limit below size", runtime.VMSpec{NumCPU: 2, MemoryMB: 256, CPU: api.Allocation{Limit: 500, Reservation: 1000}, Mem: api.Allocation{Limit: 64, Reservation: 32}},
			Limits{CPUQuota: 25000, CPUShares: 512, MemLimit: 64 << 20, MemReserve: 32 << 20}},
		{"tiny quota floored", runtime.VMSpec{CPU: api.Allocation{Limit: 1}}, Limits{CPUQuota: 1000}},
	} {
		if got := LimitsFor(tc.spec, mhz); got != tc.want {
			t.Errorf("%s: LimitsFor = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy string
		code   int
		want   bool
	}{
		{"", 0, true}, {RestartAlways, 3, true}, {RestartOnFailure, 0, false},
		{RestartOnFailure, 3, true}, {RestartOnFailure, -1, true}, {RestartNever, 3, false},
	} {
		if got := shouldRestart(tc.policy, tc.code); got != tc.want {
			t.Errorf("shouldRestart(%q, %d) = %v", tc.policy, tc.code, got)
		}
	}
	b, seq := time.Second, []time.Duration{}
	for range 7 {
		seq = append(seq, b)
		b = nextBackoff(b, 30*time.Second)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		if seq[i] != want[i]*time.Second {
			t.Fatalf("backoff sequence %v", seq)
		}
	}
}

func TestNames(t *testing.T) {
	if h := hostname(runtime.VMSpec{ID: "x", Path: "/dc1/vm/Web Server_01"}); h != "web-server-01" {
		t.Errorf("hostname = %q", h)
	}
	if n, err := NormalizeImage("busybox"); err != nil || n != "docker.io/library/busybox:latest" {
		t.Errorf("NormalizeImage = %q, %v", n, err)
	}
	if _, err := NormalizeImage("Bad Name"); err == nil {
		t.Error("want an error for an invalid reference")
	}
}

func TestPhase(t *testing.T) {
	boot := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	after, before := boot.Add(time.Second), boot.Add(-time.Hour)
	c := func(state string, code int, started time.Time) api.ContainerStatus {
		return api.ContainerStatus{Name: "c", State: state, ExitCode: code, StartedAt: started}
	}
	init := func(cs api.ContainerStatus) api.ContainerStatus { cs.Init = true; return cs }
	for _, tc := range []struct {
		name   string
		policy string
		sts    []api.ContainerStatus
		want   string
	}{
		{"always never completes", RestartAlways, []api.ContainerStatus{c(StateExited, 0, after)}, ""},
		{"default is always", "", []api.ContainerStatus{c(StateExited, 0, after)}, ""},
		{"never, exit 0", RestartNever, []api.ContainerStatus{c(StateExited, 0, after)}, api.PhaseSucceeded},
		{"never, one failed", RestartNever, []api.ContainerStatus{c(StateExited, 0, after), c(StateExited, 2, after)}, api.PhaseFailed},
		{"never, one still to exit", RestartNever, []api.ContainerStatus{c(StateExited, 2, after), c(StateCreated, 0, time.Time{})}, ""},
		{"onfailure, exit 0", RestartOnFailure, []api.ContainerStatus{c(StateExited, 0, after)}, api.PhaseSucceeded},
		{"onfailure, failed: restarting, not failed", RestartOnFailure, []api.ContainerStatus{c(StateExited, 1, after)}, ""},
		{"exit from a previous boot", RestartNever, []api.ContainerStatus{c(StateExited, 0, before)}, ""},
		{"never, init failed", RestartNever, []api.ContainerStatus{init(c(StateExited, 1, after)), c(StateCreated, 0, time.Time{})}, api.PhaseFailed},
		{"never, init failed in a previous boot", RestartNever, []api.ContainerStatus{init(c(StateExited, 1, before)), c(StateCreated, 0, time.Time{})}, ""},
		{"onfailure, init failed: retried", RestartOnFailure, []api.ContainerStatus{init(c(StateExited, 1, after)), c(StateCreated, 0, time.Time{})}, ""},
		{"init then main done", RestartNever, []api.ContainerStatus{init(c(StateExited, 0, after)), c(StateExited, 0, after)}, api.PhaseSucceeded},
	} {
		if got := phase(tc.policy, tc.sts, boot); got != tc.want {
			t.Errorf("%s: phase = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestHostnameAndSpecChecks(t *testing.T) {
	if h := hostname(runtime.VMSpec{ID: "x", Path: "/dc1/vm/web", Hostname: "db-0"}); h != "db-0" {
		t.Errorf("hostname with spec.hostname = %q", h)
	}
	base := runtime.VMSpec{ID: "x", Containers: []api.Container{{Name: "main", Image: "busybox"}}}
	dup := base
	dup.InitContainers = []api.Container{{Name: "main", Image: "busybox"}}
	if err := validSpec(dup); err == nil {
		t.Error("an init container named like a container was accepted")
	}
	pull := base
	pull.Containers = []api.Container{{Name: "main", Image: "busybox", ImagePullPolicy: "Sometimes"}}
	if err := validSpec(pull); err == nil {
		t.Error("an unknown pull policy was accepted")
	}
	bad := base
	bad.Containers = []api.Container{{Name: "main", Image: "busybox", LivenessProbe: &api.Probe{}}}
	if err := validSpec(bad); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "spec.containers[0].livenessProbe") {
		t.Errorf("a probe without an action: %v", err)
	}
	if probesLabel(base.Containers[0]) != "" {
		t.Error("a container without probes has a probes label")
	}
	p := api.Container{Name: "web", Ports: []api.Port{{Name: "http", ContainerPort: 80}}, ReadinessProbe: &api.Probe{HTTPGet: &api.HTTPGetAction{Port: api.Str("http")}}}
	if l := probesLabel(p); !strings.Contains(l, `"readinessProbe"`) || !strings.Contains(l, `"http"`) {
		t.Errorf("probes label %s", l)
	}
}
