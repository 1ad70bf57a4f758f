package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/lb"
)

// LBConsumer is a part of the host that acts on its cluster's load
// balancing: service rules, DNS, the Ingress proxy, the address announcer.
// ApplyLB gets the whole state after every change (batched) and at every
// resync; st is the consumer's own copy. An error is logged and the state
// handed again on the next change, or after StatusInterval at the latest.
type LBConsumer interface {
	Name() string
	ApplyLB(ctx context.Context, st *lb.State) error
}

// lbDebounce is how long the agent waits after a change for more before it
// hands the state on: a Service rollout changes endpoints in bursts, and
// one rule sync for the burst beats one per endpoint.
const lbDebounce = 5 * time.Millisecond

// DefaultLBResync is how often every consumer gets the state again though
// nothing changed, so a rule someone deleted by hand comes back.
const DefaultLBResync = time.Minute

// lbWatch mirrors, from vcenter's list+watch, what lb.State holds: the
// Services of this host's cluster, the cluster's configuration and its
// hosts. Three watches feed it; one dispatcher hands snapshots on.
type lbWatch struct {
	a    *Agent
	c    *client.Client
	dc   string
	kick chan struct{}

	mu        sync.Mutex
	services  map[string]lb.Service
	ingresses map[string]lb.Ingress
	ingress   api.LoadBalancerIngress // the cluster's status.ingress
	spec      api.ClusterSpec
	hosts     map[string]lb.Host
	listed    map[string]bool // by part: listed at least once
}

// lbParts are the watches; a state is handed on only once all have
// listed, so an agent that restarts never hands a consumer an empty state
// (which would remove every rule or route) before it knows better.
var lbParts = []string{api.KindService, api.KindIngress, api.KindCluster, api.KindHost}

// keepLB runs the Service watches and the consumers (Config.LB and the
// ones the agent makes itself, such as its DNS resolver) until ctx ends.
func (a *Agent) keepLB(ctx context.Context, c *client.Client, consumers []LBConsumer) {
	ref, _ := api.ParsePath(a.cfg.Cluster) // checked in New
	w := &lbWatch{a: a, c: c, dc: ref.Datacenter, kick: make(chan struct{}, 1),
		services: map[string]lb.Service{}, ingresses: map[string]lb.Ingress{}, hosts: map[string]lb.Host{}, listed: map[string]bool{}}
	var wg sync.WaitGroup
	runners := make([]*lbRunner, len(consumers))
	for i, lc := range consumers {
		runners[i] = &lbRunner{a: a, lc: lc, poke: make(chan struct{}, 1)}
		wg.Add(1)
		go func() { defer wg.Done(); runners[i].run(ctx) }()
	}
	for _, part := range lbParts {
		wg.Add(1)
		go func() { defer wg.Done(); w.watch(ctx, part) }()
	}
	w.dispatch(ctx, runners)
	wg.Wait()
}

// dispatch hands a snapshot to every runner after each batch of changes.
func (w *lbWatch) dispatch(ctx context.Context, runners []*lbRunner) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
		// Let the burst settle: changes arriving meanwhile re-arm the kick
		// and are in this snapshot or the next.
		if !sleep(ctx, lbDebounce) {
			return
		}
		st := w.snapshot()
		if st == nil {
			continue // not every part listed yet
		}
		for _, r := range runners {
			r.offer(st)
		}
	}
}

func (w *lbWatch) changed() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// snapshot is the state as mirrored now, nil before every part listed.
// It shares the mirrored Services' slices, which the mirror replaces and
// never writes in place; runners clone it before handing it out.
func (w *lbWatch) snapshot() *lb.State {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range lbParts {
		if !w.listed[p] {
			return nil
		}
	}
	st := &lb.State{Cluster: w.a.cfg.Cluster, Spec: w.spec, Ingress: w.ingress, Self: w.a.host,
		Hosts: make(map[string]lb.Host, len(w.hosts)), Services: make(map[string]lb.Service, len(w.services)),
		Ingresses: make(map[string]lb.Ingress, len(w.ingresses))}
	for p, in := range w.ingresses {
		st.Ingresses[p] = in
	}
	for p, h := range w.hosts {
		st.Hosts[p] = h
	}
	for p, s := range w.services {
		st.Services[p] = s
	}
	return st
}

func (w *lbWatch) opts(part string) client.ListOptions {
	switch part {
	case api.KindService:
		return client.ListOptions{Kind: api.KindService, Prefix: "/" + w.dc + "/service"}
	case api.KindIngress:
		return client.ListOptions{Kind: api.KindIngress, Prefix: "/" + w.dc + "/ingress"}
	case api.KindCluster:
		return client.ListOptions{Kind: api.KindCluster, Prefix: w.a.cfg.Cluster}
	default:
		return client.ListOptions{Kind: api.KindHost, Prefix: w.a.cfg.Cluster}
	}
}

