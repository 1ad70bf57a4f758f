package cli

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// KindFolder marks the host and vm folders psc shows under a datacenter;
// vcenter stores no object for them.
const KindFolder = "Folder"

// inventoryKinds are the kinds ls, find and tree show: every kind of
// api.Kinds but events, tasks and library items.
var inventoryKinds = slices.DeleteFunc(slices.Clone(api.Kinds), func(k string) bool {
	return k == api.KindEvent || k == api.KindTask || k == api.KindImage
})

// dcFolders are the folders of every datacenter, in ls order: govc's host
// and vm, then one per workload kind (deployment, replicaset, ...).
var dcFolders = func() []string {
	out := []string{"host", "vm"}
	for _, k := range inventoryKinds {
		if f := api.FolderOf(k); f != "" && f != "vm" {
			out = append(out, f)
		}
	}
	return out
}()

// typeAliases are govc's -t / -type letters and the words users type;
// workloads go by kubectl's short names and their folders' names.
var typeAliases = map[string]string{
	"d": api.KindDatacenter, "datacenter": api.KindDatacenter,
	"c": api.KindCluster, "cluster": api.KindCluster, "clustercomputeresource": api.KindCluster,
	// govc's r (ComputeResource) also matches clusters, the only compute
	// resources podsphere has (no standalone hosts).
	"r": api.KindCluster, "computeresource": api.KindCluster,
	"h": api.KindHost, "host": api.KindHost, "hostsystem": api.KindHost,
	"p": api.KindResourcePool, "pool": api.KindResourcePool, "resourcepool": api.KindResourcePool,
	"m": api.KindVirtualMachine, "vm": api.KindVirtualMachine, "virtualmachine": api.KindVirtualMachine,
	"f": KindFolder, "folder": KindFolder,
	"rs": api.KindReplicaSet, "replicaset": api.KindReplicaSet,
	"deploy": api.KindDeployment, "deployment": api.KindDeployment,
	"ds": api.KindDaemonSet, "daemonset": api.KindDaemonSet,
	"job": api.KindJob,
	"hpa": api.KindAutoscaler, "horizontalpodautoscaler": api.KindAutoscaler,
	"svc": api.KindService, "service": api.KindService,
	"ing": api.KindIngress, "ingress": api.KindIngress,
}

// govcTypesWithout are govc's types podsphere has no objects of, so that
// `ls -t s` says so instead of calling the letter unknown.
var govcTypesWithout = map[string]string{
	"a": "VirtualApp", "virtualapp": "VirtualApp",
	"g": "DistributedVirtualPortgroup", "distributedvirtualportgroup": "DistributedVirtualPortgroup",
	"n": "Network", "network": "Network",
	"o": "OpaqueNetwork", "opaquenetwork": "OpaqueNetwork",
	"s": "Datastore", "datastore": "Datastore",
	"w": "DistributedVirtualSwitch", "distributedvirtualswitch": "DistributedVirtualSwitch",
}

// parseType reads a -t / -type value: govc's letters and type names
// (ClusterComputeResource, HostSystem, ...) or the words users type.
func parseType(t string) (string, error) {
	if t == "" {
		return "", nil
	}
	if k, ok := typeAliases[strings.ToLower(t)]; ok {
		return k, nil
	}
	if name, ok := govcTypesWithout[strings.ToLower(t)]; ok {
		return "", usagef("type %q: podsphere has no %s objects", t, name)
	}
	return "", usagef("unknown type %q (want d, c, r, h, p, m, f, rs, deploy, ds, job, hpa, svc or govc's type names (Datacenter, ClusterComputeResource, HostSystem, ResourcePool, VirtualMachine, Folder) or datacenter, cluster, host, pool, vm, folder, replicaset, deployment, daemonset, service)", t)
}

// parseTypes reads repeated -t / -type values into the kinds they name;
// nil when none is given (every kind).
func parseTypes(types []string) (map[string]bool, error) {
	if len(types) == 0 {
		return nil, nil
	}
	kinds := map[string]bool{}
	for _, t := range types {
		for _, one := range strings.Split(t, ",") {
			k, err := parseType(one)
			if err != nil {
				return nil, err
			}
			if k != "" {
				kinds[k] = true
			}
		}
	}
	if len(kinds) == 0 {
		return nil, nil
	}
	return kinds, nil
}

