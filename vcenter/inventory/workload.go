package inventory

import (
	"fmt"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/labels"
	"github.com/podsphere/podsphere/quota"
	"github.com/podsphere/podsphere/vcenter/store"
)

// workloadShape is what every workload kind has: a pool, a selector over
// its members and the template they are made from.
type workloadShape struct {
	Pool     string
	Selector api.LabelSelector
	Template *api.VMTemplate
	HA       api.HAPolicy
}

// validateWorkload checks the shared part of a workload spec: the pool is
// a pool of the object's datacenter and namespace, the selector is valid,
// not empty, and selects the template's labels (or members would be made
// that the set does not see, forever), and the template is a valid VM.
func validateWorkload(ref api.Ref, w workloadShape) error {
	if w.Pool == "" {
		return fmt.Errorf("spec.pool is required (the resource pool the members run in, e.g. /%s/host/CLUSTER/Resources): %w", ref.Datacenter, api.ErrInvalid)
	}
	pr, err := api.ParsePath(w.Pool)
	if err != nil {
		return fmt.Errorf("spec.pool: %w", err)
	}
	if pr.Kind != api.KindResourcePool || pr.Datacenter != ref.Datacenter {
		return fmt.Errorf("spec.pool %q is not a resource pool in datacenter %s: %w", w.Pool, ref.Datacenter, api.ErrInvalid)
	}
	if err := inNamespace(ref, "spec.pool", w.Pool); err != nil {
		return err
	}
	if err := validateHA("spec.ha", w.HA); err != nil {
		return err
	}
	sel, err := labels.FromLabelSelector(w.Selector)
	if err != nil {
		return fmt.Errorf("spec.%w", err)
	}
	if sel.Empty() {
		return fmt.Errorf("spec.selector is empty: it would select every VM of the namespace; give matchLabels or matchExpressions: %w", api.ErrInvalid)
	}
	t := w.Template
	for k, v := range t.Labels {
		if err := labels.Validate(k, v); err != nil {
			return fmt.Errorf("spec.template.labels: %w", err)
		}
	}
	if !sel.Matches(t.Labels) {
		return fmt.Errorf("spec.selector %s does not select the template's labels %s: the members made from it would not be counted: %w",
			sel, labelText(t.Labels), api.ErrInvalid)
	}
	if len(t.Spec.Containers) == 0 {
		return fmt.Errorf("spec.template.spec.containers: a member needs at least one container: %w", api.ErrInvalid)
	}
	if t.Spec.Pool != "" && t.Spec.Pool != w.Pool {
		return fmt.Errorf("spec.template.spec.pool %q differs from spec.pool %q: leave it out, members run in spec.pool: %w", t.Spec.Pool, w.Pool, api.ErrInvalid)
	}
	if t.Spec.PowerState != "" && t.Spec.PowerState != api.PoweredOn {
		return fmt.Errorf("spec.template.spec.powerState %q: members are powered on by their controller; leave it out: %w", t.Spec.PowerState, api.ErrInvalid)
	}
	if t.Spec.Host != "" && !t.Spec.Pinned {
		return fmt.Errorf("spec.template.spec.host is set without pinned: members are placed by DRS; pin them (nodeName) or leave it out: %w", api.ErrInvalid)
	}
	t.Spec.Pool = w.Pool
	if err := validateVMSpec("spec.template.spec", ref.Datacenter, &t.Spec, true); err != nil {
		return err
	}
	t.Spec.Pool, t.Spec.PowerState = "", "" // the controller's to fill in
	return nil
}

func labelText(m map[string]string) string {
	if len(m) == 0 {
		return "(none)"
	}
	sel, _ := labels.FromLabelSelector(api.LabelSelector{MatchLabels: m})
	return sel.String()
}

// defaultTemplateSpec is the VM defaults a template's spec is decoded onto.
func defaultTemplate() api.VMTemplate { return api.VMTemplate{Spec: defaultVMSpec()} }

// admitWorkload checks what must exist for a workload (its pool) and, for
// kinds counted by quotas, the pool's quota.
func admitWorkload(t *Txn, pool string, counted bool) error {
	if _, err := mustExist(t, pool, "resource pool"); err != nil {
		return err
	}
	if counted {
		return quota.Check(t.inv.ix.quotaLevels(pool), quota.Usage{ReplicaSets: 1})
	}
	return nil
}

// removeOwned removes, with the owner, every object it owns (its VMs, a
// Deployment's replica sets and theirs): Kubernetes' cascading delete,
// done at once.
func removeOwned(t *Txn, owner string) error {
	owned := t.inv.ix.ownedBy(owner)
	for _, p := range owned {
		o, err := t.Get(p)
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return err
		}
		if err := removeOwned(t, p); err != nil {
			return err
		}
		if err := t.Delete(p, 0); err != nil {
			return err
		}
		n, _ := strategyOf(o.Kind)
		if err := t.Event("info", n.names().goneEvent, p, "%s %s removed with its owner %s", n.names().word, p, owner); err != nil {
			return err
		}
	}
	return nil
}

// ownedIn lists the objects of kind in store that owner owns.
func ownedIn(t *Txn, kind, owner string) []*api.Object {
	var out []*api.Object
	for _, o := range t.List(store.Query{Kind: kind, Filter: func(o *api.Object) bool { return o.Owner == owner }}) {
		out = append(out, o)
	}
	return out
}
