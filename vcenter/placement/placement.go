// Package placement owns DRS initial placement: given a snapshot of a
// cluster's hosts, rules and running VMs, it picks the host a powering-on VM
// lands on and says why every other host was passed over.
//
// Place is a pure function: no I/O, no clock, no state kept between calls, and
// the same input always gives the same Decision. The caller (the power-on path
// in vcenter) reads the snapshot, calls Place, and records the event.
package placement

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/podsphere/podsphere/api"
)

// Host is one host of the cluster as placement sees it.
type Host struct {
	Name                     string
	Connected                bool  // false = notResponding/disconnected
	Maintenance              bool  // in or entering maintenance: no new placements
	CPUCapacity, MemCapacity int64 // MHz, MB
	CPUReserved, MemReserved int64 // sum of reservations of powered-on VMs already on it
	VMs                      int   // powered-on VMs already on it
	// Peers counts powered-on members of the placed VM's own replica set
	// (or other workload) on the host: fewer wins right after the should
	// rules, the soft anti-affinity that spreads a set's replicas.
	Peers int
	// Labels are the host's labels, which the VM's hostSelector and host
	// terms (VMRules) select on.
	Labels map[string]string
}

// VM is the VM being powered on.
type VM struct {
	Name           string
	CPUReservation int64 // MHz
	MemReservation int64 // MB
	NumCPU         int
	MemoryMB       int64
	// Namespace and Labels are the VM's: its VM-VM terms see only running
	// VMs of its namespace, a required vmAffinity term it matches itself is
	// met anywhere while no running VM matches, and running VMs' required
	// anti-affinity is tested against its labels.
	Namespace string
	Labels    map[string]string
	// Rules are the VM's own placement rules (spec.hostSelector, spec.affinity).
	Rules VMRules
}

// RuleKind is the kind of a DRS rule, spelt as govc's cluster.rule.create flags.
type RuleKind string

const (
	RuleAffinity     RuleKind = "affinity"      // VM-VM: keep the VMs on one host
	RuleAntiAffinity RuleKind = "anti-affinity" // VM-VM: keep the VMs on different hosts
	RuleVMHost       RuleKind = "vm-host"       // VM group must/should (not) run on a host group
)

// Rule is a DRS rule of the cluster.
type Rule struct {
	Name    string
	Enabled bool
	Kind    RuleKind
	// Mandatory: must (true) vs should (false), for every kind. A should
	// rule is a preference: placement honours it when some host can, and
	// never refuses a power-on for it (vSphere's non-mandatory rules).
	Mandatory bool
	Affine    bool     // for vm-host: run on (true) vs not run on (false)
	VMs       []string // VM names in the rule (for vm-host: the VM group)
	Hosts     []string // host names for vm-host (the host group)
}

// State is the snapshot Place decides on. Place only reads it.
type State struct {
	Hosts   []Host
	Rules   []Rule
	Running map[string]string // powered-on VM name -> host name (only needs rule members, may hold all)
	// Neighbours are powered-on VMs of the placed VM's namespace: every one
	// when the VM has VM-VM terms, else at least those with required
	// anti-affinity terms. VMs of other namespaces, and the VM itself, are
	// ignored.
	Neighbours []RunningVM
}

// HostVerdict is Place's judgement of one host.
type HostVerdict struct {
	Host string
	Fits bool
	// Reason says why the host was rejected. For a host that fits it is empty,
	// or names the should rules the host breaks (why it was not preferred).
	Reason string
	Score  float64 // see Place; 0 for rejected hosts
	// HostWeight and VMWeight weigh the host by the VM's preferred terms (see
	// Place); 0 for rejected hosts.
	HostWeight, VMWeight int
}

// Decision is where a VM goes and why.
type Decision struct {
	Host     string        // chosen host, "" if none fits
	Verdicts []HostVerdict // one per host in State.Hosts order, reason for every rejected host
	// HostPreferred and VMPreferred say whether the VM has preferred host or
	// VM-VM terms, so whether the verdicts' HostWeight and VMWeight say anything.
	HostPreferred, VMPreferred bool
}

