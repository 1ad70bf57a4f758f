package lb

import (
	"net/netip"
	"slices"
)

// Announced is the set of addresses this host (st.Self) answers for on the
// hosts' network: every LoadBalancer address vcenter gave to it
// (status.loadBalancer.ingress[] with host == Self), sorted and without
// duplicates, and the cluster's Ingress address when vcenter gave it to
// Self too (which covers the Services sharing that address). vcenter alone decides which host holds an address and moves
// it when that host fails or enters maintenance; a host only follows, so
// two hosts never both claim an address for longer than the agents take to
// see the same move. Addresses that are not IPv4 are left out: ARP is IPv4's.
func Announced(st *State) []netip.Addr {
	if st == nil || st.Self == "" {
		return nil
	}
	var held []netip.Addr
	if a, err := netip.ParseAddr(st.Ingress.IP); err == nil && a.Is4() && st.Ingress.Host == st.Self {
		held = append(held, a)
	}
	for _, s := range st.Services {
		for _, in := range s.Status.LoadBalancer.Ingress {
			// A Service sharing the Ingress address follows the Ingress's
			// holder a write later: the cluster's entry alone decides, so
			// no two hosts answer for it in between.
			if in.Host != st.Self || in.Shared {
				continue
			}
			a, err := netip.ParseAddr(in.IP)
			if err != nil || !a.Is4() {
				continue
			}
			held = append(held, a)
		}
	}
	slices.SortFunc(held, netip.Addr.Compare)
	return slices.Compact(held)
}
