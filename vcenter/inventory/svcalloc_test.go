package inventory

import (
	"errors"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/store"
)

func openSvcInventory(t testing.TB, c1 api.ClusterSpec) *Inventory {
	t.Helper()
	inv, err := Open(t.TempDir(), Options{Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inv.Close() })
	for _, o := range []*api.Object{api.New(api.KindDatacenter, "/dc1", nil), api.New(api.KindCluster, "/dc1/host/c1", c1)} {
		if _, err := inv.Create("admin", o); err != nil {
			t.Fatal(err)
		}
	}
	return inv
}

func clusterSpec(t testing.TB, inv *Inventory, p string) (api.ClusterSpec, api.ClusterStatus) {
	t.Helper()
	o, err := inv.Get(p)
	if err != nil {
		t.Fatal(err)
	}
	var s api.ClusterSpec
	var st api.ClusterStatus
	_ = o.DecodeSpec(&s)
	_ = o.DecodeStatus(&st)
	return s, st
}

func svc(t testing.TB, inv *Inventory, name string, s api.ServiceSpec) (api.ServiceSpec, api.ServiceStatus, error) {
	t.Helper()
	o, err := inv.Create("admin", api.New(api.KindService, "/dc1/service/"+name, s))
	if err != nil {
		return api.ServiceSpec{}, api.ServiceStatus{}, err
	}
	var spec api.ServiceSpec
	var st api.ServiceStatus
	_ = o.DecodeSpec(&spec)
	_ = o.DecodeStatus(&st)
	return spec, st, nil
}

func mustSvc(t testing.TB, inv *Inventory, name string, s api.ServiceSpec) (api.ServiceSpec, api.ServiceStatus) {
	t.Helper()
	spec, st, err := svc(t, inv, name, s)
	if err != nil {
		t.Fatalf("create Service %s: %v", name, err)
	}
	return spec, st
}

func wantErr(t *testing.T, err error, sentinel error, parts ...string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("%v: want %v", err, sentinel)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%v: want it to say %q", err, p)
		}
	}
}

var port80 = []api.ServicePort{{Port: 80}}

// The first cluster of a fresh vcenter gets Kubernetes' service network;
// a second one a service CIDR of its own; overlaps are refused naming the
// other cluster's block.
func TestClusterServiceNetworkDefaults(t *testing.T) {
	inv := openSvcInventory(t, api.ClusterSpec{})
	s, _ := clusterSpec(t, inv, "/dc1/host/c1")
	if s.ServiceCIDR != "10.96.0.0/16" || s.NodePortRange != "30000-32767" || s.ClusterDomain != "cluster.local" {
		t.Fatalf("defaults %q %q %q: want 10.96.0.0/16, 30000-32767, cluster.local", s.ServiceCIDR, s.NodePortRange, s.ClusterDomain)
	}
	if _, err := inv.Create("admin", api.New(api.KindCluster, "/dc1/host/c2", nil)); err != nil {
		t.Fatal(err)
	}
	s2, _ := clusterSpec(t, inv, "/dc1/host/c2")
	if s2.ServiceCIDR != "10.97.0.0/16" {
		t.Errorf("second cluster's service CIDR %s: want 10.97.0.0/16", s2.ServiceCIDR)
	}
	for _, c := range []struct {
		spec  api.ClusterSpec
		err   error
		parts []string
	}{
		{api.ClusterSpec{ServiceCIDR: "10.96.128.0/17"}, api.ErrConflict, []string{"spec.serviceCIDR", "/dc1/host/c1"}},
		{api.ClusterSpec{ServiceCIDR: "10.200.0.0/16", LoadBalancerAddresses: []string{"10.96.0.10-10.96.0.20"}}, api.ErrConflict, []string{"spec.loadBalancerAddresses", "serviceCIDR", "/dc1/host/c1"}},
		{api.ClusterSpec{PodCIDR: "10.200.0.0/16", ServiceCIDR: "10.200.128.0/17"}, api.ErrInvalid, []string{"spec.serviceCIDR", "own podCIDR"}},
		{api.ClusterSpec{ServiceCIDR: "banana"}, api.ErrInvalid, []string{"spec.serviceCIDR"}},
		{api.ClusterSpec{NodePortRange: "32767-30000"}, api.ErrInvalid, []string{"spec.nodePortRange"}},
		{api.ClusterSpec{NodePortRange: "0-100"}, api.ErrInvalid, []string{"spec.nodePortRange"}},
		{api.ClusterSpec{LoadBalancerAddresses: []string{"10.99.0.9-10.99.0.1"}}, api.ErrInvalid, []string{"spec.loadBalancerAddresses[0]"}},
		{api.ClusterSpec{LoadBalancerAddresses: []string{"fd00::/120"}}, api.ErrInvalid, []string{"IPv4"}},
		{api.ClusterSpec{LoadBalancerAddresses: []string{"10.99.0.0/28", "10.99.0.5-10.99.0.6"}}, api.ErrInvalid, []string{"spec.loadBalancerAddresses[1]", "overlaps"}},
		{api.ClusterSpec{ClusterDomain: "Bad_Domain"}, api.ErrInvalid, []string{"spec.clusterDomain"}},
	} {
		_, err := inv.Create("admin", api.New(api.KindCluster, "/dc1/host/bad", c.spec))
		if err == nil {
			t.Errorf("%+v: accepted", c.spec)
			continue
		}
		if !errors.Is(err, c.err) {
			t.Errorf("%+v: %v, want %v", c.spec, err, c.err)
		}
		for _, p := range c.parts {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("%+v: %v, want it to say %q", c.spec, err, p)
			}
		}
	}
	// The admin may open ports below 30000, such as the seed's 8080.
	if _, err := inv.Create("admin", api.New(api.KindCluster, "/dc1/host/c3", api.ClusterSpec{NodePortRange: "8000-8100"})); err != nil {
		t.Errorf("node port range 8000-8100: %v", err)
	}
}

