package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/labels"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// ReplicaSetUser is who the replica-set controller's actions are recorded as.
const ReplicaSetUser = "controller:replicaset"

// MaxBurst bounds how many members one reconcile creates: creates go in
// slow-start batches (1, 2, 4, ...) so a set whose every member is refused
// costs one refusal, not MaxBurst; the next pass continues.
const MaxBurst = 500

// createWorkers is how many member creates run at once, so the store's group
// commit writes them in few syncs.
const createWorkers = 64

// ReplicaSets keeps each ReplicaSet's members running: it adopts matching
// orphans, releases members whose labels stop matching, creates members
// from the template, powers back on members someone powered off, replaces
// failed ones, retires surplus ones (powered off, removed once their host
// reports them off), and leaves alone a member whose host is not
// responding: it may still run there, and restarting it elsewhere is HA's
// decision, so that a network blip never makes two copies.
type ReplicaSets struct {
	inv   *inventory.Inventory
	clock Clock
	// names makes member names; tests seed it.
	mu    sync.Mutex
	rng   *rand.Rand
	sets  map[string]labels.Selector // set path -> selector, for orphans' keys
	waits map[string]int             // set path -> consecutive refused passes
	// retryAt holds back a refused set's next power-on or create until its
	// backoff has passed, whatever else queues the set meanwhile.
	retryAt map[string]time.Time
	decoded vmCache // members' spec and status by version
}

// NewReplicaSets makes the controller; seed makes member names reproducible (0 = random).
func NewReplicaSets(inv *inventory.Inventory, clock Clock, seed uint64) *ReplicaSets {
	if clock == nil {
		clock = realClock{}
	}
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &ReplicaSets{inv: inv, clock: clock, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		sets: map[string]labels.Selector{}, waits: map[string]int{}, retryAt: map[string]time.Time{}}
}

func (c *ReplicaSets) Name() string { return "replicaset" }

// Keys: a set itself; for a VM, its owner (old and new) if a replica set,
// and for an orphan the sets of its namespace that select it.
func (c *ReplicaSets) Keys(old, new *api.Object) []string {
	o := new
	if o == nil {
		o = old
	}
	switch o.Kind {
	case api.KindReplicaSet:
		c.mu.Lock()
		if new == nil {
			delete(c.sets, o.Path)
		} else if sel, err := selectorOf(new); err == nil {
			c.sets[o.Path] = sel
		}
		c.mu.Unlock()
		return []string{o.Path}
	case api.KindHost:
		if old == nil || new == nil || !maintenanceFlipped(old, new) {
			return nil
		}
		// A host entering or leaving maintenance: any set may have members
		// there (rare enough to look at every set).
		c.mu.Lock()
		keys := slices.Collect(maps.Keys(c.sets))
		c.mu.Unlock()
		return keys
	case api.KindVirtualMachine:
		if memberUnchanged(old, new) {
			return nil
		}
		if new == nil {
			c.decoded.forget(old.Path)
		}
		var keys []string
		for _, v := range []*api.Object{old, new} {
			if v == nil {
				continue
			}
			if isKind(v.Owner, api.KindReplicaSet) {
				keys = append(keys, v.Owner)
			} else if v.Owner == "" {
				keys = append(keys, c.selecting(v)...)
			}
		}
		return keys
	}
	return nil
}

// selecting lists the sets in vm's namespace whose selector matches it.
func (c *ReplicaSets) selecting(vm *api.Object) []string {
	ref, err := api.ParsePath(vm.Path)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for p, sel := range c.sets {
		if r, err := api.ParsePath(p); err == nil && r.Datacenter == ref.Datacenter && r.Namespace == ref.Namespace && sel.Matches(vm.Labels) {
			out = append(out, p)
		}
	}
	return out
}

func (c *ReplicaSets) Resync(inv *inventory.Inventory) []string {
	var keys []string
	for _, o := range inv.List(store.Query{Kind: api.KindReplicaSet}).Items { // c.mu is taken per set, after the list
		keys = append(keys, o.Path)
		if sel, err := selectorOf(o); err == nil {
			c.mu.Lock()
			c.sets[o.Path] = sel
			c.mu.Unlock()
		}
	}
	return keys
}

func selectorOf(o *api.Object) (labels.Selector, error) {
	var s struct {
		Selector api.LabelSelector `json:"selector"`
	}
	_ = o.DecodeSpec(&s)
	return labels.FromLabelSelector(s.Selector)
}

func isKind(path, kind string) bool {
	if path == "" {
		return false
	}
	r, err := api.ParsePath(path)
	return err == nil && r.Kind == kind
}

