package inventory

import (
	"fmt"
	"strings"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/admission"
)

// Migrate runs vm.migrate: a cold migration (podsphere has no vMotion).
// The VM keeps its path, UID, labels, pool and power state. host names the
// destination; "" lets DRS choose among the cluster's other hosts, as
// govc's vm.migrate does without -host. The move goes through power-on's
// admission (pool tree, the host's capacity, DRS and VM rules, HA
// admission control); a refusal changes nothing and leaves an event and a
// failed task saying why.
//
// A powered-off VM's registration moves at once. A powered-on VM is
// stopped first and started after, so it never runs on two hosts: Migrate
// only records the move (spec.migration) and the VM's host stops it; once
// that host reports it stopped for this migration, the report's
// transaction registers it on the destination, which starts it (see
// completeMigration). Until then the VM's reservations are counted on both
// hosts: the destination's capacity is held from admission on, and the
// current host's is not handed out while the VM may still run there.
func (inv *Inventory) Migrate(user, path, host string) (*api.Object, error) {
	started := inv.now()
	const taskName = "MigrateVM_Task"
	ref, err := api.ParsePath(path)
	if err != nil {
		return nil, err
	}
	if ref.Kind != api.KindVirtualMachine {
		return nil, fmt.Errorf("%s is a %s, not a VM: only VMs migrate: %w", path, ref.Kind, api.ErrInvalid)
	}
	if host != "" {
		hr, err := api.ParsePath(host)
		if err != nil {
			return nil, fmt.Errorf("destination host: %w", err)
		}
		if hr.Kind != api.KindHost {
			return nil, fmt.Errorf("destination %s is a %s, not a host: %w", host, hr.Kind, api.ErrInvalid)
		}
	}
	var out *api.Object
	err = inv.Update(user, func(t *Txn) error {
		vm, err := t.Get(path)
		if err != nil {
			return err
		}
		var spec api.VMSpec
		if err := vm.DecodeSpec(&spec); err != nil {
			return err
		}
		if spec.Removing {
			return fmt.Errorf("%s is being removed by %s: it does not migrate: %w", path, orNobody(vm.Owner), api.ErrConflict)
		}
		if m := spec.Migration; m != nil {
			if host == "" || host == m.Host {
				out = vm
				return nil // on its way there already
			}
			return fmt.Errorf("%s is being migrated to %s (by %s, since %s): wait until it runs there, then migrate it again: %w",
				path, api.Base(m.Host), m.User, m.Started.Format(time.RFC3339), api.ErrConflict)
		}
		pref, _ := api.ParsePath(spec.Pool)
		cluster := pref.ClusterPath()
		if host != "" {
			if hr, _ := api.ParsePath(host); hr.ClusterPath() != cluster {
				return fmt.Errorf("%s is not a host of %s's cluster %s: podsphere migrates within a cluster: %w", host, vm.Name(), cluster, api.ErrInvalid)
			}
			if _, err := mustExist(t, host, "host"); err != nil {
				return err
			}
			if host == spec.Host {
				out = vm
				return nil // already there: like vSphere, nothing to do
			}
		} else if spec.Pinned {
			return fmt.Errorf("%s is pinned to %s: name the destination with -host: %w", path, api.Base(spec.Host), api.ErrInvalid)
		}
		if spec.Host == "" && spec.PowerState != api.PoweredOn {
			return fmt.Errorf("%s is powered off and registered on no host: power it on (DRS places it) or name -host: %w", path, api.ErrInvalid)
		}
		view := t.inv.ix.cluster(cluster, &placing{vm: vm.Path, owner: vm.Owner, vmTerms: admission.HasVMTerms(spec)})
		d, err := admission.Migrate(view, vm.Path, vm.Labels, spec, host)
		if err != nil {
			return err
		}
		why := "chosen by " + user
		if host == "" {
			why = "DRS chose it: " + admission.ChosenWhy(d)
		}
		from := spec.Host
		if spec.PowerState == api.PoweredOn && from != "" {
			// Stop first: the VM stays registered where it runs until
			// that host says it stopped it for this migration.
			spec.Migration = &api.VMMigration{ID: fmt.Sprintf("%s@%d", d.Host, t.Now.UnixNano()),
				Host: cluster + "/" + d.Host, User: user, Why: why, Started: t.Now}
			vm.SetSpec(spec)
			if out, err = t.Update(vm); err != nil {
				return err
			}
			if err := t.Event("info", "VmBeingMigratedEvent", path, "%s is being migrated from %s to %s by %s (cold migration: stopping it on %s, then starting it on %s; %s)",
				vm.Name(), api.Base(from), d.Host, user, api.Base(from), d.Host, why); err != nil {
				return err
			}
			return t.Task(taskName, path, started, nil)
		}
		spec.Host = cluster + "/" + d.Host
		vm.SetSpec(spec)
		if out, err = t.Update(vm); err != nil {
			return err
		}
		if err := t.Event("info", "VmMigratedEvent", path, "%s migrated from %s to %s by %s (cold migration: registration moved, powered off; %s)",
			vm.Name(), api.Base(from), d.Host, user, why); err != nil {
			return err
		}
		return t.Task(taskName, path, started, nil)
	})
	if err != nil {
		if Refusal(err) {
			return nil, inv.Refuse(user, taskName, path, "VmFailedMigrateEvent", started, err)
		}
		return nil, err
	}
	return out, nil
}

