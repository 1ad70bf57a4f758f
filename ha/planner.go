// Package ha is vSphere HA's failover policy as a pure function: the state
// of a cluster (hosts with what gossip and the heartbeat datastores say of
// them, protected VMs with their priorities, locks and readiness, the
// dependency rules) and the time go in; a plan comes out: which hosts are
// failed, isolated or only unreachable, which VMs to restart now and on
// which host, in what order, and which wait or were given up, each with its
// reason. No clock, no I/O: vcenter's HA controller takes the snapshot,
// acts on the plan through the inventory and records the attempts, and
// tests script it (testdata/*.txt).
//
// The rule that keeps two copies of a VM from ever running: a VM is
// restarted elsewhere only when its host is known to have stopped it (the
// host's isolation response recorded it as released) or is known to be
// unable to run it any more (gossip and every heartbeat datastore are
// silent and the VM's lock has lapsed, or, without datastores, the host has
// been silent longer than it takes an isolated host to fence itself).
package ha

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/placement"
)

// Priorities from lowest to highest, as vSphere HA's restart priorities.
var Priorities = api.RestartPriorities

// DefaultPriority is vSphere's default restart priority.
const DefaultPriority = "medium"

func rank(p string) int {
	for i, q := range Priorities {
		if q == p {
			return i
		}
	}
	return -1
}

// Ready conditions, as govc's -ha-ready-condition.
const (
	ReadyNone      = "none"
	ReadyPoweredOn = "poweredOn"
	ReadyGuestHb   = "guestHbStatusGreen" // the readiness probe passes
	ReadyAppHb     = "appHbStatusGreen"   // the same here: the app's probe is the readiness probe
)

// Config is the cluster's HA configuration.
type Config struct {
	Enabled         bool
	DefaultPriority string // "" = medium
	ReadyCondition  string // "" = poweredOn
	// Datastores says the hosts write heartbeats and VM locks on heartbeat
	// datastores; without, vcenter relies on self-fencing times.
	Datastores bool
	Timings    Timings
}

// Host is one host of the cluster as HA sees it.
type Host struct {
	Name string
	// Gossip: the host gossips (memberlist calls it alive).
	Gossip bool
	// SilentSince is when gossip last heard it (for a silent host).
	SilentSince time.Time
	// Heartbeat is its last datastore heartbeat (zero: none seen).
	Heartbeat time.Time
	// Isolated: the host recorded on the datastore that it is isolated.
	Isolated    bool
	Maintenance bool
	CPUCapacity int64
	MemCapacity int64
}

// VM is one VM of the cluster as HA sees it.
type VM struct {
	Name     string
	Host     string
	Priority string // "" = the cluster's default
	// On: the VM should run (spec powered on, not being removed).
	On bool
	// Running and Ready are what its host last reported.
	Running, Ready bool
	ReadySince     time.Time
	CPUReservation int64
	MemReservation int64
	NumCPU         int
	MemoryMB       int64
	// Lock is the last renewal of the VM's lock on the datastores.
	Lock time.Time
	// Released: its host's isolation response stopped it and recorded so.
	Released bool
	// Attempts HA made to restart it since its host failed, the last at LastAttempt.
	Attempts    int
	LastAttempt time.Time
	LastError   string
	// RestartedAt is when HA last restarted it (it is in flight until ready).
	RestartedAt time.Time
	// PowerOnFailed is its host's word that it could not power it on
	// ("create: image ... not found"). A VM HA restarted on a live host
	// (Attempts > 0) that says so is a failed attempt: HA tries another
	// host after the backoff delay.
	PowerOnFailed string
	// Groups are the VM groups it belongs to (dependency rules name groups).
	Groups []string
}

// Dependency is a VM dependency rule: VMs of Group start only once the
// VMs of DependsOn are ready.
type Dependency struct {
	Name      string
	Group     string
	DependsOn string
}

// State is what the planner decides from.
type State struct {
	Now          time.Time
	Config       Config
	Hosts        []Host
	VMs          []VM
	Dependencies []Dependency
	// Rules are the cluster's DRS rules, honoured by restarts as by power-ons.
	Rules []placement.Rule
}

