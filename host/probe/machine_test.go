package probe

import (
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func sec(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Second))) }

func execProbe(p api.Probe) *api.Probe {
	p.Exec = &api.ExecAction{Command: []string{"true"}}
	return &p
}

var (
	ok   = Outcome{Result: Success}
	bad  = Outcome{Result: Failure, Message: "HTTP probe failed with statuscode: 500"}
	lost = Outcome{Result: Unknown}
)

// step is one tick of one probe: if it is due at time at, run it with
// outcome o; then the machine's verdicts must be as given.
type step struct {
	at      float64
	kind    Kind
	o       Outcome
	due     bool // Tick says it runs
	started bool
	ready   bool
	kill    bool // this step's Change asks for the kill
}

func run(t *testing.T, c api.Container, steps []step) *Machine {
	t.Helper()
	m := NewMachine(c, t0, time.Second)
	for i, s := range steps {
		due := m.Tick(s.kind, sec(s.at))
		if due != s.due {
			t.Fatalf("step %d (%s at %vs): due %v, want %v", i, s.kind, s.at, due, s.due)
		}
		var ch Change
		if due {
			ch = m.Record(s.kind, s.o, sec(s.at))
		}
		if m.Started() != s.started || m.Ready() != s.ready || ch.Kill != s.kill {
			t.Fatalf("step %d (%s at %vs, %s): started %v ready %v kill %v, want %v %v %v",
				i, s.kind, s.at, s.o.Result, m.Started(), m.Ready(), ch.Kill, s.started, s.ready, s.kill)
		}
	}
	return m
}

func TestNoProbes(t *testing.T) {
	m := NewMachine(api.Container{Name: "c"}, t0, 0)
	if !m.Started() || !m.Ready() || !m.ReadySince().Equal(t0) || m.Probes() {
		t.Fatalf("no probes: started %v ready %v since %v", m.Started(), m.Ready(), m.ReadySince())
	}
	for _, k := range Kinds {
		if !m.Next(k).IsZero() || m.Tick(k, sec(100)) {
			t.Fatalf("%s scheduled without a probe", k)
		}
	}
}

func TestReadiness(t *testing.T) {
	c := api.Container{ReadinessProbe: execProbe(api.Probe{InitialDelaySeconds: 5, PeriodSeconds: 2, SuccessThreshold: 2, FailureThreshold: 2})}
	m := run(t, c, []step{
		{at: 0, kind: Readiness, due: false, started: true},       // initial delay: not ready, not probed
		{at: 4.9, kind: Readiness, due: false, started: true},     // still in the delay
		{at: 5, kind: Readiness, o: ok, due: true, started: true}, // 1 success of 2
		{at: 6, kind: Readiness, due: false, started: true},       // between ticks
		{at: 7, kind: Readiness, o: ok, due: true, started: true, ready: true},
		{at: 9, kind: Readiness, o: bad, due: true, started: true, ready: true},   // 1 failure of 2
		{at: 11, kind: Readiness, o: lost, due: true, started: true, ready: true}, // unknown: thrown away
		{at: 13, kind: Readiness, o: bad, due: true, started: true},               // 2nd failure in a row: not ready
		{at: 15, kind: Readiness, o: ok, due: true, started: true},
		{at: 17, kind: Readiness, o: ok, due: true, started: true, ready: true},
	})
	if !m.ReadySince().Equal(sec(17)) {
		t.Fatalf("ReadySince %v, want 17s", m.ReadySince())
	}
	if !m.Next(Readiness).Equal(sec(19)) {
		t.Fatalf("next readiness %v, want 19s", m.Next(Readiness))
	}
}

func TestLivenessKills(t *testing.T) {
	c := api.Container{LivenessProbe: execProbe(api.Probe{PeriodSeconds: 1, FailureThreshold: 3})}
	m := run(t, c, []step{
		{at: 0, kind: Liveness, o: ok, due: true, started: true, ready: true},
		{at: 1, kind: Liveness, o: bad, due: true, started: true, ready: true},
		{at: 2, kind: Liveness, o: bad, due: true, started: true, ready: true},
		{at: 3, kind: Liveness, o: ok, due: true, started: true, ready: true}, // the run of failures breaks
		{at: 4, kind: Liveness, o: bad, due: true, started: true, ready: true},
		{at: 5, kind: Liveness, o: bad, due: true, started: true, ready: true},
		{at: 6, kind: Liveness, o: bad, due: true, started: true, ready: true, kill: true},
		{at: 7, kind: Liveness, due: false, started: true, ready: true}, // holds until the next run
	})
	if !m.Killed() || !m.Next(Liveness).IsZero() {
		t.Fatalf("after the kill: killed %v next %v", m.Killed(), m.Next(Liveness))
	}
	if got := m.Record(Liveness, bad, sec(8)); got.Any() {
		t.Fatalf("a held probe changed something: %+v", got)
	}
}

func TestLivenessReason(t *testing.T) {
	m := NewMachine(api.Container{LivenessProbe: execProbe(api.Probe{FailureThreshold: 1})}, t0, 0)
	if !m.Tick(Liveness, t0) {
		t.Fatal("liveness not due at start")
	}
	ch := m.Record(Liveness, bad, t0)
	if !ch.Kill || ch.Reason != "liveness probe failed: HTTP probe failed with statuscode: 500" {
		t.Fatalf("change %+v", ch)
	}
}

