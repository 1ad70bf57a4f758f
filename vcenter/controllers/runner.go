// Package controllers runs vcenter's controllers: each watches the kinds it
// cares about and reconciles one object at a time toward its spec, writing
// through vcenter/inventory like any admin request, so every automatic
// action is admitted the same way and leaves an event naming the
// controller ("controller:replicaset").
//
// Controllers are level-triggered: a key in the queue means "look at this
// object again", never "this happened". At start the runner enqueues every
// object of the watched kinds, so a vcenter restart loses nothing: it
// re-lists and converges. Each controller has its own queue with one entry
// per key (a burst of changes to one object is one reconcile) and a
// per-key exponential backoff for failures.
package controllers

import (
	"container/heap"
	"context"
	"errors"
	"log"
	"maps"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// Backoff bounds for a key whose reconcile failed: the first retry after
// BackoffMin, doubling up to BackoffMax, as Kubernetes' controllers do
// (5 ms to 1000 s there; our failures are admission refusals and conflicts,
// so seconds are the useful scale).
const (
	BackoffMin = 1 * time.Second
	BackoffMax = 5 * time.Minute
)

// Clock is the time the runner and its controllers see; tests inject one.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Result is what a reconcile asks of the runner besides success.
type Result struct {
	// RequeueAfter > 0 looks at the key again after that long (a member
	// becoming available, a refused power-on's retry).
	RequeueAfter time.Duration
}

// Controller is one reconciler.
type Controller interface {
	// Name is the controller's name in events and logs ("replicaset").
	Name() string
	// Keys maps a changed object (old or new; either may be nil) to the
	// keys to reconcile: the object itself if it is the controller's kind,
	// its owner if it is a member. Called under the store's write lock:
	// it must be quick and must not call the inventory.
	Keys(old, new *api.Object) []string
	// Resync lists every key worth reconciling at start.
	Resync(inv *inventory.Inventory) []string
	// Reconcile brings one key toward its spec. An error retries the key
	// with backoff.
	Reconcile(ctx context.Context, key string) (Result, error)
}

// Runner runs controllers over one inventory.
type Runner struct {
	inv   *inventory.Inventory
	clock Clock
	log   *log.Logger
	ctrls []*queue
	after func(controller, key string)

	mu     sync.Mutex
	passes uint64 // reconciles done, for tests to wait on
}

// Options configure a Runner.
type Options struct {
	Clock  Clock
	Logger *log.Logger
	// AfterReconcile, when set, runs after every reconcile (tests check
	// invariants there, at every step rather than only at the end).
	AfterReconcile func(controller, key string)
}

// New makes a runner for controllers over inv. Call Start (production) or
// Drain (tests) to run them.
func New(inv *inventory.Inventory, opt Options, ctrls ...Controller) *Runner {
	if opt.Clock == nil {
		opt.Clock = realClock{}
	}
	if opt.Logger == nil {
		opt.Logger = log.Default()
	}
	r := &Runner{inv: inv, clock: opt.Clock, log: opt.Logger, after: opt.AfterReconcile}
	for _, c := range ctrls {
		r.ctrls = append(r.ctrls, &queue{ctrl: c, entries: map[string]*entry{}})
	}
	inv.Store().AddIndex(r.observe)
	for _, q := range r.ctrls {
		for _, k := range q.ctrl.Resync(inv) {
			q.add(k, time.Time{})
		}
	}
	return r
}

// observe is the store hook: it enqueues the keys a change concerns.
func (r *Runner) observe(old, new *api.Object) {
	o := new
	if o == nil {
		o = old
	}
	if o.Kind == api.KindEvent || o.Kind == api.KindTask {
		return
	}
	for _, q := range r.ctrls {
		for _, k := range q.ctrl.Keys(old, new) {
			q.add(k, time.Time{})
		}
	}
}

// Passes is how many reconciles have run; tests wait on it.
func (r *Runner) Passes() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.passes
}

// Drain runs every key that is due now, and what those reconciles make
// due now, until nothing is. It returns the number of reconciles run.
// Tests call it after each step of a scenario instead of sleeping.
func (r *Runner) Drain(ctx context.Context) int {
	n := 0
	for {
		ran := false
		for _, q := range r.ctrls {
			if k, ok := q.pop(r.clock.Now()); ok {
				r.run(ctx, q, k)
				ran = true
				n++
			}
		}
		if !ran {
			return n
		}
	}
}

// NextDue is the earliest time a queued key is due (zero when none is).
func (r *Runner) NextDue() time.Time {
	var next time.Time
	for _, q := range r.ctrls {
		if t, ok := q.next(); ok && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// Start runs the controllers in the background until ctx ends: one worker
// per controller, so a slow controller does not hold up the others.
func (r *Runner) Start(ctx context.Context) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, q := range r.ctrls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx, q)
		}()
	}
	return &wg
}

