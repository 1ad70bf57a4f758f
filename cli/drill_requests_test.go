package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha/drill"
	"github.com/podsphere/podsphere/internal/loadgen"
)

func drillService(path string, spec api.ServiceSpec, st api.ServiceStatus) *api.Object {
	o := &api.Object{Meta: api.Meta{Kind: api.KindService, Path: path}}
	o.SetSpec(spec)
	o.SetStatus(st)
	return o
}

func drillHost(path, state, addr string) *api.Object {
	o := &api.Object{Meta: api.Meta{Kind: api.KindHost, Path: path}}
	o.SetStatus(api.HostStatus{State: state, Address: addr})
	return o
}

func TestDrillTarget(t *testing.T) {
	const cluster, h1, h2, h3 = "/dc/host/c", "/dc/host/c/esx-01", "/dc/host/c/esx-02", "/dc/host/c/esx-03"
	hosts := []*api.Object{drillHost(h1, api.HostConnected, "10.99.0.11:7946"), drillHost(h2, api.HostConnected, "10.99.0.12:7946"),
		drillHost(h3, api.HostNotResponding, "10.99.0.13:7946")}
	on := func(vm, host string) api.ServiceStatus {
		return api.ServiceStatus{Subsets: []api.EndpointSubset{{Addresses: []api.EndpointAddress{{IP: "10.244.1.5", VM: vm, Host: host}}}}}
	}
	web := func(typ string, nodePort int) api.ServiceSpec {
		return api.ServiceSpec{Cluster: cluster, Type: typ, Ports: []api.ServicePort{{Protocol: "UDP", Port: 53, NodePort: 30053}, {Port: 80, NodePort: nodePort}}}
	}
	withLB := on("/dc/vm/web-1", h1)
	withLB.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: "10.99.0.240", Host: h1}}
	cases := []struct {
		name, want string
		svcs       []*api.Object
	}{
		{"the LoadBalancer address first: it is what moves in a failover", "/dc/service/web http://10.99.0.240:80/",
			[]*api.Object{drillService("/dc/service/web", web(api.ServiceLoadBalancer, 31000), withLB)}},
		{"else the NodePort on a connected host the drill leaves alone", "/dc/service/web http://10.99.0.12:31000/",
			[]*api.Object{drillService("/dc/service/web", web(api.ServiceNodePort, 31000), on("/dc/vm/web-1", h1))}},
		{"a Service that selects other VMs is not the drill's", "",
			[]*api.Object{drillService("/dc/service/db", web(api.ServiceLoadBalancer, 31000), func() api.ServiceStatus {
				s := on("/dc/vm/db-1", h1)
				s.LoadBalancer = withLB.LoadBalancer
				return s
			}())}},
		{"a ClusterIP Service cannot be reached from outside: said so", "no target: /dc/service/web select the drill's VMs but have neither",
			[]*api.Object{drillService("/dc/service/web", api.ServiceSpec{Cluster: cluster, Type: api.ServiceClusterIP, Ports: []api.ServicePort{{Port: 80}}}, on("/dc/vm/web-1", h1))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg, why := drillTarget(cluster, c.svcs, hosts, []string{"/dc/vm/web-1"})
			got := ""
			if tg != nil {
				got = tg.Service + " " + tg.URL
			} else if why != "" {
				got = "no target: " + why
			}
			if !strings.HasPrefix(got, c.want) || (c.want == "") != (got == "") {
				t.Fatalf("drillTarget = %q, want %q", got, c.want)
			}
		})
	}
}

