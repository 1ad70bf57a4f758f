package inventory

import (
	"fmt"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/store"
)

// datacenter is a folder root: it holds clusters, VMs and workloads.
type datacenter struct{ base }

func init() { register(api.KindDatacenter, datacenter{}) }

func (datacenter) names() kindNames {
	return kindNames{word: api.KindDatacenter, createTask: "CreateDatacenter", changeTask: "ReconfigureDatacenter", removeTask: "Destroy_Task",
		createdEvent: "DatacenterCreatedEvent", changedEvent: "DatacenterReconfiguredEvent", goneEvent: "DatacenterDestroyedEvent"}
}

func (datacenter) prepare(_ api.Ref, o *api.Object) error {
	var s api.DatacenterSpec
	return decodeStrict(o.Spec, &s, "spec")
}

func (datacenter) admitRemove(t *Txn, _ api.Ref, cur *api.Object, _ RemoveOptions) error {
	if n := len(t.List(store.Query{Prefix: cur.Path})); n > 1 {
		return fmt.Errorf("datacenter %s still holds %d objects: remove them first: %w", cur.Path, n-1, api.ErrConflict)
	}
	return nil
}
