package dns

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/lb"
)

// state is a cluster with a ClusterIP Service, a headless one with two
// ready endpoints, and ExternalName aliases in and out of the cluster.
func state() *lb.State {
	svcs := []lb.Service{
		{Path: "/dc1/service/datagrand/my-nginx", Namespace: "datagrand", Name: "my-nginx",
			Spec: api.ServiceSpec{Type: api.ServiceClusterIP, ClusterIP: "10.96.0.10", Ports: []api.ServicePort{{Name: "http", Port: 8080}}}},
		{Path: "/dc1/service/db", Name: "db", Spec: api.ServiceSpec{ClusterIP: api.ClusterIPNone},
			Status: api.ServiceStatus{Subsets: []api.EndpointSubset{{Addresses: []api.EndpointAddress{
				{IP: "10.244.1.5", VM: "/dc1/vm/db-0"}, {IP: "10.244.2.7", VM: "/dc1/vm/db-1"}}}}}},
		{Path: "/dc1/service/web", Name: "web", Spec: api.ServiceSpec{Type: api.ServiceExternalName, ExternalName: "my-nginx.datagrand.svc.cluster.local"}},
		{Path: "/dc1/service/search", Name: "search", Spec: api.ServiceSpec{Type: api.ServiceExternalName, ExternalName: "www.example.com"}},
	}
	st := &lb.State{Services: map[string]lb.Service{}}
	for _, s := range svcs {
		st.Services[s.Path] = s
	}
	return st
}

// upstream is a real DNS server on loopback standing for the host's own
// resolver: it knows www.example.com and external.test.
func upstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, req *mdns.Msg) {
		resp := new(mdns.Msg).SetReply(req)
		q := req.Question[0]
		if q.Qtype == mdns.TypeA && (q.Name == "www.example.com." || q.Name == "external.test.") {
			resp.Answer = append(resp.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.ParseIP("192.0.2.80")})
		} else {
			resp.Rcode = mdns.RcodeNameError
		}
		_ = w.WriteMsg(resp)
	})
	for _, s := range []*mdns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return pc.LocalAddr().String()
}

func start(t *testing.T, cfg Config) *Resolver {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Upstreams == nil {
		cfg.Upstreams = []string{}
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func ask(t *testing.T, r *Resolver, network, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg).SetQuestion(name, qtype)
	c := &mdns.Client{Net: network, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(m, r.Addr().String())
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, mdns.TypeToString[qtype], network, err)
	}
	return resp
}

// answers lists an answer section as "TYPE value" strings.
func answers(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch v := rr.(type) {
		case *mdns.A:
			out = append(out, "A "+v.A.String())
		case *mdns.CNAME:
			out = append(out, "CNAME "+v.Target)
		case *mdns.SRV:
			out = append(out, "SRV "+v.Target)
		case *mdns.PTR:
			out = append(out, "PTR "+v.Ptr)
		default:
			out = append(out, rr.String())
		}
	}
	return out
}

