// Package admission holds vcenter's admission decisions as pure functions:
// a snapshot of one cluster (its pools, hosts and rules) and of the quotas
// on a pool's path goes in, a decision (admitted, where, or refused and
// why) comes out. No store, no HTTP, no clock: the inventory takes the
// snapshot inside its transaction and acts on the answer, and tests build
// snapshots by hand.
package admission

import (
	"fmt"
	"maps"
	"net"
	"sort"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/labels"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/pools"
	"github.com/podsphere/podsphere/quota"
	"github.com/podsphere/podsphere/vcenter/placement"
)

// MHzPerVCPU is the CPU a vCPU counts for in quota totals when the VM has no
// CPU limit: the same figure the manifest mapping uses for one Kubernetes core.
const MHzPerVCPU = 1000

// Cluster is what admission knows of one cluster.
type Cluster struct {
	Path  string
	Spec  api.ClusterSpec
	Pools map[string]Pool // pool path -> pool, the root pool included
	Hosts map[string]Host // host path -> host
	// Running maps the names of powered-on VMs that DRS rules name to their
	// host names.
	Running map[string]string
	// Neighbours are the powered-on VMs on the cluster's hosts in the
	// namespace of the VM being placed: all of them when it has VM-VM terms
	// (spec.affinity.vmAffinity, vmAntiAffinity), else only those whose
	// required anti-affinity could keep it away.
	Neighbours []placement.RunningVM
	// HostOrder, when the caller keeps one, is the paths of Hosts in name
	// order, so SortedHosts need not sort them at every placement.
	HostOrder []string
	// MaxCPUReservation and MaxMemReservation are the largest reservations
	// of the powered-on VMs on the cluster's hosts (HA's slot size).
	MaxCPUReservation, MaxMemReservation int64
}

// Failover is the cluster's HA failover capacity (admission control), or
// false when HA admission control is off.
func (c Cluster) Failover() (ha.Failover, bool) {
	h := c.Spec.HA
	if !h.Enabled || !h.AdmissionControlEnabled {
		return ha.Failover{}, false
	}
	var hosts []ha.CapacityHost
	var load ha.Load
	for _, p := range c.SortedHosts() {
		x := c.Hosts[p]
		load.VMs += x.Running
		load.CPUReserved += x.CPUReserved
		load.MemReserved += x.MemReserved
		if x.Status.State == api.HostConnected && !x.Spec.Maintenance {
			hosts = append(hosts, ha.CapacityHost{Name: api.Base(p), CPUCapacity: x.Status.CPUCapacity, MemCapacity: x.Status.MemCapacity})
		}
	}
	load.MaxCPU, load.MaxMem = c.MaxCPUReservation, c.MaxMemReservation
	return ha.FailoverCapacity(h.AdmissionPolicy, max(h.HostFailuresTolerated, 1), hosts, load), true
}

// Pool is one resource pool with the reservations of the powered-on VMs
// directly in it.
type Pool struct {
	Spec                               api.PoolSpec
	VMCPUReservation, VMMemReservation int64
}

// Host is one host with what its powered-on VMs reserve there.
type Host struct {
	Spec   api.HostSpec
	Status api.HostStatus
	Labels map[string]string
	// CPUReserved and MemReserved sum the reservations of powered-on VMs placed here.
	CPUReserved, MemReserved int64
	Running                  int
	// Peers counts the powered-on members of the VM's own workload on this
	// host (filled by the caller for the VM being placed), so replicas spread.
	Peers int
}

// Footprint is what a VM counts against cpu and memory quota totals: its
// limit, or its size when it has none.
func Footprint(s api.VMSpec) (cpu, mem int64) {
	cpu, mem = s.CPU.Limit, s.Mem.Limit
	if cpu < 0 {
		cpu = int64(max(s.NumCPU, 1)) * MHzPerVCPU
	}
	if mem < 0 {
		mem = s.MemoryMB
	}
	return cpu, mem
}

