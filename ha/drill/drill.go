// Package drill turns what a failover drill observed into its report: the
// runner (psc ha.drill) injects the failure and records, every sample
// interval, what vcenter says (hosts, VMs, events) and what every host's
// runtime really runs, read directly; Build decides from those records
// alone when the failure was seen and declared, how each protected VM came
// back, whether any VM ran twice, and whether the drill passed. No clock,
// no I/O: tests script the observations.
package drill

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/podsphere/podsphere/api"
)

// Protected is a VM HA protected when the drill started, where it ran.
type Protected struct {
	VM       string // inventory path
	UID      string
	Priority string
	Host     string // host name
}

// VMObs is one read of a VM from vcenter.
type VMObs struct {
	At         time.Time
	VM         string
	Host       string // spec: where it is registered
	StatusHost string // status: where its host says it runs
	PowerState string // status
	Ready      bool
	Message    string // what HA says of it (attempts, why not restarted)
	// Gone: the VM is no longer in the inventory (a replica set retired
	// it once its replacement was ready elsewhere).
	Gone bool
}

// HostObs is one read of a host's connection state from vcenter.
type HostObs struct {
	At    time.Time
	Host  string
	State string
}

// Sample is one direct read of every host's runtime: host name to the IDs
// (UIDs or paths) of the VMs running there.
type Sample struct {
	At      time.Time
	Running map[string][]string
}

// Event is an inventory event the drill saw.
type Event struct {
	At      time.Time
	Type    string
	Target  string
	Message string
}

// Input is everything the runner recorded.
type Input struct {
	Name, Cluster, Mode string
	Hosts               []string // host names the failure hit
	IsolationResponse   string
	// KeepRunning: the failure should not move anything (an isolated host
	// whose isolation response is disabled keeps its VMs).
	KeepRunning bool

	Injected, Healed, Ended time.Time
	Protected               []Protected
	VMs                     []VMObs
	HostStates              []HostObs
	Samples                 []Sample
	SampleInterval          time.Duration
	Events                  []Event
	// DeclaredTypes are the event types by which HA declares a host failed
	// or isolated.
	DeclaredTypes []string

	HostResponse   string
	HostResponseAt time.Time

	CapacityBefore, CapacityAfter api.DrillCapacity
	Requests                      *api.DrillRequests
	ClusterIPRequests             *api.DrillRequests
	RequestsNotSent               []string
}

// Build makes the report.
func Build(in Input) api.HADrillReport {
	r := api.HADrillReport{Name: in.Name, Cluster: in.Cluster, Hosts: append([]string(nil), in.Hosts...), Mode: in.Mode,
		IsolationResponse: in.IsolationResponse, Injected: in.Injected, Healed: in.Healed, Ended: in.Ended,
		HostResponse: in.HostResponse, HostResponseAt: in.HostResponseAt,
		CapacityBefore: in.CapacityBefore, CapacityAfter: in.CapacityAfter, Requests: in.Requests,
		ClusterIPRequests: in.ClusterIPRequests, RequestsNotSent: append([]string(nil), in.RequestsNotSent...),
		Samples: len(in.Samples), SampleIntervalMs: int(in.SampleInterval / time.Millisecond)}
	hit := map[string]bool{}
	for _, h := range in.Hosts {
		hit[h] = true
	}
	// Detected: a failure is seen when vcenter calls the host
	// notResponding; a maintenance drill when the host is in maintenance
	// (every VM off it).
	seen := api.HostNotResponding
	if in.Mode == api.DrillMaintenance {
		seen = api.HostMaintenance
	}
	for _, h := range byTime(in.HostStates, func(o HostObs) time.Time { return o.At }) {
		if hit[h.Host] && h.State == seen && !h.At.Before(in.Injected) {
			r.Detected = h.At
			break
		}
	}
	declared := map[string]bool{}
	for _, t := range in.DeclaredTypes {
		declared[t] = true
	}
	for _, e := range byTime(in.Events, func(e Event) time.Time { return e.At }) {
		if declared[e.Type] && hit[api.Base(e.Target)] && !e.At.Before(in.Injected) {
			r.Declared, r.Verdict = e.At, e.Message
			break
		}
	}

	samples := byTime(in.Samples, func(s Sample) time.Time { return s.At })
	names := map[string]string{} // runtime ID -> VM path
	for _, p := range in.Protected {
		names[p.UID] = p.VM
		names[p.VM] = p.VM
	}
	r.Duplicates = duplicates(samples, names)

	obs := map[string][]VMObs{}
	for _, o := range byTime(in.VMs, func(o VMObs) time.Time { return o.At }) {
		obs[o.VM] = append(obs[o.VM], o)
	}
	recovered := in.Injected
	allBack := true
	for _, p := range in.Protected {
		v := vmStory(p, obs[p.VM], samples, in.Injected, in.Mode == api.DrillMaintenance)
		switch {
		case in.KeepRunning && v.To != "":
			r.Failures = append(r.Failures, fmt.Sprintf("%s was restarted on %s although its host kept it running", p.VM, v.To))
		case in.KeepRunning && !v.Stopped.IsZero():
			r.Failures = append(r.Failures, fmt.Sprintf("%s stopped on %s at %s although the host should have kept it", p.VM, p.Host, offset(v.Stopped, in.Injected)))
		}
		switch {
		case v.Outcome == "restarted" || v.Outcome == "migrated" || v.Outcome == "replaced":
			if v.Ready.After(recovered) {
				recovered = v.Ready
			}
		case v.Outcome == "kept running" && in.KeepRunning:
		default:
			// A failure that stops the host (a crash, an isolation
			// response) is over only once the VM runs elsewhere.
			allBack = false
		}
		r.VMs = append(r.VMs, v)
	}
	if in.Mode == api.DrillMaintenance {
		if r.Detected.IsZero() {
			allBack = false
			r.Failures = append(r.Failures, fmt.Sprintf("%s did not reach maintenance mode before the drill ended", strings.Join(in.Hosts, ",")))
		} else if r.Detected.After(recovered) {
			recovered = r.Detected
		}
	}
	if allBack {
		r.Recovered = recovered
		r.RecoverySeconds = recovered.Sub(in.Injected).Seconds()
	} else {
		for _, v := range r.VMs {
			switch v.Outcome {
			case "not restarted":
				r.Failures = append(r.Failures, fmt.Sprintf("%s was not back before the drill ended: %s", v.VM, orUnknown(v.Reason)))
			case "kept running":
				r.Failures = append(r.Failures, fmt.Sprintf("%s still ran on %s, where the failure should have stopped it", v.VM, v.From))
			}
		}
	}
	for _, d := range r.Duplicates {
		r.Failures = append(r.Failures, fmt.Sprintf("%s ran on %s at once (%s)", d.VM, strings.Join(d.Hosts, " and "), offset(d.At, in.Injected)))
	}
	if r.Samples == 0 {
		r.Failures = append(r.Failures, "no runtime sample was taken: duplicates could not be ruled out")
	}
	// Requests lost while a host fails are the figure the drill measures,
	// not a fault of HA's (a crashed host's connections die with it): they
	// are reported, they do not fail the drill.
	r.Passed = len(r.Failures) == 0
	return r
}

