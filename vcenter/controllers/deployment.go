package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// DeploymentUser is who the Deployment controller's actions are recorded as.
const DeploymentUser = "controller:deployment"

// TemplateHashLabel is the label the Deployment controller adds to each of
// its replica sets' selector and template, as Kubernetes' pod-template-hash:
// the sets of one Deployment never select each other's VMs.
const TemplateHashLabel = "pod-template-hash"

// Deployments rolls templates out: one ReplicaSet per template revision,
// named NAME-HASH; the newest set grows and the older ones shrink within
// maxSurge and maxUnavailable (or, with Recreate, the old ones go first).
//
// Our promise is stronger than Kubernetes': at no moment are more than
// replicas + maxSurge VMs of a Deployment powered on, counting VMs still
// stopping. A set counts for the larger of its desired replicas and its
// VMs that are on or not yet off, and the new set grows only within that
// total; the replica-set controller creates no more than its set's
// replicas and retired members count until their host reports them off.
type Deployments struct {
	inv   *inventory.Inventory
	clock Clock

	mu      sync.Mutex
	owner   map[string]string // replica set path -> Deployment path
	decoded vmCache           // VMs' spec and status by version
}

// NewDeployments makes the controller.
func NewDeployments(inv *inventory.Inventory, clock Clock) *Deployments {
	if clock == nil {
		clock = realClock{}
	}
	return &Deployments{inv: inv, clock: clock, owner: map[string]string{}}
}

func (c *Deployments) Name() string { return "deployment" }

// Keys: a Deployment; for its replica sets and their VMs, the Deployment.
func (c *Deployments) Keys(old, new *api.Object) []string {
	o := new
	if o == nil {
		o = old
	}
	switch o.Kind {
	case api.KindDeployment:
		return []string{o.Path}
	case api.KindReplicaSet:
		if !isKind(o.Owner, api.KindDeployment) {
			return nil
		}
		c.mu.Lock()
		if new == nil {
			delete(c.owner, o.Path)
		} else {
			c.owner[o.Path] = o.Owner
		}
		c.mu.Unlock()
		return []string{o.Owner}
	case api.KindVirtualMachine:
		if memberUnchanged(old, new) {
			return nil
		}
		if new == nil {
			c.decoded.forget(old.Path)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		var keys []string
		for _, v := range []*api.Object{old, new} {
			if v != nil && v.Owner != "" {
				if d, ok := c.owner[v.Owner]; ok {
					keys = append(keys, d)
				}
			}
		}
		return keys
	}
	return nil
}

func (c *Deployments) Resync(inv *inventory.Inventory) []string {
	// List before locking: the store's hook takes c.mu under the store's lock.
	sets := inv.List(store.Query{Kind: api.KindReplicaSet}).Items
	c.mu.Lock()
	for _, rs := range sets {
		if isKind(rs.Owner, api.KindDeployment) {
			c.owner[rs.Path] = rs.Owner
		}
	}
	c.mu.Unlock()
	var keys []string
	for _, o := range inv.List(store.Query{Kind: api.KindDeployment}).Items {
		keys = append(keys, o.Path)
	}
	return keys
}

// revisionSet is one of a Deployment's replica sets with its VMs counted.
type revisionSet struct {
	obj  *api.Object
	spec api.ReplicaSetSpec
	// vms are the set's members that are on or not yet off (retired ones
	// count until their host reports them off).
	vms       int
	members   int // not being removed
	ready     int
	available int
}

// size is what the set may have powered on: the larger of what it is told
// to keep and what it still has.
func (r revisionSet) size() int { return max(r.spec.Replicas, r.vms) }

// TemplateHash names a template revision: stable for equal templates.
func TemplateHash(t api.VMTemplate) string {
	b, _ := json.Marshal(t)
	h := fnv.New64a()
	h.Write(b)
	v := h.Sum64()
	out := make([]byte, 10)
	for i := range out {
		out[i] = nameChars[v%uint64(len(nameChars))]
		v /= uint64(len(nameChars))
	}
	return string(out)
}

func (c *Deployments) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, d, err := load[api.DeploymentSpec](c.inv, key)
	if obj == nil || err != nil {
		return Result{}, err // its sets and VMs went with it
	}
	now := c.clock.Now()
	sets := c.sets(key, now, d.MinReadySeconds)
	hash := TemplateHash(d.Template)
	var newRS *revisionSet
	var olds []*revisionSet
	maxRev := int64(0)
	for i := range sets {
		maxRev = max(maxRev, sets[i].spec.Revision)
		if sets[i].obj.Labels[TemplateHashLabel] == hash {
			newRS = &sets[i]
		} else {
			olds = append(olds, &sets[i])
		}
	}

	// HA settings are no rollout: every revision's set takes them at once,
	// paused or not, and passes them on to its members in place.
	for i := range sets {
		if err := c.syncHA(key, d.HA, &sets[i]); err != nil {
			return Result{}, err
		}
	}

	if d.Paused {
		// Nothing rolls while paused; the status describes the newest set.
		if newRS == nil && len(olds) > 0 {
			newRS, olds = olds[len(olds)-1], olds[:len(olds)-1]
		}
		return Result{}, c.writeStatus(key, obj, d, newRS, olds, now, false)
	}

	// The set of the current template: made if new (revision max+1), or,
	// after a rollback to an old template, given the newest revision again.
	if newRS == nil {
		initial := 0 // with old VMs around, the strategy grows it
		if len(olds) == 0 {
			initial = d.Replicas
		}
		rs, err := c.createSet(key, obj, d, hash, maxRev+1, initial)
		if err != nil {
			return Result{}, err
		}
		newRS = &revisionSet{obj: rs}
		_ = rs.DecodeSpec(&newRS.spec)
	} else if newRS.spec.Revision < maxRev {
		if err := c.setReplicas(newRS, newRS.spec.Replicas, maxRev+1, fmt.Sprintf("revision %d is current again (rollback)", maxRev+1)); err != nil {
			return Result{}, err
		}
	}

	var err2 error
	switch d.Strategy.Type {
	case api.Recreate:
		err2 = c.recreate(d, newRS, olds)
	default:
		err2 = c.roll(d, newRS, olds)
	}
	if err2 != nil {
		return Result{}, err2
	}
	if err := c.cleanup(d, olds); err != nil {
		return Result{}, err
	}
	complete := newRS.available >= d.Replicas && newRS.members == d.Replicas && total(olds) == 0
	if err := c.writeStatus(key, obj, d, newRS, olds, now, complete); err != nil {
		return Result{}, err
	}
	res := Result{}
	if !complete {
		// Look again when the progress deadline would pass without progress.
		res.RequeueAfter = time.Duration(d.ProgressDeadlineSeconds) * time.Second
	}
	return res, nil
}