// member is one VM of a set as the controller sees it. spec and status
// may be shared with other reconciles (vmCache): never modify them.
type member struct {
	obj    *api.Object
	spec   api.VMSpec
	status api.VMStatus
	host   string // host state: connected, notResponding, maintenance, "" unknown
}

func (m member) running() bool { return m.status.PowerState == api.PoweredOn }

// stopping: its owner retired it and its host has not reported it off yet.
func (m member) stopping() bool { return m.spec.Removing && m.status.PowerState == api.PoweredOn }

func (m member) failed() bool { return m.status.Phase == api.PhaseFailed }

func (m member) hostDown() bool { return m.host == api.HostNotResponding }

func (m member) available(now time.Time, minReady int) bool {
	if !m.status.Ready || !m.running() || m.spec.Removing {
		return false
	}
	return minReady == 0 || !m.status.ReadySince.IsZero() && now.Sub(m.status.ReadySince) >= time.Duration(minReady)*time.Second
}

// Reconcile brings one set to its spec.
func (c *ReplicaSets) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, err := c.inv.Get(key)
	if errors.Is(err, api.ErrNotFound) {
		c.mu.Lock()
		delete(c.waits, key)
		delete(c.retryAt, key)
		c.mu.Unlock()
		return Result{}, nil // its members went with it (inventory removes what a set owns)
	}
	if err != nil {
		return Result{}, err
	}
	var spec api.ReplicaSetSpec
	if err := obj.DecodeSpec(&spec); err != nil {
		return Result{}, err
	}
	sel, err := labels.FromLabelSelector(spec.Selector)
	if err != nil {
		return Result{}, err
	}
	now := c.clock.Now()
	members, err := c.claim(key, sel)
	if err != nil {
		return Result{}, err
	}
	res := Result{}
	var waiting []api.MemberWait

	// Removing members leave once their host reports them off; failed ones
	// leave at once and are replaced.
	var active []member
	for _, m := range members {
		switch {
		case m.spec.Removing && !m.running() && !m.hostDown():
			if err := c.inv.Remove(ReplicaSetUser, m.obj.Path, inventory.RemoveOptions{ResourceVersion: m.obj.ResourceVersion}); err != nil && !errors.Is(err, api.ErrNotFound) {
				return Result{}, err
			}
		case m.spec.Removing:
			// still stopping (or its host is silent): counted until it is off
		case m.failed():
			if err := c.inv.Remove(ReplicaSetUser, m.obj.Path, inventory.RemoveOptions{ResourceVersion: m.obj.ResourceVersion}); err != nil && !errors.Is(err, api.ErrNotFound) {
				return Result{}, err
			}
			if err := c.inv.Record(ReplicaSetUser, "warning", "ReplicaSetMemberFailedEvent", key, "member %s failed (%s) and is replaced", m.obj.Name(), orDash(m.status.Message)); err != nil {
				return Result{}, err
			}
		default:
			active = append(active, m)
		}
	}

	if err := c.syncHA(key, spec, active); err != nil {
		return Result{}, err
	}

	c.mu.Lock()
	held := c.retryAt[key]
	c.mu.Unlock()
	if now.Before(held) {
		// Backing off after a refusal: nothing is tried before retryAt, and
		// the status keeps saying what waits for what.
		var old api.ReplicaSetStatus
		_ = obj.DecodeStatus(&old)
		if _, leaving := splitLeaving(active); spec.Replicas > len(active) || len(leaving) > 0 {
			if err := c.writeStatus(key, c.count(obj, spec, members, old.Waiting, now), now); err != nil {
				return Result{}, err
			}
			return Result{RequeueAfter: held.Sub(now)}, nil
		}
	}

	// Members someone else powered off are powered back on: the set keeps
	// its replicas running (scale it to run fewer).
	refused := false
	for _, m := range active {
		if m.spec.PowerState == api.PoweredOn {
			continue
		}
		if _, err := c.inv.Power(ReplicaSetUser, m.obj.Path, "on"); err != nil {
			if !inventory.Refusal(err) {
				return Result{}, err
			}
			refused = true
			waiting = append(waiting, api.MemberWait{VM: m.obj.Path, Reason: api.SentinelOf(err).Reason, Message: api.Message(err), Since: now})
		}
	}

	diff := spec.Replicas - len(active)
	var retire []retirement
	label := func(i int) string {
		return fmt.Sprintf("%s (member %d of %d)", api.Base(key), len(active)+i+1, spec.Replicas)
	}
	if stay, leaving := splitLeaving(active); len(leaving) > 0 {
		// A host is entering maintenance: its members are replaced on
		// other hosts before they stop (surge by one).
		retire, diff = evacuation(key, spec, stay, leaving, now)
		label = func(int) string {
			return fmt.Sprintf("%s (replacing a member on %s, which is entering maintenance mode)", api.Base(key), api.Base(leaving[0].spec.Host))
		}
	} else if diff < 0 {
		for _, m := range surplus(active, -diff) {
			retire = append(retire, retirement{m, fmt.Sprintf("%s scaled down to %d replicas", api.Base(key), spec.Replicas)})
		}
	}
	for _, r := range retire {
		if _, err := c.inv.Retire(ReplicaSetUser, r.m.obj.Path, r.why); err != nil && !errors.Is(err, api.ErrNotFound) {
			return Result{}, err
		}
	}
	switch {
	case diff > 0 && !refused:
		made, werr := c.create(key, obj, spec, min(diff, MaxBurst))
		if werr != nil {
			if !inventory.Refusal(werr) {
				return Result{}, werr
			}
			refused = true
			for i := made; i < diff; i++ {
				waiting = append(waiting, api.MemberWait{VM: label(i),
					Reason: api.SentinelOf(werr).Reason, Message: api.Message(werr), Since: now})
			}
		} else if made < diff {
			res.RequeueAfter = time.Millisecond // more than one burst: continue at once
		}
	}

	c.mu.Lock()
	if refused {
		c.waits[key]++
	} else {
		delete(c.waits, key)
		delete(c.retryAt, key)
	}
	n := c.waits[key]
	var d time.Duration
	if refused {
		// A refusal is retried with backoff, never in a hot loop; each try
		// leaves its refusal event.
		d = Backoff(n - 1)
		c.retryAt[key] = now.Add(d)
	}
	c.mu.Unlock()
	if refused {
		for i := range waiting {
			waiting[i].RetryAt = now.Add(d)
		}
		res.RequeueAfter = d
	}

	// Status: counted over the members as they are now.
	members, err = c.claim(key, sel)
	if err != nil {
		return Result{}, err
	}
	st := c.count(obj, spec, members, waiting, now)
	if next := c.nextAvailable(spec, members, now); next > 0 && (res.RequeueAfter == 0 || next < res.RequeueAfter) {
		res.RequeueAfter = next
	}
	if err := c.writeStatus(key, st, now); err != nil {
		return Result{}, err
	}
	return res, nil
}

