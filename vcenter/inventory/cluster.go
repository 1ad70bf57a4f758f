package inventory

import (
	"fmt"
	"net"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/vcenter/admission"
	"github.com/podsphere/podsphere/vcenter/placement"
	"github.com/podsphere/podsphere/vcenter/store"
)

// cluster is a compute cluster: DRS and HA settings, rules, the pod CIDR
// its hosts' subnets come from, and a root pool made with it.
type cluster struct{ base }

func init() { register(api.KindCluster, cluster{}) }

func (cluster) names() kindNames {
	return kindNames{word: api.KindCluster, createTask: "CreateClusterEx", changeTask: "ReconfigureComputeResource_Task", removeTask: "Destroy_Task",
		createdEvent: "ClusterCreatedEvent", changedEvent: "ClusterReconfiguredEvent", goneEvent: "ClusterDestroyedEvent"}
}

var drsModes = map[string]bool{"manual": true, "partiallyAutomated": true, "fullyAutomated": true}

func (cluster) prepare(ref api.Ref, o *api.Object) error {
	s := api.ClusterSpec{DRS: api.DRSConfig{Enabled: true, Mode: "fullyAutomated"}}
	if err := decodeStrict(o.Spec, &s, "spec"); err != nil {
		return err
	}
	if s.DRS.Mode == "" {
		s.DRS.Mode = "fullyAutomated"
	}
	if !drsModes[s.DRS.Mode] {
		return fmt.Errorf("spec.drs.mode %q: want manual, partiallyAutomated or fullyAutomated: %w", s.DRS.Mode, api.ErrInvalid)
	}
	if err := validateHAConfig(s.HA); err != nil {
		return err
	}
	if err := prepareGroups(ref.Datacenter, &s); err != nil {
		return err
	}
	if s.PodCIDR == "" {
		// vcenter picks one that no other cluster uses (see podCIDR).
	} else if _, n, err := net.ParseCIDR(s.PodCIDR); err != nil || n.IP.To4() == nil {
		return fmt.Errorf("spec.podCIDR %q is not an IPv4 CIDR: %w", s.PodCIDR, api.ErrInvalid)
	} else if ones, _ := n.Mask.Size(); ones > 23 {
		return fmt.Errorf("spec.podCIDR %q is too small: hosts get a /24 each, so it must be /23 or larger: %w", s.PodCIDR, api.ErrInvalid)
	}
	if err := prepareServiceNetwork(&s); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i := range s.Rules {
		// Rules name VMs and hosts; accept inventory paths too, as govc does.
		r := &s.Rules[i]
		for j, v := range r.VMs {
			r.VMs[j] = api.Base(v)
		}
		for j, h := range r.Hosts {
			r.Hosts[j] = api.Base(h)
		}
	}
	for i, r := range s.Rules {
		if r.Kind == RuleDepends {
			if err := validateDependsRule(i, r, s.Groups); err != nil {
				return err
			}
		} else if err := placement.ValidateRule(admission.PlacementRule(r)); err != nil {
			return fmt.Errorf("spec.rules[%d]: %w", i, err)
		}
		if seen[r.Name] {
			return fmt.Errorf("spec.rules[%d]: rule %q is defined twice: %w", i, r.Name, api.ErrInvalid)
		}
		seen[r.Name] = true
	}
	// Cycles need no VMs to be found: refuse them before anything else.
	if err := ha.ValidateDependencies(Dependencies(s), nil, ""); err != nil {
		return fmt.Errorf("spec.rules: %w", err)
	}
	o.SetSpec(s)
	return nil
}

func (cluster) admitCreate(t *Txn, ref api.Ref, o *api.Object) error {
	var spec api.ClusterSpec
	_ = o.DecodeSpec(&spec)
	if err := admitGroups(t, o.Path, api.ClusterSpec{}, spec); err != nil {
		return err
	}
	if err := checkDependencies(t, ref.Datacenter, spec, nil); err != nil {
		return err
	}
	cidr, err := podCIDR(t, o.Path, spec.PodCIDR)
	if err != nil {
		return err
	}
	spec.PodCIDR = cidr
	if err := admitServiceNetwork(t, o.Path, nil, &spec); err != nil {
		return err
	}
	o.SetSpec(spec)
	ingressAddress(t, o, spec)
	return nil
}

