package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/pools"
	"github.com/podsphere/podsphere/quota"
	"github.com/podsphere/podsphere/vcenter/placement"
	"github.com/podsphere/podsphere/vcenter/store"
)

// refusal reports whether err is an admission refusal (as opposed to bad
// input or a conflict): those leave an event and a failed task.
func refusal(err error) bool {
	return errors.Is(err, api.ErrQuotaExceeded) || errors.Is(err, api.ErrInsufficientResources)
}

var taskNames = map[string][3]string{ // kind -> create, change, delete task names (vSphere's)
	api.KindDatacenter:     {"CreateDatacenter", "ReconfigureDatacenter", "Destroy_Task"},
	api.KindCluster:        {"CreateClusterEx", "ReconfigureComputeResource_Task", "Destroy_Task"},
	api.KindHost:           {"AddHost_Task", "ReconfigureHost", "Destroy_Task"},
	api.KindResourcePool:   {"CreateResourcePool", "UpdateConfig", "Destroy_Task"},
	api.KindVirtualMachine: {"CreateVM_Task", "ReconfigVM_Task", "Destroy_Task"},
	api.KindImage:          {"ImportLibraryItem_Task", "UpdateLibraryItem_Task", "DeleteLibraryItem_Task"},
}

var eventNames = map[string][3]string{
	api.KindDatacenter:     {"DatacenterCreatedEvent", "DatacenterReconfiguredEvent", "DatacenterDestroyedEvent"},
	api.KindCluster:        {"ClusterCreatedEvent", "ClusterReconfiguredEvent", "ClusterDestroyedEvent"},
	api.KindHost:           {"HostAddedEvent", "HostReconfiguredEvent", "HostRemovedEvent"},
	api.KindResourcePool:   {"ResourcePoolCreatedEvent", "ResourcePoolReconfiguredEvent", "ResourcePoolDestroyedEvent"},
	api.KindVirtualMachine: {"VmCreatedEvent", "VmReconfiguredEvent", "VmRemovedEvent"},
	api.KindImage:          {"LibraryItemImportedEvent", "LibraryItemUpdatedEvent", "LibraryItemDeletedEvent"},
}

// mustExist checks a path inside the transaction, naming what is missing.
func mustExist(t *txn, path, what string) (*api.Object, error) {
	o, err := t.Get(path)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("%s %s does not exist: %w", what, path, api.ErrInvalid)
		}
		return nil, err
	}
	return o, nil
}

// create validates, admits and writes a new object.
func (s *Server) create(user string, o *api.Object) (*api.Object, error) {
	started := s.now()
	o.ResourceVersion, o.UID, o.Status = 0, "", nil
	o.Created, o.Modified = time.Time{}, time.Time{}
	ref, err := validateObject(o)
	if err != nil {
		return nil, err
	}
	if o.Kind == api.KindHost {
		return nil, fmt.Errorf("HostSystem objects are created by hosts joining (podsphere host --join-token ...), not by the API: %w", api.ErrInvalid)
	}
	if o.Kind == api.KindResourcePool && len(ref.Pools) == 0 {
		return nil, fmt.Errorf("%s is a cluster's root pool: it is made with the cluster: %w", o.Path, api.ErrInvalid)
	}
	var out *api.Object
	refusedEvent := "AdmissionRefusedEvent"
	err = s.update(user, func(t *txn) error {
		if err := s.admitCreate(t, ref, o); err != nil {
			return err
		}
		var err error
		if out, err = t.Create(o); err != nil {
			return err
		}
		if err := t.event("info", eventNames[o.Kind][0], o.Path, "%s %s created", kindWord(o.Kind), o.Path); err != nil {
			return err
		}
		if o.Kind == api.KindCluster {
			root := api.New(api.KindResourcePool, o.Path+"/"+api.RootPoolName, api.PoolSpec{CPU: defaultAlloc(), Mem: defaultAlloc()})
			if _, err := t.Create(root); err != nil {
				return err
			}
		}
		if o.Kind == api.KindVirtualMachine {
			var spec api.VMSpec
			_ = out.DecodeSpec(&spec)
			if spec.PowerState == api.PoweredOn {
				refusedEvent = "VmFailedToPowerOnEvent"
				if out, err = s.powerOn(t, out, spec); err != nil {
					return err
				}
			}
		}
		return t.task(taskNames[o.Kind][0], o.Path, started, nil)
	})
	if err != nil {
		if refusal(err) {
			return nil, s.refuse(user, taskNames[o.Kind][0], o.Path, refusedEvent, started, err)
		}
		return nil, err
	}
	return out, nil
}

