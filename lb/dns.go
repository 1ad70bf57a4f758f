package lb

import (
	"cmp"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/podsphere/podsphere/api"
)

// DNS names, the Kubernetes way (the DNS-based service discovery
// specification): NAME.NAMESPACE.svc.CLUSTER-DOMAIN for every Service.
const (
	// DefaultClusterDomain is the suffix when the cluster sets none.
	DefaultClusterDomain = "cluster.local"
	// DefaultNamespace is the namespace a Service at the top of the
	// service folder is named in, as Kubernetes' "default".
	DefaultNamespace = "default"
	// DNSTTL is the time to live, in seconds, of every cluster record:
	// short, so a client that caches sees a new address within seconds
	// (CoreDNS's kubernetes plugin uses 5 too).
	DNSTTL = 5
)

// DNSTable is every name a host's resolver answers for its cluster, built
// from a State by DNSRecords. It is immutable once built: the resolver
// swaps a whole table on each change, so a query sees one State or the
// next, never half of each.
type DNSTable struct {
	// Domain is the cluster domain as a lower-case FQDN ("cluster.local.").
	Domain string
	// Names maps lower-case FQDNs to their records. Every name between a
	// record and the domain is there too, without records (an empty
	// non-terminal: NOERROR and no answer rather than NXDOMAIN).
	Names map[string]DNSName
	// Reverse maps in-addr.arpa FQDNs of cluster IPs and headless
	// endpoints to the names they belong to (PTR).
	Reverse map[string]string
}

// DNSName is the records of one name. A name has either a CNAME or
// addresses and services, never both (a CNAME stands alone in DNS).
type DNSName struct {
	A     []netip.Addr // sorted
	CNAME string       // FQDN an ExternalName Service aliases
	SRV   []SRV        // sorted by target, then port
}

// SRV is one service record: where a named port of a Service answers.
type SRV struct {
	Port   int
	Target string // FQDN
}

// ClusterDomain is st's cluster domain without a trailing dot, lower case,
// cluster.local when the cluster sets none.
func ClusterDomain(spec api.ClusterSpec) string {
	d := strings.ToLower(strings.TrimSuffix(spec.ClusterDomain, "."))
	if d == "" {
		return DefaultClusterDomain
	}
	return d
}

// SearchPath is what a VM of namespace ns ("" = default) puts in its
// resolv.conf's search line, so `my-nginx` and `my-nginx.datagrand` find
// the Service: NS.svc.DOMAIN svc.DOMAIN DOMAIN, as the kubelet writes.
func SearchPath(ns, domain string) []string {
	if ns == "" {
		ns = DefaultNamespace
	}
	ns = strings.ToLower(ns)
	return []string{ns + ".svc." + domain, "svc." + domain, domain}
}

// ServiceFQDN is the Service's name in DNS with the trailing dot, "" when
// its name or namespace is not a DNS label (such a Service has no name).
func ServiceFQDN(svc Service, domain string) string {
	ns := svc.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	name, ns := strings.ToLower(svc.Name), strings.ToLower(ns)
	if !isDNSLabel(name) || !isDNSLabel(ns) {
		return ""
	}
	return name + "." + ns + ".svc." + strings.ToLower(domain) + "."
}

// DNSRecords is the table a host's resolver answers from:
//   - a ClusterIP, NodePort or LoadBalancer Service: A → its cluster IP
//     (no A while it has none yet);
//   - a headless Service (clusterIP None): A → each ready endpoint's
//     address, and VMNAME.NAME.NS.svc.DOMAIN → that endpoint's address
//     (Kubernetes' per-pod hostname records);
//   - an ExternalName Service: CNAME → spec.externalName;
//   - every named port: SRV _PORT._PROTO.NAME.NS.svc.DOMAIN → the Service's
//     name and port (headless: each endpoint's name and target port);
//   - PTR for cluster IPs and headless endpoints.
//
// Not-ready endpoints are left out (publishNotReadyAddresses is not
// supported). A Service whose name or namespace is no DNS label gets no
// name; ports whose name is none get no SRV.
func DNSRecords(st *State) *DNSTable {
	domain := ClusterDomain(st.Spec)
	// Sized for a Service with a few named ports or members: growing a map
	// of 10,000 Services step by step costs more than building it.
	t := &DNSTable{Domain: domain + ".", Names: make(map[string]DNSName, 4*len(st.Services)), Reverse: make(map[string]string, 2*len(st.Services))}
	paths := make([]string, 0, len(st.Services))
	for p := range st.Services {
		paths = append(paths, p)
	}
	slices.Sort(paths) // deterministic when two Services' PTRs collide
	for _, p := range paths {
		t.addService(st.Services[p], domain)
	}
	for name, rr := range t.Names {
		slices.SortFunc(rr.A, netip.Addr.Compare)
		rr.A = slices.Compact(rr.A)
		slices.SortFunc(rr.SRV, func(a, b SRV) int { return cmp.Or(cmp.Compare(a.Target, b.Target), cmp.Compare(a.Port, b.Port)) })
		rr.SRV = slices.Compact(rr.SRV)
		t.Names[name] = rr
	}
	return t
}

