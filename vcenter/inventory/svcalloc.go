package inventory

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/lb"
	"github.com/podsphere/podsphere/vcenter/store"
)

// Allocation of a Service's cluster IP, node ports, health check node
// port and load balancer address, from its cluster's ranges, inside the
// transaction that writes the Service: the store's single write lock makes
// concurrent creates take turns, and the allocs index answers "is it
// free" without reading the cluster's other Services.

// serviceCluster resolves spec.cluster: an inventory path or a cluster
// name of the Service's datacenter, or "" for the datacenter's only
// cluster.
func serviceCluster(t *Txn, ref api.Ref, want string) (*api.Object, error) {
	dc := "/" + ref.Datacenter
	if want == "" {
		cs := t.List(store.Query{Kind: api.KindCluster, Prefix: dc + "/host"})
		switch len(cs) {
		case 1:
			return cs[0], nil
		case 0:
			return nil, fmt.Errorf("spec.cluster: datacenter %s has no cluster to carry the Service: create one first: %w", dc, api.ErrInvalid)
		}
		names := make([]string, len(cs))
		for i, c := range cs {
			names[i] = c.Name()
		}
		return nil, fmt.Errorf("spec.cluster: datacenter %s has %d clusters (%s): say which carries the Service (PSC_CLUSTER, or spec.cluster): %w",
			dc, len(cs), strings.Join(names, ", "), api.ErrInvalid)
	}
	p := want
	if !strings.HasPrefix(p, "/") {
		p = dc + "/host/" + want
	}
	cr, err := api.ParsePath(p)
	if err != nil || cr.Kind != api.KindCluster || cr.Datacenter != ref.Datacenter {
		return nil, fmt.Errorf("spec.cluster %q: want a cluster of datacenter %s (NAME or %s/host/NAME): %w", want, dc, dc, api.ErrInvalid)
	}
	c, err := t.Get(p)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("spec.cluster: cluster %s does not exist: %w", p, api.ErrInvalid)
		}
		return nil, err
	}
	return c, nil
}

// allocation is what a Service is given of its cluster's network.
type allocation struct {
	t       *Txn
	path    string // the Service
	cluster string
	net     api.ClusterSpec
	// pending is why a LoadBalancer Service got no address ("" when it got one).
	pending string
}

// assign completes spec (cluster IP, node ports, health check node port)
// and st (the load balancer address) of the Service at path, keeping what
// was (its previous spec and status; zero for a create) held where the
// new spec still wants it and releasing the rest (the index follows the
// written object, so what is no longer in it is free).
func (a *allocation) assign(was api.ServiceSpec, wasSt api.ServiceStatus, spec *api.ServiceSpec, st *api.ServiceStatus) error {
	if err := a.clusterIP(was, spec); err != nil {
		return err
	}
	if err := a.nodePorts(was, spec); err != nil {
		return err
	}
	return a.loadBalancer(spec, wasSt, st)
}

func (a *allocation) clusterIP(was api.ServiceSpec, spec *api.ServiceSpec) error {
	if spec.Type == api.ServiceExternalName {
		return nil
	}
	if spec.ClusterIP == "" && was.Type != api.ServiceExternalName {
		spec.ClusterIP = was.ClusterIP // a re-applied manifest keeps its address
	}
	if spec.ClusterIP == api.ClusterIPNone {
		if spec.Type != api.ServiceClusterIP {
			return fmt.Errorf("spec.type %s: the Service is headless (clusterIP None) and outside traffic needs a virtual address; delete and re-create it: %w", spec.Type, api.ErrInvalid)
		}
		return nil
	}
	cidr, err := lb.ParseServiceCIDR(a.net.ServiceCIDR)
	if err != nil {
		return fmt.Errorf("cluster %s has no usable service CIDR: %w", a.cluster, err)
	}
	r := lb.ClusterIPRange(cidr)
	if spec.ClusterIP != "" {
		ip, _ := netip.ParseAddr(spec.ClusterIP) // Normalize checked it
		if !r.Contains(ip) {
			return fmt.Errorf("spec.clusterIP %s is outside cluster %s's service addresses %s (serviceCIDR %s): %w", ip, a.cluster, r, a.net.ServiceCIDR, api.ErrInvalid)
		}
		if owner := a.t.inv.allocs.clusterIPOwner(a.cluster, ip); owner != "" && owner != a.path {
			return fmt.Errorf("spec.clusterIP %s is Service %s's: %w", ip, owner, api.ErrConflict)
		}
		spec.ClusterIP = ip.String()
		return nil
	}
	var got netip.Addr
	var ok bool
	a.t.inv.allocs.withCluster(a.cluster, func(c *clusterAllocs) {
		got, ok = lb.FirstFree([]lb.AddressRange{r}, c.nextIP, func(ip netip.Addr) bool { _, taken := c.clusterIPs[ip]; return taken })
		if ok {
			c.nextIP = got.Next()
		}
	})
	if !ok {
		return fmt.Errorf("spec.clusterIP: cluster %s's service addresses %s are all taken (%d Services): widen spec.serviceCIDR or remove Services: %w",
			a.cluster, r, r.Size(), api.ErrInsufficientResources)
	}
	spec.ClusterIP = got.String()
	return nil
}

