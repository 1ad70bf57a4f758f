package lb

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	self  = "/dc1/host/c1/esx-01"
	other = "/dc1/host/c1/esx-02"
)

func ep(ip, host string) api.EndpointAddress {
	return api.EndpointAddress{IP: ip, VM: "/dc1/vm/" + ip, Host: host}
}

func svc(name string, spec api.ServiceSpec, port int, eps ...api.EndpointAddress) Service {
	s := Service{Path: "/dc1/service/" + name, Name: name, Spec: spec}
	if len(eps) > 0 {
		var ports []api.EndpointPort
		for _, p := range spec.Ports {
			ports = append(ports, api.EndpointPort{Name: p.Name, Port: port, Protocol: strings.ToUpper(p.Protocol + map[bool]string{true: "TCP"}[p.Protocol == ""])})
		}
		s.Status.Subsets = []api.EndpointSubset{{Addresses: eps, Ports: ports}}
	}
	return s
}

func timeout(n int) *api.SessionAffinityConfig {
	return &api.SessionAffinityConfig{ClientIP: &api.ClientIPConfig{TimeoutSeconds: &n}}
}

// testState is one host's view of a cluster with every kind of Service.
func testState() *State {
	p80 := []api.ServicePort{{Port: 80, TargetPort: api.IntOrString{IntVal: 8080}}}
	lbSpec := func(ip string, np int) api.ServiceSpec {
		return api.ServiceSpec{Type: api.ServiceLoadBalancer, ClusterIP: ip, ExternalTrafficPolicy: "Local",
			Ports: []api.ServicePort{{Port: 80, NodePort: np}}}
	}
	st := &State{
		Cluster: "/dc1/host/c1", Self: self,
		Spec: api.ClusterSpec{PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/16"},
		Hosts: map[string]Host{
			self:  {Path: self, Address: "10.99.0.11", State: api.HostConnected, PodSubnet: "10.244.1.0/24"},
			other: {Path: other, Address: "10.99.0.12", State: api.HostConnected, PodSubnet: "10.244.2.0/24"},
		},
		Services: map[string]Service{},
	}
	add := func(s Service) { st.Services[s.Path] = s }
	add(svc("web", api.ServiceSpec{Type: api.ServiceClusterIP, ClusterIP: "10.96.0.10", Ports: p80}, 8080,
		ep("10.244.1.5", self), ep("10.244.1.6", self), ep("10.244.2.5", other)))
	add(svc("sticky", api.ServiceSpec{Type: api.ServiceClusterIP, ClusterIP: "10.96.0.11", Ports: p80,
		SessionAffinity: "ClientIP", SessionAffinityConfig: timeout(600)}, 8080, ep("10.244.1.5", self), ep("10.244.2.5", other)))
	add(svc("empty", api.ServiceSpec{Type: api.ServiceNodePort, ClusterIP: "10.96.0.12",
		Ports: []api.ServicePort{{Port: 80, NodePort: 30080}}}, 80))
	add(svc("np", api.ServiceSpec{Type: api.ServiceNodePort, ClusterIP: "10.96.0.13",
		Ports: []api.ServicePort{{Port: 80, NodePort: 30081}}}, 80, ep("10.244.1.7", self), ep("10.244.2.7", other)))
	lbl := svc("lbl", lbSpec("10.96.0.14", 30082), 80, ep("10.244.1.8", self), ep("10.244.2.8", other))
	lbl.Status.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: "10.99.0.200", Host: other}}
	add(lbl)
	lbr := svc("lbr", lbSpec("10.96.0.15", 30083), 80, ep("10.244.2.9", other))
	lbr.Status.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: "10.99.0.201", Host: self}}
	add(lbr)
	add(svc("headless", api.ServiceSpec{Type: api.ServiceClusterIP, ClusterIP: api.ClusterIPNone, Ports: p80}, 8080, ep("10.244.1.5", self)))
	add(svc("alias", api.ServiceSpec{Type: api.ServiceExternalName, ExternalName: "db.corp.example"}, 0))
	add(svc("pending", api.ServiceSpec{Type: api.ServiceClusterIP, Ports: p80}, 8080, ep("10.244.1.5", self)))
	add(svc("dns", api.ServiceSpec{Type: api.ServiceClusterIP, ClusterIP: "10.96.0.53",
		Ports: []api.ServicePort{{Name: "dns", Port: 53, Protocol: "UDP"}, {Name: "dns-tcp", Port: 53, Protocol: "TCP"}}}, 53,
		ep("10.244.2.53", other)))
	return st
}