func TestResolverAnswersClusterNames(t *testing.T) {
	r := start(t, Config{Upstreams: []string{upstream(t)}})
	if err := r.ApplyLB(context.Background(), state()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		qtype uint16
		rcode int
		want  []string
	}{
		{"my-nginx.datagrand.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.96.0.10"}},
		{"db.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.244.1.5", "A 10.244.2.7"}},
		{"db-1.db.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.244.2.7"}},
		// The alias and what it points at, in one answer.
		{"web.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"CNAME my-nginx.datagrand.svc.cluster.local.", "A 10.96.0.10"}},
		{"search.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"CNAME www.example.com.", "A 192.0.2.80"}},
		{"_http._tcp.my-nginx.datagrand.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess, []string{"SRV my-nginx.datagrand.svc.cluster.local."}},
		{"10.0.96.10.in-addr.arpa.", mdns.TypePTR, mdns.RcodeSuccess, []string{"PTR my-nginx.datagrand.svc.cluster.local."}},
		// An existing name asked for a type it lacks: NOERROR, no answer.
		{"my-nginx.datagrand.svc.cluster.local.", mdns.TypeAAAA, mdns.RcodeSuccess, nil},
		{"datagrand.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, nil},
		{"nope.datagrand.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil},
		{"my-nginx.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil},
		// NAME.NAMESPACE asked as it is (busybox nslookup applies no search to dotted names).
		{"my-nginx.datagrand.", mdns.TypeA, mdns.RcodeSuccess, []string{"CNAME my-nginx.datagrand.svc.cluster.local.", "A 10.96.0.10"}},
		{"web.default.", mdns.TypeA, mdns.RcodeSuccess, []string{"CNAME web.default.svc.cluster.local.", "CNAME my-nginx.datagrand.svc.cluster.local.", "A 10.96.0.10"}},
		// Names outside the cluster go upstream.
		{"external.test.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 192.0.2.80"}},
		{"missing.test.", mdns.TypeA, mdns.RcodeNameError, nil},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, c := range cases {
			resp := ask(t, r, network, c.name, c.qtype)
			if resp.Rcode != c.rcode || !slices.Equal(answers(resp), c.want) {
				t.Errorf("%s %s over %s: %s %v; want %s %v", c.name, mdns.TypeToString[c.qtype], network,
					mdns.RcodeToString[resp.Rcode], answers(resp), mdns.RcodeToString[c.rcode], c.want)
			}
			inCluster := strings.Contains(c.name, "cluster.local") || strings.HasSuffix(c.name, ".arpa.")
			if resp.Authoritative != inCluster {
				t.Errorf("%s: authoritative = %v, want %v", c.name, resp.Authoritative, inCluster)
			}
			if inCluster && len(resp.Answer) == 0 && (len(resp.Ns) != 1 || resp.Ns[0].Header().Rrtype != mdns.TypeSOA) {
				t.Errorf("%s: a negative answer without the zone's SOA: %v", c.name, resp.Ns)
			}
			for _, rr := range resp.Answer {
				if inCluster && rr.Header().Name != "www.example.com." && rr.Header().Ttl != lb.DNSTTL {
					t.Errorf("%s: TTL %d, want %d", rr.Header().Name, rr.Header().Ttl, lb.DNSTTL)
				}
			}
		}
	}
}

func TestResolverSwapsTable(t *testing.T) {
	r := start(t, Config{})
	st := state()
	_ = r.ApplyLB(context.Background(), st)
	if got := answers(ask(t, r, "udp", "my-nginx.datagrand.svc.cluster.local.", mdns.TypeA)); !slices.Equal(got, []string{"A 10.96.0.10"}) {
		t.Fatalf("before: %v", got)
	}
	svc := st.Services["/dc1/service/datagrand/my-nginx"]
	svc.Spec.ClusterIP = "10.96.0.99"
	next := &lb.State{Services: map[string]lb.Service{svc.Path: svc}}
	_ = r.ApplyLB(context.Background(), next)
	// The very next query sees the new table: no cache, no wait.
	if got := answers(ask(t, r, "udp", "my-nginx.datagrand.svc.cluster.local.", mdns.TypeA)); !slices.Equal(got, []string{"A 10.96.0.99"}) {
		t.Fatalf("after the swap: %v", got)
	}
	if resp := ask(t, r, "udp", "db.default.svc.cluster.local.", mdns.TypeA); resp.Rcode != mdns.RcodeNameError {
		t.Fatalf("a removed Service still answers: %s %v", mdns.RcodeToString[resp.Rcode], answers(resp))
	}
	// A cluster that sets its own domain: names move there.
	next.Spec.ClusterDomain = "corp.example"
	_ = r.ApplyLB(context.Background(), next)
	if got := answers(ask(t, r, "tcp", "my-nginx.datagrand.svc.corp.example.", mdns.TypeA)); !slices.Equal(got, []string{"A 10.96.0.99"}) {
		t.Fatalf("under the cluster's domain: %v", got)
	}
}

func TestResolverBeforeFirstState(t *testing.T) {
	r := start(t, Config{Upstreams: []string{upstream(t)}})
	// Unknown, not absent: SERVFAIL, which a VM does not cache as NXDOMAIN.
	if resp := ask(t, r, "udp", "my-nginx.datagrand.svc.cluster.local.", mdns.TypeA); resp.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("before the first state: %s", mdns.RcodeToString[resp.Rcode])
	}
	if got := answers(ask(t, r, "udp", "external.test.", mdns.TypeA)); !slices.Equal(got, []string{"A 192.0.2.80"}) {
		t.Fatalf("forwarding before the first state: %v", got)
	}
}

func TestResolverUpstreamSilentIsServfailFast(t *testing.T) {
	// An upstream that takes queries and never answers.
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	r := start(t, Config{Upstreams: []string{silent.LocalAddr().String()}, Timeout: 100 * time.Millisecond})
	_ = r.ApplyLB(context.Background(), state())
	m := new(mdns.Msg).SetQuestion("external.test.", mdns.TypeA)
	// The client gives up after 3 s; the resolver must answer well before.
	c := &mdns.Client{Timeout: 3 * time.Second}
	resp, _, err := c.Exchange(m, r.Addr().String())
	if err != nil {
		t.Fatalf("no answer before the client's own timeout: %v", err)
	}
	if resp.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", mdns.RcodeToString[resp.Rcode])
	}
	// The alias is still answered, without the target's addresses.
	resp, _, err = c.Exchange(new(mdns.Msg).SetQuestion("search.default.svc.cluster.local.", mdns.TypeA), r.Addr().String())
	if err != nil || resp.Rcode != mdns.RcodeSuccess || !slices.Equal(answers(resp), []string{"CNAME www.example.com."}) {
		t.Fatalf("alias with a silent upstream: %v %v", resp, err)
	}
}

func TestResolverNoUpstreamIsServfail(t *testing.T) {
	r := start(t, Config{})
	_ = r.ApplyLB(context.Background(), state())
	if resp := ask(t, r, "udp", "external.test.", mdns.TypeA); resp.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", mdns.RcodeToString[resp.Rcode])
	}
}