func (cluster) created(t *Txn, out *api.Object) (*api.Object, error) {
	root := api.New(api.KindResourcePool, out.Path+"/"+api.RootPoolName, api.PoolSpec{CPU: defaultAlloc(), Mem: defaultAlloc()})
	if _, err := t.Create(root); err != nil {
		return nil, err
	}
	return out, nil
}

func (cluster) admitChange(t *Txn, ref api.Ref, cur, o *api.Object) (string, error) {
	var oldSpec, spec api.ClusterSpec
	_ = cur.DecodeSpec(&oldSpec)
	_ = o.DecodeSpec(&spec)
	if err := admitGroups(t, o.Path, oldSpec, spec); err != nil {
		return "", err
	}
	if dependencyInputsChanged(oldSpec, spec) {
		if err := checkDependencies(t, ref.Datacenter, spec, nil); err != nil {
			if spec.HA.DefaultRestartPriority != oldSpec.HA.DefaultRestartPriority {
				return "", fmt.Errorf("spec.ha.defaultRestartPriority %s: %w", orDefault(spec.HA.DefaultRestartPriority, ha.DefaultPriority), err)
			}
			return "", err
		}
	}
	if spec.PodCIDR == "" || spec.PodCIDR == oldSpec.PodCIDR {
		spec.PodCIDR = oldSpec.PodCIDR
	} else {
		if hosts := t.List(store.Query{Kind: api.KindHost, Prefix: o.Path}); len(hosts) > 0 {
			return "", fmt.Errorf("spec.podCIDR of %s cannot change while its %d hosts hold pod subnets of %s: %w", o.Path, len(hosts), oldSpec.PodCIDR, api.ErrConflict)
		}
		if _, err := podCIDR(t, o.Path, spec.PodCIDR); err != nil {
			return "", err
		}
	}
	if err := admitServiceNetwork(t, o.Path, &oldSpec, &spec); err != nil {
		return "", err
	}
	o.SetSpec(spec)
	ingressAddress(t, o, spec)
	return "", nil
}

func (cluster) admitRemove(t *Txn, ref api.Ref, cur *api.Object, _ RemoveOptions) error {
	path := cur.Path
	root := path + "/" + api.RootPoolName
	for _, o := range t.List(store.Query{Prefix: path}) {
		if o.Path != path && o.Path != root {
			return fmt.Errorf("cluster %s still holds %s: remove it first: %w", path, o.Path, api.ErrConflict)
		}
	}
	if held := t.inv.allocs.holders(path); len(held) > 0 {
		return fmt.Errorf("cluster %s still carries Service %s (and %d more): remove them first: %w", path, held[0], len(held)-1, api.ErrConflict)
	}
	dc := "/" + ref.Datacenter + "/vm/"
	for _, o := range t.List(store.Query{Kind: api.KindVirtualMachine, Prefix: "/" + ref.Datacenter + "/vm"}) {
		var spec api.VMSpec
		_ = o.DecodeSpec(&spec)
		if spec.Pool == root {
			return fmt.Errorf("cluster %s still has VM %s in its root pool: %w", path, strings.TrimPrefix(o.Path, dc), api.ErrConflict)
		}
	}
	return t.Delete(root, 0)
}

// podCIDR checks a cluster's pod CIDR against every other cluster's (VM
// addresses must be unique across the inventory, or routes and guest
// traffic go astray), or, when none is given, picks the first free /16 of
// 10.244.0.0 to 10.255.0.0.
func podCIDR(t *Txn, cluster, want string) (string, error) {
	others := map[string]string{}
	for _, c := range t.List(store.Query{Kind: api.KindCluster}) {
		if c.Path == cluster {
			continue
		}
		var cs api.ClusterSpec
		_ = c.DecodeSpec(&cs)
		others[c.Path] = cs.PodCIDR
	}
	return admission.PodCIDR(others, cluster, want)
}
