package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/host/runtime"
)

// reconciler is the agent's loop: it mirrors the VMs assigned to this host
// from vcenter's list+watch, runs Plan against the runtime after every batch
// of changes and every StatusInterval, and reports status when it changed.
// Everything runs on one goroutine.
type reconciler struct {
	a  *Agent
	c  *client.Client
	rt runtime.Runtime

	vms map[string]*api.Object // by path: VMs whose spec.host is this host
	// resetDone holds resets carried out that vcenter's copy of the status
	// does not show yet, by ID.
	resetDone map[string]int64
	started   bool // the first pass (adoption) has run
}

func newReconciler(a *Agent, c *client.Client) *reconciler {
	return &reconciler{a: a, c: c, rt: a.cfg.Runtime, vms: map[string]*api.Object{}, resetDone: map[string]int64{}}
}

func (r *reconciler) opts() client.ListOptions {
	return client.ListOptions{Kind: api.KindVirtualMachine, Host: r.a.host}
}

// run lists and watches until ctx ends, re-listing after any break.
func (r *reconciler) run(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		err := r.listAndWatch(ctx, &attempt)
		if ctx.Err() != nil {
			return
		}
		d := r.a.backoff(attempt)
		if errors.Is(err, client.ErrGone) {
			r.a.log.Printf("watch: revision compacted away; re-listing in %v", d.Round(time.Millisecond))
		} else {
			r.a.log.Printf("watch: %v; re-listing in %v", err, d.Round(time.Millisecond))
		}
		if !sleep(ctx, d) {
			return
		}
	}
}

func (r *reconciler) listAndWatch(ctx context.Context, attempt *int) error {
	l, err := r.c.List(ctx, r.opts())
	if err != nil {
		return fmt.Errorf("list VMs of %s: %w", r.a.host, err)
	}
	r.vms = map[string]*api.Object{}
	for _, o := range l.Items {
		r.observe(api.WatchEvent{Type: api.Added, Object: o})
	}
	r.pass(ctx)

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, wait, err := r.c.Watch(wctx, r.opts(), l.Revision)
	if err != nil {
		return fmt.Errorf("watch VMs of %s: %w", r.a.host, err)
	}
	*attempt = 0
	tick := time.NewTicker(r.a.cfg.Timings.StatusInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			r.pass(ctx)
		case ev, ok := <-events:
			// Take the whole batch that is waiting, then reconcile once.
			for ok {
				r.observe(ev)
				select {
				case ev, ok = <-events:
					continue
				default:
				}
				break
			}
			r.pass(ctx)
			if !ok {
				if err := wait(); err != nil {
					return err
				}
				return fmt.Errorf("watch of %s closed: %w", r.a.host, api.ErrUnavailable)
			}
		}
	}
}

// observe applies one list item or watch event to the mirror. A VM whose
// spec.host moved elsewhere leaves the mirror, and the next pass removes it.
func (r *reconciler) observe(ev api.WatchEvent) {
	o := ev.Object
	if o == nil || o.Kind != api.KindVirtualMachine {
		return
	}
	if ev.Type == api.Deleted {
		delete(r.vms, o.Path)
		return
	}
	var spec api.VMSpec
	if err := o.DecodeSpec(&spec); err != nil {
		r.a.log.Printf("vm %s: unreadable spec, ignored: %v", o.Path, err)
		return
	}
	if spec.Host != r.a.host {
		delete(r.vms, o.Path)
		return
	}
	if cur, ok := r.vms[o.Path]; ok && cur.UID == o.UID && cur.ResourceVersion > o.ResourceVersion {
		return // our own status write already gave us something newer
	}
	r.vms[o.Path] = o
}

