// Package probe is the host agent's container prober, Kubernetes' kubelet
// prober for podsphere VMs (vSphere's "VM monitoring"): startup, liveness
// and readiness probes of one container run.
//
// Machine (this file) is the pure state machine: probe outcomes and times
// go in, verdicts come out (started, ready, kill). It does no I/O and reads
// no clock, so it is tested tick by tick. check.go runs one probe action
// (exec, httpGet, tcpSocket); run.go drives a Machine on goroutines with
// real timers.
//
// The semantics are the kubelet's (pkg/kubelet/prober/worker.go):
//
//   - Each probe first runs InitialDelaySeconds after the container started,
//     then every PeriodSeconds.
//   - A startup probe disables the others until it succeeds; the container
//     is then "started" and the startup probe runs no more. Without one the
//     container is started as soon as it runs.
//   - Readiness starts as Failure (not ready), liveness as Success. A verdict
//     flips after SuccessThreshold consecutive successes or FailureThreshold
//     consecutive failures; in between the old verdict stands.
//   - A liveness or startup verdict of Failure means: kill the container
//     (the runtime restarts it per the restart policy). That probe then
//     holds until the container's next run, which gets a new Machine.
//   - An outcome of Unknown (the prober itself failed, e.g. the container
//     was not running at that moment) is thrown away.
//   - Without a readiness probe a container is ready once started.
//
// One difference: when the startup probe passes, the kubelet runs the
// readiness probe at once (UpdatePodStatus triggers it) and the liveness
// probe at its next tick; so does Machine.
package probe

import (
	"time"

	"github.com/podsphere/podsphere/api"
)

// Result is one probe's outcome, or a verdict.
type Result int

const (
	Unknown Result = iota
	Success
	Failure
)

func (r Result) String() string {
	switch r {
	case Success:
		return "success"
	case Failure:
		return "failure"
	default:
		return "unknown"
	}
}

// Kind is which of a container's probes.
type Kind int

const (
	Startup Kind = iota
	Liveness
	Readiness
	numKinds
)

// Kinds lists every kind, in the order probes are reported.
var Kinds = [...]Kind{Startup, Liveness, Readiness}

func (k Kind) String() string {
	switch k {
	case Startup:
		return "startup"
	case Liveness:
		return "liveness"
	default:
		return "readiness"
	}
}

// Outcome is what one run of a probe found; Message says why it failed.
type Outcome struct {
	Result  Result
	Message string
}

// Change is what Record changed, for the caller to act on.
type Change struct {
	Started bool // the container just became started (startup probe passed)
	Ready   bool // readiness changed (see Machine.Ready)
	// Kill: the liveness or startup probe just failed for good; Reason
	// says which and why ("liveness probe failed: HTTP probe failed with
	// statuscode: 500").
	Kill   bool
	Reason string
}

// Any says whether anything changed.
func (c Change) Any() bool { return c.Started || c.Ready || c.Kill }

// worker is one probe of the container.
type worker struct {
	spec    api.Probe // defaults applied
	first   time.Time // InitialDelaySeconds after the start: no run before
	next    time.Time // when it is next due
	last    Result    // last outcome kept (not Unknown)
	run     int       // how many times in a row last came
	verdict Result
	hold    bool // liveness/startup failed: no more probing this run
}

// Machine is the probe state of one run of one container: from its start
// to its exit (a restarted container gets a new Machine). Not safe for
// concurrent use; Runner locks around it.
type Machine struct {
	workers  [numKinds]*worker
	unit     time.Duration
	started  bool
	readyAt  time.Time // when the container last became ready
	killed   bool
	lastFail [numKinds]string
}

// NewMachine is the probe state of container c, whose run started at
// start. unit is the length of one of the probes' seconds (time.Second;
// tests shrink it); 0 means time.Second.
func NewMachine(c api.Container, start time.Time, unit time.Duration) *Machine {
	if unit <= 0 {
		unit = time.Second
	}
	m := &Machine{unit: unit}
	for k, p := range map[Kind]*api.Probe{Startup: c.StartupProbe, Liveness: c.LivenessProbe, Readiness: c.ReadinessProbe} {
		if p == nil {
			continue
		}
		spec := p.WithDefaults()
		first := start.Add(time.Duration(spec.InitialDelaySeconds) * unit)
		w := &worker{spec: spec, first: first, next: first}
		switch k {
		case Readiness:
			w.verdict = Failure
		case Liveness:
			w.verdict = Success
		}
		m.workers[k] = w
	}
	if m.workers[Startup] == nil {
		m.started = true
		if m.workers[Readiness] == nil {
			m.readyAt = start
		}
	}
	return m
}

