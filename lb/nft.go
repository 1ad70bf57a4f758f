package lb

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/podsphere/podsphere/api"
)

// The nftables form of the same rules, kube-proxy's nftables mode in
// podsphere's names. Everything lives in one table of podsphere's own
// (NftTable); nothing outside it is touched. Instead of a list of rules
// the fixed chains walk, a packet is looked up once in a verdict map keyed
// by (address . protocol . port): a Service costs one map element, not a
// rule every packet tries, and an endpoint change rewrites one Service
// chain, not the fixed ones. A Service port's chain (svc-) spreads new
// connections with `numgen random mod N` over its endpoint chains (sep-),
// which DNAT; a NodePort or LoadBalancer address enters through ext- (and
// svl-, the local endpoints, for externalTrafficPolicy Local). Chain
// names are the iptables chains' hashes, so they are the same on every
// host and across restarts.

// NftTable is podsphere's table, `table ip podsphere`.
const NftTable = "podsphere"

// The verdict maps of the fixed chains.
const (
	NftMapServiceIPs           = "service-ips"           // cluster IP or load balancer address . proto . port : goto svc-/ext-
	NftMapNodePorts            = "service-nodeports"     // proto . node port : goto ext-
	NftMapNoEndpointIPs        = "no-endpoint-ips"       // address . proto . port : goto reject / drop
	NftMapNoEndpointPorts      = "no-endpoint-nodeports" // proto . node port : goto reject / drop
	NftChainServices           = "services"
	NftChainNodePorts          = "nodeports"
	NftChainFilter             = "filter"
	NftChainMarkMasq           = "mark-for-masquerade"
	NftChainRejectTCP          = "reject-tcp"
	NftChainReject             = "reject-other"
	nftMasqMark           uint = 0x4000
)

// NftMaps are the fixed maps: a key of address . proto . port, or proto .
// port for node ports.
var NftMaps = []NftMap{
	{NftMapServiceIPs, true}, {NftMapNodePorts, false}, {NftMapNoEndpointIPs, true}, {NftMapNoEndpointPorts, false},
}

// NftMap is one fixed verdict map.
type NftMap struct {
	Name  string
	HasIP bool // keyed by ip daddr . meta l4proto . th dport, else meta l4proto . th dport
}

// NftHook makes a chain a base chain.
type NftHook struct {
	Type     string // nat or filter
	Hook     string // prerouting, output, postrouting, input, forward
	Priority int    // -100 dstnat, 100 srcnat, 0 filter
}

// NftChain is one chain of podsphere's table.
type NftChain struct {
	Name  string
	Hook  *NftHook // nil for a regular chain
	Rules []NftRule
}

// NftRule is one rule, in the few words podsphere's rules need: every
// match set is ANDed, then the statement(s), then the verdict. The netlink
// backend turns it into expressions, Text into `nft -f` input.
type NftRule struct {
	CtNew      bool   // ct state new
	SrcNet     string // ip saddr CIDR (SrcNetNot: !=)
	SrcNetNot  bool
	SrcLocal   bool   // fib saddr type local
	DstLocal   bool   // fib daddr type local
	DstNotNet  string // ip daddr != CIDR
	DstIP      string // ip daddr ADDR
	Proto      string // meta l4proto tcp / udp
	DPort      int    // th dport (with Proto)
	MarkUnset  bool   // meta mark & 0x4000 == 0
	SrcInSet   string // ip saddr @SET (ClientIP affinity)
	VmapIP     string // ip daddr . meta l4proto . th dport vmap @MAP
	VmapPort   string // meta l4proto . th dport vmap @MAP
	UpdateSet  string // update @SET { ip saddr }
	SetMark    bool   // meta mark set meta mark | 0x4000
	ClearMark  bool   // meta mark set meta mark ^ 0x4000
	Masquerade bool
	DNAT       string // dnat to ADDR:PORT
	RandomMod  int    // numgen random mod RandomMod == 0: matches one time in RandomMod
	Redirect   bool   // redirect: to the receiving host's own address, same port
	RejectTCP  bool   // reject with tcp reset
	Reject     bool   // reject (ICMP port unreachable)
	Verdict    string // "", "accept", "drop", "return", "jump NAME", "goto NAME"
	Comment    string
}