// desired turns the mirror into Plan's input, sorted by path.
func (r *reconciler) desired() []DesiredVM {
	out := make([]DesiredVM, 0, len(r.vms))
	for _, o := range r.vms {
		var spec api.VMSpec
		var st api.VMStatus
		_ = o.DecodeSpec(&spec) // checked in observe
		_ = o.DecodeStatus(&st)
		id := vmID(o)
		done := st.ResetGeneration
		if g, ok := r.resetDone[id]; ok {
			if g == done {
				delete(r.resetDone, id) // vcenter has it now
			} else {
				done = g
			}
		}
		out = append(out, DesiredVM{
			ID:              id,
			Path:            o.Path,
			PowerState:      spec.PowerState,
			ResetGeneration: spec.ResetGeneration,
			ResetDone:       done,
			Spec: runtime.VMSpec{
				ID:            id,
				Path:          o.Path,
				NumCPU:        spec.NumCPU,
				MemoryMB:      spec.MemoryMB,
				CPU:           spec.CPU,
				Mem:           spec.Mem,
				Containers:    spec.Containers,
				RestartPolicy: spec.RestartPolicy,
			},
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// vmID is the runtime ID of a VM: its UID, stable for the VM's life.
func vmID(o *api.Object) string {
	if o.UID != "" {
		return o.UID
	}
	return o.Path
}

// pass runs one reconcile: plan, act, report.
func (r *reconciler) pass(ctx context.Context) {
	actual, err := r.rt.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.a.log.Printf("runtime %s: list VMs: %v (retrying in %v)", r.rt.Name(), err, r.a.cfg.Timings.StatusInterval)
		}
		return
	}
	desired := r.desired()
	actions := Plan(desired, actual)
	failed := map[string]string{} // ID -> runtime error
	changed := false
	for _, act := range actions {
		if act.Kind == Adopt {
			if !r.started {
				r.a.log.Printf("vm %s: adopted as it runs", act.Path)
			}
			continue
		}
		if _, ok := failed[act.ID]; ok {
			continue // a VM's later steps depend on its earlier ones
		}
		changed = true
		if err := r.apply(ctx, act); err != nil {
			if ctx.Err() != nil {
				return
			}
			failed[act.ID] = fmt.Sprintf("%s: %v", act.Kind, err)
			r.a.log.Printf("vm %s: %s: %v", act.Path, act.Kind, err)
			continue
		}
		r.a.log.Printf("vm %s: %s", act.Path, act.Kind)
	}
	r.started = true
	if changed {
		if actual, err = r.rt.List(ctx); err != nil {
			return
		}
	}
	r.report(ctx, desired, actual, failed)
}

func (r *reconciler) apply(ctx context.Context, act Action) error {
	stop := r.a.cfg.Timings.StopTimeout
	switch act.Kind {
	case Create:
		return r.rt.Create(ctx, *act.Spec)
	case Start:
		if err := r.rt.Start(ctx, act.ID); err != nil {
			return err
		}
	case Stop:
		return r.rt.Stop(ctx, act.ID, stop)
	case Delete:
		delete(r.resetDone, act.ID)
		return r.rt.Delete(ctx, act.ID)
	case Restart:
		if err := r.rt.Stop(ctx, act.ID, stop); err != nil {
			return err
		}
		if err := r.rt.Start(ctx, act.ID); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown step %q", act.Kind)
	}
	r.resetDone[act.ID] = act.ResetGeneration // a fresh boot carries out any pending reset
	return nil
}

// report writes the status of every desired VM whose status changed.
func (r *reconciler) report(ctx context.Context, desired []DesiredVM, actual []runtime.VMState, failed map[string]string) {
	have := make(map[string]runtime.VMState, len(actual))
	for _, s := range actual {
		have[s.ID] = s
	}
	for _, d := range desired {
		st := api.VMStatus{
			PowerState:      api.PoweredOff,
			Host:            r.a.host,
			ResetGeneration: d.ResetDone,
			Message:         failed[d.ID],
		}
		if g, ok := r.resetDone[d.ID]; ok {
			st.ResetGeneration = g
		}
		if s, ok := have[d.ID]; ok {
			st.PowerState = s.PowerState
			st.BootTime = s.BootTime
			st.IP = s.IP
			st.Restarts = s.Restarts
			st.Containers = s.Containers
			if s.PowerState == api.PoweredOn {
				m := r.a.usage.get(d.ID)
				st.CPUUsageMHz, st.MemUsageMB = m.CPUUsageMHz, m.MemUsageMB
			}
		}
		o := r.vms[d.Path]
		if o == nil || sameStatus(o, st) {
			continue
		}
		if err := r.writeStatus(ctx, o, st); err != nil && ctx.Err() == nil {
			r.a.log.Printf("vm %s: report status: %v", d.Path, err)
		}
	}
}

// sameStatus compares in JSON form, which is what vcenter stores.
func sameStatus(o *api.Object, st api.VMStatus) bool {
	var cur api.VMStatus
	if err := o.DecodeStatus(&cur); err != nil {
		return false
	}
	a, _ := json.Marshal(cur)
	b, _ := json.Marshal(st)
	return bytes.Equal(a, b)
}

// writeStatus puts st on the VM, re-reading it after a conflict. A VM that
// was deleted or moved off this host meanwhile is dropped from the mirror.
func (r *reconciler) writeStatus(ctx context.Context, o *api.Object, st api.VMStatus) error {
	const tries = 5
	for i := 0; ; i++ {
		w := o.Clone()
		w.SetStatus(st)
		out, err := r.c.UpdateStatus(ctx, w)
		if err == nil {
			if out.Path == "" {
				out = w // a bare answer: keep what we wrote
			}
			r.vms[o.Path] = out
			return nil
		}
		switch {
		case errors.Is(err, api.ErrNotFound):
			delete(r.vms, o.Path)
			return nil
		case !errors.Is(err, api.ErrConflict) || i == tries-1:
			return err
		}
		fresh, err := r.c.Get(ctx, o.Path)
		if errors.Is(err, api.ErrNotFound) {
			delete(r.vms, o.Path)
			return nil
		}
		if err != nil {
			return err
		}
		r.observe(api.WatchEvent{Type: api.Modified, Object: fresh})
		if r.vms[o.Path] == nil || vmID(fresh) != vmID(o) {
			return nil // moved elsewhere or replaced: the next pass sorts it out
		}
		o = fresh
	}
}