func total(sets []*revisionSet) int {
	n := 0
	for _, s := range sets {
		n += s.size()
	}
	return n
}

// roll makes one step of a rolling update: grow the new set within
// replicas + maxSurge, then shrink the old ones while replicas -
// maxUnavailable stay available (unavailable old VMs go first, they cost
// no availability).
func (c *Deployments) roll(d api.DeploymentSpec, newRS *revisionSet, olds []*revisionSet) error {
	surge, _ := d.Strategy.MaxSurge.Scaled(d.Replicas, true)
	unavailable, _ := d.Strategy.MaxUnavailable.Scaled(d.Replicas, false)
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	all := total(olds) + newRS.size()
	maxTotal := d.Replicas + surge

	// Scaled down (or surplus from a previous scale): old sets shrink first.
	if excess := all - maxTotal; excess > 0 {
		for _, o := range oldestFirst(olds) {
			cut := min(excess, o.spec.Replicas)
			if cut > 0 {
				if err := c.setReplicas(o, o.spec.Replicas-cut, 0, "the Deployment was scaled down"); err != nil {
					return err
				}
				excess -= cut
				all -= cut
			}
		}
	}
	if newRS.spec.Replicas > d.Replicas {
		if err := c.setReplicas(newRS, d.Replicas, 0, "the Deployment was scaled down"); err != nil {
			return err
		}
	}

	// Grow the new set within the surge.
	if want := d.Replicas - newRS.spec.Replicas; want > 0 {
		if up := min(want, maxTotal-all); up > 0 {
			if err := c.setReplicas(newRS, newRS.spec.Replicas+up, 0, "rolling update: new revision scaled up"); err != nil {
				return err
			}
		}
	}

	// Shrink the old sets within maxUnavailable.
	minAvailable := d.Replicas - unavailable
	available := newRS.available
	for _, o := range olds {
		available += o.available
	}
	newUnavailable := max(newRS.spec.Replicas-newRS.available, 0)
	// Unavailable old VMs first: removing them costs no availability.
	cleanup := max(total(olds)+newRS.size()-minAvailable-newUnavailable, 0)
	for _, o := range oldestFirst(olds) {
		if cleanup == 0 {
			break
		}
		bad := max(o.spec.Replicas-o.available, 0)
		cut := min(bad, cleanup)
		if cut > 0 {
			if err := c.setReplicas(o, o.spec.Replicas-cut, 0, "rolling update: unavailable old VMs removed"); err != nil {
				return err
			}
			cleanup -= cut
		}
	}
	canRemove := available - minAvailable
	for _, o := range oldestFirst(olds) {
		if canRemove <= 0 {
			break
		}
		cut := min(canRemove, o.spec.Replicas)
		if cut > 0 {
			o.available = min(o.available, o.spec.Replicas-cut)
			if err := c.setReplicas(o, o.spec.Replicas-cut, 0, "rolling update: old revision scaled down"); err != nil {
				return err
			}
			canRemove -= cut
		}
	}
	return nil
}