func TestDrillReportShowsTheRequests(t *testing.T) {
	injected := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	sum := loadgen.Summarize(injected.Add(-time.Second), injected.Add(10*time.Second), []loadgen.Result{
		{Sent: injected.Add(-time.Second), Took: time.Millisecond},
		{Sent: injected, Took: time.Second, Err: "context deadline exceeded"},
		{Sent: injected.Add(4 * time.Second), Took: time.Millisecond},
	})
	q := drillRequestsOf(api.DrillRequests{Service: "/dc/service/web", Target: "http://10.99.0.240:80/"}, sum)
	var out strings.Builder
	env := &Env{Out: &out, Location: time.UTC}
	if err := writeDrill(env, api.HADrillReport{Name: "d", Mode: api.DrillCrash, Hosts: []string{"esx-01"}, Injected: injected, Requests: &q, Passed: true}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Requests:          3 sent through web (http://10.99.0.240:80/), 1 failed",
		"Longest gap:       6.00 s (+4.00s to +10.00s)", "Last error:        context deadline exceeded"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func drillVM(path, uid, host, state, ip string) *api.Object {
	o := &api.Object{Meta: api.Meta{Kind: api.KindVirtualMachine, Path: path, UID: uid}}
	o.SetSpec(api.VMSpec{PowerState: api.PoweredOn, Host: host})
	o.SetStatus(api.VMStatus{PowerState: state, Host: host, IP: ip})
	return o
}

func TestClusterIPTarget(t *testing.T) {
	const cluster, h1, h2, h3 = "/dc/host/c", "/dc/host/c/esx-01", "/dc/host/c/esx-02", "/dc/host/c/esx-03"
	hosts := []*api.Object{drillHost(h1, api.HostConnected, "10.99.0.11:7946"), drillHost(h2, api.HostConnected, "10.99.0.12:7946"),
		drillHost(h3, api.HostNotResponding, "10.99.0.13:7946")}
	st := api.ServiceStatus{Subsets: []api.EndpointSubset{{Addresses: []api.EndpointAddress{
		{IP: "10.244.1.5", VM: "/dc/vm/web-1", Host: h1}, {IP: "10.244.2.5", VM: "/dc/vm/web-2", Host: h2}}}}}
	web := drillService("/dc/service/web", api.ServiceSpec{Cluster: cluster, Type: api.ServiceClusterIP, ClusterIP: "10.96.0.10",
		Ports: []api.ServicePort{{Protocol: "UDP", Port: 53}, {Port: 8080}}}, st)
	headless := drillService("/dc/service/web", api.ServiceSpec{Cluster: cluster, ClusterIP: "None", Ports: []api.ServicePort{{Port: 80}}}, st)
	web1 := drillVM("/dc/vm/web-1", "u-web-1", h1, api.PoweredOn, "10.244.1.5") // the drill's VM, on the failed host
	web2 := drillVM("/dc/vm/web-2", "u-web-2", h2, api.PoweredOn, "10.244.2.5") // an endpoint the drill leaves alone
	app := drillVM("/dc/vm/app", "u-app", h2, api.PoweredOn, "10.244.2.6")      // no endpoint: preferred
	cases := []struct {
		name, want string
		svcs       []*api.Object
		vms        []*api.Object
	}{
		{"a VM that is no endpoint, on a host the drill leaves alone, to the clusterIP's TCP port",
			"/dc/service/web http://10.96.0.10:8080/ from /dc/vm/app (u-app) on esx-02", []*api.Object{web}, []*api.Object{web1, web2, app}},
		{"else an endpoint the drill leaves alone", "/dc/service/web http://10.96.0.10:8080/ from /dc/vm/web-2 (u-web-2) on esx-02",
			[]*api.Object{web}, []*api.Object{web1, web2}},
		{"never the drill's own VMs, nor VMs of a host not connected, nor VMs off", "no target: no VM runs on a connected host other than esx-01",
			[]*api.Object{web}, []*api.Object{web1, drillVM("/dc/vm/x", "u-x", h3, api.PoweredOn, "10.244.3.5"),
				drillVM("/dc/vm/y", "u-y", h2, api.PoweredOff, "")}},
		{"a headless Service has no clusterIP to stream to: said so", "no target: /dc/service/web select the drill's VMs but have no clusterIP",
			[]*api.Object{headless}, []*api.Object{app}},
		{"no Service selects the drill's VMs: nothing to say", "", nil, []*api.Object{app}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg, why := clusterIPTarget(cluster, c.svcs, hosts, c.vms, []string{"/dc/vm/web-1"}, []string{"esx-01"})
			got := ""
			if tg != nil {
				got = fmt.Sprintf("%s %s from %s (%s) on %s", tg.Service, tg.URL, tg.VM, tg.uid, tg.Host)
			} else if why != "" {
				got = "no target: " + why
			}
			if !strings.HasPrefix(got, c.want) || (c.want == "") != (got == "") {
				t.Fatalf("clusterIPTarget = %q, want %q", got, c.want)
			}
		})
	}
}

// Both streams show in the table, each with its own gap, and the reason a
// stream was not sent.
func TestDrillReportShowsBothStreams(t *testing.T) {
	injected := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	sum := loadgen.Summarize(injected.Add(-time.Second), injected.Add(10*time.Second), []loadgen.Result{
		{Sent: injected.Add(-time.Second), Took: time.Millisecond},
		{Sent: injected, Took: time.Second, Err: "connection refused"},
		{Sent: injected.Add(2 * time.Second), Took: time.Millisecond},
	})
	q := drillRequestsOf(api.DrillRequests{Service: "/dc/service/web", Target: "http://10.96.0.10:80/", From: "VM app on esx-02",
		FromVM: "/dc/vm/app", FromHost: "esx-02"}, sum)
	rep := api.HADrillReport{Name: "d", Mode: api.DrillCrash, Hosts: []string{"esx-01"}, Injected: injected, ClusterIPRequests: &q, Passed: true,
		RequestsNotSent: []string{"from outside: /dc/service/web select the drill's VMs but have neither a LoadBalancer address nor a NodePort"}}
	var out strings.Builder
	if err := writeDrill(&Env{Out: &out, Location: time.UTC}, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Via ClusterIP:     3 sent through web (http://10.96.0.10:80/) from VM app on esx-02, 1 failed",
		"ClusterIP gap:     8.00 s (+2.00s to +10.00s)", "ClusterIP error:   connection refused",
		"No requests:       from outside: /dc/service/web select"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if svg := drill.SVG(rep); !strings.Contains(svg, "ClusterIP from app") || !strings.Contains(svg, "3 sent to http://10.96.0.10:80/ from VM app on esx-02, 1 failed") {
		t.Errorf("the timeline lacks the ClusterIP stream:\n%s", svg)
	}
}