// nodePorts gives every port of a NodePort or LoadBalancer Service a
// node port, and a LoadBalancer Service with externalTrafficPolicy Local
// its health check node port.
func (a *allocation) nodePorts(was api.ServiceSpec, spec *api.ServiceSpec) error {
	external := spec.Type == api.ServiceNodePort || spec.Type == api.ServiceLoadBalancer
	needsHealth := spec.Type == api.ServiceLoadBalancer && spec.ExternalTrafficPolicy == "Local"
	if !needsHealth && spec.HealthCheckNodePort != 0 {
		if spec.HealthCheckNodePort == was.HealthCheckNodePort {
			spec.HealthCheckNodePort = 0 // left over from the previous type or policy: released
		} else {
			return fmt.Errorf("spec.healthCheckNodePort: set only with type LoadBalancer and externalTrafficPolicy Local: %w", api.ErrInvalid)
		}
	}
	if !external {
		return nil
	}
	r, err := lb.ParsePortRange(a.net.NodePortRange)
	if err != nil {
		return err
	}
	// What the Service held before, by port and protocol.
	held := map[nodePortKey]int{}
	for _, p := range was.Ports {
		if p.NodePort != 0 {
			held[nodePortKey{p.Port, p.Protocol}] = p.NodePort
		}
	}
	mine := map[nodePortKey]string{} // taken by this very spec, not yet in the index
	free := func(port int, protocol string) (portOwner, bool) {
		k := nodePortKey{port, protocol}
		if f, ok := mine[k]; ok {
			return portOwner{a.path, f}, false
		}
		o, taken := a.t.inv.allocs.nodePortOwner(a.cluster, port, protocol)
		return o, !taken || o.service == a.path
	}
	check := func(field string, port int, protocol string) error {
		if !r.Contains(port) {
			return fmt.Errorf("%s %d is outside cluster %s's node port range %s: %w", field, port, a.cluster, r, api.ErrInvalid)
		}
		if o, ok := free(port, protocol); !ok {
			return fmt.Errorf("%s %d/%s is taken by Service %s (%s): %w", field, port, protocol, o.service, o.port, api.ErrConflict)
		}
		mine[nodePortKey{port, protocol}] = field
		return nil
	}
	pick := func(field, protocol string) (int, error) {
		var got int
		var ok bool
		a.t.inv.allocs.withCluster(a.cluster, func(c *clusterAllocs) {
			got, ok = lb.FreePort(r, c.nextPort, func(p int) bool {
				k := nodePortKey{p, protocol}
				_, m := mine[k]
				o, taken := c.nodePorts[k]
				return m || taken && o.service != a.path
			})
			if ok {
				c.nextPort = got + 1
			}
		})
		if !ok {
			return 0, fmt.Errorf("%s: cluster %s's node port range %s has no free %s port: widen spec.nodePortRange or remove Services: %w", field, a.cluster, r, protocol, api.ErrInsufficientResources)
		}
		mine[nodePortKey{got, protocol}] = field
		return got, nil
	}
	// Explicit ports first, so an allocated one never takes a port a
	// later entry of the same spec asks for.
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.NodePort == 0 {
			p.NodePort = held[nodePortKey{p.Port, p.Protocol}]
		}
		if p.NodePort != 0 {
			if err := check(fmt.Sprintf("spec.ports[%d].nodePort", i), p.NodePort, p.Protocol); err != nil {
				return err
			}
		}
	}
	if needsHealth {
		if spec.HealthCheckNodePort == 0 {
			spec.HealthCheckNodePort = was.HealthCheckNodePort
		}
		if spec.HealthCheckNodePort != 0 {
			if err := check("spec.healthCheckNodePort", spec.HealthCheckNodePort, "TCP"); err != nil {
				return err
			}
		}
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.NodePort == 0 {
			if p.NodePort, err = pick(fmt.Sprintf("spec.ports[%d].nodePort", i), p.Protocol); err != nil {
				return err
			}
		}
	}
	if needsHealth && spec.HealthCheckNodePort == 0 {
		if spec.HealthCheckNodePort, err = pick("spec.healthCheckNodePort", "TCP"); err != nil {
			return err
		}
	}
	return nil
}

