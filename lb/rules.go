package lb

import (
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/podsphere/podsphere/api"
)

// The packet-filter rules that carry Services on a host, kube-proxy's
// iptables mode in podsphere's names. Every chain podsphere owns starts
// with ChainPrefix; the only rules outside them are the Hooks, one jump
// from each built-in chain. A Service port has a chain (PS-SVC-) that
// spreads new connections over its ready endpoints, each endpoint a chain
// (PS-SEP-) that DNATs to it; a NodePort or LoadBalancer address enters
// through PS-EXT- (and PS-SVL-, the local endpoints, for
// externalTrafficPolicy Local). Chain names are hashes of the Service
// path, port and endpoint, so they stay the same across restarts and a
// change rewrites only the chains it touches.
const ChainPrefix = "PS-"

// Fixed chains.
const (
	ChainServices    = "PS-SERVICES"    // nat: cluster IPs and LoadBalancer addresses, then node ports
	ChainNodePorts   = "PS-NODEPORTS"   // nat: the node ports, on the host's own addresses
	ChainPostrouting = "PS-POSTROUTING" // nat: masquerade what a rule marked
	ChainMarkMasq    = "PS-MARK-MASQ"   // nat: mark a connection for masquerade
	ChainFilter      = "PS-FILTER"      // filter: refuse Services without endpoints, drop Local ones without a local endpoint
)

// MasqMark is the packet mark meaning "masquerade on the way out"; the
// bit is kube-proxy's, so a host that also runs kube-proxy agrees.
const MasqMark = "0x4000"

// Chain is one chain podsphere owns and its rules, each the arguments
// after `-A NAME`, quoted as iptables-restore reads them.
type Chain struct {
	Table string // nat or filter
	Name  string
	Rules []string
}

// ID names a chain in its table.
type ID struct{ Table, Name string }

func (c Chain) ID() ID { return ID{c.Table, c.Name} }

// Hook is a jump from a built-in chain into podsphere's, placed first.
type Hook struct {
	Table, Chain string
	Rule         []string
}

// Ruleset is every rule podsphere wants on one host: the fixed chains,
// and each Service's own chains.
type Ruleset struct {
	Fixed    []Chain         // the fixed chains, nat then filter
	Services []*ServiceRules // by path
	Hooks    []Hook
}

// ServiceRules are one Service's chains and its rules in the fixed ones.
// A Generator hands back the same *ServiceRules while the Service does not
// change, which is how Diff skips it without comparing its rules.
type ServiceRules struct {
	Path   string
	Chains []Chain // its own, by name
	fixed  []Chain // its rules in the fixed chains, in fixedChains order
	svc    Service // what the rules were made from
}

// Chains are all of rs's chains: the fixed ones, then each Service's.
func (rs *Ruleset) Chains() []Chain {
	out := slices.Clone(rs.Fixed)
	for _, s := range rs.Services {
		out = append(out, s.Chains...)
	}
	return out
}

// Hooks are the jumps into podsphere's chains; nothing else outside them
// is touched.
var Hooks = []Hook{
	{"nat", "PREROUTING", []string{"-m", "comment", "--comment", "podsphere service portals", "-j", ChainServices}},
	{"nat", "OUTPUT", []string{"-m", "comment", "--comment", "podsphere service portals", "-j", ChainServices}},
	{"nat", "POSTROUTING", []string{"-m", "comment", "--comment", "podsphere service masquerade", "-j", ChainPostrouting}},
	{"filter", "INPUT", filterHook},
	{"filter", "FORWARD", filterHook},
	{"filter", "OUTPUT", filterHook},
}

var filterHook = []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "podsphere services without endpoints", "-j", ChainFilter}

// endpoint is one ready address of a Service port, resolved.
type endpoint struct {
	ip    string
	port  int
	local bool
	chain string
}

// fixedChains are the fixed chains in the order they are written.
var fixedChains = []ID{
	{"nat", ChainServices}, {"nat", ChainNodePorts}, {"nat", ChainPostrouting}, {"nat", ChainMarkMasq}, {"filter", ChainFilter},
}

func isFixed(id ID) bool { return slices.Contains(fixedChains, id) }

// Rules turns st into the rules of host st.Self. It is pure: the same
// state gives the same text, byte for byte.
func Rules(st *State) *Ruleset { return NewGenerator().Rules(st) }