// recreate removes every old VM before the new set grows.
func (c *Deployments) recreate(d api.DeploymentSpec, newRS *revisionSet, olds []*revisionSet) error {
	for _, o := range olds {
		if o.spec.Replicas > 0 {
			if err := c.setReplicas(o, 0, 0, "Recreate: old revision removed before the new one starts"); err != nil {
				return err
			}
		}
	}
	if total(olds) > 0 {
		return nil // wait until every old VM is off
	}
	if newRS.spec.Replicas != d.Replicas {
		return c.setReplicas(newRS, d.Replicas, 0, "Recreate: new revision scaled up")
	}
	return nil
}

// cleanup removes empty old sets beyond revisionHistoryLimit, oldest first.
func (c *Deployments) cleanup(d api.DeploymentSpec, olds []*revisionSet) error {
	var empty []*revisionSet
	for _, o := range olds {
		if o.spec.Replicas == 0 && o.vms == 0 {
			empty = append(empty, o)
		}
	}
	sort.Slice(empty, func(i, j int) bool { return empty[i].spec.Revision < empty[j].spec.Revision })
	for len(empty) > d.RevisionHistoryLimit {
		if err := c.inv.Remove(DeploymentUser, empty[0].obj.Path, inventory.RemoveOptions{ResourceVersion: empty[0].obj.ResourceVersion}); err != nil && !errors.Is(err, api.ErrNotFound) {
			return err
		}
		empty = empty[1:]
	}
	return nil
}

func oldestFirst(olds []*revisionSet) []*revisionSet {
	out := append([]*revisionSet(nil), olds...)
	sort.Slice(out, func(i, j int) bool { return out[i].spec.Revision < out[j].spec.Revision })
	return out
}

// sets lists the Deployment's replica sets with their VMs counted.
func (c *Deployments) sets(key string, now time.Time, minReady int) []revisionSet {
	var out []revisionSet
	for _, rs := range c.inv.Owned(key, store.Query{Kind: api.KindReplicaSet}) {
		r := revisionSet{obj: rs}
		_ = rs.DecodeSpec(&r.spec)
		for _, vm := range c.inv.Owned(rs.Path, store.Query{Kind: api.KindVirtualMachine}) {
			m := member{obj: vm}
			m.spec, m.status = c.decoded.decode(vm)
			if !m.spec.Removing || m.running() {
				r.vms++
			}
			if m.spec.Removing {
				continue
			}
			r.members++
			if m.status.Ready && m.running() {
				r.ready++
			}
			if m.available(now, minReady) {
				r.available++
			}
		}
		// Members beyond the set's replicas are about to be retired (the
		// unavailable ones first): they are not counted as available, or two
		// passes before the set acts would both count them and remove twice.
		r.available = min(r.available, r.spec.Replicas)
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].spec.Revision < out[j].spec.Revision })
	return out
}

// syncHA copies the Deployment's HA policy onto one of its sets.
func (c *Deployments) syncHA(key string, h api.HAPolicy, r *revisionSet) error {
	if r.spec.HA == h {
		return nil
	}
	cur, err := c.inv.Get(r.obj.Path)
	if err != nil {
		return err
	}
	var spec api.ReplicaSetSpec
	_ = cur.DecodeSpec(&spec)
	spec.HA = h
	cur.SetSpec(spec)
	out, err := c.inv.Change(DeploymentUser, cur)
	if err != nil {
		return fmt.Errorf("Deployment %s: HA settings of replica set %s: %w", key, cur.Path, err)
	}
	r.obj, r.spec = out, spec
	return nil
}

