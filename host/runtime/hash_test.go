package runtime

import (
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

func baseSpec() VMSpec {
	return VMSpec{
		ID: "uid-1", Path: "/dc1/vm/web", NumCPU: 2, MemoryMB: 512,
		CPU:           api.Allocation{Reservation: 500, Limit: -1},
		Mem:           api.Allocation{Limit: 256},
		RestartPolicy: "Always",
		Containers: []api.Container{{
			Name: "app", Image: "busybox", Command: []string{"sleep", "3600"},
			Env: []api.EnvVar{{Name: "A", Value: "1"}}, Ports: []api.Port{{ContainerPort: 80}},
		}},
	}
}

func TestSpecHashStable(t *testing.T) {
	h := SpecHash(baseSpec())
	if len(h) != 16 {
		t.Fatalf("SpecHash = %q, want 16 hex digits", h)
	}
	if SpecHash(baseSpec()) != h {
		t.Fatal("SpecHash not deterministic")
	}
	same := map[string]func(*VMSpec){
		"another ID and path":     func(s *VMSpec) { s.ID, s.Path = "uid-2", "/dc1/vm/other" },
		"shares (admission only)": func(s *VMSpec) { s.CPU.Shares = api.Shares{Level: "high"}; s.Mem.Expandable = true },
		"empty instead of nil":    func(s *VMSpec) { s.Containers[0].Args = []string{} },
	}
	for name, f := range same {
		s := baseSpec()
		f(&s)
		if got := SpecHash(s); got != h {
			t.Errorf("%s: hash changed (%s != %s)", name, got, h)
		}
	}
}

func TestSpecHashChanges(t *testing.T) {
	h := SpecHash(baseSpec())
	for name, f := range map[string]func(*VMSpec){
		"numCPU":       func(s *VMSpec) { s.NumCPU = 4 },
		"memoryMB":     func(s *VMSpec) { s.MemoryMB = 1024 },
		"cpu limit":    func(s *VMSpec) { s.CPU.Limit = 500 },
		"cpu reserve":  func(s *VMSpec) { s.CPU.Reservation = 0 },
		"mem limit":    func(s *VMSpec) { s.Mem.Limit = 128 },
		"mem reserve":  func(s *VMSpec) { s.Mem.Reservation = 64 },
		"image":        func(s *VMSpec) { s.Containers[0].Image = "busybox:1.36" },
		"command":      func(s *VMSpec) { s.Containers[0].Command = []string{"sleep", "60"} },
		"args":         func(s *VMSpec) { s.Containers[0].Args = []string{"-x"} },
		"env":          func(s *VMSpec) { s.Containers[0].Env[0].Value = "2" },
		"env emptied":  func(s *VMSpec) { s.Containers[0].Env[0].Value = "" },
		"ports":        func(s *VMSpec) { s.Containers[0].Ports[0].ContainerPort = 8080 },
		"workingDir":   func(s *VMSpec) { s.Containers[0].WorkingDir = "/tmp" },
		"restart":      func(s *VMSpec) { s.RestartPolicy = "Never" },
		"more":         func(s *VMSpec) { s.Containers = append(s.Containers, api.Container{Name: "side", Image: "busybox"}) },
		"no container": func(s *VMSpec) { s.Containers = nil },
		"big number":   func(s *VMSpec) { s.Mem.Limit = 1<<62 + 1 },
		"init container": func(s *VMSpec) {
			s.InitContainers = []api.Container{{Name: "setup", Image: "busybox", Command: []string{"true"}}}
		},
		"grace period":   func(s *VMSpec) { g := int64(30); s.TerminationGracePeriodSeconds = &g },
		"grace period 0": func(s *VMSpec) { g := int64(0); s.TerminationGracePeriodSeconds = &g },
		"hostname":       func(s *VMSpec) { s.Hostname = "db-0" },
		"runAsUser":      func(s *VMSpec) { u := int64(1000); s.Containers[0].RunAsUser = &u },
		"runAsUser 0":    func(s *VMSpec) { u := int64(0); s.Containers[0].RunAsUser = &u },
		"read-only root": func(s *VMSpec) { s.Containers[0].ReadOnlyRootFilesystem = true },
		"pull policy":    func(s *VMSpec) { s.Containers[0].ImagePullPolicy = "Always" },
		"readiness probe": func(s *VMSpec) {
			s.Containers[0].ReadinessProbe = &api.Probe{HTTPGet: &api.HTTPGetAction{Port: api.Int(80)}}
		},
		"liveness probe": func(s *VMSpec) {
			s.Containers[0].LivenessProbe = &api.Probe{Exec: &api.ExecAction{Command: []string{"true"}}}
		},
		"startup probe": func(s *VMSpec) {
			s.Containers[0].StartupProbe = &api.Probe{TCPSocket: &api.TCPSocketAction{Port: api.Str("http")}}
		},
	} {
		s := baseSpec()
		f(&s)
		if got := SpecHash(s); got == h {
			t.Errorf("%s: hash did not change", name)
		}
	}
	a, b := baseSpec(), baseSpec()
	a.Mem.Limit, b.Mem.Limit = 1<<62, 1<<62+1
	if SpecHash(a) == SpecHash(b) {
		t.Error("large limits that differ by one hash alike")
	}
	u0, u1 := baseSpec(), baseSpec()
	zero, one := int64(0), int64(1)
	u0.Containers[0].RunAsUser, u1.Containers[0].RunAsUser = &zero, &one
	if SpecHash(u0) == SpecHash(u1) {
		t.Error("runAsUser 0 and 1 hash alike")
	}
}

// The fields added with probes and init containers leave the hash of a
// spec that does not use them as it was: upgrading the agent recreates
// no VM.
func TestSpecHashUnchangedByNewFields(t *testing.T) {
	const before = "5927c462022fe688" // SpecHash(baseSpec()) before those fields existed
	if got := SpecHash(baseSpec()); got != before {
		t.Fatalf("SpecHash(baseSpec()) = %s, was %s", got, before)
	}
}

func TestStopTimeout(t *testing.T) {
	def := 10 * time.Second
	s := baseSpec()
	if s.StopTimeout(def) != def {
		t.Fatal("no grace period: want the default")
	}
	for g, want := range map[int64]time.Duration{0: MinStopTimeout, 1: MinStopTimeout, 30: 30 * time.Second} {
		s.TerminationGracePeriodSeconds = &g
		if got := s.StopTimeout(def); got != want {
			t.Errorf("grace %d: %v, want %v", g, got, want)
		}
	}
}
