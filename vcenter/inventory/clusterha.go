package inventory

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/vcenter/admission"
)

// Values of the cluster's HA settings, spelt as vSphere's (and govc's flags).
var (
	// IsolationResponses are what an isolated host may do with its VMs.
	IsolationResponses = []string{"disabled", "powerOff", "shutdown"}
	// ReadyConditions are when a restarted priority counts as ready.
	ReadyConditions = []string{ha.ReadyNone, ha.ReadyPoweredOn, ha.ReadyGuestHb, ha.ReadyAppHb}
)

// Group kinds (api.ClusterGroup.Kind) and the rule kind of VM dependencies.
const (
	GroupVM     = "vm"
	GroupHost   = "host"
	RuleDepends = admission.RuleDepends
)

// validateHAConfig checks the cluster's HA settings, naming the allowed
// values of a bad one.
func validateHAConfig(h api.HAConfig) error {
	switch h.AdmissionPolicy {
	case "", ha.PolicyPercentage, ha.PolicySlot:
	default:
		return fmt.Errorf("spec.ha.admissionPolicy %q: want percentage or slot: %w", h.AdmissionPolicy, api.ErrInvalid)
	}
	if h.HostFailuresTolerated < 0 {
		return fmt.Errorf("spec.ha.hostFailuresTolerated %d is negative: %w", h.HostFailuresTolerated, api.ErrInvalid)
	}
	if p := h.DefaultRestartPriority; p != "" && !contains(api.RestartPriorities, p) {
		return fmt.Errorf("spec.ha.defaultRestartPriority %q: want one of %s: %w", p, strings.Join(api.RestartPriorities, ", "), api.ErrInvalid)
	}
	if r := h.IsolationResponse; r != "" && !contains(IsolationResponses, r) {
		return fmt.Errorf("spec.ha.isolationResponse %q: want one of %s: %w", r, strings.Join(IsolationResponses, ", "), api.ErrInvalid)
	}
	if c := h.ReadyCondition; c != "" && !contains(ReadyConditions, c) {
		return fmt.Errorf("spec.ha.readyCondition %q: want one of %s: %w", c, strings.Join(ReadyConditions, ", "), api.ErrInvalid)
	}
	seen := map[string]bool{}
	for i, a := range h.IsolationAddresses {
		// Hosts ping these before calling themselves isolated: a name would
		// need DNS, which an isolated host may well have lost.
		if net.ParseIP(a) == nil {
			return fmt.Errorf("spec.ha.isolationAddresses[%d] %q is not an IP address: %w", i, a, api.ErrInvalid)
		}
		if seen[a] {
			return fmt.Errorf("spec.ha.isolationAddresses[%d] %s is listed twice: %w", i, a, api.ErrInvalid)
		}
		seen[a] = true
	}
	for _, s := range []struct {
		field string
		v     int
	}{{"shutdownTimeoutSeconds", h.ShutdownTimeoutSeconds}, {"postReadyDelaySeconds", h.PostReadyDelaySeconds}, {"readyTimeoutSeconds", h.ReadyTimeoutSeconds}} {
		if s.v < 0 {
			return fmt.Errorf("spec.ha.%s %d is negative: %w", s.field, s.v, api.ErrInvalid)
		}
	}
	return nil
}

// VMMemberName is how groups name a VM: its path below the datacenter's vm
// folder (NAME, or NAMESPACE/NAME for a VM of a namespace), so two VMs of
// the same name in different namespaces stay apart. Paths are accepted too.
func VMMemberName(dc, v string) (string, error) {
	if strings.HasPrefix(v, "/") {
		ref, err := api.ParsePath(v)
		if err != nil {
			return "", err
		}
		if ref.Kind != api.KindVirtualMachine || ref.Datacenter != dc {
			return "", fmt.Errorf("%s is not a VM of datacenter %s: %w", v, dc, api.ErrInvalid)
		}
		if ref.Namespace != "" {
			return ref.Namespace + "/" + ref.Name, nil
		}
		return ref.Name, nil
	}
	if _, err := api.ParsePath("/" + dc + "/vm/" + v); err != nil {
		return "", err
	}
	return v, nil
}

