package inventory

import (
	"fmt"
	"net/netip"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/lb"
	"github.com/podsphere/podsphere/vcenter/store"
)

// A cluster's service network: serviceCIDR (cluster IPs), nodePortRange
// and loadBalancerAddresses, checked against every other cluster's blocks
// and against what the cluster's Services already hold.

// prepareServiceNetwork checks the shape of each field and writes the
// service CIDR and node port range in their canonical form. Defaults wait
// for admitServiceNetwork: an empty field in a change keeps the cluster's
// value, which only the transaction sees.
func prepareServiceNetwork(s *api.ClusterSpec) error {
	if err := lb.CheckServiceNetwork(*s); err != nil {
		return err
	}
	if s.ServiceCIDR != "" {
		p, _ := lb.ParseServiceCIDR(s.ServiceCIDR)
		s.ServiceCIDR = p.String()
	}
	if s.NodePortRange != "" {
		r, _ := lb.ParsePortRange(s.NodePortRange)
		s.NodePortRange = r.String()
	}
	return nil
}

// networkBlock is one block of addresses some cluster uses.
type networkBlock struct {
	cluster, field string
	text           string // as the admin wrote it (a CIDR) or the range
	r              lb.AddressRange
}

// blocksOf lists the pod CIDR, service CIDR and load balancer addresses of s.
func blocksOf(cluster string, s api.ClusterSpec) []networkBlock {
	var out []networkBlock
	for _, x := range []struct{ field, cidr string }{{"podCIDR", s.PodCIDR}, {"serviceCIDR", s.ServiceCIDR}} {
		if p, err := netip.ParsePrefix(x.cidr); err == nil && p.Addr().Is4() {
			out = append(out, networkBlock{cluster, x.field, p.Masked().String(), lb.PrefixRange(p)})
		}
	}
	rs, _ := lb.ParseAddressRanges(s.LoadBalancerAddresses)
	for _, r := range rs {
		out = append(out, networkBlock{cluster, "loadBalancerAddresses", r.String(), r})
	}
	return out
}

// admitServiceNetwork picks the service CIDR when none is given (the first
// free /16 from 10.96.0.0/16 on, so a fresh vcenter's first cluster gets
// Kubernetes' 10.96.0.0/16), checks that no block of spec overlaps
// another of its own or any other cluster's (packets to a cluster IP, a
// VM or a load balancer address must have one meaning), and, for a
// change (old not nil), that every address and port the cluster's
// Services hold stays inside the new ranges.
func admitServiceNetwork(t *Txn, cluster string, old *api.ClusterSpec, spec *api.ClusterSpec) error {
	var others []networkBlock
	for _, c := range t.List(store.Query{Kind: api.KindCluster}) {
		if c.Path == cluster {
			continue
		}
		var cs api.ClusterSpec
		_ = c.DecodeSpec(&cs)
		others = append(others, blocksOf(c.Path, cs)...)
	}
	if old != nil {
		// An empty field keeps what the cluster has (a manifest that does
		// not mention it must not reset a range the admin chose).
		spec.ServiceCIDR = orDefault(spec.ServiceCIDR, old.ServiceCIDR)
		spec.NodePortRange = orDefault(spec.NodePortRange, old.NodePortRange)
		spec.ClusterDomain = orDefault(spec.ClusterDomain, old.ClusterDomain)
	}
	spec.NodePortRange = orDefault(spec.NodePortRange, lb.DefaultNodePortRange)
	spec.ClusterDomain = orDefault(spec.ClusterDomain, lb.DefaultClusterDomain)
	if spec.ServiceCIDR == "" {
		own := blocksOf(cluster, *spec)
		for b := 96; b <= 127 && spec.ServiceCIDR == ""; b++ {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(b), 0, 0}), 16)
			if overlapping(lb.PrefixRange(p), append(others, own...)) == nil {
				spec.ServiceCIDR = p.String()
			}
		}
		if spec.ServiceCIDR == "" {
			return fmt.Errorf("no free service CIDR between 10.96.0.0/16 and 10.127.0.0/16 for %s: give spec.serviceCIDR: %w", cluster, api.ErrConflict)
		}
	}
	own := blocksOf(cluster, *spec)
	for i, b := range own {
		for _, o := range own[i+1:] {
			if b.r.Overlaps(o.r) {
				return fmt.Errorf("spec.%s %s overlaps the cluster's own %s %s: %w", o.field, o.text, b.field, b.text, api.ErrInvalid)
			}
		}
		if o := overlapping(b.r, others); o != nil {
			return fmt.Errorf("spec.%s %s overlaps the %s %s of cluster %s: every address must have one meaning: %w", b.field, b.text, o.field, o.text, o.cluster, api.ErrConflict)
		}
	}
	if old == nil {
		return nil
	}
	return keepsAllocations(t, cluster, *spec)
}