// Allocation from the cluster's ranges: defaults, explicit values,
// conflicts naming the owner, out-of-range values, the LoadBalancer
// address in status, release on delete.
func TestServiceAllocation(t *testing.T) {
	inv := openSvcInventory(t, api.ClusterSpec{NodePortRange: "30000-30002", LoadBalancerAddresses: []string{"10.99.0.200-10.99.0.202"}})
	_, cst := clusterSpec(t, inv, "/dc1/host/c1")
	if cst.Ingress.IP != "10.99.0.200" {
		t.Fatalf("cluster Ingress address %q: want the first, 10.99.0.200", cst.Ingress.IP)
	}
	a, _ := mustSvc(t, inv, "a", api.ServiceSpec{Ports: port80})
	if a.ClusterIP != "10.96.0.2" || a.Cluster != "/dc1/host/c1" {
		t.Errorf("first Service: cluster IP %s in %s, want 10.96.0.2 (after the network and first addresses) in /dc1/host/c1", a.ClusterIP, a.Cluster)
	}
	_, _, err := svc(t, inv, "b", api.ServiceSpec{Ports: port80, ClusterIP: a.ClusterIP})
	wantErr(t, err, api.ErrConflict, "spec.clusterIP 10.96.0.2", "/dc1/service/a")
	_, _, err = svc(t, inv, "b", api.ServiceSpec{Ports: port80, ClusterIP: "10.50.0.1"})
	wantErr(t, err, api.ErrInvalid, "spec.clusterIP 10.50.0.1", "outside", "10.96.0.0/16")
	_, _, err = svc(t, inv, "b", api.ServiceSpec{Ports: port80, ClusterIP: "10.96.0.1"})
	wantErr(t, err, api.ErrInvalid, "outside")
	b, _ := mustSvc(t, inv, "b", api.ServiceSpec{Ports: port80, ClusterIP: "10.96.5.5"})
	if b.ClusterIP != "10.96.5.5" {
		t.Errorf("explicit cluster IP: got %s", b.ClusterIP)
	}
	h, _ := mustSvc(t, inv, "headless", api.ServiceSpec{ClusterIP: api.ClusterIPNone})
	x, _ := mustSvc(t, inv, "alias", api.ServiceSpec{Type: api.ServiceExternalName, ExternalName: "db.example.com"})
	if h.ClusterIP != api.ClusterIPNone || x.ClusterIP != "" {
		t.Errorf("headless %q, ExternalName %q: want None and none", h.ClusterIP, x.ClusterIP)
	}

	np, _ := mustSvc(t, inv, "np", api.ServiceSpec{Type: api.ServiceNodePort, Ports: []api.ServicePort{{Name: "http", Port: 80, NodePort: 30001}, {Name: "dns", Port: 53, Protocol: "UDP"}}})
	if np.Ports[0].NodePort != 30001 || np.Ports[1].NodePort != 30000 {
		t.Errorf("node ports %d, %d: want the asked 30001 and the first free UDP one 30000", np.Ports[0].NodePort, np.Ports[1].NodePort)
	}
	_, _, err = svc(t, inv, "np2", api.ServiceSpec{Type: api.ServiceNodePort, Ports: []api.ServicePort{{Port: 80, NodePort: 30001}}})
	wantErr(t, err, api.ErrConflict, "spec.ports[0].nodePort 30001/TCP", "/dc1/service/np", "port http")
	_, _, err = svc(t, inv, "np2", api.ServiceSpec{Type: api.ServiceNodePort, Ports: []api.ServicePort{{Port: 80, NodePort: 8080}}})
	wantErr(t, err, api.ErrInvalid, "spec.ports[0].nodePort 8080", "outside", "30000-30002")

	lbs, lst := mustSvc(t, inv, "lb", api.ServiceSpec{Type: api.ServiceLoadBalancer, ExternalTrafficPolicy: "Local", Ports: port80})
	if len(lst.LoadBalancer.Ingress) != 1 || lst.LoadBalancer.Ingress[0].IP != "10.99.0.201" {
		t.Errorf("LoadBalancer address %+v: want 10.99.0.201 (200 is the cluster's Ingress)", lst.LoadBalancer)
	}
	if lbs.HealthCheckNodePort == 0 || lbs.Ports[0].NodePort == 0 || lbs.HealthCheckNodePort == lbs.Ports[0].NodePort {
		t.Errorf("LoadBalancer Local: node port %d, health check %d: want two distinct ones", lbs.Ports[0].NodePort, lbs.HealthCheckNodePort)
	}
	// TCP 30000-30002 are all taken now (30001 np, two by lb).
	_, _, err = svc(t, inv, "full", api.ServiceSpec{Type: api.ServiceNodePort, Ports: port80})
	wantErr(t, err, api.ErrInsufficientResources, "no free TCP port")
	_, _, err = svc(t, inv, "lb2", api.ServiceSpec{Type: api.ServiceLoadBalancer, LoadBalancerIP: "10.99.0.250", Ports: []api.ServicePort{{Port: 80, Protocol: "UDP"}}})
	wantErr(t, err, api.ErrInvalid, "spec.loadBalancerIP 10.99.0.250", "10.99.0.200-10.99.0.202")

	// Deleting frees everything: the ports and address go to the next.
	if err := inv.Remove("admin", "/dc1/service/lb", RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	again, ast := mustSvc(t, inv, "lb3", api.ServiceSpec{Type: api.ServiceLoadBalancer, ExternalTrafficPolicy: "Local", LoadBalancerIP: "10.99.0.201", Ports: []api.ServicePort{{Port: 80, NodePort: lbs.Ports[0].NodePort}}})
	if ast.LoadBalancer.Ingress[0].IP != "10.99.0.201" || again.HealthCheckNodePort == 0 {
		t.Errorf("after delete: %+v %d, want 10.99.0.201 and a health check port", ast.LoadBalancer, again.HealthCheckNodePort)
	}

	// A range change that would leave a held value out is refused, naming it.
	o, _ := inv.Get("/dc1/host/c1")
	var cs api.ClusterSpec
	_ = o.DecodeSpec(&cs)
	cs.NodePortRange = "30001-30010"
	o.SetSpec(cs)
	_, err = inv.Change("admin", o)
	wantErr(t, err, api.ErrConflict, "spec.nodePortRange 30001-30010", "node port 30000")
	o, _ = inv.Get("/dc1/host/c1")
	cs.NodePortRange, cs.LoadBalancerAddresses = "", []string{"10.99.0.210-10.99.0.215"}
	o.SetSpec(cs)
	_, err = inv.Change("admin", o)
	wantErr(t, err, api.ErrConflict, "spec.loadBalancerAddresses", "10.99.0.201", "/dc1/service/lb3")
}

// No load balancer addresses: the Service is accepted without one and an
// event says why; once the admin gives addresses it gets one.
func TestLoadBalancerPending(t *testing.T) {
	inv := openSvcInventory(t, api.ClusterSpec{})
	_, st := mustSvc(t, inv, "web", api.ServiceSpec{Type: api.ServiceLoadBalancer, Ports: port80})
	if len(st.LoadBalancer.Ingress) != 0 {
		t.Fatalf("got %+v with no addresses configured", st.LoadBalancer)
	}
	var found bool
	for _, e := range inv.List(store.Query{Kind: api.KindEvent}).Items {
		var ev api.EventSpec
		_ = e.DecodeSpec(&ev)
		found = found || ev.Type == "LoadBalancerPendingEvent" && strings.Contains(ev.Message, "no load balancer addresses")
	}
	if !found {
		t.Error("no LoadBalancerPendingEvent saying the cluster has no load balancer addresses")
	}
	o, _ := inv.Get("/dc1/host/c1")
	var cs api.ClusterSpec
	_ = o.DecodeSpec(&cs)
	cs.LoadBalancerAddresses = []string{"192.168.7.0/29"}
	o.SetSpec(cs)
	if _, err := inv.Change("admin", o); err != nil {
		t.Fatal(err)
	}
	_, cst := clusterSpec(t, inv, "/dc1/host/c1")
	if cst.Ingress.IP != "192.168.7.1" {
		t.Errorf("Ingress address %q: want 192.168.7.1 (a /29 leaves out its network address)", cst.Ingress.IP)
	}
	if got, err := inv.AssignLoadBalancerAddress("controller:loadbalancer", "/dc1/service/web"); err != nil || !got {
		t.Fatalf("assign: %v %v", got, err)
	}
	w, _ := inv.Get("/dc1/service/web")
	_ = w.DecodeStatus(&st)
	if len(st.LoadBalancer.Ingress) != 1 || st.LoadBalancer.Ingress[0].IP != "192.168.7.2" {
		t.Errorf("after addresses were given: %+v, want 192.168.7.2", st.LoadBalancer)
	}
}

// Type changes allocate what the new type needs and release the rest;
// a re-applied spec without the allocated values keeps them.
func TestServiceTypeChange(t *testing.T) {
	inv := openSvcInventory(t, api.ClusterSpec{NodePortRange: "30000-30000", LoadBalancerAddresses: []string{"10.99.0.200-10.99.0.201"}})
	change := func(name string, s api.ServiceSpec) (api.ServiceSpec, api.ServiceStatus, error) {
		o, _ := inv.Get("/dc1/service/" + name)
		o.SetSpec(s)
		out, err := inv.Change("admin", o)
		if err != nil {
			return api.ServiceSpec{}, api.ServiceStatus{}, err
		}
		var spec api.ServiceSpec
		var st api.ServiceStatus
		_ = out.DecodeSpec(&spec)
		_ = out.DecodeStatus(&st)
		return spec, st, nil
	}
	c, _ := mustSvc(t, inv, "web", api.ServiceSpec{Ports: port80})
	n, _, err := change("web", api.ServiceSpec{Type: api.ServiceNodePort, Ports: port80})
	if err != nil || n.ClusterIP != c.ClusterIP || n.Ports[0].NodePort != 30000 {
		t.Fatalf("ClusterIP -> NodePort: %+v %v, want cluster IP %s kept and node port 30000", n, err, c.ClusterIP)
	}
	l, lst, err := change("web", api.ServiceSpec{Type: api.ServiceLoadBalancer, Ports: port80})
	if err != nil || l.Ports[0].NodePort != 30000 || len(lst.LoadBalancer.Ingress) != 1 || lst.LoadBalancer.Ingress[0].IP != "10.99.0.201" {
		t.Fatalf("NodePort -> LoadBalancer: %+v %+v %v", l, lst, err)
	}
	// The only node port is held: another NodePort Service cannot have it.
	mustSvc(t, inv, "other", api.ServiceSpec{Ports: port80})
	if _, _, err := change("other", api.ServiceSpec{Type: api.ServiceNodePort, Ports: port80}); !errors.Is(err, api.ErrInsufficientResources) {
		t.Fatalf("second NodePort with the range full: %v", err)
	}
	// Back to ClusterIP releases node port and address.
	b, bst, err := change("web", api.ServiceSpec{Ports: port80})
	if err != nil || b.Ports[0].NodePort != 0 || len(bst.LoadBalancer.Ingress) != 0 || b.ClusterIP != c.ClusterIP {
		t.Fatalf("LoadBalancer -> ClusterIP: %+v %+v %v", b, bst, err)
	}
	if o, _, err := change("other", api.ServiceSpec{Type: api.ServiceNodePort, Ports: port80}); err != nil || o.Ports[0].NodePort != 30000 {
		t.Fatalf("the freed node port: %+v %v", o, err)
	}
	if _, _, err := change("web", api.ServiceSpec{Ports: port80, ClusterIP: "10.96.9.9"}); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("moving the cluster IP: %v, want refused", err)
	}
}