func TestResolverTruncatesOverUDP(t *testing.T) {
	r := start(t, Config{})
	st := &lb.State{Services: map[string]lb.Service{}}
	var addrs []api.EndpointAddress
	for i := range 60 {
		addrs = append(addrs, api.EndpointAddress{IP: net.IPv4(10, 244, 1, byte(i+2)).String()})
	}
	st.Services["/dc1/service/big"] = lb.Service{Path: "/dc1/service/big", Name: "big",
		Spec: api.ServiceSpec{ClusterIP: api.ClusterIPNone}, Status: api.ServiceStatus{Subsets: []api.EndpointSubset{{Addresses: addrs}}}}
	_ = r.ApplyLB(context.Background(), st)
	udp := ask(t, r, "udp", "big.default.svc.cluster.local.", mdns.TypeA)
	if !udp.Truncated {
		t.Fatalf("60 addresses over plain UDP: not truncated (%d answers)", len(udp.Answer))
	}
	if tcp := ask(t, r, "tcp", "big.default.svc.cluster.local.", mdns.TypeA); len(tcp.Answer) != 60 || tcp.Truncated {
		t.Fatalf("over TCP: %d answers, truncated %v; want all 60", len(tcp.Answer), tcp.Truncated)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Listen: "10.0.0.1"},
		{Listen: "gateway:53"},
		{Listen: "127.0.0.1:0", Upstreams: []string{"dns.example.com"}},
	} {
		if _, err := New(cfg); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("New(%+v) = %v, want ErrInvalid", cfg, err)
		}
	}
}

func TestReadUpstreams(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(p, []byte("# the host's\nnameserver 192.0.2.53\nnameserver 10.99.0.1\nsearch corp\noptions ndots:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ReadUpstreams(p); !slices.Equal(got, []string{"192.0.2.53:53", "10.99.0.1:53"}) {
		t.Fatalf("ReadUpstreams = %v", got)
	}
	if got := ReadUpstreams(filepath.Join(t.TempDir(), "none")); got != nil {
		t.Fatalf("missing file: %v", got)
	}
	// Forwarding to itself would loop.
	r, err := New(Config{Listen: "10.244.1.1:53", Upstreams: []string{"10.244.1.1", "192.0.2.53"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Upstreams(); !slices.Equal(got, []string{"192.0.2.53:53"}) {
		t.Fatalf("upstreams = %v", got)
	}
}

// BenchmarkResolverA is one A query for a cluster name over loopback UDP,
// client and server in this process.
func BenchmarkResolverA(b *testing.B) {
	r, err := New(Config{Listen: "127.0.0.1:0", Upstreams: []string{}})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(); err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	_ = r.ApplyLB(context.Background(), state())
	c := &mdns.Client{Timeout: time.Second}
	conn, err := c.Dial(r.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	m := new(mdns.Msg).SetQuestion("my-nginx.datagrand.svc.cluster.local.", mdns.TypeA)
	for b.Loop() {
		resp, _, err := c.ExchangeWithConn(m, conn)
		if err != nil || len(resp.Answer) != 1 {
			b.Fatalf("%v %v", resp, err)
		}
	}
}
