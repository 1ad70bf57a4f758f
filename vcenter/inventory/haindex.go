package inventory

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
)

// haVM is what HA's snapshot needs of a VM beyond the index's own fields,
// decoded once when the VM is written rather than at every HA pass: HA
// passes every 250 ms while a host is silent, and decoding 50,000 VMs'
// specs and statuses took most of a second each time.
type haVM struct {
	name       string // the planner's name: NAME, or NS/NAME in a namespace
	uid        string
	priority   string // the VM's own restart priority ("": the cluster's default)
	pinned     bool
	removing   bool
	numCPU     int
	memoryMB   int64
	running    bool // its registered host reports it poweredOn
	ready      bool
	readySince time.Time
	// powerOnFailed is its registered host's word that it could not power it on.
	powerOnFailed string
	rec           *api.VMHAStatus // shared with every snapshot: never changed in place
}

func haVMOf(o *api.Object, s api.VMSpec, st api.VMStatus) haVM {
	name := o.Name()
	if vr, _ := api.ParsePath(o.Path); vr.Namespace != "" {
		name = vr.Namespace + "/" + name
	}
	running := st.PowerState == api.PoweredOn && st.Host == s.Host
	failed := ""
	if st.Host == s.Host && !running {
		failed = st.PowerOnFailed
	}
	return haVM{powerOnFailed: failed, name: name, uid: o.UID, priority: s.HA.RestartPriority, pinned: s.Pinned, removing: s.Removing,
		numCPU: s.NumCPU, memoryMB: s.MemoryMB, running: running, ready: running && st.Ready, readySince: st.ReadySince, rec: st.HA}
}

// haItem is one VM as HASnapshot reads it from the index.
type haItem struct {
	path, host     string
	on             bool
	cpuRes, memRes int64
	haVM
}

// haIndex keeps, per cluster, HA's view of the VMs registered on its
// hosts, and their path order, so a pass neither decodes nor sorts 50,000
// VMs: it copies them, in an order that is sorted again only when a VM
// joined or left the cluster.
type haIndex struct {
	byCluster map[string]map[string]*haItem // cluster path -> VM path -> item (never changed in place)
	where     map[string]string             // VM path -> its cluster in byCluster
	changed   map[string]uint64             // cluster path -> bumped when a VM joins or leaves it
	hostVer   map[string]uint64             // host path -> bumped at every write of a VM registered there

	mu    sync.Mutex // guards order, also under the index's read lock
	order map[string]haOrder
}

type haOrder struct {
	version uint64
	paths   []string // shared by the snapshots: replaced, never changed in place
}

func newHAIndex() haIndex {
	return haIndex{byCluster: map[string]map[string]*haItem{}, where: map[string]string{}, changed: map[string]uint64{}, hostVer: map[string]uint64{}, order: map[string]haOrder{}}
}

// put records the VM at path as written (e); the index holds its lock.
func (x *haIndex) put(path string, e vmEntry) {
	cluster := ""
	if e.host != "" {
		cluster = api.Parent(e.host)
	}
	if prev := x.where[path]; prev != cluster {
		x.drop(path)
	}
	if cluster == "" {
		return
	}
	m := x.byCluster[cluster]
	if m == nil {
		m = map[string]*haItem{}
		x.byCluster[cluster] = m
	}
	if old, ok := m[path]; !ok {
		x.changed[cluster]++
	} else {
		x.hostVer[old.host]++
	}
	x.hostVer[e.host]++
	m[path] = &haItem{path: path, host: e.host, on: e.on, cpuRes: e.cpuRes, memRes: e.memRes, haVM: e.ha}
	x.where[path] = cluster
}

// drop forgets the VM at path (removed, or no longer on that cluster).
func (x *haIndex) drop(path string) {
	prev, ok := x.where[path]
	if !ok {
		return
	}
	delete(x.where, path)
	if it := x.byCluster[prev][path]; it != nil {
		x.hostVer[it.host]++
	}
	delete(x.byCluster[prev], path)
	x.changed[prev]++
	if len(x.byCluster[prev]) == 0 {
		delete(x.byCluster, prev)
		x.mu.Lock()
		delete(x.order, prev)
		x.mu.Unlock()
	}
}

// haVMs is every VM of datacenter dc (its VM folder, namespaces
// included) registered on a host of cluster, in path order: what
// HASnapshot used to list (and decode) from the store.
func (ix *index) haVMs(dc, cluster string) []haItem {
	folder := "/" + dc + "/vm/"
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	x := &ix.ha
	m, ver := x.byCluster[cluster], x.changed[cluster]
	x.mu.Lock()
	ord, ok := x.order[cluster]
	x.mu.Unlock()
	if !ok || ord.version != ver {
		ord = haOrder{version: ver, paths: slices.Sorted(maps.Keys(m))}
		x.mu.Lock()
		x.order[cluster] = ord
		x.mu.Unlock()
	}
	out := make([]haItem, 0, len(ord.paths))
	for _, p := range ord.paths {
		if it := m[p]; it != nil && strings.HasPrefix(p, folder) {
			out = append(out, *it)
		}
	}
	return out
}

// HAHostsVersion changes whenever a VM registered on one of hosts (paths)
// is written, comes or goes: HA sees from it, without a snapshot, that
// nothing changed on hosts it already declared failed.
func (inv *Inventory) HAHostsVersion(hosts []string) uint64 {
	inv.ix.mu.RLock()
	defer inv.ix.mu.RUnlock()
	var v uint64
	for _, h := range hosts {
		v += inv.ix.ha.hostVer[h] // counters only grow: a sum changes when any does
	}
	return v
}