// NftSet is a Service's ClientIP affinity set: the clients an endpoint
// served within the timeout, each forgotten Timeout seconds after its
// last new connection (what iptables' recent module does).
type NftSet struct {
	Name    string
	Timeout int
}

// NftElem is one element of a fixed map.
type NftElem struct {
	Map   string
	IP    string // "" in the node port maps
	Proto string
	Port  int
	To    string // "goto NAME" or "drop"
}

// Key identifies the element in its map.
func (e NftElem) Key() string { return e.Map + " " + e.IP + " " + e.Proto + " " + strconv.Itoa(e.Port) }

// NftService is one Service's part: its chains, affinity sets and map
// elements.
type NftService struct {
	Path   string
	Chains []NftChain
	Sets   []NftSet
	Elems  []NftElem
	svc    Service
}

// NftRuleset is everything podsphere wants in its table on one host.
type NftRuleset struct {
	Fixed    []NftChain
	Services []*NftService // by path
}

// NftFixed are the fixed chains: the base chains hooking podsphere's
// lookups into the host's traffic, and the chains the maps go to.
func NftFixed() []NftChain { return nftFixed("") }

// nftFixed are the fixed chains for the cluster's Ingress address ingress
// ("" without one): its ports 80 and 443/TCP go to this host's own
// Ingress proxy (redirect, the client's address kept), after the
// Services' addresses and before the node ports, as with iptables.
func nftFixed(ingress string) []NftChain {
	var redirect []NftRule
	if ingress != "" {
		for _, port := range IngressProxyPorts {
			redirect = append(redirect, NftRule{DstIP: ingress, Proto: "tcp", DPort: port, Redirect: true, Comment: "the cluster's Ingress address: this host's Ingress proxy"})
		}
	}
	lookup := []NftRule{{Verdict: "jump " + NftChainServices}}
	filter := []NftRule{{CtNew: true, Verdict: "jump " + NftChainFilter}}
	return []NftChain{
		{Name: "nat-prerouting", Hook: &NftHook{"nat", "prerouting", -100}, Rules: lookup},
		{Name: "nat-output", Hook: &NftHook{"nat", "output", -100}, Rules: lookup},
		{Name: "nat-postrouting", Hook: &NftHook{"nat", "postrouting", 100}, Rules: []NftRule{
			{MarkUnset: true, Verdict: "return"},
			// Clear the bit: a packet masqueraded and back is not marked twice.
			{ClearMark: true, Masquerade: true},
		}},
		{Name: "filter-input", Hook: &NftHook{"filter", "input", 0}, Rules: filter},
		{Name: "filter-forward", Hook: &NftHook{"filter", "forward", 0}, Rules: filter},
		{Name: "filter-output", Hook: &NftHook{"filter", "output", 0}, Rules: filter},
		{Name: NftChainServices, Rules: slices.Concat([]NftRule{{VmapIP: NftMapServiceIPs}}, redirect, []NftRule{
			// Node ports after every address, as kube-proxy; loopback is
			// left out (DNAT from 127.0.0.1 needs route_localnet).
			{DstLocal: true, DstNotNet: "127.0.0.0/8", Verdict: "jump " + NftChainNodePorts},
		})},
		{Name: NftChainNodePorts, Rules: []NftRule{{VmapPort: NftMapNodePorts}}},
		{Name: NftChainFilter, Rules: []NftRule{
			{VmapIP: NftMapNoEndpointIPs},
			{DstLocal: true, VmapPort: NftMapNoEndpointPorts},
		}},
		{Name: NftChainMarkMasq, Rules: []NftRule{{SetMark: true}}},
		// TCP gets a reset rather than ICMP (rate-limited per client).
		{Name: NftChainRejectTCP, Rules: []NftRule{{Proto: "tcp", RejectTCP: true}, {Reject: true}}},
		{Name: NftChainReject, Rules: []NftRule{{Reject: true}}},
	}
}

