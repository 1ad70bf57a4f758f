package inventory

import (
	"fmt"
	"reflect"

	"github.com/podsphere/podsphere/api"
)

// deployment is a replica set whose template changes roll out: the
// Deployment controller keeps one ReplicaSet per template revision and
// moves the VMs from the old ones to the new one.
type deployment struct{ base }

func init() { register(api.KindDeployment, deployment{}) }

func (deployment) names() kindNames {
	return kindNames{word: "Deployment", createTask: "CreateDeployment", changeTask: "ReconfigureDeployment", removeTask: "Destroy_Task",
		createdEvent: "DeploymentCreatedEvent", changedEvent: "DeploymentReconfiguredEvent", goneEvent: "DeploymentRemovedEvent"}
}

// DefaultProgressDeadline is Kubernetes' progressDeadlineSeconds.
const DefaultProgressDeadline = 600

func (deployment) prepare(ref api.Ref, o *api.Object) error {
	s := api.DeploymentSpec{Template: defaultTemplate()}
	if err := decodeStrict(o.Spec, &s, "spec"); err != nil {
		return err
	}
	if s.Replicas < 0 {
		return fmt.Errorf("spec.replicas %d is negative: %w", s.Replicas, api.ErrInvalid)
	}
	if s.MinReadySeconds < 0 {
		return fmt.Errorf("spec.minReadySeconds %d is negative: %w", s.MinReadySeconds, api.ErrInvalid)
	}
	if s.RevisionHistoryLimit < 0 {
		return fmt.Errorf("spec.revisionHistoryLimit %d is negative: %w", s.RevisionHistoryLimit, api.ErrInvalid)
	}
	switch {
	case s.ProgressDeadlineSeconds == 0:
		s.ProgressDeadlineSeconds = DefaultProgressDeadline
	case s.ProgressDeadlineSeconds < 0:
		return fmt.Errorf("spec.progressDeadlineSeconds %d is negative: %w", s.ProgressDeadlineSeconds, api.ErrInvalid)
	case s.ProgressDeadlineSeconds <= s.MinReadySeconds:
		return fmt.Errorf("spec.progressDeadlineSeconds %d must be greater than spec.minReadySeconds %d: %w", s.ProgressDeadlineSeconds, s.MinReadySeconds, api.ErrInvalid)
	}
	if err := validateStrategy(&s.Strategy, s.Replicas); err != nil {
		return err
	}
	if err := validateWorkload(ref, workloadShape{Pool: s.Pool, Selector: s.Selector, Template: &s.Template, HA: s.HA}); err != nil {
		return err
	}
	o.SetSpec(s)
	return nil
}

// validateStrategy fills in Kubernetes' defaults (RollingUpdate, 25% and
// 25%) and checks the figures.
func validateStrategy(st *api.Strategy, replicas int) error {
	switch st.Type {
	case "":
		st.Type = api.RollingUpdate
	case api.RollingUpdate:
	case api.Recreate:
		if st.MaxSurge != nil || st.MaxUnavailable != nil {
			return fmt.Errorf("spec.strategy: maxSurge and maxUnavailable apply to RollingUpdate, not Recreate: %w", api.ErrInvalid)
		}
		return nil
	default:
		return fmt.Errorf("spec.strategy.type %q: want RollingUpdate or Recreate: %w", st.Type, api.ErrInvalid)
	}
	quarter := api.Str("25%")
	if st.MaxSurge == nil {
		st.MaxSurge = &quarter
	}
	if st.MaxUnavailable == nil {
		q := quarter
		st.MaxUnavailable = &q
	}
	surge, err := st.MaxSurge.Scaled(max(replicas, 100), true)
	if err != nil {
		return fmt.Errorf("spec.strategy.maxSurge: %w", err)
	}
	unavail, err := st.MaxUnavailable.Scaled(max(replicas, 100), false)
	if err != nil {
		return fmt.Errorf("spec.strategy.maxUnavailable: %w", err)
	}
	if st.MaxUnavailable.IsStr {
		if p, _ := st.MaxUnavailable.Scaled(100, false); p > 100 {
			return fmt.Errorf("spec.strategy.maxUnavailable %s is above 100%%: %w", st.MaxUnavailable, api.ErrInvalid)
		}
	}
	if surge == 0 && unavail == 0 {
		return fmt.Errorf("spec.strategy: maxSurge and maxUnavailable cannot both be 0: the rollout could never make progress: %w", api.ErrInvalid)
	}
	return nil
}

func (deployment) admitCreate(t *Txn, _ api.Ref, o *api.Object) error {
	var s api.DeploymentSpec
	_ = o.DecodeSpec(&s)
	return admitWorkload(t, s.Pool, false)
}

func (deployment) admitChange(t *Txn, _ api.Ref, cur, o *api.Object) (string, error) {
	var old, s api.DeploymentSpec
	_ = cur.DecodeSpec(&old)
	_ = o.DecodeSpec(&s)
	if err := immutable(old.Pool, s.Pool, old.Selector, s.Selector); err != nil {
		return "", err
	}
	switch {
	case !reflect.DeepEqual(old.Template, s.Template):
		return ": new template, rolling out", nil
	case old.Replicas != s.Replicas:
		return fmt.Sprintf(": scaled from %d to %d replicas", old.Replicas, s.Replicas), nil
	case old.Paused != s.Paused && s.Paused:
		return ": rollout paused", nil
	case old.Paused != s.Paused:
		return ": rollout resumed", nil
	case old.HA != s.HA:
		return ": HA settings changed (applied to its VMs without a rollout or restart)", nil
	}
	return "", nil
}

func (deployment) admitRemove(t *Txn, _ api.Ref, cur *api.Object, _ RemoveOptions) error {
	return removeOwned(t, cur.Path)
}