// count is the set's status over its members.
func (c *ReplicaSets) count(obj *api.Object, spec api.ReplicaSetSpec, members []member, waiting []api.MemberWait, now time.Time) api.ReplicaSetStatus {
	st := api.ReplicaSetStatus{ObservedGeneration: obj.Generation, Waiting: waiting}
	for _, m := range members {
		if m.spec.Removing {
			continue
		}
		st.Replicas++
		if m.running() {
			st.Running++
		}
		if m.status.Ready && m.running() {
			st.ReadyReplicas++
			if m.available(now, spec.MinReadySeconds) {
				st.AvailableReplicas++
			}
		}
	}
	return st
}

// nextAvailable is how long until the next ready member has been ready
// for minReadySeconds (0 when none is waiting for that).
func (c *ReplicaSets) nextAvailable(spec api.ReplicaSetSpec, members []member, now time.Time) time.Duration {
	var next time.Duration
	for _, m := range members {
		if m.spec.Removing || !m.status.Ready || !m.running() || m.available(now, spec.MinReadySeconds) {
			continue
		}
		if left := time.Duration(spec.MinReadySeconds)*time.Second - now.Sub(m.status.ReadySince); left > 0 && (next == 0 || left < next) {
			next = left
		}
	}
	return next
}

// claim lists the set's members after adopting matching orphans of its
// namespace and releasing members whose labels stopped matching.
func (c *ReplicaSets) claim(key string, sel labels.Selector) ([]member, error) {
	ref, err := api.ParsePath(key)
	if err != nil {
		return nil, err
	}
	folder := "/" + ref.Datacenter + "/vm"
	if ref.Namespace != "" {
		folder += "/" + ref.Namespace
	}
	vms := c.inv.List(store.Query{Kind: api.KindVirtualMachine, Prefix: folder, Filter: func(o *api.Object) bool {
		r, err := api.ParsePath(o.Path)
		return err == nil && r.Namespace == ref.Namespace && (o.Owner == key || o.Owner == "" && sel.Matches(o.Labels))
	}}).Items
	hosts := map[string]string{}
	out := make([]member, 0, len(vms))
	for _, o := range vms {
		switch {
		case o.Owner == key && !sel.Matches(o.Labels):
			if _, err := c.inv.SetOwner(ReplicaSetUser, o.Path, "", o.ResourceVersion); err != nil && !errors.Is(err, api.ErrConflict) && !errors.Is(err, api.ErrNotFound) {
				return nil, err
			}
			continue
		case o.Owner == "":
			var s api.VMSpec
			_ = o.DecodeSpec(&s)
			if s.Removing {
				continue
			}
			adopted, err := c.inv.SetOwner(ReplicaSetUser, o.Path, key, o.ResourceVersion)
			if err != nil {
				if errors.Is(err, api.ErrConflict) || errors.Is(err, api.ErrNotFound) {
					continue // changed meanwhile: its change queues the set again
				}
				return nil, err
			}
			o = adopted
		}
		m := member{obj: o}
		m.spec, m.status = c.decoded.decode(o)
		h := m.status.Host
		if h == "" {
			h = m.spec.Host
		}
		if h != "" {
			if _, ok := hosts[h]; !ok {
				hosts[h] = hostState(c.inv, h)
			}
			m.host = hosts[h]
		}
		out = append(out, m)
	}
	return out, nil
}