// Generator makes Rules and remembers each Service's, so that a change of
// one Service among ten thousand costs that Service's work and a pass
// comparing the others' inputs, not ten thousand Services' rules. It does
// no I/O; one Generator serves one host, from one goroutine.
type Generator struct {
	host  string // what every Service's rules depend on besides itself
	cache map[string]*ServiceRules
	paths []string // sorted paths of cache
	fixed []Chain  // the fixed chains of the last pass
}

// NewGenerator makes an empty Generator.
func NewGenerator() *Generator { return &Generator{cache: map[string]*ServiceRules{}} }

// Rules is the package's Rules, reusing the rules of unchanged Services.
func (gn *Generator) Rules(st *State) *Ruleset {
	self := st.Hosts[st.Self]
	if host := st.Self + "\x00" + self.PodSubnet + "\x00" + st.Spec.PodCIDR + "\x00" + st.Ingress.IP; host != gn.host {
		gn.host, gn.cache, gn.paths, gn.fixed = host, map[string]*ServiceRules{}, nil, nil
	}
	// The sorted paths change only when Services come or go.
	rs := gn.services(st, self.PodSubnet)
	if rs == nil { // Services came or went: sort the paths again
		gn.paths = gn.paths[:0]
		for p := range st.Services {
			gn.paths = append(gn.paths, p)
		}
		slices.Sort(gn.paths)
		for p := range gn.cache {
			if _, ok := st.Services[p]; !ok {
				delete(gn.cache, p)
			}
		}
		gn.fixed = nil
		rs = gn.services(st, self.PodSubnet)
	}
	if gn.fixed != nil {
		// No Service's rules in the fixed chains changed (an endpoint
		// change, most often): they are the last pass's.
		rs.Fixed = gn.fixed
		return rs
	}
	sizes := make([]int, len(fixedChains))
	for _, sr := range rs.Services {
		for i := range sizes {
			sizes[i] += len(sr.fixed[i].Rules)
		}
	}
	fixed := make([]Chain, len(fixedChains))
	for i, id := range fixedChains {
		fixed[i] = Chain{Table: id.Table, Name: id.Name, Rules: make([]string, 0, sizes[i]+1)}
	}
	for _, sr := range rs.Services {
		for i := range fixed {
			if len(sr.fixed[i].Rules) > 0 {
				fixed[i].Rules = append(fixed[i].Rules, sr.fixed[i].Rules...)
			}
		}
	}
	fixed[0].Rules = append(fixed[0].Rules, ingressRules(st.Ingress.IP)...)
	// Node ports last, as kube-proxy: a cluster IP rule never loses to
	// one. Loopback is left out: DNAT from 127.0.0.1 needs route_localnet.
	fixed[0].Rules = append(fixed[0].Rules, `-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -m comment --comment "podsphere node ports" -j `+ChainNodePorts)
	fixed[2].Rules = []string{
		"-m mark ! --mark " + MasqMark + "/" + MasqMark + " -j RETURN",
		// Clear the bit: a packet masqueraded and back (a tunnel) is not marked twice.
		"-j MARK --xor-mark " + MasqMark,
		"-j MASQUERADE",
	}
	fixed[3].Rules = []string{"-j MARK --or-mark " + MasqMark}
	rs.Fixed, gn.fixed = fixed, fixed
	return rs
}

// IngressProxyPorts are the ports of the cluster's Ingress address that
// go to the Ingress proxy of the host receiving them (HTTP and HTTPS);
// Services sharing the address take the others.
var IngressProxyPorts = []int{80, 443}

// ingressRules deliver the Ingress address's proxy ports to this host's
// own Ingress proxy (listening on every address of the host), the
// client's address kept: the address is answered for by ARP, never on a
// kernel interface, so without them the packets would be routed on.
func ingressRules(ip string) []string {
	if ip == "" {
		return nil
	}
	var out []string
	for _, port := range IngressProxyPorts {
		out = append(out, fmt.Sprintf(`-d %s/32 -p tcp -m tcp --dport %d -m comment --comment "the cluster's Ingress address: this host's Ingress proxy" -j REDIRECT`, ip, port))
	}
	return out
}

