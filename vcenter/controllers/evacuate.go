package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// EvacuationPoll is how often a host entering maintenance is looked at
// while VMs are on their way out, besides the changes that queue it.
const EvacuationPoll = time.Second

// EvacuationStartWait is how long the evacuation waits for a VM it
// cold-migrated to run on its new host before it moves the next one:
// one at a time, but a destination that is slow to report does not hold
// the whole evacuation up.
const EvacuationStartWait = 30 * time.Second

// Evacuation moves the VMs off hosts entering maintenance mode, as
// vSphere's DRS does before a host reaches maintenance: replica-set
// members are replaced elsewhere before they stop (the replica-set
// controller does it, surging by one), DaemonSet members are stopped (the
// DaemonSet controller does it), and every other VM is cold-migrated, one
// at a time, where DRS places it; with -evacuate powered-off VMs are
// re-registered elsewhere too. Nothing moves while taking the host's
// capacity away would break HA's failover level: the host says why it
// waits. Once nothing is left the host is in maintenance; when the
// timeout expires first, the host is back in service, what moved stays
// where it runs, and the host's progress says why.
type Evacuation struct {
	inv   *inventory.Inventory
	clock Clock

	mu      sync.Mutex
	hosts   map[string]bool // hosts entering maintenance
	refused map[string]int  // host -> consecutive refused migrations
	retryAt map[string]time.Time
	moving  map[string]moved // host -> the VM it last cold-migrated away
}

type moved struct {
	path  string
	since time.Time // when the evacuation first saw it starting on its new host
}

// NewEvacuation makes the controller.
func NewEvacuation(inv *inventory.Inventory, clock Clock) *Evacuation {
	if clock == nil {
		clock = realClock{}
	}
	return &Evacuation{inv: inv, clock: clock, hosts: map[string]bool{}, refused: map[string]int{}, retryAt: map[string]time.Time{}, moving: map[string]moved{}}
}

func (c *Evacuation) Name() string { return "evacuation" }

// entering says whether a host object is entering maintenance.
func entering(o *api.Object) bool {
	var spec api.HostSpec
	var st api.HostStatus
	_ = o.DecodeSpec(&spec)
	_ = o.DecodeStatus(&st)
	return spec.Maintenance && st.Maintenance != nil && !st.Maintenance.Done
}

// Keys: a host entering maintenance; for a VM, the hosts entering
// maintenance it is on (spec or status), before and after the change.
func (c *Evacuation) Keys(old, new *api.Object) []string {
	o := new
	if o == nil {
		o = old
	}
	switch o.Kind {
	case api.KindHost:
		c.mu.Lock()
		defer c.mu.Unlock()
		if new != nil && entering(new) {
			c.hosts[o.Path] = true
			return []string{o.Path}
		}
		delete(c.hosts, o.Path)
		return nil
	case api.KindVirtualMachine:
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.hosts) == 0 {
			return nil
		}
		var keys []string
		for _, v := range []*api.Object{old, new} {
			if v == nil {
				continue
			}
			var sp, st struct {
				Host string `json:"host"`
			}
			_ = json.Unmarshal(v.Spec, &sp)
			_ = json.Unmarshal(v.Status, &st)
			for _, h := range []string{sp.Host, st.Host} {
				if c.hosts[h] {
					keys = append(keys, h)
				}
			}
		}
		return keys
	}
	return nil
}

func (c *Evacuation) Resync(inv *inventory.Inventory) []string {
	hosts := inv.List(store.Query{Kind: api.KindHost}).Items
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []string
	for _, h := range hosts {
		if entering(h) {
			c.hosts[h.Path] = true
			keys = append(keys, h.Path)
		}
	}
	return keys
}

func (c *Evacuation) forget(key string) {
	c.mu.Lock()
	delete(c.hosts, key)
	delete(c.refused, key)
	delete(c.retryAt, key)
	delete(c.moving, key)
	c.mu.Unlock()
}

// Reconcile takes one step of one host's evacuation.
func (c *Evacuation) Reconcile(ctx context.Context, key string) (Result, error) {
	h, err := c.inv.Get(key)
	if errors.Is(err, api.ErrNotFound) {
		c.forget(key)
		return Result{}, nil
	}
	if err != nil {
		return Result{}, err
	}
	var spec api.HostSpec
	var st api.HostStatus
	_ = h.DecodeSpec(&spec)
	_ = h.DecodeStatus(&st)
	if !spec.Maintenance || st.Maintenance == nil || st.Maintenance.Done {
		c.forget(key)
		return Result{}, nil
	}
	now := c.clock.Now()
	left := c.inv.List(store.Query{Kind: api.KindVirtualMachine, Filter: func(o *api.Object) bool {
		return inventory.OnHost(key)(o) && inventory.MustLeave(o, key, spec.EvacuatePoweredOff)
	}}).Items
	sort.Slice(left, func(i, j int) bool { return left[i].Path < left[j].Path })
	if len(left) == 0 {
		if err := c.inv.ReachMaintenance(inventory.EvacuationUser, key); err != nil && !errors.Is(err, api.ErrConflict) {
			return Result{}, err
		}
		c.forget(key)
		return Result{}, nil
	}
	prev := *st.Maintenance
	if dl := prev.Deadline; !dl.IsZero() && !now.Before(dl) {
		why := fmt.Sprintf("maintenance timeout of %ds expired with %d of %d VMs left (%s)",
			spec.MaintenanceTimeoutSeconds, len(left), max(prev.VMs, len(left)), orDash(firstOf(prev.Waiting, prev.Step)))
		if err := c.inv.AbortMaintenance(inventory.EvacuationUser, key, why); err != nil {
			return Result{}, err
		}
		c.forget(key)
		return Result{}, nil
	}
	p := api.MaintenanceProgress{VMsLeft: len(left)}
	res := Result{RequeueAfter: EvacuationPoll}
	if err := c.inv.MaintenanceHA(key); err != nil {
		// Taking the host's capacity away would break HA's failover
		// level: nothing moves until VMs are powered off, the cluster
		// grows or HA's settings change (or the timeout expires).
		p.Step, p.Waiting = "waiting for HA admission control", api.Message(err)
	} else if s := c.starting(key, now); s != "" {
		// One at a time: the VM that left last is not started yet.
		p.Step = s
	} else {
		p.Step, p.Waiting, err = c.step(key, left, now, prev.Waiting)
		if err != nil {
			return Result{}, err
		}
	}
	if err := c.inv.MaintenanceProgress(inventory.EvacuationUser, key, p); err != nil {
		return Result{}, err
	}
	c.mu.Lock()
	if at := c.retryAt[key]; at.After(now) {
		res.RequeueAfter = max(res.RequeueAfter, at.Sub(now))
	}
	c.mu.Unlock()
	if dl := prev.Deadline; !dl.IsZero() && dl.Sub(now) < res.RequeueAfter {
		res.RequeueAfter = max(dl.Sub(now), time.Millisecond)
	}
	return res, nil
}

