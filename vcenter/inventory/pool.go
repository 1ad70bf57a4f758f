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
		createdEvent: "ResourcePoolCreatedEvent", changedEvent: "ResourcePoolReconfiguredEvent", goneEvent: "ResourcePoolDestroyedEvent"}
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
	return admission.CreatePool(t.inv.ix.cluster(ref.ClusterPath(), nil), o.Path, ref.ParentPool(), spec)
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
	return "", admission.CreatePool(t.inv.ix.cluster(ref.ClusterPath(), nil), o.Path, ref.ParentPool(), spec)
}

func (pool) admitRemove(t *Txn, ref api.Ref, cur *api.Object, opt RemoveOptions) error {
	if len(ref.Pools) == 0 {
		return fmt.Errorf("%s is the cluster's root pool: it goes with the cluster: %w", cur.Path, api.ErrInvalid)
	}
	ns := ""
	if len(ref.Pools) == 1 {
		ns = ref.Pools[0]
	}
	inside := namespaceContents(t, ref.Datacenter, ns, cur.Path)
	switch {
	case opt.Namespace && ns == "":
		return fmt.Errorf("%s is not a namespace's pool (namespaces are the pools right under %s): %w", cur.Path, ref.RootPool(), api.ErrInvalid)
	case opt.Namespace:
		// Workloads first (they take what they own with them), then the rest.
		sort.SliceStable(inside, func(i, j int) bool {
			return inside[i].Kind != api.KindVirtualMachine && inside[j].Kind == api.KindVirtualMachine
		})
		for _, o := range inside {
			if _, err := t.Get(o.Path); err != nil {
				continue // gone with its owner
			}
			if err := removeOwned(t, o.Path); err != nil {
				return err
			}
			if err := t.Delete(o.Path, 0); err != nil {
				return err
			}
			st, _ := strategyOf(o.Kind)
			if err := t.Event("info", st.names().goneEvent, o.Path, "%s %s removed with its namespace %s", st.names().word, o.Path, ns); err != nil {
				return err
			}
		}
		return destroyPool(t, cur.Path, true)
	case len(inside) > 0:
		return fmt.Errorf("pool %s is namespace %s's pool and the namespace holds %s (%d objects): delete the Namespace instead (psc delete -f of its manifest), which removes them with it: %w",
			cur.Path, ns, inside[0].Path, len(inside), api.ErrConflict)
	}
	return destroyPool(t, cur.Path, opt.Children)
}

// namespaceContents lists the objects in namespace ns's folders of
// datacenter dc whose pool is pool or below it (another cluster may have a
// namespace of the same name).
func namespaceContents(t *Txn, dc, ns, pool string) []*api.Object {
	if ns == "" {
		return nil
	}
	var out []*api.Object
	for _, kind := range []string{api.KindDeployment, api.KindReplicaSet, api.KindDaemonSet, api.KindJob, api.KindAutoscaler, api.KindService, api.KindIngress, api.KindVirtualMachine} {
		prefix := "/" + dc + "/" + api.FolderOf(kind) + "/" + ns
		for _, o := range t.List(store.Query{Kind: kind, Prefix: prefix}) {
			p := poolOf(o)
			if kind == api.KindAutoscaler || kind == api.KindService || kind == api.KindIngress {
				p = pool // autoscalers, Services and Ingresses have no pool: they go with their namespace
			}
			if p == pool || strings.HasPrefix(p, pool+"/") {
				out = append(out, o)
			}
		}
	}
	return out
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
