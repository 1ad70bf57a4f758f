package lb

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/podsphere/podsphere/api"
)

func dnsState(domain string, svcs ...Service) *State {
	st := &State{Spec: api.ClusterSpec{ClusterDomain: domain}, Services: map[string]Service{}}
	for _, s := range svcs {
		st.Services[s.Path] = s
	}
	return st
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestDNSRecords(t *testing.T) {
	web := Service{Path: "/dc1/service/datagrand/my-nginx", Namespace: "datagrand", Name: "my-nginx",
		Spec: api.ServiceSpec{Type: api.ServiceNodePort, ClusterIP: "10.96.0.10",
			Ports: []api.ServicePort{{Name: "http", Port: 8080}, {Port: 9090}, {Name: "dns", Protocol: "UDP", Port: 53}}}}
	db := Service{Path: "/dc1/service/db", Name: "db",
		Spec: api.ServiceSpec{Type: api.ServiceClusterIP, ClusterIP: api.ClusterIPNone},
		Status: api.ServiceStatus{Subsets: []api.EndpointSubset{{
			Addresses: []api.EndpointAddress{
				{IP: "10.244.2.7", VM: "/dc1/vm/db-1", Host: "/dc1/host/c1/esx-02"},
				{IP: "10.244.1.5", VM: "/dc1/vm/db-0", Host: "/dc1/host/c1/esx-01"},
			},
			NotReadyAddresses: []api.EndpointAddress{{IP: "10.244.3.9", VM: "/dc1/vm/db-2"}},
			Ports:             []api.EndpointPort{{Name: "pg", Port: 5432, Protocol: "TCP"}},
		}}}}
	alias := Service{Path: "/dc1/service/search", Name: "Search",
		Spec: api.ServiceSpec{Type: api.ServiceExternalName, ExternalName: "www.example.com."}}
	pending := Service{Path: "/dc1/service/new", Name: "new", Spec: api.ServiceSpec{Type: api.ServiceClusterIP}}
	odd := Service{Path: "/dc1/service/a_b", Name: "a_b", Spec: api.ServiceSpec{Type: api.ServiceClusterIP, ClusterIP: "10.96.0.11"}}

	tab := DNSRecords(dnsState("", web, db, alias, pending, odd))
	if tab.Domain != "cluster.local." {
		t.Fatalf("domain = %q, want cluster.local. by default", tab.Domain)
	}
	cases := []struct {
		name string
		ok   bool
		want DNSName
	}{
		{"my-nginx.datagrand.svc.cluster.local.", true, DNSName{A: addrs("10.96.0.10")}},
		{"MY-NGINX.Datagrand.svc.cluster.local", true, DNSName{A: addrs("10.96.0.10")}},
		{"_http._tcp.my-nginx.datagrand.svc.cluster.local.", true,
			DNSName{SRV: []SRV{{Port: 8080, Target: "my-nginx.datagrand.svc.cluster.local."}}}},
		{"_dns._udp.my-nginx.datagrand.svc.cluster.local.", true,
			DNSName{SRV: []SRV{{Port: 53, Target: "my-nginx.datagrand.svc.cluster.local."}}}},
		// Headless: the ready endpoints, each with its own name too.
		{"db.default.svc.cluster.local.", true, DNSName{A: addrs("10.244.1.5", "10.244.2.7")}},
		{"db-0.db.default.svc.cluster.local.", true, DNSName{A: addrs("10.244.1.5")}},
		{"db-2.db.default.svc.cluster.local.", false, DNSName{}}, // not ready
		{"_pg._tcp.db.default.svc.cluster.local.", true, DNSName{SRV: []SRV{
			{Port: 5432, Target: "db-0.db.default.svc.cluster.local."},
			{Port: 5432, Target: "db-1.db.default.svc.cluster.local."}}}},
		{"search.default.svc.cluster.local.", true, DNSName{CNAME: "www.example.com."}},
		// Allocation pending: the name exists, without an address yet.
		{"new.default.svc.cluster.local.", true, DNSName{}},
		// Empty non-terminals exist (NODATA, not NXDOMAIN).
		{"datagrand.svc.cluster.local.", true, DNSName{}},
		{"svc.cluster.local.", true, DNSName{}},
		{"cluster.local.", true, DNSName{}},
		{"_tcp.my-nginx.datagrand.svc.cluster.local.", true, DNSName{}},
		{"nope.default.svc.cluster.local.", false, DNSName{}},
		{"my-nginx.default.svc.cluster.local.", false, DNSName{}},
		{"a_b.default.svc.cluster.local.", false, DNSName{}}, // no DNS label: no name
	}
	for _, c := range cases {
		got, ok := tab.Lookup(c.name)
		if ok != c.ok || !slices.Equal(got.A, c.want.A) || got.CNAME != c.want.CNAME || !slices.Equal(got.SRV, c.want.SRV) {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
	for rev, want := range map[string]string{
		"10.0.96.10.in-addr.arpa.":  "my-nginx.datagrand.svc.cluster.local.",
		"5.1.244.10.in-addr.arpa.":  "db-0.db.default.svc.cluster.local.",
		"9.3.244.10.in-addr.arpa.":  "",
		"11.0.96.10.in-addr.arpa.":  "",
		"99.99.99.99.in-addr.arpa.": "",
	} {
		if got := tab.PTR(rev); got != want {
			t.Errorf("PTR(%s) = %q, want %q", rev, got, want)
		}
	}
	for name, want := range map[string]string{
		"my-nginx.datagrand.": "my-nginx.datagrand.svc.cluster.local.",
		"DB.default":          "db.default.svc.cluster.local.",
		"nope.datagrand.":     "",
		"my-nginx.":           "",
		"www.example.com.":    "",
		"svc.cluster.":        "",
	} {
		if got := tab.Namespaced(name); got != want {
			t.Errorf("Namespaced(%s) = %q, want %q", name, got, want)
		}
	}
	for name, in := range map[string]bool{
		"cluster.local": true, "x.y.svc.cluster.local.": true, "www.example.com.": false, "notcluster.local.": false,
	} {
		if tab.InDomain(name) != in {
			t.Errorf("InDomain(%s) = %v, want %v", name, !in, in)
		}
	}
}

func TestDNSRecordsClusterDomain(t *testing.T) {
	svc := Service{Path: "/dc1/service/web", Name: "web", Spec: api.ServiceSpec{ClusterIP: "10.96.1.1"}}
	tab := DNSRecords(dnsState("Corp.Example.", svc))
	if tab.Domain != "corp.example." {
		t.Fatalf("domain = %q", tab.Domain)
	}
	if rr, ok := tab.Lookup("web.default.svc.corp.example."); !ok || !slices.Equal(rr.A, addrs("10.96.1.1")) {
		t.Fatalf("web under the cluster's domain: %+v %v", rr, ok)
	}
	if _, ok := tab.Lookup("web.default.svc.cluster.local."); ok {
		t.Fatal("the default domain answers though the cluster sets its own")
	}
}

func TestDNSRecordsEmptyState(t *testing.T) {
	tab := DNSRecords(&State{})
	if _, ok := tab.Lookup("cluster.local."); !ok {
		t.Fatal("the zone itself must exist with no Services")
	}
	if _, ok := tab.Lookup("svc.cluster.local."); ok {
		t.Fatal("svc.cluster.local exists with no Services")
	}
}

func TestSearchPath(t *testing.T) {
	got := SearchPath("", "cluster.local")
	want := []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"}
	if !slices.Equal(got, want) {
		t.Fatalf("SearchPath = %v, want %v", got, want)
	}
	if got := SearchPath("Datagrand", "corp"); got[0] != "datagrand.svc.corp" {
		t.Fatalf("SearchPath(Datagrand) = %v", got)
	}
}

// BenchmarkDNSRecords rebuilds the table of 10,000 Services with 5
// endpoints each (half of them headless), what a host does on every change.
func BenchmarkDNSRecords(b *testing.B) {
	st := &State{Services: map[string]Service{}}
	for i := range 10000 {
		s := Service{Path: fmt.Sprintf("/dc1/service/ns%d/svc-%d", i%50, i), Namespace: fmt.Sprintf("ns%d", i%50), Name: fmt.Sprintf("svc-%d", i),
			Spec: api.ServiceSpec{ClusterIP: fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), Ports: []api.ServicePort{{Name: "http", Port: 80}}}}
		var sub api.EndpointSubset
		for j := range 5 {
			sub.Addresses = append(sub.Addresses, api.EndpointAddress{IP: fmt.Sprintf("10.244.%d.%d", j, i%250+2), VM: fmt.Sprintf("/dc1/vm/ns%d/vm-%d-%d", i%50, i, j)})
		}
		sub.Ports = []api.EndpointPort{{Name: "http", Port: 8080, Protocol: "TCP"}}
		s.Status.Subsets = []api.EndpointSubset{sub}
		if i%2 == 0 {
			s.Spec.ClusterIP = api.ClusterIPNone
		}
		st.Services[s.Path] = s
	}
	b.ReportAllocs()
	for b.Loop() {
		DNSRecords(st)
	}
}