// NftGenerator makes NftRulesets and remembers each Service's part, so a
// change of one Service among ten thousand costs that Service's work and
// a pass comparing the others' inputs. Pure; one goroutine.
type NftGenerator struct {
	host    string
	cache   map[string]*NftService
	paths   []string
	fixed   []NftChain
	ingress string            // the Ingress address fixed is for
	owner   map[string]string // map element key -> the Service holding it
}

// NewNftGenerator makes an empty NftGenerator.
func NewNftGenerator() *NftGenerator {
	return &NftGenerator{cache: map[string]*NftService{}, fixed: NftFixed(), owner: map[string]string{}}
}

// NftRules is st's nftables rules for host st.Self.
func NftRules(st *State) *NftRuleset { return NewNftGenerator().Rules(st) }

// Rules is the package's NftRules, reusing the parts of unchanged Services.
func (gn *NftGenerator) Rules(st *State) *NftRuleset {
	self := st.Hosts[st.Self]
	if host := st.Self + "\x00" + self.PodSubnet + "\x00" + st.Spec.PodCIDR; host != gn.host {
		gn.host, gn.cache, gn.paths, gn.owner = host, map[string]*NftService{}, nil, map[string]string{}
	}
	if st.Ingress.IP != gn.ingress {
		gn.ingress, gn.fixed = st.Ingress.IP, nftFixed(st.Ingress.IP)
	}
	rs := &NftRuleset{Fixed: gn.fixed, Services: make([]*NftService, 0, len(st.Services))}
	// One lookup per Service both checks the set of paths and finds the
	// Service: at 10,000 Services the pass over the unchanged ones is
	// most of a one-endpoint change's CPU.
	if len(gn.paths) != len(st.Services) || !gn.fill(st, self.PodSubnet, rs) {
		gn.paths = gn.paths[:0]
		for p := range st.Services {
			gn.paths = append(gn.paths, p)
		}
		slices.Sort(gn.paths)
		for p := range gn.cache {
			if _, ok := st.Services[p]; !ok {
				gn.disown(gn.cache[p])
				delete(gn.cache, p)
			}
		}
		gn.fill(st, self.PodSubnet, rs)
	}
	return rs
}

// fill appends st's Services in gn.paths' order to rs, remade where
// they changed; false (gn and rs untouched) if a path is no longer in st:
// the Services gone must give up their map elements before the changed
// ones take theirs.
func (gn *NftGenerator) fill(st *State, podSubnet string, rs *NftRuleset) bool {
	var changed []int
	for i, p := range gn.paths {
		s, ok := st.Services[p]
		if !ok {
			rs.Services = rs.Services[:0]
			return false
		}
		ns := gn.cache[p]
		if ns == nil || !sameRules(&ns.svc, &s) {
			changed = append(changed, i)
		}
		rs.Services = append(rs.Services, ns)
	}
	for _, i := range changed {
		p := gn.paths[i]
		s := st.Services[p]
		gn.disown(gn.cache[p])
		ns := nftService(st, podSubnet, &s)
		ns.svc = s.Clone()
		gn.own(ns)
		gn.cache[p] = ns
		rs.Services[i] = ns
	}
	return true
}

// own records ns's map elements, dropping those whose key another
// Service holds: two Services on one address and port are a conflict
// vcenter refuses, and a map holds one verdict per key. The Service that
// held it first keeps it (in path order, for a fresh generator).
func (gn *NftGenerator) own(ns *NftService) {
	keep := ns.Elems[:0]
	for _, e := range ns.Elems {
		k := e.Key()
		if o, ok := gn.owner[k]; ok && o != ns.Path {
			continue
		}
		gn.owner[k] = ns.Path
		keep = append(keep, e)
	}
	ns.Elems = keep
}

// disown forgets ns's map elements (nil: nothing).
func (gn *NftGenerator) disown(ns *NftService) {
	if ns == nil {
		return
	}
	for _, e := range ns.Elems {
		if k := e.Key(); gn.owner[k] == ns.Path {
			delete(gn.owner, k)
		}
	}
}

type nftGen struct {
	st        *State
	podSubnet string
	ns        *NftService
	chains    map[string]*NftChain
}

