package inventory

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/labels"
	"github.com/podsphere/podsphere/pools"
	"github.com/podsphere/podsphere/vcenter/admission"
	"github.com/podsphere/podsphere/vcenter/store"
)

// vm is a VirtualMachine: containers sharing one network namespace, sized
// and allocated like a vSphere VM, placed by DRS at every power-on.
type vm struct{ base }

func init() { register(api.KindVirtualMachine, vm{}) }

func (vm) names() kindNames {
	return kindNames{word: "VM", createTask: "CreateVM_Task", changeTask: "ReconfigVM_Task", removeTask: "Destroy_Task",
		createdEvent: "VmCreatedEvent", changedEvent: "VmReconfiguredEvent", goneEvent: "VmRemovedEvent"}
}

// defaultVMSpec is a VM's spec before the request's fields are decoded onto it.
func defaultVMSpec() api.VMSpec {
	return api.VMSpec{CPU: defaultAlloc(), Mem: defaultAlloc(), NumCPU: 1, MemoryMB: 512}
}

func (vm) prepare(ref api.Ref, o *api.Object) error {
	s := defaultVMSpec()
	if err := decodeStrict(o.Spec, &s, "spec"); err != nil {
		return err
	}
	if err := validateVMSpec("spec", ref.Datacenter, &s, false); err != nil {
		return err
	}
	if err := inNamespace(ref, "spec.pool", s.Pool); err != nil {
		return err
	}
	o.SetSpec(s)
	return nil
}

// inNamespace checks that an object in a namespace folder uses a pool of
// that namespace (the namespace's pool or one below it). Objects at the
// top of a folder (the default namespace) may use any pool.
func inNamespace(ref api.Ref, field, pool string) error {
	if ref.Namespace == "" {
		return nil
	}
	if got := api.NamespaceOfPool(pool); got != ref.Namespace {
		return fmt.Errorf("%s %q is not in namespace %s: objects at %s must use the pool /%s/host/CLUSTER/%s/%s or one below it: %w",
			field, pool, ref.Namespace, ref.Path, ref.Datacenter, api.RootPoolName, ref.Namespace, api.ErrInvalid)
	}
	return nil
}

var restartPolicies = map[string]bool{"": true, "Always": true, "OnFailure": true, "Never": true}

