package inventory

import (
	"fmt"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/vcenter/admission"
)

// HAUser is who vSphere HA's actions are recorded as, in events and as
// the writer of VMs' HA records.
const HAUser = "vSphere HA"

// Failover restarts the VM at path, registered on host from (a path),
// which HA found failed (or whose isolation response stopped it), or a
// live host (not in down) that reports it could not power the VM on that
// HA restarted there (status.powerOnFailed), because reason. In one transaction it checks that the VM is still registered on
// from and should run (if not, someone else moved, powered off or removed
// it: nothing is done and ok is false), re-places it as a power-on is
// placed (DRS with the cluster's rules and the VM's, the pool tree)
// without asking quota and HA admission control again (it holds its quota,
// and the failover capacity is kept for this), never on from nor on the
// hosts in down (paths HA does not count live), and registers it on the
// chosen host with a status that says it is off there until that host
// reports it, so vm.info never shows the failed host. attempt is the
// planner's attempt number. A refusal comes back as an admission error
// (Refusal) with nothing written: record it with FailoverFailed.
func (inv *Inventory) Failover(path, from, reason string, attempt int, down map[string]bool) (out *api.Object, ok bool, err error) {
	err = inv.Update(HAUser, func(t *Txn) error {
		vm, spec, st, ours, err := failoverVM(t, path, from)
		out = vm
		if !ours {
			return err
		}
		if !down[from] && (st.Host != from || st.PowerState == api.PoweredOn || st.PowerOnFailed == "") {
			// from is live: HA moves the VM only while from says it could
			// not power it on, never once it runs there.
			return nil
		}
		pref, _ := api.ParsePath(spec.Pool)
		view := t.inv.ix.cluster(pref.ClusterPath(), &placing{vm: vm.Path, owner: vm.Owner, vmTerms: admission.HasVMTerms(spec)})
		unreserveMigration(view, spec)
		d, err := admission.Restart(view, vm.Path, from, vm.Labels, spec, down)
		if err != nil {
			return err
		}
		// A cold migration its failed host never confirmed stopping for
		// is HA's to finish: HA places the VM (maybe on the migration's
		// destination), and the migration is dropped in this same write,
		// so the two never place it twice.
		if err := abandonMigration(t, vm, &spec, fmt.Sprintf("its host %s failed before it stopped it; vSphere HA restarts it on %s", api.Base(from), d.Host)); err != nil {
			return err
		}
		spec.Host = view.Path + "/" + d.Host
		vm.SetSpec(spec)
		rec := api.VMHAStatus{Attempts: attempt, LastAttempt: t.Now, RestartedAt: t.Now, RestartedFrom: from, Reason: reason}
		vm.SetStatus(api.VMStatus{PowerState: api.PoweredOff, Host: spec.Host, HA: &rec,
			Message: fmt.Sprintf("restarted by vSphere HA (%s)", reason)})
		if out, err = t.Update(vm); err != nil {
			return err
		}
		ok = true
		return t.Event("warning", "VmRestartedOnAlternateHostEvent", path, "vSphere HA restarted %s on %s (%s; DRS: %s)",
			vm.Name(), d.Host, reason, admission.ChosenWhy(d))
	})
	return out, ok, err
}

// failoverVM reads the VM at path inside t for one of HA's writes about it on
// host (a path). ours is false, with no error, when the VM is gone or has
// left host, should not run or is being removed: someone else acted first,
// and HA writes nothing.
func failoverVM(t *Txn, path, host string) (vm *api.Object, spec api.VMSpec, st api.VMStatus, ours bool, err error) {
	vm, err = t.Get(path)
	if err != nil {
		if isNotFound(err) {
			err = nil
		}
		return nil, spec, st, false, err
	}
	_ = vm.DecodeSpec(&spec)
	_ = vm.DecodeStatus(&st)
	return vm, spec, st, spec.Host == host && spec.PowerState == api.PoweredOn && !spec.Removing, nil
}

// FailoverFailed records that HA's attempt (1-based, of attempts) to
// restart the VM at path, registered on host from, failed because why:
// the VM's HA record counts it, its status says it is off (its host
// failed), and an event says so, an error event once the last attempt
// failed. Nothing is written if the VM left from, should not run, or the
// attempt is already recorded.
func (inv *Inventory) FailoverFailed(path, from, why string, attempt, attempts int) error {
	return inv.Update(HAUser, func(t *Txn) error {
		vm, spec, st, ours, err := failoverVM(t, path, from)
		if !ours {
			return err
		}
		rec := api.VMHAStatus{}
		if st.HA != nil {
			rec = *st.HA
		}
		if rec.Attempts >= attempt {
			return nil // recorded already (a concurrent pass, or before a restart of vcenter)
		}
		rec.Attempts, rec.LastAttempt, rec.LastError = attempt, t.Now, why
		rec.GaveUp = attempt >= attempts
		st.HA = &rec
		// The cause: from failed, or (live, reporting it) could not start
		// the VM HA restarted there.
		cause := fmt.Sprintf("host %s failed", api.Base(from))
		if st.PowerOnFailed != "" && st.Host == from {
			cause = fmt.Sprintf("host %s could not start it", api.Base(from))
		}
		st.PowerState, st.Ready, st.ReadySince = api.PoweredOff, false, time.Time{}
		st.Host = spec.Host
		st.Message = fmt.Sprintf("%s; vSphere HA could not restart it: %s", cause, why)
		vm.SetStatus(st)
		if _, err := t.Update(vm); err != nil {
			return err
		}
		if rec.GaveUp {
			return t.Event("error", "VmFailoverFailed", path, "vSphere HA gave up restarting %s after %d attempts (%s): %s",
				vm.Name(), attempt, cause, why)
		}
		return t.Event("warning", "VmFailoverFailed", path, "vSphere HA could not restart %s (attempt %d of %d; %s): %s",
			vm.Name(), attempt, attempts, cause, why)
	})
}