func (g *nftGen) add(chain string, r NftRule) {
	c := g.chains[chain]
	if c == nil {
		c = &NftChain{Name: chain}
		g.chains[chain] = c
	}
	c.Rules = append(c.Rules, r)
}

func nftChainName(prefix, key string) string {
	return strings.ToLower(chainName(prefix, key))
}

func nftService(st *State, podSubnet string, s *Service) *NftService {
	g := &nftGen{st: st, podSubnet: podSubnet, ns: &NftService{Path: s.Path}, chains: map[string]*NftChain{}}
	for _, sp := range s.Spec.Ports {
		g.servicePort(s, sp)
	}
	for _, c := range g.chains {
		g.ns.Chains = append(g.ns.Chains, *c)
	}
	slices.SortFunc(g.ns.Chains, func(a, b NftChain) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(g.ns.Sets, func(a, b NftSet) int { return cmp.Compare(a.Name, b.Name) })
	return g.ns
}

func (g *nftGen) servicePort(s *Service, sp api.ServicePort) {
	spec := s.Spec
	if spec.Type == api.ServiceExternalName || spec.ClusterIP == "" || spec.ClusterIP == api.ClusterIPNone {
		return
	}
	proto := strings.ToLower(cmp.Or(sp.Protocol, "TCP"))
	key := s.Path + ":" + sp.Name + "/" + proto
	name := strings.TrimPrefix(s.Path, "/")
	if sp.Name != "" {
		name += ":" + sp.Name
	}
	svc, ext, svl := nftChainName("svc-", key), nftChainName("ext-", key), nftChainName("svl-", key)
	eps := g.endpoints(s, sp, proto, key)

	nodePort := (spec.Type == api.ServiceNodePort || spec.Type == api.ServiceLoadBalancer) && sp.NodePort > 0
	var lbIPs []string
	if spec.Type == api.ServiceLoadBalancer {
		for _, in := range s.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				lbIPs = append(lbIPs, in.IP)
			}
		}
	}
	external := func(m, to string) {
		if nodePort {
			g.ns.Elems = append(g.ns.Elems, NftElem{Map: m + "nodeports", Proto: proto, Port: sp.NodePort, To: to})
		}
		for _, ip := range lbIPs {
			g.ns.Elems = append(g.ns.Elems, NftElem{Map: m + "ips", IP: ip, Proto: proto, Port: sp.Port, To: to})
		}
	}
	if len(eps) == 0 {
		reject := "goto " + NftChainReject
		if proto == "tcp" {
			reject = "goto " + NftChainRejectTCP
		}
		g.ns.Elems = append(g.ns.Elems, NftElem{Map: NftMapNoEndpointIPs, IP: spec.ClusterIP, Proto: proto, Port: sp.Port, To: reject})
		external("no-endpoint-", reject)
		return
	}
	g.ns.Elems = append(g.ns.Elems, NftElem{Map: NftMapServiceIPs, IP: spec.ClusterIP, Proto: proto, Port: sp.Port, To: "goto " + svc})
	if pc := g.st.Spec.PodCIDR; pc != "" {
		g.add(svc, NftRule{SrcNet: pc, SrcNetNot: true, DstIP: spec.ClusterIP, Proto: proto, DPort: sp.Port, Verdict: "jump " + NftChainMarkMasq})
	}
	g.spread(svc, s, key, eps)
	if !nodePort && len(lbIPs) == 0 {
		return
	}
	if spec.ExternalTrafficPolicy == "Local" {
		local := slices.DeleteFunc(slices.Clone(eps), func(e endpoint) bool { return !e.local })
		if g.podSubnet != "" {
			g.add(ext, NftRule{SrcNet: g.podSubnet, Verdict: "goto " + svc, Comment: "this host's VMs use every endpoint"})
		}
		g.add(ext, NftRule{SrcLocal: true, Verdict: "jump " + NftChainMarkMasq})
		g.add(ext, NftRule{SrcLocal: true, Verdict: "goto " + svc})
		if len(local) > 0 {
			g.add(ext, NftRule{Verdict: "goto " + svl})
			g.spread(svl, s, key, local)
		} else {
			external("no-endpoint-", "drop")
		}
	} else {
		g.add(ext, NftRule{Verdict: "jump " + NftChainMarkMasq})
		g.add(ext, NftRule{Verdict: "goto " + svc})
	}
	external("service-", "goto "+ext)
}