// validateVMSpec checks a VM spec whose fields are named below f ("spec",
// or "spec.template.spec" in a workload). A template's pool, host and power
// state are its controller's to fill in, so they may be empty there.
func validateVMSpec(f, dc string, s *api.VMSpec, template bool) error {
	if s.Pool == "" && !template {
		return fmt.Errorf("%s.pool is required (the VM's resource pool, e.g. /%s/host/CLUSTER/Resources): %w", f, dc, api.ErrInvalid)
	}
	if s.Pool != "" {
		pr, err := api.ParsePath(s.Pool)
		if err != nil {
			return fmt.Errorf("%s.pool: %w", f, err)
		}
		if pr.Kind != api.KindResourcePool || pr.Datacenter != dc {
			return fmt.Errorf("%s.pool %q is not a resource pool in datacenter %s: %w", f, s.Pool, dc, api.ErrInvalid)
		}
		if s.Host != "" {
			hr, err := api.ParsePath(s.Host)
			if err != nil {
				return fmt.Errorf("%s.host: %w", f, err)
			}
			if hr.Kind != api.KindHost || hr.ClusterPath() != pr.ClusterPath() {
				return fmt.Errorf("%s.host %q is not a host of the pool's cluster %s: %w", f, s.Host, pr.ClusterPath(), api.ErrInvalid)
			}
		}
	}
	if s.Migration != nil && template {
		return fmt.Errorf("%s.migration is vcenter's record of a VM's cold migration, not for templates: %w", f, api.ErrInvalid)
	}
	if s.Pinned && s.Host == "" {
		return fmt.Errorf("%s.pinned is set but %s.host is empty: name the host to pin the VM to: %w", f, f, api.ErrInvalid)
	}
	if s.NumCPU < 1 || s.NumCPU > 768 {
		return fmt.Errorf("%s.numCPU %d: want 1 to 768 vCPUs: %w", f, s.NumCPU, api.ErrInvalid)
	}
	if s.MemoryMB < 4 {
		return fmt.Errorf("%s.memoryMB %d: want at least 4 MB: %w", f, s.MemoryMB, api.ErrInvalid)
	}
	if err := pools.Allocation(s.CPU).Validate(f + ".cpu"); err != nil {
		return err
	}
	if err := pools.Allocation(s.Mem).Validate(f + ".mem"); err != nil {
		return err
	}
	if s.Mem.Reservation > s.MemoryMB {
		return fmt.Errorf("%s.mem.reservation %d MB is above the VM's memory size %d MB: %w", f, s.Mem.Reservation, s.MemoryMB, api.ErrInvalid)
	}
	switch s.PowerState {
	case "":
		s.PowerState = api.PoweredOff
	case api.PoweredOn, api.PoweredOff, api.Suspended:
	default:
		return fmt.Errorf("%s.powerState %q: want poweredOn, poweredOff or suspended: %w", f, s.PowerState, api.ErrInvalid)
	}
	if !restartPolicies[s.RestartPolicy] {
		return fmt.Errorf("%s.restartPolicy %q: want Always, OnFailure or Never: %w", f, s.RestartPolicy, api.ErrInvalid)
	}
	if err := validateHA(f+".ha", s.HA); err != nil {
		return err
	}
	names := map[string]bool{}
	for i, c := range s.InitContainers {
		if err := validateContainer(fmt.Sprintf("%s.initContainers[%d]", f, i), c, names, true); err != nil {
			return err
		}
	}
	for i, c := range s.Containers {
		if err := validateContainer(fmt.Sprintf("%s.containers[%d]", f, i), c, names, false); err != nil {
			return err
		}
	}
	if g := s.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		return fmt.Errorf("%s.terminationGracePeriodSeconds %d is negative: %w", f, *g, api.ErrInvalid)
	}
	if s.Hostname != "" {
		if err := api.ValidateVMContainers(api.VMSpec{Hostname: s.Hostname}); err != nil {
			return fmt.Errorf("%s.hostname: %w", f, err)
		}
	}
	if err := api.ValidateDNS(f, s.DNSPolicy, s.DNSConfig); err != nil {
		return err
	}
	for k, v := range s.HostSelector {
		if err := labels.Validate(k, v); err != nil {
			return fmt.Errorf("%s.hostSelector: %w", f, err)
		}
	}
	if _, err := admission.VMRules(f, *s); err != nil {
		return err
	}
	return nil
}

func validateHA(f string, ha api.HAPolicy) error {
	if p := ha.RestartPriority; p != "" && !contains(api.RestartPriorities, p) {
		return fmt.Errorf("%s.restartPriority %q: want one of %s: %w", f, p, strings.Join(api.RestartPriorities, ", "), api.ErrInvalid)
	}
	if r := ha.IsolationResponse; r != "" && r != "powerOff" && r != "shutdown" && r != "none" {
		return fmt.Errorf("%s.isolationResponse %q: want powerOff, shutdown or none: %w", f, r, api.ErrInvalid)
	}
	return nil
}

func validateContainer(f string, c api.Container, names map[string]bool, init bool) error {
	if err := api.ValidateContainer(f, c, init); err != nil {
		return err
	}
	if names[c.Name] {
		return fmt.Errorf("%s.name %q is used twice (names are unique across containers and init containers): %w", f, c.Name, api.ErrInvalid)
	}
	names[c.Name] = true
	return nil
}

