package inventory

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/store"
)

// Join registers (or re-registers) a host that presented the join token.
func (inv *Inventory) Join(req api.JoinRequest) (*api.JoinReply, error) {
	cref, err := api.ParsePath(req.Cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if cref.Kind != api.KindCluster {
		return nil, fmt.Errorf("cluster %q is a %s path, want /DC/host/CLUSTER: %w", req.Cluster, cref.Kind, api.ErrInvalid)
	}
	if err := api.ValidName(req.Name); err != nil {
		return nil, fmt.Errorf("host name: %w", err)
	}
	if req.Name == api.RootPoolName {
		return nil, fmt.Errorf("host name %q is reserved for the cluster's root pool: %w", req.Name, api.ErrInvalid)
	}
	if req.CPUCapacity <= 0 || req.MemCapacity <= 0 {
		return nil, fmt.Errorf("host capacity must be positive (cpu %d MHz, memory %d MB): %w", req.CPUCapacity, req.MemCapacity, api.ErrInvalid)
	}
	path := req.Cluster + "/" + req.Name
	now := inv.now()
	var out *api.Object
	err = inv.Update("host:"+req.Name, func(t *Txn) error {
		cobj, err := t.Get(req.Cluster)
		if err != nil {
			if isNotFound(err) {
				return fmt.Errorf("cluster %s does not exist: create it with psc cluster.create first: %w", req.Cluster, api.ErrNotFound)
			}
			return err
		}
		var cspec api.ClusterSpec
		_ = cobj.DecodeSpec(&cspec)
		cur, err := t.Get(path)
		if err != nil && !isNotFound(err) {
			return err
		}
		var spec api.HostSpec
		var st api.HostStatus
		if cur != nil {
			_ = cur.DecodeSpec(&spec)
			_ = cur.DecodeStatus(&st)
		}
		st.Address, st.Runtime, st.AgentAddress = req.Address, req.Runtime, req.AgentAddress
		st.CPUCapacity, st.MemCapacity = req.CPUCapacity, req.MemCapacity
		st.State = api.HostConnected
		if inMaintenance(spec, st) {
			st.State = api.HostMaintenance
		}
		st.LastSeen, st.Joined = now, now
		if st.PodSubnet == "" {
			if st.PodSubnet, err = allocSubnet(t, cspec.PodCIDR, req.Cluster); err != nil {
				return err
			}
		}
		if cur == nil {
			o := api.New(api.KindHost, path, spec)
			o.SetStatus(st)
			if out, err = t.Create(o); err != nil {
				return err
			}
			return t.Event("info", "HostAddedEvent", path, "Host %s joined cluster %s (%d MHz, %d MB, %s runtime, pod subnet %s)", req.Name, req.Cluster, req.CPUCapacity, req.MemCapacity, req.Runtime, st.PodSubnet)
		}
		cur.SetStatus(st)
		if out, err = t.Update(cur); err != nil {
			return err
		}
		return t.Event("info", "HostConnectedEvent", path, "Host %s rejoined cluster %s", req.Name, req.Cluster)
	})
	if err != nil {
		return nil, err
	}
	reply := &api.JoinReply{Host: out, Joined: now}
	var st api.HostStatus
	_ = out.DecodeStatus(&st)
	reply.PodSubnet = st.PodSubnet
	return reply, nil
}

// allocSubnet gives a host the lowest /24 of the cluster's pod CIDR that no
// other host of the cluster holds.
func allocSubnet(t *Txn, cidr, cluster string) (string, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return "", fmt.Errorf("cluster %s pod CIDR %q: %v: %w", cluster, cidr, err, api.ErrInvalid)
	}
	used := map[string]bool{}
	for _, h := range t.List(store.Query{Kind: api.KindHost, Prefix: cluster}) {
		var st api.HostStatus
		_ = h.DecodeStatus(&st)
		used[st.PodSubnet] = true
	}
	ones, _ := n.Mask.Size()
	base := binary.BigEndian.Uint32(n.IP.To4())
	for i := uint32(0); i < 1<<(24-ones); i++ {
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, base+i<<8)
		sub := (&net.IPNet{IP: ip, Mask: net.CIDRMask(24, 32)}).String()
		if !used[sub] {
			return sub, nil
		}
	}
	return "", fmt.Errorf("cluster %s pod CIDR %s has no free /24 left for another host: %w", cluster, cidr, api.ErrInsufficientResources)
}