// loadBalancer gives a LoadBalancer Service its address in
// status.loadBalancer.ingress[0].ip, where the data plane reads it: the
// one it had while it stays valid, spec.loadBalancerIP when given, else
// the first free one. No address configured (or none free) leaves it
// pending, with the reason in a.pending.
func (a *allocation) loadBalancer(spec *api.ServiceSpec, was api.ServiceStatus, st *api.ServiceStatus) error {
	st.LoadBalancer = api.LoadBalancerStatus{}
	if spec.Type != api.ServiceLoadBalancer {
		if spec.LoadBalancerIP != "" {
			return fmt.Errorf("spec.loadBalancerIP: set only with type LoadBalancer (type is %s): %w", spec.Type, api.ErrInvalid)
		}
		return nil
	}
	rs, _ := lb.ParseAddressRanges(a.net.LoadBalancerAddresses)
	var cur api.LoadBalancerIngress
	if len(was.LoadBalancer.Ingress) > 0 {
		cur = was.LoadBalancer.Ingress[0]
	}
	if cur.Shared && spec.LoadBalancerIP != cur.IP {
		cur = api.LoadBalancerIngress{} // no longer asked for: the Ingress address stays the cluster's
	}
	keep := func(ip netip.Addr) {
		in := api.LoadBalancerIngress{IP: ip.String()}
		if cur.IP == in.IP {
			in.Host = cur.Host // the holder stays
		}
		st.LoadBalancer.Ingress = []api.LoadBalancerIngress{in}
	}
	if spec.LoadBalancerIP != "" {
		ip, err := netip.ParseAddr(spec.LoadBalancerIP)
		if err != nil || !ip.Is4() {
			return fmt.Errorf("spec.loadBalancerIP %q is not an IPv4 address: %w", spec.LoadBalancerIP, api.ErrInvalid)
		}
		if !lb.InRanges(rs, ip) {
			return fmt.Errorf("spec.loadBalancerIP %s is not one of cluster %s's load balancer addresses (%s): %w", ip, a.cluster, rangesText(rs), api.ErrInvalid)
		}
		owner := a.t.inv.allocs.lbOwner(a.cluster, ip)
		if owner == a.cluster {
			return a.shareIngress(spec, ip, st)
		}
		if owner != "" && owner != a.path {
			return fmt.Errorf("spec.loadBalancerIP %s is Service %s's: %w", ip, owner, api.ErrConflict)
		}
		spec.LoadBalancerIP = ip.String()
		keep(ip)
		return nil
	}
	if ip, err := netip.ParseAddr(cur.IP); err == nil && lb.InRanges(rs, ip) {
		keep(ip)
		return nil
	}
	if len(rs) == 0 {
		a.pending = fmt.Sprintf("cluster %s has no load balancer addresses (spec.loadBalancerAddresses): the Service is reached by its node ports until the admin gives some", a.cluster)
		return nil
	}
	ip, ok := lb.FirstFree(rs, netip.Addr{}, func(ip netip.Addr) bool {
		o := a.t.inv.allocs.lbOwner(a.cluster, ip)
		return o != "" && o != a.path
	})
	if !ok {
		a.pending = fmt.Sprintf("every load balancer address of cluster %s (%s) is taken: the Service is reached by its node ports until one is freed or added", a.cluster, rangesText(rs))
		return nil
	}
	keep(ip)
	return nil
}

