package inventory

import (
	"fmt"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/admission"
)

// Migrate runs vm.migrate: a cold migration (podsphere has no vMotion).
// The VM keeps its path, UID, labels, pool and power state; a powered-on
// VM is stopped on its host and started on the new one (both hosts act on
// the one spec.host change: the old one stops what is no longer its, the
// new one starts it). host names the destination; "" lets DRS choose among
// the cluster's other hosts, as govc's vm.migrate does without -host. The
// move goes through power-on's admission (pool tree, the host's capacity,
// DRS and VM rules, HA admission control); a refusal changes nothing and
// leaves an event and a failed task saying why.
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
		from := spec.Host
		spec.Host = cluster + "/" + d.Host
		vm.SetSpec(spec)
		if spec.PowerState == api.PoweredOn {
			// The VM's status is its host's report; the old host's no
			// longer holds, and the new host reports once it runs it.
			vm.SetStatus(api.VMStatus{PowerState: api.PoweredOff, Message: fmt.Sprintf("migrating from %s to %s", api.Base(from), d.Host)})
		}
		if out, err = t.Update(vm); err != nil {
			return err
		}
		why := "chosen by the user"
		if host == "" {
			why = "DRS chose it: " + admission.ChosenWhy(d)
		}
		what := "stopped there and started on"
		if spec.PowerState != api.PoweredOn {
			what = "registration moved (powered off) to"
		}
		if err := t.Event("info", "VmMigratedEvent", path, "%s migrated from %s to %s (cold migration: %s %s; %s)",
			vm.Name(), api.Base(from), d.Host, what, d.Host, why); err != nil {
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

func orNobody(owner string) string {
	if owner == "" {
		return "its user"
	}
	return owner
}
