package controllers

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"sync"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// IngressUser names the Ingress status controller in events.
const IngressUser = "controller:ingress"

// IngressStatus keeps every Ingress's status.loadBalancer.ingress: the
// address its cluster's Ingress proxies answer on (the cluster's
// status.ingress, one of its load balancer addresses) and the host
// answering for it, as Kubernetes' Ingress controllers report theirs. An
// Ingress is looked at again when it changes and when its cluster's
// Ingress address or holder does.
type IngressStatus struct {
	inv *inventory.Inventory

	mu        sync.Mutex
	ingresses map[string]string // Ingress path -> its datacenter
}

// NewIngressStatus makes the controller.
func NewIngressStatus(inv *inventory.Inventory) *IngressStatus {
	return &IngressStatus{inv: inv, ingresses: map[string]string{}}
}

func (c *IngressStatus) Name() string { return "ingress" }

func (c *IngressStatus) Keys(old, new *api.Object) []string {
	o := new
	if o == nil {
		o = old
	}
	switch o.Kind {
	case api.KindIngress:
		c.mu.Lock()
		defer c.mu.Unlock()
		if new == nil {
			delete(c.ingresses, o.Path)
			return nil
		}
		ref, _ := api.ParsePath(o.Path)
		c.ingresses[o.Path] = ref.Datacenter
		return []string{o.Path}
	case api.KindCluster:
		if old != nil && new != nil && reflect.DeepEqual(clusterIngress(old), clusterIngress(new)) {
			return nil
		}
		ref, _ := api.ParsePath(o.Path)
		c.mu.Lock()
		defer c.mu.Unlock()
		var keys []string
		for p, dc := range c.ingresses {
			if dc == ref.Datacenter {
				keys = append(keys, p)
			}
		}
		slices.Sort(keys)
		return keys
	}
	return nil
}

func clusterIngress(o *api.Object) api.LoadBalancerIngress {
	var st api.ClusterStatus
	_ = o.DecodeStatus(&st)
	return st.Ingress
}

func (c *IngressStatus) Resync(inv *inventory.Inventory) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range inv.List(store.Query{Kind: api.KindIngress}).Items {
		ref, _ := api.ParsePath(o.Path)
		c.ingresses[o.Path] = ref.Datacenter
	}
	return slices.Sorted(maps.Keys(c.ingresses))
}

func (c *IngressStatus) Reconcile(_ context.Context, key string) (Result, error) {
	obj, spec, err := load[api.IngressSpec](c.inv, key)
	if obj == nil || err != nil {
		return Result{}, err
	}
	ref, err := api.ParsePath(key)
	if err != nil {
		return Result{}, err
	}
	cluster := spec.Cluster
	if cluster == "" {
		// The datacenter's only cluster, as for Services; with several, an
		// Ingress must name its own.
		cs := c.inv.List(store.Query{Kind: api.KindCluster, Prefix: "/" + ref.Datacenter + "/host"}).Items
		if len(cs) == 1 {
			cluster = cs[0].Path
		}
	}
	var want api.IngressStatus
	if cluster != "" {
		if co, err := c.inv.Get(cluster); err == nil {
			if in := clusterIngress(co); in.IP != "" {
				want.LoadBalancer.Ingress = []api.LoadBalancerIngress{in}
			}
		}
	}
	var was api.IngressStatus
	_ = obj.DecodeStatus(&was)
	if reflect.DeepEqual(was, want) {
		return Result{}, nil
	}
	return Result{}, c.inv.Update(IngressUser, func(t *inventory.Txn) error {
		cur, err := t.Get(key)
		if err != nil {
			return err
		}
		cur.SetStatus(want)
		_, err = t.Update(cur)
		return err
	})
}
