package lb

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/podsphere/podsphere/api"
)

// A cluster's service network as vcenter allocates from it: the shapes
// of serviceCIDR, nodePortRange and loadBalancerAddresses, parsed once so
// vcenter's admission and the host agent read them the same way.

// Defaults of a cluster's service network, Kubernetes' own
// (DefaultClusterDomain is in dns.go).
const (
	DefaultServiceCIDR   = "10.96.0.0/16"
	DefaultNodePortRange = "30000-32767"
)

// AddressRange is an inclusive range of IPv4 addresses.
type AddressRange struct{ First, Last netip.Addr }

// Contains says whether a is in r.
func (r AddressRange) Contains(a netip.Addr) bool {
	return a.Is4() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// Overlaps says whether r and o share an address.
func (r AddressRange) Overlaps(o AddressRange) bool {
	return r.First.Compare(o.Last) <= 0 && o.First.Compare(r.Last) <= 0
}

// Size is how many addresses r holds.
func (r AddressRange) Size() int { return int(u32(r.Last)-u32(r.First)) + 1 }

func (r AddressRange) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + "-" + r.Last.String()
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// PrefixRange is every address of p.
func PrefixRange(p netip.Prefix) AddressRange {
	p = p.Masked()
	first := u32(p.Addr())
	last := first | (1<<(32-p.Bits()) - 1)
	return AddressRange{addr(first), addr(last)}
}

// ParseServiceCIDR parses an IPv4 serviceCIDR. Its network address, its
// first address (Kubernetes gives it to the API server; podsphere keeps it
// for the same use) and its broadcast address are never given out, so it
// must be /29 or larger to leave room for Services.
func ParseServiceCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("spec.serviceCIDR %q is not an IPv4 CIDR such as %s: %w", s, DefaultServiceCIDR, api.ErrInvalid)
	}
	if p.Bits() > 29 {
		return netip.Prefix{}, fmt.Errorf("spec.serviceCIDR %q is too small: its network, first and broadcast addresses are kept back, so it must be /29 or larger: %w", s, api.ErrInvalid)
	}
	return p.Masked(), nil
}

// ClusterIPRange is the part of a service CIDR Services' addresses come
// from (see ParseServiceCIDR).
func ClusterIPRange(p netip.Prefix) AddressRange {
	r := PrefixRange(p)
	return AddressRange{addr(u32(r.First) + 2), addr(u32(r.Last) - 1)}
}

