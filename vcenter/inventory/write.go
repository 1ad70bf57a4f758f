package inventory

import (
	"bytes"
	"fmt"
	"time"

	"github.com/podsphere/podsphere/api"
)

// RemoveOptions qualify Remove.
type RemoveOptions struct {
	// ResourceVersion, when not 0, must be the object's current one.
	ResourceVersion uint64
	// Children removes a pool's child pools too (pool.destroy -children).
	Children bool
	// Namespace removes a namespace: its pool (with child pools) and
	// everything in the namespace's folders that runs in that pool, as
	// deleting a Kubernetes Namespace does.
	Namespace bool
}

// validate checks the metadata every object shares and runs the kind's
// prepare step: spec decoded strictly, defaults filled in.
func validate(o *api.Object) (api.Ref, strategy, error) {
	ref, err := api.ParsePath(o.Path)
	if err != nil {
		return ref, nil, err
	}
	if o.Kind == "" {
		return ref, nil, fmt.Errorf("kind is required (the path %s is a %s): %w", o.Path, ref.Kind, api.ErrInvalid)
	}
	if o.Kind != ref.Kind {
		return ref, nil, fmt.Errorf("kind %s does not live at %s (that path is a %s): %w", o.Kind, o.Path, ref.Kind, api.ErrInvalid)
	}
	for k, v := range o.Labels {
		if err := validLabel(k, v); err != nil {
			return ref, nil, err
		}
	}
	if o.Owner != "" {
		if _, err := api.ParsePath(o.Owner); err != nil {
			return ref, nil, fmt.Errorf("owner: %w", err)
		}
	}
	st, err := strategyOf(o.Kind)
	if err != nil {
		return ref, nil, err
	}
	return ref, st, st.prepare(ref, o)
}

// Create validates, admits and writes a new object on behalf of user.
func (inv *Inventory) Create(user string, o *api.Object) (*api.Object, error) {
	started := inv.now()
	o.ResourceVersion, o.UID, o.Status, o.Generation = 0, "", nil, 1
	o.Created, o.Modified = time.Time{}, time.Time{}
	ref, st, err := validate(o)
	if err != nil {
		return nil, err
	}
	n := st.names()
	var out *api.Object
	refusedEvent := "AdmissionRefusedEvent"
	err = inv.Update(user, func(t *Txn) error {
		if ref.Kind != api.KindDatacenter && ref.Datacenter != "" {
			if _, err := mustExist(t, "/"+ref.Datacenter, "datacenter"); err != nil {
				return err
			}
		}
		if err := st.admitCreate(t, ref, o); err != nil {
			return err
		}
		var err error
		if out, err = t.Create(o); err != nil {
			return err
		}
		if err := t.Event("info", n.createdEvent, o.Path, "%s %s created", n.word, o.Path); err != nil {
			return err
		}
		if o.Kind == api.KindVirtualMachine {
			refusedEvent = "VmFailedToPowerOnEvent" // the only refusal left is the power-on's
		}
		if out, err = st.created(t, out); err != nil {
			return err
		}
		return t.Task(n.createTask, o.Path, started, nil)
	})
	if err != nil {
		if Refusal(err) {
			return nil, inv.Refuse(user, n.createTask, o.Path, refusedEvent, started, err)
		}
		return nil, err
	}
	return out, nil
}

// Change validates and applies an update of labels and spec. The status is
// never taken from the request: it has its own owners.
func (inv *Inventory) Change(user string, o *api.Object) (*api.Object, error) {
	started := inv.now()
	o.Status = nil
	ref, st, err := validate(o)
	if err != nil {
		return nil, err
	}
	n := st.names()
	var out *api.Object
	err = inv.Update(user, func(t *Txn) error {
		cur, err := t.Get(o.Path)
		if err != nil {
			return err
		}
		if o.ResourceVersion != cur.ResourceVersion {
			return fmt.Errorf("%s has been modified (resourceVersion %d, you sent %d): re-read and try again: %w", o.Path, cur.ResourceVersion, o.ResourceVersion, api.ErrConflict)
		}
		o.Status, o.UID, o.Created = cur.Status, cur.UID, cur.Created
		o.Generation = cur.Generation
		extra, err := st.admitChange(t, ref, cur, o)
		if err != nil {
			return err
		}
		if !bytes.Equal(o.Spec, cur.Spec) {
			o.Generation++
		}
		if out, err = t.Update(o); err != nil {
			return err
		}
		if err := t.Event("info", n.changedEvent, o.Path, "%s %s reconfigured%s", n.word, o.Path, extra); err != nil {
			return err
		}
		if out, err = st.changed(t, cur, out); err != nil {
			return err
		}
		return t.Task(n.changeTask, o.Path, started, nil)
	})
	if err != nil {
		if Refusal(err) {
			return nil, inv.Refuse(user, n.changeTask, o.Path, "AdmissionRefusedEvent", started, err)
		}
		return nil, err
	}
	return out, nil
}

// Remove deletes an object after checking what depends on it.
func (inv *Inventory) Remove(user, path string, opt RemoveOptions) error {
	started := inv.now()
	ref, err := api.ParsePath(path)
	if err != nil {
		return err
	}
	st, err := strategyOf(ref.Kind)
	if err != nil {
		return err
	}
	n := st.names()
	return inv.Update(user, func(t *Txn) error {
		cur, err := t.Get(path)
		if err != nil {
			return err
		}
		if opt.ResourceVersion != 0 && opt.ResourceVersion != cur.ResourceVersion {
			return fmt.Errorf("%s has been modified (resourceVersion %d, you sent %d): %w", path, cur.ResourceVersion, opt.ResourceVersion, api.ErrConflict)
		}
		if err := st.admitRemove(t, ref, cur, opt); err != nil {
			return err
		}
		if err := t.Delete(path, 0); err != nil {
			return err
		}
		if err := t.Event("info", n.goneEvent, path, "%s %s removed", n.word, path); err != nil {
			return err
		}
		return t.Task(n.removeTask, path, started, nil)
	})
}

// SetStatus applies a status report of the object's status owner (a host
// agent) without touching spec: the kind's strategy takes only the fields
// that owner owns.
func (inv *Inventory) SetStatus(user string, o *api.Object) (*api.Object, error) {
	if _, err := api.ParsePath(o.Path); err != nil {
		return nil, err
	}
	var out *api.Object
	err := inv.Update(user, func(t *Txn) error {
		cur, err := t.Get(o.Path)
		if err != nil {
			return err
		}
		if o.ResourceVersion != 0 && o.ResourceVersion != cur.ResourceVersion {
			return fmt.Errorf("%s has been modified (resourceVersion %d, you sent %d): %w", o.Path, cur.ResourceVersion, o.ResourceVersion, api.ErrConflict)
		}
		st, err := strategyOf(cur.Kind)
		if err != nil {
			return err
		}
		if err := st.report(t, cur, o.Status); err != nil {
			return err
		}
		out, err = t.Update(cur)
		return err
	})
	return out, err
}

// WriteStatus replaces the status of the object at path with what fn makes
// of it, on behalf of a vcenter component (a controller): the status of
// workloads is theirs. fn sees the current object; returning false writes
// nothing (the status did not change).
func (inv *Inventory) WriteStatus(user, path string, fn func(cur *api.Object) (bool, error)) (*api.Object, error) {
	var out *api.Object
	err := inv.Update(user, func(t *Txn) error {
		cur, err := t.Get(path)
		if err != nil {
			return err
		}
		changed, err := fn(cur)
		if err != nil || !changed {
			out = cur
			return err
		}
		out, err = t.Update(cur)
		return err
	})
	return out, err
}