// services is st's Services' rules in path order, made again for those
// that changed; nil when st's Services are not those of gn.paths. It
// clears gn.fixed when a Service's part of the fixed chains changed.
func (gn *Generator) services(st *State, podSubnet string) *Ruleset {
	if len(gn.paths) != len(st.Services) {
		return nil
	}
	rs := &Ruleset{Hooks: Hooks, Services: make([]*ServiceRules, 0, len(gn.paths))}
	for _, p := range gn.paths {
		s, ok := st.Services[p]
		if !ok {
			return nil
		}
		sr := gn.cache[p]
		if sr == nil || !sameRules(&sr.svc, &s) {
			was := sr
			sr = serviceRules(st, podSubnet, &s)
			sr.svc = s.Clone() // the caller may reuse its state
			gn.cache[p] = sr
			if was == nil || !slices.EqualFunc(was.fixed, sr.fixed, func(a, b Chain) bool { return slices.Equal(a.Rules, b.Rules) }) {
				gn.fixed = nil
			}
		}
		rs.Services = append(rs.Services, sr)
	}
	return rs
}

// sameRules says whether Services a and b make the same rules: the
// fields the rules are made from are equal (the host's part is
// Generator.host). Comparing them in place, rather than building a key,
// keeps a pass over ten thousand unchanged Services near a millisecond.
func sameRules(a, b *Service) bool {
	if a.Version != 0 && a.Version == b.Version {
		return a.Path == b.Path
	}
	as, bs := &a.Spec, &b.Spec
	if a.Path != b.Path || as.Type != bs.Type || as.ClusterIP != bs.ClusterIP || as.ExternalTrafficPolicy != bs.ExternalTrafficPolicy ||
		len(as.Ports) != len(bs.Ports) || len(a.Status.Subsets) != len(b.Status.Subsets) ||
		len(a.Status.LoadBalancer.Ingress) != len(b.Status.LoadBalancer.Ingress) {
		return false
	}
	if at, ok := affinity(*as); true {
		if bt, ok2 := affinity(*bs); ok != ok2 || at != bt {
			return false
		}
	}
	for i := range as.Ports {
		p, q := &as.Ports[i], &bs.Ports[i]
		if p.Name != q.Name || p.Protocol != q.Protocol || p.Port != q.Port || p.NodePort != q.NodePort {
			return false
		}
	}
	for i := range a.Status.Subsets {
		s, t := &a.Status.Subsets[i], &b.Status.Subsets[i]
		if !slices.Equal(s.Ports, t.Ports) || len(s.Addresses) != len(t.Addresses) {
			return false
		}
		for k := range s.Addresses {
			if s.Addresses[k].IP != t.Addresses[k].IP || s.Addresses[k].Host != t.Addresses[k].Host {
				return false
			}
		}
	}
	for i, in := range a.Status.LoadBalancer.Ingress {
		if in.IP != b.Status.LoadBalancer.Ingress[i].IP {
			return false
		}
	}
	return true
}

// serviceRules makes one Service's rules.
func serviceRules(st *State, podSubnet string, s *Service) *ServiceRules {
	g := &gen{st: st, podSubnet: podSubnet, chains: map[ID]*Chain{}}
	for _, sp := range s.Spec.Ports {
		g.servicePort(s, sp)
	}
	sr := &ServiceRules{Path: s.Path, fixed: make([]Chain, len(fixedChains))}
	for i, id := range fixedChains {
		sr.fixed[i] = Chain{Table: id.Table, Name: id.Name}
		if c := g.chains[id]; c != nil {
			sr.fixed[i].Rules = c.Rules
		}
	}
	for _, id := range g.order {
		if !isFixed(id) {
			sr.Chains = append(sr.Chains, *g.chains[id])
		}
	}
	slices.SortFunc(sr.Chains, func(a, b Chain) int { return cmp.Or(-cmp.Compare(a.Table, b.Table), cmp.Compare(a.Name, b.Name)) })
	return sr
}

type gen struct {
	st        *State
	podSubnet string
	chains    map[ID]*Chain
	order     []ID
}

func (g *gen) chain(table, name string) *Chain {
	id := ID{table, name}
	if c := g.chains[id]; c != nil {
		return c
	}
	c := &Chain{Table: table, Name: name}
	g.chains[id] = c
	g.order = append(g.order, id)
	return c
}

func (g *gen) add(table, name, rule string) {
	c := g.chain(table, name)
	c.Rules = append(c.Rules, rule)
}

