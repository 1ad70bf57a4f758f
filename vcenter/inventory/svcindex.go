package inventory

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"

	"github.com/podsphere/podsphere/api"
)

// allocs indexes what each cluster's Services hold of its service network
// (cluster IPs, node ports, load balancer addresses), so admitting a
// Service looks up what it asks for instead of reading every Service of
// the cluster. Like index, the store feeds it every mutation under its
// write lock, and admission reads it under that same lock; mu is for the
// controllers reading it from their own goroutines.
type allocs struct {
	mu       sync.Mutex
	clusters map[string]*clusterAllocs
	// held is what each Service (or cluster, for its Ingress address)
	// holds, so a change or removal releases exactly that.
	held map[string]holding
}

// clusterAllocs is one cluster's taken addresses and ports, each mapped
// to its holder.
type clusterAllocs struct {
	clusterIPs map[netip.Addr]string
	nodePorts  map[nodePortKey]portOwner
	lbIPs      map[netip.Addr]string // a Service's path, or the cluster's own (its Ingress)
	// ingressPorts are the ports of the Services sharing the cluster's
	// Ingress address (it stays the cluster's in lbIPs), by port and
	// protocol: one Service per port, as on any address.
	ingressPorts map[nodePortKey]portOwner
	// Where the next search for a free cluster IP or node port starts:
	// only a hint, so large ranges are not rescanned from their start.
	nextIP   netip.Addr
	nextPort int
}

type nodePortKey struct {
	port     int
	protocol string
}

// portOwner names who holds a node port: the Service and its port (a
// port's name or number, "health check" for healthCheckNodePort).
type portOwner struct{ service, port string }

type holding struct {
	cluster   string
	clusterIP netip.Addr
	nodePorts map[nodePortKey]portOwner
	lbIP      netip.Addr
	// shared: lbIP is the cluster's Ingress address, on these ports.
	shared      bool
	sharedPorts []nodePortKey
}

func newAllocs() *allocs {
	return &allocs{clusters: map[string]*clusterAllocs{}, held: map[string]holding{}}
}

func (a *allocs) cluster(p string) *clusterAllocs {
	c := a.clusters[p]
	if c == nil {
		c = &clusterAllocs{clusterIPs: map[netip.Addr]string{}, nodePorts: map[nodePortKey]portOwner{}, lbIPs: map[netip.Addr]string{}, ingressPorts: map[nodePortKey]portOwner{}}
		a.clusters[p] = c
	}
	return c
}

// apply is the store's index hook.
func (a *allocs) apply(old, new *api.Object) {
	o := new
	if o == nil {
		o = old
	}
	if o.Kind != api.KindService && o.Kind != api.KindCluster {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if h, ok := a.held[o.Path]; ok {
		c := a.cluster(h.cluster)
		if h.clusterIP.IsValid() && c.clusterIPs[h.clusterIP] == o.Path {
			delete(c.clusterIPs, h.clusterIP)
		}
		for k := range h.nodePorts {
			if c.nodePorts[k].service == o.Path {
				delete(c.nodePorts, k)
			}
		}
		if h.lbIP.IsValid() && c.lbIPs[h.lbIP] == o.Path {
			delete(c.lbIPs, h.lbIP)
		}
		for _, k := range h.sharedPorts {
			if c.ingressPorts[k].service == o.Path {
				delete(c.ingressPorts, k)
			}
		}
		delete(a.held, o.Path)
	}
	if new == nil {
		if o.Kind == api.KindCluster {
			delete(a.clusters, o.Path)
		}
		return
	}
	h := holdingOf(new)
	if h.cluster == "" {
		return
	}
	c := a.cluster(h.cluster)
	if h.clusterIP.IsValid() {
		c.clusterIPs[h.clusterIP] = new.Path
	}
	for k, v := range h.nodePorts {
		c.nodePorts[k] = v
	}
	switch {
	case h.shared:
		for _, k := range h.sharedPorts {
			c.ingressPorts[k] = portOwner{new.Path, portNameOf(new, k)}
		}
	case h.lbIP.IsValid():
		c.lbIPs[h.lbIP] = new.Path
	}
	a.held[new.Path] = h
}

func holdingOf(o *api.Object) holding {
	if o.Kind == api.KindCluster {
		var st api.ClusterStatus
		_ = json.Unmarshal(o.Status, &st)
		h := holding{cluster: o.Path}
		h.lbIP, _ = netip.ParseAddr(st.Ingress.IP)
		return h
	}
	var s api.ServiceSpec
	var st api.ServiceStatus
	_ = json.Unmarshal(o.Spec, &s)
	_ = json.Unmarshal(o.Status, &st)
	h := holding{cluster: s.Cluster, nodePorts: map[nodePortKey]portOwner{}}
	h.clusterIP, _ = netip.ParseAddr(s.ClusterIP)
	for _, p := range s.Ports {
		if p.NodePort != 0 {
			h.nodePorts[nodePortKey{p.NodePort, p.Protocol}] = portOwner{o.Path, portName(p)}
		}
	}
	if s.HealthCheckNodePort != 0 {
		h.nodePorts[nodePortKey{s.HealthCheckNodePort, "TCP"}] = portOwner{o.Path, "healthCheckNodePort"}
	}
	if len(st.LoadBalancer.Ingress) > 0 {
		in := st.LoadBalancer.Ingress[0]
		h.lbIP, _ = netip.ParseAddr(in.IP)
		if h.shared = in.Shared && h.lbIP.IsValid(); h.shared {
			for _, p := range s.Ports {
				h.sharedPorts = append(h.sharedPorts, nodePortKey{p.Port, p.Protocol})
			}
		}
	}
	return h
}

// portNameOf names the port k of the Service o, for conflict messages.
func portNameOf(o *api.Object, k nodePortKey) string {
	var s api.ServiceSpec
	_ = json.Unmarshal(o.Spec, &s)
	for _, p := range s.Ports {
		if p.Port == k.port && p.Protocol == k.protocol {
			return portName(p)
		}
	}
	return fmt.Sprintf("port %d/%s", k.port, k.protocol)
}

func portName(p api.ServicePort) string {
	if p.Name != "" {
		return fmt.Sprintf("port %s (%d/%s)", p.Name, p.Port, p.Protocol)
	}
	return fmt.Sprintf("port %d/%s", p.Port, p.Protocol)
}

func (a *allocs) clusterIPOwner(cluster string, ip netip.Addr) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.clusters[cluster]; c != nil {
		return c.clusterIPs[ip]
	}
	return ""
}

