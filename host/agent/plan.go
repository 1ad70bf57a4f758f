package agent

import (
	"sort"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/runtime"
)

// DesiredVM is what vcenter wants of one VM assigned to this host.
type DesiredVM struct {
	ID   string // runtime ID: the VM's inventory UID
	Path string
	// PowerState is the spec's; anything but poweredOn means off
	// (containers cannot be suspended).
	PowerState string
	// ResetGeneration is the spec's; ResetDone the one this host last
	// carried out (status.resetGeneration). They differ after vm.power -reset.
	ResetGeneration, ResetDone int64
	// Migration is the ID of the VM's cold migration in progress
	// (spec.migration): the VM is to be stopped here (PowerState is then
	// poweredOff) and, once it is, reported stopped for it, after which
	// vcenter starts it on its destination.
	Migration string
	Spec      runtime.VMSpec // what Create needs
	// Hash is runtime.SpecHash(Spec) when the caller has it already ("" = Plan computes it).
	Hash string
}

// ActionKind is one runtime step.
type ActionKind string

// The runtime steps a plan is made of.
const (
	// Adopt keeps a VM the runtime already has as vcenter wants it: no
	// runtime call, only its status is reported. After an agent restart
	// every healthy VM comes back as Adopt, never as a restart.
	Adopt   ActionKind = "adopt"
	Create  ActionKind = "create"
	Start   ActionKind = "start"
	Stop    ActionKind = "stop"
	Delete  ActionKind = "delete"
	Restart ActionKind = "restart" // vm.power -reset: stop, then start
	// Recreate replaces a VM whose spec changed since its containers were
	// made (runtime.SpecHash differs): stop, delete, create with the new
	// spec, or the runtime's own runtime.Recreator. It leaves the VM
	// stopped; a Start follows when the VM is to run.
	Recreate ActionKind = "recreate"
	// Resize changes a VM's size and allocations in place (runtime.Resizer)
	// when nothing else of its spec changed: a running VM keeps running, with
	// its boot time and restart count, as vm.change promises.
	Resize ActionKind = "resize"
)

// Action is one step for one VM. Spec is set for Create and Recreate.
type Action struct {
	Kind ActionKind
	ID   string
	Path string
	Spec *runtime.VMSpec
	// ResetGeneration is the reset this step carries out (Start and Restart
	// boot the VM afresh, which satisfies any pending reset).
	ResetGeneration int64
	// Grace is the VM's terminationGracePeriodSeconds, for the steps that
	// stop it (nil: the agent's stop timeout).
	Grace *int64
}

// Plan compares what vcenter wants on this host with what the runtime runs
// and returns the steps to close the gap, in the order to run them:
// stops and deletes first (they free capacity), then adopts, creates,
// starts and restarts, each group by VM path. desired holds only the VMs
// whose spec.host is this host; a runtime VM missing from it was deleted or
// moved elsewhere and is stopped and deleted. Plan does no I/O.
//
// A VM whose desired spec differs from the recorded one only in its size and
// allocations (same runtime.ShapeHash, reported by a runtime.Resizer) is
// resized in place, running or not: Resize, and nothing restarts.
// Any other VM whose desired spec hashes (runtime.SpecHash) differently from the hash
// its driver recorded at create is recreated with the new spec: Recreate,
// then Start if it is to run (the fresh boot also carries out any pending
// reset). A VM to stay off is recreated too, right away and without a start,
// after a Stop if it runs, so the host always holds what the spec says and
// the next power-on boots it as is. An empty recorded hash (a VM made by an
// agent that recorded none) means unknown: the VM is taken as unchanged and
// adopted, never recreated, as is every VM whose hash matches.
//
// A run-to-completion VM that has completed (the runtime reports a Phase,
// Succeeded or Failed) is powered off but is not started again: it is
// adopted as it is, until a reset (vm.power -reset) or a spec change
// starts a new run.
func Plan(desired []DesiredVM, actual []runtime.VMState) []Action {
	have := make(map[string]runtime.VMState, len(actual))
	for _, a := range actual {
		have[a.ID] = a
	}
	want := make(map[string]bool, len(desired))
	var free, rest []Action
	for _, d := range desired {
		want[d.ID] = true
		a, exists := have[d.ID]
		running := exists && a.PowerState == api.PoweredOn
		act := func(k ActionKind) Action {
			return Action{Kind: k, ID: d.ID, Path: d.Path, ResetGeneration: d.ResetGeneration, Grace: d.Spec.TerminationGracePeriodSeconds}
		}
		withSpec := func(k ActionKind) Action {
			c := act(k)
			spec := d.Spec
			c.Spec = &spec
			return c
		}
		hash := d.Hash
		if hash == "" && exists && a.SpecHash != "" {
			hash = runtime.SpecHash(d.Spec)
		}
		changed := exists && a.SpecHash != "" && a.SpecHash != hash
		// Only the size and allocations changed, and the runtime resizes in place.
		resize := changed && a.ShapeHash != "" && a.ShapeHash == runtime.ShapeHash(d.Spec)
		if d.PowerState != api.PoweredOn {
			if running {
				free = append(free, act(Stop))
			}
			switch {
			case resize:
				rest = append(rest, withSpec(Resize))
			case changed:
				rest = append(rest, withSpec(Recreate))
			case exists && !running:
				rest = append(rest, act(Adopt))
			}
			continue
		}
		switch {
		case !exists:
			rest = append(rest, withSpec(Create), act(Start))
		case resize:
			rest = append(rest, withSpec(Resize))
			switch {
			case !running && (a.Phase == "" || d.ResetGeneration != d.ResetDone):
				rest = append(rest, act(Start))
			case running && d.ResetGeneration != d.ResetDone:
				rest = append(rest, act(Restart))
			}
		case changed:
			rest = append(rest, withSpec(Recreate), act(Start))
		case !running && a.Phase != "" && d.ResetGeneration == d.ResetDone:
			rest = append(rest, act(Adopt)) // completed: it stays so
		case !running:
			rest = append(rest, act(Start))
		case d.ResetGeneration != d.ResetDone:
			rest = append(rest, act(Restart))
		default:
			rest = append(rest, act(Adopt))
		}
	}
	for _, a := range actual {
		if want[a.ID] {
			continue
		}
		if a.PowerState == api.PoweredOn {
			free = append(free, Action{Kind: Stop, ID: a.ID, Path: a.Path, Grace: a.Grace})
		}
		free = append(free, Action{Kind: Delete, ID: a.ID, Path: a.Path})
	}
	byPath(free)
	byPath(rest)
	return append(free, rest...)
}

// byPath orders steps by VM path, keeping each VM's own steps in order.
func byPath(as []Action) {
	sort.SliceStable(as, func(i, j int) bool {
		if as[i].Path != as[j].Path {
			return as[i].Path < as[j].Path
		}
		return as[i].ID < as[j].ID
	})
}