// shareIngress gives the Service the cluster's Ingress address ip (it
// asked for it with spec.loadBalancerIP), as MetalLB shares an address:
// every port of the Service must be free on it, neither the Ingress
// proxy's (80 and 443/TCP) nor another sharing Service's; the Service's
// holder is the address's (the load balancer controller keeps it so).
func (a *allocation) shareIngress(spec *api.ServiceSpec, ip netip.Addr, st *api.ServiceStatus) error {
	for i, p := range spec.Ports {
		for _, port := range lb.IngressProxyPorts { // TCP, the proxy's
			if p.Port == port && p.Protocol == "TCP" {
				return fmt.Errorf("spec.ports[%d] %d/%s on the Ingress address %s is the Ingress proxy's of cluster %s (80 and 443/TCP are): pick another port: %w",
					i, p.Port, p.Protocol, ip, a.cluster, api.ErrConflict)
			}
		}
		if o, ok := a.t.inv.allocs.ingressPortOwner(a.cluster, p.Port, p.Protocol); ok && o.service != a.path {
			return fmt.Errorf("spec.ports[%d] %d/%s on the Ingress address %s is taken by Service %s (%s): pick another port: %w",
				i, p.Port, p.Protocol, ip, o.service, o.port, api.ErrConflict)
		}
	}
	var cst api.ClusterStatus
	if c, err := a.t.Get(a.cluster); err == nil {
		_ = c.DecodeStatus(&cst)
	}
	spec.LoadBalancerIP = ip.String()
	st.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: ip.String(), Host: cst.Ingress.Host, Shared: true}}
	return nil
}

func rangesText(rs []lb.AddressRange) string {
	if len(rs) == 0 {
		return "none"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}

// admitService resolves the cluster of the Service o and allocates what
// its spec needs, keeping what cur (nil on create) held. It leaves an
// event when a LoadBalancer Service stays without an address.
func admitService(t *Txn, ref api.Ref, cur, o *api.Object) error {
	var was, spec api.ServiceSpec
	var wasSt api.ServiceStatus
	_ = o.DecodeSpec(&spec)
	if cur != nil {
		_ = cur.DecodeSpec(&was)
		_ = cur.DecodeStatus(&wasSt)
		if spec.Cluster == "" {
			spec.Cluster = was.Cluster
		}
	}
	c, err := serviceCluster(t, ref, spec.Cluster)
	if err != nil {
		return err
	}
	if cur != nil && was.Cluster != "" && c.Path != was.Cluster {
		return fmt.Errorf("spec.cluster: %s cannot change to %s: its addresses come from its cluster; delete and re-create the Service to move it: %w", was.Cluster, c.Path, api.ErrInvalid)
	}
	spec.Cluster = c.Path
	a := &allocation{t: t, path: o.Path, cluster: c.Path}
	_ = c.DecodeSpec(&a.net)
	st := wasSt
	if err := a.assign(was, wasSt, &spec, &st); err != nil {
		return err
	}
	o.SetSpec(spec)
	o.SetStatus(st)
	if a.pending != "" && (cur == nil || len(wasSt.LoadBalancer.Ingress) > 0 || was.Type != api.ServiceLoadBalancer) {
		return t.Event("warning", "LoadBalancerPendingEvent", o.Path, "Service %s has no load balancer address: %s", o.Path, a.pending)
	}
	return nil
}

// AssignLoadBalancerAddress gives the pending LoadBalancer Service at
// path an address if its cluster now has a free one (the load balancer
// controller calls it when a cluster's addresses change or one is freed);
// true when it got one.
func (inv *Inventory) AssignLoadBalancerAddress(user, path string) (bool, error) {
	got := false
	err := inv.Update(user, func(t *Txn) error {
		o, err := t.Get(path)
		if err != nil {
			if isNotFound(err) {
				return nil
			}
			return err
		}
		var spec api.ServiceSpec
		var st api.ServiceStatus
		_ = o.DecodeSpec(&spec)
		_ = o.DecodeStatus(&st)
		if spec.Type != api.ServiceLoadBalancer || len(st.LoadBalancer.Ingress) > 0 || spec.Cluster == "" {
			return nil
		}
		c, err := t.Get(spec.Cluster)
		if err != nil {
			return err
		}
		a := &allocation{t: t, path: path, cluster: c.Path}
		_ = c.DecodeSpec(&a.net)
		if err := a.loadBalancer(&spec, st, &st); err != nil || a.pending != "" {
			return err
		}
		o.SetStatus(st)
		if _, err := t.Update(o); err != nil {
			return err
		}
		got = true
		return t.Event("info", "LoadBalancerAssignedEvent", path, "Service %s got load balancer address %s", path, st.LoadBalancer.Ingress[0].IP)
	})
	return got, err
}