// inventory is a snapshot of the inventory objects under one prefix, with
// the datacenters' host and vm folders added.
type inventory struct {
	byPath map[string]*api.Object
	paths  []string // sorted
	// owned lists, by owner path, what each workload owns (by path).
	owned map[string][]*api.Object
	// rootPools holds vcenter's figures of the root pools ls -l shows: a
	// root pool's reservation and limit are the cluster's capacity, which
	// its stored spec does not carry (pool.info shows the same).
	rootPools map[string]*api.PoolInfo
}

// loadInventory lists every inventory kind below root ("/" for all).
func loadInventory(ctx context.Context, c API, root string) (*inventory, error) {
	inv := &inventory{byPath: map[string]*api.Object{}}
	prefix := root
	if root != "/" {
		// /dc1 also names /dc1/...; the store matches plain prefixes, so
		// drop /dc10 ourselves below. Host and vm folders of a datacenter
		// need the whole datacenter.
		prefix = "/" + strings.Split(strings.TrimPrefix(root, "/"), "/")[0]
		if hasGlob(prefix) {
			prefix = "/"
		}
	}
	for _, kind := range inventoryKinds {
		l, err := c.List(ctx, client.ListOptions{Kind: kind, Prefix: prefix})
		if err != nil {
			return nil, err
		}
		for _, o := range l.Items {
			if within(o.Path, prefix) {
				inv.add(o)
			}
		}
	}
	inv.owned = map[string][]*api.Object{}
	for _, p := range slices.Clone(inv.paths) {
		o := inv.byPath[p]
		if o.Kind == api.KindDatacenter {
			for _, f := range dcFolders {
				inv.addFolder(p + "/" + f)
			}
		}
		if ref, err := api.ParsePath(p); err == nil && ref.Namespace != "" {
			inv.addFolder(api.Parent(p)) // the namespace's folder: /DC/vm/NS
		}
		if o.Owner != "" {
			inv.owned[o.Owner] = append(inv.owned[o.Owner], o)
		}
	}
	slices.Sort(inv.paths)
	for _, objs := range inv.owned {
		slices.SortFunc(objs, func(a, b *api.Object) int { return strings.Compare(a.Path, b.Path) })
	}
	return inv, nil
}

// addFolder adds a folder psc shows, unless an object has its path.
func (inv *inventory) addFolder(p string) {
	if _, ok := inv.byPath[p]; !ok {
		inv.add(&api.Object{Meta: api.Meta{Kind: KindFolder, Path: p}})
	}
}

func (inv *inventory) add(o *api.Object) {
	if _, dup := inv.byPath[o.Path]; !dup {
		inv.paths = append(inv.paths, o.Path)
	}
	inv.byPath[o.Path] = o
}

// within says whether p is root or below it.
func within(p, root string) bool {
	return root == "/" || p == root || strings.HasPrefix(p, root+"/")
}

// objects returns the objects of kind (all kinds if "") below root, by path.
func (inv *inventory) objects(kind, root string) []*api.Object {
	var out []*api.Object
	for _, p := range inv.paths {
		o := inv.byPath[p]
		if within(p, root) && (kind == "" || o.Kind == kind) {
			out = append(out, o)
		}
	}
	return out
}

// children lists what ls shows inside p: datacenters under /, the folders
// of a datacenter, clusters in the host folder, VMs and namespace folders
// in the vm folder (and workloads and namespace folders in the workload
// folders), the VMs or workloads of a namespace folder, hosts and the root
// pool of a cluster, child pools and member VMs of a pool.
func (inv *inventory) children(p string) []*api.Object {
	var out []*api.Object
	o := inv.byPath[p]
	for _, q := range inv.paths {
		c := inv.byPath[q]
		if api.Parent(q) == p && !(p == "/" && c.Kind != api.KindDatacenter) {
			out = append(out, c)
		}
	}
	if p == "/" {
		return out
	}
	if o != nil && o.Kind == api.KindResourcePool {
		out = append(out, inv.poolVMs(p)...)
	}
	if o != nil && o.Kind == api.KindDatacenter {
		slices.SortStableFunc(out, func(a, b *api.Object) int {
			return slices.Index(dcFolders, api.Base(a.Path)) - slices.Index(dcFolders, api.Base(b.Path))
		})
	}
	return out
}

