package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/host/runtime"
)

// ActionParallel is how many VMs one host agent acts on at once. A burst of
// power-ons then overlaps one VM's containerd and CNI round trips with
// another's, while a host's CPU is not swamped by dozens of container starts.
const ActionParallel = 8

// reconciler is the agent's loop: it mirrors the VMs assigned to this host
// from vcenter's list+watch, runs Plan against the runtime after every batch
// of changes and every StatusInterval, and reports status when it changed.
//
// The mirror, the plan and the status writes belong to one goroutine. Only
// the runtime steps leave it: each pass turns the plan into one job per VM
// (that VM's steps, in Plan's order), and up to ActionParallel jobs run at
// once, never two for the same VM. Plan puts stops and deletes first because
// they free capacity (memory, addresses): the other jobs start only when no
// stop or delete is running. A job re-reads its VM from the runtime when
// done, and the loop reports that VM's status at once, not after the other
// VMs' jobs.
type reconciler struct {
	a  *Agent
	c  *client.Client
	rt runtime.Runtime

	vms map[string]*api.Object // by path: VMs whose spec.host is this host
	// resetDone holds resets carried out that vcenter's copy of the status
	// does not show yet, by ID.
	resetDone map[string]int64
	started   bool // the first pass (adoption) has run

	queue   []*job          // planned by the last pass, not started yet, in Plan's order
	running map[string]*job // by VM ID: started, result not taken yet
	freeing int             // running jobs that stop or delete
	done    chan jobResult  // from finished jobs; room for all that can run
	wg      sync.WaitGroup  // running job goroutines
	again   bool            // a VM changed while its job ran: pass once its result is in

	// The runtime's notices (runtime.Notifier): VM IDs whose state changed
	// on the host, reported by the loop at once. notified is written by the
	// runtime's goroutines, under notifyMu; poke wakes the loop.
	notifyMu sync.Mutex
	notified map[string]bool
	poke     chan struct{}
	// later holds noticed VMs whose job was running: reported after it.
	later map[string]bool
	// decoded caches, per mirrored VM version, its decoded spec and status
	// and its spec hash: a pass looks at every VM of the host, and decoding
	// and hashing them all again at each pass was most of the agent's CPU.
	decoded map[string]decodedVM
}

// decodedVM is one VM version, decoded once.
type decodedVM struct {
	uid  string
	rv   uint64
	spec api.VMSpec
	st   api.VMStatus
	hash string // runtime.SpecHash of the runtime spec made from spec
}

// job is one VM's steps from one pass, run in order on a goroutine of its own.
type job struct {
	id, path string
	steps    []Action
	dirty    bool // the VM's spec changed, or it left, while the job ran
}

// frees says whether the job stops or deletes its VM (Plan's first group).
func (j *job) frees() bool { return j.steps[0].Kind == Stop || j.steps[0].Kind == Delete }

// jobResult is what a job did and the VM's state afterwards.
type jobResult struct {
	job      *job
	canceled bool       // the agent is stopping: report nothing
	failed   string     // "step: error" of the step that failed; later steps did not run
	step     ActionKind // the step that failed
	booted   bool       // a Start or Restart succeeded, carrying out reset generation resetGen
	resetGen int64
	deleted  bool // a Delete ran
	state    runtime.VMState
	exists   bool // the runtime has the VM (state is set)
	unknown  bool // the runtime could not say: leave the status to the next pass
}

func newReconciler(a *Agent, c *client.Client) *reconciler {
	return &reconciler{
		a: a, c: c, rt: a.cfg.Runtime,
		vms: map[string]*api.Object{}, resetDone: map[string]int64{},
		running: map[string]*job{}, done: make(chan jobResult, ActionParallel),
		notified: map[string]bool{}, poke: make(chan struct{}, 1), later: map[string]bool{},
		decoded: map[string]decodedVM{},
	}
}