func kindWord(kind string) string {
	switch kind {
	case api.KindVirtualMachine:
		return "VM"
	case api.KindResourcePool:
		return "Resource pool"
	case api.KindHost:
		return "Host"
	case api.KindImage:
		return "Library item"
	}
	return kind
}

func (s *Server) admitCreate(t *txn, ref api.Ref, o *api.Object) error {
	if ref.Kind != api.KindDatacenter && ref.Datacenter != "" {
		if _, err := mustExist(t, "/"+ref.Datacenter, "datacenter"); err != nil {
			return err
		}
	}
	switch o.Kind {
	case api.KindCluster:
		var spec api.ClusterSpec
		_ = o.DecodeSpec(&spec)
		cidr, err := podCIDR(t, o.Path, spec.PodCIDR)
		if err != nil {
			return err
		}
		spec.PodCIDR = cidr
		o.SetSpec(spec)
	case api.KindResourcePool:
		if _, err := mustExist(t, ref.ParentPool(), "parent pool"); err != nil {
			return err
		}
		var spec api.PoolSpec
		_ = o.DecodeSpec(&spec)
		tree, err := s.poolTree(ref.ClusterPath())
		if err != nil {
			return err
		}
		return tree.AdmitPool(o.Path, ref.ParentPool(), pools.Allocation(spec.CPU), pools.Allocation(spec.Mem))
	case api.KindVirtualMachine:
		var spec api.VMSpec
		_ = o.DecodeSpec(&spec)
		if _, err := mustExist(t, spec.Pool, "resource pool"); err != nil {
			return err
		}
		if spec.Host != "" {
			if _, err := mustExist(t, spec.Host, "host"); err != nil {
				return err
			}
		}
		return s.checkQuota(spec.Pool, quota.Usage{VMs: 1})
	}
	return nil
}