// SetConnection records a connection-state transition (gossip saw the
// host come back or fail) with an event.
func (inv *Inventory) SetConnection(path string, alive bool) {
	ref, err := api.ParsePath(path)
	if err != nil || ref.Kind != api.KindHost {
		return // not a host of ours (vcenter itself, or a foreign node)
	}
	err = inv.Update("vcenter", func(t *Txn) error {
		cur, err := t.Get(path)
		if err != nil {
			if isNotFound(err) {
				return nil // gossip can arrive before the join request
			}
			return err
		}
		var spec api.HostSpec
		var st api.HostStatus
		_ = cur.DecodeSpec(&spec)
		_ = cur.DecodeStatus(&st)
		want := api.HostNotResponding
		if alive {
			want = api.HostConnected
			if inMaintenance(spec, st) {
				want = api.HostMaintenance
			}
			st.LastSeen = inv.now()
		}
		if st.State == want {
			return nil
		}
		old := st.State
		st.State = want
		cur.SetStatus(st)
		if _, err := t.Update(cur); err != nil {
			return err
		}
		if alive {
			return t.Event("info", "HostConnectedEvent", path, "Host %s is %s again (was %s)", api.Base(path), want, old)
		}
		return t.Event("error", "HostNotRespondingEvent", path, "Host %s is not responding: it stopped gossiping (last seen %s)", api.Base(path), st.LastSeen.Format(time.RFC3339))
	})
	if err != nil {
		inv.log.Printf("recording connection state of %s: %v", path, err)
	}
}

// RecordLastSeen stamps lastSeen on every host gossip says is alive, in
// one transaction and without events: it is a heartbeat, not a change. It
// returns the hosts the inventory does not call notResponding that gossip
// did not report alive.
func (inv *Inventory) RecordLastSeen(alive map[string]bool) (stale []string, err error) {
	now := inv.now()
	err = inv.Update("vcenter", func(t *Txn) error {
		for _, h := range t.List(store.Query{Kind: api.KindHost}) {
			var st api.HostStatus
			_ = h.DecodeStatus(&st)
			if !alive[h.Path] {
				if st.State != api.HostNotResponding {
					stale = append(stale, h.Path)
				}
				continue
			}
			st.LastSeen = now
			h.SetStatus(st)
			if _, err := t.Update(h); err != nil {
				return err
			}
		}
		return nil
	})
	return stale, err
}

// HostAddresses are the gossip addresses of every host the inventory knows.
func (inv *Inventory) HostAddresses() []string {
	var addrs []string
	for _, h := range inv.store.List(store.Query{Kind: api.KindHost}).Items {
		var st api.HostStatus
		_ = h.DecodeStatus(&st)
		if st.Address != "" {
			addrs = append(addrs, st.Address)
		}
	}
	return addrs
}

// host is a HostSystem: created by a host joining, never by the API; the
// admin owns its spec (maintenance mode), the host its reported figures,
// vcenter its connection state.
type host struct{ base }

func init() { register(api.KindHost, host{}) }

func (host) names() kindNames {
	return kindNames{word: "Host", createTask: "AddHost_Task", changeTask: "ReconfigureHost", removeTask: "Destroy_Task",
		createdEvent: "HostAddedEvent", changedEvent: "HostReconfiguredEvent", goneEvent: "HostRemovedEvent"}
}

func (host) prepare(_ api.Ref, o *api.Object) error {
	var s api.HostSpec
	if err := decodeStrict(o.Spec, &s, "spec"); err != nil {
		return err
	}
	if s.MaintenanceTimeoutSeconds < 0 {
		return fmt.Errorf("spec.maintenanceTimeoutSeconds %d is negative: want seconds, or 0 for no timeout: %w", s.MaintenanceTimeoutSeconds, api.ErrInvalid)
	}
	if !s.Maintenance && (s.EvacuatePoweredOff || s.MaintenanceTimeoutSeconds != 0) {
		return fmt.Errorf("spec.evacuatePoweredOff and spec.maintenanceTimeoutSeconds only apply with spec.maintenance: %w", api.ErrInvalid)
	}
	o.SetSpec(s)
	return nil
}