// notify is the runtime's notice that VM id changed; it never blocks.
func (r *reconciler) notify(id string) {
	r.notifyMu.Lock()
	r.notified[id] = true
	r.notifyMu.Unlock()
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// reportNoticed reports the VMs the runtime said changed, reading each
// from the runtime. A VM with a job running is reported after the job
// (its own status read may predate the change); one with a job queued is
// left to that job.
func (r *reconciler) reportNoticed(ctx context.Context) {
	r.notifyMu.Lock()
	ids := r.notified
	r.notified = map[string]bool{}
	r.notifyMu.Unlock()
	if len(ids) == 0 {
		return
	}
	queued := map[string]bool{}
	for _, j := range r.queue {
		queued[j.id] = true
	}
	byID := make(map[string]*api.Object, len(ids))
	for _, o := range r.vms {
		if id := vmID(o); ids[id] {
			byID[id] = o
		}
	}
	for id := range ids {
		o := byID[id]
		switch {
		case o == nil || queued[id]:
			continue
		case r.running[id] != nil:
			r.later[id] = true
			continue
		}
		st, err := r.rt.Status(ctx, id)
		if err != nil {
			continue // gone, or the runtime cannot say: the next pass sorts it out
		}
		r.report(ctx, r.desiredOf(o), &st, "", "")
	}
}

func (r *reconciler) opts() client.ListOptions {
	return client.ListOptions{Kind: api.KindVirtualMachine, Host: r.a.host}
}

// run lists and watches until ctx ends, re-listing after any break. Before
// returning it waits for the jobs still running (ctx stops them early).
func (r *reconciler) run(ctx context.Context) {
	defer r.wg.Wait()
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
		case <-r.poke:
			r.reportNoticed(ctx)
		case res := <-r.done:
			// Take every result that is in, then pass if one asks for it.
			for {
				r.finish(ctx, res)
				select {
				case res = <-r.done:
					continue
				default:
				}
				break
			}
			if r.again {
				r.pass(ctx)
			}
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
	cur := r.vms[o.Path]
	if ev.Type == api.Deleted {
		r.changed(cur)
		delete(r.vms, o.Path)
		return
	}
	var spec api.VMSpec
	if err := o.DecodeSpec(&spec); err != nil {
		r.a.log.Printf("vm %s: unreadable spec, ignored: %v", o.Path, err)
		return
	}
	if spec.Host != r.a.host {
		r.changed(cur)
		delete(r.vms, o.Path)
		return
	}
	if cur != nil && cur.UID == o.UID && cur.ResourceVersion > o.ResourceVersion {
		return // our own status write already gave us something newer
	}
	if cur != nil && (cur.UID != o.UID || !bytes.Equal(cur.Spec, o.Spec)) {
		r.changed(cur)
	}
	r.vms[o.Path] = o
}

// changed notes that what vcenter wants of the mirrored VM o changed: if a
// job of it runs, the loop passes again once that job is done.
func (r *reconciler) changed(o *api.Object) {
	if o == nil {
		return
	}
	if j := r.running[vmID(o)]; j != nil {
		j.dirty = true
	}
}

// desired turns the mirror into Plan's input, sorted by path.
func (r *reconciler) desired() []DesiredVM {
	out := make([]DesiredVM, 0, len(r.vms))
	for _, o := range r.vms {
		out = append(out, r.desiredOf(o))
	}
	if len(r.decoded) > 2*len(r.vms)+16 {
		for p := range r.decoded {
			if r.vms[p] == nil {
				delete(r.decoded, p) // gone from the host
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// desiredOf is Plan's input for one mirrored VM.
func (r *reconciler) desiredOf(o *api.Object) DesiredVM {
	if r.decoded == nil {
		r.decoded = map[string]decodedVM{}
	}
	dv, cached := r.decoded[o.Path]
	if !cached || dv.uid != o.UID || dv.rv != o.ResourceVersion || o.ResourceVersion == 0 {
		dv = decodedVM{uid: o.UID, rv: o.ResourceVersion}
		_ = o.DecodeSpec(&dv.spec) // checked in observe
		_ = o.DecodeStatus(&dv.st)
		r.decoded[o.Path] = dv
	}
	spec, st := dv.spec, dv.st
	id := vmID(o)
	done := st.ResetGeneration
	if g, ok := r.resetDone[id]; ok {
		if g == done {
			delete(r.resetDone, id) // vcenter has it now
		} else {
			done = g
		}
	}
	d := DesiredVM{
		ID:              id,
		Path:            o.Path,
		PowerState:      spec.PowerState,
		ResetGeneration: spec.ResetGeneration,
		ResetDone:       done,
		Migration:       migrationOf(spec),
		Spec:            runtime.SpecFor(id, o.Path, spec),
	}
	if d.Migration != "" {
		// Cold migration: stopped here before it starts elsewhere.
		d.PowerState = api.PoweredOff
	}
	if dv.hash == "" {
		dv.hash = runtime.SpecHash(d.Spec)
		r.decoded[o.Path] = dv
	}
	d.Hash = dv.hash
	return d
}

func migrationOf(spec api.VMSpec) string {
	if spec.Migration == nil {
		return ""
	}
	return spec.Migration.ID
}

// vmID is the runtime ID of a VM: its UID, stable for the VM's life.
func vmID(o *api.Object) string {
	if o.UID != "" {
		return o.UID
	}
	return o.Path
}

// pass runs one reconcile: list the runtime's VMs, plan, queue one job per
// VM that needs steps, start as many as may run, and report the VMs that
// need none. A VM whose job is still running is left out: its job reports
// it, and if vcenter changed it meanwhile, a pass follows the job.
func (r *reconciler) pass(ctx context.Context) {
	r.again = false
	actual, err := r.rt.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.a.log.Printf("runtime %s: list VMs: %v (retrying in %v)", r.rt.Name(), err, r.a.cfg.Timings.StatusInterval)
		}
		return
	}
	desired := r.desired()
	queued := map[string]*job{}
	r.queue = nil // re-planned from scratch: what was queued has not started
	for _, act := range Plan(desired, actual) {
		if act.Kind == Adopt {
			if !r.started {
				r.a.log.Printf("vm %s: adopted as it runs", act.Path)
			}
			continue
		}
		if r.running[act.ID] != nil {
			continue
		}
		j := queued[act.ID]
		if j == nil {
			j = &job{id: act.ID, path: act.Path}
			queued[act.ID] = j
			r.queue = append(r.queue, j)
		}
		j.steps = append(j.steps, act)
	}
	r.started = true
	r.startJobs(ctx)

	have := make(map[string]runtime.VMState, len(actual))
	for _, s := range actual {
		have[s.ID] = s
	}
	for _, d := range desired {
		if queued[d.ID] != nil || r.running[d.ID] != nil {
			continue // its job reports it
		}
		var s *runtime.VMState
		if st, ok := have[d.ID]; ok {
			s = &st
		}
		r.report(ctx, d, s, "", "")
	}
}

// startJobs starts queued jobs, in order, while fewer than ActionParallel
// run; a job that does not free capacity waits for those that do.
func (r *reconciler) startJobs(ctx context.Context) {
	for len(r.running) < ActionParallel && len(r.queue) > 0 {
		j := r.queue[0]
		if !j.frees() && r.freeing > 0 {
			return
		}
		r.queue = r.queue[1:]
		r.running[j.id] = j
		if j.frees() {
			r.freeing++
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.done <- r.runJob(ctx, j)
		}()
	}
}

// runJob runs one VM's steps in order, stopping at the first that fails (a
// VM's later steps depend on its earlier ones), then reads the VM back from
// the runtime. It runs on its own goroutine and touches no reconciler state.
func (r *reconciler) runJob(ctx context.Context, j *job) jobResult {
	res := jobResult{job: j}
	for _, act := range j.steps {
		if act.Kind == Delete {
			res.deleted = true
		}
		if err := r.apply(ctx, act); err != nil {
			if ctx.Err() != nil {
				res.canceled = true
				return res
			}
			res.failed, res.step = fmt.Sprintf("%s: %v", act.Kind, err), act.Kind
			r.a.log.Printf("vm %s: %s: %v", act.Path, act.Kind, err)
			break
		}
		if act.Kind == Start || act.Kind == Restart {
			// A fresh boot carries out any pending reset.
			res.booted, res.resetGen = true, act.ResetGeneration
		}
		if act.Kind == Recreate {
			r.a.log.Printf("vm %s: recreate (spec changed)", act.Path)
		} else if act.Kind == Resize {
			r.a.log.Printf("vm %s: resized in place (cpu %d, memory %dMB)", act.Path, act.Spec.NumCPU, act.Spec.MemoryMB)
		} else {
			r.a.log.Printf("vm %s: %s", act.Path, act.Kind)
		}
	}
	st, err := r.rt.Status(ctx, j.id)
	switch {
	case err == nil:
		res.state, res.exists = st, true
	case ctx.Err() != nil:
		res.canceled = true
	case errors.Is(err, api.ErrNotFound):
	default:
		res.unknown = true
		r.a.log.Printf("vm %s: runtime %s: status: %v", j.path, r.rt.Name(), err)
	}
	return res
}

// finish takes a job's result: it frees the job's slot for the next queued
// one and reports the VM's status, unless the VM left the mirror meanwhile.
func (r *reconciler) finish(ctx context.Context, res jobResult) {
	j := res.job
	delete(r.running, j.id)
	if j.frees() {
		r.freeing--
	}
	if j.dirty {
		r.again = true
	}
	if res.canceled {
		return
	}
	if res.deleted {
		delete(r.resetDone, j.id)
	}
	if res.booted {
		r.resetDone[j.id] = res.resetGen
	}
	if r.later[j.id] {
		delete(r.later, j.id)
		r.notify(j.id) // taken by the loop after this report
	}
	r.startJobs(ctx)
	o := r.vms[j.path]
	if o == nil || vmID(o) != j.id || res.unknown {
		return // deleted, moved elsewhere or replaced: a pass sorts it out
	}
	var s *runtime.VMState
	if res.exists {
		s = &res.state
	}
	r.report(ctx, r.desiredOf(o), s, res.failed, res.step)
}

// apply runs one step on the runtime.
func (r *reconciler) apply(ctx context.Context, act Action) error {
	stop := runtime.VMSpec{TerminationGracePeriodSeconds: act.Grace}.StopTimeout(r.a.cfg.Timings.StopTimeout)
	switch act.Kind {
	case Create:
		return r.rt.Create(ctx, *act.Spec)
	case Start:
		if err := r.acquire(ctx, act); err != nil {
			return err
		}
		return r.rt.Start(ctx, act.ID)
	case Stop:
		if err := r.rt.Stop(ctx, act.ID, stop); err != nil {
			return err
		}
		return r.release(act)
	case Delete:
		if err := r.rt.Delete(ctx, act.ID); err != nil {
			return err
		}
		return r.release(act)
	case Restart:
		if err := r.rt.Stop(ctx, act.ID, stop); err != nil {
			return err
		}
		if err := r.acquire(ctx, act); err != nil {
			return err
		}
		return r.rt.Start(ctx, act.ID)
	case Resize:
		if rs, ok := r.rt.(runtime.Resizer); ok {
			return rs.Resize(ctx, *act.Spec)
		}
		return fmt.Errorf("runtime %s cannot resize a VM in place: %w", r.rt.Name(), api.ErrInvalid)
	case Recreate:
		if rc, ok := r.rt.(runtime.Recreator); ok {
			return rc.Recreate(ctx, *act.Spec, stop)
		}
		if err := r.rt.Stop(ctx, act.ID, stop); err != nil && !errors.Is(err, api.ErrNotFound) {
			return err
		}
		if err := r.rt.Delete(ctx, act.ID); err != nil {
			return err
		}
		return r.rt.Create(ctx, *act.Spec)
	default:
		return fmt.Errorf("unknown step %q", act.Kind)
	}
}
