package inventory

import (
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/labels"
	"github.com/podsphere/podsphere/quota"
	"github.com/podsphere/podsphere/vcenter/admission"
	"github.com/podsphere/podsphere/vcenter/placement"
)

// index keeps the aggregates admission and placement need (per-pool
// reservations and counts, per-host load) so a power-on does not scan every
// VM. The store feeds it every mutation in revision order under its write
// lock; HTTP readers take mu for reading. Never hold mu while calling into a
// store transaction: the store calls apply under its own lock.
type index struct {
	mu       sync.RWMutex
	pools    map[string]*poolEntry // pool path -> entry
	hosts    map[string]*hostEntry // host path -> entry
	clusters map[string]api.ClusterSpec
	vms      map[string]vmEntry  // vm path -> entry
	owned    map[string][]string // workload path -> paths of the VMs it owns
	// peers counts, per owner and host, the owner's powered-on VMs placed
	// there (admission's Peers), so a power-on does not walk every member.
	peers map[string]map[string]int
	// clusterHosts is, per cluster, what admission sees of each of its
	// hosts (Peers 0), kept in step with hosts, so a snapshot copies one
	// map instead of rebuilding it host by host.
	clusterHosts map[string]map[string]admission.Host
	// hostOrder is, per cluster, the paths in clusterHosts in name order.
	// A snapshot shares the slice: it is replaced, never changed in place.
	hostOrder map[string][]string
	// running and repelling: per VM folder (a namespace: /DC/vm or
	// /DC/vm/NS), the powered-on VMs with a host, and those of them with
	// required anti-affinity terms; what VM-VM placement terms look at.
	running, repelling map[string]map[string]struct{}
	// reservations counts, per cluster, the powered-on placed VMs
	// reserving each CPU and memory figure: HA's slot size is the largest.
	cpuResCount, memResCount map[string]map[int64]int
	ha                       haIndex  // HA's view of each cluster's VMs
	events                   []string // event paths, oldest first
	tasks                    []string
	nextKey                  uint64 // next event/task key
}

type poolEntry struct {
	// exists is false for an entry kept only for the VMs or child pools
	// still counted against a pool that is gone or not yet applied.
	exists   bool
	spec     api.PoolSpec
	children int // direct child pools
	vms      int // VMs directly in this pool, any power state
	sets     int // replica sets directly in this pool (quota's replicasets)
	// Reservations and quota footprint of powered-on VMs directly in this pool.
	onCPURes, onMemRes   int64
	onCPUFoot, onMemFoot int64
	// Measured use of powered-on VMs directly in this pool (overallUsage).
	onCPUUse, onMemUse int64
}

type hostEntry struct {
	cluster        string
	labels         map[string]string
	spec           api.HostSpec
	status         api.HostStatus
	cpuRes, memRes int64 // reservations of powered-on VMs placed here
	running        int
}

type vmEntry struct {
	cpuUse, memUse int64 // measured by the VM's host
	pool, host     string
	// to is the destination of the VM's cold migration in progress
	// (spec.migration.host): its reservations are counted there as well as
	// on host until the migration completes, so the capacity admitted for
	// the move cannot be taken meanwhile, while the VM still runs on host.
	to               string
	owner            string
	labels           map[string]string
	antiAffinity     []labels.Selector // selectors of its required vmAntiAffinity terms
	on               bool
	cpuRes, memRes   int64
	cpuFoot, memFoot int64
	ha               haVM // what HA's snapshot reads
}

func newIndex() *index {
	return &index{
		pools:       map[string]*poolEntry{},
		hosts:       map[string]*hostEntry{},
		clusters:    map[string]api.ClusterSpec{},
		vms:         map[string]vmEntry{},
		owned:       map[string][]string{},
		peers:       map[string]map[string]int{},
		running:     map[string]map[string]struct{}{},
		repelling:   map[string]map[string]struct{}{},
		cpuResCount: map[string]map[int64]int{},
		memResCount: map[string]map[int64]int{},
		nextKey:     1,

		ha:           newHAIndex(),
		clusterHosts: map[string]map[string]admission.Host{},
		hostOrder:    map[string][]string{},
	}
}