// FailoverStartFailed records that host (a path), on which HA restarted
// the VM at path as its attempt (of attempts), reports it could not power
// it on: the attempt failed. The VM's HA record keeps the count and says
// why (the host's error), and an event says so: a warning while HA will
// try another host, an error once that was the last attempt (gaveUp).
// Nothing is written if the VM left host, should not run, the host no
// longer says so, or the failure is recorded already.
func (inv *Inventory) FailoverStartFailed(path, host string, attempt, attempts int) error {
	return inv.Update(HAUser, func(t *Txn) error {
		vm, _, st, ours, err := failoverVM(t, path, host)
		if !ours || st.Host != host || st.PowerState == api.PoweredOn || st.PowerOnFailed == "" || st.HA == nil {
			return err
		}
		rec := *st.HA
		if rec.Attempts != attempt || rec.LastError != "" || rec.GaveUp {
			return nil
		}
		rec.LastError = ha.StartFailure(ha.VM{Host: api.Base(host), PowerOnFailed: st.PowerOnFailed})
		rec.GaveUp = attempt >= attempts
		st.HA = &rec
		vm.SetStatus(st)
		if _, err := t.Update(vm); err != nil {
			return err
		}
		if rec.GaveUp {
			return t.Event("error", "VmFailoverFailed", path, "vSphere HA gave up restarting %s after %d attempts: %s",
				vm.Name(), attempt, rec.LastError)
		}
		return t.Event("warning", "VmFailoverFailed", path, "vSphere HA could not start %s on %s (attempt %d of %d): %s; trying another host",
			vm.Name(), api.Base(host), attempt, attempts, st.PowerOnFailed)
	})
}

// FailoverDone clears the attempts of the VM's HA record once it runs
// again on a live host: a later failure starts counting afresh. The last
// restart (when, from where, why) stays as history.
func (inv *Inventory) FailoverDone(path string) error {
	_, err := inv.WriteStatus(HAUser, path, func(cur *api.Object) (bool, error) {
		var st api.VMStatus
		_ = cur.DecodeStatus(&st)
		if st.HA == nil || (st.HA.Attempts == 0 && st.HA.LastError == "" && !st.HA.GaveUp) {
			return false, nil
		}
		rec := api.VMHAStatus{RestartedAt: st.HA.RestartedAt, RestartedFrom: st.HA.RestartedFrom, Reason: st.HA.Reason}
		st.HA = &rec
		if rec.RestartedAt.IsZero() {
			st.HA = nil
		}
		cur.SetStatus(st)
		return true, nil
	})
	return err
}

// HAHostVerdict records what HA concluded about a host when it changed:
// failed marks it notResponding if gossip has not yet (HA may judge
// faster than the inventory's connection state), with an event naming
// HA's reason; isolated and unreachable leave an event. A host found
// live again leaves none (its HostConnectedEvent says so).
func (inv *Inventory) HAHostVerdict(path, verdict, reason string) error {
	return inv.Update(HAUser, func(t *Txn) error {
		cur, err := t.Get(path)
		if err != nil {
			if isNotFound(err) {
				return nil
			}
			return err
		}
		name := api.Base(path)
		switch verdict {
		case ha.HostFailed:
			var st api.HostStatus
			_ = cur.DecodeStatus(&st)
			if st.State != api.HostNotResponding {
				st.State = api.HostNotResponding
				cur.SetStatus(st)
				if _, err := t.Update(cur); err != nil {
					return err
				}
			}
			return t.Event("error", "DasHostFailedEvent", path, "vSphere HA declared host %s failed: %s; its VMs are restarted on other hosts", name, reason)
		case ha.HostIsolated:
			return t.Event("warning", "DasHostIsolatedEvent", path, "vSphere HA: host %s is isolated: %s; its VMs are restarted only once its isolation response stopped them", name, reason)
		case ha.HostUnreachable:
			return t.Event("warning", "DasHostUnreachableEvent", path, "vSphere HA: host %s is unreachable: %s", name, reason)
		}
		return nil
	})
}