func TestRulesGolden(t *testing.T) {
	rs := Rules(testState())
	write, remove := Diff(nil, rs)
	if len(remove) != 0 {
		t.Fatalf("nothing in place, yet Diff removes %v", remove)
	}
	got := Restore(write, nil)
	golden := filepath.Join("testdata", "rules.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./lb -run Golden -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("rules differ from %s (go test ./lb -run Golden -update to accept):\n%s", golden, got)
	}
	if again := Restore(Diff(nil, Rules(testState()))); string(again) != string(got) {
		t.Error("the same state gave different rules")
	}
	for _, c := range rs.Chains() {
		if !strings.HasPrefix(c.Name, ChainPrefix) || len(c.Name) > 28 {
			t.Errorf("chain %s: not podsphere's or longer than iptables' 28 characters", c.Name)
		}
	}
}

// An endpoint that goes rewrites its Service's chains, deletes its own,
// and leaves every other Service alone.
func TestDiffOneEndpoint(t *testing.T) {
	st := testState()
	was := Rules(st)
	web := st.Services["/dc1/service/web"]
	web.Status.Subsets[0].Addresses = web.Status.Subsets[0].Addresses[:2]
	st.Services[web.Path] = web
	write, remove := Diff(was, Rules(st))
	if len(write) != 1 || !strings.HasPrefix(write[0].Name, "PS-SVC-") {
		t.Errorf("wrote %v, want only web's service chain", names(write))
	}
	if len(remove) != 1 || !strings.HasPrefix(remove[0].Name, "PS-SEP-") {
		t.Errorf("removed %v, want only the endpoint's chain", remove)
	}
	text := string(Restore(write, remove))
	if !strings.Contains(text, "-X "+remove[0].Name+"\n") || strings.Count(text, "COMMIT") != 1 {
		t.Errorf("restore text:\n%s", text)
	}

	// The Service goes: its service chain and its three endpoint chains
	// go, its portal leaves PS-SERVICES, nothing else is written.
	st = testState()
	delete(st.Services, web.Path)
	write, remove = Diff(was, Rules(st))
	if len(remove) != 4 {
		t.Errorf("removing web deleted %v, want its 4 chains", remove)
	}
	if len(write) != 1 || write[0].Name != ChainServices {
		t.Errorf("removing web rewrote %v, want only %s", names(write), ChainServices)
	}
}

func names(cs []Chain) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Table+"/"+c.Name)
	}
	return out
}

// A Generator that reuses unchanged Services' rules writes what a fresh
// one does, through additions, changes and removals; and Diff between
// two of its rule sets names only what changed.
func TestGeneratorReuses(t *testing.T) {
	gn := NewGenerator()
	st := testState()
	was := gn.Rules(st)
	steps := []func(){
		func() { // an endpoint goes
			web := st.Services["/dc1/service/web"].Clone()
			web.Status.Subsets[0].Addresses = web.Status.Subsets[0].Addresses[1:]
			st.Services[web.Path] = web
		},
		func() { delete(st.Services, "/dc1/service/np") },
		func() { // a Service comes
			s := st.Services["/dc1/service/sticky"].Clone()
			s.Path, s.Name, s.Spec.ClusterIP = "/dc1/service/sticky2", "sticky2", "10.96.0.99"
			st.Services[s.Path] = s
		},
		func() { // this host's pod subnet changes: everything is made again
			h := st.Hosts[self]
			h.PodSubnet = "10.244.7.0/24"
			st.Hosts[self] = h
		},
	}
	for i, step := range steps {
		step()
		got := gn.Rules(st)
		if a, b := string(Restore(Diff(nil, got))), string(Restore(Diff(nil, Rules(st)))); a != b {
			t.Fatalf("step %d: the reusing generator wrote\n%s\nwant\n%s", i, a, b)
		}
		w, r := Diff(was, got)
		if i == 0 && (len(w) != 1 || len(r) != 1) {
			t.Errorf("an endpoint going: wrote %v, removed %v; want web's service chain and the endpoint's", names(w), r)
		}
		was = got
	}
}
