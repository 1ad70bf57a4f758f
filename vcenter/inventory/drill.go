package inventory

import (
	"fmt"

	"github.com/podsphere/podsphere/api"
)

// drill is a failover drill's report (psc ha.drill): written once by the
// drill's runner when it ends, read by ha.drill.ls and ha.drill.info.
type drill struct{ base }

func init() { register(api.KindHADrill, drill{}) }

func (drill) names() kindNames {
	return kindNames{word: "HA drill", createTask: "RecordHADrill", changeTask: "ReconfigureHADrill", removeTask: "Destroy_Task",
		createdEvent: "HADrillRecordedEvent", changedEvent: "HADrillChangedEvent", goneEvent: "HADrillRemovedEvent"}
}

func (drill) prepare(ref api.Ref, o *api.Object) error {
	var r api.HADrillReport
	if err := decodeStrict(o.Spec, &r, "spec"); err != nil {
		return err
	}
	if r.Name != ref.Name {
		return fmt.Errorf("spec.name %q must be the drill's name %q: %w", r.Name, ref.Name, api.ErrInvalid)
	}
	if !contains(api.DrillModes, r.Mode) {
		return fmt.Errorf("spec.mode %q: want one of %v: %w", r.Mode, api.DrillModes, api.ErrInvalid)
	}
	cr, err := api.ParsePath(r.Cluster)
	if err != nil || cr.Kind != api.KindCluster || cr.Datacenter != ref.Datacenter {
		return fmt.Errorf("spec.cluster %q: want a cluster of datacenter %s: %w", r.Cluster, ref.Datacenter, api.ErrInvalid)
	}
	if r.Injected.IsZero() {
		return fmt.Errorf("spec.injected is required: when the failure was injected: %w", api.ErrInvalid)
	}
	return nil
}

func (drill) admitCreate(t *Txn, _ api.Ref, o *api.Object) error {
	var r api.HADrillReport
	_ = o.DecodeSpec(&r)
	_, err := mustExist(t, r.Cluster, "cluster")
	return err
}

func (drill) admitChange(_ *Txn, _ api.Ref, _, o *api.Object) (string, error) {
	return "", fmt.Errorf("%s: a drill's report is kept as it was measured; run a new drill instead: %w", o.Path, api.ErrInvalid)
}