// chainName is PREFIX + 16 base32 characters of the key's SHA-256, as
// kube-proxy names its chains: within iptables' 28-character limit, and
// the same for the same Service port or endpoint on every host.
func chainName(prefix, key string) string {
	sum := sha256.Sum256([]byte(key))
	return prefix + base32.StdEncoding.EncodeToString(sum[:])[:16]
}

// quote makes s one iptables-restore word.
func quote(s string) string { return strconv.Quote(s) }

func (g *gen) servicePort(s *Service, sp api.ServicePort) {
	spec := s.Spec
	if spec.Type == api.ServiceExternalName || spec.ClusterIP == "" || spec.ClusterIP == api.ClusterIPNone {
		return // ExternalName and headless Services are DNS only; "" waits for its address
	}
	proto := strings.ToLower(cmp.Or(sp.Protocol, "TCP"))
	key := s.Path + ":" + sp.Name + "/" + proto
	name := strings.TrimPrefix(s.Path, "/")
	if sp.Name != "" {
		name += ":" + sp.Name
	}
	svc, ext, svl := chainName("PS-SVC-", key), chainName("PS-EXT-", key), chainName("PS-SVL-", key)
	eps := g.endpoints(s, sp, proto, key)
	match := fmt.Sprintf("-p %s -m %s --dport %d", proto, proto, sp.Port)
	cip := spec.ClusterIP + "/32"

	var external []string // the matches that reach the Service from outside
	if (spec.Type == api.ServiceNodePort || spec.Type == api.ServiceLoadBalancer) && sp.NodePort > 0 {
		external = append(external, fmt.Sprintf("-m addrtype --dst-type LOCAL -p %s -m %s --dport %d", proto, proto, sp.NodePort))
	}
	if spec.Type == api.ServiceLoadBalancer {
		for _, in := range s.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				external = append(external, "-d "+in.IP+"/32 "+match)
			}
		}
	}

	if len(eps) == 0 {
		// Refused at once, not left to time out. TCP gets a reset rather
		// than kube-proxy's ICMP port unreachable: the kernel rate-limits
		// ICMP errors per client, and a limited one leaves the client
		// retrying its SYN for seconds.
		reject := "REJECT --reject-with icmp-port-unreachable"
		if proto == "tcp" {
			reject = "REJECT --reject-with tcp-reset"
		}
		g.add("filter", ChainFilter, fmt.Sprintf("-d %s %s -m comment --comment %s -j %s", cip, match, quote(name+" has no endpoints"), reject))
		for _, m := range external {
			g.add("filter", ChainFilter, fmt.Sprintf("%s -m comment --comment %s -j %s", m, quote(name+" has no endpoints"), reject))
		}
		return
	}
	g.add("nat", ChainServices, fmt.Sprintf("-d %s %s -m comment --comment %s -j %s", cip, match, quote(name+" cluster IP"), svc))

	// PS-SVC: traffic to the cluster IP from outside the pod network (the
	// host itself, say) is masqueraded, so replies come back through here.
	if pc := g.st.Spec.PodCIDR; pc != "" {
		g.add("nat", svc, fmt.Sprintf("! -s %s -d %s %s -j %s", pc, cip, match, ChainMarkMasq))
	}
	g.spread(svc, s, eps)

	if len(external) > 0 {
		local := slices.DeleteFunc(slices.Clone(eps), func(e endpoint) bool { return !e.local })
		if spec.ExternalTrafficPolicy == "Local" {
			// The host's own VMs and the host itself may use any
			// endpoint; the outside only local ones, its address kept.
			if g.podSubnet != "" {
				g.add("nat", ext, fmt.Sprintf("-s %s -m comment --comment %s -j %s", g.podSubnet, quote("this host's VMs use every endpoint"), svc))
			}
			g.add("nat", ext, "-m addrtype --src-type LOCAL -j "+ChainMarkMasq)
			g.add("nat", ext, "-m addrtype --src-type LOCAL -j "+svc)
			if len(local) > 0 {
				g.add("nat", ext, "-j "+svl)
				g.spread(svl, s, local)
			} else {
				for _, m := range external {
					g.add("filter", ChainFilter, fmt.Sprintf("%s -m comment --comment %s -j DROP", m, quote(name+" has no local endpoints")))
				}
			}
		} else {
			// Cluster: any endpoint; masqueraded so the reply returns
			// through the host that received the connection.
			g.add("nat", ext, "-j "+ChainMarkMasq)
			g.add("nat", ext, "-j "+svc)
		}
		for _, m := range external {
			if strings.HasPrefix(m, "-m addrtype") {
				g.add("nat", ChainNodePorts, fmt.Sprintf("%s -m comment --comment %s -j %s", strings.TrimPrefix(m, "-m addrtype --dst-type LOCAL "), quote(name+" node port"), ext))
			} else {
				g.add("nat", ChainServices, fmt.Sprintf("%s -m comment --comment %s -j %s", m, quote(name+" load balancer"), ext))
			}
		}
	}
}

