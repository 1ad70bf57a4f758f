package lb

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The nftables text of testState is what `nft -f` reads; a change to it
// is a change to every host's rules, reviewed in the diff.
func TestNftGolden(t *testing.T) {
	got := NftText(NftRules(testState()))
	path := filepath.Join("testdata", "nft.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./lb -run NftGolden -update writes it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("NftText differs from %s (-update rewrites it):\n%s", path, got)
	}
}

// nftEval follows the nftables model as the kernel would for a
// connection's first packet: both branches of every numgen match, a
// client not yet in any affinity set.
type nftEval struct {
	t      *testing.T
	chains map[string][]NftRule
	elems  map[string]string // NftElem.Key() -> verdict
}

func newNftEval(t *testing.T, rs *NftRuleset) *nftEval {
	e := &nftEval{t: t, chains: map[string][]NftRule{}, elems: map[string]string{}}
	for _, c := range NftDiff(nil, rs).Write {
		e.chains[c.Name] = c.Rules
	}
	for _, ns := range rs.Services {
		for _, el := range ns.Elems {
			e.elems[el.Key()] = el.To
		}
	}
	return e
}

func (e *nftEval) run(chain string, p packet, st flowPath) []flowPath {
	rules, ok := e.chains[chain]
	if !ok {
		e.t.Fatalf("jump to missing chain %s", chain)
	}
	return e.rules(rules, p, st)
}

func (e *nftEval) rules(rules []NftRule, p packet, st flowPath) []flowPath {
	local := func(a string) bool { return slices.Contains(hostAddrs, a) }
	for i, r := range rules {
		if (r.SrcNet != "" && inCIDR(p.src, r.SrcNet) == r.SrcNetNot) || (r.SrcLocal && !local(p.src)) ||
			(r.DstLocal && !local(p.dst)) || (r.DstNotNet != "" && inCIDR(p.dst, r.DstNotNet)) ||
			(r.DstIP != "" && r.DstIP != p.dst) || (r.Proto != "" && r.Proto != p.proto) ||
			(r.DPort != 0 && r.DPort != p.dport) || r.SrcInSet != "" || r.MarkUnset {
			continue
		}
		verdict := r.Verdict
		if r.VmapIP != "" || r.VmapPort != "" {
			m, ip := r.VmapPort, ""
			if r.VmapIP != "" {
				m, ip = r.VmapIP, p.dst
			}
			v, ok := e.elems[NftElem{Map: m, IP: ip, Proto: p.proto, Port: p.dport}.Key()]
			if !ok {
				continue
			}
			verdict = v
		}
		if r.SetMark {
			st.masq = true
		}
		var taken []flowPath
		switch {
		case r.DNAT != "":
			s := st
			s.to, s.term = r.DNAT, "DNAT"
			taken = []flowPath{s}
		case r.Redirect: // to the receiving host's own address, same port
			s := st
			s.to, s.term = hostAddrs[0]+":"+strconv.Itoa(p.dport), "DNAT"
			taken = []flowPath{s}
		case r.RejectTCP || r.Reject:
			s := st
			s.term = "REJECT"
			taken = []flowPath{s}
		case verdict == "drop":
			s := st
			s.term = "DROP"
			taken = []flowPath{s}
		case verdict == "return":
			return []flowPath{st}
		case strings.HasPrefix(verdict, "goto "):
			taken = e.run(strings.TrimPrefix(verdict, "goto "), p, st) // never comes back here
		case strings.HasPrefix(verdict, "jump "):
			var back []flowPath
			for _, sub := range e.run(strings.TrimPrefix(verdict, "jump "), p, st) {
				if sub.term != "" {
					taken = append(taken, sub)
				} else {
					back = append(back, sub)
				}
			}
			if len(back) > 0 && len(taken) == 0 && r.RandomMod == 0 {
				st = back[0] // returned: go on here
				continue
			}
		default:
			continue
		}
		if r.RandomMod == 0 {
			return taken
		}
		// numgen: this rule's paths, and those of the rest not taking it.
		return append(taken, e.rules(rules[i+1:], p, st)...)
	}
	return []flowPath{st}
}