// prepareGroups checks the cluster's VM and host groups and normalises
// their members (VMs as VMMemberName, hosts by name).
func prepareGroups(dc string, s *api.ClusterSpec) error {
	seen := map[string]bool{}
	for i := range s.Groups {
		g := &s.Groups[i]
		f := fmt.Sprintf("spec.groups[%d]", i)
		if err := api.ValidName(g.Name); err != nil {
			return fmt.Errorf("%s.name: %w", f, err)
		}
		if seen[g.Name] {
			return fmt.Errorf("%s: group %q is defined twice (group names are unique in a cluster): %w", f, g.Name, api.ErrInvalid)
		}
		seen[g.Name] = true
		var members []string
		switch g.Kind {
		case GroupVM:
			if len(g.Hosts) > 0 {
				return fmt.Errorf("%s: VM group %q lists hosts: %w", f, g.Name, api.ErrInvalid)
			}
			for j, v := range g.VMs {
				n, err := VMMemberName(dc, v)
				if err != nil {
					return fmt.Errorf("%s.vms[%d]: %w", f, j, err)
				}
				g.VMs[j] = n
			}
			members = g.VMs
		case GroupHost:
			if len(g.VMs) > 0 {
				return fmt.Errorf("%s: host group %q lists VMs: %w", f, g.Name, api.ErrInvalid)
			}
			for j, h := range g.Hosts {
				g.Hosts[j] = api.Base(h)
				if err := api.ValidName(g.Hosts[j]); err != nil {
					return fmt.Errorf("%s.hosts[%d]: %w", f, j, err)
				}
			}
			members = g.Hosts
		default:
			return fmt.Errorf("%s.kind %q: want vm or host: %w", f, g.Kind, api.ErrInvalid)
		}
		dup := map[string]bool{}
		for _, m := range members {
			if dup[m] {
				return fmt.Errorf("%s: %s is listed twice in group %q: %w", f, m, g.Name, api.ErrInvalid)
			}
			dup[m] = true
		}
	}
	return nil
}

// validateDependsRule checks a depends rule's shape: both groups named,
// VM groups of the cluster, and no members of its own.
func validateDependsRule(i int, r api.ClusterRule, groups []api.ClusterGroup) error {
	f := fmt.Sprintf("spec.rules[%d]", i)
	if r.Name == "" {
		return fmt.Errorf("%s: rule name is required: %w", f, api.ErrInvalid)
	}
	if r.VMGroup == "" || r.DependsOnVMGroup == "" {
		return fmt.Errorf("%s: depends rule %q needs vmGroup and dependsOnVmGroup: %w", f, r.Name, api.ErrInvalid)
	}
	if len(r.VMs) > 0 || len(r.Hosts) > 0 {
		return fmt.Errorf("%s: depends rule %q names groups, not VMs or hosts: %w", f, r.Name, api.ErrInvalid)
	}
	for _, g := range []string{r.VMGroup, r.DependsOnVMGroup} {
		i := slices.IndexFunc(groups, func(x api.ClusterGroup) bool { return x.Name == g })
		switch {
		case i < 0:
			return fmt.Errorf("%s: depends rule %q uses VM group %q, which the cluster does not have (create it with cluster.group.create -vm; a group a rule uses cannot be removed before the rule): %w", f, r.Name, g, api.ErrInvalid)
		case groups[i].Kind != GroupVM:
			return fmt.Errorf("%s: depends rule %q uses %q, a %s group: dependencies are between VM groups: %w", f, r.Name, g, groups[i].Kind, api.ErrInvalid)
		}
	}
	return nil
}

// Dependencies are the cluster's enabled depends rules as the HA planner
// reads them.
func Dependencies(s api.ClusterSpec) []ha.Dependency {
	var deps []ha.Dependency
	for _, r := range s.Rules {
		if r.Kind == RuleDepends && r.Enabled {
			deps = append(deps, ha.Dependency{Name: r.Name, Group: r.VMGroup, DependsOn: r.DependsOnVMGroup})
		}
	}
	return deps
}

// VMGroupsOf maps each VM member name to the VM groups it belongs to.
func VMGroupsOf(s api.ClusterSpec) map[string][]string {
	out := map[string][]string{}
	for _, g := range s.Groups {
		if g.Kind != GroupVM {
			continue
		}
		for _, v := range g.VMs {
			out[v] = append(out[v], g.Name)
		}
	}
	return out
}

// admitGroups checks what prepare cannot: new group members must exist
// (members already there may have gone since, which is no reason to refuse
// an unrelated change).
func admitGroups(t *Txn, cluster string, old, s api.ClusterSpec) error {
	ref, _ := api.ParsePath(cluster)
	had := map[string]bool{}
	for _, g := range old.Groups {
		for _, m := range append(slices.Clone(g.VMs), g.Hosts...) {
			had[g.Kind+"/"+g.Name+"/"+m] = true
		}
	}
	for i, g := range s.Groups {
		for _, v := range g.VMs {
			if had[g.Kind+"/"+g.Name+"/"+v] {
				continue
			}
			if _, err := t.Get("/" + ref.Datacenter + "/vm/" + v); err != nil {
				if isNotFound(err) {
					return fmt.Errorf("spec.groups[%d]: VM group %q: VM %s does not exist: %w", i, g.Name, v, api.ErrNotFound)
				}
				return err
			}
		}
		for _, h := range g.Hosts {
			if had[g.Kind+"/"+g.Name+"/"+h] {
				continue
			}
			if _, err := t.Get(cluster + "/" + h); err != nil {
				if isNotFound(err) {
					return fmt.Errorf("spec.groups[%d]: host group %q: host %s is not in cluster %s: %w", i, g.Name, h, cluster, api.ErrNotFound)
				}
				return err
			}
		}
	}
	return nil
}

