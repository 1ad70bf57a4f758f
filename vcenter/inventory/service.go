package inventory

import (
	"fmt"
	"slices"

	"github.com/podsphere/podsphere/api"
)

// service is a load-balanced name for the VMs of its namespace that its
// selector picks. Its status (the endpoints) is the endpoints
// controller's: clients write only the spec, and no client reports it.
type service struct{ base }

func init() { register(api.KindService, service{}) }

func (service) names() kindNames {
	return kindNames{word: "Service", createTask: "CreateService", changeTask: "ReconfigureService", removeTask: "Destroy_Task",
		createdEvent: "ServiceCreatedEvent", changedEvent: "ServiceReconfiguredEvent", goneEvent: "ServiceRemovedEvent"}
}

func (service) prepare(_ api.Ref, o *api.Object) error {
	var s api.ServiceSpec
	if err := decodeStrict(o.Spec, &s, "spec"); err != nil {
		return err
	}
	keys := make([]string, 0, len(s.Selector))
	for k := range s.Selector {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := validLabel(k, s.Selector[k]); err != nil {
			return fmt.Errorf("spec.selector: %w", err)
		}
	}
	if err := s.Normalize(); err != nil {
		return err
	}
	o.SetSpec(s)
	return nil
}

// admitCreate resolves the Service's cluster and allocates its
// addresses and ports in the transaction that writes it.
func (service) admitCreate(t *Txn, ref api.Ref, o *api.Object) error {
	return admitService(t, ref, nil, o)
}

// admitChange keeps what Kubernetes keeps immutable: an assigned cluster
// IP (clients reach the Service by it) cannot move. A change that leaves
// the cluster IP, node ports or load balancer address out keeps them, as
// re-applying a manifest does in Kubernetes; a type change allocates what
// the new type needs and releases the rest.
func (service) admitChange(t *Txn, ref api.Ref, cur, o *api.Object) (string, error) {
	if err := admitService(t, ref, cur, o); err != nil {
		return "", err
	}
	var was, now api.ServiceSpec
	_ = cur.DecodeSpec(&was)
	_ = o.DecodeSpec(&now)
	if was.ClusterIP != "" && now.ClusterIP != was.ClusterIP && now.Type != api.ServiceExternalName && was.Type != api.ServiceExternalName {
		return "", fmt.Errorf("spec.clusterIP: %q cannot change to %q: clients reach the Service by it; delete and re-create the Service to move it: %w",
			was.ClusterIP, now.ClusterIP, api.ErrInvalid)
	}
	return "", nil
}
