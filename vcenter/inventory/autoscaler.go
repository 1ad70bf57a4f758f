package inventory

import (
	"fmt"

	"github.com/podsphere/podsphere/api"
)

// autoscaler is a HorizontalPodAutoscaler: it scales a Deployment or
// ReplicaSet of its namespace from its members' CPU use.
type autoscaler struct{ base }

func init() { register(api.KindAutoscaler, autoscaler{}) }

func (autoscaler) names() kindNames {
	return kindNames{word: "HorizontalPodAutoscaler", createTask: "CreateAutoscaler", changeTask: "ReconfigureAutoscaler", removeTask: "Destroy_Task",
		createdEvent: "AutoscalerCreatedEvent", changedEvent: "AutoscalerReconfiguredEvent", goneEvent: "AutoscalerRemovedEvent"}
}

func (autoscaler) prepare(ref api.Ref, o *api.Object) error {
	var s api.AutoscalerSpec
	if err := decodeStrict(o.Spec, &s, "spec"); err != nil {
		return err
	}
	if s.Target == "" {
		return fmt.Errorf("spec.target is required: the Deployment or ReplicaSet to scale: %w", api.ErrInvalid)
	}
	tr, err := api.ParsePath(s.Target)
	if err != nil {
		return fmt.Errorf("spec.target: %w", err)
	}
	if tr.Kind != api.KindDeployment && tr.Kind != api.KindReplicaSet {
		return fmt.Errorf("spec.target %s is a %s: an autoscaler scales a Deployment or a ReplicaSet: %w", s.Target, tr.Kind, api.ErrInvalid)
	}
	if tr.Datacenter != ref.Datacenter || tr.Namespace != ref.Namespace {
		return fmt.Errorf("spec.target %s is not in the autoscaler's namespace: %w", s.Target, api.ErrInvalid)
	}
	switch {
	case s.MinReplicas < 1:
		return fmt.Errorf("spec.minReplicas %d: want at least 1: %w", s.MinReplicas, api.ErrInvalid)
	case s.MaxReplicas < s.MinReplicas:
		return fmt.Errorf("spec.maxReplicas %d is below spec.minReplicas %d: %w", s.MaxReplicas, s.MinReplicas, api.ErrInvalid)
	case s.TargetCPUUtilization < 1:
		return fmt.Errorf("spec.targetCPUUtilization %d: want a percentage of the members' CPU request, at least 1: %w", s.TargetCPUUtilization, api.ErrInvalid)
	}
	for _, w := range []struct {
		f string
		v *int
	}{{"spec.scaleDownStabilizationSeconds", s.ScaleDownStabilizationSeconds}, {"spec.scaleUpStabilizationSeconds", s.ScaleUpStabilizationSeconds}} {
		if w.v != nil && (*w.v < 0 || *w.v > 3600) {
			return fmt.Errorf("%s %d: want 0 to 3600: %w", w.f, *w.v, api.ErrInvalid)
		}
	}
	o.SetSpec(s)
	return nil
}

func (autoscaler) admitCreate(t *Txn, _ api.Ref, o *api.Object) error {
	var s api.AutoscalerSpec
	_ = o.DecodeSpec(&s)
	if _, err := t.Get(s.Target); err != nil {
		if isNotFound(err) {
			return fmt.Errorf("spec.target %s does not exist: create it first: %w", s.Target, api.ErrInvalid)
		}
		return err
	}
	return nil
}