func (vm) admitCreate(t *Txn, ref api.Ref, o *api.Object) error {
	var spec api.VMSpec
	_ = o.DecodeSpec(&spec)
	if _, err := mustExist(t, spec.Pool, "resource pool"); err != nil {
		return err
	}
	if spec.Migration != nil {
		return fmt.Errorf("%s: spec.migration is vcenter's record of a cold migration: create the VM, then use vm.migrate: %w", o.Path, api.ErrInvalid)
	}
	if spec.Host != "" {
		if _, err := mustExist(t, spec.Host, "host"); err != nil {
			return err
		}
	}
	if ref.Namespace == "" {
		if cur, err := t.Get(o.Path); err == nil {
			// Said as the store would say it: the replica-set controller
			// draws new names on "already exists".
			return fmt.Errorf("%s %q already exists: %w", cur.Kind, o.Path, api.ErrConflict)
		}
		// /DC/vm/NAME is also the folder of namespace NAME: one or the other.
		if inside := t.List(store.Query{Prefix: o.Path}); len(inside) > 0 {
			return fmt.Errorf("%s is the folder of namespace %s (it holds %s): choose another VM name: %w", o.Path, ref.Name, inside[0].Path, api.ErrConflict)
		}
	} else if _, err := t.Get(api.Parent(o.Path)); err == nil {
		return fmt.Errorf("%s: %s is a VM, not a namespace folder: %w", o.Path, api.Parent(o.Path), api.ErrConflict)
	}
	return admission.CreateVM(t.inv.ix.quotaLevels(spec.Pool))
}

func (vm) created(t *Txn, out *api.Object) (*api.Object, error) {
	var spec api.VMSpec
	_ = out.DecodeSpec(&spec)
	if spec.PowerState != api.PoweredOn {
		return out, nil
	}
	return powerOn(t, out, spec)
}

func (vm) admitChange(t *Txn, _ api.Ref, cur, o *api.Object) (string, error) {
	var oldSpec, spec api.VMSpec
	_ = cur.DecodeSpec(&oldSpec)
	_ = o.DecodeSpec(&spec)
	if oldSpec.PowerState == api.PoweredOn && spec.PowerState != api.PoweredOn {
		return "", fmt.Errorf("%s: change the power state with vm.power, not by editing spec.powerState: %w", o.Path, api.ErrInvalid)
	}
	if spec.Host != oldSpec.Host && oldSpec.PowerState == api.PoweredOn {
		return "", fmt.Errorf("%s is powered on on %s: moving it needs vm.migrate: %w", o.Path, oldSpec.Host, api.ErrInvalid)
	}
	if !sameMigration(oldSpec.Migration, spec.Migration) {
		return "", fmt.Errorf("%s: spec.migration is vcenter's record of a cold migration: start one with vm.migrate, keep it as read: %w", o.Path, api.ErrInvalid)
	}
	if spec.Pool != oldSpec.Pool {
		if _, err := mustExist(t, spec.Pool, "resource pool"); err != nil {
			return "", err
		}
	}
	if err := admitVMHA(t, o, oldSpec, spec); err != nil {
		return "", err
	}
	on := oldSpec.PowerState == api.PoweredOn
	if err := admission.ChangeQuota(t.inv.ix.quotaLevels(spec.Pool), oldSpec, spec, on); err != nil {
		return "", err
	}
	if !on {
		return "", nil
	}
	// A running VM's reservation may change, or move to another pool, only
	// if the pool tree and its host can cover it.
	pref, _ := api.ParsePath(spec.Pool)
	return "", admission.ChangeRunning(t.inv.ix.cluster(pref.ClusterPath(), nil), oldSpec, spec)
}

func (vm) changed(t *Txn, cur, out *api.Object) (*api.Object, error) {
	var oldSpec, spec api.VMSpec
	_ = cur.DecodeSpec(&oldSpec)
	_ = out.DecodeSpec(&spec)
	if oldSpec.PowerState != api.PoweredOn && spec.PowerState == api.PoweredOn {
		return powerOn(t, out, spec)
	}
	return out, nil
}

