package inventory

import (
	"fmt"

	"github.com/podsphere/podsphere/api"
)

// HACapacity is the cluster's failover capacity under its admission
// control policy, computed as HA admission control computes it
// (admission.Cluster.Failover, ha.FailoverCapacity), for psc cluster.info.
func (inv *Inventory) HACapacity(cluster string) (*api.HACapacity, error) {
	ref, err := api.ParsePath(cluster)
	if err != nil {
		return nil, err
	}
	if ref.Kind != api.KindCluster {
		return nil, fmt.Errorf("%s is a %s, not a cluster: %w", cluster, ref.Kind, api.ErrInvalid)
	}
	if _, err := inv.store.Get(cluster); err != nil {
		return nil, err
	}
	c := inv.ix.cluster(cluster, nil)
	h := c.Spec.HA
	// Computed even while HA or its admission control is off: the summary
	// shows what turning it on would leave.
	c.Spec.HA.Enabled, c.Spec.HA.AdmissionControlEnabled = true, true
	f, _ := c.Failover()
	out := &api.HACapacity{Cluster: cluster, HAEnabled: h.Enabled, AdmissionControlEnabled: h.AdmissionControlEnabled,
		Policy: f.Policy, HostFailuresTolerated: f.Failures, VMs: f.UsedSlots,
		CPU: resource(f.CPUTotal, f.CPUKept, f.CPUReserved), Mem: resource(f.MemTotal, f.MemKept, f.MemReserved),
		SlotCPUMHz: f.SlotCPU, SlotMemMB: f.SlotMem, TotalSlots: f.TotalSlots, UsableSlots: f.UsableSlots,
		UsedSlots: f.UsedSlots, FreeSlots: max(f.UsableSlots-f.UsedSlots, 0)}
	for _, x := range c.Hosts {
		if x.Status.State == api.HostConnected && !x.Spec.Maintenance {
			out.Hosts++
		}
	}
	return out, nil
}

func resource(total, kept, reserved int64) api.HACapacityResource {
	r := api.HACapacityResource{Total: total, Failover: kept, Reserved: reserved, Free: max(total-kept-reserved, 0)}
	if total > 0 {
		r.FailoverPercent = float64(kept) * 100 / float64(total)
		r.CurrentPercent = float64(max(total-reserved, 0)) * 100 / float64(total)
	}
	return r
}
