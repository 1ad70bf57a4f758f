package inventory

import (
	"fmt"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/admission"
	"github.com/podsphere/podsphere/vcenter/store"
)

// EvacuationUser is who evacuation's own writes are recorded as (its
// migrations, the host reaching maintenance or giving up).
const EvacuationUser = "controller:evacuation"

// MustLeave says whether the VM o must leave host before the host may be in
// maintenance: it runs there (or still reports running there while it
// stops), or it is registered there powered off and the admin asked for
// powered-off VMs to move too (-evacuate).
func MustLeave(o *api.Object, host string, evacuateOff bool) bool {
	var spec api.VMSpec
	var st api.VMStatus
	_ = o.DecodeSpec(&spec)
	_ = o.DecodeStatus(&st)
	if st.Host == host && st.PowerState == api.PoweredOn {
		return true
	}
	if spec.Host != host {
		return false
	}
	if spec.PowerState == api.PoweredOn {
		return true
	}
	return evacuateOff && !spec.Removing
}

// vmsLeft lists the VMs that must leave host.
func vmsLeft(t *Txn, host string, evacuateOff bool) []*api.Object {
	var out []*api.Object
	for _, o := range t.List(store.Query{Kind: api.KindVirtualMachine, Filter: OnHost(host)}) {
		if MustLeave(o, host, evacuateOff) {
			out = append(out, o)
		}
	}
	return out
}

// inMaintenance says whether a host whose spec asks for maintenance has
// reached it: entering hosts stay connected until evacuated.
func inMaintenance(spec api.HostSpec, st api.HostStatus) bool {
	return spec.Maintenance && (st.Maintenance == nil || st.Maintenance.Done)
}

// enterMaintenance starts entering maintenance mode on a host (from its
// admitChange): the progress is set, and the host is in maintenance at
// once when nothing has to leave it.
func enterMaintenance(t *Txn, path string, spec api.HostSpec, st *api.HostStatus) string {
	left := len(vmsLeft(t, path, spec.EvacuatePoweredOff))
	p := &api.MaintenanceProgress{Since: t.Now, VMs: left, VMsLeft: left}
	if spec.MaintenanceTimeoutSeconds > 0 {
		p.Deadline = t.Now.Add(time.Duration(spec.MaintenanceTimeoutSeconds) * time.Second)
	}
	st.Maintenance = p
	if left == 0 {
		p.Done, p.Step = true, "in maintenance mode"
		if st.State == api.HostConnected {
			st.State = api.HostMaintenance
		}
		return ": entered maintenance mode (no new VMs are placed on it)"
	}
	p.Step = fmt.Sprintf("evacuating %d VMs", left)
	return fmt.Sprintf(": entering maintenance mode: no new VMs are placed on it, and its %d VMs are moved away first", left)
}

// MaintenanceHA says whether host may give up its capacity now: nil when
// the cluster keeps HA's failover level without it (and without the
// other hosts in maintenance), else the HA admission control refusal.
func (inv *Inventory) MaintenanceHA(host string) error {
	ref, err := api.ParsePath(host)
	if err != nil {
		return err
	}
	return admission.KeepsFailover(inv.ix.cluster(ref.ClusterPath(), nil), host)
}

// MaintenanceProgress writes a host's evacuation progress (when it
// changed), with an event when the wait reason changes, so each wait is
// readable in the event log once, not at every pass.
func (inv *Inventory) MaintenanceProgress(user, host string, p api.MaintenanceProgress) error {
	return inv.Update(user, func(t *Txn) error {
		h, spec, st, err := getHost(t, host)
		if err != nil || !spec.Maintenance || st.Maintenance == nil || st.Maintenance.Done {
			return err // left maintenance meanwhile: nothing to say
		}
		old := *st.Maintenance
		p.Since, p.Deadline, p.VMs = old.Since, old.Deadline, old.VMs
		p.Moved = max(old.Moved, p.VMs-p.VMsLeft)
		if old == p {
			return nil
		}
		st.Maintenance = &p
		h.SetStatus(st)
		if _, err := t.Update(h); err != nil {
			return err
		}
		if p.Waiting != "" && p.Waiting != old.Waiting {
			return t.Event("warning", "EnteringMaintenanceModeWaitingEvent", host, "Host %s is waiting to enter maintenance mode (%d VMs left): %s", api.Base(host), p.VMsLeft, p.Waiting)
		}
		return nil
	})
}

// ReachMaintenance puts a host whose VMs have all left in maintenance
// mode. It is refused (ErrConflict) if a VM still has to leave.
func (inv *Inventory) ReachMaintenance(user, host string) error {
	return inv.Update(user, func(t *Txn) error {
		h, spec, st, err := getHost(t, host)
		if err != nil || !spec.Maintenance || st.Maintenance == nil || st.Maintenance.Done {
			return err
		}
		if left := vmsLeft(t, host, spec.EvacuatePoweredOff); len(left) > 0 {
			return fmt.Errorf("%s still has %d VMs to move (%s): %w", host, len(left), left[0].Path, api.ErrConflict)
		}
		p := *st.Maintenance
		p.VMsLeft, p.Done, p.Waiting, p.Step = 0, true, "", "in maintenance mode"
		p.Moved = max(p.Moved, p.VMs)
		st.Maintenance = &p
		if st.State == api.HostConnected {
			st.State = api.HostMaintenance
		}
		h.SetStatus(st)
		if _, err := t.Update(h); err != nil {
			return err
		}
		return t.Event("info", "EnteredMaintenanceModeEvent", host, "Host %s entered maintenance mode after %s: %d VMs moved or stopped",
			api.Base(host), t.Now.Sub(p.Since).Round(time.Second), p.Moved)
	})
}

// AbortMaintenance gives up entering maintenance mode (its timeout
// expired): the host is connected again and takes new VMs, the VMs already
// moved stay where they run, and the progress keeps why it failed.
func (inv *Inventory) AbortMaintenance(user, host, why string) error {
	return inv.Update(user, func(t *Txn) error {
		h, spec, st, err := getHost(t, host)
		if err != nil || !spec.Maintenance || st.Maintenance == nil || st.Maintenance.Done {
			return err
		}
		spec.Maintenance, spec.EvacuatePoweredOff, spec.MaintenanceTimeoutSeconds = false, false, 0
		p := *st.Maintenance
		p.Error, p.Step = why, "gave up: "+why
		st.Maintenance = &p
		if st.State == api.HostMaintenance {
			st.State = api.HostConnected
		}
		h.SetSpec(spec)
		h.SetStatus(st)
		h.Generation++
		if _, err := t.Update(h); err != nil {
			return err
		}
		if err := t.Event("error", "EnterMaintenanceModeFailedEvent", host, "Host %s did not enter maintenance mode and is back in service: %s", api.Base(host), why); err != nil {
			return err
		}
		return t.Task("EnterMaintenanceMode_Task", host, p.Since, fmt.Errorf("%s", why))
	})
}

func getHost(t *Txn, path string) (*api.Object, api.HostSpec, api.HostStatus, error) {
	var spec api.HostSpec
	var st api.HostStatus
	h, err := t.Get(path)
	if err != nil {
		return nil, spec, st, err
	}
	if h.Kind != api.KindHost {
		return nil, spec, st, fmt.Errorf("%s is a %s, not a host: %w", path, h.Kind, api.ErrInvalid)
	}
	_ = h.DecodeSpec(&spec)
	_ = h.DecodeStatus(&st)
	return h, spec, st, nil
}
