package controllers

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/lb"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// EndpointsUser names the endpoints controller in events.
const EndpointsUser = "controller:endpoints"

// Endpoints keeps every Service's endpoints (its status): the VMs of its
// namespace its selector picks, ready or not, with their addresses,
// resolved target ports and hosts. It is level-triggered: a Service is
// looked at again whenever it changes, whenever a VM it selects (before
// or after the change) changes what an endpoint shows (labels, power,
// readiness, IP, host, ports), and whenever a host's connection state
// changes, so a VM that stops being ready leaves with the host's report.
type Endpoints struct {
	inv     *inventory.Inventory
	decoded vmCache

	mu       sync.Mutex
	services map[string]svcSel // Service path -> what its selector needs
}

type svcSel struct {
	dc, ns   string
	selector map[string]string
}

// NewEndpoints makes the controller.
func NewEndpoints(inv *inventory.Inventory) *Endpoints {
	return &Endpoints{inv: inv, services: map[string]svcSel{}}
}

func (c *Endpoints) Name() string { return "endpoints" }

func (c *Endpoints) Keys(old, new *api.Object) []string {
	o := new
	if o == nil {
		o = old
	}
	switch o.Kind {
	case api.KindService:
		c.mu.Lock()
		defer c.mu.Unlock()
		if new == nil {
			delete(c.services, o.Path)
		} else {
			c.services[o.Path] = selOf(new)
		}
		return []string{o.Path}
	case api.KindHost:
		if old != nil && new != nil && connState(old) == connState(new) {
			return nil
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return slices.Sorted(maps.Keys(c.services))
	case api.KindVirtualMachine:
		if new == nil {
			c.decoded.forget(old.Path)
		}
		if old != nil && new != nil && reflect.DeepEqual(c.view(old), c.view(new)) {
			return nil
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		var keys []string
		for p, s := range c.services {
			for _, v := range []*api.Object{old, new} {
				if v != nil && s.selects(v) {
					keys = append(keys, p)
					break
				}
			}
		}
		slices.Sort(keys)
		return keys
	}
	return nil
}

func (c *Endpoints) Resync(inv *inventory.Inventory) []string {
	var keys []string
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range inv.List(store.Query{Kind: api.KindService}).Items {
		c.services[o.Path] = selOf(o)
		keys = append(keys, o.Path)
	}
	return keys
}

func (c *Endpoints) Reconcile(_ context.Context, key string) (Result, error) {
	obj, spec, err := load[api.ServiceSpec](c.inv, key)
	if obj == nil || err != nil {
		return Result{}, err
	}
	ref, err := api.ParsePath(key)
	if err != nil {
		return Result{}, err
	}
	var subsets []api.EndpointSubset
	if len(spec.Selector) > 0 && spec.Type != api.ServiceExternalName {
		hosts := map[string]string{}
		for _, h := range c.inv.List(store.Query{Kind: api.KindHost, Prefix: "/" + ref.Datacenter}).Items {
			hosts[h.Path] = connState(h)
		}
		var vms []lb.VM
		sel := svcSel{dc: ref.Datacenter, ns: ref.Namespace, selector: spec.Selector}
		// The namespace's folder (the default namespace's is the whole vm
		// folder; selects keeps its top level only).
		folder := "/" + ref.Datacenter + "/vm"
		if ref.Namespace != "" {
			folder += "/" + ref.Namespace
		}
		for _, v := range c.inv.List(store.Query{Kind: api.KindVirtualMachine, Prefix: folder, Filter: sel.selects}).Items {
			vms = append(vms, c.view(v))
		}
		subsets = lb.Endpoints(ref.Namespace, spec, vms, hosts)
	}
	ready, total := lb.Count(subsets)
	st := api.ServiceStatus{ObservedGeneration: obj.Generation, Subsets: subsets, Ready: ready, Total: total}
	var was api.ServiceStatus
	_ = obj.DecodeStatus(&was)
	// status.loadBalancer is not this controller's (admission gives the
	// address, the load balancer controller its host): it is carried over
	// from the object as it is inside the write, never from an older read.
	st.LoadBalancer = was.LoadBalancer
	if reflect.DeepEqual(was, st) {
		return Result{}, nil
	}
	// The status and the event saying who joined or left are one write:
	// a vcenter killed between them loses neither alone.
	msg := membersChange(was, st)
	if err := c.inv.Update(EndpointsUser, func(t *inventory.Txn) error {
		cur, err := t.Get(key)
		if err != nil {
			return err
		}
		var now api.ServiceStatus
		_ = cur.DecodeStatus(&now)
		st.LoadBalancer = now.LoadBalancer
		cur.SetStatus(st)
		if _, err := t.Update(cur); err != nil {
			return err
		}
		if msg == "" {
			return nil
		}
		return t.Event("info", "EndpointsChangedEvent", key, "%s: %d of %d endpoints ready", msg, ready, total)
	}); err != nil {
		return Result{}, err
	}
	return Result{}, nil
}

// view is what an endpoint shows of a VM; a change elsewhere (CPU use,
// restarts) concerns no Service.
func (c *Endpoints) view(o *api.Object) lb.VM {
	spec, st := c.decoded.decode(o)
	ref, _ := api.ParsePath(o.Path)
	vm := lb.VM{Path: o.Path, Namespace: ref.Namespace, Labels: o.Labels,
		Running: spec.PowerState == api.PoweredOn && st.PowerState == api.PoweredOn && st.Phase == "",
		Ready:   st.Ready, IP: st.IP, Host: st.Host}
	if vm.Host == "" {
		vm.Host = spec.Host
	}
	for _, ct := range spec.Containers {
		vm.Ports = append(vm.Ports, ct.Ports...)
	}
	return vm
}

func selOf(o *api.Object) svcSel {
	var spec api.ServiceSpec
	_ = o.DecodeSpec(&spec)
	ref, _ := api.ParsePath(o.Path)
	return svcSel{dc: ref.Datacenter, ns: ref.Namespace, selector: spec.Selector}
}

// selects says whether the Service could pick VM v: same datacenter and
// namespace, labels matching a non-empty selector.
func (s svcSel) selects(v *api.Object) bool {
	if len(s.selector) == 0 {
		return false
	}
	ref, err := api.ParsePath(v.Path)
	if err != nil || ref.Datacenter != s.dc || ref.Namespace != s.ns {
		return false
	}
	for k, want := range s.selector {
		if got, ok := v.Labels[k]; !ok || got != want {
			return false
		}
	}
	return true
}

func connState(h *api.Object) string {
	var st api.HostStatus
	_ = h.DecodeStatus(&st)
	return st.State
}

// membersChange names the VMs that joined or left the ready endpoints
// ("" when the ready set is the same).
func membersChange(was, now api.ServiceStatus) string {
	ready := func(st api.ServiceStatus) map[string]bool {
		m := map[string]bool{}
		for _, s := range st.Subsets {
			for _, a := range s.Addresses {
				m[a.VM] = true
			}
		}
		return m
	}
	a, b := ready(was), ready(now)
	var joined, left []string
	for vm := range b {
		if !a[vm] {
			joined = append(joined, api.Base(vm))
		}
	}
	for vm := range a {
		if !b[vm] {
			left = append(left, api.Base(vm))
		}
	}
	slices.Sort(joined)
	slices.Sort(left)
	var parts []string
	if len(joined) > 0 {
		parts = append(parts, "ready "+strings.Join(joined, ", "))
	}
	if len(left) > 0 {
		parts = append(parts, "left "+strings.Join(left, ", "))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("endpoints %s", strings.Join(parts, "; "))
}
