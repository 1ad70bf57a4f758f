package controllers

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/lb"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// LoadBalancerUser names the load balancer controller in events.
const LoadBalancerUser = "controller:loadbalancer"

// LoadBalancer keeps, for every load balancer address a cluster gave out
// (a LoadBalancer Service's, the cluster's Ingress address), the one
// healthy host that answers for it: status.loadBalancer.ingress[0].host of
// the Service, status.ingress.host of the cluster. The choice is
// lb.Holders (sticky, spread). It also gives pending LoadBalancer Services
// an address once their cluster has a free one. Its key is a cluster: a
// change of a host's health, of a cluster, or of a LoadBalancer Service
// looks at the whole cluster again, so the spread is decided over all its
// addresses at once.
//
// Of a Service's status it writes only loadBalancer.ingress[].host (and
// an address for a pending Service, through the inventory's allocation);
// the endpoints controller writes the rest and carries loadBalancer over
// inside its own write, so neither overwrites the other.
type LoadBalancer struct {
	inv *inventory.Inventory

	mu sync.Mutex
	// pending are the LoadBalancer Services without an address, per cluster.
	pending map[string]map[string]bool
}

// NewLoadBalancer makes the controller.
func NewLoadBalancer(inv *inventory.Inventory) *LoadBalancer {
	return &LoadBalancer{inv: inv, pending: map[string]map[string]bool{}}
}

func (c *LoadBalancer) Name() string { return "loadbalancer" }

// lbView is what the controller reads of a Service.
type lbView struct {
	cluster    string
	lb         bool   // type LoadBalancer
	ip, holder string // status.loadBalancer.ingress[0]
}

func lbViewOf(o *api.Object) lbView {
	if o == nil {
		return lbView{}
	}
	var s api.ServiceSpec
	var st api.ServiceStatus
	_ = o.DecodeSpec(&s)
	_ = o.DecodeStatus(&st)
	v := lbView{cluster: s.Cluster, lb: s.Type == api.ServiceLoadBalancer}
	if len(st.LoadBalancer.Ingress) > 0 {
		v.ip, v.holder = st.LoadBalancer.Ingress[0].IP, st.LoadBalancer.Ingress[0].Host
	}
	return v
}

// hostView is what holder health depends on.
type hostView struct {
	state       string
	maintenance bool
}

func hostViewOf(o *api.Object) hostView {
	if o == nil {
		return hostView{}
	}
	var s api.HostSpec
	_ = o.DecodeSpec(&s)
	return hostView{state: connState(o), maintenance: s.Maintenance}
}

func (c *LoadBalancer) Keys(old, new *api.Object) []string {
	o := new
	if o == nil {
		o = old
	}
	switch o.Kind {
	case api.KindCluster:
		return []string{o.Path}
	case api.KindHost:
		if old != nil && new != nil && hostViewOf(old) == hostViewOf(new) {
			return nil
		}
		ref, err := api.ParsePath(o.Path)
		if err != nil || ref.Cluster == "" {
			return nil
		}
		return []string{ref.ClusterPath()}
	case api.KindService:
		a, b := lbViewOf(old), lbViewOf(new)
		c.mu.Lock()
		defer c.mu.Unlock()
		if a.cluster != "" {
			delete(c.pending[a.cluster], o.Path)
		}
		if new != nil && b.lb && b.ip == "" && b.cluster != "" {
			if c.pending[b.cluster] == nil {
				c.pending[b.cluster] = map[string]bool{}
			}
			c.pending[b.cluster][o.Path] = true
		}
		if a == b {
			return nil
		}
		var keys []string
		for _, k := range []string{a.cluster, b.cluster} {
			if k != "" && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		return keys
	}
	return nil
}

func (c *LoadBalancer) Resync(inv *inventory.Inventory) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range inv.List(store.Query{Kind: api.KindService}).Items {
		if v := lbViewOf(o); v.lb && v.ip == "" && v.cluster != "" {
			if c.pending[v.cluster] == nil {
				c.pending[v.cluster] = map[string]bool{}
			}
			c.pending[v.cluster][o.Path] = true
		}
	}
	var keys []string
	for _, o := range inv.List(store.Query{Kind: api.KindCluster}).Items {
		keys = append(keys, o.Path)
	}
	return keys
}

func (c *LoadBalancer) Reconcile(_ context.Context, key string) (Result, error) {
	cl, err := c.inv.Get(key)
	if err != nil {
		if isNotFoundErr(err) {
			return Result{}, nil
		}
		return Result{}, err
	}
	var spec api.ClusterSpec
	_ = cl.DecodeSpec(&spec)
	if len(spec.LoadBalancerAddresses) > 0 {
		c.mu.Lock()
		pending := slices.Sorted(maps.Keys(c.pending[key]))
		c.mu.Unlock()
		for _, p := range pending {
			// Not getting one (none free, or no longer pending) is not an
			// error: the next release or range change looks again.
			if _, err := c.inv.AssignLoadBalancerAddress(LoadBalancerUser, p); err != nil {
				return Result{}, err
			}
		}
	}
	var hosts []lb.HolderHost
	for _, h := range c.inv.List(store.Query{Kind: api.KindHost, Prefix: key}).Items {
		v := hostViewOf(h)
		hh := lb.HolderHost{Path: h.Path, Healthy: v.state == api.HostConnected && !v.maintenance}
		switch {
		case v.maintenance || v.state == api.HostMaintenance:
			hh.Reason = "entering maintenance mode"
		case v.state == api.HostNotResponding:
			hh.Reason = "not responding (failed, isolated or unreachable)"
		case !hh.Healthy:
			hh.Reason = "state " + orNone(v.state)
		}
		hosts = append(hosts, hh)
	}
	addrs := c.inv.LoadBalancerAddresses(key)
	ips := make([]string, len(addrs))
	holderOf := map[string]string{}
	current := map[string]string{}
	for i, a := range addrs {
		ips[i] = a.IP
		holderOf[a.IP] = a.Holder
		current[a.IP] = c.answering(a)
	}
	_, moves := lb.Holders(ips, current, hosts)
	for _, m := range moves {
		if err := c.move(holderOf[m.IP], m); err != nil {
			return Result{}, err
		}
	}
	return Result{}, c.followIngress(key)
}