// podCIDR checks a cluster's pod CIDR against every other cluster's (VM
// addresses must be unique across the inventory, or routes and guest
// traffic go astray), or, when none is given, picks the first free /16 of
// 10.244.0.0 to 10.255.0.0.
func podCIDR(t *txn, cluster, want string) (string, error) {
	var taken []*net.IPNet
	names := map[*net.IPNet]string{}
	for _, c := range t.List(store.Query{Kind: api.KindCluster}) {
		if c.Path == cluster {
			continue
		}
		var cs api.ClusterSpec
		_ = c.DecodeSpec(&cs)
		if _, n, err := net.ParseCIDR(cs.PodCIDR); err == nil {
			taken = append(taken, n)
			names[n] = c.Path
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
		_, n, _ := net.ParseCIDR(want) // validated
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

// checkQuota checks a request against the quota of pool and of every
// ancestor. It reads the index, never the store: it runs inside store
// transactions, where calling the store would deadlock.
func (s *Server) checkQuota(pool string, req quota.Usage) error {
	return quota.Check(s.ix.quotaLevels(pool), req)
}

// checkQuotaChange checks a VM's change against quotas. Pools that hold the
// VM both before and after (common ancestors) see only its growth; pools it
// enters see all of it: one more VM and, if it runs, its whole footprint.
func (s *Server) checkQuotaChange(oldSpec, spec api.VMSpec, on bool) error {
	oc, om := footprint(oldSpec)
	nc, nm := footprint(spec)
	if !on {
		oc, om, nc, nm = 0, 0, 0, 0
	}
	kept := map[string]bool{}
	for p := oldSpec.Pool; p != ""; p = api.Parent(p) {
		kept[p] = true
	}
	var shared, entered []quota.Level
	for _, l := range s.ix.quotaLevels(spec.Pool) {
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

// poolTree builds the cluster's pool tree with its current reservations.
func (s *Server) poolTree(clusterPath string) (*pools.Tree, error) {
	v := s.ix.cluster(clusterPath, false)
	return treeOf(v)
}

func treeOf(v clusterView) (*pools.Tree, error) {
	list := make([]pools.Pool, 0, len(v.pools))
	root := v.path + "/" + api.RootPoolName
	for p, e := range v.pools {
		parent := ""
		if p != root {
			parent = api.Parent(p)
		}
		list = append(list, pools.Pool{Path: p, Parent: parent, CPU: pools.Allocation(e.spec.CPU), Mem: pools.Allocation(e.spec.Mem),
			VMCPUReservation: e.onCPURes, VMMemReservation: e.onMemRes})
	}
	cpu, mem := v.capacity()
	return pools.NewTree(root, cpu, mem, list)
}

// powerOn admits and places a powered-off VM inside t: quota totals, the
// pool tree's reservations, then DRS initial placement. It writes the VM
// with its host and an event saying where it went and why.
func (s *Server) powerOn(t *txn, vm *api.Object, spec api.VMSpec) (*api.Object, error) {
	pref, _ := api.ParsePath(spec.Pool)
	cpuFoot, memFoot := footprint(spec)
	if err := s.checkQuota(spec.Pool, quota.Usage{CPUMHz: cpuFoot, MemMB: memFoot}); err != nil {
		return nil, fmt.Errorf("cannot power on %s: %w", vm.Path, err)
	}
	view := s.ix.cluster(pref.ClusterPath(), true)
	tree, err := treeOf(view)
	if err != nil {
		return nil, err
	}
	if err := tree.AdmitVM(spec.Pool, spec.CPU.Reservation, spec.Mem.Reservation); err != nil {
		return nil, fmt.Errorf("cannot power on %s: %w", vm.Path, err)
	}
	st := &placement.State{Running: view.running}
	for _, r := range view.spec.Rules {
		st.Rules = append(st.Rules, toPlacementRule(r))
	}
	if spec.Pinned {
		if _, ok := view.hosts[spec.Host]; !ok {
			return nil, fmt.Errorf("cannot power on %s: it is pinned to host %s, which is not in cluster %s: %w", vm.Path, spec.Host, view.path, api.ErrInsufficientResources)
		}
	}
	for _, hp := range view.sortedHosts() {
		if spec.Pinned && hp != spec.Host {
			continue // pinned with -host: only that host may run it
		}
		h := view.hosts[hp]
		st.Hosts = append(st.Hosts, placement.Host{
			Name:        api.Base(hp),
			Connected:   h.status.State == api.HostConnected || h.status.State == api.HostMaintenance,
			Maintenance: h.spec.Maintenance,
			CPUCapacity: h.status.CPUCapacity, MemCapacity: h.status.MemCapacity,
			CPUReserved: h.cpuRes, MemReserved: h.memRes, VMs: h.running,
		})
	}
	d, err := placement.Place(st, placement.VM{Name: vm.Name(), CPUReservation: spec.CPU.Reservation,
		MemReservation: spec.Mem.Reservation, NumCPU: spec.NumCPU, MemoryMB: spec.MemoryMB})
	if err != nil {
		return nil, err
	}
	pinned := spec.Pinned
	spec.Host = view.path + "/" + d.Host
	spec.PowerState = api.PoweredOn
	vm.SetSpec(spec)
	out, err := t.Update(vm)
	if err != nil {
		return nil, err
	}
	if pinned {
		err = t.event("info", "VmPoweredOnEvent", vm.Path, "%s powered on on its pinned host %s", vm.Name(), d.Host)
	} else {
		err = t.event("info", "DrsVmPoweredOnEvent", vm.Path, "DRS placed %s on %s (%s)", vm.Name(), d.Host, chosenWhy(d))
	}
	return out, err
}

func chosenWhy(d placement.Decision) string {
	for _, v := range d.Verdicts {
		if v.Host == d.Host {
			return fmt.Sprintf("score %.3f of %d candidate hosts", v.Score, len(d.Verdicts))
		}
	}
	return "chosen"
}

// power runs vm.power.
func (s *Server) power(user, path, action string) (*api.Object, error) {
	started := s.now()
	taskName := map[string]string{"on": "PowerOnVM_Task", "off": "PowerOffVM_Task", "shutdown": "ShutdownGuest",
		"reset": "ResetVM_Task", "reboot": "RebootGuest", "suspend": "SuspendVM_Task"}[action]
	if taskName == "" {
		return nil, fmt.Errorf("power action %q: want on, off, shutdown, reset, reboot or suspend: %w", action, api.ErrInvalid)
	}
	if ref, err := api.ParsePath(path); err != nil {
		return nil, err
	} else if ref.Kind != api.KindVirtualMachine {
		return nil, fmt.Errorf("%s is a %s, not a VM: %w", path, ref.Kind, api.ErrInvalid)
	}
	var out *api.Object
	err := s.update(user, func(t *txn) error {
		vm, err := t.Get(path)
		if err != nil {
			return err
		}
		var spec api.VMSpec
		if err := vm.DecodeSpec(&spec); err != nil {
			return err
		}
		switch action {
		case "on":
			if spec.PowerState == api.PoweredOn {
				out = vm
				return nil // already on: like vSphere, nothing to do
			}
			if out, err = s.powerOn(t, vm, spec); err != nil {
				return err
			}
		case "off", "shutdown", "suspend":
			target := api.PoweredOff
			if action == "suspend" {
				target = api.Suspended
			}
			if spec.PowerState == target {
				out = vm
				return nil
			}
			spec.PowerState = target
			vm.SetSpec(spec)
			if out, err = t.Update(vm); err != nil {
				return err
			}
			typ := map[string]string{api.PoweredOff: "VmPoweredOffEvent", api.Suspended: "VmSuspendedEvent"}[target]
			if err := t.event("info", typ, path, "%s is %s", vm.Name(), map[string]string{api.PoweredOff: "powered off", api.Suspended: "suspended"}[target]); err != nil {
				return err
			}
		case "reset", "reboot":
			if spec.PowerState != api.PoweredOn {
				return fmt.Errorf("%s is %s: only a powered-on VM can be reset: %w", path, spec.PowerState, api.ErrConflict)
			}
			spec.ResetGeneration++
			vm.SetSpec(spec)
			if out, err = t.Update(vm); err != nil {
				return err
			}
			if err := t.event("info", "VmResettingEvent", path, "%s is being reset", vm.Name()); err != nil {
				return err
			}
		}
		return t.task(taskName, path, started, nil)
	})
	if err != nil {
		if refusal(err) {
			return nil, s.refuse(user, taskName, path, "VmFailedToPowerOnEvent", started, err)
		}
		return nil, err
	}
	return out, nil
}

// change validates and applies an update of labels and spec.
func (s *Server) change(user string, o *api.Object) (*api.Object, error) {
	started := s.now()
	o.Status = nil
	ref, err := validateObject(o)
	if err != nil {
		return nil, err
	}
	var out *api.Object
	err = s.update(user, func(t *txn) error {
		cur, err := t.Get(o.Path)
		if err != nil {
			return err
		}
		if o.ResourceVersion != cur.ResourceVersion {
			return fmt.Errorf("%s has been modified (resourceVersion %d, you sent %d): re-read and try again: %w", o.Path, cur.ResourceVersion, o.ResourceVersion, api.ErrConflict)
		}
		o.Status = cur.Status
		extra, err := s.admitChange(t, ref, cur, o)
		if err != nil {
			return err
		}
		if out, err = t.Update(o); err != nil {
			return err
		}
		if err := t.event("info", eventNames[o.Kind][1], o.Path, "%s %s reconfigured%s", kindWord(o.Kind), o.Path, extra); err != nil {
			return err
		}
		if o.Kind == api.KindVirtualMachine {
			var oldSpec, spec api.VMSpec
			_ = cur.DecodeSpec(&oldSpec)
			_ = out.DecodeSpec(&spec)
			if oldSpec.PowerState != api.PoweredOn && spec.PowerState == api.PoweredOn {
				if out, err = s.powerOn(t, out, spec); err != nil {
					return err
				}
			}
		}
		return t.task(taskNames[o.Kind][1], o.Path, started, nil)
	})
	if err != nil {
		if refusal(err) {
			return nil, s.refuse(user, taskNames[o.Kind][1], o.Path, "AdmissionRefusedEvent", started, err)
		}
		return nil, err
	}
	return out, nil
}

// admitChange checks a change against the current object; extra is added
// to the event message.
func (s *Server) admitChange(t *txn, ref api.Ref, cur, o *api.Object) (string, error) {
	switch o.Kind {
	case api.KindCluster:
		var oldSpec, spec api.ClusterSpec
		_ = cur.DecodeSpec(&oldSpec)
		_ = o.DecodeSpec(&spec)
		if spec.PodCIDR == "" || spec.PodCIDR == oldSpec.PodCIDR {
			spec.PodCIDR = oldSpec.PodCIDR
			o.SetSpec(spec)
			return "", nil
		}
		if hosts := t.List(store.Query{Kind: api.KindHost, Prefix: o.Path}); len(hosts) > 0 {
			return "", fmt.Errorf("spec.podCIDR of %s cannot change while its %d hosts hold pod subnets of %s: %w", o.Path, len(hosts), oldSpec.PodCIDR, api.ErrConflict)
		}
		if _, err := podCIDR(t, o.Path, spec.PodCIDR); err != nil {
			return "", err
		}
	case api.KindResourcePool:
		var oldSpec, spec api.PoolSpec
		_ = cur.DecodeSpec(&oldSpec)
		_ = o.DecodeSpec(&spec)
		if len(ref.Pools) == 0 {
			if spec.CPU != oldSpec.CPU || spec.Mem != oldSpec.Mem {
				return "", fmt.Errorf("%s is the cluster's root pool: its reservation and limit are the cluster's capacity and cannot be set (a quota can): %w", o.Path, api.ErrInvalid)
			}
			return "", nil
		}
		tree, err := s.poolTree(ref.ClusterPath())
		if err != nil {
			return "", err
		}
		return "", tree.AdmitPool(o.Path, ref.ParentPool(), pools.Allocation(spec.CPU), pools.Allocation(spec.Mem))
	case api.KindHost:
		var oldSpec, spec api.HostSpec
		_ = cur.DecodeSpec(&oldSpec)
		_ = o.DecodeSpec(&spec)
		if oldSpec.Maintenance == spec.Maintenance {
			return "", nil
		}
		var st api.HostStatus
		_ = cur.DecodeStatus(&st)
		if spec.Maintenance && st.State == api.HostConnected {
			st.State = api.HostMaintenance
		} else if !spec.Maintenance && st.State == api.HostMaintenance {
			st.State = api.HostConnected
		}
		o.SetStatus(st)
		if spec.Maintenance {
			return ": entered maintenance mode (no new VMs are placed on it)", nil
		}
		return ": exited maintenance mode", nil
	case api.KindVirtualMachine:
		var oldSpec, spec api.VMSpec
		_ = cur.DecodeSpec(&oldSpec)
		_ = o.DecodeSpec(&spec)
		if oldSpec.PowerState == api.PoweredOn && spec.PowerState != api.PoweredOn {
			return "", fmt.Errorf("%s: change the power state with vm.power, not by editing spec.powerState: %w", o.Path, api.ErrInvalid)
		}
		if spec.Host != oldSpec.Host && oldSpec.PowerState == api.PoweredOn {
			return "", fmt.Errorf("%s is powered on on %s: moving it needs vm.migrate: %w", o.Path, oldSpec.Host, api.ErrInvalid)
		}
		if spec.Pool != oldSpec.Pool {
			if _, err := mustExist(t, spec.Pool, "resource pool"); err != nil {
				return "", err
			}
		}
		on := oldSpec.PowerState == api.PoweredOn
		if err := s.checkQuotaChange(oldSpec, spec, on); err != nil {
			return "", err
		}
		if !on {
			return "", nil
		}
		// A running VM's reservation may change, or move to another pool, only
		// if the pool tree and its host can cover it. The tree is built without
		// the VM's current reservation, then asked for the new one in full, so
		// a move is never counted twice.
		pref, _ := api.ParsePath(spec.Pool)
		view := s.ix.cluster(pref.ClusterPath(), false)
		if e, ok := view.pools[oldSpec.Pool]; ok {
			e.onCPURes -= oldSpec.CPU.Reservation
			e.onMemRes -= oldSpec.Mem.Reservation
			view.pools[oldSpec.Pool] = e
		}
		tree, err := treeOf(view)
		if err != nil {
			return "", err
		}
		if err := tree.AdmitVM(spec.Pool, spec.CPU.Reservation, spec.Mem.Reservation); err != nil {
			return "", err
		}
		dCPU := max(spec.CPU.Reservation-oldSpec.CPU.Reservation, 0)
		dMem := max(spec.Mem.Reservation-oldSpec.Mem.Reservation, 0)
		if h, ok := view.hosts[oldSpec.Host]; ok {
			if free := h.status.CPUCapacity - h.cpuRes; dCPU > free {
				return "", fmt.Errorf("host %s has %d MHz unreserved CPU, the new reservation needs %d MHz more: %w", api.Base(oldSpec.Host), free, dCPU, api.ErrInsufficientResources)
			}
			if free := h.status.MemCapacity - h.memRes; dMem > free {
				return "", fmt.Errorf("host %s has %d MB unreserved memory, the new reservation needs %d MB more: %w", api.Base(oldSpec.Host), free, dMem, api.ErrInsufficientResources)
			}
		}
	}
	return "", nil
}

// remove deletes an object after checking what depends on it.
func (s *Server) remove(user, path string, rv uint64, children bool) error {
	started := s.now()
	ref, err := api.ParsePath(path)
	if err != nil {
		return err
	}
	switch ref.Kind {
	case api.KindEvent, api.KindTask:
		return fmt.Errorf("%s objects are kept by vcenter and trimmed by age: %w", ref.Kind, api.ErrInvalid)
	}
	var archive string // a deleted library item's file, removed once the deletion is durable
	if ref.Kind == api.KindImage {
		s.libMu.Lock()
		defer s.libMu.Unlock()
	}
	err = s.update(user, func(t *txn) error {
		cur, err := t.Get(path)
		if err != nil {
			return err
		}
		if rv != 0 && rv != cur.ResourceVersion {
			return fmt.Errorf("%s has been modified (resourceVersion %d, you sent %d): %w", path, cur.ResourceVersion, rv, api.ErrConflict)
		}
		switch ref.Kind {
		case api.KindDatacenter:
			if n := len(t.List(store.Query{Prefix: path})); n > 1 {
				return fmt.Errorf("datacenter %s still holds %d objects: remove them first: %w", path, n-1, api.ErrConflict)
			}
		case api.KindCluster:
			root := path + "/" + api.RootPoolName
			for _, o := range t.List(store.Query{Prefix: path}) {
				if o.Path != path && o.Path != root {
					return fmt.Errorf("cluster %s still holds %s: remove it first: %w", path, o.Path, api.ErrConflict)
				}
			}
			dc := "/" + ref.Datacenter + "/vm/"
			for _, o := range t.List(store.Query{Kind: api.KindVirtualMachine, Prefix: "/" + ref.Datacenter + "/vm"}) {
				var spec api.VMSpec
				_ = o.DecodeSpec(&spec)
				if spec.Pool == root {
					return fmt.Errorf("cluster %s still has VM %s in its root pool: %w", path, strings.TrimPrefix(o.Path, dc), api.ErrConflict)
				}
			}
			if err := t.Delete(root, 0); err != nil {
				return err
			}
		case api.KindResourcePool:
			if len(ref.Pools) == 0 {
				return fmt.Errorf("%s is the cluster's root pool: it goes with the cluster: %w", path, api.ErrInvalid)
			}
			if err := s.destroyPool(t, path, children); err != nil {
				return err
			}
		case api.KindImage:
			var spec api.ImageSpec
			_ = cur.DecodeSpec(&spec)
			archive = s.libraryFile(ref.Name, spec.Digest)
		case api.KindHost:
			var spec api.HostSpec
			_ = cur.DecodeSpec(&spec)
			for _, o := range t.List(store.Query{Kind: api.KindVirtualMachine, Filter: onHost(path)}) {
				var vs api.VMSpec
				_ = o.DecodeSpec(&vs)
				if vs.PowerState == api.PoweredOn {
					return fmt.Errorf("host %s still runs %s: enter maintenance mode and move or power off its VMs first: %w", path, o.Path, api.ErrConflict)
				}
			}
		}
		if err := t.Delete(path, 0); err != nil {
			return err
		}
		if err := t.event("info", eventNames[ref.Kind][2], path, "%s %s removed", kindWord(ref.Kind), path); err != nil {
			return err
		}
		return t.task(taskNames[ref.Kind][2], path, started, nil)
	})
	if err == nil && archive != "" {
		os.Remove(archive)
	}
	return err
}

// destroyPool removes a pool's descendants (with -children) and moves the
// VMs of every removed pool up to the destroyed pool's parent, as vSphere does.
func (s *Server) destroyPool(t *txn, path string, children bool) error {
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
		if err := t.event("info", "VmResourcePoolMovedEvent", o.Path, "%s moved to %s because its pool was destroyed", o.Name(), parent); err != nil {
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

// setStatus applies a status report (host agents) without touching spec.
func (s *Server) setStatus(user string, o *api.Object) (*api.Object, error) {
	if _, err := api.ParsePath(o.Path); err != nil {
		return nil, err
	}
	var out *api.Object
	err := s.update(user, func(t *txn) error {
		cur, err := t.Get(o.Path)
		if err != nil {
			return err
		}
		if o.ResourceVersion != 0 && o.ResourceVersion != cur.ResourceVersion {
			return fmt.Errorf("%s has been modified (resourceVersion %d, you sent %d): %w", o.Path, cur.ResourceVersion, o.ResourceVersion, api.ErrConflict)
		}
		switch cur.Kind {
		case api.KindVirtualMachine:
			var st, old api.VMStatus
			if err := decodeStrict(o.Status, &st, "status"); err != nil {
				return err
			}
			_ = cur.DecodeStatus(&old)
			cur.SetStatus(st)
			if out, err = t.Update(cur); err != nil {
				return err
			}
			if st.PowerState != old.PowerState && st.PowerState != "" {
				if err := t.event("info", "VmStateChangedEvent", o.Path, "%s is %s on %s%s", cur.Name(), st.PowerState, api.Base(st.Host), withMessage(st.Message)); err != nil {
					return err
				}
			}
			if st.Restarts > old.Restarts {
				return t.event("warning", "VmRestartedEvent", o.Path, "containers of %s were restarted on %s (restart count %d)%s", cur.Name(), api.Base(st.Host), st.Restarts, withMessage(st.Message))
			}
			return nil
		case api.KindHost:
			var st api.HostStatus
			if err := decodeStrict(o.Status, &st, "status"); err != nil {
				return err
			}
			var old api.HostStatus
			_ = cur.DecodeStatus(&old)
			// Connection state is vcenter's to decide from gossip; a host reports only its figures.
			st.State, st.LastSeen, st.Joined, st.PodSubnet = old.State, old.LastSeen, old.Joined, old.PodSubnet
			cur.SetStatus(st)
			out, err = t.Update(cur)
			return err
		}
		return fmt.Errorf("%s objects have no status that clients report: %w", cur.Kind, api.ErrInvalid)
	})
	return out, err
}

func withMessage(m string) string {
	if m == "" {
		return ""
	}
	return ": " + m
}

// getPool reads the resource pool at path, refusing a path of another kind.
func (s *Server) getPool(path string) (api.Ref, *api.Object, error) {
	ref, err := api.ParsePath(path)
	if err != nil {
		return ref, nil, err
	}
	if ref.Kind != api.KindResourcePool {
		return ref, nil, fmt.Errorf("%s is a %s, not a resource pool: %w", path, ref.Kind, api.ErrInvalid)
	}
	o, err := s.store.Get(path)
	return ref, o, err
}

// poolInfo answers pool.info.
func (s *Server) poolInfo(path string) (*api.PoolInfo, error) {
	ref, o, err := s.getPool(path)
	if err != nil {
		return nil, err
	}
	tree, err := s.poolTree(ref.ClusterPath())
	if err != nil {
		return nil, err
	}
	info := &api.PoolInfo{Pool: o}
	info.CPU.OverallUsage, info.Mem.OverallUsage = s.ix.subtreeOverall(path)
	for _, r := range []struct {
		res pools.Resource
		out *api.PoolUsage
	}{{pools.CPU, &info.CPU}, {pools.Memory, &info.Mem}} {
		u, err := tree.Usage(path, r.res)
		if err != nil {
			return nil, err
		}
		overall := r.out.OverallUsage
		*r.out = api.PoolUsage{OverallUsage: overall, Reservation: u.Reservation, Limit: u.Limit, Expandable: u.Expandable, Shares: u.Shares,
			ReservationUsed: u.ReservationUsed, ReservationUsedForVm: u.ReservationUsedForVm,
			UnreservedForPool: u.UnreservedForPool, UnreservedForVm: u.UnreservedForVm, MaxUsage: u.MaxUsage}
	}
	return info, nil
}

// quotaInfo answers quota.info.
func (s *Server) quotaInfo(path string) (*api.QuotaInfo, error) {
	_, o, err := s.getPool(path)
	if err != nil {
		return nil, err
	}
	var spec api.PoolSpec
	_ = o.DecodeSpec(&spec)
	info := &api.QuotaInfo{Path: path, Limits: api.QuotaLimits(quota.Unlimited()), Used: s.ix.subtreeUse(path)}
	if spec.Quota != nil {
		info.Limits = *spec.Quota
	}
	return info, nil
}