// dependencyInputsChanged says whether a cluster change touches what the
// dependency check reads: rules, groups, the default priority.
func dependencyInputsChanged(old, s api.ClusterSpec) bool {
	return old.HA.DefaultRestartPriority != s.HA.DefaultRestartPriority ||
		!slices.EqualFunc(old.Rules, s.Rules, ruleEqual) || !slices.EqualFunc(old.Groups, s.Groups, groupEqual)
}

func ruleEqual(a, b api.ClusterRule) bool {
	return a.Name == b.Name && a.Enabled == b.Enabled && a.Kind == b.Kind && a.VMGroup == b.VMGroup && a.DependsOnVMGroup == b.DependsOnVMGroup
}

func groupEqual(a, b api.ClusterGroup) bool {
	return a.Name == b.Name && a.Kind == b.Kind && slices.Equal(a.VMs, b.VMs) && slices.Equal(a.Hosts, b.Hosts)
}

// checkDependencies refuses dependency cycles and priority inversions
// (ha.ValidateDependencies) over the cluster's VM groups as the VMs'
// priorities are now; prio overrides the priority of the VMs it names
// (a change being admitted).
func checkDependencies(t *Txn, dc string, s api.ClusterSpec, prio map[string]string) error {
	deps := Dependencies(s)
	if len(deps) == 0 {
		return nil
	}
	groups := VMGroupsOf(s)
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	var vms []ha.VM
	for _, n := range names {
		p, ok := prio[n]
		if !ok {
			o, err := t.Get("/" + dc + "/vm/" + n)
			if err != nil {
				continue // gone: it constrains nothing
			}
			var vs api.VMSpec
			_ = o.DecodeSpec(&vs)
			p = vs.HA.RestartPriority
		}
		vms = append(vms, ha.VM{Name: n, Priority: p, Groups: groups[n]})
	}
	return ha.ValidateDependencies(deps, vms, s.HA.DefaultRestartPriority)
}

// admitVMHA checks a change of a VM's HA settings: a replica set's member
// follows its set (an override of its own would be undone by the set), and
// a new restart priority must not make a depends rule of its cluster wait
// for what HA starts later.
func admitVMHA(t *Txn, o *api.Object, oldSpec, spec api.VMSpec) error {
	if spec.HA == oldSpec.HA {
		return nil
	}
	if isKindPath(o.Owner, api.KindReplicaSet) {
		if rs, err := t.Get(o.Owner); err == nil {
			var rss api.ReplicaSetSpec
			_ = rs.DecodeSpec(&rss)
			if want := MemberHA(rss); spec.HA != want {
				return fmt.Errorf("%s is a member of replica set %s: its HA settings follow the set's (psc cluster.override.change -rs %s): %w",
					o.Path, o.Owner, setArg(o.Owner), api.ErrConflict)
			}
		}
	}
	if spec.HA.RestartPriority == oldSpec.HA.RestartPriority {
		return nil
	}
	pref, err := api.ParsePath(spec.Pool)
	if err != nil {
		return nil
	}
	c, err := t.Get(pref.ClusterPath())
	if err != nil {
		return nil
	}
	var cs api.ClusterSpec
	_ = c.DecodeSpec(&cs)
	name, err := VMMemberName(pref.Datacenter, o.Path)
	if err != nil {
		return nil
	}
	if _, grouped := VMGroupsOf(cs)[name]; !grouped {
		return nil
	}
	if err := checkDependencies(t, pref.Datacenter, cs, map[string]string{name: spec.HA.RestartPriority}); err != nil {
		return fmt.Errorf("restart priority %s for %s: %w", orDefault(spec.HA.RestartPriority, "the cluster default"), o.Path, err)
	}
	return nil
}

// MemberHA is the HA policy a replica set gives its members: the
// template's own setting, field by field, else the set's.
func MemberHA(s api.ReplicaSetSpec) api.HAPolicy {
	h := s.Template.Spec.HA
	if h.RestartPriority == "" {
		h.RestartPriority = s.HA.RestartPriority
	}
	if h.IsolationResponse == "" {
		h.IsolationResponse = s.HA.IsolationResponse
	}
	return h
}

// setArg is how psc names a set: NAME, or NAMESPACE/NAME.
func setArg(p string) string {
	ref, err := api.ParsePath(p)
	if err != nil || ref.Namespace == "" {
		return api.Base(p)
	}
	return ref.Namespace + "/" + ref.Name
}

func isKindPath(p, kind string) bool {
	if p == "" {
		return false
	}
	ref, err := api.ParsePath(p)
	return err == nil && ref.Kind == kind
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