// Host verdicts.
const (
	HostLive        = "live"
	HostUnreachable = "unreachable" // silent, but may still run its VMs
	HostIsolated    = "isolated"    // silent, alive, and said so on the datastore
	HostFailed      = "failed"      // known to run nothing any more
)

// HostVerdict is what HA concluded about a host, and why.
type HostVerdict struct {
	Host   string
	State  string
	Reason string
}

// Restart is one VM to power on elsewhere now. Host is "" when no host
// can take it (Reason says why): that counts as an attempt too.
type Restart struct {
	VM       string
	Host     string
	Priority string
	Attempt  int // 1-based
	Reason   string
}

// Wait is a VM HA is not restarting now, and why.
type Wait struct {
	VM     string
	Reason string
}

// Plan is the planner's answer.
type Plan struct {
	Hosts    []HostVerdict
	Restarts []Restart
	Waiting  []Wait
	GivenUp  []Wait
}

// Decide plans failover for st. It is deterministic: the same state gives
// the same plan.
func Decide(st State) Plan {
	cfg := st.Config
	if cfg.DefaultPriority == "" {
		cfg.DefaultPriority = DefaultPriority
	}
	if cfg.ReadyCondition == "" {
		cfg.ReadyCondition = ReadyPoweredOn
	}
	t := cfg.Timings
	if t.LockLease == 0 {
		t = DefaultTimings()
	}
	var plan Plan
	verdict := map[string]HostVerdict{}
	hosts := append([]Host(nil), st.Hosts...)
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
	for _, h := range hosts {
		v := judge(h, cfg, t, st.Now)
		verdict[h.Name] = v
		plan.Hosts = append(plan.Hosts, v)
	}
	if !cfg.Enabled {
		return plan
	}

	vms := append([]VM(nil), st.VMs...)
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
	prio := func(vm VM) string {
		if vm.Priority == "" {
			return cfg.DefaultPriority
		}
		return vm.Priority
	}

	// What needs restarting, and what is in flight (restarted, not ready yet).
	type cand struct {
		vm   VM
		rank int
		// avoid is the live host that could not start it ("" for none).
		avoid string
	}
	var cands []cand
	inFlight := map[string]bool{}
	notReady := map[int]bool{}       // priority rank -> a VM of it is in flight and not ready
	groupBusy := map[string]string{} // group -> a VM of it that is not ready yet
	isReady := func(vm VM) bool {
		switch cfg.ReadyCondition {
		case ReadyNone:
			return vm.Running || !vm.RestartedAt.IsZero()
		case ReadyGuestHb, ReadyAppHb:
			return vm.Running && vm.Ready && st.Now.Sub(vm.ReadySince) >= t.PostReadyDelay
		default:
			return vm.Running && (t.PostReadyDelay == 0 || st.Now.Sub(vm.RestartedAt) >= t.PostReadyDelay)
		}
	}
	for _, vm := range vms {
		if !vm.On || prio(vm) == "disabled" {
			continue
		}
		r := rank(prio(vm))
		hv := verdict[vm.Host]
		lastError, avoid := vm.LastError, ""
		switch {
		case hv.State == HostLive && StartFailed(vm):
			// HA restarted it on a host that could not power it on: that
			// attempt failed, the next goes to another host.
			avoid = vm.Host
			if lastError == "" {
				lastError = StartFailure(vm)
			}
		case hv.State == HostLive:
			if !vm.RestartedAt.IsZero() && !isReady(vm) && st.Now.Sub(vm.RestartedAt) < t.ReadyTimeout {
				inFlight[vm.Name] = true
				notReady[r] = true
				for _, g := range vm.Groups {
					groupBusy[g] = vm.Name
				}
			}
			continue
		case vm.Released:
			// its host stopped it and said so: restartable whatever the host's state
		case hv.State == HostFailed:
			if cfg.Datastores && !vm.Lock.IsZero() && st.Now.Sub(vm.Lock) < t.LockLease+t.LockMargin {
				plan.Waiting = append(plan.Waiting, Wait{vm.Name, fmt.Sprintf("its lock on the heartbeat datastore was renewed %s ago: restart once it is older than %s",
					st.Now.Sub(vm.Lock).Round(time.Millisecond), t.LockLease+t.LockMargin)})
				continue
			}
		case hv.State == HostIsolated:
			plan.Waiting = append(plan.Waiting, Wait{vm.Name, fmt.Sprintf("host %s is isolated and has not stopped it (isolation response): it may still run there", vm.Host)})
			continue
		case hv.State == HostUnreachable:
			plan.Waiting = append(plan.Waiting, Wait{vm.Name, fmt.Sprintf("host %s is unreachable, not known failed: %s", vm.Host, hv.Reason)})
			continue
		default:
			continue // host unknown to HA (being removed): not HA's
		}
		for _, g := range vm.Groups {
			groupBusy[g] = vm.Name
		}
		if vm.Attempts >= len(t.RestartDelays) {
			plan.GivenUp = append(plan.GivenUp, Wait{vm.Name, fmt.Sprintf("not restarted after %d attempts: %s", vm.Attempts, orNone(lastError))})
			continue
		}
		if vm.Attempts > 0 {
			if next := vm.LastAttempt.Add(t.RestartDelays[vm.Attempts]); st.Now.Before(next) {
				plan.Waiting = append(plan.Waiting, Wait{vm.Name, fmt.Sprintf("attempt %d of %d in %s (last: %s)", vm.Attempts+1, len(t.RestartDelays),
					next.Sub(st.Now).Round(time.Millisecond), orNone(lastError))})
				continue
			}
		}
		cands = append(cands, cand{vm, r, avoid})
	}
	// Highest priority first, then by name.
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].rank > cands[j].rank })

	// Capacity of the survivors: what their VMs reserve now, plus the restarts planned.
	ps := &placement.State{Rules: st.Rules, Running: map[string]string{}}
	idx := map[string]int{}
	for _, h := range hosts {
		if verdict[h.Name].State != HostLive {
			continue
		}
		idx[h.Name] = len(ps.Hosts)
		ps.Hosts = append(ps.Hosts, placement.Host{Name: h.Name, Connected: true, Maintenance: h.Maintenance,
			CPUCapacity: h.CPUCapacity, MemCapacity: h.MemCapacity})
	}
	// Placement looks up only rule members in Running: a map of every
	// VM (50,000) was a third of a plan's time.
	members := map[string]bool{}
	for _, r := range st.Rules {
		for _, m := range r.VMs {
			members[m] = true
		}
	}
	powerOns := map[string]int{}
	for _, vm := range vms {
		i, ok := idx[vm.Host]
		if !ok || !vm.On {
			continue
		}
		ps.Hosts[i].CPUReserved += vm.CPUReservation
		ps.Hosts[i].MemReserved += vm.MemReservation
		ps.Hosts[i].VMs++
		if members[vm.Name] {
			ps.Running[vm.Name] = vm.Host
		}
		if inFlight[vm.Name] {
			powerOns[vm.Host]++
		}
	}
	deps := map[string][]string{} // group -> groups it depends on
	for _, d := range st.Dependencies {
		deps[d.Group] = append(deps[d.Group], d.DependsOn)
	}

	for _, c := range cands {
		vm := c.vm
		if r := higherNotReady(notReady, c.rank); r >= 0 {
			plan.Waiting = append(plan.Waiting, Wait{vm.Name, fmt.Sprintf("waiting for the %s priority VMs to be %s", Priorities[r], cfg.ReadyCondition)})
			notReady[c.rank] = true
			continue
		}
		if g, who := dependencyBusy(vm, deps, groupBusy); g != "" {
			plan.Waiting = append(plan.Waiting, Wait{vm.Name, fmt.Sprintf("depends on group %s, whose VM %s is not %s yet", g, who, cfg.ReadyCondition)})
			continue
		}
		// Hosts at their concurrent power-on bound are out for this round.
		saved := map[int]bool{}
		for name, n := range powerOns {
			if i, ok := idx[name]; ok && n >= t.MaxPowerOnsPerHost && !ps.Hosts[i].Maintenance {
				ps.Hosts[i].Maintenance = true // placement then rejects it
				saved[i] = true
			}
		}
		on := ps
		if c.avoid != "" {
			// Placed anywhere but the host that could not start it.
			cp := *ps
			cp.Hosts = make([]placement.Host, 0, len(ps.Hosts))
			for _, x := range ps.Hosts {
				if x.Name != c.avoid {
					cp.Hosts = append(cp.Hosts, x)
				}
			}
			on = &cp
		}
		d, err := placement.Place(on, placement.VM{Name: vm.Name, CPUReservation: vm.CPUReservation, MemReservation: vm.MemReservation,
			NumCPU: vm.NumCPU, MemoryMB: vm.MemoryMB})
		for i := range saved {
			ps.Hosts[i].Maintenance = false
		}
		rs := Restart{VM: vm.Name, Priority: prio(vm), Attempt: vm.Attempts + 1}
		if err != nil {
			rs.Reason = strings.TrimSuffix(err.Error(), ": "+api.ErrInsufficientResources.Error())
			if c.avoid != "" {
				rs.Reason = fmt.Sprintf("%s; %s", StartFailure(vm), rs.Reason)
			}
			plan.Restarts = append(plan.Restarts, rs)
			continue
		}
		rs.Host = d.Host
		rs.Reason = fmt.Sprintf("host %s failed", vm.Host)
		switch {
		case c.avoid != "":
			rs.Reason = StartFailure(vm)
		case vm.Released:
			rs.Reason = fmt.Sprintf("host %s's isolation response stopped it", vm.Host)
		}
		plan.Restarts = append(plan.Restarts, rs)
		i := idx[d.Host]
		ps.Hosts[i].CPUReserved += vm.CPUReservation
		ps.Hosts[i].MemReserved += vm.MemReservation
		ps.Hosts[i].VMs++
		ps.Running[vm.Name] = d.Host
		powerOns[d.Host]++
		notReady[c.rank] = true // lower priorities wait for this one
		for _, g := range vm.Groups {
			groupBusy[g] = vm.Name
		}
	}
	return plan
}

