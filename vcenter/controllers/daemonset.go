package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/labels"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// DaemonSetUser is who the DaemonSet controller's actions are recorded as.
const DaemonSetUser = "controller:daemonset"

// DaemonSets keeps one VM of each DaemonSet's template on every host of
// its pool's cluster whose labels match the template's hostSelector. A
// member is pinned to its host and named NAME-HOST. Hosts that join get
// one; a host that enters maintenance mode has its member powered off and
// removed (evacuated); a removed host's member goes with it; a host that
// is not responding keeps its member (it may still run there). A template
// change replaces members one host at a time, the next only once every
// other member is ready.
type DaemonSets struct {
	inv   *inventory.Inventory
	clock Clock

	mu      sync.Mutex
	sets    map[string]string // DaemonSet path -> its cluster path
	retryAt map[string]time.Time
	waits   map[string]int
}

// NewDaemonSets makes the controller.
func NewDaemonSets(inv *inventory.Inventory, clock Clock) *DaemonSets {
	if clock == nil {
		clock = realClock{}
	}
	return &DaemonSets{inv: inv, clock: clock, sets: map[string]string{}, retryAt: map[string]time.Time{}, waits: map[string]int{}}
}

func (c *DaemonSets) Name() string { return "daemonset" }

// Keys: a DaemonSet; its members; every DaemonSet of a host's cluster when
// the host joins, leaves or changes.
func (c *DaemonSets) Keys(old, new *api.Object) []string {
	o := new
	if o == nil {
		o = old
	}
	switch o.Kind {
	case api.KindDaemonSet:
		c.mu.Lock()
		if new == nil {
			delete(c.sets, o.Path)
		} else {
			c.sets[o.Path] = clusterOfPool(new)
		}
		c.mu.Unlock()
		return []string{o.Path}
	case api.KindVirtualMachine:
		if memberUnchanged(old, new) {
			return nil
		}
		var keys []string
		for _, v := range []*api.Object{old, new} {
			if v != nil && isKind(v.Owner, api.KindDaemonSet) {
				keys = append(keys, v.Owner)
			}
		}
		return keys
	case api.KindHost:
		if old != nil && new != nil && hostUnchanged(old, new) {
			return nil // a heartbeat (lastSeen) or usage figures
		}
		ref, err := api.ParsePath(o.Path)
		if err != nil {
			return nil
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		var keys []string
		for p, cl := range c.sets {
			if cl == ref.ClusterPath() {
				keys = append(keys, p)
			}
		}
		return keys
	}
	return nil
}

// hostUnchanged: nothing a DaemonSet cares about changed (state, maintenance, labels).
func hostUnchanged(old, new *api.Object) bool {
	var a, b api.HostStatus
	var sa, sb api.HostSpec
	_ = old.DecodeStatus(&a)
	_ = new.DecodeStatus(&b)
	_ = old.DecodeSpec(&sa)
	_ = new.DecodeSpec(&sb)
	return a.State == b.State && sa == sb && reflect.DeepEqual(old.Labels, new.Labels)
}

func clusterOfPool(o *api.Object) string {
	var s struct {
		Pool string `json:"pool"`
	}
	_ = o.DecodeSpec(&s)
	r, err := api.ParsePath(s.Pool)
	if err != nil {
		return ""
	}
	return r.ClusterPath()
}

func (c *DaemonSets) Resync(inv *inventory.Inventory) []string {
	// List before locking: the store's hook takes c.mu under the store's lock.
	sets := inv.List(store.Query{Kind: api.KindDaemonSet}).Items
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []string
	for _, o := range sets {
		c.sets[o.Path] = clusterOfPool(o)
		keys = append(keys, o.Path)
	}
	return keys
}

func (c *DaemonSets) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, spec, err := load[api.DaemonSetSpec](c.inv, key)
	if obj == nil || err != nil {
		return Result{}, err
	}
	now := c.clock.Now()
	hash := TemplateHash(spec.Template)
	cluster := clusterOfPool(obj)

	// Hosts that should run a member.
	type hostInfo struct {
		path    string
		state   string
		maint   bool
		matches bool
	}
	hostSelector, err := labels.FromLabelSelector(api.LabelSelector{MatchLabels: spec.Template.Spec.HostSelector})
	if err != nil {
		return Result{}, err // checked when the DaemonSet was written
	}
	hosts := map[string]hostInfo{}
	for _, h := range c.inv.List(store.Query{Kind: api.KindHost, Prefix: cluster}).Items {
		var hs api.HostSpec
		var st api.HostStatus
		_ = h.DecodeSpec(&hs)
		_ = h.DecodeStatus(&st)
		hosts[h.Path] = hostInfo{path: h.Path, state: st.State, maint: hs.Maintenance, matches: hostSelector.Matches(api.HostLabels(h))}
	}
	members := map[string][]member{} // host -> members
	for _, vm := range c.inv.List(store.Query{Kind: api.KindVirtualMachine, Filter: func(o *api.Object) bool { return o.Owner == key }}).Items {
		m := member{obj: vm}
		_ = vm.DecodeSpec(&m.spec)
		_ = vm.DecodeStatus(&m.status)
		m.host = hosts[m.spec.Host].state
		members[m.spec.Host] = append(members[m.spec.Host], m)
	}

	st := api.DaemonSetStatus{ObservedGeneration: obj.Generation}
	var toCreate []string
	var outdated []member
	unready := 0
	for hp, h := range hosts {
		want := h.matches && !h.maint
		if want {
			st.DesiredNumberScheduled++
		}
		var keep *member
		leaving := false // the host's old member has not stopped yet: its name is still taken
		for i, m := range members[hp] {
			switch {
			case m.spec.Removing:
				if !m.running() && !m.hostDown() {
					if err := c.remove(m); err != nil {
						return Result{}, err
					}
				} else {
					leaving = true
				}
			case !want:
				why := fmt.Sprintf("host %s no longer matches %s's hostSelector", api.Base(hp), api.Base(key))
				if h.maint {
					why = fmt.Sprintf("host %s entered maintenance mode", api.Base(hp))
				}
				if _, err := c.inv.Retire(DaemonSetUser, m.obj.Path, why); err != nil && !errors.Is(err, api.ErrNotFound) {
					return Result{}, err
				}
			case keep != nil || m.failed():
				// a second member on one host (or a failed one): removed
				if _, err := c.inv.Retire(DaemonSetUser, m.obj.Path, "one member per host"); err != nil && !errors.Is(err, api.ErrNotFound) {
					return Result{}, err
				}
			default:
				keep = &members[hp][i]
			}
		}
		if !want {
			continue
		}
		if keep == nil {
			if !leaving {
				toCreate = append(toCreate, hp)
			}
			unready++
			continue
		}
		st.CurrentNumberScheduled++
		if keep.running() && keep.status.Ready {
			st.NumberReady++
		} else {
			unready++
		}
		if keep.obj.Labels[TemplateHashLabel] != hash {
			outdated = append(outdated, *keep)
		}
	}
	// Members of hosts that left the cluster.
	for hp, ms := range members {
		if _, ok := hosts[hp]; ok {
			continue
		}
		for _, m := range ms {
			if err := c.remove(m); err != nil {
				return Result{}, err
			}
		}
	}

	// Rolling replacement: one outdated member at a time, once all others are ready.
	sort.Slice(outdated, func(i, j int) bool { return outdated[i].obj.Path < outdated[j].obj.Path })
	if len(outdated) > 0 && unready == 0 && len(toCreate) == 0 {
		if _, err := c.inv.Retire(DaemonSetUser, outdated[0].obj.Path, fmt.Sprintf("%s has a new template", api.Base(key))); err != nil && !errors.Is(err, api.ErrNotFound) {
			return Result{}, err
		}
	}

	res := Result{}
	c.mu.Lock()
	held := c.retryAt[key]
	c.mu.Unlock()
	sort.Strings(toCreate)
	if len(toCreate) > 0 && !now.Before(held) {
		refused := false
		for _, hp := range toCreate {
			if _, err := c.inv.Create(DaemonSetUser, c.memberOf(key, obj, spec, hash, hp)); err != nil {
				if !inventory.Refusal(err) {
					return Result{}, err
				}
				refused = true
				st.Waiting = append(st.Waiting, api.MemberWait{VM: obj.Name() + "-" + api.Base(hp), Reason: api.SentinelOf(err).Reason, Message: api.Message(err), Since: now})
			}
		}
		c.mu.Lock()
		if refused {
			c.waits[key]++
			d := Backoff(c.waits[key] - 1)
			c.retryAt[key] = now.Add(d)
			res.RequeueAfter = d
			for i := range st.Waiting {
				st.Waiting[i].RetryAt = now.Add(d)
			}
		} else {
			delete(c.waits, key)
			delete(c.retryAt, key)
		}
		c.mu.Unlock()
	} else if len(toCreate) > 0 {
		var old api.DaemonSetStatus
		_ = obj.DecodeStatus(&old)
		st.Waiting = old.Waiting
		res.RequeueAfter = held.Sub(now)
	}
	_, err = c.inv.WriteStatus(DaemonSetUser, key, func(cur *api.Object) (bool, error) {
		var old api.DaemonSetStatus
		_ = cur.DecodeStatus(&old)
		if reflect.DeepEqual(normalizeDaemon(old), normalizeDaemon(st)) {
			return false, nil
		}
		cur.SetStatus(st)
		return true, nil
	})
	return res, err
}

