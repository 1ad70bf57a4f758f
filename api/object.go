// Package api holds the object types shared by vcenter, host agents and psc.
// It owns no behaviour beyond validation of the shapes themselves, so every
// side can import it without importing vcenter's server.
package api

import (
	"encoding/json"
	"time"
)

// Kinds of inventory objects.
const (
	KindDatacenter     = "Datacenter"
	KindCluster        = "Cluster"
	KindHost           = "HostSystem"
	KindResourcePool   = "ResourcePool"
	KindVirtualMachine = "VirtualMachine"
	KindEvent          = "Event"
	KindTask           = "Task"
	KindImage          = "Image"
)

// Kinds lists every kind the store accepts, in display order.
var Kinds = []string{KindDatacenter, KindCluster, KindHost, KindResourcePool, KindVirtualMachine,
	KindDeployment, KindReplicaSet, KindDaemonSet, KindJob, KindAutoscaler, KindService, KindIngress, KindEvent, KindTask, KindImage, KindHADrill}

// Meta is the part every object has. Path is the object's identity: its
// govc-style inventory path (/dc1/host/c1/Resources/dev).
type Meta struct {
	Kind   string            `json:"kind"`
	Path   string            `json:"path"`
	UID    string            `json:"uid,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// Owner is the inventory path of the workload that made and keeps this
	// object (a ReplicaSet for its VMs, a Deployment for its sets); "" for
	// objects admins own. Deleting the owner deletes what it owns.
	Owner           string `json:"owner,omitempty"`
	ResourceVersion uint64 `json:"resourceVersion,omitempty"`
	// Generation counts the changes of the spec (1 at creation); status
	// writes leave it alone, so a controller's observedGeneration says
	// which spec its status describes.
	Generation int64     `json:"generation,omitempty"`
	Created    time.Time `json:"created,omitzero"`
	Modified   time.Time `json:"modified,omitzero"`
}

// Name is the last element of the object's path.
func (m Meta) Name() string { return Base(m.Path) }

// Object is the stored and transported form of every kind: the metadata plus
// a kind-specific spec (desired state, written by admins) and status
// (observed state, written by vcenter's controllers and host agents).
type Object struct {
	Meta
	Spec   json.RawMessage `json:"spec,omitempty"`
	Status json.RawMessage `json:"status,omitempty"`
}

// Clone returns a deep copy, so cached objects are never shared mutably.
func (o *Object) Clone() *Object {
	if o == nil {
		return nil
	}
	c := *o
	if o.Labels != nil {
		c.Labels = make(map[string]string, len(o.Labels))
		for k, v := range o.Labels {
			c.Labels[k] = v
		}
	}
	c.Spec = append(json.RawMessage(nil), o.Spec...)
	c.Status = append(json.RawMessage(nil), o.Status...)
	return &c
}

// DecodeSpec unmarshals the spec into v (a pointer to the kind's spec type).
func (o *Object) DecodeSpec(v any) error {
	if len(o.Spec) == 0 {
		return nil
	}
	return json.Unmarshal(o.Spec, v)
}

// DecodeStatus unmarshals the status into v.
func (o *Object) DecodeStatus(v any) error {
	if len(o.Status) == 0 {
		return nil
	}
	return json.Unmarshal(o.Status, v)
}

// SetSpec marshals v into the spec.
func (o *Object) SetSpec(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("api: spec does not marshal: " + err.Error()) // our own types always marshal
	}
	o.Spec = b
}

// SetStatus marshals v into the status.
func (o *Object) SetStatus(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("api: status does not marshal: " + err.Error())
	}
	o.Status = b
}

// New builds an object of kind at path with the given spec.
func New(kind, path string, spec any) *Object {
	o := &Object{Meta: Meta{Kind: kind, Path: path}}
	if spec != nil {
		o.SetSpec(spec)
	}
	return o
}

// WatchEvent is one change delivered to a watcher, in revision order.
type WatchEvent struct {
	Type     string  `json:"type"` // ADDED, MODIFIED, DELETED
	Revision uint64  `json:"revision"`
	Object   *Object `json:"object"`
}

// Watch event types.
const (
	Added    = "ADDED"
	Modified = "MODIFIED"
	Deleted  = "DELETED"
)

// List is the answer to a list request: the items and the store revision
// they were read at, from which a watch can continue without a gap.
type List struct {
	Revision uint64    `json:"revision"`
	Items    []*Object `json:"items"`
}
