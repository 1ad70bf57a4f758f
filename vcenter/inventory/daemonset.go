package inventory

import (
	"fmt"

	"github.com/podsphere/podsphere/api"
)

// daemonSet is "one VM of this template on every matching host"; the
// DaemonSet controller follows hosts that join, leave and enter maintenance.
type daemonSet struct{ base }

func init() { register(api.KindDaemonSet, daemonSet{}) }

func (daemonSet) names() kindNames {
	return kindNames{word: "DaemonSet", createTask: "CreateDaemonSet", changeTask: "ReconfigureDaemonSet", removeTask: "Destroy_Task",
		createdEvent: "DaemonSetCreatedEvent", changedEvent: "DaemonSetReconfiguredEvent", goneEvent: "DaemonSetRemovedEvent"}
}

func (daemonSet) prepare(ref api.Ref, o *api.Object) error {
	s := api.DaemonSetSpec{Template: defaultTemplate()}
	if err := decodeStrict(o.Spec, &s, "spec"); err != nil {
		return err
	}
	if s.Template.Spec.Host != "" {
		return fmt.Errorf("spec.template.spec.host: a DaemonSet runs one VM on every matching host; choose hosts with hostSelector (nodeSelector) instead: %w", api.ErrInvalid)
	}
	if err := validateWorkload(ref, workloadShape{Pool: s.Pool, Selector: s.Selector, Template: &s.Template, HA: s.HA}); err != nil {
		return err
	}
	o.SetSpec(s)
	return nil
}

func (daemonSet) admitCreate(t *Txn, _ api.Ref, o *api.Object) error {
	var s api.DaemonSetSpec
	_ = o.DecodeSpec(&s)
	return admitWorkload(t, s.Pool, false)
}

func (daemonSet) admitChange(_ *Txn, _ api.Ref, cur, o *api.Object) (string, error) {
	var old, s api.DaemonSetSpec
	_ = cur.DecodeSpec(&old)
	_ = o.DecodeSpec(&s)
	return "", immutable(old.Pool, s.Pool, old.Selector, s.Selector)
}

func (daemonSet) admitRemove(t *Txn, _ api.Ref, cur *api.Object, _ RemoveOptions) error {
	return removeOwned(t, cur.Path)
}
