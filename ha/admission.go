package ha

import (
	"fmt"
	"sort"

	"github.com/podsphere/podsphere/api"
)

// Admission control policies, as vSphere HA's.
const (
	// PolicyPercentage keeps the capacity of the largest
	// HostFailuresTolerated hosts free (vSphere's "cluster resource
	// percentage", computed from the host failures to tolerate).
	PolicyPercentage = "percentage"
	// PolicySlot counts slots: the largest CPU and the largest memory
	// reservation of the powered-on VMs make one slot; the cluster must keep
	// enough slots free to restart every VM after the largest hosts fail.
	PolicySlot = "slot"
)

// Minimum slot size when no VM reserves anything: vSphere's 32 MHz, and a
// container VM's memory floor.
const (
	MinSlotCPU = 32
	MinSlotMem = 64
)

// CapacityHost is one host that counts for failover capacity (connected,
// not in maintenance).
type CapacityHost struct {
	Name        string
	CPUCapacity int64
	MemCapacity int64
}

// Load is what the cluster's powered-on protected VMs reserve, and the
// largest single reservations (the slot size).
type Load struct {
	VMs                      int
	CPUReserved, MemReserved int64
	MaxCPU, MaxMem           int64
}

// Failover is the failover capacity of a cluster under its policy.
type Failover struct {
	Policy   string
	Failures int // host failures tolerated
	// Percentage policy: capacity kept for failover and what may be reserved.
	CPUTotal, MemTotal       int64
	CPUKept, MemKept         int64
	CPUReserved, MemReserved int64
	// Slot policy.
	SlotCPU, SlotMem int64
	TotalSlots       int // all hosts
	UsableSlots      int // after the largest hosts fail
	UsedSlots        int
}

// FailoverCapacity computes the cluster's failover capacity.
func FailoverCapacity(policy string, failures int, hosts []CapacityHost, load Load) Failover {
	if policy == "" {
		policy = PolicyPercentage
	}
	f := Failover{Policy: policy, Failures: failures, CPUReserved: load.CPUReserved, MemReserved: load.MemReserved, UsedSlots: load.VMs}
	for _, h := range hosts {
		f.CPUTotal += h.CPUCapacity
		f.MemTotal += h.MemCapacity
	}
	f.CPUKept = largest(hosts, failures, func(h CapacityHost) int64 { return h.CPUCapacity })
	f.MemKept = largest(hosts, failures, func(h CapacityHost) int64 { return h.MemCapacity })
	f.SlotCPU, f.SlotMem = max(load.MaxCPU, MinSlotCPU), max(load.MaxMem, MinSlotMem)
	slots := make([]int, len(hosts))
	for i, h := range hosts {
		slots[i] = int(min(h.CPUCapacity/f.SlotCPU, h.MemCapacity/f.SlotMem))
		f.TotalSlots += slots[i]
	}
	sort.Sort(sort.Reverse(sort.IntSlice(slots)))
	f.UsableSlots = f.TotalSlots
	for i := 0; i < failures && i < len(slots); i++ {
		f.UsableSlots -= slots[i]
	}
	return f
}

// largest sums the n largest values of hosts.
func largest(hosts []CapacityHost, n int, v func(CapacityHost) int64) int64 {
	vals := make([]int64, len(hosts))
	for i, h := range hosts {
		vals[i] = v(h)
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] > vals[j] })
	var s int64
	for i := 0; i < n && i < len(vals); i++ {
		s += vals[i]
	}
	return s
}

// Admit says whether the cluster can take a VM powering on (or growing)
// by cpu MHz and mem MB of reservation and still restart everything after
// its tolerated host failures. The refusal names the policy and figures.
func (f Failover) Admit(what string, cpu, mem int64) error {
	switch f.Policy {
	case PolicySlot:
		slot := f.SlotCPU
		needed := 1
		// A VM larger than the slot takes the slots its reservation covers.
		if cpu > slot || mem > f.SlotMem {
			needed = int(max(ceilDiv(cpu, f.SlotCPU), ceilDiv(mem, f.SlotMem)))
		}
		if f.UsedSlots+needed > f.UsableSlots {
			return fmt.Errorf("HA admission control (slot policy, %d host failures tolerated): %s needs %d slot(s) of %d MHz / %d MB; %d of the %d slots left after the largest %d hosts fail are used: %w",
				f.Failures, what, needed, f.SlotCPU, f.SlotMem, f.UsedSlots, f.UsableSlots, f.Failures, api.ErrInsufficientResources)
		}
	default:
		if free := f.CPUTotal - f.CPUKept - f.CPUReserved; cpu > 0 && cpu > free {
			return fmt.Errorf("HA admission control (cluster resource percentage, %d host failures tolerated): %d of %d MHz CPU is kept for failover (%.0f%%) and %d MHz is reserved; %s needs %d MHz, %d MHz is left: %w",
				f.Failures, f.CPUKept, f.CPUTotal, pct(f.CPUKept, f.CPUTotal), f.CPUReserved, what, cpu, max(free, 0), api.ErrInsufficientResources)
		}
		if free := f.MemTotal - f.MemKept - f.MemReserved; mem > 0 && mem > free {
			return fmt.Errorf("HA admission control (cluster resource percentage, %d host failures tolerated): %d of %d MB memory is kept for failover (%.0f%%) and %d MB is reserved; %s needs %d MB, %d MB is left: %w",
				f.Failures, f.MemKept, f.MemTotal, pct(f.MemKept, f.MemTotal), f.MemReserved, what, mem, max(free, 0), api.ErrInsufficientResources)
		}
	}
	return nil
}

func ceilDiv(a, b int64) int64 {
	if b <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) * 100 / float64(b)
}

// Holds says whether the load already admitted still fits once capacity
// is taken away (a host entering maintenance): every powered-on VM could
// still be restarted after the tolerated host failures. The refusal names
// the policy and figures, as Admit's.
func (f Failover) Holds() error {
	switch f.Policy {
	case PolicySlot:
		if f.UsedSlots > f.UsableSlots {
			return fmt.Errorf("HA admission control (slot policy, %d host failures tolerated): without it %d slots of %d MHz / %d MB are left after the largest %d hosts fail, and the powered-on VMs use %d: %w",
				f.Failures, f.UsableSlots, f.SlotCPU, f.SlotMem, f.Failures, f.UsedSlots, api.ErrInsufficientResources)
		}
	default:
		if free := f.CPUTotal - f.CPUKept; f.CPUReserved > free {
			return fmt.Errorf("HA admission control (cluster resource percentage, %d host failures tolerated): without it %d of %d MHz CPU is kept for failover and %d MHz is reserved, more than the %d MHz left: %w",
				f.Failures, f.CPUKept, f.CPUTotal, f.CPUReserved, max(free, 0), api.ErrInsufficientResources)
		}
		if free := f.MemTotal - f.MemKept; f.MemReserved > free {
			return fmt.Errorf("HA admission control (cluster resource percentage, %d host failures tolerated): without it %d of %d MB memory is kept for failover and %d MB is reserved, more than the %d MB left: %w",
				f.Failures, f.MemKept, f.MemTotal, f.MemReserved, max(free, 0), api.ErrInsufficientResources)
		}
	}
	return nil
}
