package controllers

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// JobUser is who the Job controller's actions are recorded as.
const JobUser = "controller:job"

// Job backoff between replacing failed VMs: Kubernetes' 10 s, doubled per
// failure, at most 6 minutes.
const (
	JobBackoffMin = 10 * time.Second
	JobBackoffMax = 6 * time.Minute
)

// Jobs runs each Job's VMs to completion: at most parallelism at once until
// completions have succeeded; the Job fails once more than backoffLimit
// VMs failed or it ran past activeDeadlineSeconds. Finished VMs are kept
// (their logs and exit codes are the Job's record) until the Job is removed.
type Jobs struct {
	inv   *inventory.Inventory
	clock Clock
	rs    *ReplicaSets // member names and refusal bookkeeping are the same

	mu      sync.Mutex
	retryAt map[string]time.Time
	waits   map[string]int
}

// NewJobs makes the controller; seed makes member names reproducible.
func NewJobs(inv *inventory.Inventory, clock Clock, seed uint64) *Jobs {
	if clock == nil {
		clock = realClock{}
	}
	return &Jobs{inv: inv, clock: clock, rs: NewReplicaSets(inv, clock, seed), retryAt: map[string]time.Time{}, waits: map[string]int{}}
}

func (c *Jobs) Name() string { return "job" }

func (c *Jobs) Keys(old, new *api.Object) []string {
	o := new
	if o == nil {
		o = old
	}
	switch o.Kind {
	case api.KindJob:
		return []string{o.Path}
	case api.KindVirtualMachine:
		if memberUnchanged(old, new) {
			return nil
		}
		var keys []string
		for _, v := range []*api.Object{old, new} {
			if v != nil && isKind(v.Owner, api.KindJob) {
				keys = append(keys, v.Owner)
			}
		}
		return keys
	}
	return nil
}

func (c *Jobs) Resync(inv *inventory.Inventory) []string {
	return pathsOf(inv, api.KindJob)
}

