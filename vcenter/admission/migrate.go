package admission

import (
	"fmt"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/placement"
)

// Migrate admits a cold migration of the VM at path (spec as it is now,
// spec.host its current host) and places it: to target when one is named
// (it must take it), else wherever DRS chooses among the cluster's other
// hosts. c is the cluster with the VM still counted on its host; Migrate
// takes it off first, so the VM competes for capacity, the pool tree and
// HA's failover capacity as if powering on, but not with itself. Quota
// totals do not change (same pool, still powered on), so none are checked.
// A powered-off VM only changes its registration: the rules and the host's
// state are checked, no reservation is admitted. c is modified.
func Migrate(c Cluster, path string, vmLabels map[string]string, spec api.VMSpec, target string) (placement.Decision, error) {
	from := spec.Host
	running := spec.PowerState == api.PoweredOn
	if running {
		if h, ok := c.Hosts[from]; ok {
			h.CPUReserved -= spec.CPU.Reservation
			h.MemReserved -= spec.Mem.Reservation
			h.Running = max(h.Running-1, 0)
			h.Peers = max(h.Peers-1, 0)
			c.Hosts[from] = h
		}
		if p, ok := c.Pools[spec.Pool]; ok {
			p.VMCPUReservation -= spec.CPU.Reservation
			p.VMMemReservation -= spec.Mem.Reservation
			c.Pools[spec.Pool] = p
		}
		if c.Running != nil {
			delete(c.Running, api.Base(path))
		}
	}
	spec.Pinned, spec.Host = target != "", target
	return admit(c, nil, "migrate", path, vmLabels, spec, from, running)
}

// KeepsFailover says whether the cluster keeps HA's failover level with
// the capacity of its hosts in (or entering) maintenance taken away, every
// powered-on VM still running somewhere: what a host entering maintenance
// must not break. nil when HA admission control is off.
func KeepsFailover(c Cluster, host string) error {
	f, on := c.Failover()
	if !on {
		return nil
	}
	if err := f.Holds(); err != nil {
		return fmt.Errorf("%s cannot enter maintenance mode now: %w", api.Base(host), err)
	}
	return nil
}