func vmEntryOf(o *api.Object) vmEntry {
	var s api.VMSpec
	_ = json.Unmarshal(o.Spec, &s)
	e := vmEntry{pool: s.Pool, host: s.Host, owner: o.Owner, on: s.PowerState == api.PoweredOn,
		cpuRes: s.CPU.Reservation, memRes: s.Mem.Reservation, labels: o.Labels}
	if m := s.Migration; m != nil && m.Host != s.Host {
		e.to = m.Host
	}
	e.cpuFoot, e.memFoot = admission.Footprint(s)
	if s.Affinity != nil {
		for _, t := range s.Affinity.VMAntiAffinity {
			if !t.Required {
				continue
			}
			if sel, err := labels.FromLabelSelector(t.Selector); err == nil { // checked when the VM was written
				e.antiAffinity = append(e.antiAffinity, sel)
			}
		}
	}
	var st api.VMStatus
	_ = json.Unmarshal(o.Status, &st)
	if e.on {
		e.cpuUse, e.memUse = st.CPUUsageMHz, st.MemUsageMB
	}
	e.ha = haVMOf(o, s, st)
	return e
}

func (ix *index) pool(p string) *poolEntry {
	e := ix.pools[p]
	if e == nil {
		e = &poolEntry{}
		ix.pools[p] = e
	}
	return e
}

func (ix *index) host(p string) *hostEntry {
	e := ix.hosts[p]
	if e == nil {
		e = &hostEntry{}
		ix.hosts[p] = e
	}
	return e
}

// hostChanged copies host entry e at p into its cluster's clusterHosts.
// An entry made for VMs of a host not (or no longer) in the inventory has
// no cluster and is not in any snapshot.
func (ix *index) hostChanged(p string, e *hostEntry) {
	if e.cluster == "" {
		return
	}
	m := ix.clusterHosts[e.cluster]
	if m == nil {
		m = map[string]admission.Host{}
		ix.clusterHosts[e.cluster] = m
	}
	if _, ok := m[p]; !ok {
		order := ix.hostOrder[e.cluster]
		i, _ := slices.BinarySearch(order, p)
		ix.hostOrder[e.cluster] = slices.Insert(slices.Clone(order), i, p)
	}
	m[p] = admission.Host{Spec: e.spec, Status: e.status, Labels: e.labels,
		CPUReserved: e.cpuRes, MemReserved: e.memRes, Running: e.running}
}