func normalizeDaemon(st api.DaemonSetStatus) api.DaemonSetStatus {
	st.Waiting = normalizeStatus(api.ReplicaSetStatus{Waiting: st.Waiting}).Waiting
	return st
}

func (c *DaemonSets) remove(m member) error {
	err := c.inv.Remove(DaemonSetUser, m.obj.Path, inventory.RemoveOptions{ResourceVersion: m.obj.ResourceVersion})
	if err != nil && !errors.Is(err, api.ErrNotFound) && !errors.Is(err, api.ErrConflict) {
		return err
	}
	return nil
}

// memberOf builds the member for host hp, pinned there.
func (c *DaemonSets) memberOf(key string, set *api.Object, spec api.DaemonSetSpec, hash, hp string) *api.Object {
	ref, _ := api.ParsePath(key)
	vs := spec.Template.Spec
	vs.Pool, vs.PowerState, vs.Host, vs.Pinned = spec.Pool, api.PoweredOn, hp, true
	if vs.HA.RestartPriority == "" {
		vs.HA.RestartPriority = spec.HA.RestartPriority
	}
	if vs.HA.IsolationResponse == "" {
		vs.HA.IsolationResponse = spec.HA.IsolationResponse
	}
	o := api.New(api.KindVirtualMachine, api.NamespacedPath(api.KindVirtualMachine, ref.Datacenter, ref.Namespace, set.Name()+"-"+api.Base(hp)), vs)
	o.Labels = maps.Clone(spec.Template.Labels)
	if o.Labels == nil {
		o.Labels = map[string]string{}
	}
	o.Labels[TemplateHashLabel] = hash
	o.Owner = key
	return o
}
