// Package runtime is the seam between the host agent's reconcile loop and
// whatever actually runs VMs: the sim driver (memory only, for scale tests)
// or the containerd driver (real containers on CNI networks).
package runtime

import (
	"context"
	"io"
	"time"

	"github.com/podsphere/podsphere/api"
)

// VMSpec is what a driver needs to run one VM. ID is stable for the VM's
// life (the inventory UID) so a restarted agent finds what it made before.
type VMSpec struct {
	ID            string
	Path          string // inventory path, for labels and logs
	NumCPU        int
	MemoryMB      int64
	CPU           api.Allocation // MHz: reservation -> cpu shares/weight floor, limit -> cfs quota
	Mem           api.Allocation // MB: limit -> memory.max, reservation -> memory.low
	Containers    []api.Container
	RestartPolicy string // Always, OnFailure, Never
	// InitContainers run in order, each to completion, before Containers
	// start, at every power-on.
	InitContainers []api.Container
	// TerminationGracePeriodSeconds is the VM's stop timeout (nil: the
	// agent's default).
	TerminationGracePeriodSeconds *int64
	// Hostname is the guest's host name ("": the VM's name).
	Hostname string
	// DNSPolicy and DNSConfig say what the VM's resolv.conf holds (api.VMSpec's).
	DNSPolicy string
	DNSConfig *api.PodDNSConfig
}

// SpecFor is the runtime spec of an inventory VM: what its host builds it from.
func SpecFor(id, path string, s api.VMSpec) VMSpec {
	return VMSpec{
		ID:                            id,
		Path:                          path,
		NumCPU:                        s.NumCPU,
		MemoryMB:                      s.MemoryMB,
		CPU:                           s.CPU,
		Mem:                           s.Mem,
		Containers:                    s.Containers,
		RestartPolicy:                 s.RestartPolicy,
		InitContainers:                s.InitContainers,
		TerminationGracePeriodSeconds: s.TerminationGracePeriodSeconds,
		Hostname:                      s.Hostname,
		DNSPolicy:                     s.DNSPolicy,
		DNSConfig:                     s.DNSConfig,
	}
}

// NeedsRestart says whether changing a running VM from spec a to spec b
// restarts it: anything but its size and allocations (which a Resizer
// changes live) is built into its containers.
func NeedsRestart(a, b api.VMSpec) bool {
	return ShapeHash(SpecFor("", "", a)) != ShapeHash(SpecFor("", "", b))
}

// StopTimeout is how long the VM's containers get to stop before they are
// killed: its TerminationGracePeriodSeconds, at least MinStopTimeout (the
// kubelet's floor too), or def when it sets none.
func (s VMSpec) StopTimeout(def time.Duration) time.Duration {
	if g := s.TerminationGracePeriodSeconds; g != nil {
		return max(time.Duration(*g)*time.Second, MinStopTimeout)
	}
	return def
}

// MinStopTimeout is the shortest stop timeout a VM's grace period gives:
// the kubelet's minimum shutdown window, so a grace period of 0 still
// sends SIGTERM before SIGKILL.
const MinStopTimeout = 2 * time.Second

// VMState is what a driver observes of one VM.
type VMState struct {
	ID         string
	Path       string
	PowerState string // api.PoweredOn or api.PoweredOff
	BootTime   time.Time
	IP         string
	Restarts   int
	Containers []api.ContainerStatus
	// SpecHash is SpecHash of the spec the VM was created with, as the
	// driver recorded it; "" when unknown (a VM an older agent made), which
	// the agent takes as "unchanged".
	SpecHash string
	// ShapeHash is ShapeHash of that spec. Only a Resizer reports it: a VM
	// whose SpecHash changed but whose ShapeHash did not is resized in
	// place; "" means recreate it.
	ShapeHash string
	// Ready: the VM runs and every container (init containers aside) is
	// ready (passes its readiness probe, or has none and has started).
	// ReadySince is when it became so; zero while not ready.
	Ready      bool
	ReadySince time.Time
	// Phase is api.PhaseSucceeded or api.PhaseFailed once a run-to-
	// completion VM (restart policy Never or OnFailure) has completed; ""
	// otherwise. A completed VM is powered off and stays so: the agent does
	// not start it again (vm.power -reset does).
	Phase string
	// Message says what the runtime did on its own that the admin should
	// know, e.g. a restart after a failed liveness probe; "" for nothing.
	Message string
	// Grace is the terminationGracePeriodSeconds the VM was created with
	// (nil: none), so a VM that left vcenter is stopped with it too.
	Grace *int64
}