// apply is the store's index hook.
func (ix *index) apply(old, new *api.Object) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	o := new
	if o == nil {
		o = old
	}
	if old != nil && old.Owner != "" && (new == nil || new.Owner != old.Owner) {
		ix.disown(old.Owner, old.Path)
	}
	if new != nil && new.Owner != "" && (old == nil || old.Owner != new.Owner) {
		ix.owned[new.Owner] = append(ix.owned[new.Owner], new.Path)
	}
	switch o.Kind {
	case api.KindReplicaSet:
		if old != nil {
			ix.pool(poolOf(old)).sets--
			ix.dropIfUnused(poolOf(old))
		}
		if new != nil {
			ix.pool(poolOf(new)).sets++
		}
	case api.KindVirtualMachine:
		if old != nil {
			ix.vmOut(old.Path)
		}
		if new == nil {
			ix.ha.drop(old.Path)
		}
		if new != nil {
			e := vmEntryOf(new)
			ix.vmIn(new.Path, e)
			ix.ha.put(new.Path, e)
		}
	case api.KindResourcePool:
		parent := api.Parent(o.Path)
		ref, _ := api.ParsePath(o.Path)
		isRoot := len(ref.Pools) == 0
		if new == nil {
			if e := ix.pools[o.Path]; e != nil {
				e.exists = false
				ix.dropIfUnused(o.Path)
			}
			if !isRoot {
				ix.pool(parent).children--
				ix.dropIfUnused(parent)
			}
			return
		}
		if old == nil && !isRoot {
			ix.pool(parent).children++
		}
		var s api.PoolSpec
		_ = json.Unmarshal(new.Spec, &s)
		e := ix.pool(new.Path)
		e.spec, e.exists = s, true
	case api.KindHost:
		if new == nil {
			if h := ix.hosts[o.Path]; h != nil && h.cluster != "" {
				delete(ix.clusterHosts[h.cluster], o.Path)
				order := ix.hostOrder[h.cluster]
				if i, ok := slices.BinarySearch(order, o.Path); ok {
					ix.hostOrder[h.cluster] = slices.Delete(slices.Clone(order), i, i+1)
				}
				if len(ix.clusterHosts[h.cluster]) == 0 {
					delete(ix.clusterHosts, h.cluster)
					delete(ix.hostOrder, h.cluster)
				}
			}
			delete(ix.hosts, o.Path)
			return
		}
		h := ix.host(new.Path)
		ref, _ := api.ParsePath(new.Path)
		h.cluster = ref.ClusterPath()
		h.labels = api.HostLabels(new)
		h.spec = api.HostSpec{}
		h.status = api.HostStatus{}
		_ = json.Unmarshal(new.Spec, &h.spec)
		_ = json.Unmarshal(new.Status, &h.status)
		ix.hostChanged(new.Path, h)
	case api.KindCluster:
		if new == nil {
			delete(ix.clusters, o.Path)
			return
		}
		var s api.ClusterSpec
		_ = json.Unmarshal(new.Spec, &s)
		ix.clusters[new.Path] = s
	case api.KindEvent, api.KindTask:
		list := &ix.events
		if o.Kind == api.KindTask {
			list = &ix.tasks
		}
		if new == nil {
			for i, p := range *list {
				if p == old.Path {
					*list = append((*list)[:i], (*list)[i+1:]...)
					break
				}
			}
			return
		}
		if old == nil {
			*list = append(*list, new.Path)
			if k, err := strconv.ParseUint(api.Base(new.Path), 10, 64); err == nil && k >= ix.nextKey {
				ix.nextKey = k + 1
			}
		}
	}
}

// poolOf is the pool of a workload object.
func poolOf(o *api.Object) string {
	var s struct {
		Pool string `json:"pool"`
	}
	_ = json.Unmarshal(o.Spec, &s)
	return s.Pool
}

func (ix *index) disown(owner, path string) {
	list := ix.owned[owner]
	for i, q := range list {
		if q == path {
			list[i] = list[len(list)-1]
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(ix.owned, owner)
	} else {
		ix.owned[owner] = list
	}
}

// ownedBy lists the paths of the objects owner owns.
func (ix *index) ownedBy(owner string) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := append([]string(nil), ix.owned[owner]...)
	sort.Strings(out)
	return out
}

// dropIfUnused forgets the entry of a pool that is gone once nothing is
// counted against it any more.
func (ix *index) dropIfUnused(p string) {
	if e := ix.pools[p]; e != nil && !e.exists && e.vms == 0 && e.sets == 0 && e.children == 0 {
		delete(ix.pools, p)
	}
}

func (ix *index) vmIn(path string, e vmEntry) {
	ix.vms[path] = e
	p := ix.pool(e.pool)
	p.vms++
	if e.on {
		p.onCPURes += e.cpuRes
		p.onMemRes += e.memRes
		p.onCPUFoot += e.cpuFoot
		p.onMemFoot += e.memFoot
		p.onCPUUse += e.cpuUse
		p.onMemUse += e.memUse
		if e.host != "" {
			h := ix.host(e.host)
			h.cpuRes += e.cpuRes
			h.memRes += e.memRes
			h.running++
			ix.hostChanged(e.host, h)
			if e.owner != "" {
				m := ix.peers[e.owner]
				if m == nil {
					m = map[string]int{}
					ix.peers[e.owner] = m
				}
				m[e.host]++
			}
			countRes(ix.cpuResCount, h.cluster, e.cpuRes, 1)
			countRes(ix.memResCount, h.cluster, e.memRes, 1)
			addTo(ix.running, api.Parent(path), path)
			if len(e.antiAffinity) > 0 {
				addTo(ix.repelling, api.Parent(path), path)
			}
		}
		if e.to != "" {
			h := ix.host(e.to)
			h.cpuRes += e.cpuRes
			h.memRes += e.memRes
			ix.hostChanged(e.to, h)
		}
	}
}

