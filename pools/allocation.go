// Package pools owns vSphere resource-pool math for one cluster's pool tree:
// allocation validation, shares values, the usage figures pool.info shows
// (vSphere's ResourcePoolResourceUsage) and reservation admission for VM
// power-ons and pool creates/changes, including expandable reservations.
//
// It is pure: state comes in as a Tree built from plain values, decisions come
// out as errors wrapping the api sentinels. No I/O, clock or goroutines.
package pools

import (
	"fmt"
	"strconv"

	"github.com/podsphere/podsphere/api"
)

// Resource is one of the two resources a pool divides.
type Resource int

const (
	CPU    Resource = iota // MHz
	Memory                 // MB
)

// resources lists both, in the order admission checks and reports them.
var resources = [...]Resource{CPU, Memory}

func (r Resource) String() string {
	switch r {
	case CPU:
		return "cpu"
	case Memory:
		return "memory"
	}
	return "resource(" + strconv.Itoa(int(r)) + ")"
}

// Unit is what users read after a number of this resource.
func (r Resource) Unit() string {
	if r == CPU {
		return "MHz"
	}
	return "MB"
}

// Share levels, as vSphere's SharesLevel.
const (
	SharesLow    = "low"
	SharesNormal = "normal"
	SharesHigh   = "high"
	SharesCustom = "custom"
)

// Shares is vSphere's SharesInfo. It is an alias of api.Shares so that an
// api.Allocation converts to an Allocation with a plain type conversion.
type Shares = api.Shares

// Allocation is vSphere's ResourceAllocationInfo for one resource, in MHz or
// MB. Its fields match api.Allocation, so pools.Allocation(spec.CPU) works.
type Allocation struct {
	Reservation int64  `json:"reservation"` // MHz or MB, >= 0
	Limit       int64  `json:"limit"`       // -1 = unlimited; else >= Reservation
	Expandable  bool   `json:"expandable"`
	Shares      Shares `json:"shares"`
}

// Unlimited is the Limit value meaning "no limit".
const Unlimited = -1

// DefaultAllocation is what govc's pool.create uses when no flag is given.
func DefaultAllocation() Allocation {
	return Allocation{Reservation: 0, Limit: Unlimited, Expandable: true, Shares: Shares{Level: SharesNormal}}
}

// Validate checks an allocation on its own (not against the tree). field is
// the flag prefix users typed, "cpu" or "mem", so messages name their input.
// An empty shares level is accepted and means normal, the govc default.
func (a Allocation) Validate(field string) error {
	switch {
	case a.Reservation < 0:
		return invalidf("%s.reservation %d is negative", field, a.Reservation)
	case a.Limit < Unlimited:
		return invalidf("%s.limit %d is invalid: use -1 for unlimited or a value >= 0", field, a.Limit)
	case a.Limit != Unlimited && a.Limit < a.Reservation:
		return invalidf("%s.limit %d is below %s.reservation %d", field, a.Limit, field, a.Reservation)
	}
	switch a.Shares.Level {
	case "", SharesLow, SharesNormal, SharesHigh:
	case SharesCustom:
		if a.Shares.Value <= 0 {
			return invalidf("%s.shares custom value %d must be positive", field, a.Shares.Value)
		}
	default:
		return invalidf("%s.shares level %q is not low, normal, high or a number", field, a.Shares.Level)
	}
	return nil
}

// ParseShares reads a -cpu.shares / -mem.shares flag: a level or, as govc
// accepts, any positive integer meaning custom shares.
func ParseShares(s string) (Shares, error) {
	switch s {
	case SharesLow, SharesNormal, SharesHigh:
		return Shares{Level: s}, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return Shares{}, invalidf("shares %q is not low, normal, high or a positive number", s)
	}
	return Shares{Level: SharesCustom, Value: v}, nil
}

// Per-unit share values from vSphere: a VM gets them per vCPU (CPU) or per MB
// (memory); a pool is valued as a 4 vCPU / 16 GB VM so pools and VMs that
// are siblings compete on a common scale.
var (
	cpuSharesPerVCPU = map[string]int64{SharesLow: 500, SharesNormal: 1000, SharesHigh: 2000}
	memSharesPerMB   = map[string]int64{SharesLow: 5, SharesNormal: 10, SharesHigh: 20}
)

const (
	poolVCPUs = 4
	poolMemMB = 16 * 1024
)

// SharesValue is the number of shares a level stands for. numCPU and memMB
// size a VM; they are ignored when isPool is set.
func SharesValue(s Shares, r Resource, numCPU int, memMB int64, isPool bool) int64 {
	level := s.Level
	switch level {
	case SharesCustom:
		return s.Value
	case "":
		level = SharesNormal
	}
	if isPool {
		numCPU, memMB = poolVCPUs, poolMemMB
	}
	if r == CPU {
		return cpuSharesPerVCPU[level] * int64(numCPU)
	}
	return memSharesPerMB[level] * memMB
}

// sentinelError carries an exact user-facing message while still matching
// its sentinel with errors.Is, so psc prints "cpu.limit 500 is below ..."
// rather than "...: invalid".
type sentinelError struct {
	msg      string
	sentinel error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.sentinel }

func invalidf(format string, args ...any) error {
	return &sentinelError{msg: fmt.Sprintf(format, args...), sentinel: api.ErrInvalid}
}

func insufficientf(format string, args ...any) error {
	return &sentinelError{msg: fmt.Sprintf(format, args...), sentinel: api.ErrInsufficientResources}
}
