package lb

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

// A tiny evaluator of the generated rules: what happens to the first
// packet of a connection. It follows jumps, takes both branches of every
// `statistic` match (so the outcome is the set of endpoints the
// connection may reach), treats `recent --rcheck` as a client not seen
// before, and reads the filter verdict on the address after DNAT.

type packet struct {
	out      bool // sent by the host itself (nat OUTPUT), else arriving (PREROUTING)
	src, dst string
	proto    string
	dport    int
}

type outcome struct {
	to      string // DNAT destination, "" when not translated
	masq    bool
	verdict string // ACCEPT, REJECT or DROP
}

// hostAddrs are esx-01's own addresses (addrtype LOCAL).
var hostAddrs = []string{"10.99.0.11", "10.244.1.1", "127.0.0.1"}

func words(rule string) []string {
	var out []string
	for rule != "" {
		rule = strings.TrimLeft(rule, " ")
		if strings.HasPrefix(rule, `"`) {
			q, err := strconv.QuotedPrefix(rule)
			if err != nil {
				panic(err)
			}
			u, _ := strconv.Unquote(q)
			out, rule = append(out, u), rule[len(q):]
			continue
		}
		w, rest, _ := strings.Cut(rule, " ")
		out, rule = append(out, w), rest
	}
	return out
}

type flowEval struct {
	t      *testing.T
	chains map[ID][]string
}

func newEval(t *testing.T, rs *Ruleset) *flowEval {
	e := &flowEval{t: t, chains: map[ID][]string{}}
	for _, c := range rs.Chains() {
		e.chains[c.ID()] = c.Rules
	}
	return e
}

func inCIDR(addr, cidr string) bool {
	if !strings.Contains(cidr, "/") {
		cidr += "/32"
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		panic(err)
	}
	return p.Contains(netip.MustParseAddr(addr))
}

// state of one flowPath through the chains.
type flowPath struct {
	masq bool
	to   string
	term string // target that ended evaluation: DNAT, REJECT, DROP
}

// run evaluates chain for p and returns every flowPath it can take.
func (e *flowEval) run(table, chain string, p packet, st flowPath) []flowPath {
	rules, ok := e.chains[ID{table, chain}]
	if !ok {
		e.t.Fatalf("jump to missing chain %s/%s", table, chain)
	}
	for _, r := range rules {
		w := words(r)
		match, branch := true, false
		var target string
		var args []string
		neg := false
		for i := 0; i < len(w) && match; i++ {
			switch w[i] {
			case "!":
				neg = true
				continue
			case "-s", "-d":
				a := p.src
				if w[i] == "-d" {
					a = p.dst
				}
				i++
				match = inCIDR(a, w[i]) != neg
			case "-p":
				i++
				match = w[i] == p.proto
			case "--dport":
				i++
				match = w[i] == strconv.Itoa(p.dport)
			case "--dst-type", "--src-type":
				a := p.dst
				if w[i] == "--src-type" {
					a = p.src
				}
				i++
				match = slices.Contains(hostAddrs, a)
			case "--probability":
				i++
				branch = true
			case "--rcheck":
				match = false // a new client
			case "--mark":
				e.t.Fatalf("mark match outside POSTROUTING: %s", r)
			case "-j":
				target, args = w[i+1], w[i+2:]
				i = len(w)
			case "-m", "--comment", "--mode", "--name", "--mask", "--seconds", "--ctstate":
				i++
			case "--rsource", "--reap", "--set":
			default:
				e.t.Fatalf("evaluator does not know %q in %s", w[i], r)
			}
			neg = false
		}
		if !match {
			continue
		}
		var taken []flowPath
		switch target {
		case "MARK":
			st.masq = true // PS-MARK-MASQ's --or-mark
			continue
		case "DNAT":
			s := st
			s.to, s.term = args[1], "DNAT"
			taken = []flowPath{s}
		case "REDIRECT": // to the receiving host's own address, same port
			s := st
			s.to, s.term = fmt.Sprintf("%s:%d", hostAddrs[0], p.dport), "DNAT"
			taken = []flowPath{s}
		case "REJECT", "DROP":
			s := st
			s.term = target
			taken = []flowPath{s}
		case "RETURN":
			return []flowPath{st}
		default:
			for _, sub := range e.run(table, target, p, st) {
				if sub.term != "" {
					taken = append(taken, sub)
				} else {
					st = sub // fell off the end: go on here
				}
			}
			if len(taken) == 0 {
				continue
			}
		}
		if !branch {
			return taken
		}
		// statistic: this rule's paths, and those of the rest not taking it.
		rest := e.runFrom(table, chain, r, p, st)
		return append(taken, rest...)
	}
	return []flowPath{st}
}