// completeMigration finishes the cold migration of vm (spec.migration) in
// the transaction of its host's status report st, once that report says
// the host stopped the VM for this migration (st.MigrationStopped echoes
// its ID: a report the host wrote before it saw the migration never
// completes it). The VM is admitted again on the destination, registered
// there and left powered on, so the destination starts it; the host that
// stopped it no longer has it. If the destination can no longer take it
// (it failed, entered maintenance, a rule changed), the migration is
// abandoned and the VM is powered on again where it was: its capacity
// there was held all along. Either way an event says what happened and
// who asked for the migration. It reports whether it changed vm.
func completeMigration(t *Txn, vm *api.Object, spec api.VMSpec, st api.VMStatus) (bool, error) {
	m := spec.Migration
	if m == nil || spec.PowerState != api.PoweredOn || st.MigrationStopped != m.ID || st.PowerState == api.PoweredOn {
		return false, nil
	}
	// The host's report triggers it, but the move is the migration's:
	// its events are recorded as the user who asked for it.
	reporter := t.User
	t.User = m.User
	defer func() { t.User = reporter }()
	from := spec.Host
	pref, _ := api.ParsePath(spec.Pool)
	view := t.inv.ix.cluster(pref.ClusterPath(), &placing{vm: vm.Path, owner: vm.Owner, vmTerms: admission.HasVMTerms(spec)})
	unreserveMigration(view, spec)
	d, err := admission.Migrate(view, vm.Path, vm.Labels, spec, m.Host)
	spec.Migration = nil
	if err != nil {
		// Admission is pure: every error is a refusal of the destination.
		vm.SetSpec(spec)
		return true, t.Event("warning", "VmFailedMigrateEvent", vm.Path, "%s could not be started on %s after %s stopped it: %s; the migration %s asked for is abandoned and %s is powered on again on %s",
			vm.Name(), api.Base(m.Host), api.Base(from), api.Message(err), m.User, vm.Name(), api.Base(from))
	}
	spec.Host = pref.ClusterPath() + "/" + d.Host
	vm.SetSpec(spec)
	vm.SetStatus(api.VMStatus{PowerState: api.PoweredOff, Host: spec.Host, HA: st.HA,
		Message: fmt.Sprintf("%s%s: starting on %s", migratedFrom, api.Base(from), d.Host)})
	return true, t.Event("info", "VmMigratedEvent", vm.Path, "%s migrated from %s to %s by %s (cold migration: stopped on %s, starting on %s; %s)",
		vm.Name(), api.Base(from), d.Host, m.User, api.Base(from), d.Host, m.Why)
}

// migratedFrom starts the status message of a VM whose migration just
// completed, until its new host reports it.
const migratedFrom = "migrated from "

// MigrationPending says whether the VM o is being cold-migrated: its host
// has yet to report it stopped for the migration.
func MigrationPending(o *api.Object) bool {
	var spec api.VMSpec
	_ = o.DecodeSpec(&spec)
	return spec.Migration != nil
}

// MigrationStarting says whether the VM o was just cold-migrated and its
// new host has not reported it yet (running, or why it does not).
func MigrationStarting(o *api.Object) bool {
	var spec api.VMSpec
	var st api.VMStatus
	_ = o.DecodeSpec(&spec)
	_ = o.DecodeStatus(&st)
	return spec.Migration == nil && spec.PowerState == api.PoweredOn && st.Host == spec.Host &&
		st.PowerState != api.PoweredOn && strings.HasPrefix(st.Message, migratedFrom)
}

// unreserveMigration takes the reservations a VM's migration in progress
// holds on its destination out of the cluster snapshot view: placing the
// VM itself (completing the move, or HA restarting it) must not count it
// twice there.
func unreserveMigration(view admission.Cluster, spec api.VMSpec) {
	m := spec.Migration
	if m == nil || m.Host == spec.Host || spec.PowerState != api.PoweredOn {
		return
	}
	if h, ok := view.Hosts[m.Host]; ok {
		h.CPUReserved -= spec.CPU.Reservation
		h.MemReserved -= spec.Mem.Reservation
		view.Hosts[m.Host] = h
	}
}

// abandonMigration drops the VM's migration in progress because why (its
// power-off, or HA restarting it), with an event; spec is changed in place.
func abandonMigration(t *Txn, vm *api.Object, spec *api.VMSpec, why string) error {
	m := spec.Migration
	if m == nil {
		return nil
	}
	spec.Migration = nil
	return t.Event("warning", "VmFailedMigrateEvent", vm.Path, "the migration of %s to %s that %s asked for is abandoned: %s",
		vm.Name(), api.Base(m.Host), m.User, why)
}

func orNobody(owner string) string {
	if owner == "" {
		return "its user"
	}
	return owner
}