func (r *Runner) work(ctx context.Context, q *queue) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil { // checked between reconciles too: a queue may never run dry
		now := r.clock.Now()
		if k, ok := q.pop(now); ok {
			r.run(ctx, q, k)
			continue
		}
		wait := time.Hour
		if t, ok := q.next(); ok {
			wait = max(t.Sub(now), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-q.signal():
		case <-timer.C:
		}
	}
}

func (r *Runner) run(ctx context.Context, q *queue, key string) {
	res, err := q.ctrl.Reconcile(ctx, key)
	if r.after != nil {
		r.after(q.ctrl.Name(), key)
	}
	r.mu.Lock()
	r.passes++
	r.mu.Unlock()
	now := r.clock.Now()
	switch {
	case err != nil:
		d := q.failed(key)
		r.log.Printf("controller %s: %s: %v (retrying in %s)", q.ctrl.Name(), key, err, d)
		q.add(key, now.Add(d))
	default:
		q.succeeded(key)
		if res.RequeueAfter > 0 {
			q.add(key, now.Add(res.RequeueAfter))
		}
	}
}

// queue is one controller's work: at most one entry per key, due at a time.
type queue struct {
	ctrl Controller

	mu       sync.Mutex
	entries  map[string]*entry
	due      dueHeap
	failures map[string]int
	wake     chan struct{}
}

type entry struct {
	key   string
	at    time.Time
	index int
}

func (q *queue) signal() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.wake == nil {
		q.wake = make(chan struct{}, 1)
	}
	return q.wake
}

// add queues key at time at; a key already queued keeps the earlier time.
func (q *queue) add(key string, at time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.entries[key]; ok {
		if at.Before(e.at) {
			e.at = at
			heap.Fix(&q.due, e.index)
		}
	} else {
		e := &entry{key: key, at: at}
		q.entries[key] = e
		heap.Push(&q.due, e)
	}
	if q.wake != nil {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

func (q *queue) pop(now time.Time) (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.due) == 0 || q.due[0].at.After(now) {
		return "", false
	}
	e := heap.Pop(&q.due).(*entry)
	delete(q.entries, e.key)
	return e.key, true
}

func (q *queue) next() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.due) == 0 {
		return time.Time{}, false
	}
	return q.due[0].at, true
}

func (q *queue) failed(key string) time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.failures == nil {
		q.failures = map[string]int{}
	}
	n := q.failures[key]
	q.failures[key] = n + 1
	return Backoff(n)
}

func (q *queue) succeeded(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, key)
}

// Backoff is the wait before retry n (0-based): BackoffMin doubled n
// times, at most BackoffMax.
func Backoff(n int) time.Duration {
	d := BackoffMin
	for i := 0; i < n && d < BackoffMax; i++ {
		d *= 2
	}
	return min(d, BackoffMax)
}

type dueHeap []*entry

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].key < h[j].key
	}
	return h[i].at.Before(h[j].at)
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *dueHeap) Push(x any)   { e := x.(*entry); e.index = len(*h); *h = append(*h, e) }
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// memberUnchanged says that nothing a workload controller acts on changed
// between two versions of a VM: its owner, labels, power state, host,
// removal, and what its host reports of power, readiness and phase. A
// host's periodic usage figures (CPU, memory) then queue nothing, or every
// set would be reconciled at every report of every member.
func memberUnchanged(old, new *api.Object) bool {
	if old == nil || new == nil || old.Owner != new.Owner || !maps.Equal(old.Labels, new.Labels) {
		return false
	}
	type view struct {
		power, host, phase, statusHost, statusPower string
		removing, ready                             bool
		readySince                                  time.Time
	}
	of := func(o *api.Object) view {
		var s api.VMSpec
		var st api.VMStatus
		_ = o.DecodeSpec(&s)
		_ = o.DecodeStatus(&st)
		return view{s.PowerState, s.Host, st.Phase, st.Host, st.PowerState, s.Removing, st.Ready, st.ReadySince}
	}
	return of(old) == of(new)
}

// load reads the object key names and decodes its spec. A missing object
// is nil without error: it was removed, and what it owned went with it.
func load[S any](inv *inventory.Inventory, key string) (*api.Object, S, error) {
	var spec S
	obj, err := inv.Get(key)
	if errors.Is(err, api.ErrNotFound) {
		return nil, spec, nil
	}
	if err != nil {
		return nil, spec, err
	}
	return obj, spec, obj.DecodeSpec(&spec)
}

// pathsOf lists the paths of every object of kind (a controller's resync).
func pathsOf(inv *inventory.Inventory, kind string) []string {
	var keys []string
	for _, o := range inv.List(store.Query{Kind: kind}).Items {
		keys = append(keys, o.Path)
	}
	return keys
}