func (c *Jobs) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, spec, err := load[api.JobSpec](c.inv, key)
	if obj == nil || err != nil {
		return Result{}, err
	}
	var old api.JobStatus
	_ = obj.DecodeStatus(&old)
	now := c.clock.Now()
	st := api.JobStatus{StartTime: old.StartTime, CompletionTime: old.CompletionTime}
	if st.StartTime.IsZero() {
		st.StartTime = now.UTC()
	}
	var active []member
	var lastFailure time.Time
	for _, vm := range c.inv.List(store.Query{Kind: api.KindVirtualMachine, Filter: func(o *api.Object) bool { return o.Owner == key }}).Items {
		m := member{obj: vm}
		_ = vm.DecodeSpec(&m.spec)
		_ = vm.DecodeStatus(&m.status)
		switch {
		case m.status.Phase == api.PhaseSucceeded:
			st.Succeeded++
		case m.status.Phase == api.PhaseFailed:
			st.Failed++
			if vm.Modified.After(lastFailure) {
				lastFailure = vm.Modified
			}
		case m.spec.Removing:
		default:
			active = append(active, m)
		}
	}
	finished := findCondition(old.Conditions, "Complete") != nil || findCondition(old.Conditions, "Failed") != nil
	res := Result{}
	var cond *api.Condition
	switch {
	case finished:
		st.Conditions = old.Conditions
	case st.Succeeded >= spec.Completions:
		cond = &api.Condition{Type: "Complete", Status: "True", Reason: "Completed",
			Message: fmt.Sprintf("%d of %d completions succeeded", st.Succeeded, spec.Completions)}
	case st.Failed > spec.BackoffLimit:
		cond = &api.Condition{Type: "Failed", Status: "True", Reason: "BackoffLimitExceeded",
			Message: fmt.Sprintf("%d VMs failed, more than backoffLimit %d", st.Failed, spec.BackoffLimit)}
	case spec.ActiveDeadlineSeconds > 0 && now.Sub(st.StartTime) >= time.Duration(spec.ActiveDeadlineSeconds)*time.Second:
		cond = &api.Condition{Type: "Failed", Status: "True", Reason: "DeadlineExceeded",
			Message: fmt.Sprintf("the Job ran longer than activeDeadlineSeconds %d", spec.ActiveDeadlineSeconds)}
	}
	if cond != nil {
		cond.LastTransition = now.UTC()
		st.Conditions = []api.Condition{*cond}
		st.CompletionTime = now.UTC()
		category := "info"
		if cond.Type == "Failed" {
			category = "warning"
		}
		if err := c.inv.Record(JobUser, category, "Job"+cond.Type+"Event", key, "%s", cond.Message); err != nil {
			return Result{}, err
		}
		finished = true
	}
	if finished {
		// Nothing more runs: what is still active is stopped.
		for _, m := range active {
			if _, err := c.inv.Retire(JobUser, m.obj.Path, "its Job has finished"); err != nil && !errors.Is(err, api.ErrNotFound) {
				return Result{}, err
			}
		}
		active = nil
	} else {
		want := min(spec.Parallelism, spec.Completions-st.Succeeded)
		missing := want - len(active)
		c.mu.Lock()
		held := c.retryAt[key]
		c.mu.Unlock()
		if st.Failed > 0 {
			// Failed VMs are replaced after Kubernetes' growing backoff.
			d := JobBackoffMin
			for i := 1; i < st.Failed && d < JobBackoffMax; i++ {
				d *= 2
			}
			if t := lastFailure.Add(min(d, JobBackoffMax)); t.After(held) {
				held = t
			}
		}
		if missing > 0 && now.Before(held) {
			res.RequeueAfter = held.Sub(now)
		} else if missing > 0 {
			set := api.ReplicaSetSpec{Pool: spec.Pool, Template: spec.Template}
			for i := 0; i < missing; i++ {
				vm := c.rs.memberOf(key, obj, set)
				if _, err := c.inv.Create(JobUser, vm); err != nil {
					if !inventory.Refusal(err) {
						return Result{}, err
					}
					c.mu.Lock()
					c.waits[key]++
					d := Backoff(c.waits[key] - 1)
					c.retryAt[key] = now.Add(d)
					c.mu.Unlock()
					st.Waiting = append(st.Waiting, api.MemberWait{VM: vm.Path, Reason: api.SentinelOf(err).Reason, Message: api.Message(err), Since: now, RetryAt: now.Add(d)})
					res.RequeueAfter = d
					break
				}
				active = append(active, member{obj: vm})
			}
			if len(st.Waiting) == 0 {
				c.mu.Lock()
				delete(c.waits, key)
				delete(c.retryAt, key)
				c.mu.Unlock()
			}
		}
		if spec.ActiveDeadlineSeconds > 0 {
			left := time.Duration(spec.ActiveDeadlineSeconds)*time.Second - now.Sub(st.StartTime)
			if res.RequeueAfter == 0 || left < res.RequeueAfter {
				res.RequeueAfter = max(left, time.Millisecond)
			}
		}
	}
	st.Active = len(active)
	_, err = c.inv.WriteStatus(JobUser, key, func(cur *api.Object) (bool, error) {
		var prev api.JobStatus
		_ = cur.DecodeStatus(&prev)
		if reflect.DeepEqual(normalizeJob(prev), normalizeJob(st)) {
			return false, nil
		}
		cur.SetStatus(st)
		return true, nil
	})
	return res, err
}

func normalizeJob(st api.JobStatus) api.JobStatus {
	st.StartTime, st.CompletionTime = st.StartTime.UTC(), st.CompletionTime.UTC()
	st.Waiting = normalizeStatus(api.ReplicaSetStatus{Waiting: st.Waiting}).Waiting
	if len(st.Conditions) == 0 {
		st.Conditions = nil
	}
	for i := range st.Conditions {
		st.Conditions[i].LastTransition = st.Conditions[i].LastTransition.UTC()
	}
	return st
}