// workloadPool is the pool a workload's VMs run in ("" for an autoscaler).
func workloadPool(o *api.Object) string {
	var s struct {
		Pool string `json:"pool"`
	}
	_ = o.DecodeSpec(&s)
	return s.Pool
}

// kept says whether o is kept by an owner in the inventory (tree shows it
// under its owner then, not in its pool).
func (inv *inventory) kept(o *api.Object) bool {
	return o.Owner != "" && inv.byPath[o.Owner] != nil
}

// poolVMs are the VMs whose spec puts them in pool p.
func (inv *inventory) poolVMs(p string) []*api.Object {
	var out []*api.Object
	for _, vm := range inv.objects(api.KindVirtualMachine, "/") {
		if vmSpec(vm).Pool == p {
			out = append(out, vm)
		}
	}
	return out
}

// hostVMs are the VMs that run on (or are pinned to) host h.
func (inv *inventory) hostVMs(h string) []*api.Object {
	var out []*api.Object
	for _, vm := range inv.objects(api.KindVirtualMachine, "/") {
		if vmHost(vm) == h {
			out = append(out, vm)
		}
	}
	return out
}

func vmSpec(o *api.Object) api.VMSpec {
	var s api.VMSpec
	_ = o.DecodeSpec(&s)
	return s
}

func vmStatus(o *api.Object) api.VMStatus {
	var s api.VMStatus
	_ = o.DecodeStatus(&s)
	return s
}

// vmPowerState is the observed power state, falling back to the desired one.
func vmPowerState(o *api.Object) string {
	if st := vmStatus(o); st.PowerState != "" {
		return st.PowerState
	}
	if s := vmSpec(o).PowerState; s != "" {
		return s
	}
	return api.PoweredOff
}

// vmHost is where the VM runs, or where it is placed or pinned.
func vmHost(o *api.Object) string {
	if st := vmStatus(o); st.Host != "" {
		return st.Host
	}
	return vmSpec(o).Host
}

// resolveInventoryPath resolves an ls/find/tree/events argument: "" means
// root, relative paths resolve in the datacenter.
func (r *Resolver) inventoryPath(ctx context.Context, arg, root string) (string, error) {
	if arg == "" || arg == "." {
		return root, nil
	}
	p, err := r.expandName(ctx, "", arg)
	if err != nil {
		return "", err
	}
	p = path.Clean(p)
	if hasGlob(p) {
		return p, nil
	}
	if p == "/" {
		return p, nil
	}
	elems := strings.Split(p[1:], "/")
	if len(elems) == 2 && slices.Contains(dcFolders, elems[1]) {
		if err := api.ValidName(elems[0]); err != nil {
			return "", usageErr(err)
		}
		return p, nil
	}
	if _, err := api.ParsePath(p); err != nil {
		// Not a datacenter-relative path: a bare pool name (dev, dev/web)
		// under the cluster's root pool, as pool verbs take it.
		if !strings.HasPrefix(arg, "/") {
			if pp, perr := r.Path(ctx, api.KindResourcePool, arg); perr == nil {
				return pp, nil
			}
		}
		return "", usageErr(err)
	}
	return p, nil
}

// lookup resolves arg against inv: one path, or every match of a glob.
func (inv *inventory) lookup(p string) ([]*api.Object, error) {
	if hasGlob(p) {
		var out []*api.Object
		for _, q := range inv.paths {
			if matchPath(p, q) {
				out = append(out, inv.byPath[q])
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%s: no match: %w", p, api.ErrNotFound)
		}
		return out, nil
	}
	if p == "/" {
		return []*api.Object{{Meta: api.Meta{Kind: KindFolder, Path: "/"}}}, nil
	}
	o, ok := inv.byPath[p]
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, api.ErrNotFound)
	}
	return []*api.Object{o}, nil
}