// watch lists and watches one part until ctx ends, re-listing after any
// break (a compacted revision, vcenter restarting): the list replaces the
// part wholesale, so what was deleted meanwhile goes too.
func (w *lbWatch) watch(ctx context.Context, part string) {
	opts := w.opts(part)
	for attempt := 0; ; attempt++ {
		err := func() error {
			l, err := w.c.List(ctx, opts)
			if err != nil {
				return err
			}
			w.relist(part, l.Items)
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			events, wait, err := w.c.Watch(wctx, opts, l.Revision)
			if err != nil {
				return err
			}
			attempt = 0
			for ev := range events {
				w.observe(part, ev)
			}
			if err := wait(); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch closed: %w", api.ErrUnavailable)
		}()
		if ctx.Err() != nil {
			return
		}
		d := w.a.backoff(attempt)
		if errors.Is(err, client.ErrGone) {
			w.a.log.Printf("load balancing: %s watch: revision compacted away; re-listing in %v", part, d.Round(time.Millisecond))
		} else {
			w.a.log.Printf("load balancing: %s watch: %v; re-listing in %v", part, err, d.Round(time.Millisecond))
		}
		if !sleep(ctx, d) {
			return
		}
	}
}

func (w *lbWatch) relist(part string, items []*api.Object) {
	w.mu.Lock()
	switch part {
	case api.KindService:
		clear(w.services)
	case api.KindIngress:
		clear(w.ingresses)
	case api.KindCluster:
		w.spec = api.ClusterSpec{}
	default:
		clear(w.hosts)
	}
	for _, o := range items {
		w.apply(part, api.WatchEvent{Type: api.Added, Object: o})
	}
	w.listed[part] = true
	w.mu.Unlock()
	w.changed()
}

func (w *lbWatch) observe(part string, ev api.WatchEvent) {
	w.mu.Lock()
	w.apply(part, ev)
	w.mu.Unlock()
	w.changed()
}

// apply folds one object into the mirror; w.mu is held. The kind and
// place are checked again: a watch may carry more than asked for.
func (w *lbWatch) apply(part string, ev api.WatchEvent) {
	o := ev.Object
	if o == nil || o.Kind != part {
		return
	}
	gone := ev.Type == api.Deleted
	switch part {
	case api.KindService:
		s := lb.ServiceOf(o)
		if gone || s == nil || !w.carries(s) {
			delete(w.services, o.Path)
			return
		}
		w.services[o.Path] = *s
	case api.KindIngress:
		in := lb.IngressOf(o)
		if gone || in == nil || (in.Spec.Cluster != "" && in.Spec.Cluster != w.a.cfg.Cluster) {
			delete(w.ingresses, o.Path)
			return
		}
		w.ingresses[o.Path] = *in
	case api.KindCluster:
		if o.Path != w.a.cfg.Cluster {
			return
		}
		var cs api.ClusterSpec
		var st api.ClusterStatus
		if gone || o.DecodeSpec(&cs) != nil {
			cs = api.ClusterSpec{}
		} else {
			_ = o.DecodeStatus(&st)
		}
		w.spec, w.ingress = cs, st.Ingress
	default:
		if api.Parent(o.Path) != w.a.cfg.Cluster {
			return
		}
		if gone {
			delete(w.hosts, o.Path)
			return
		}
		w.hosts[o.Path] = hostOfObject(o)
	}
}

// carries says whether this host's cluster carries s: its spec.cluster is
// this cluster, or "" (the datacenter's only cluster). A Service still
// waiting for its cluster IP has no address to program yet (headless and
// ExternalName ones never get one and are kept: DNS answers for them).
func (w *lbWatch) carries(s *lb.Service) bool {
	if s.Spec.Cluster != "" && s.Spec.Cluster != w.a.cfg.Cluster {
		return false
	}
	return s.Spec.ClusterIP != "" || s.Spec.Type == api.ServiceExternalName
}

// hostOfObject is what load balancing needs of a host object.
func hostOfObject(o *api.Object) lb.Host {
	var st api.HostStatus
	_ = o.DecodeStatus(&st)
	ip := st.Address
	if h, _, err := net.SplitHostPort(st.Address); err == nil {
		ip = h
	}
	return lb.Host{Path: o.Path, Address: ip, State: st.State, PodSubnet: st.PodSubnet}
}

// lbRunner hands one consumer the latest state, on its own goroutine so a
// slow consumer (a full rule sync) delays no other.
type lbRunner struct {
	a    *Agent
	lc   LBConsumer
	poke chan struct{}

	mu     sync.Mutex
	latest *lb.State // never handed out: each apply gets a clone
}

func (r *lbRunner) offer(st *lb.State) {
	r.mu.Lock()
	r.latest = st
	r.mu.Unlock()
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

func (r *lbRunner) run(ctx context.Context) {
	retry := time.NewTicker(r.a.cfg.Timings.StatusInterval)
	defer retry.Stop()
	resync := r.a.cfg.LBResync
	if resync <= 0 {
		resync = DefaultLBResync
	}
	full := time.NewTicker(resync)
	defer full.Stop()
	failed := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.poke:
		case <-retry.C:
			if !failed {
				continue
			}
		case <-full.C:
		}
		r.mu.Lock()
		st := r.latest
		r.mu.Unlock()
		if st == nil {
			continue
		}
		err := r.lc.ApplyLB(ctx, st.Clone())
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.a.log.Printf("load balancing: %s: %v (retrying on the next change or in %v)", r.lc.Name(), err, r.a.cfg.Timings.StatusInterval)
		case failed:
			r.a.log.Printf("load balancing: %s: applied again", r.lc.Name())
		}
		failed = err != nil
	}
}
