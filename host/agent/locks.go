package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/podsphere/podsphere/api"
)

// acquire takes the VM's HA lock before a power-on. A lock this host
// cannot take alone (lapsed, released by its isolation response, last held
// by another host) is taken only once vcenter, asked now, still places the
// VM here powered on: an agent cut off from vcenter must not undo what HA
// decided meanwhile. A lock another host renewed recently is never taken.
func (r *reconciler) acquire(ctx context.Context, act Action) error {
	l := r.a.cfg.Locks
	if l == nil {
		return nil
	}
	err := l.Acquire(act.ID, act.Path, time.Now(), false)
	if err == nil || !errors.Is(err, api.ErrConflict) {
		return err
	}
	o, gerr := r.c.Get(ctx, act.Path)
	if gerr != nil {
		return fmt.Errorf("%w (vcenter cannot confirm it is placed here: %v)", err, gerr)
	}
	var spec api.VMSpec
	if o.UID != act.ID || o.DecodeSpec(&spec) != nil || spec.Host != r.a.host || spec.PowerState != api.PoweredOn || spec.Migration != nil {
		return err
	}
	return l.Acquire(act.ID, act.Path, time.Now(), true)
}

// release removes the VM's lock after it was stopped or deleted normally.
func (r *reconciler) release(act Action) error {
	if l := r.a.cfg.Locks; l != nil {
		return l.Release(act.ID)
	}
	return nil
}