// SortedHosts returns host paths in name order so placement is
// deterministic. The result may be c.HostOrder itself: do not modify it.
func (c Cluster) SortedHosts() []string {
	if c.HostOrder != nil && len(c.HostOrder) == len(c.Hosts) {
		return c.HostOrder
	}
	out := make([]string, 0, len(c.Hosts))
	for p := range c.Hosts {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Capacity is the root pool's capacity: the connected hosts not in
// maintenance, plus, for a host in maintenance or not responding, exactly
// what its running VMs still reserve there. Those VMs keep running and keep
// their reservations, so the excluded host lends no free capacity but the
// pool tree still balances.
func (c Cluster) Capacity() (cpu, mem int64) {
	for _, h := range c.Hosts {
		if h.Status.State == api.HostConnected && !h.Spec.Maintenance {
			cpu = addCapped(cpu, h.Status.CPUCapacity)
			mem = addCapped(mem, h.Status.MemCapacity)
			continue
		}
		cpu = addCapped(cpu, min(h.CPUReserved, h.Status.CPUCapacity))
		mem = addCapped(mem, min(h.MemReserved, h.Status.MemCapacity))
	}
	return cpu, mem
}

// addCapped adds without wrapping past the largest int64.
func addCapped(a, b int64) int64 {
	if b > 0 && a > (1<<63-1)-b {
		return 1<<63 - 1
	}
	return a + b
}

// Tree builds the cluster's pool tree with its current reservations.
func (c Cluster) Tree() (*pools.Tree, error) {
	list := make([]pools.Pool, 0, len(c.Pools))
	root := c.Path + "/" + api.RootPoolName
	for p, e := range c.Pools {
		parent := ""
		if p != root {
			parent = api.Parent(p)
		}
		list = append(list, pools.Pool{Path: p, Parent: parent, CPU: pools.Allocation(e.Spec.CPU), Mem: pools.Allocation(e.Spec.Mem),
			VMCPUReservation: e.VMCPUReservation, VMMemReservation: e.VMMemReservation})
	}
	cpu, mem := c.Capacity()
	return pools.NewTree(root, cpu, mem, list)
}

// CreatePool admits a new (or reconfigured) pool at path under parent.
func CreatePool(c Cluster, path, parent string, spec api.PoolSpec) error {
	tree, err := c.Tree()
	if err != nil {
		return err
	}
	return tree.AdmitPool(path, parent, pools.Allocation(spec.CPU), pools.Allocation(spec.Mem))
}

// CreateVM admits one more VM in the pool whose quota levels are given.
func CreateVM(levels []quota.Level) error {
	return quota.Check(levels, quota.Usage{VMs: 1})
}

// PowerOn admits a powered-off VM and places it: quota totals on its pool's
// path, the pool tree's reservations, HA admission control, then DRS
// initial placement over the cluster's hosts (only its pinned host when it
// is pinned), under the cluster's rules and the VM's own
// (spec.hostSelector, spec.affinity; vmLabels are the VM's labels). The
// decision names the host and why it was chosen.
func PowerOn(c Cluster, levels []quota.Level, path string, vmLabels map[string]string, spec api.VMSpec) (placement.Decision, error) {
	return admit(c, levels, "power on", path, vmLabels, spec, "", true)
}

// admit is PowerOn's admission and placement, also run by a migration
// (verb "migrate"): exclude names a host placement must not choose (the
// one a migrating VM leaves); running false places without admitting
// reservations (a powered-off VM's registration moves, nothing starts).
func admit(c Cluster, levels []quota.Level, verb, path string, vmLabels map[string]string, spec api.VMSpec, exclude string, running bool) (placement.Decision, error) {
	rules, err := VMRules("spec", spec)
	if err != nil {
		return placement.Decision{}, fmt.Errorf("cannot %s %s: %w", verb, path, err)
	}
	if running {
		cpuFoot, memFoot := Footprint(spec)
		if err := quota.Check(levels, quota.Usage{CPUMHz: cpuFoot, MemMB: memFoot}); err != nil {
			return placement.Decision{}, fmt.Errorf("cannot %s %s: %w", verb, path, err)
		}
		tree, err := c.Tree()
		if err != nil {
			return placement.Decision{}, err
		}
		if err := tree.AdmitVM(spec.Pool, spec.CPU.Reservation, spec.Mem.Reservation); err != nil {
			return placement.Decision{}, fmt.Errorf("cannot %s %s: %w", verb, path, err)
		}
		if f, on := c.Failover(); on {
			// The slot a VM takes is at least the cluster's slot size: the
			// largest reservation, this VM's included.
			f.SlotCPU, f.SlotMem = max(f.SlotCPU, spec.CPU.Reservation), max(f.SlotMem, spec.Mem.Reservation)
			if err := f.Admit(api.Base(path), spec.CPU.Reservation, spec.Mem.Reservation); err != nil {
				return placement.Decision{}, fmt.Errorf("cannot %s %s: %w", verb, path, err)
			}
		}
	}
	return place(c, verb, path, vmLabels, spec, rules, exclude, nil)
}

// Restart admits and places a VM vSphere HA restarts after its host
// (from, a host path) failed. The VM is powered on and already holds its
// quota and its reservation in the pool tree, so it is not asked for them
// again; its reservation only moves from the failed host to the chosen
// one. HA admission control is not asked either: the failover capacity it
// keeps is there for this. Hosts down (their paths) are not candidates:
// HA does not count them live even where the inventory still calls them
// connected.
func Restart(c Cluster, path, from string, vmLabels map[string]string, spec api.VMSpec, down map[string]bool) (placement.Decision, error) {
	rules, err := VMRules("spec", spec)
	if err != nil {
		return placement.Decision{}, fmt.Errorf("cannot restart %s: %w", path, err)
	}
	if spec.Pinned {
		return placement.Decision{}, fmt.Errorf("cannot restart %s elsewhere: it is pinned to host %s (vm.create -host): %w", path, api.Base(spec.Host), api.ErrInsufficientResources)
	}
	// The pool tree as it is once the VM leaves its failed host: the
	// capacity a failed host lends is what its VMs reserve there. A VM
	// that reserves nothing changes nothing there that counts (from is
	// no candidate), and copying a 1,000-host map per restart was a
	// quarter of a restart's time.
	if h, ok := c.Hosts[from]; ok && (spec.CPU.Reservation != 0 || spec.Mem.Reservation != 0) {
		hosts := maps.Clone(c.Hosts)
		h.CPUReserved = max(h.CPUReserved-spec.CPU.Reservation, 0)
		h.MemReserved = max(h.MemReserved-spec.Mem.Reservation, 0)
		h.Running = max(h.Running-1, 0)
		hosts[from] = h
		c.Hosts = hosts
	}
	if e, ok := c.Pools[spec.Pool]; ok {
		e.VMCPUReservation -= spec.CPU.Reservation
		e.VMMemReservation -= spec.Mem.Reservation
		ps := maps.Clone(c.Pools)
		ps[spec.Pool] = e
		c.Pools = ps
	}
	tree, err := c.Tree()
	if err != nil {
		return placement.Decision{}, err
	}
	if err := tree.AdmitVM(spec.Pool, spec.CPU.Reservation, spec.Mem.Reservation); err != nil {
		return placement.Decision{}, fmt.Errorf("cannot restart %s: %w", path, err)
	}
	down = maps.Clone(down)
	if down == nil {
		down = map[string]bool{}
	}
	down[from] = true
	return place(c, "restart", path, vmLabels, spec, rules, "", down)
}

// place runs DRS initial placement for the VM at path over c's hosts
// (verb names the operation in errors), without exclude (the host a
// migrating VM leaves) and counting those in down (paths) as not connected.
func place(c Cluster, verb, path string, vmLabels map[string]string, spec api.VMSpec, rules placement.VMRules, exclude string, down map[string]bool) (placement.Decision, error) {
	st := &placement.State{Running: c.Running, Neighbours: c.Neighbours, Hosts: make([]placement.Host, 0, len(c.Hosts))}
	for _, r := range c.Spec.Rules {
		if r.Kind == RuleDepends {
			continue // HA's restart order, not a placement rule
		}
		st.Rules = append(st.Rules, PlacementRule(r))
	}
	if spec.Pinned {
		if _, ok := c.Hosts[spec.Host]; !ok {
			return placement.Decision{}, fmt.Errorf("cannot %s %s: it is pinned to host %s, which is not in cluster %s: %w", verb, path, spec.Host, c.Path, api.ErrInsufficientResources)
		}
	}
	for _, hp := range c.SortedHosts() {
		if spec.Pinned && hp != spec.Host {
			continue // pinned with -host: only that host may run it
		}
		if hp == exclude {
			continue
		}
		h := c.Hosts[hp]
		st.Hosts = append(st.Hosts, placement.Host{
			Name:        api.Base(hp),
			Connected:   (h.Status.State == api.HostConnected || h.Status.State == api.HostMaintenance) && !down[hp],
			Maintenance: h.Spec.Maintenance,
			CPUCapacity: h.Status.CPUCapacity, MemCapacity: h.Status.MemCapacity,
			CPUReserved: h.CPUReserved, MemReserved: h.MemReserved, VMs: h.Running,
			Peers: h.Peers, Labels: h.Labels,
		})
	}
	if len(st.Hosts) == 0 && exclude != "" {
		return placement.Decision{}, fmt.Errorf("cannot %s %s: cluster %s has no other host: %w", verb, path, c.Path, api.ErrInsufficientResources)
	}
	ref, _ := api.ParsePath(path)
	return placement.Place(st, placement.VM{Name: api.Base(path), CPUReservation: spec.CPU.Reservation,
		MemReservation: spec.Mem.Reservation, NumCPU: spec.NumCPU, MemoryMB: spec.MemoryMB,
		Namespace: ref.Namespace, Labels: vmLabels, Rules: rules})
}

// RuleDepends is the kind of a VM dependency rule (HA's restart order).
const RuleDepends = "depends"

// HasVMTerms says whether the VM weighs other VMs (spec.affinity.vmAffinity
// or vmAntiAffinity), so its placement needs every running VM of its
// namespace, not only those with anti-affinity of their own.
func HasVMTerms(spec api.VMSpec) bool {
	a := spec.Affinity
	return a != nil && (len(a.VMAffinity) > 0 || len(a.VMAntiAffinity) > 0)
}

// VMRules checks a VM's own placement rules (f.hostSelector, f.affinity)
// and turns them into placement's. Errors wrap api.ErrInvalid and name the
// field, as f.affinity.vmAntiAffinity[0].selector.matchLabels["app"].
func VMRules(f string, spec api.VMSpec) (placement.VMRules, error) {
	var r placement.VMRules
	if len(spec.HostSelector) > 0 {
		s, err := labels.FromLabelSelector(api.LabelSelector{MatchLabels: spec.HostSelector})
		if err != nil {
			return r, fieldErr(f+".hostSelector", strings.TrimPrefix(api.Message(err), "selector.matchLabels"))
		}
		r.HostSelector = s
	}
	a := spec.Affinity
	if a == nil {
		return r, nil
	}
	f += ".affinity"
	for i, ls := range a.HostRequired {
		s, err := labels.FromLabelSelector(ls)
		if err != nil {
			return r, fieldErr(fmt.Sprintf("%s.hostRequired[%d]", f, i), "."+strings.TrimPrefix(api.Message(err), "selector."))
		}
		r.HostRequired = append(r.HostRequired, s)
	}
	for i, t := range a.HostPreferred {
		tf := fmt.Sprintf("%s.hostPreferred[%d]", f, i)
		if err := checkWeight(tf, t.Weight, false); err != nil {
			return r, err
		}
		s, err := labels.FromLabelSelector(t.Selector)
		if err != nil {
			return r, fieldErr(tf, "."+api.Message(err))
		}
		r.HostPreferred = append(r.HostPreferred, placement.WeightedSelector{Weight: t.Weight, Selector: s})
	}
	for _, list := range []struct {
		name string
		in   []api.VMAffinityTerm
		out  *[]placement.VMTerm
	}{{"vmAffinity", a.VMAffinity, &r.VMAffinity}, {"vmAntiAffinity", a.VMAntiAffinity, &r.VMAntiAffinity}} {
		for i, t := range list.in {
			tf := fmt.Sprintf("%s.%s[%d]", f, list.name, i)
			if err := checkWeight(tf, t.Weight, t.Required); err != nil {
				return r, err
			}
			s, err := labels.FromLabelSelector(t.Selector)
			if err != nil {
				return r, fieldErr(tf, "."+api.Message(err))
			}
			*list.out = append(*list.out, placement.VMTerm{Selector: s, Required: t.Required, Weight: t.Weight})
		}
	}
	return r, nil
}

// fieldErr is field+rest as an ErrInvalid; rest begins with what follows
// the field's name (".matchLabels...: why", `["k"]: why`).
func fieldErr(field, rest string) error {
	return fmt.Errorf("%s%s: %w", field, rest, api.ErrInvalid)
}

// checkWeight checks the weight of the term at f: 1 to 100 for a preferred
// term, none for a required one.
func checkWeight(f string, w int, required bool) error {
	switch {
	case required && w != 0:
		return fmt.Errorf("%s.weight %d: a required term takes no weight (weights rank preferred terms): %w", f, w, api.ErrInvalid)
	case !required && (w < 1 || w > 100):
		return fmt.Errorf("%s.weight %d: want 1 to 100 for a preferred term (or required: true): %w", f, w, api.ErrInvalid)
	}
	return nil
}

// ChangeQuota checks a VM's change against quotas. Pools that hold the VM
// both before and after (common ancestors) see only its growth; pools it
// enters see all of it: one more VM and, if it runs, its whole footprint.
func ChangeQuota(levels []quota.Level, oldSpec, spec api.VMSpec, on bool) error {
	oc, om := Footprint(oldSpec)
	nc, nm := Footprint(spec)
	if !on {
		oc, om, nc, nm = 0, 0, 0, 0
	}
	kept := map[string]bool{}
	for p := oldSpec.Pool; p != ""; p = api.Parent(p) {
		kept[p] = true
	}
	var shared, entered []quota.Level
	for _, l := range levels {
		if kept[l.Pool] {
			shared = append(shared, l)
		} else {
			entered = append(entered, l)
		}
	}
	if err := quota.Check(entered, quota.Usage{VMs: 1, CPUMHz: nc, MemMB: nm}); err != nil {
		return err
	}
	return quota.Check(shared, quota.Usage{CPUMHz: max(nc-oc, 0), MemMB: max(nm-om, 0)})
}

// ChangeRunning admits a new reservation (or pool) for a running VM. The
// tree is built without the VM's current reservation, then asked for the
// new one in full, so a move is never counted twice; the VM's host must
// cover the growth. c is the cluster of the new pool, which must hold the
// VM's host: a running VM cannot change clusters.
func ChangeRunning(c Cluster, oldSpec, spec api.VMSpec) error {
	if _, ok := c.Hosts[oldSpec.Host]; !ok && oldSpec.Host != "" {
		return fmt.Errorf("cannot move to pool %s while powered on: its host %s is not in cluster %s (power it off to move it to another cluster): %w", spec.Pool, oldSpec.Host, c.Path, api.ErrInvalid)
	}
	if e, ok := c.Pools[oldSpec.Pool]; ok {
		e.VMCPUReservation -= oldSpec.CPU.Reservation
		e.VMMemReservation -= oldSpec.Mem.Reservation
		pools := make(map[string]Pool, len(c.Pools))
		for k, v := range c.Pools {
			pools[k] = v
		}
		pools[oldSpec.Pool] = e
		c.Pools = pools
	}
	tree, err := c.Tree()
	if err != nil {
		return err
	}
	if err := tree.AdmitVM(spec.Pool, spec.CPU.Reservation, spec.Mem.Reservation); err != nil {
		return err
	}
	dCPU := max(spec.CPU.Reservation-oldSpec.CPU.Reservation, 0)
	dMem := max(spec.Mem.Reservation-oldSpec.Mem.Reservation, 0)
	// Only growth is asked of the host: one that reserves more than it now
	// has (it rejoined smaller) still takes moves, shrinks and growth of
	// the other resource, and shows no negative room.
	if h, ok := c.Hosts[oldSpec.Host]; ok {
		if free := max(h.Status.CPUCapacity-h.CPUReserved, 0); dCPU > free {
			return fmt.Errorf("host %s has %d MHz unreserved CPU, the new reservation needs %d MHz more: %w", api.Base(oldSpec.Host), free, dCPU, api.ErrInsufficientResources)
		}
		if free := max(h.Status.MemCapacity-h.MemReserved, 0); dMem > free {
			return fmt.Errorf("host %s has %d MB unreserved memory, the new reservation needs %d MB more: %w", api.Base(oldSpec.Host), free, dMem, api.ErrInsufficientResources)
		}
	}
	if dCPU == 0 && dMem == 0 {
		return nil
	}
	// HA admission control: the growth must leave the failover capacity.
	// Under the slot policy a larger reservation makes every slot larger.
	c.MaxCPUReservation = max(c.MaxCPUReservation, spec.CPU.Reservation)
	c.MaxMemReservation = max(c.MaxMemReservation, spec.Mem.Reservation)
	if f, on := c.Failover(); on {
		what := fmt.Sprintf("the new reservation (%d MHz, %d MB)", spec.CPU.Reservation, spec.Mem.Reservation)
		cpu, mem := dCPU, dMem
		if f.Policy == ha.PolicySlot {
			f.UsedSlots-- // the VM's own slots, asked again in full
			cpu, mem = spec.CPU.Reservation, spec.Mem.Reservation
		}
		if err := f.Admit(what, cpu, mem); err != nil {
			return err
		}
	}
	return nil
}

// PlacementRule is a cluster's DRS rule as placement reads it.
func PlacementRule(r api.ClusterRule) placement.Rule {
	return placement.Rule{Name: r.Name, Enabled: r.Enabled, Kind: placement.RuleKind(r.Kind),
		Mandatory: r.Mandatory, Affine: r.Affine, VMs: r.VMs, Hosts: r.Hosts}
}

// ChosenWhy says why placement chose its host, for the event: its
// preference weights when the VM has preferred terms, its score, how many
// hosts could run the VM, and the should rules and preferred terms the
// chosen host still goes against.
func ChosenWhy(d placement.Decision) string {
	fit := 0
	for _, v := range d.Verdicts {
		if v.Fits {
			fit++
		}
	}
	for _, v := range d.Verdicts {
		if v.Host != d.Host {
			continue
		}
		var b strings.Builder
		if d.HostPreferred {
			fmt.Fprintf(&b, "host preference %d, ", v.HostWeight)
		}
		if d.VMPreferred {
			fmt.Fprintf(&b, "VM preference %d, ", v.VMWeight)
		}
		fmt.Fprintf(&b, "score %.3f of %d candidate hosts", v.Score, len(d.Verdicts))
		if fit < len(d.Verdicts) {
			fmt.Fprintf(&b, ", %d of which could run it", fit)
		}
		if v.Reason != "" {
			b.WriteString("; not preferred: " + v.Reason)
		}
		return b.String()
	}
	return "chosen"
}

// PodCIDR checks a cluster's wanted pod CIDR against the other clusters'
// (path -> CIDR), or picks the first free /16 of 10.244.0.0 to 10.255.0.0
// when none is wanted: VM addresses must be unique across the inventory.
func PodCIDR(others map[string]string, cluster, want string) (string, error) {
	var taken []*net.IPNet
	names := map[*net.IPNet]string{}
	paths := make([]string, 0, len(others))
	for p := range others {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if _, n, err := net.ParseCIDR(others[p]); err == nil {
			taken = append(taken, n)
			names[n] = p
		}
	}
	overlaps := func(n *net.IPNet) string {
		for _, o := range taken {
			if o.Contains(n.IP) || n.Contains(o.IP) {
				return names[o]
			}
		}
		return ""
	}
	if want != "" {
		_, n, err := net.ParseCIDR(want)
		if err != nil {
			return "", fmt.Errorf("spec.podCIDR %q is not a CIDR: %w", want, api.ErrInvalid)
		}
		if other := overlaps(n); other != "" {
			return "", fmt.Errorf("spec.podCIDR %s overlaps the pod CIDR of cluster %s: VM addresses must be unique: %w", want, other, api.ErrConflict)
		}
		return want, nil
	}
	for b := 244; b <= 255; b++ {
		_, n, _ := net.ParseCIDR(fmt.Sprintf("10.%d.0.0/16", b))
		if overlaps(n) == "" {
			return n.String(), nil
		}
	}
	return "", fmt.Errorf("no free pod CIDR between 10.244.0.0/16 and 10.255.0.0/16 for %s: give spec.podCIDR: %w", cluster, api.ErrConflict)
}