// report takes a host's observation of its VM: the status is the host's
// but for HA's record, which stays as vcenter wrote it, and changes of
// power state and restarts leave events. Only the host the VM is
// registered on may report it: after HA restarted it elsewhere, a late
// report of the old host (back from a partition) would otherwise say it
// runs where it no longer does.
func (vm) report(t *Txn, cur *api.Object, raw json.RawMessage) error {
	var st, old api.VMStatus
	if err := decodeStrict(raw, &st, "status"); err != nil {
		return err
	}
	var spec api.VMSpec
	_ = cur.DecodeSpec(&spec)
	if st.Host != spec.Host {
		return fmt.Errorf("%s is registered on host %s: a status report from host %s is refused (re-read the VM): %w",
			cur.Path, orNoHost(spec.Host), orNoHost(st.Host), api.ErrConflict)
	}
	_ = cur.DecodeStatus(&old)
	st.HA = old.HA
	cur.SetStatus(st)
	if st.PowerState != old.PowerState && st.PowerState != "" {
		if err := t.Event("info", "VmStateChangedEvent", cur.Path, "%s is %s on %s%s", cur.Name(), st.PowerState, api.Base(st.Host), withMessage(st.Message)); err != nil {
			return err
		}
	}
	if st.Restarts > old.Restarts {
		if err := t.Event("warning", "VmRestartedEvent", cur.Path, "containers of %s were restarted on %s (restart count %d)%s", cur.Name(), api.Base(st.Host), st.Restarts, withMessage(st.Message)); err != nil {
			return err
		}
	}
	_, err := completeMigration(t, cur, spec, st)
	return err
}

// sameMigration says whether a change keeps spec.migration as it was.
func sameMigration(a, b *api.VMMigration) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ID == b.ID && a.Host == b.Host && a.User == b.User && a.Why == b.Why && a.Started.Equal(b.Started)
}

func orNoHost(h string) string {
	if h == "" {
		return "(none)"
	}
	return h
}

func withMessage(m string) string {
	if m == "" {
		return ""
	}
	return ": " + m
}

// powerOn admits and places a powered-off VM inside t and writes it with
// its host and an event saying where it went and why.
func powerOn(t *Txn, vm *api.Object, spec api.VMSpec) (*api.Object, error) {
	pref, _ := api.ParsePath(spec.Pool)
	view := t.inv.ix.cluster(pref.ClusterPath(), &placing{vm: vm.Path, owner: vm.Owner, vmTerms: admission.HasVMTerms(spec)})
	d, err := admission.PowerOn(view, t.inv.ix.quotaLevels(spec.Pool), vm.Path, vm.Labels, spec)
	if err != nil {
		return nil, err
	}
	pinned := spec.Pinned
	spec.Host = view.Path + "/" + d.Host
	spec.PowerState = api.PoweredOn
	vm.SetSpec(spec)
	out, err := t.Update(vm)
	if err != nil {
		return nil, err
	}
	if pinned {
		err = t.Event("info", "VmPoweredOnEvent", vm.Path, "%s powered on on its pinned host %s", vm.Name(), d.Host)
	} else {
		err = t.Event("info", "DrsVmPoweredOnEvent", vm.Path, "DRS placed %s on %s (%s)", vm.Name(), d.Host, admission.ChosenWhy(d))
	}
	return out, err
}