// starting says which VM this host last cold-migrated away is still
// waiting to be started on its new host ("" once that host reported it,
// running or not: the next VM may move then).
func (c *Evacuation) starting(key string, now time.Time) string {
	c.mu.Lock()
	m := c.moving[key]
	c.mu.Unlock()
	if m.path == "" {
		return ""
	}
	o, err := c.inv.Get(m.path)
	if err == nil && inventory.MigrationStarting(o) {
		if m.since.IsZero() {
			m.since = now
			c.mu.Lock()
			c.moving[key] = m
			c.mu.Unlock()
		}
		if now.Sub(m.since) < EvacuationStartWait {
			var spec api.VMSpec
			_ = o.DecodeSpec(&spec)
			return fmt.Sprintf("starting %s on %s", o.Name(), api.Base(spec.Host))
		}
	}
	if err == nil && inventory.MigrationPending(o) {
		return "" // still stopping here: step says so
	}
	c.mu.Lock()
	delete(c.moving, key)
	c.mu.Unlock()
	return ""
}

// step moves what can move now: the first VM that is this controller's to
// migrate, while the others are waited for. It returns the step and, when
// nothing could move, why.
func (c *Evacuation) step(key string, left []*api.Object, now time.Time, prevWaiting string) (step, waiting string, err error) {
	var waits []string
	blocked := "" // a VM only the admin can move
	for _, o := range left {
		var spec api.VMSpec
		var st api.VMStatus
		_ = o.DecodeSpec(&spec)
		_ = o.DecodeStatus(&st)
		switch {
		case spec.Migration != nil:
			// Cold migration: stopped here first; started on the
			// destination once this host says it stopped it.
			waits = append(waits, fmt.Sprintf("stopping %s on %s (cold migration to %s)", o.Name(), api.Base(key), api.Base(spec.Migration.Host)))
		case spec.Host != key:
			waits = append(waits, fmt.Sprintf("%s is stopping here (moved to %s)", o.Name(), api.Base(spec.Host)))
		case spec.Removing:
			waits = append(waits, fmt.Sprintf("%s is stopping", o.Name()))
		case isKind(o.Owner, api.KindReplicaSet) && spec.PowerState == api.PoweredOn:
			waits = append(waits, fmt.Sprintf("replica set %s is replacing %s on another host", api.Base(o.Owner), o.Name()))
		case isKind(o.Owner, api.KindDaemonSet):
			waits = append(waits, fmt.Sprintf("DaemonSet %s is stopping %s", api.Base(o.Owner), o.Name()))
		case spec.Pinned && spec.PowerState == api.PoweredOn:
			if blocked == "" {
				blocked = fmt.Sprintf("%s is pinned to %s: migrate it with psc vm.migrate -host, or power it off", o.Name(), api.Base(key))
			}
		default:
			c.mu.Lock()
			held := c.retryAt[key]
			c.mu.Unlock()
			if now.Before(held) {
				return "waiting to retry a refused migration", prevWaiting, nil
			}
			out, err := c.inv.Migrate(inventory.EvacuationUser, o.Path, "")
			if err != nil {
				if !inventory.Refusal(err) && !errors.Is(err, api.ErrInvalid) {
					return "", "", err
				}
				c.mu.Lock()
				c.refused[key]++
				c.retryAt[key] = now.Add(Backoff(c.refused[key] - 1))
				c.mu.Unlock()
				return "", fmt.Sprintf("cannot move %s: %s", o.Name(), api.Message(err)), nil
			}
			c.mu.Lock()
			delete(c.refused, key)
			delete(c.retryAt, key)
			c.mu.Unlock()
			var ns api.VMSpec
			_ = out.DecodeSpec(&ns)
			if m := ns.Migration; m != nil {
				c.mu.Lock()
				c.moving[key] = moved{path: o.Path}
				c.mu.Unlock()
				return fmt.Sprintf("stopping %s on %s (cold migration to %s)", o.Name(), api.Base(key), api.Base(m.Host)), "", nil
			}
			return fmt.Sprintf("migrated %s to %s", o.Name(), api.Base(ns.Host)), "", nil
		}
	}
	if blocked != "" {
		return "waiting for the admin", blocked, nil
	}
	step = waits[0]
	if len(waits) > 1 {
		step = fmt.Sprintf("%s (and %d more)", waits[0], len(waits)-1)
	}
	return step, "", nil
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