// Has says whether the container has a probe of kind k.
func (m *Machine) Has(k Kind) bool { return m.workers[k] != nil }

// Probes says whether the container has any probe at all.
func (m *Machine) Probes() bool {
	for _, w := range m.workers {
		if w != nil {
			return true
		}
	}
	return false
}

// Timeout is how long one run of probe k may take.
func (m *Machine) Timeout(k Kind) time.Duration {
	if w := m.workers[k]; w != nil {
		return time.Duration(w.spec.TimeoutSeconds) * m.unit
	}
	return 0
}

// Spec is probe k with defaults applied (zero Probe when there is none).
func (m *Machine) Spec(k Kind) api.Probe {
	if w := m.workers[k]; w != nil {
		return w.spec
	}
	return api.Probe{}
}

// Next is when probe k is next due; zero when it will never run again in
// this container run (no such probe, or it holds).
func (m *Machine) Next(k Kind) time.Time {
	w := m.workers[k]
	if w == nil || w.hold || (k == Startup && m.started) || m.killed {
		return time.Time{}
	}
	return w.next
}

// Tick says whether probe k is to run at now, and if it is due moves its
// schedule on by whole periods past now (a tick the container is not
// probed at, like liveness before the startup probe passed, is skipped as
// the kubelet skips it). A Tick before Next changes nothing.
func (m *Machine) Tick(k Kind, now time.Time) bool {
	w := m.workers[k]
	if w == nil || w.hold || m.killed || now.Before(w.next) {
		return false
	}
	period := time.Duration(w.spec.PeriodSeconds) * m.unit
	for !w.next.After(now) {
		w.next = w.next.Add(period)
	}
	switch k {
	case Startup:
		return !m.started
	default:
		return m.started
	}
}

// Record applies the outcome of a run of probe k that started at at.
func (m *Machine) Record(k Kind, o Outcome, at time.Time) Change {
	var ch Change
	w := m.workers[k]
	if w == nil || w.hold || m.killed || o.Result == Unknown {
		return ch
	}
	if o.Result == Failure {
		m.lastFail[k] = o.Message
	}
	if o.Result == w.last {
		w.run++
	} else {
		w.last, w.run = o.Result, 1
	}
	if o.Result == Failure && w.run < w.spec.FailureThreshold || o.Result == Success && w.run < w.spec.SuccessThreshold {
		return ch // below the threshold: the verdict stands
	}
	wasReady := m.Ready()
	w.verdict = o.Result
	switch {
	case k == Startup && o.Result == Success && !m.started:
		m.started, ch.Started = true, true
		// The kubelet runs the readiness probe right away once started.
		if r := m.workers[Readiness]; r != nil && !r.first.After(at) {
			r.next = at
		}
	case (k == Liveness || k == Startup) && o.Result == Failure:
		w.hold, w.run = true, 0
		m.killed, ch.Kill = true, true
		ch.Reason = k.String() + " probe failed"
		if o.Message != "" {
			ch.Reason += ": " + o.Message
		}
	}
	if now := m.Ready(); now != wasReady {
		ch.Ready = true
		if now {
			m.readyAt = at
		}
	}
	return ch
}

// Started is the container's Started: its startup probe passed, or it has none.
func (m *Machine) Started() bool { return m.started }

// Ready is the container's Ready: started, and its readiness probe's
// verdict is Success (or it has no readiness probe).
func (m *Machine) Ready() bool {
	if !m.started {
		return false
	}
	if r := m.workers[Readiness]; r != nil {
		return r.verdict == Success
	}
	return true
}

// ReadySince is when the container last became ready; zero while not ready.
func (m *Machine) ReadySince() time.Time {
	if !m.Ready() {
		return time.Time{}
	}
	return m.readyAt
}

// Killed says whether a liveness or startup verdict asked for the kill.
func (m *Machine) Killed() bool { return m.killed }

// LastFailure is the message of probe k's last failed run ("" if none).
func (m *Machine) LastFailure(k Kind) string { return m.lastFail[k] }
