package fdm

import (
	"fmt"
	"sort"
	"time"

	"github.com/podsphere/podsphere/internal/hads"
)

// Isolation responses as the host applies them. The cluster says
// disabled, powerOff or shutdown; a VM override says powerOff, shutdown or
// none (= disabled), "" leaving the cluster's.
const (
	ResponseDisabled = "disabled"
	ResponsePowerOff = "powerOff"
	ResponseShutdown = "shutdown"
)

// DefaultShutdownTimeout is vSphere's: how long the shutdown isolation
// response waits for a VM to stop after SIGTERM before it kills it.
const DefaultShutdownTimeout = 300 * time.Second

// EffectiveResponse is the isolation response for one VM: its override,
// else the cluster's; anything unknown counts as disabled (the VM keeps
// running: the safe side for availability, and vcenter then does not
// restart it either).
func EffectiveResponse(cluster, vm string) string {
	r := vm
	if r == "" {
		r = cluster
	}
	switch r {
	case ResponsePowerOff, ResponseShutdown:
		return r
	}
	return ResponseDisabled
}

// LocalVM is one VM as the host's runtime has it.
type LocalVM struct {
	UID, Path string
	// Desired: the agent last asked for it to run (it runs, or waits out a
	// restart backoff); Running: some of its processes run now.
	Desired, Running bool
	Response         string // EffectiveResponse for it
}

// Input is everything one tick decides from.
type Input struct {
	Now  time.Time
	Host string // this host's inventory path
	VMs  []LocalVM
	// Locks are the lock files on the lock root as read this tick, by VM UID.
	Locks map[string]hads.Lock
	// Isolated is the Isolation verdict.
	Isolated bool
	// Lease is how long a lock stays valid after its renewal (the fence's
	// figure): a lock older than that has lapsed, its VM was fenced, and
	// renewing it now could overwrite another host's fresh take.
	Lease time.Duration
	// SelfFencing: no heartbeat datastore; the locks are this host's own
	// and renewing them is what keeps its VMs alive.
	SelfFencing bool
	// Confirmed: vcenter said within SelfFenceGrace that the host is
	// connected. Without datastores vcenter restarts a silent host's VMs
	// FenceTime+FenceMargin after that, so renewals stop when it lapses:
	// vcenter not answering, or answering "not responding", both count.
	Confirmed bool
	// ShuttingDown holds the VMs the shutdown isolation response sent
	// SIGTERM, and when.
	ShuttingDown    map[string]time.Time
	ShutdownTimeout time.Duration
}

// StepKind is one thing the FDM does.
type StepKind string

const (
	Renew    StepKind = "renew"    // rewrite the lock held, renewed now
	Kill     StepKind = "kill"     // SIGKILL every process of the VM
	Shutdown StepKind = "shutdown" // SIGTERM, the shutdown isolation response
	Release  StepKind = "release"  // rewrite the lock released, with Reason
)

// Step is one action on one VM.
type Step struct {
	Kind   StepKind
	UID    string
	VM     string
	Reason string
}

// Decide is one tick of the host side of HA, for each local VM:
//
//   - a VM whose lock another host holds, or that was released, must not
//     run here: Kill;
//   - isolated, the isolation response: powerOff kills, shutdown sends
//     SIGTERM and kills after ShutdownTimeout, and once the VM is down its
//     lock is released with the reason, so vcenter may restart it at once;
//     disabled leaves it running;
//   - otherwise the lock of a VM meant to run is renewed; without
//     datastores only while the host is not isolated and vcenter has just
//     confirmed it connected (self-fencing: the fence then kills the VM
//     FenceTime after the last renewal); a lock that already lapsed is
//     not renewed (its fence has killed the VM).
//
// A VM without a lock is left alone: the agent did not protect it, or has
// not taken its lock yet. Decide does no I/O.
func Decide(in Input) []Step {
	var steps []Step
	vms := append([]LocalVM(nil), in.VMs...)
	sort.Slice(vms, func(i, j int) bool { return vms[i].Path < vms[j].Path })
	for _, vm := range vms {
		l, ok := in.Locks[vm.UID]
		if !ok {
			continue
		}
		step := func(k StepKind, reason string) Step { return Step{Kind: k, UID: vm.UID, VM: vm.Path, Reason: reason} }
		if l.Host != in.Host || l.State != hads.Held {
			if vm.Running {
				why := fmt.Sprintf("its lock is held by %s", l.Host)
				if l.State == hads.Released {
					why = fmt.Sprintf("its lock was released by %s (%s)", l.Host, l.Reason)
				}
				steps = append(steps, step(Kill, why))
			}
			continue
		}
		if !vm.Desired && !vm.Running {
			continue // stopped normally: the agent removes the lock
		}
		if in.Isolated && vm.Response != ResponseDisabled {
			reason := "isolation response " + vm.Response
			switch {
			case !vm.Running:
				steps = append(steps, step(Release, reason))
				continue
			case vm.Response == ResponsePowerOff:
				steps = append(steps, step(Kill, reason))
				continue
			}
			since, sent := in.ShuttingDown[vm.UID]
			switch {
			case !sent:
				steps = append(steps, step(Shutdown, reason))
			case in.Now.Sub(since) >= in.ShutdownTimeout:
				steps = append(steps, step(Kill, fmt.Sprintf("%s: still running after %s", reason, in.ShutdownTimeout)))
				continue
			}
			// Still running: the lock stays renewed while it shuts down.
		}
		if in.SelfFencing && (in.Isolated || !in.Confirmed) {
			continue
		}
		if in.Lease > 0 && l.Age(in.Now) >= in.Lease {
			continue // lapsed: only the agent, with vcenter's word, takes it again
		}
		steps = append(steps, step(Renew, ""))
	}
	return steps
}