// Place picks the host for vm, DRS initial placement style.
//
// A host is eligible when it is connected, not in (or entering) maintenance
// mode, its unreserved CPU and memory (capacity - reserved) cover the VM's
// reservations, it satisfies every enabled mandatory cluster rule naming
// the VM: VM-VM affinity (run where the rule's other powered-on members
// run, if any do), VM-VM anti-affinity (no other powered-on member on the
// host), and vm-host must (not) run on; and it satisfies the VM's own
// required rules (vm.Rules), checked in this order:
//   - HostSelector matches the host's labels (Kubernetes' nodeSelector);
//   - at least one HostRequired selector matches them (nodeSelectorTerms);
//   - required VMAffinity: the host runs a VM of the VM's namespace that
//     matches every required affinity term. While no running VM matches
//     them all, any host will do if the VM matches them itself, none if it
//     does not (Kubernetes' rule for the first of a group of pods with
//     affinity to each other);
//   - required VMAntiAffinity: no VM of its namespace matching a term runs
//     on the host;
//   - no VM of its namespace running on the host has a required
//     anti-affinity term selecting this VM (anti-affinity is symmetric, as
//     in Kubernetes and vSphere).
//
// Among eligible hosts, compared in this order (mandatory rules always win,
// since a host breaking one is never eligible):
//  1. fewer broken "should" vm-host cluster rules naming the VM;
//  2. higher HostWeight: the sum of the weights of the VM's HostPreferred
//     terms the host's labels match;
//  3. higher VMWeight: over the VM's preferred VM-VM terms, weight x the
//     matching VMs of its namespace on the host, added for VMAffinity and
//     taken away for VMAntiAffinity;
//  4. fewer Peers (members of the VM's own workload) on the host;
//  5. higher Score = min(free CPU fraction, free memory fraction) of the host
//     after this VM's reservations are taken, in [0, 1]: the host left with
//     the most headroom in its scarcer resource wins, so load spreads;
//  6. fewer powered-on VMs, so VMs with no reservation spread too;
//  7. host name, then position in State.Hosts, so the result is deterministic
//     and independent of host order (for unique names).
//
// A fitting host's Reason lists the should rules and preferred terms it
// goes against. Work is O(hosts + members of rules naming the VM +
// neighbours x the VM's VM-VM terms); rule and term lookups are resolved
// once per call, not once per host.
//
// When no host fits, Place returns the Decision (all verdicts filled in) and
// an error wrapping api.ErrInsufficientResources that gives every host's
// reason. A bad VM, a preferred term whose weight is not 1 to 100, or an
// invalid enabled rule naming the VM gives an error wrapping api.ErrInvalid.
func Place(st *State, vm VM) (Decision, error) {
	if st == nil {
		return Decision{}, fmt.Errorf("placing %s: no cluster state: %w", vm.Name, api.ErrInvalid)
	}
	if vm.Name == "" {
		return Decision{}, fmt.Errorf("placing a VM: name is empty: %w", api.ErrInvalid)
	}
	if vm.CPUReservation < 0 || vm.MemReservation < 0 {
		return Decision{}, fmt.Errorf("placing %s: reservations must not be negative (cpu %d MHz, mem %d MB): %w",
			vm.Name, vm.CPUReservation, vm.MemReservation, api.ErrInvalid)
	}
	cons, err := constraintsFor(st, vm.Name)
	if err != nil {
		return Decision{}, err
	}
	plan, err := planVM(st, &vm)
	if err != nil {
		return Decision{}, err
	}

	d := Decision{Verdicts: make([]HostVerdict, len(st.Hosts)), HostPreferred: plan.hostPreferred(), VMPreferred: plan.vmPreferred()}
	best, bestBroken := -1, 0
	for i := range st.Hosts {
		h := &st.Hosts[i]
		v := &d.Verdicts[i]
		v.Host = h.Name
		if v.Reason = reject(h, &vm, cons); v.Reason != "" {
			continue
		}
		if plan != nil {
			if v.Reason = plan.breaksMust(h); v.Reason != "" {
				continue
			}
		}
		v.Fits = true
		v.Score = score(h, &vm)
		broken := 0
		for c := range cons {
			if cons[c].breaksShould(h.Name) {
				if broken == 0 {
					v.Reason = cons[c].reason()
				} else {
					v.Reason += "; " + cons[c].reason()
				}
				broken++
			}
		}
		if plan != nil {
			v.HostWeight, v.VMWeight, v.Reason = plan.prefer(h, v.Reason)
		}
		if best < 0 || better(h, v, broken, &st.Hosts[best], &d.Verdicts[best], bestBroken) {
			best, bestBroken = i, broken
		}
	}
	if best >= 0 {
		d.Host = st.Hosts[best].Name
		return d, nil
	}
	if len(st.Hosts) == 0 {
		return d, fmt.Errorf("no host can run %s: cluster has no hosts: %w", vm.Name, api.ErrInsufficientResources)
	}
	return d, fmt.Errorf("no host can run %s: %s: %w", vm.Name, d.reasons(), api.ErrInsufficientResources)
}

// better reports whether host a (verdict va, breaking brokenA should rules)
// beats host b; a comes after b in State.Hosts.
func better(a *Host, va *HostVerdict, brokenA int, b *Host, vb *HostVerdict, brokenB int) bool {
	if brokenA != brokenB {
		return brokenA < brokenB
	}
	if va.HostWeight != vb.HostWeight {
		return va.HostWeight > vb.HostWeight
	}
	if va.VMWeight != vb.VMWeight {
		return va.VMWeight > vb.VMWeight
	}
	if a.Peers != b.Peers {
		return a.Peers < b.Peers
	}
	if va.Score != vb.Score {
		return va.Score > vb.Score
	}
	if a.VMs != b.VMs {
		return a.VMs < b.VMs
	}
	return a.Name < b.Name
}

