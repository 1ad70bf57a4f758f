package containerd

import (
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