// N concurrent creates never get the same address or port.
func TestServiceAllocationConcurrent(t *testing.T) {
	inv := openSvcInventory(t, api.ClusterSpec{LoadBalancerAddresses: []string{"10.99.0.0/24"}})
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := inv.Create("admin", api.New(api.KindService, fmt.Sprintf("/dc1/service/s%d", i), api.ServiceSpec{Type: api.ServiceLoadBalancer, Ports: port80}))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]string{}
	for _, o := range inv.List(store.Query{Kind: api.KindService}).Items {
		var s api.ServiceSpec
		var st api.ServiceStatus
		_ = o.DecodeSpec(&s)
		_ = o.DecodeStatus(&st)
		keys := []string{"ip " + s.ClusterIP, fmt.Sprintf("port %d", s.Ports[0].NodePort)}
		if len(st.LoadBalancer.Ingress) == 1 {
			keys = append(keys, "lb "+st.LoadBalancer.Ingress[0].IP)
		} else {
			t.Errorf("%s has no load balancer address", o.Path)
		}
		for _, k := range keys {
			if other, dup := seen[k]; dup {
				t.Errorf("%s of %s is also %s's", k, o.Path, other)
			}
			seen[k] = o.Path
		}
	}
}

// BenchmarkServiceCreate measures admitting a NodePort Service (cluster
// IP and node port allocated) into a cluster that already holds 10,000
// Services, 2,000 of them NodePort, against an empty one: allocation looks up the index, it
// does not read the other Services. Each created Service is removed
// again so the cluster stays at 10,000.
func BenchmarkServiceCreate(b *testing.B) {
	for _, n := range []int{0, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) { benchServiceCreate(b, n) })
	}
}

