package inventory

import (
	"fmt"
	"reflect"

	"github.com/podsphere/podsphere/api"
)

// replicaSet is "keep Replicas VMs of this template running"; the
// replica-set controller makes and removes the members.
type replicaSet struct{ base }

func init() { register(api.KindReplicaSet, replicaSet{}) }

func (replicaSet) names() kindNames {
	return kindNames{word: "ReplicaSet", createTask: "CreateReplicaSet", changeTask: "ReconfigureReplicaSet", removeTask: "Destroy_Task",
		createdEvent: "ReplicaSetCreatedEvent", changedEvent: "ReplicaSetReconfiguredEvent", goneEvent: "ReplicaSetRemovedEvent"}
}

func (replicaSet) prepare(ref api.Ref, o *api.Object) error {
	s := api.ReplicaSetSpec{Template: defaultTemplate()}
	if err := decodeStrict(o.Spec, &s, "spec"); err != nil {
		return err
	}
	if s.Replicas < 0 {
		return fmt.Errorf("spec.replicas %d is negative: %w", s.Replicas, api.ErrInvalid)
	}
	if s.MinReadySeconds < 0 {
		return fmt.Errorf("spec.minReadySeconds %d is negative: %w", s.MinReadySeconds, api.ErrInvalid)
	}
	if err := validateWorkload(ref, workloadShape{Pool: s.Pool, Selector: s.Selector, Template: &s.Template, HA: s.HA}); err != nil {
		return err
	}
	o.SetSpec(s)
	return nil
}

func (replicaSet) admitCreate(t *Txn, _ api.Ref, o *api.Object) error {
	var s api.ReplicaSetSpec
	_ = o.DecodeSpec(&s)
	return admitWorkload(t, s.Pool, true)
}

func (replicaSet) admitChange(t *Txn, _ api.Ref, cur, o *api.Object) (string, error) {
	var old, s api.ReplicaSetSpec
	_ = cur.DecodeSpec(&old)
	_ = o.DecodeSpec(&s)
	if err := immutable(old.Pool, s.Pool, old.Selector, s.Selector); err != nil {
		return "", err
	}
	if o.Owner != cur.Owner {
		return "", fmt.Errorf("%s: owner is set by its controller (%q) and cannot be changed: %w", o.Path, cur.Owner, api.ErrInvalid)
	}
	if s.HA != old.HA && isKindPath(o.Owner, api.KindDeployment) {
		// The Deployment controller copies the Deployment's HA policy onto
		// its sets: an override of one set would be undone.
		if d, err := t.Get(o.Owner); err == nil {
			var ds api.DeploymentSpec
			_ = d.DecodeSpec(&ds)
			if s.HA != ds.HA {
				return "", fmt.Errorf("%s belongs to Deployment %s: its HA settings follow the Deployment's (psc cluster.override.change -deployment %s): %w",
					o.Path, o.Owner, setArg(o.Owner), api.ErrConflict)
			}
		}
	}
	if old.Replicas != s.Replicas {
		return fmt.Sprintf(": scaled from %d to %d replicas", old.Replicas, s.Replicas), nil
	}
	if MemberHA(old) != MemberHA(s) {
		return ": HA settings of the members changed (applied without restarting them)", nil
	}
	return "", nil
}

// immutable refuses a change of a workload's pool or selector, as
// Kubernetes refuses a selector change: the members would no longer be its own.
func immutable(oldPool, pool string, oldSel, sel api.LabelSelector) error {
	if oldPool != pool {
		return fmt.Errorf("spec.pool cannot change (from %s to %s): the members would have to move; create a new workload in the other pool: %w", oldPool, pool, api.ErrInvalid)
	}
	if !reflect.DeepEqual(oldSel, sel) {
		return fmt.Errorf("spec.selector cannot change: the members it selects would no longer be its own; create a new workload: %w", api.ErrInvalid)
	}
	return nil
}

func (replicaSet) admitRemove(t *Txn, _ api.Ref, cur *api.Object, _ RemoveOptions) error {
	return removeOwned(t, cur.Path)
}
