package inventory

import (
	"fmt"
	"sort"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/pools"
	"github.com/podsphere/podsphere/quota"
	"github.com/podsphere/podsphere/vcenter/admission"
	"github.com/podsphere/podsphere/vcenter/store"
)

// pool is a resource pool: reservation, limit, shares and an optional
// quota, nested under its cluster's root pool.
type pool struct{ base }

func init() { register(api.KindResourcePool, pool{}) }

func (pool) names() kindNames {
	return kindNames{word: "Resource pool", createTask: "CreateResourcePool", changeTask: "UpdateConfig", removeTask: "Destroy_Task",
		createdEvent: "ResourcePoolCreatedEvent", changedEvent: "ResourcePoolReconfiguredEvent", goneEvent: "ResourcePoolDestroyedEvent",
		refusedCreateEvent: "AdmissionRefusedEvent", refusedChangeEvent: "AdmissionRefusedEvent"}
}

func (pool) prepare(_ api.Ref, o *api.Object) error {
	s := api.PoolSpec{CPU: defaultAlloc(), Mem: defaultAlloc()}
	if err := decodeStrict(o.Spec, &s, "spec"); err != nil {
		return err
	}
	if err := pools.Allocation(s.CPU).Validate("spec.cpu"); err != nil {
		return err
	}
	if err := pools.Allocation(s.Mem).Validate("spec.mem"); err != nil {
		return err
	}
	if s.Quota != nil {
		if err := quota.Limits(*s.Quota).Validate(); err != nil {
			return fmt.Errorf("spec.quota: %w", err)
		}
	}
	o.SetSpec(s)
	return nil
}

func (pool) admitCreate(t *Txn, ref api.Ref, o *api.Object) error {
	if len(ref.Pools) == 0 {
		return fmt.Errorf("%s is a cluster's root pool: it is made with the cluster: %w", o.Path, api.ErrInvalid)
	}
	if _, err := mustExist(t, ref.ParentPool(), "parent pool"); err != nil {
		return err
	}
	var spec api.PoolSpec
	_ = o.DecodeSpec(&spec)
	return admission.CreatePool(t.inv.ix.cluster(ref.ClusterPath(), false, ""), o.Path, ref.ParentPool(), spec)
}

func (pool) admitChange(t *Txn, ref api.Ref, cur, o *api.Object) (string, error) {
	var oldSpec, spec api.PoolSpec
	_ = cur.DecodeSpec(&oldSpec)
	_ = o.DecodeSpec(&spec)
	if len(ref.Pools) == 0 {
		if spec.CPU != oldSpec.CPU || spec.Mem != oldSpec.Mem {
			return "", fmt.Errorf("%s is the cluster's root pool: its reservation and limit are the cluster's capacity and cannot be set (a quota can): %w", o.Path, api.ErrInvalid)
		}
		return "", nil
	}
	return "", admission.CreatePool(t.inv.ix.cluster(ref.ClusterPath(), false, ""), o.Path, ref.ParentPool(), spec)
}

func (pool) admitRemove(t *Txn, ref api.Ref, cur *api.Object, opt RemoveOptions) error {
	if len(ref.Pools) == 0 {
		return fmt.Errorf("%s is the cluster's root pool: it goes with the cluster: %w", cur.Path, api.ErrInvalid)
	}
	return destroyPool(t, cur.Path, opt.Children)
}

// destroyPool removes a pool's descendants (with -children) and moves the
// VMs of every removed pool up to the destroyed pool's parent, as vSphere does.
func destroyPool(t *Txn, path string, children bool) error {
	parent := api.Parent(path)
	sub := t.List(store.Query{Kind: api.KindResourcePool, Prefix: path})
	gone := map[string]bool{}
	for _, p := range sub {
		if p.Path == path {
			gone[p.Path] = true
			continue
		}
		if !children {
			return fmt.Errorf("pool %s has child pool %s: destroy it first or use -children: %w", path, p.Path, api.ErrConflict)
		}
		gone[p.Path] = true
	}
	for _, o := range t.List(store.Query{Kind: api.KindVirtualMachine}) {
		var spec api.VMSpec
		_ = o.DecodeSpec(&spec)
		if !gone[spec.Pool] {
			continue
		}
		spec.Pool = parent
		o.SetSpec(spec)
		if _, err := t.Update(o); err != nil {
			return err
		}
		if err := t.Event("info", "VmResourcePoolMovedEvent", o.Path, "%s moved to %s because its pool was destroyed", o.Name(), parent); err != nil {
			return err
		}
	}
	// Deepest first, so no pool is ever removed before its children.
	order := make([]string, 0, len(gone))
	for p := range gone {
		if p != path {
			order = append(order, p)
		}
	}
	sort.Slice(order, func(i, j int) bool { return strings.Count(order[i], "/") > strings.Count(order[j], "/") })
	for _, p := range order {
		if err := t.Delete(p, 0); err != nil {
			return err
		}
	}
	return nil
}