func benchServiceCreate(b *testing.B, n int) {
	inv := openSvcInventory(b, api.ClusterSpec{})
	for i := range n {
		s := api.ServiceSpec{Ports: port80}
		if i%5 == 0 {
			s.Type = api.ServiceNodePort
		}
		if _, err := inv.Create("admin", api.New(api.KindService, fmt.Sprintf("/dc1/service/s%d", i), s)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		p := fmt.Sprintf("/dc1/service/new%d", i)
		if _, err := inv.Create("admin", api.New(api.KindService, p, api.ServiceSpec{Type: api.ServiceNodePort, Ports: port80})); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := inv.Remove("admin", p, RemoveOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkServiceAdmit measures the allocation alone (cluster, cluster
// IP, node port, no commit: the transaction is dropped) in a cluster
// holding 0 or 10,000 Services, 2,000 of them NodePort.
func BenchmarkServiceAdmit(b *testing.B) {
	for _, n := range []int{0, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			inv := openSvcInventory(b, api.ClusterSpec{})
			for i := range n {
				s := api.ServiceSpec{Ports: port80}
				if i%5 == 0 {
					s.Type = api.ServiceNodePort
				}
				if _, err := inv.Create("admin", api.New(api.KindService, fmt.Sprintf("/dc1/service/s%d", i), s)); err != nil {
					b.Fatal(err)
				}
			}
			ref, _ := api.ParsePath("/dc1/service/new")
			drop := errors.New("dropped")
			b.ResetTimer()
			for range b.N {
				o := api.New(api.KindService, "/dc1/service/new", api.ServiceSpec{Type: api.ServiceNodePort, Ports: port80, Selector: map[string]string{"app": "web"}})
				if _, _, err := validate(o); err != nil {
					b.Fatal(err)
				}
				err := inv.Update("admin", func(t *Txn) error {
					if err := admitService(t, ref, nil, o); err != nil {
						return err
					}
					return drop
				})
				if err != drop {
					b.Fatal(err)
				}
			}
		})
	}
}

// A cluster change that does not mention the service network (a DRS or
// HA change, a manifest without it) keeps the ranges the admin chose.
func TestClusterChangeKeepsServiceNetwork(t *testing.T) {
	inv := openSvcInventory(t, api.ClusterSpec{ServiceCIDR: "10.50.0.0/16", NodePortRange: "8000-8100", ClusterDomain: "corp.local"})
	o, _ := inv.Get("/dc1/host/c1")
	o.SetSpec(api.ClusterSpec{DRS: api.DRSConfig{Enabled: true, Mode: "manual"}})
	if _, err := inv.Change("admin", o); err != nil {
		t.Fatal(err)
	}
	s, _ := clusterSpec(t, inv, "/dc1/host/c1")
	if s.ServiceCIDR != "10.50.0.0/16" || s.NodePortRange != "8000-8100" || s.ClusterDomain != "corp.local" || s.DRS.Mode != "manual" {
		t.Errorf("after a DRS change: %+v", s)
	}
}

// Exhausted ranges: a cluster IP refusal names the range to widen; a
// LoadBalancer Service without a free address is accepted pending, with
// an event saying they are all taken.
func TestServiceRangesExhausted(t *testing.T) {
	inv := openSvcInventory(t, api.ClusterSpec{ServiceCIDR: "10.50.0.0/29", LoadBalancerAddresses: []string{"10.99.0.200-10.99.0.201"}})
	for i := range 5 { // .2 to .6: not the network, first or broadcast address
		mustSvc(t, inv, fmt.Sprintf("s%d", i), api.ServiceSpec{Ports: port80})
	}
	_, _, err := svc(t, inv, "s5", api.ServiceSpec{Ports: port80})
	wantErr(t, err, api.ErrInsufficientResources, "10.50.0.2-10.50.0.6", "spec.serviceCIDR")
	if err := inv.Remove("admin", "/dc1/service/s4", RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	_, st := mustSvc(t, inv, "lb1", api.ServiceSpec{Type: api.ServiceLoadBalancer, Ports: port80})
	if len(st.LoadBalancer.Ingress) != 1 || st.LoadBalancer.Ingress[0].IP != "10.99.0.201" {
		t.Fatalf("lb1: %+v, want 10.99.0.201", st.LoadBalancer)
	}
	if err := inv.Remove("admin", "/dc1/service/s3", RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	_, st = mustSvc(t, inv, "lb2", api.ServiceSpec{Type: api.ServiceLoadBalancer, Ports: port80})
	if len(st.LoadBalancer.Ingress) != 0 {
		t.Fatalf("lb2 got %+v with every address taken", st.LoadBalancer)
	}
	var found bool
	for _, e := range inv.List(store.Query{Kind: api.KindEvent}).Items {
		var ev api.EventSpec
		_ = e.DecodeSpec(&ev)
		found = found || ev.Target == "/dc1/service/lb2" && ev.Type == "LoadBalancerPendingEvent" && strings.Contains(ev.Message, "is taken")
	}
	if !found {
		t.Error("no LoadBalancerPendingEvent on lb2 saying every address is taken")
	}
}