func (a *allocs) nodePortOwner(cluster string, port int, protocol string) (portOwner, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.clusters[cluster]; c != nil {
		o, ok := c.nodePorts[nodePortKey{port, protocol}]
		return o, ok
	}
	return portOwner{}, false
}

func (a *allocs) lbOwner(cluster string, ip netip.Addr) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.clusters[cluster]; c != nil {
		return c.lbIPs[ip]
	}
	return ""
}

// ingressPortOwner is the Service sharing cluster's Ingress address on
// port/protocol, if any.
func (a *allocs) ingressPortOwner(cluster string, port int, protocol string) (portOwner, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.clusters[cluster]; c != nil {
		o, ok := c.ingressPorts[nodePortKey{port, protocol}]
		return o, ok
	}
	return portOwner{}, false
}

// withCluster runs fn on cluster's allocations under the lock.
func (a *allocs) withCluster(cluster string, fn func(c *clusterAllocs)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fn(a.cluster(cluster))
}

// holders lists the Services holding anything of cluster's network
// (not the cluster itself, for its Ingress address), sorted.
func (a *allocs) holders(cluster string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for p, h := range a.held {
		if h.cluster == cluster && (h.clusterIP.IsValid() || len(h.nodePorts) > 0 || h.lbIP.IsValid()) && p != cluster {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// IngressSharers lists the Services sharing cluster's Ingress address,
// sorted: their status follows the address's holder.
func (inv *Inventory) IngressSharers(cluster string) []string {
	inv.allocs.mu.Lock()
	defer inv.allocs.mu.Unlock()
	c := inv.allocs.clusters[cluster]
	if c == nil {
		return nil
	}
	var out []string
	for _, o := range c.ingressPorts {
		if !slices.Contains(out, o.service) {
			out = append(out, o.service)
		}
	}
	slices.Sort(out)
	return out
}

// LoadBalancerAddress is one load balancer address of a cluster and who
// holds it: a Service, or the cluster itself (its Ingress address).
type LoadBalancerAddress struct {
	IP     string
	Holder string // inventory path
}

// LoadBalancerAddresses lists the load balancer addresses cluster has
// given out, by address: what the load balancer controller finds a host
// for.
func (inv *Inventory) LoadBalancerAddresses(cluster string) []LoadBalancerAddress {
	inv.allocs.mu.Lock()
	defer inv.allocs.mu.Unlock()
	c := inv.allocs.clusters[cluster]
	if c == nil {
		return nil
	}
	ips := slices.SortedFunc(maps.Keys(c.lbIPs), netip.Addr.Compare)
	out := make([]LoadBalancerAddress, 0, len(ips))
	for _, ip := range ips {
		out = append(out, LoadBalancerAddress{IP: ip.String(), Holder: c.lbIPs[ip]})
	}
	return out
}