// Notifier is a runtime whose VMs change on their own (a probe verdict, a
// container exiting or restarting), and that says so: the agent gives it
// a function to call with the VM's ID, and reports that VM's status at
// once instead of at the next StatusInterval pass. notify must not block;
// the agent coalesces calls.
type Notifier interface {
	SetNotify(notify func(vmID string))
}

// Recreator is a runtime that can replace a VM's containers with ones built
// from a new spec in one step, keeping what a spec change does not touch
// (the VM's network attachment and address). The agent uses it, when the
// runtime has it, for a VM whose spec changed; otherwise it stops, deletes
// and creates the VM. Recreate stops the old containers (killing them after
// timeout) and leaves the new ones created, not started. On an error the VM
// is either as it was (nothing stopped yet) or gone.
type Recreator interface {
	Recreate(ctx context.Context, spec VMSpec, timeout time.Duration) error
}

// Resizer is a runtime that can change a VM's size and allocations (NumCPU,
// MemoryMB, CPU and memory reservations and limits) in place: the limits of
// its cgroup change at once, running or not, with no restart, and it then
// reports the new spec's SpecHash. spec differs from the VM's recorded one
// only in those fields (same ShapeHash).
type Resizer interface {
	Resize(ctx context.Context, spec VMSpec) error
}

// Capacity is what the machine offers to VMs.
type Capacity struct {
	CPUMHz int64
	MemMB  int64
}

// Metrics is a VM's measured use.
type Metrics struct {
	CPUUsageMHz int64
	MemUsageMB  int64
}

// Runtime runs VMs on one host. Every method is idempotent: the reconcile
// loop may repeat a call after a crash or a lost reply.
type Runtime interface {
	Name() string
	Capacity(ctx context.Context) (Capacity, error)
	// List returns every VM this driver runs for this host, so a restarted
	// agent adopts them instead of starting them again.
	List(ctx context.Context) ([]VMState, error)
	// Create prepares the VM (containers, network) without starting it.
	Create(ctx context.Context, spec VMSpec) error
	Start(ctx context.Context, id string) error
	// Stop asks the containers to stop, and kills them after timeout.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Delete removes everything Create made; deleting an unknown VM is not an error.
	Delete(ctx context.Context, id string) error
	Status(ctx context.Context, id string) (VMState, error)
	Logs(ctx context.Context, id, container string, follow bool, w io.Writer) error
	Exec(ctx context.Context, id, container string, cmd []string, stdout, stderr io.Writer) (exitCode int, err error)
	Metrics(ctx context.Context, id string) (Metrics, error)
}

// Peer is another host of the cluster: its pod subnet is reached via its address.
type Peer struct {
	Host   string // inventory path, for logs
	Subnet string // e.g. 10.244.2.0/24
	Via    string // the peer host's IP
}

// Networker is a runtime that attaches VMs to a host network built from the
// pod subnet vcenter assigns at join, with routes to the other hosts' pod
// subnets (the kubenet model). The agent calls SetupNetwork once after
// joining and before reconciling, then SetPeerRoutes whenever hosts join,
// leave or fail.
type Networker interface {
	SetupNetwork(ctx context.Context, podSubnet string) error
	SetPeerRoutes(peers []Peer) error
}