func overlapping(r lb.AddressRange, blocks []networkBlock) *networkBlock {
	for i := range blocks {
		if blocks[i].r.Overlaps(r) {
			return &blocks[i]
		}
	}
	return nil
}

// keepsAllocations refuses new ranges that would leave out an address or
// port a Service holds, naming the first such Service.
func keepsAllocations(t *Txn, cluster string, spec api.ClusterSpec) error {
	cidr, _ := lb.ParseServiceCIDR(spec.ServiceCIDR)
	ips := lb.ClusterIPRange(cidr)
	ports, _ := lb.ParsePortRange(spec.NodePortRange)
	lbs, _ := lb.ParseAddressRanges(spec.LoadBalancerAddresses)
	var err error
	t.inv.allocs.withCluster(cluster, func(c *clusterAllocs) {
		for ip, svc := range c.clusterIPs {
			if !ips.Contains(ip) && err == nil {
				err = fmt.Errorf("spec.serviceCIDR %s would leave out cluster IP %s of Service %s: delete it or keep the range: %w", spec.ServiceCIDR, ip, svc, api.ErrConflict)
			}
		}
		for k, o := range c.nodePorts {
			if !ports.Contains(k.port) && err == nil {
				err = fmt.Errorf("spec.nodePortRange %s would leave out node port %d/%s of Service %s (%s): %w", spec.NodePortRange, k.port, k.protocol, o.service, o.port, api.ErrConflict)
			}
		}
		for ip, holder := range c.lbIPs {
			if holder != cluster && !lb.InRanges(lbs, ip) && err == nil {
				err = fmt.Errorf("spec.loadBalancerAddresses would leave out address %s of Service %s: %w", ip, holder, api.ErrConflict)
			}
			if holder == cluster && !lb.InRanges(lbs, ip) && err == nil {
				// The Ingress address would move, and the Services sharing
				// it asked for it by address.
				first := ""
				for _, o := range c.ingressPorts {
					if first == "" || o.service < first {
						first = o.service
					}
				}
				if first != "" {
					err = fmt.Errorf("spec.loadBalancerAddresses would leave out the Ingress address %s, which Service %s shares (spec.loadBalancerIP): change or delete it first: %w", ip, first, api.ErrConflict)
				}
			}
		}
	})
	return err
}

// ingressAddress keeps the cluster's Ingress address (status.ingress):
// the one it has while it stays in the load balancer addresses, else the
// first free one; none without load balancer addresses.
func ingressAddress(t *Txn, o *api.Object, spec api.ClusterSpec) {
	var st api.ClusterStatus
	_ = o.DecodeStatus(&st)
	rs, _ := lb.ParseAddressRanges(spec.LoadBalancerAddresses)
	cur, err := netip.ParseAddr(st.Ingress.IP)
	if err == nil && lb.InRanges(rs, cur) {
		return
	}
	st.Ingress = api.LoadBalancerIngress{}
	if len(rs) > 0 {
		if ip, ok := lb.FirstFree(rs, netip.Addr{}, func(a netip.Addr) bool {
			h := t.inv.allocs.lbOwner(o.Path, a)
			return h != "" && h != o.Path
		}); ok {
			st.Ingress.IP = ip.String()
		}
	}
	o.SetStatus(st)
}
