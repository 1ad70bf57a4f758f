package inventory

import (
	"fmt"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/vcenter/admission"
	"github.com/podsphere/podsphere/vcenter/store"
)

// HASnapshot is one cluster as HA sees it from the inventory: the
// planner's state with what only the inventory knows (hosts' capacity and
// connection state, VMs' specs, reports and HA records, groups, rules)
// and the names that tie the planner's answer back to inventory paths.
// What the inventory does not know (gossip now, datastore heartbeats and
// locks) its caller fills in: the HA controller from memberlist and the
// heartbeat datastores, ha.plan from the hosts it is asked to fail.
type HASnapshot struct {
	Cluster string
	Spec    api.ClusterSpec
	// State has Now, Config (Datastores false), Hosts (Gossip from the
	// inventory's connection state, SilentSince its lastSeen), VMs
	// (Running, Ready and PowerOnFailed from their hosts' reports, HA's attempts),
	// Dependencies and Rules.
	State ha.State
	// HostPaths and VMPaths map the planner's names to inventory paths;
	// UIDs the planner's VM names to the VMs' UIDs (their lock files).
	HostPaths map[string]string
	VMPaths   map[string]string
	UIDs      map[string]string
	// HostState is each host's connection state in the inventory.
	HostState map[string]string
	// Records are the VMs' HA records (nil when HA did nothing to it).
	Records map[string]*api.VMHAStatus
	// Pinned VMs run only on their host (vm.create -host, a DaemonSet's
	// members): HA never restarts them elsewhere.
	Pinned map[string]bool
}

// DropPinned takes out of the planner's VMs the pinned ones on the hosts
// down says are down (planner host names), and returns their names: HA
// leaves them where they are, and they must not hold up the VMs of lower
// priorities as candidates that never start.
func (s *HASnapshot) DropPinned(down func(host string) bool) []string {
	if len(s.Pinned) == 0 {
		return nil // nothing to drop: spare copying 50,000 VMs onto themselves
	}
	var dropped []string
	vms := s.State.VMs[:0]
	for _, v := range s.State.VMs {
		if s.Pinned[v.Name] && down(v.Host) {
			dropped = append(dropped, v.Name)
			continue
		}
		vms = append(vms, v)
	}
	s.State.VMs = vms
	return dropped
}

// HAConfig is the planner's configuration of a cluster: its HA settings
// over base timings (ha.DefaultTimings when zero).
func HAConfig(cs api.ClusterSpec, base ha.Timings) ha.Config {
	t := base
	if t.LockLease == 0 {
		t = ha.DefaultTimings()
	}
	if s := cs.HA.ReadyTimeoutSeconds; s > 0 {
		t.ReadyTimeout = time.Duration(s) * time.Second
	}
	if s := cs.HA.PostReadyDelaySeconds; s > 0 {
		t.PostReadyDelay = time.Duration(s) * time.Second
	}
	return ha.Config{Enabled: cs.HA.Enabled, DefaultPriority: cs.HA.DefaultRestartPriority,
		ReadyCondition: cs.HA.ReadyCondition, Timings: t}
}

// HASnapshot reads cluster for the HA planner, with base timings.
func (inv *Inventory) HASnapshot(cluster string, base ha.Timings) (*HASnapshot, error) {
	ref, err := api.ParsePath(cluster)
	if err != nil {
		return nil, err
	}
	if ref.Kind != api.KindCluster {
		return nil, fmt.Errorf("%s is a %s, not a cluster: %w", cluster, ref.Kind, api.ErrInvalid)
	}
	c, err := inv.store.Get(cluster)
	if err != nil {
		return nil, err
	}
	vms := inv.ix.haVMs(ref.Datacenter, cluster)
	snap := &HASnapshot{Cluster: cluster, HostPaths: map[string]string{}, VMPaths: make(map[string]string, len(vms)),
		UIDs: make(map[string]string, len(vms)), HostState: map[string]string{}, Records: map[string]*api.VMHAStatus{}, Pinned: map[string]bool{}}
	_ = c.DecodeSpec(&snap.Spec)
	cs := snap.Spec
	st := &snap.State
	st.Now = inv.now()
	st.Config = HAConfig(cs, base)
	groups := VMGroupsOf(cs) // VM name -> its VM groups
	st.Dependencies = Dependencies(cs)
	for _, r := range cs.Rules {
		if r.Kind != RuleDepends {
			st.Rules = append(st.Rules, admission.PlacementRule(r))
		}
	}
	for _, h := range inv.store.List(store.Query{Kind: api.KindHost, Prefix: cluster + "/"}).Items {
		var hs api.HostSpec
		var hst api.HostStatus
		_ = h.DecodeSpec(&hs)
		_ = h.DecodeStatus(&hst)
		snap.HostPaths[h.Name()] = h.Path
		snap.HostState[h.Name()] = hst.State
		st.Hosts = append(st.Hosts, ha.Host{Name: h.Name(), Gossip: hst.State != api.HostNotResponding, SilentSince: hst.LastSeen,
			Maintenance: hs.Maintenance, CPUCapacity: hst.CPUCapacity, MemCapacity: hst.MemCapacity})
	}
	// The VMs come from the index, decoded when they were written: a
	// pass over 50,000 VMs then copies them instead of decoding them.
	st.VMs = make([]ha.VM, 0, len(vms))
	for i := range vms {
		it := &vms[i]
		x := it
		prio := x.priority
		if prio == "" {
			prio = cs.HA.DefaultRestartPriority
		}
		name := x.name
		snap.VMPaths[name] = it.path
		snap.UIDs[name] = x.uid
		if x.pinned {
			snap.Pinned[name] = true
		}
		v := ha.VM{Name: name, Host: api.Base(it.host), Priority: prio, On: it.on && !x.removing,
			Running: x.running, Ready: x.ready, ReadySince: x.readySince,
			CPUReservation: it.cpuRes, MemReservation: it.memRes,
			NumCPU: x.numCPU, MemoryMB: x.memoryMB, Groups: groups[name], PowerOnFailed: x.powerOnFailed}
		if r := x.rec; r != nil {
			snap.Records[name] = r
			v.Attempts, v.LastAttempt, v.LastError, v.RestartedAt = r.Attempts, r.LastAttempt, r.LastError, r.RestartedAt
			if r.GaveUp {
				v.Attempts = max(v.Attempts, len(st.Config.Timings.RestartDelays))
			}
		}
		st.VMs = append(st.VMs, v)
	}
	return snap, nil
}