// vmStory follows one protected VM through the drill's observations.
func vmStory(p Protected, obs []VMObs, samples []Sample, injected time.Time, maintenance bool) api.HADrillVM {
	v := api.HADrillVM{VM: p.VM, Priority: p.Priority, From: p.Host}
	for _, s := range samples {
		if s.At.Before(injected) {
			continue
		}
		if !runs(s, p.Host, p) {
			v.Stopped = s.At
			break
		}
	}
	var last VMObs
	var gone time.Time
	for _, o := range obs {
		if o.At.Before(injected) {
			continue
		}
		last = o
		if o.Gone {
			if gone.IsZero() {
				gone = o.At
			}
			continue
		}
		if o.Host == p.Host || o.Host == "" {
			continue
		}
		if v.Restarted.IsZero() || o.Host != v.To {
			// (re)registered elsewhere: a second move restarts the story
			v.To, v.Restarted, v.Running, v.Ready = o.Host, o.At, time.Time{}, time.Time{}
		}
		if v.Running.IsZero() && o.PowerState == api.PoweredOn && o.StatusHost == o.Host {
			v.Running = o.At
		}
		if v.Ready.IsZero() && !v.Running.IsZero() && o.Ready && o.StatusHost == o.Host {
			v.Ready = o.At
		}
	}
	switch {
	case !v.Ready.IsZero():
		v.Outcome = "restarted"
		if maintenance {
			v.Outcome = "migrated"
		}
	case !gone.IsZero():
		// Its owner removed it: in maintenance mode a replica set retires
		// a member only once its replacement is ready elsewhere.
		v.Outcome, v.Ready = "replaced", gone
		if !maintenance {
			v.Outcome, v.Reason = "not restarted", "it was removed from the inventory during the drill"
		}
	case v.To == "" && v.Stopped.IsZero():
		v.Outcome = "kept running"
	default:
		v.Outcome, v.Reason = "not restarted", last.Message
		if v.To != "" && v.Reason == "" {
			v.Reason = fmt.Sprintf("registered on %s but not ready there", v.To)
		}
	}
	return v
}

func runs(s Sample, host string, p Protected) bool {
	for _, id := range s.Running[host] {
		if id == p.UID || id == p.VM {
			return true
		}
	}
	return false
}

// duplicates lists each VM seen on two or more hosts in one sample, once,
// at the first sample that showed it.
func duplicates(samples []Sample, names map[string]string) []api.DrillDuplicate {
	var out []api.DrillDuplicate
	seen := map[string]bool{}
	for _, s := range samples {
		where := map[string][]string{}
		hosts := make([]string, 0, len(s.Running))
		for h := range s.Running {
			hosts = append(hosts, h)
		}
		sort.Strings(hosts)
		for _, h := range hosts {
			for _, id := range s.Running[h] {
				name := names[id]
				if name == "" {
					name = id
				}
				if !contains(where[name], h) {
					where[name] = append(where[name], h)
				}
			}
		}
		vms := make([]string, 0, len(where))
		for vm := range where {
			vms = append(vms, vm)
		}
		sort.Strings(vms)
		for _, vm := range vms {
			if len(where[vm]) > 1 && !seen[vm] {
				seen[vm] = true
				out = append(out, api.DrillDuplicate{VM: vm, Hosts: where[vm], At: s.At})
			}
		}
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func byTime[T any](xs []T, at func(T) time.Time) []T {
	out := append([]T(nil), xs...)
	sort.SliceStable(out, func(i, j int) bool { return at(out[i]).Before(at(out[j])) })
	return out
}

// offset prints t relative to the injection, "+3.21s".
func offset(t, injected time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%+.2fs", t.Sub(injected).Seconds()) // a request stream starts before the injection
}

// Offset is offset for the CLI's table.
func Offset(t, injected time.Time) string { return offset(t, injected) }

func orUnknown(s string) string {
	if s == "" {
		return "no reason recorded"
	}
	return s
}
