package inventory

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/vcenter/admission"
	"github.com/podsphere/podsphere/vcenter/store"
)

// HAPlan shows what HA would do if the hosts named in fail (names or
// paths) failed now: the planner runs over the inventory as it is, round
// after round as if every restarted VM became ready at once, and nothing
// is written.
func (inv *Inventory) HAPlan(cluster string, fail []string) (*api.HAPlan, error) {
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
	var cs api.ClusterSpec
	_ = c.DecodeSpec(&cs)
	if !cs.HA.Enabled {
		return nil, fmt.Errorf("HA is not enabled on cluster %s (psc cluster.change -ha-enabled %s): %w", cluster, api.Base(cluster), api.ErrConflict)
	}
	if len(fail) == 0 {
		return nil, fmt.Errorf("name the hosts to fail: %w", api.ErrInvalid)
	}
	now := inv.now()
	long := now.Add(-time.Hour) // failed long enough ago for every timer to have run
	hosts := map[string]*ha.Host{}
	var st ha.State
	st.Now = now
	st.Config = ha.Config{Enabled: true, DefaultPriority: cs.HA.DefaultRestartPriority, Timings: ha.DefaultTimings()}
	for _, r := range cs.Rules {
		if r.Kind != RuleDepends {
			st.Rules = append(st.Rules, admission.PlacementRule(r))
		}
	}
	st.Dependencies = Dependencies(cs)
	groups := VMGroupsOf(cs)
	for _, h := range inv.store.List(store.Query{Kind: api.KindHost, Prefix: cluster}).Items {
		var hs api.HostSpec
		var hst api.HostStatus
		_ = h.DecodeSpec(&hs)
		_ = h.DecodeStatus(&hst)
		hosts[h.Name()] = &ha.Host{Name: h.Name(), Gossip: hst.State != api.HostNotResponding, SilentSince: long,
			Maintenance: hs.Maintenance, CPUCapacity: hst.CPUCapacity, MemCapacity: hst.MemCapacity}
	}
	plan := &api.HAPlan{Cluster: cluster}
	for _, f := range fail {
		name := api.Base(strings.TrimSpace(f))
		h, ok := hosts[name]
		if !ok {
			return nil, fmt.Errorf("host %s is not in cluster %s: %w", name, cluster, api.ErrNotFound)
		}
		h.Gossip = false
		plan.Failed = append(plan.Failed, name)
	}
	paths := map[string]string{} // VM name -> path, for the answer
	for _, o := range inv.store.List(store.Query{Kind: api.KindVirtualMachine, Prefix: "/" + ref.Datacenter + "/vm"}).Items {
		var s api.VMSpec
		var vst api.VMStatus
		_ = o.DecodeSpec(&s)
		_ = o.DecodeStatus(&vst)
		hr, err := api.ParsePath(s.Host)
		if err != nil || hr.ClusterPath() != cluster {
			continue
		}
		on := s.PowerState == api.PoweredOn && !s.Removing
		prio := s.HA.RestartPriority
		if h := hosts[hr.Name]; on && orDefault(prio, cs.HA.DefaultRestartPriority) == "disabled" && h != nil && !h.Gossip {
			plan.Unprotected = append(plan.Unprotected, o.Path)
		}
		// VM names must be unique for the planner; a VM of a namespace goes by NS/NAME.
		name := o.Name()
		if vr, _ := api.ParsePath(o.Path); vr.Namespace != "" {
			name = vr.Namespace + "/" + name
		}
		paths[name] = o.Path
		st.VMs = append(st.VMs, ha.VM{Name: name, Host: hr.Name, Priority: prio, On: on, Groups: groups[name],
			Running: true, Ready: true, CPUReservation: s.CPU.Reservation, MemReservation: s.Mem.Reservation,
			NumCPU: s.NumCPU, MemoryMB: s.MemoryMB})
	}
	for _, h := range hosts {
		st.Hosts = append(st.Hosts, *h)
	}
	// Rounds: each restarted VM is ready at once; one that fits nowhere is
	// not tried again (the preview shows the first reason).
	done := map[string]bool{}
	for round := 1; round <= len(ha.Priorities)*4+len(st.VMs); round++ {
		p := ha.Decide(st)
		moved := 0
		for _, r := range p.Restarts {
			i := vmIndex(st.VMs, r.VM)
			if r.Host == "" {
				plan.NotRestarted = append(plan.NotRestarted, api.HAPlanWait{VM: paths[r.VM], Reason: r.Reason})
				st.VMs[i].On = false // out of the preview
				done[r.VM] = true
				continue
			}
			plan.Steps = append(plan.Steps, api.HAPlanStep{Round: round, VM: paths[r.VM], Priority: r.Priority, From: st.VMs[i].Host, To: r.Host})
			st.VMs[i].Host, st.VMs[i].RestartedAt = r.Host, now
			done[r.VM] = true
			moved++
		}
		if moved == 0 {
			for _, w := range p.Waiting {
				if !done[w.VM] {
					plan.NotRestarted = append(plan.NotRestarted, api.HAPlanWait{VM: paths[w.VM], Reason: w.Reason})
				}
			}
			break
		}
	}
	sort.Strings(plan.Unprotected)
	return plan, nil
}

func vmIndex(vms []ha.VM, name string) int {
	for i := range vms {
		if vms[i].Name == name {
			return i
		}
	}
	return -1
}