// runFrom evaluates chain after rule after (a statistic branch not taken).
func (e *flowEval) runFrom(table, chain, after string, p packet, st flowPath) []flowPath {
	rules := e.chains[ID{table, chain}]
	i := slices.Index(rules, after)
	sub := &flowEval{t: e.t, chains: map[ID][]string{}}
	for k, v := range e.chains {
		sub.chains[k] = v
	}
	sub.chains[ID{table, chain}] = rules[i+1:]
	return sub.run(table, chain, p, st)
}

// flow is every outcome of p's first packet, sorted.
func (e *flowEval) flow(p packet) []outcome {
	var out []outcome
	for _, np := range e.run("nat", ChainServices, p, flowPath{}) {
		o := outcome{to: np.to, masq: np.masq, verdict: "ACCEPT"}
		fp := p
		if np.to != "" {
			host, port, _ := strings.Cut(np.to, ":")
			fp.dst = host
			fp.dport, _ = strconv.Atoi(port)
		}
		for _, fpth := range e.run("filter", ChainFilter, fp, flowPath{}) {
			if fpth.term != "" {
				o.verdict = fpth.term
			}
		}
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b outcome) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	return out
}

func to(masq bool, dests ...string) []outcome {
	var out []outcome
	for _, d := range dests {
		out = append(out, outcome{to: d, masq: masq, verdict: "ACCEPT"})
	}
	slices.SortFunc(out, func(a, b outcome) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	return out
}

type flowCase struct {
	name string
	p    packet
	want []outcome
}

// flowCases are what a connection's first packet meets on esx-01 of
// testState, whichever backend carries the rules.
func flowCases() []flowCase {
	const (
		localVM  = "10.244.1.20" // a VM on esx-01's bridge
		remoteVM = "10.244.2.20" // a VM on esx-02
		outside  = "192.0.2.7"   // a client off the cluster
		hostIP   = "10.99.0.11"
	)
	tcp := func(src, dst string, port int) packet { return packet{src: src, dst: dst, proto: "tcp", dport: port} }
	return []flowCase{
		{"cluster IP spreads over every ready endpoint; local ones hairpin-masqueraded",
			tcp(localVM, "10.96.0.10", 80), append(to(true, "10.244.1.5:8080", "10.244.1.6:8080"), to(false, "10.244.2.5:8080")...)},
		{"a VM of another host is not masqueraded",
			tcp(remoteVM, "10.96.0.10", 80), to(false, "10.244.1.5:8080", "10.244.1.6:8080", "10.244.2.5:8080")},
		{"the host itself reaches a cluster IP, masqueraded (off the pod network)",
			packet{out: true, src: hostIP, dst: "10.96.0.10", proto: "tcp", dport: 80}, to(true, "10.244.1.5:8080", "10.244.1.6:8080", "10.244.2.5:8080")},
		{"wrong port of a cluster IP: untouched", tcp(localVM, "10.96.0.10", 81), to(false, "")},
		{"no endpoints: refused", tcp(localVM, "10.96.0.12", 80), []outcome{{verdict: "REJECT"}}},
		{"no endpoints, node port: refused", tcp(outside, hostIP, 30080), []outcome{{verdict: "REJECT"}}},
		{"node port, Cluster policy: any endpoint, SNAT", tcp(outside, hostIP, 30081), to(true, "10.244.1.7:80", "10.244.2.7:80")},
		{"node port on the bridge address too", tcp(outside, "10.244.1.1", 30081), to(true, "10.244.1.7:80", "10.244.2.7:80")},
		{"node port, Local policy: local endpoint only, client kept", tcp(outside, hostIP, 30082), to(false, "10.244.1.8:80")},
		{"load balancer address, Local: local endpoint, client kept", tcp(outside, "10.99.0.200", 80), to(false, "10.244.1.8:80")},
		{"Local with no local endpoint drops outside traffic", tcp(outside, "10.99.0.201", 80), []outcome{{verdict: "DROP"}}},
		{"Local with no local endpoint, node port: dropped", tcp(outside, hostIP, 30083), []outcome{{verdict: "DROP"}}},
		{"Local with no local endpoint: this host's VMs still reach it", tcp(localVM, "10.99.0.201", 80), to(false, "10.244.2.9:80")},
		{"Local: the host itself uses any endpoint, masqueraded",
			packet{out: true, src: hostIP, dst: hostIP, proto: "tcp", dport: 30082}, to(true, "10.244.1.8:80", "10.244.2.8:80")},
		{"sticky Service, new client: spread", tcp(remoteVM, "10.96.0.11", 80), to(false, "10.244.1.5:8080", "10.244.2.5:8080")},
		{"UDP port of a two-protocol Service", packet{src: localVM, dst: "10.96.0.53", proto: "udp", dport: 53}, to(false, "10.244.2.53:53")},
		{"headless Service: no rules", tcp(localVM, "10.244.1.5", 8080), to(false, "")},
		{"loopback node port: left alone", tcp("127.0.0.1", "127.0.0.1", 30081), to(false, "")},
	}
}

func TestPacketFlow(t *testing.T) {
	e := newEval(t, Rules(testState()))
	for _, c := range flowCases() {
		if got := e.flow(c.p); !slices.Equal(got, c.want) {
			t.Errorf("%s: %+v\n got %v\nwant %v", c.name, c.p, got, c.want)
		}
	}
}

// Services sharing the cluster's Ingress address (TCP and UDP forwarding
// through it): each port goes to its own Service, and the Ingress's own
// ports (80 and 443/TCP) to the Ingress proxy of the host receiving them.
func TestPacketFlowSharedIngressAddress(t *testing.T) {
	st, cases := sharedIngressCases()
	e := newEval(t, Rules(st))
	for _, c := range cases {
		if got := e.flow(c.p); !slices.Equal(got, c.want) {
			t.Errorf("%s: %+v\n got %v\nwant %v", c.name, c.p, got, c.want)
		}
	}
}

// sharedIngressCases are TestPacketFlowSharedIngressAddress's state and
// cases, for both backends' models.
func sharedIngressCases() (*State, []flowCase) {
	const ingress = "10.99.0.210"
	st := testState()
	shared := func(name, ip string, port api.ServicePort, target int, eps ...api.EndpointAddress) {
		s := svc(name, api.ServiceSpec{Type: api.ServiceLoadBalancer, ClusterIP: ip, LoadBalancerIP: ingress, Ports: []api.ServicePort{port}}, target, eps...)
		s.Status.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: ingress, Host: other, Shared: true}}
		st.Services[s.Path] = s
	}
	shared("udp-dns", "10.96.0.60", api.ServicePort{Port: 53, Protocol: "UDP", NodePort: 30053}, 5353, ep("10.244.1.60", self), ep("10.244.2.60", other))
	shared("pg", "10.96.0.61", api.ServicePort{Port: 5432, NodePort: 30054}, 5432, ep("10.244.2.61", other))
	st.Ingress = api.LoadBalancerIngress{IP: ingress, Host: other}
	const outside = "192.0.2.7"
	return st, []flowCase{
		{"UDP through the Ingress address: its Service, SNAT", packet{src: outside, dst: ingress, proto: "udp", dport: 53}, to(true, "10.244.1.60:5353", "10.244.2.60:5353")},
		{"TCP through the Ingress address: another Service", packet{src: outside, dst: ingress, proto: "tcp", dport: 5432}, to(true, "10.244.2.61:5432")},
		{"the Ingress's HTTP: to this host's proxy, client kept", packet{src: outside, dst: ingress, proto: "tcp", dport: 80}, to(false, "10.99.0.11:80")},
		{"the Ingress's HTTPS too", packet{src: outside, dst: ingress, proto: "tcp", dport: 443}, to(false, "10.99.0.11:443")},
		{"the host itself to the Ingress address", packet{out: true, src: "10.99.0.11", dst: ingress, proto: "tcp", dport: 80}, to(false, "10.99.0.11:80")},
		{"UDP 80 is not the Ingress's", packet{src: outside, dst: ingress, proto: "udp", dport: 80}, to(false, "")},
		{"a port no Service shares: untouched", packet{src: outside, dst: ingress, proto: "tcp", dport: 53}, to(false, "")},
	}
}

// A Generator follows the cluster's Ingress address: given, moved, gone.
func TestGeneratorFollowsIngressAddress(t *testing.T) {
	gn := NewGenerator()
	st := testState()
	redirects := func() []string {
		var out []string
		for _, r := range gn.Rules(st).Fixed[0].Rules {
			if strings.HasSuffix(r, "-j REDIRECT") {
				out = append(out, strings.Fields(r)[1])
			}
		}
		return out
	}
	if got := redirects(); len(got) != 0 {
		t.Errorf("without an Ingress address: %v", got)
	}
	for _, ip := range []string{"10.99.0.210", "10.99.0.211"} {
		st.Ingress.IP = ip
		if got := redirects(); !slices.Equal(got, []string{ip + "/32", ip + "/32"}) {
			t.Errorf("Ingress address %s: redirects for %v, want 80 and 443 of it", ip, got)
		}
	}
	st.Ingress.IP = ""
	if got := redirects(); len(got) != 0 {
		t.Errorf("after the Ingress address went: %v", got)
	}
}
