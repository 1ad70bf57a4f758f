package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/runtime"
)

// report writes the status of a desired VM if it changed. s is what the
// runtime has of it (nil: nothing); failed, a step that just failed
// ("step: error"), and step that step.
func (r *reconciler) report(ctx context.Context, d DesiredVM, s *runtime.VMState, failed string, step ActionKind) {
	st := api.VMStatus{
		PowerState:      api.PoweredOff,
		Host:            r.a.host,
		ResetGeneration: d.ResetDone,
		Message:         failed,
	}
	if g, ok := r.resetDone[d.ID]; ok {
		st.ResetGeneration = g
	}
	if s != nil {
		st.PowerState = s.PowerState
		st.BootTime = s.BootTime
		st.IP = s.IP
		st.Restarts = s.Restarts
		st.Containers = s.Containers
		st.Ready = s.Ready && s.PowerState == api.PoweredOn
		if st.Ready {
			st.ReadySince = s.ReadySince
		}
		st.Phase = s.Phase
		if st.Message == "" {
			st.Message = s.Message
		}
		if s.PowerState == api.PoweredOn {
			m := r.a.usage.get(d.ID)
			st.CPUUsageMHz, st.MemUsageMB = m.CPUUsageMHz, m.MemUsageMB
		}
	}
	if d.Migration != "" && st.PowerState != api.PoweredOn && failed == "" {
		// This host's word that it stopped the VM for the migration: what
		// vcenter waits for before the VM starts on its destination.
		st.MigrationStopped = d.Migration
	}
	o := r.vms[d.Path]
	if o == nil {
		return
	}
	cur := r.statusOf(o)
	if d.PowerState == api.PoweredOn && st.PowerState != api.PoweredOn {
		// This host could not power it on: said explicitly (vSphere HA
		// counts it as a failed restart), and kept by the reports between
		// two retries until one powers it on.
		switch {
		case failed != "" && poweringOn(step):
			st.PowerOnFailed = failed
		case failed == "" && cur.Host == r.a.host:
			st.PowerOnFailed = cur.PowerOnFailed
		}
	}
	// A VM that vcenter already sees ready, and that stayed ready, keeps
	// its ReadySince (a restarted agent re-probes and would move it on).
	if st.Ready && cur.Ready && !cur.ReadySince.IsZero() && cur.BootTime.Equal(st.BootTime) &&
		(st.ReadySince.IsZero() || cur.ReadySince.Before(st.ReadySince)) {
		st.ReadySince = cur.ReadySince
	}
	if st.Ready && st.ReadySince.IsZero() {
		st.ReadySince = time.Now().UTC()
	}
	if sameStatus(o, cur, st) {
		return
	}
	if err := r.writeStatus(ctx, o, st); err != nil && ctx.Err() == nil {
		r.a.log.Printf("vm %s: report status: %v", d.Path, err)
	}
}

// poweringOn says whether step is one of those that power a VM on.
func poweringOn(step ActionKind) bool {
	return step == Create || step == Start || step == Restart || step == Recreate
}

// sameStatus compares in JSON form, which is what vcenter stores.
func sameStatus(o *api.Object, cur, st api.VMStatus) bool {
	b, _ := json.Marshal(st)
	if bytes.Equal(o.Status, b) {
		return true // what this host wrote last, as it wrote it: the usual case
	}
	a, _ := json.Marshal(cur)
	return bytes.Equal(a, b)
}

// statusOf is o's status, decoded once per version (desiredOf's cache).
func (r *reconciler) statusOf(o *api.Object) api.VMStatus {
	if dv, ok := r.decoded[o.Path]; ok && dv.uid == o.UID && dv.rv == o.ResourceVersion && o.ResourceVersion != 0 {
		return dv.st
	}
	var st api.VMStatus
	_ = o.DecodeStatus(&st)
	return st
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
			// Moved elsewhere (vSphere HA restarted it on another host while
			// this one was cut off) or replaced: the next pass stops our copy.
			var spec api.VMSpec
			_ = fresh.DecodeSpec(&spec)
			r.a.log.Printf("vm %s: now registered on %s, not here: its status is no longer ours to report", o.Path, spec.Host)
			return nil
		}
		o = fresh
	}
}