// Power runs vm.power: on, off, shutdown, suspend, reset or reboot.
func (inv *Inventory) Power(user, path, action string) (*api.Object, error) {
	started := inv.now()
	taskName := map[string]string{"on": "PowerOnVM_Task", "off": "PowerOffVM_Task", "shutdown": "ShutdownGuest",
		"reset": "ResetVM_Task", "reboot": "RebootGuest", "suspend": "SuspendVM_Task"}[action]
	if taskName == "" {
		return nil, fmt.Errorf("power action %q: want on, off, shutdown, reset, reboot or suspend: %w", action, api.ErrInvalid)
	}
	if action == "suspend" {
		// A suspended vSphere VM keeps its memory and resumes where it was; a
		// container has no such image, and calling a stop "suspended" would
		// say what did not happen.
		return nil, fmt.Errorf("%s: podsphere cannot suspend a VM (its containers have no memory image to save and resume): power it off (vm.power -off) or shut it down (vm.power -s) instead: %w", path, api.ErrInvalid)
	}
	if ref, err := api.ParsePath(path); err != nil {
		return nil, err
	} else if ref.Kind != api.KindVirtualMachine {
		return nil, fmt.Errorf("%s is a %s, not a VM: %w", path, ref.Kind, api.ErrInvalid)
	}
	var out *api.Object
	err := inv.Update(user, func(t *Txn) error {
		vm, err := t.Get(path)
		if err != nil {
			return err
		}
		var spec api.VMSpec
		if err := vm.DecodeSpec(&spec); err != nil {
			return err
		}
		switch action {
		case "on":
			if spec.PowerState == api.PoweredOn {
				out = vm
				return nil // already on: like vSphere, nothing to do
			}
			if out, err = powerOn(t, vm, spec); err != nil {
				return err
			}
		case "off", "shutdown", "suspend":
			target := api.PoweredOff
			if action == "suspend" {
				target = api.Suspended
			}
			if spec.PowerState == target {
				out = vm
				return nil
			}
			spec.PowerState = target
			if err := abandonMigration(t, vm, &spec, "it was powered off by "+user+" before it stopped; it stays registered on "+api.Base(spec.Host)); err != nil {
				return err
			}
			vm.SetSpec(spec)
			if out, err = t.Update(vm); err != nil {
				return err
			}
			typ := map[string]string{api.PoweredOff: "VmPoweredOffEvent", api.Suspended: "VmSuspendedEvent"}[target]
			if err := t.Event("info", typ, path, "%s is %s", vm.Name(), map[string]string{api.PoweredOff: "powered off", api.Suspended: "suspended"}[target]); err != nil {
				return err
			}
		case "reset", "reboot":
			if spec.PowerState != api.PoweredOn {
				return fmt.Errorf("%s is %s: only a powered-on VM can be reset: %w", path, spec.PowerState, api.ErrConflict)
			}
			spec.ResetGeneration++
			vm.SetSpec(spec)
			if out, err = t.Update(vm); err != nil {
				return err
			}
			if err := t.Event("info", "VmResettingEvent", path, "%s is being reset", vm.Name()); err != nil {
				return err
			}
		}
		return t.Task(taskName, path, started, nil)
	})
	if err != nil {
		if Refusal(err) {
			return nil, inv.Refuse(user, taskName, path, "VmFailedToPowerOnEvent", started, err)
		}
		return nil, err
	}
	return out, nil
}

// Retire powers off a member its owner no longer wants and marks it
// Removing; the owner removes it once its host reports it off.
func (inv *Inventory) Retire(user, path, why string) (*api.Object, error) {
	var out *api.Object
	err := inv.Update(user, func(t *Txn) error {
		o, err := t.Get(path)
		if err != nil {
			return err
		}
		var spec api.VMSpec
		_ = o.DecodeSpec(&spec)
		if spec.Removing {
			out = o
			return nil
		}
		spec.Removing, spec.PowerState = true, api.PoweredOff
		if err := abandonMigration(t, o, &spec, "it is powered off to be removed ("+why+")"); err != nil {
			return err
		}
		o.SetSpec(spec)
		if out, err = t.Update(o); err != nil {
			return err
		}
		return t.Event("info", "VmPoweredOffEvent", path, "%s is powered off to be removed: %s", o.Name(), why)
	})
	return out, err
}

// SetOwner makes owner the owner of the object at path (adoption), or
// releases it when owner is "". rv, when not 0, must be the object's
// current resourceVersion, so a VM whose labels just changed is not
// adopted on stale information.
func (inv *Inventory) SetOwner(user, path, owner string, rv uint64) (*api.Object, error) {
	var out *api.Object
	err := inv.Update(user, func(t *Txn) error {
		o, err := t.Get(path)
		if err != nil {
			return err
		}
		if rv != 0 && rv != o.ResourceVersion {
			return fmt.Errorf("%s has been modified (resourceVersion %d, expected %d): %w", path, o.ResourceVersion, rv, api.ErrConflict)
		}
		old := o.Owner
		if old == owner {
			out = o
			return nil
		}
		o.Owner = owner
		if out, err = t.Update(o); err != nil {
			return err
		}
		if owner == "" {
			return t.Event("info", "VmReleasedEvent", path, "%s is no longer a member of %s: its labels no longer match the selector", o.Name(), old)
		}
		return t.Event("info", "VmAdoptedEvent", path, "%s is now a member of %s: its labels match the selector", o.Name(), owner)
	})
	return out, err
}