// spread sends a new connection to one of eps, each equally likely. With
// ClientIP affinity a client an endpoint served within the timeout goes
// back to it first.
func (g *nftGen) spread(chain string, s *Service, key string, eps []endpoint) {
	if timeout, ok := affinity(s.Spec); ok {
		for _, e := range eps {
			g.add(chain, NftRule{SrcInSet: affinitySet(key, e, timeout), Verdict: "goto " + e.chain})
		}
	}
	if len(eps) == 1 {
		g.add(chain, NftRule{Verdict: "goto " + eps[0].chain})
		return
	}
	// Rule i of n takes a connection with probability 1/(n-i), each
	// drawing its own number, as kube-proxy's iptables rules: no set at
	// all. A verdict map (numgen ... vmap) reads better, but the kernel
	// walks a table's sets by name and validates a shared map once per
	// chain using it, either of which makes 10,000 Services quadratic.
	for i, e := range eps {
		r := NftRule{Verdict: "goto " + e.chain}
		if i < len(eps)-1 {
			r.RandomMod = len(eps) - i
		}
		g.add(chain, r)
	}
}

func (g *nftGen) endpoints(s *Service, sp api.ServicePort, proto, key string) []endpoint {
	eg := &gen{st: g.st, podSubnet: g.podSubnet, chains: map[ID]*Chain{}}
	eps := eg.endpoints(s, sp, proto, key) // the same selection as iptables'
	timeout, sticky := affinity(s.Spec)
	for i := range eps {
		e := &eps[i]
		e.chain = nftChainName("sep-", key+"|"+e.ip+":"+strconv.Itoa(e.port))
		switch {
		case e.local && g.podSubnet != "":
			g.add(e.chain, NftRule{SrcNet: g.podSubnet, Verdict: "jump " + NftChainMarkMasq, Comment: "hairpin"})
		case e.local:
			g.add(e.chain, NftRule{SrcNet: e.ip + "/32", Verdict: "jump " + NftChainMarkMasq, Comment: "hairpin"})
		}
		r := NftRule{Proto: proto, DNAT: e.ip + ":" + strconv.Itoa(e.port)}
		if sticky {
			r.UpdateSet = affinitySet(key, *e, timeout)
			g.ns.Sets = append(g.ns.Sets, NftSet{Name: r.UpdateSet, Timeout: timeout})
		}
		g.add(e.chain, r)
	}
	return eps
}

// affinitySet names an endpoint's affinity set; the timeout is part of
// the name, so a new timeout is a new set rather than one changed in place.
func affinitySet(key string, e endpoint, timeout int) string {
	return nftChainName("aff-", key+"|"+e.ip+":"+strconv.Itoa(e.port)+"|"+strconv.Itoa(timeout))
}