// countRes adds d to the count of VMs of cluster reserving v.
func countRes(counts map[string]map[int64]int, cluster string, v int64, d int) {
	if cluster == "" {
		return
	}
	m := counts[cluster]
	if m == nil {
		m = map[int64]int{}
		counts[cluster] = m
	}
	if m[v] += d; m[v] <= 0 {
		delete(m, v)
	}
	if len(m) == 0 {
		delete(counts, cluster)
	}
}

func maxKey(m map[int64]int) int64 {
	var out int64
	for k := range m {
		out = max(out, k)
	}
	return out
}

func addTo(sets map[string]map[string]struct{}, key, path string) {
	set := sets[key]
	if set == nil {
		set = map[string]struct{}{}
		sets[key] = set
	}
	set[path] = struct{}{}
}

func dropFrom(sets map[string]map[string]struct{}, key, path string) {
	if set := sets[key]; set != nil {
		delete(set, path)
		if len(set) == 0 {
			delete(sets, key)
		}
	}
}

func (ix *index) vmOut(path string) {
	e, ok := ix.vms[path]
	if !ok {
		return
	}
	delete(ix.vms, path)
	p := ix.pool(e.pool)
	p.vms--
	defer ix.dropIfUnused(e.pool)
	if e.on {
		p.onCPURes -= e.cpuRes
		p.onMemRes -= e.memRes
		p.onCPUFoot -= e.cpuFoot
		p.onMemFoot -= e.memFoot
		p.onCPUUse -= e.cpuUse
		p.onMemUse -= e.memUse
		if h := ix.hosts[e.host]; h != nil {
			h.cpuRes -= e.cpuRes
			h.memRes -= e.memRes
			h.running--
			ix.hostChanged(e.host, h)
			countRes(ix.cpuResCount, h.cluster, e.cpuRes, -1)
			countRes(ix.memResCount, h.cluster, e.memRes, -1)
		}
		if m := ix.peers[e.owner]; e.host != "" && m != nil {
			if m[e.host]--; m[e.host] <= 0 {
				delete(m, e.host)
			}
			if len(m) == 0 {
				delete(ix.peers, e.owner)
			}
		}
		dropFrom(ix.running, api.Parent(path), path)
		dropFrom(ix.repelling, api.Parent(path), path)
		if h := ix.hosts[e.to]; e.to != "" && h != nil {
			h.cpuRes -= e.cpuRes
			h.memRes -= e.memRes
			ix.hostChanged(e.to, h)
		}
	}
}

// takeKey hands out the next event or task key. Called only inside store
// transactions, which the store serialises.
func (ix *index) takeKey() uint64 {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	k := ix.nextKey
	ix.nextKey++
	return k
}

// oldest returns the paths of the oldest entries beyond keep.
func (ix *index) oldest(kind string, keep int) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	list := ix.events
	if kind == api.KindTask {
		list = ix.tasks
	}
	if len(list) <= keep {
		return nil
	}
	return append([]string(nil), list[:len(list)-keep]...)
}

// placing says which VM a cluster snapshot is for.
type placing struct {
	vm    string // the VM's path
	owner string // its workload, "" if none
	// vmTerms: the VM has VM-VM terms, so it needs every running VM of its
	// namespace, not only those with required anti-affinity.
	vmTerms bool
}