// createSet makes the replica set of the current template.
func (c *Deployments) createSet(key string, obj *api.Object, d api.DeploymentSpec, hash string, revision int64, replicas int) (*api.Object, error) {
	ref, _ := api.ParsePath(key)
	tmpl := d.Template
	tmpl.Labels = maps.Clone(tmpl.Labels)
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[TemplateHashLabel] = hash
	sel := d.Selector
	sel.MatchLabels = maps.Clone(sel.MatchLabels)
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[TemplateHashLabel] = hash
	spec := api.ReplicaSetSpec{Pool: d.Pool, Replicas: replicas, Selector: sel, Template: tmpl,
		MinReadySeconds: d.MinReadySeconds, HA: d.HA, Revision: revision}
	rs := api.New(api.KindReplicaSet, api.NamespacedPath(api.KindReplicaSet, ref.Datacenter, ref.Namespace, obj.Name()+"-"+hash), spec)
	rs.Labels = maps.Clone(tmpl.Labels)
	rs.Owner = key
	out, err := c.inv.Create(DeploymentUser, rs)
	if errors.Is(err, api.ErrConflict) {
		// Left by an earlier pass (or a set of the same name not ours).
		cur, gerr := c.inv.Get(rs.Path)
		if gerr == nil && cur.Owner == key {
			return cur, nil
		}
		return nil, fmt.Errorf("Deployment %s: replica set %s exists and is not the Deployment's: %w", key, rs.Path, api.ErrConflict)
	}
	if err != nil {
		return nil, err
	}
	_ = c.inv.Record(DeploymentUser, "info", "DeploymentRevisionEvent", key, "revision %d: replica set %s for the new template, %d replicas to start with", revision, out.Name(), replicas)
	return out, nil
}

// setReplicas changes a set's replicas (and revision, when not 0).
func (c *Deployments) setReplicas(r *revisionSet, replicas int, revision int64, why string) error {
	cur, err := c.inv.Get(r.obj.Path)
	if err != nil {
		return err
	}
	var spec api.ReplicaSetSpec
	_ = cur.DecodeSpec(&spec)
	if spec.Replicas == replicas && (revision == 0 || spec.Revision == revision) {
		return nil
	}
	from := spec.Replicas
	spec.Replicas = replicas
	if revision != 0 {
		spec.Revision = revision
	}
	cur.SetSpec(spec)
	out, err := c.inv.Change(DeploymentUser, cur)
	if err != nil {
		return err
	}
	r.obj, r.spec = out, spec
	if from != replicas {
		return c.inv.Record(DeploymentUser, "info", "DeploymentScaledEvent", cur.Owner, "replica set %s scaled from %d to %d: %s", cur.Name(), from, replicas, why)
	}
	return nil
}

// writeStatus records progress: counts, the Available and Progressing
// conditions, and a stuck rollout once no progress was made for the
// progress deadline.
func (c *Deployments) writeStatus(key string, obj *api.Object, d api.DeploymentSpec, newRS *revisionSet, olds []*revisionSet, now time.Time, complete bool) error {
	st := api.DeploymentStatus{ObservedGeneration: obj.Generation}
	all := append([]*revisionSet{}, olds...)
	if newRS != nil {
		all = append(all, newRS)
		st.Revision = newRS.spec.Revision
		st.UpdatedReplicas = newRS.members
	}
	for _, r := range all {
		st.Replicas += r.members
		st.ReadyReplicas += r.ready
		st.AvailableReplicas += r.available
		var rst api.ReplicaSetStatus
		_ = r.obj.DecodeStatus(&rst)
		st.Waiting = append(st.Waiting, rst.Waiting...)
	}
	st.UnavailableReplicas = max(d.Replicas-st.AvailableReplicas, 0)
	unavailable := 0
	if d.Strategy.MaxUnavailable != nil {
		unavailable, _ = d.Strategy.MaxUnavailable.Scaled(d.Replicas, false)
	}
	stuck := ""
	_, err := c.inv.WriteStatus(DeploymentUser, key, func(cur *api.Object) (bool, error) {
		var old api.DeploymentStatus
		_ = cur.DecodeStatus(&old)
		avail := api.Condition{Type: "Available", Status: "False", Reason: "MinimumReplicasUnavailable",
			Message: fmt.Sprintf("%d of %d available, %d needed", st.AvailableReplicas, d.Replicas, d.Replicas-unavailable)}
		if st.AvailableReplicas >= d.Replicas-unavailable {
			avail = api.Condition{Type: "Available", Status: "True", Reason: "MinimumReplicasAvailable",
				Message: fmt.Sprintf("%d of %d available", st.AvailableReplicas, d.Replicas)}
		}
		prog := c.progressing(old, st, d, complete, now)
		st.Conditions = []api.Condition{setCondition(old.Conditions, avail, now), prog}
		if reflect.DeepEqual(normalizeDeployment(old), normalizeDeployment(st)) {
			return false, nil
		}
		if prev := findCondition(old.Conditions, "Progressing"); prog.Reason == "ProgressDeadlineExceeded" && (prev == nil || prev.Reason != prog.Reason) {
			stuck = prog.Message
		}
		cur.SetStatus(st)
		return true, nil
	})
	if err != nil {
		return err
	}
	if stuck != "" {
		return c.inv.Record(DeploymentUser, "warning", "DeploymentProgressDeadlineExceededEvent", key, "%s", stuck)
	}
	return nil
}