// hostState is the host's connection state, maintenance as soon as the
// admin asked for it (a host entering maintenance is still connected, but
// its members are on their way out).
func hostState(inv *inventory.Inventory, path string) string {
	h, err := inv.Get(path)
	if err != nil {
		return ""
	}
	var st api.HostStatus
	var spec api.HostSpec
	_ = h.DecodeStatus(&st)
	_ = h.DecodeSpec(&spec)
	if spec.Maintenance && st.State == api.HostConnected {
		return api.HostMaintenance
	}
	return st.State
}

// surplus picks n members to retire, the ones whose loss hurts least
// first: not placed or not running, then not ready; among equals, one from
// the host that keeps the most of the set, newest first. A member whose
// host is not responding goes last: it may still run, and HA decides.
func surplus(active []member, n int) []member {
	perHost := map[string]int{}
	for _, m := range active {
		perHost[m.spec.Host]++
	}
	rank := func(m member) int {
		switch {
		case m.hostDown():
			return 4
		case m.spec.PowerState != api.PoweredOn || m.spec.Host == "" || m.host == api.HostMaintenance:
			return 0
		case !m.running():
			return 1
		case !m.status.Ready:
			return 2
		}
		return 3
	}
	left := append([]member(nil), active...)
	var out []member
	for len(out) < n && len(left) > 0 {
		best := 0
		for i := 1; i < len(left); i++ {
			a, b := left[i], left[best]
			ra, rb := rank(a), rank(b)
			switch {
			case ra != rb:
				if ra < rb {
					best = i
				}
			case perHost[a.spec.Host] != perHost[b.spec.Host]:
				if perHost[a.spec.Host] > perHost[b.spec.Host] {
					best = i
				}
			case !a.obj.Created.Equal(b.obj.Created):
				if a.obj.Created.After(b.obj.Created) {
					best = i
				}
			case a.obj.Path > b.obj.Path:
				best = i
			}
		}
		m := left[best]
		out = append(out, m)
		perHost[m.spec.Host]--
		left = append(left[:best], left[best+1:]...)
	}
	return out
}

// create makes up to n members in slow-start batches and returns how many
// it made; the first refusal stops it (the rest would be refused too).
func (c *ReplicaSets) create(key string, set *api.Object, spec api.ReplicaSetSpec, n int) (int, error) {
	made := 0
	for batch := 1; made < n; batch *= 2 {
		size := min(batch, n-made)
		errs := make([]error, size)
		var wg sync.WaitGroup
		sem := make(chan struct{}, createWorkers)
		for i := range size {
			vm := c.memberOf(key, set, spec)
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				_, errs[i] = c.inv.Create(ReplicaSetUser, vm)
			}()
		}
		wg.Wait()
		var first error
		for _, err := range errs {
			if err == nil {
				made++
			} else if first == nil || inventory.Refusal(first) && !inventory.Refusal(err) {
				first = err
			}
		}
		if first != nil {
			if errors.Is(first, api.ErrConflict) && !inventory.Refusal(first) && strings.Contains(first.Error(), "already exists") {
				continue // a name collision: the next batch draws new names
			}
			return made, first
		}
	}
	return made, nil
}

const nameChars = "bcdfghjklmnpqrstvwxz2456789" // Kubernetes' alphabet: no vowels, no look-alikes