func (t *DNSTable) addService(svc Service, domain string) {
	fqdn := ServiceFQDN(svc, domain)
	if fqdn == "" {
		return
	}
	spec := svc.Spec
	t.add(fqdn, func(*DNSName) {})
	switch {
	case spec.Type == api.ServiceExternalName:
		target := strings.ToLower(strings.TrimSuffix(spec.ExternalName, "."))
		if target != "" {
			t.add(fqdn, func(n *DNSName) { n.CNAME = target + "." })
		}
		return
	case spec.ClusterIP == api.ClusterIPNone:
		t.addHeadless(svc, fqdn)
		return
	}
	ip, err := netip.ParseAddr(spec.ClusterIP)
	if err != nil || !ip.Is4() {
		return // not allocated yet: the name exists, with no address
	}
	t.add(fqdn, func(n *DNSName) { n.A = append(n.A, ip) })
	t.ptr(ip, fqdn)
	for _, p := range spec.Ports {
		if srv := srvName(p.Name, p.Protocol, fqdn); srv != "" {
			t.add(srv, func(n *DNSName) { n.SRV = append(n.SRV, SRV{Port: p.Port, Target: fqdn}) })
		}
	}
}

// addHeadless gives a headless Service its endpoints' addresses, and each
// endpoint a name of its own under the Service's.
func (t *DNSTable) addHeadless(svc Service, fqdn string) {
	for _, sub := range svc.Status.Subsets {
		for _, a := range sub.Addresses {
			ip, err := netip.ParseAddr(a.IP)
			if err != nil || !ip.Is4() {
				continue
			}
			t.add(fqdn, func(n *DNSName) { n.A = append(n.A, ip) })
			target := fqdn
			if vm := strings.ToLower(path.Base(a.VM)); a.VM != "" && isDNSLabel(vm) {
				target = vm + "." + fqdn
				t.add(target, func(n *DNSName) { n.A = append(n.A, ip) })
			}
			t.ptr(ip, target)
			for _, p := range sub.Ports {
				if srv := srvName(p.Name, p.Protocol, fqdn); srv != "" {
					t.add(srv, func(n *DNSName) { n.SRV = append(n.SRV, SRV{Port: p.Port, Target: target}) })
				}
			}
		}
	}
}

// add applies f to name's records, creating the name and the empty
// non-terminals between it and the domain.
func (t *DNSTable) add(name string, f func(*DNSName)) {
	rr := t.Names[name]
	f(&rr)
	t.Names[name] = rr
	for p := name; ; {
		i := strings.IndexByte(p, '.')
		if i < 0 || i == len(p)-1 {
			return
		}
		p = p[i+1:]
		if len(p) <= len(t.Domain) {
			return // the domain itself exists (it is the zone), above it is not ours
		}
		if _, ok := t.Names[p]; !ok {
			t.Names[p] = DNSName{}
		}
	}
}

// ptr records the first name an address was given (Services in path order).
func (t *DNSTable) ptr(ip netip.Addr, name string) {
	rev := ReverseName(ip)
	if _, ok := t.Reverse[rev]; !ok {
		t.Reverse[rev] = name
	}
}

// ReverseName is the in-addr.arpa FQDN of an IPv4 address.
func ReverseName(ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa.", b[3], b[2], b[1], b[0])
}

// srvName is _NAME._PROTO.FQDN, "" for an unnamed port or one whose name
// is no DNS label.
func srvName(port, proto, fqdn string) string {
	port = strings.ToLower(port)
	if port == "" || !isDNSLabel(port) {
		return ""
	}
	if proto == "" {
		proto = "TCP"
	}
	return "_" + port + "._" + strings.ToLower(proto) + "." + fqdn
}

// Lookup finds a name (any case, with or without the trailing dot). ok is
// false when the name does not exist in the cluster domain: NXDOMAIN.
func (t *DNSTable) Lookup(name string) (rr DNSName, ok bool) {
	name = fqdnLower(name)
	if name == t.Domain {
		return DNSName{}, true
	}
	rr, ok = t.Names[name]
	return rr, ok
}

// InDomain says whether name is the cluster domain or below it: the
// names this table answers with authority (anything else is forwarded).
func (t *DNSTable) InDomain(name string) bool {
	name = fqdnLower(name)
	return name == t.Domain || strings.HasSuffix(name, "."+t.Domain)
}

// Namespaced is the cluster FQDN of NAME.NAMESPACE (asked as such, not
// through a search path: busybox nslookup sends a dotted name as it is),
// or "" when name is not two labels or no such Service exists. A Service
// found this way shadows an outside name of the same spelling only when
// its namespace is named like a top-level domain.
func (t *DNSTable) Namespaced(name string) string {
	name = fqdnLower(name)
	if strings.Count(name, ".") != 2 {
		return ""
	}
	fqdn := strings.TrimSuffix(name, ".") + ".svc." + t.Domain
	if _, ok := t.Names[fqdn]; !ok {
		return ""
	}
	return fqdn
}

// PTR is the name of a reverse-lookup FQDN, "" if it is no cluster address.
func (t *DNSTable) PTR(name string) string { return t.Reverse[fqdnLower(name)] }

func fqdnLower(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// isDNSLabel checks an RFC 1123 label in lower case.
func isDNSLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