// StartFailed says whether HA restarted vm on its host and that host
// could not power it on: an attempt that failed (when the host is live).
// Attempts is cleared once the VM runs, so an old restart does not make a
// later power-on failure HA's.
func StartFailed(vm VM) bool {
	return !vm.Running && vm.PowerOnFailed != "" && !vm.RestartedAt.IsZero() && vm.Attempts > 0
}

// StartFailure is why vm's last attempt failed, in the host's words.
func StartFailure(vm VM) string {
	return fmt.Sprintf("host %s could not start it: %s", vm.Host, vm.PowerOnFailed)
}

// judge decides what a host's silence means.
func judge(h Host, cfg Config, t Timings, now time.Time) HostVerdict {
	v := HostVerdict{Host: h.Name}
	silent := now.Sub(h.SilentSince).Round(time.Millisecond)
	switch {
	case h.Gossip:
		v.State = HostLive
	case cfg.Datastores && !h.Heartbeat.IsZero() && now.Sub(h.Heartbeat) < t.DatastoreTimeout:
		if h.Isolated {
			v.State, v.Reason = HostIsolated, "it stopped gossiping but writes its datastore heartbeat and says it is isolated"
		} else {
			v.State, v.Reason = HostUnreachable, fmt.Sprintf("silent for %s but its datastore heartbeat is %s old (partitioned or isolated)", silent, now.Sub(h.Heartbeat).Round(time.Millisecond))
		}
	case cfg.Datastores:
		v.State, v.Reason = HostFailed, fmt.Sprintf("no gossip for %s and no datastore heartbeat for over %s", silent, t.DatastoreTimeout)
	case now.Sub(h.SilentSince) >= t.FenceTime+t.FenceMargin:
		v.State, v.Reason = HostFailed, fmt.Sprintf("silent for %s, past the %s an isolated host takes to fence itself plus %s", silent, t.FenceTime, t.FenceMargin)
	default:
		v.State, v.Reason = HostUnreachable, fmt.Sprintf("silent for %s; without a heartbeat datastore HA waits %s (self-fencing time and margin)", silent, t.FenceTime+t.FenceMargin)
	}
	return v
}

