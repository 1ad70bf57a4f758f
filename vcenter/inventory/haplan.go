package inventory

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
)

// HAPlan shows what HA would do if the hosts named in fail (names or
// paths) failed now: the planner runs over the inventory as it is, round
// after round as if every restarted VM became ready at once, and nothing
// is written.
func (inv *Inventory) HAPlan(cluster string, fail []string) (*api.HAPlan, error) {
	snap, err := inv.HASnapshot(cluster, ha.Timings{})
	if err != nil {
		return nil, err
	}
	if !snap.Spec.HA.Enabled {
		return nil, fmt.Errorf("HA is not enabled on cluster %s (psc cluster.change -ha-enabled %s): %w", cluster, api.Base(cluster), api.ErrConflict)
	}
	if len(fail) == 0 {
		return nil, fmt.Errorf("name the hosts to fail: %w", api.ErrInvalid)
	}
	st := snap.State
	now := st.Now
	long := now.Add(-time.Hour) // failed long enough ago for every timer to have run
	hosts := map[string]*ha.Host{}
	for i := range st.Hosts {
		h := &st.Hosts[i]
		h.SilentSince = long
		hosts[h.Name] = h
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
	paths := snap.VMPaths
	failed := map[string]bool{}
	for _, f := range plan.Failed {
		failed[f] = true
	}
	for i := range st.VMs {
		v := &st.VMs[i]
		// The preview starts from a cluster at rest: every VM runs and is
		// ready, and HA has made no attempt yet.
		v.Running, v.Ready, v.Attempts, v.LastAttempt, v.LastError, v.RestartedAt = true, true, 0, time.Time{}, "", time.Time{}
	}
	for _, v := range st.VMs {
		if v.On && v.Priority == "disabled" && failed[v.Host] {
			plan.Unprotected = append(plan.Unprotected, paths[v.Name])
		}
	}
	snap.State = st
	for _, name := range snap.DropPinned(func(h string) bool { return failed[h] }) {
		plan.NotRestarted = append(plan.NotRestarted, api.HAPlanWait{VM: paths[name],
			Reason: "it is pinned to its host (vm.create -host, or a DaemonSet's member): it runs only there"})
	}
	st = snap.State
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