// progressing is the Progressing condition: True while the rollout moves
// or is complete, False with ProgressDeadlineExceeded once it has not moved
// for progressDeadlineSeconds.
func (c *Deployments) progressing(old, st api.DeploymentStatus, d api.DeploymentSpec, complete bool, now time.Time) api.Condition {
	prev := findCondition(old.Conditions, "Progressing")
	moved := prev == nil || old.UpdatedReplicas != st.UpdatedReplicas || old.ReadyReplicas != st.ReadyReplicas ||
		old.AvailableReplicas != st.AvailableReplicas || old.Revision != st.Revision || old.Replicas != st.Replicas
	var cond api.Condition
	switch {
	case d.Paused:
		cond = api.Condition{Type: "Progressing", Status: "Unknown", Reason: "DeploymentPaused",
			Message: "the rollout is paused: resume it to roll out template changes"}
	case complete:
		cond = api.Condition{Type: "Progressing", Status: "True", Reason: "NewReplicaSetAvailable",
			Message: fmt.Sprintf("revision %d is rolled out: %d of %d available", st.Revision, st.AvailableReplicas, d.Replicas)}
	case moved:
		cond = api.Condition{Type: "Progressing", Status: "True", Reason: "ReplicaSetUpdated",
			Message: fmt.Sprintf("revision %d is rolling out: %d updated, %d available of %d", st.Revision, st.UpdatedReplicas, st.AvailableReplicas, d.Replicas)}
	default:
		cond = *prev
		if cond.Reason == "ReplicaSetUpdated" && now.Sub(cond.LastUpdate) >= time.Duration(d.ProgressDeadlineSeconds)*time.Second {
			cond = api.Condition{Type: "Progressing", Status: "False", Reason: "ProgressDeadlineExceeded",
				Message: fmt.Sprintf("revision %d made no progress for %ds (progressDeadlineSeconds): %d updated, %d available of %d",
					st.Revision, d.ProgressDeadlineSeconds, st.UpdatedReplicas, st.AvailableReplicas, d.Replicas), LastUpdate: cond.LastUpdate}
		}
	}
	out := setCondition(old.Conditions, cond, now)
	switch {
	case moved || complete && (prev == nil || prev.Reason != cond.Reason):
		out.LastUpdate = now.UTC()
	case prev != nil:
		// Nothing moved, and a rollout that was complete still is: the
		// status stays as it is (with a real clock a new LastUpdate at
		// every pass was a write that queued the Deployment again, for ever).
		out.LastUpdate = prev.LastUpdate
	}
	if out.Reason != "" && prev != nil && prev.Reason != out.Reason && prev.Status == out.Status {
		out.LastTransition = now.UTC()
	}
	return out
}

func findCondition(cs []api.Condition, typ string) *api.Condition {
	for i := range cs {
		if cs[i].Type == typ {
			return &cs[i]
		}
	}
	return nil
}

func normalizeDeployment(st api.DeploymentStatus) api.DeploymentStatus {
	st.Waiting = normalizeStatus(api.ReplicaSetStatus{Waiting: st.Waiting}).Waiting
	cs := make([]api.Condition, len(st.Conditions))
	for i, c := range st.Conditions {
		c.LastTransition, c.LastUpdate = c.LastTransition.UTC(), c.LastUpdate.UTC()
		cs[i] = c
	}
	st.Conditions = cs
	return st
}