func (host) admitCreate(*Txn, api.Ref, *api.Object) error {
	return fmt.Errorf("HostSystem objects are created by hosts joining (podsphere host --join-token ...), not by the API: %w", api.ErrInvalid)
}

func (host) admitChange(t *Txn, _ api.Ref, cur, o *api.Object) (string, error) {
	var oldSpec, spec api.HostSpec
	_ = cur.DecodeSpec(&oldSpec)
	_ = o.DecodeSpec(&spec)
	if oldSpec.Maintenance == spec.Maintenance {
		return "", nil
	}
	var st api.HostStatus
	_ = cur.DecodeStatus(&st)
	extra := ": exited maintenance mode"
	if spec.Maintenance {
		extra = enterMaintenance(t, o.Path, spec, &st)
	} else {
		if st.Maintenance != nil && !st.Maintenance.Done {
			extra = fmt.Sprintf(": stopped entering maintenance mode (%d VMs had moved, %d were left); it is back in service", st.Maintenance.Moved, st.Maintenance.VMsLeft)
		}
		st.Maintenance = nil
		if st.State == api.HostMaintenance {
			st.State = api.HostConnected
		}
	}
	o.SetStatus(st)
	return extra, nil
}

func (host) admitRemove(t *Txn, _ api.Ref, cur *api.Object, _ RemoveOptions) error {
	for _, o := range t.List(store.Query{Kind: api.KindVirtualMachine, Filter: OnHost(cur.Path)}) {
		var vs api.VMSpec
		_ = o.DecodeSpec(&vs)
		if vs.PowerState == api.PoweredOn {
			return fmt.Errorf("host %s still runs %s: enter maintenance mode and move or power off its VMs first: %w", cur.Path, o.Path, api.ErrConflict)
		}
	}
	return nil
}

// report takes a host's own figures; its connection state, lastSeen, join
// time, pod subnet and maintenance progress are vcenter's and stay as they are.
func (host) report(_ *Txn, cur *api.Object, raw json.RawMessage) error {
	var st, old api.HostStatus
	if err := decodeStrict(raw, &st, "status"); err != nil {
		return err
	}
	_ = cur.DecodeStatus(&old)
	st.State, st.LastSeen, st.Joined, st.PodSubnet = old.State, old.LastSeen, old.Joined, old.PodSubnet
	st.Maintenance = old.Maintenance
	cur.SetStatus(st)
	return nil
}

// OnHost matches VMs that are placed on host h or that h still reports
// running, so a host's watch also sees a VM that moved away from it.
func OnHost(h string) func(*api.Object) bool {
	return func(o *api.Object) bool {
		if o.Kind != api.KindVirtualMachine {
			return false
		}
		spec, status := vmHosts(o)
		return spec == h || status == h
	}
}

// hostMemo holds the hosts of the VM versions vmHosts decoded last. Every
// change is offered to every host's watch in turn (the store offers one
// change to all watchers before the next), so with hundreds of hosts
// watching, each VM version is decoded once instead of once per host. A
// slot keeps the object itself: stored objects are never modified, so the
// same pointer is the same version.
var hostMemo struct {
	mu    sync.Mutex
	next  int
	slots [8]struct {
		o            *api.Object
		spec, status string
	}
}

// vmHosts is a VM's spec.host and status.host.
func vmHosts(o *api.Object) (spec, status string) {
	hostMemo.mu.Lock()
	for i := range hostMemo.slots {
		if s := &hostMemo.slots[i]; s.o == o {
			spec, status = s.spec, s.status
			hostMemo.mu.Unlock()
			return spec, status
		}
	}
	hostMemo.mu.Unlock()
	var sp, st struct {
		Host string `json:"host"`
	}
	_ = json.Unmarshal(o.Spec, &sp)
	_ = json.Unmarshal(o.Status, &st)
	hostMemo.mu.Lock()
	s := &hostMemo.slots[hostMemo.next]
	s.o, s.spec, s.status = o, sp.Host, st.Host
	hostMemo.next = (hostMemo.next + 1) % len(hostMemo.slots)
	hostMemo.mu.Unlock()
	return sp.Host, st.Host
}