func TestStartupGates(t *testing.T) {
	c := api.Container{
		StartupProbe:   execProbe(api.Probe{PeriodSeconds: 1, FailureThreshold: 5}),
		LivenessProbe:  execProbe(api.Probe{PeriodSeconds: 3, FailureThreshold: 1}),
		ReadinessProbe: execProbe(api.Probe{InitialDelaySeconds: 1, PeriodSeconds: 10}),
	}
	m := NewMachine(c, t0, 0)
	if m.Started() || m.Ready() {
		t.Fatal("started before the startup probe passed")
	}
	// Liveness and readiness ticks before the start pass without a probe.
	if m.Tick(Liveness, sec(0)) || m.Tick(Readiness, sec(1)) {
		t.Fatal("liveness or readiness probed before started")
	}
	if !m.Next(Liveness).Equal(sec(3)) || !m.Next(Readiness).Equal(sec(11)) {
		t.Fatalf("skipped ticks moved to %v and %v, want 3s and 11s", m.Next(Liveness), m.Next(Readiness))
	}
	for i := 0; i < 2; i++ {
		if !m.Tick(Startup, sec(float64(i))) || m.Record(Startup, bad, sec(float64(i))).Any() {
			t.Fatalf("startup failure %d below the threshold changed something", i)
		}
	}
	if !m.Tick(Startup, sec(2)) {
		t.Fatal("startup not due at 2s")
	}
	ch := m.Record(Startup, ok, sec(2))
	if !ch.Started || ch.Ready || !m.Started() || m.Ready() {
		t.Fatalf("startup passed: %+v started %v ready %v", ch, m.Started(), m.Ready())
	}
	if !m.Next(Startup).IsZero() || m.Tick(Startup, sec(3)) {
		t.Fatal("startup probe still scheduled after it passed")
	}
	// Readiness runs at once (its delay is over); liveness keeps its tick.
	if !m.Next(Readiness).Equal(sec(2)) || !m.Next(Liveness).Equal(sec(3)) {
		t.Fatalf("after start: readiness at %v (want 2s), liveness at %v (want 3s)", m.Next(Readiness), m.Next(Liveness))
	}
	if !m.Tick(Readiness, sec(2)) {
		t.Fatal("readiness not due right after the start")
	}
	if ch := m.Record(Readiness, ok, sec(2)); !ch.Ready || !m.Ready() || !m.ReadySince().Equal(sec(2)) {
		t.Fatalf("readiness passed: %+v ready %v since %v", ch, m.Ready(), m.ReadySince())
	}
	if !m.Tick(Liveness, sec(3)) {
		t.Fatal("liveness not due at 3s")
	}
	if ch := m.Record(Liveness, bad, sec(3)); !ch.Kill || !strings.HasPrefix(ch.Reason, "liveness probe failed") {
		t.Fatalf("liveness failure at threshold 1: %+v", ch)
	}
}

func TestStartupFailureKills(t *testing.T) {
	c := api.Container{StartupProbe: execProbe(api.Probe{PeriodSeconds: 1, FailureThreshold: 2})}
	run(t, c, []step{
		{at: 0, kind: Startup, o: bad, due: true},
		{at: 1, kind: Startup, o: bad, due: true, kill: true},
		{at: 2, kind: Startup, due: false},
	})
}

func TestStartupWithoutReadinessIsReadyWhenStarted(t *testing.T) {
	c := api.Container{StartupProbe: execProbe(api.Probe{InitialDelaySeconds: 3})}
	m := run(t, c, []step{
		{at: 0, kind: Startup, due: false},
		{at: 3, kind: Startup, o: ok, due: true, started: true, ready: true},
	})
	if !m.ReadySince().Equal(sec(3)) {
		t.Fatalf("ReadySince %v", m.ReadySince())
	}
}

// A probe that is late (the host was busy) runs once and moves on by
// whole periods: no burst of catch-up probes, no hot loop.
func TestLateTickSkipsAhead(t *testing.T) {
	c := api.Container{ReadinessProbe: execProbe(api.Probe{PeriodSeconds: 2})}
	m := NewMachine(c, t0, 0)
	if !m.Tick(Readiness, sec(9)) {
		t.Fatal("not due")
	}
	if m.Tick(Readiness, sec(9)) {
		t.Fatal("due twice at once")
	}
	if !m.Next(Readiness).Equal(sec(10)) {
		t.Fatalf("next %v, want 10s", m.Next(Readiness))
	}
}

func TestDefaults(t *testing.T) {
	m := NewMachine(api.Container{LivenessProbe: execProbe(api.Probe{})}, t0, 0)
	if m.Timeout(Liveness) != time.Second {
		t.Fatalf("default timeout %v", m.Timeout(Liveness))
	}
	m.Tick(Liveness, t0)
	if !m.Next(Liveness).Equal(sec(10)) {
		t.Fatalf("default period: next %v, want 10s", m.Next(Liveness))
	}
	for i := 0; i < 2; i++ {
		if m.Record(Liveness, bad, t0).Kill {
			t.Fatalf("killed after %d failures (default threshold 3)", i+1)
		}
	}
	if !m.Record(Liveness, bad, t0).Kill {
		t.Fatal("not killed after 3 failures")
	}
}