// syncHA gives members the set's HA policy when it changed (psc
// cluster.override.change -rs): restart priority and isolation response
// are read by vSphere HA only, not part of what the host runs, so the
// members are changed in place, never recreated or restarted.
func (c *ReplicaSets) syncHA(key string, spec api.ReplicaSetSpec, active []member) error {
	want := inventory.MemberHA(spec)
	n := 0
	for _, m := range active {
		if m.spec.HA == want {
			continue
		}
		vs := m.spec // a copy: m.spec is shared with the cache
		vs.HA = want
		o := *m.obj
		o.SetSpec(vs)
		if _, err := c.inv.Change(ReplicaSetUser, &o); err != nil {
			if errors.Is(err, api.ErrNotFound) {
				continue
			}
			return fmt.Errorf("replica set %s: HA settings of %s: %w", key, m.obj.Path, err)
		}
		n++
	}
	if n == 0 {
		return nil
	}
	return c.inv.Record(ReplicaSetUser, "info", "ReplicaSetHAReconfiguredEvent", key, "HA settings (restart priority %s, isolation response %s) applied to %d member(s) without restarting them",
		orDash(want.RestartPriority), orDash(want.IsolationResponse), n)
}

// memberOf builds a new member from the set's template.
func (c *ReplicaSets) memberOf(key string, set *api.Object, spec api.ReplicaSetSpec) *api.Object {
	c.mu.Lock()
	suffix := make([]byte, 5)
	for i := range suffix {
		suffix[i] = nameChars[c.rng.IntN(len(nameChars))]
	}
	c.mu.Unlock()
	name := set.Name() + "-" + string(suffix)
	vs := spec.Template.Spec
	vs.Pool, vs.PowerState = spec.Pool, api.PoweredOn
	if vs.HA.RestartPriority == "" {
		vs.HA.RestartPriority = spec.HA.RestartPriority
	}
	if vs.HA.IsolationResponse == "" {
		vs.HA.IsolationResponse = spec.HA.IsolationResponse
	}
	ref, _ := api.ParsePath(key)
	o := api.New(api.KindVirtualMachine, api.NamespacedPath(api.KindVirtualMachine, ref.Datacenter, ref.Namespace, name), vs)
	o.Labels = maps.Clone(spec.Template.Labels)
	o.Owner = key
	return o
}

// writeStatus writes the set's status when it changed. Conditions keep
// their transition time while they hold.
func (c *ReplicaSets) writeStatus(key string, st api.ReplicaSetStatus, now time.Time) error {
	_, err := c.inv.WriteStatus(ReplicaSetUser, key, func(cur *api.Object) (bool, error) {
		var old api.ReplicaSetStatus
		_ = cur.DecodeStatus(&old)
		cond := api.Condition{Type: "ReplicaFailure", Status: "False"}
		if len(st.Waiting) > 0 {
			cond = api.Condition{Type: "ReplicaFailure", Status: "True", Reason: st.Waiting[0].Reason, Message: st.Waiting[0].Message}
		}
		st.Conditions = []api.Condition{setCondition(old.Conditions, cond, now)}
		if len(st.Waiting) > 0 && len(old.Waiting) > 0 {
			// keep when the wait began
			since := map[string]time.Time{}
			for _, w := range old.Waiting {
				since[w.VM] = w.Since
			}
			for i, w := range st.Waiting {
				if s, ok := since[w.VM]; ok {
					st.Waiting[i].Since = s
				}
			}
		}
		if reflect.DeepEqual(normalizeStatus(old), normalizeStatus(st)) {
			return false, nil
		}
		cur.SetStatus(st)
		return true, nil
	})
	return err
}

// normalizeStatus puts a status in its stored form (UTC times, nil for
// empty lists) so one read back compares equal to one about to be written.
func normalizeStatus(st api.ReplicaSetStatus) api.ReplicaSetStatus {
	st.Waiting = append([]api.MemberWait(nil), st.Waiting...)
	for i := range st.Waiting {
		st.Waiting[i].RetryAt = st.Waiting[i].RetryAt.UTC()
		st.Waiting[i].Since = st.Waiting[i].Since.UTC()
	}
	if len(st.Waiting) == 0 {
		st.Waiting = nil
	}
	for i := range st.Conditions {
		st.Conditions[i].LastTransition = st.Conditions[i].LastTransition.UTC()
	}
	return st
}

// setCondition returns c with its transition time: kept from the old
// condition of its type when the status did not change.
func setCondition(old []api.Condition, c api.Condition, now time.Time) api.Condition {
	for _, o := range old {
		if o.Type == c.Type && o.Status == c.Status {
			c.LastTransition = o.LastTransition
			return c
		}
	}
	c.LastTransition = now.UTC()
	return c
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