// reject returns why h cannot run vm, or "" if it can.
func reject(h *Host, vm *VM, cons []constraint) string {
	switch {
	case !h.Connected:
		return "not responding"
	case h.Maintenance:
		return "in maintenance mode"
	}
	if free := h.CPUCapacity - h.CPUReserved; vm.CPUReservation > 0 && free < vm.CPUReservation {
		return "not enough unreserved CPU (" + strconv.FormatInt(max(free, 0), 10) + " MHz free, " +
			strconv.FormatInt(vm.CPUReservation, 10) + " MHz asked)"
	}
	if free := h.MemCapacity - h.MemReserved; vm.MemReservation > 0 && free < vm.MemReservation {
		return "not enough unreserved memory (" + strconv.FormatInt(max(free, 0), 10) + " MB free, " +
			strconv.FormatInt(vm.MemReservation, 10) + " MB asked)"
	}
	for c := range cons {
		if r := cons[c].breaksMust(h.Name); r != "" {
			return r
		}
	}
	return ""
}

// score is min(free CPU fraction, free memory fraction) after placing vm.
func score(h *Host, vm *VM) float64 {
	return min(freeFraction(h.CPUCapacity, h.CPUReserved+vm.CPUReservation),
		freeFraction(h.MemCapacity, h.MemReserved+vm.MemReservation))
}

func freeFraction(capacity, reserved int64) float64 {
	if capacity <= 0 || reserved >= capacity {
		return 0
	}
	return float64(capacity-reserved) / float64(capacity)
}

// reasons is "host: reason; host: reason" over the rejected hosts.
func (d Decision) reasons() string {
	var b strings.Builder
	for _, v := range d.Verdicts {
		if v.Fits {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(v.Host)
		b.WriteString(": ")
		b.WriteString(v.Reason)
	}
	return b.String()
}

// Explain is the decision as text for events and `psc`, one line per host:
//
//	esx-01: rejected: in maintenance mode
//	esx-02: fits, score 0.500
//	esx-03: chosen, score 0.750
//	esx-04: fits, score 0.800, not preferred: vm-host rule "pref" (should run on hosts in its group)
//
// A VM with preferred terms also gets "host preference N" and "VM
// preference N" (HostWeight, VMWeight) before the score, which they outrank.
func (d Decision) Explain() string {
	var b strings.Builder
	for _, v := range d.Verdicts {
		b.WriteString(v.Host)
		switch {
		case !v.Fits:
			b.WriteString(": rejected: ")
			b.WriteString(v.Reason)
		default:
			if v.Host == d.Host {
				b.WriteString(": chosen, ")
			} else {
				b.WriteString(": fits, ")
			}
			if d.HostPreferred {
				b.WriteString("host preference ")
				b.WriteString(strconv.Itoa(v.HostWeight))
				b.WriteString(", ")
			}
			if d.VMPreferred {
				b.WriteString("VM preference ")
				b.WriteString(strconv.Itoa(v.VMWeight))
				b.WriteString(", ")
			}
			b.WriteString("score ")
			b.WriteString(strconv.FormatFloat(v.Score, 'f', 3, 64))
			if v.Reason != "" {
				b.WriteString(", not preferred: ")
				b.WriteString(v.Reason)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// ValidateRule checks a rule as cluster.rule.create would, naming the bad field.
func ValidateRule(r Rule) error {
	if r.Name == "" {
		return fmt.Errorf("rule name is required: %w", api.ErrInvalid)
	}
	switch r.Kind {
	case RuleAffinity, RuleAntiAffinity:
		if len(r.VMs) < 2 {
			return fmt.Errorf("rule %q: vms: %s rule needs at least 2 VMs, has %d: %w", r.Name, r.Kind, len(r.VMs), api.ErrInvalid)
		}
	case RuleVMHost:
		if len(r.VMs) < 1 {
			return fmt.Errorf("rule %q: vms: vm-host rule needs at least 1 VM: %w", r.Name, api.ErrInvalid)
		}
		if len(r.Hosts) < 1 {
			return fmt.Errorf("rule %q: hosts: vm-host rule needs at least 1 host: %w", r.Name, api.ErrInvalid)
		}
	default:
		return fmt.Errorf("rule %q: kind %q is unknown (want %s, %s or %s): %w",
			r.Name, r.Kind, RuleAffinity, RuleAntiAffinity, RuleVMHost, api.ErrInvalid)
	}
	for i, vm := range r.VMs {
		if vm == "" {
			return fmt.Errorf("rule %q: vms[%d]: VM name is empty: %w", r.Name, i, api.ErrInvalid)
		}
	}
	for i, h := range r.Hosts {
		if h == "" {
			return fmt.Errorf("rule %q: hosts[%d]: host name is empty: %w", r.Name, i, api.ErrInvalid)
		}
	}
	return nil
}