// ParseAddressRanges parses loadBalancerAddresses: CIDRs ("10.99.0.200/29")
// or ranges ("10.99.0.200-10.99.0.239"), IPv4, none overlapping another.
// A CIDR of /30 or larger leaves out its network and broadcast addresses,
// which some routers and clients refuse to use; a range is taken as given.
func ParseAddressRanges(specs []string) ([]AddressRange, error) {
	var out []AddressRange
	for i, s := range specs {
		f := fmt.Sprintf("spec.loadBalancerAddresses[%d]", i)
		var r AddressRange
		if first, last, ok := strings.Cut(s, "-"); ok {
			a, err1 := netip.ParseAddr(strings.TrimSpace(first))
			b, err2 := netip.ParseAddr(strings.TrimSpace(last))
			if err1 != nil || err2 != nil || !a.Is4() || !b.Is4() {
				return nil, fmt.Errorf("%s %q: want an IPv4 range FIRST-LAST such as 10.99.0.200-10.99.0.239: %w", f, s, api.ErrInvalid)
			}
			if b.Less(a) {
				return nil, fmt.Errorf("%s %q: %s comes before %s: %w", f, s, b, a, api.ErrInvalid)
			}
			r = AddressRange{a, b}
		} else {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil || !a.Is4() {
					return nil, fmt.Errorf("%s %q: want an IPv4 CIDR (10.99.0.200/29), range (10.99.0.200-10.99.0.239) or address: %w", f, s, api.ErrInvalid)
				}
				p = netip.PrefixFrom(a, 32)
			}
			if !p.Addr().Is4() {
				return nil, fmt.Errorf("%s %q: podsphere's load balancer addresses are IPv4: %w", f, s, api.ErrInvalid)
			}
			r = PrefixRange(p)
			if p.Bits() <= 30 {
				r = AddressRange{addr(u32(r.First) + 1), addr(u32(r.Last) - 1)}
			}
		}
		for j, o := range out {
			if r.Overlaps(o) {
				return nil, fmt.Errorf("%s %s overlaps spec.loadBalancerAddresses[%d] %s: %w", f, r, j, o, api.ErrInvalid)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// InRanges says whether a is in one of rs.
func InRanges(rs []AddressRange, a netip.Addr) bool {
	for _, r := range rs {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// FirstFree is the first address of rs, in order, that taken does not
// hold; false when every one is taken. It starts looking at from (an
// address of rs, or invalid for the start), wrapping round, so
// successive allocations do not rescan the taken head of a large range.
func FirstFree(rs []AddressRange, from netip.Addr, taken func(netip.Addr) bool) (netip.Addr, bool) {
	total, off := 0, 0
	for _, r := range rs {
		if r.Contains(from) {
			off = total + int(u32(from)-u32(r.First))
		}
		total += r.Size()
	}
	at := func(i int) netip.Addr {
		for _, r := range rs {
			if i < r.Size() {
				return addr(u32(r.First) + uint32(i))
			}
			i -= r.Size()
		}
		return netip.Addr{}
	}
	for k := range total {
		if a := at((off + k) % total); !taken(a) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// PortRange is an inclusive range of ports (nodePortRange).
type PortRange struct{ First, Last int }

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// Contains says whether p is in r.
func (r PortRange) Contains(p int) bool { return r.First <= p && p <= r.Last }

// ParsePortRange parses nodePortRange "FIRST-LAST" ("" is the default).
func ParsePortRange(s string) (PortRange, error) {
	if s == "" {
		s = DefaultNodePortRange
	}
	a, b, ok := strings.Cut(s, "-")
	first, err1 := strconv.Atoi(strings.TrimSpace(a))
	last, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil {
		return PortRange{}, fmt.Errorf("spec.nodePortRange %q: want FIRST-LAST such as %s: %w", s, DefaultNodePortRange, api.ErrInvalid)
	}
	if first < 1 || last > 65535 || last < first {
		return PortRange{}, fmt.Errorf("spec.nodePortRange %q: want 1 <= FIRST <= LAST <= 65535: %w", s, api.ErrInvalid)
	}
	return PortRange{first, last}, nil
}

// FreePort is the first port of r from from on (wrapping round) that
// taken does not hold; false when every one is taken.
func FreePort(r PortRange, from int, taken func(int) bool) (int, bool) {
	if !r.Contains(from) {
		from = r.First
	}
	n := r.Last - r.First + 1
	for k := range n {
		p := r.First + (from-r.First+k)%n
		if !taken(p) {
			return p, true
		}
	}
	return 0, false
}

// CheckServiceNetwork checks the shape of a cluster's service network
// fields (what needs no other cluster), naming the first that is wrong;
// psc apply runs it before sending anything, vcenter again on write.
func CheckServiceNetwork(s api.ClusterSpec) error {
	if s.ServiceCIDR != "" {
		if _, err := ParseServiceCIDR(s.ServiceCIDR); err != nil {
			return err
		}
	}
	if _, err := ParsePortRange(s.NodePortRange); err != nil {
		return err
	}
	if _, err := ParseAddressRanges(s.LoadBalancerAddresses); err != nil {
		return err
	}
	if s.ClusterDomain != "" {
		if err := api.CheckDNSName(s.ClusterDomain); err != nil {
			return fmt.Errorf("spec.clusterDomain: %v: %w", err, api.ErrInvalid)
		}
	}
	return nil
}