// cluster is a consistent snapshot of what admission needs about one
// cluster. With p (a power-on), it maps the powered-on VMs the cluster's
// DRS rules name to their hosts; with p.owner, each host counts the
// powered-on VMs of that workload it runs (Peers), so a set's replicas
// spread; and it lists the VM's Neighbours: the powered-on VMs of its
// namespace on the cluster's hosts (only those with required anti-affinity
// unless p.vmTerms). Cost: the cluster's pools and hosts, the rules'
// members, the workload's VMs and the namespace's running VMs, never the
// whole inventory's VMs.
func (ix *index) cluster(clusterPath string, p *placing) admission.Cluster {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	v := admission.Cluster{Path: clusterPath, Spec: ix.clusters[clusterPath],
		Pools: map[string]admission.Pool{}, Hosts: maps.Clone(ix.clusterHosts[clusterPath])}
	if v.Hosts == nil {
		v.Hosts = map[string]admission.Host{}
	}
	v.HostOrder = ix.hostOrder[clusterPath]
	v.MaxCPUReservation = maxKey(ix.cpuResCount[clusterPath])
	v.MaxMemReservation = maxKey(ix.memResCount[clusterPath])
	root := clusterPath + "/" + api.RootPoolName
	for p, e := range ix.pools {
		if e.exists && (p == root || strings.HasPrefix(p, root+"/")) {
			v.Pools[p] = admission.Pool{Spec: e.spec, VMCPUReservation: e.onCPURes, VMMemReservation: e.onMemRes}
		}
	}
	if p == nil {
		return v
	}
	if p.owner != "" {
		for host, n := range ix.peers[p.owner] {
			if h, ok := v.Hosts[host]; ok {
				h.Peers += n
				v.Hosts[host] = h
			}
		}
	}
	v.Running = map[string]string{}
	dc := "/" + strings.Split(clusterPath, "/")[1] + "/vm/"
	for _, r := range v.Spec.Rules {
		for _, name := range r.VMs {
			if e, ok := ix.vms[dc+name]; ok && e.on && e.host != "" {
				v.Running[name] = api.Base(e.host)
			}
		}
	}
	set := ix.repelling
	if p.vmTerms {
		set = ix.running
	}
	folder := api.Parent(p.vm)
	ref, _ := api.ParsePath(p.vm)
	for path := range set[folder] {
		e := ix.vms[path]
		if _, ok := v.Hosts[e.host]; !ok || path == p.vm {
			continue // on another cluster's host, or the VM itself
		}
		v.Neighbours = append(v.Neighbours, placement.RunningVM{Name: api.Base(path), Namespace: ref.Namespace,
			Host: api.Base(e.host), Labels: e.labels, AntiAffinity: e.antiAffinity})
	}
	return v
}

// subtreeUse sums quota usage of the pool at p and every pool below it.
func (ix *index) subtreeUse(p string) api.QuotaLimits {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var u api.QuotaLimits
	for q, e := range ix.pools {
		if q == p || strings.HasPrefix(q, p+"/") {
			u.VMs += int64(e.vms)
			u.ReplicaSets += int64(e.sets)
			u.CPUMHz += e.onCPUFoot
			u.MemMB += e.onMemFoot
		}
	}
	return u
}

func (ix *index) vm(p string) (vmEntry, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	e, ok := ix.vms[p]
	return e, ok
}

// quotaLevels lists the pools from pool up to its cluster's root that carry
// a quota, with what each one's subtree uses now.
func (ix *index) quotaLevels(pool string) []quota.Level {
	var levels []quota.Level
	for p := pool; p != ""; p = api.Parent(p) {
		ix.mu.RLock()
		e := ix.pools[p]
		var q *api.QuotaLimits
		exists := e != nil && e.exists
		if exists {
			q = e.spec.Quota
		}
		ix.mu.RUnlock()
		if !exists {
			break
		}
		if q != nil {
			levels = append(levels, quota.Level{Pool: p, Limits: quota.Limits(*q), Used: quota.Usage(ix.subtreeUse(p))})
		}
	}
	return levels
}

// subtreeOverall sums the measured use of powered-on VMs in the pool at p
// and below it: vSphere's overallCpuUsage / hostMemoryUsage of a pool.
func (ix *index) subtreeOverall(p string) (cpu, mem int64) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for q, e := range ix.pools {
		if q == p || strings.HasPrefix(q, p+"/") {
			cpu += e.onCPUUse
			mem += e.onMemUse
		}
	}
	return cpu, mem
}