// higherNotReady is the highest priority above r with a VM in flight, or -1.
func higherNotReady(notReady map[int]bool, r int) int {
	for p := len(Priorities) - 1; p > r; p-- {
		if notReady[p] {
			return p
		}
	}
	return -1
}

// dependencyBusy names a group vm depends on (directly or not) that has a
// VM still to be ready.
func dependencyBusy(vm VM, deps map[string][]string, busy map[string]string) (string, string) {
	seen := map[string]bool{}
	var walk func(g string) (string, string)
	walk = func(g string) (string, string) {
		for _, d := range deps[g] {
			if seen[d] {
				continue
			}
			seen[d] = true
			if who, ok := busy[d]; ok && who != vm.Name {
				return d, who
			}
			if a, b := walk(d); a != "" {
				return a, b
			}
		}
		return "", ""
	}
	for _, g := range vm.Groups {
		if a, b := walk(g); a != "" {
			return a, b
		}
	}
	return "", ""
}

func orNone(s string) string {
	if s == "" {
		return "no reason recorded"
	}
	return s
}

// ValidateDependencies refuses dependency cycles and a higher-priority VM
// depending on a lower-priority one (it would wait for what HA starts
// after it), naming the rules at fault.
func ValidateDependencies(deps []Dependency, vms []VM, defaultPriority string) error {
	if defaultPriority == "" {
		defaultPriority = DefaultPriority
	}
	edges := map[string][]Dependency{}
	for _, d := range deps {
		if d.Group == "" || d.DependsOn == "" {
			return fmt.Errorf("dependency rule %q: both groups are required: %w", d.Name, api.ErrInvalid)
		}
		if d.Group == d.DependsOn {
			return fmt.Errorf("dependency rule %q: group %s cannot depend on itself: %w", d.Name, d.Group, api.ErrInvalid)
		}
		edges[d.Group] = append(edges[d.Group], d)
	}
	// Cycles: depth-first search with colours.
	state := map[string]int{}
	var path []string
	var visit func(g string) error
	visit = func(g string) error {
		state[g] = 1
		path = append(path, g)
		for _, d := range edges[g] {
			switch state[d.DependsOn] {
			case 1:
				return fmt.Errorf("dependency rules form a cycle: %s -> %s: %w", strings.Join(path, " -> "), d.DependsOn, api.ErrInvalid)
			case 0:
				if err := visit(d.DependsOn); err != nil {
					return err
				}
			}
		}
		path = path[:len(path)-1]
		state[g] = 2
		return nil
	}
	groups := make([]string, 0, len(edges))
	for g := range edges {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		if state[g] == 0 {
			if err := visit(g); err != nil {
				return err
			}
		}
	}
	// Priorities: every VM of Group must not outrank a VM of DependsOn.
	minRank, maxRank := map[string]int{}, map[string]int{}
	who := map[string]string{}
	for _, vm := range vms {
		p := vm.Priority
		if p == "" {
			p = defaultPriority
		}
		r := rank(p)
		for _, g := range vm.Groups {
			if cur, ok := minRank[g]; !ok || r < cur {
				minRank[g] = r
				who[g+"/min"] = vm.Name
			}
			if cur, ok := maxRank[g]; !ok || r > cur {
				maxRank[g] = r
				who[g+"/max"] = vm.Name
			}
		}
	}
	for _, d := range deps {
		hi, ok1 := maxRank[d.Group]
		lo, ok2 := minRank[d.DependsOn]
		if ok1 && ok2 && hi > lo {
			return fmt.Errorf("dependency rule %q: %s (priority %s, group %s) would depend on %s (priority %s, group %s), which HA starts after it: %w",
				d.Name, who[d.Group+"/max"], Priorities[hi], d.Group, who[d.DependsOn+"/min"], Priorities[lo], d.DependsOn, api.ErrInvalid)
		}
	}
	return nil
}