// String is r in nft's syntax.
func (r NftRule) String() string {
	var w []string
	if r.CtNew {
		w = append(w, "ct state new")
	}
	if r.SrcNet != "" {
		op := ""
		if r.SrcNetNot {
			op = "!= "
		}
		w = append(w, "ip saddr "+op+r.SrcNet)
	}
	if r.SrcLocal {
		w = append(w, "fib saddr type local")
	}
	if r.DstLocal {
		w = append(w, "fib daddr type local")
	}
	if r.DstNotNet != "" {
		w = append(w, "ip daddr != "+r.DstNotNet)
	}
	if r.DstIP != "" {
		w = append(w, "ip daddr "+r.DstIP)
	}
	if r.Proto != "" {
		w = append(w, "meta l4proto "+r.Proto)
	}
	if r.DPort != 0 {
		w = append(w, "th dport "+strconv.Itoa(r.DPort))
	}
	if r.RandomMod > 0 {
		w = append(w, fmt.Sprintf("numgen random mod %d == 0", r.RandomMod))
	}
	if r.MarkUnset {
		w = append(w, fmt.Sprintf("meta mark & 0x%x == 0", nftMasqMark))
	}
	if r.SrcInSet != "" {
		w = append(w, "ip saddr @"+r.SrcInSet)
	}
	if r.VmapIP != "" {
		w = append(w, "ip daddr . meta l4proto . th dport vmap @"+r.VmapIP)
	}
	if r.VmapPort != "" {
		w = append(w, "meta l4proto . th dport vmap @"+r.VmapPort)
	}
	if r.UpdateSet != "" {
		w = append(w, "update @"+r.UpdateSet+" { ip saddr }")
	}
	if r.SetMark {
		w = append(w, fmt.Sprintf("meta mark set meta mark | 0x%x", nftMasqMark))
	}
	if r.ClearMark {
		w = append(w, fmt.Sprintf("meta mark set meta mark ^ 0x%x", nftMasqMark))
	}
	if r.Masquerade {
		w = append(w, "masquerade")
	}
	if r.DNAT != "" {
		w = append(w, "dnat to "+r.DNAT)
	}
	if r.Redirect {
		w = append(w, "redirect")
	}
	if r.RejectTCP {
		w = append(w, "reject with tcp reset")
	}
	if r.Reject {
		w = append(w, "reject")
	}
	if r.Verdict != "" {
		w = append(w, r.Verdict)
	}
	if r.Comment != "" {
		w = append(w, "comment "+strconv.Quote(r.Comment))
	}
	return strings.Join(w, " ")
}

// elemString is e as a map element in nft's syntax.
func (e NftElem) elemString() string {
	if e.IP == "" {
		return fmt.Sprintf("%s . %d : %s", e.Proto, e.Port, e.To)
	}
	return fmt.Sprintf("%s . %s . %d : %s", e.IP, e.Proto, e.Port, e.To)
}

// NftText is rs as one `nft -f` input creating the whole table: the
// reference the netlink backend is measured against, and readable.
func NftText(rs *NftRuleset) []byte {
	var b strings.Builder
	b.WriteString("table ip " + NftTable + " {\n")
	elems := map[string][]string{}
	for _, ns := range rs.Services {
		for _, e := range ns.Elems {
			elems[e.Map] = append(elems[e.Map], e.elemString())
		}
	}
	for _, m := range NftMaps {
		typ := "inet_proto . inet_service"
		if m.HasIP {
			typ = "ipv4_addr . " + typ
		}
		fmt.Fprintf(&b, "\tmap %s {\n\t\ttype %s : verdict\n", m.Name, typ)
		if es := elems[m.Name]; len(es) > 0 {
			b.WriteString("\t\telements = {\n\t\t\t" + strings.Join(es, ",\n\t\t\t") + "\n\t\t}\n")
		}
		b.WriteString("\t}\n")
	}
	for _, ns := range rs.Services {
		for _, s := range ns.Sets {
			fmt.Fprintf(&b, "\tset %s {\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout %ds\n\t}\n", s.Name, s.Timeout)
		}
	}

	writeChain := func(c NftChain) {
		b.WriteString("\tchain " + c.Name + " {\n")
		if h := c.Hook; h != nil {
			fmt.Fprintf(&b, "\t\ttype %s hook %s priority %d; policy accept;\n", h.Type, h.Hook, h.Priority)
		}
		for _, r := range c.Rules {
			b.WriteString("\t\t" + r.String() + "\n")
		}
		b.WriteString("\t}\n")
	}
	// Chains jumped to first: nft resolves a jump when it reads it.
	for _, c := range rs.Fixed {
		if c.Hook == nil && c.Name != NftChainServices && c.Name != NftChainFilter && c.Name != NftChainNodePorts {
			writeChain(c)
		}
	}
	for _, ns := range rs.Services {
		for _, c := range ns.Chains {
			writeChain(c)
		}
	}
	for _, c := range rs.Fixed {
		if c.Hook == nil && (c.Name == NftChainServices || c.Name == NftChainFilter || c.Name == NftChainNodePorts) {
			writeChain(c)
		}
	}
	for _, c := range rs.Fixed {
		if c.Hook != nil {
			writeChain(c)
		}
	}
	b.WriteString("}\n")
	return []byte(b.String())
}