func (e *nftEval) flow(p packet) []outcome {
	var out []outcome
	for _, np := range e.run(NftChainServices, p, flowPath{}) {
		o := outcome{to: np.to, masq: np.masq, verdict: "ACCEPT"}
		fp := p
		if np.to != "" {
			host, port, _ := strings.Cut(np.to, ":")
			fp.dst = host
			fp.dport, _ = strconv.Atoi(port)
		}
		for _, fpth := range e.run(NftChainFilter, fp, flowPath{}) {
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

// The same cases as the iptables rules: both backends carry a Service
// the same way.
func TestNftPacketFlow(t *testing.T) {
	e := newNftEval(t, NftRules(testState()))
	for _, c := range flowCases() {
		if got := e.flow(c.p); !slices.Equal(got, c.want) {
			t.Errorf("%s: %+v\n got %v\nwant %v", c.name, c.p, got, c.want)
		}
	}
}

// One endpoint change touches that Service's chains and nothing else;
// a Service going removes its chains and elements.
func TestNftDiffIsProportional(t *testing.T) {
	st := testState()
	gn := NewNftGenerator()
	was := gn.Rules(st)
	if c := NftDiff(was, gn.Rules(st)); !c.Empty() {
		t.Errorf("an unchanged state changes %+v", c)
	}
	var path string
	for p, s := range st.Services {
		if s.Spec.ClusterIP == "10.96.0.10" {
			path = p
		}
	}
	s := st.Services[path].Clone()
	s.Status.Subsets[0].Addresses[0].IP = "10.244.2.99"
	st.Services[path] = s
	now := gn.Rules(st)
	c := NftDiff(was, now)
	// The new endpoint's chain, and the spreading chain naming it; the
	// old endpoint's chain goes. No map element changes: the cluster IP
	// still goes to the same chain.
	if len(c.Write) != 2 || len(c.DelChains) != 1 || len(c.AddElems)+len(c.DelElems) != 0 {
		t.Errorf("one endpoint moved: write %d chains, delete %d, elements +%d -%d; want 2, 1, 0, 0",
			len(c.Write), len(c.DelChains), len(c.AddElems), len(c.DelElems))
	}
	delete(st.Services, path)
	c = NftDiff(now, gn.Rules(st))
	if len(c.Write) != 0 || len(c.DelChains) == 0 || len(c.DelElems) != 1 {
		t.Errorf("a Service removed: write %d, delete %d chains, %d elements; want 0, its chains, its cluster IP", len(c.Write), len(c.DelChains), len(c.DelElems))
	}
}

func TestNftPacketFlowSharedIngressAddress(t *testing.T) {
	st, cases := sharedIngressCases()
	e := newNftEval(t, NftRules(st))
	for _, c := range cases {
		if got := e.flow(c.p); !slices.Equal(got, c.want) {
			t.Errorf("%s: %+v\n got %v\nwant %v", c.name, c.p, got, c.want)
		}
	}
}

// The Ingress address coming or going rewrites the fixed chain that
// holds its redirects, and nothing else.
func TestNftDiffFollowsIngressAddress(t *testing.T) {
	st := testState()
	gn := NewNftGenerator()
	was := gn.Rules(st)
	st.Ingress.IP = "10.99.0.210"
	now := gn.Rules(st)
	c := NftDiff(was, now)
	if len(c.Write) != 1 || c.Write[0].Name != NftChainServices || !strings.Contains(string(NftText(now)), "ip daddr 10.99.0.210 meta l4proto tcp th dport 443 redirect") {
		t.Errorf("the Ingress address given: writes %d chains, want the services chain with its redirects", len(c.Write))
	}
	st.Ingress.IP = ""
	if c := NftDiff(now, gn.Rules(st)); len(c.Write) != 1 || strings.Contains(string(NftText(gn.Rules(st))), "redirect") {
		t.Errorf("the Ingress address gone: writes %d chains, want the services chain without redirects", len(c.Write))
	}
}

// A Service deleted and another taking its cluster IP and port in the
// same sync, with the count of Services unchanged: the newcomer gets the map element (the one gone gives it up
// first), as a fresh generator would give it.
func TestNftGeneratorHandsOverAnAddress(t *testing.T) {
	st := testState()
	gn := NewNftGenerator()
	gn.Rules(st)
	// web (10.96.0.10) goes; sticky, before it in path order (so remade
	// before the generator meets the path gone), takes its address.
	var gone, other string
	for p, s := range st.Services {
		switch s.Spec.ClusterIP {
		case "10.96.0.10":
			gone = p
		case "10.96.0.11":
			other = p
		}
	}
	if gone == "" || other == "" {
		t.Fatal("testState has no Service on 10.96.0.10, or no other")
	}
	// other changes to gone's address and port while gone is deleted.
	s := st.Services[other].Clone()
	s.Spec.ClusterIP, s.Spec.Ports = "10.96.0.10", slices.Clone(st.Services[gone].Spec.Ports)
	st.Services[other] = s
	delete(st.Services, gone)
	// And one more, so the count of Services stays (the path gone is
	// found only by looking each up).
	added := st.Services[other].Clone()
	added.Path, added.Name, added.Spec.ClusterIP = added.Path+"-2", added.Name+"-2", "10.96.0.99"
	st.Services[added.Path] = added
	got, want := NftText(gn.Rules(st)), NftText(NftRules(st))
	if string(got) != string(want) {
		t.Errorf("the reused generator's rules differ from a fresh one's:\n%s\nwant\n%s", got, want)
	}
}