// spread sends new connections to one of eps, each equally likely: rule i
// of n matches with probability 1/(n-i), as kube-proxy writes it. With
// ClientIP affinity a client seen within the timeout goes back to its
// endpoint first (the recent module, keyed by endpoint chain).
func (g *gen) spread(chain string, s *Service, eps []endpoint) {
	if timeout, ok := affinity(s.Spec); ok {
		for _, e := range eps {
			g.add("nat", chain, fmt.Sprintf("-m recent --name %s --mask 255.255.255.255 --rsource --rcheck --seconds %d --reap -j %s", e.chain, timeout, e.chain))
		}
	}
	for i, e := range eps {
		if i == len(eps)-1 {
			g.add("nat", chain, "-j "+e.chain)
			break
		}
		g.add("nat", chain, fmt.Sprintf("-m statistic --mode random --probability %.10f -j %s", 1/float64(len(eps)-i), e.chain))
	}
}

// affinity is the ClientIP timeout in seconds, ok false for none.
func affinity(spec api.ServiceSpec) (int, bool) {
	if spec.SessionAffinity != "ClientIP" {
		return 0, false
	}
	t := api.DefaultSessionAffinityTimeout
	if c := spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		t = *c.ClientIP.TimeoutSeconds
	}
	return t, true
}

// endpoints are the ready addresses of sp, sorted, with their chains
// written: the subsets' port of sp's name and protocol is the target.
func (g *gen) endpoints(s *Service, sp api.ServicePort, proto, key string) []endpoint {
	seen := map[string]bool{}
	var out []endpoint
	for _, sub := range s.Status.Subsets {
		port := 0
		for _, p := range sub.Ports {
			if p.Name == sp.Name && strings.EqualFold(cmp.Or(p.Protocol, "TCP"), proto) {
				port = p.Port
			}
		}
		if port == 0 {
			continue
		}
		for _, a := range sub.Addresses {
			hp := a.IP + ":" + strconv.Itoa(port)
			if a.IP == "" || seen[hp] {
				continue
			}
			seen[hp] = true
			out = append(out, endpoint{ip: a.IP, port: port, local: a.Host == g.st.Self, chain: chainName("PS-SEP-", key+"|"+hp)})
		}
	}
	slices.SortFunc(out, func(a, b endpoint) int { return cmp.Or(cmp.Compare(a.ip, b.ip), cmp.Compare(a.port, b.port)) })
	_, sticky := affinity(s.Spec)
	for _, e := range out {
		hp := e.ip + ":" + strconv.Itoa(e.port)
		// An endpoint on this host's bridge answers a VM of the same
		// bridge directly, past the host's conntrack (no br_netfilter):
		// masquerade such traffic so the reply comes back through the
		// host and is un-DNATed. An endpoint elsewhere needs nothing: its
		// replies go back through this host's routes.
		switch {
		case e.local && g.podSubnet != "":
			g.add("nat", e.chain, fmt.Sprintf("-s %s -m comment --comment %s -j %s", g.podSubnet, quote("hairpin"), ChainMarkMasq))
		case e.local:
			g.add("nat", e.chain, fmt.Sprintf("-s %s/32 -m comment --comment %s -j %s", e.ip, quote("hairpin"), ChainMarkMasq))
		}
		set := ""
		if sticky {
			set = "-m recent --name " + e.chain + " --mask 255.255.255.255 --rsource --set "
		}
		g.add("nat", e.chain, fmt.Sprintf("-p %s %s-j DNAT --to-destination %s", proto, set, hp))
	}
	return out
}