// followIngress gives the Services sharing cluster's Ingress address its
// holder: one host answers for the address, whatever port is asked.
func (c *LoadBalancer) followIngress(cluster string) error {
	sharers := c.inv.IngressSharers(cluster)
	if len(sharers) == 0 {
		return nil
	}
	cl, err := c.inv.Get(cluster)
	if err != nil {
		return err
	}
	var cst api.ClusterStatus
	_ = cl.DecodeStatus(&cst)
	for _, p := range sharers {
		o, err := c.inv.Get(p)
		if err != nil || lbViewOf(o).holder == cst.Ingress.Host {
			continue
		}
		err = c.inv.Update(LoadBalancerUser, func(t *inventory.Txn) error {
			o, err := t.Get(p)
			if err != nil {
				if isNotFoundErr(err) {
					return nil
				}
				return err
			}
			var st api.ServiceStatus
			_ = o.DecodeStatus(&st)
			if len(st.LoadBalancer.Ingress) == 0 || !st.LoadBalancer.Ingress[0].Shared || st.LoadBalancer.Ingress[0].IP != cst.Ingress.IP {
				return nil // it stopped sharing meanwhile
			}
			from := st.LoadBalancer.Ingress[0].Host
			st.LoadBalancer.Ingress[0].Host = cst.Ingress.Host
			o.SetStatus(st)
			if _, err := t.Update(o); err != nil {
				return err
			}
			if cst.Ingress.Host == "" {
				return t.Event("error", "LoadBalancerHolderChangedEvent", p, "Ingress address %s shared by Service %s: no healthy host left to answer for it", cst.Ingress.IP, p)
			}
			if from == "" {
				return t.Event("info", "LoadBalancerHolderChangedEvent", p, "Ingress address %s shared by Service %s: answered by %s", cst.Ingress.IP, p, api.Base(cst.Ingress.Host))
			}
			return t.Event("warning", "LoadBalancerHolderChangedEvent", p, "Ingress address %s shared by Service %s: answered by %s instead of %s, with the Ingress", cst.Ingress.IP, p, api.Base(cst.Ingress.Host), api.Base(from))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// answering reads the host now answering for address a.
func (c *LoadBalancer) answering(a inventory.LoadBalancerAddress) string {
	o, err := c.inv.Get(a.Holder)
	if err != nil {
		return ""
	}
	if o.Kind == api.KindCluster {
		var st api.ClusterStatus
		_ = o.DecodeStatus(&st)
		if st.Ingress.IP == a.IP {
			return st.Ingress.Host
		}
		return ""
	}
	if v := lbViewOf(o); v.ip == a.IP {
		return v.holder
	}
	return ""
}

// move writes m's new holder into the status of the address's owner, with
// the event saying who answered before and why it stopped, in one write.
func (c *LoadBalancer) move(owner string, m lb.Move) error {
	return c.inv.Update(LoadBalancerUser, func(t *inventory.Txn) error {
		o, err := t.Get(owner)
		if err != nil {
			if isNotFoundErr(err) {
				return nil
			}
			return err
		}
		what := "Service " + owner
		if o.Kind == api.KindCluster {
			var st api.ClusterStatus
			_ = o.DecodeStatus(&st)
			if st.Ingress.IP != m.IP {
				return nil // the address moved on meanwhile: the next reconcile sees it
			}
			st.Ingress.Host = m.To
			o.SetStatus(st)
			what = "the Ingress of cluster " + owner
		} else {
			var st api.ServiceStatus
			_ = o.DecodeStatus(&st)
			if len(st.LoadBalancer.Ingress) == 0 || st.LoadBalancer.Ingress[0].IP != m.IP {
				return nil
			}
			st.LoadBalancer.Ingress[0].Host = m.To
			o.SetStatus(st)
		}
		if _, err := t.Update(o); err != nil {
			return err
		}
		switch {
		case m.From == "":
			return t.Event("info", "LoadBalancerHolderChangedEvent", owner, "load balancer address %s of %s: answered by %s", m.IP, what, api.Base(m.To))
		case m.To == "":
			return t.Event("error", "LoadBalancerHolderChangedEvent", owner, "load balancer address %s of %s: no healthy host left to answer for it (%s was %s)", m.IP, what, api.Base(m.From), m.Why)
		}
		return t.Event("warning", "LoadBalancerHolderChangedEvent", owner, "load balancer address %s of %s: answered by %s instead of %s (%s)", m.IP, what, api.Base(m.To), api.Base(m.From), m.Why)
	})
}

func isNotFoundErr(err error) bool { return errors.Is(err, api.ErrNotFound) }
