package controllers

import (
	"context"
	"io"
	"log"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

type lbBed struct {
	t      *testing.T
	inv    *inventory.Inventory
	runner *Runner
}

func newLBBed(t *testing.T, spec api.ClusterSpec, hosts ...string) *lbBed {
	clock := &fakeClock{now: epoch}
	inv, err := inventory.Open(t.TempDir(), inventory.Options{Now: clock.Now, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inv.Close() })
	b := &lbBed{t: t, inv: inv}
	b.runner = New(inv, Options{Clock: clock, Logger: log.New(io.Discard, "", 0)}, NewEndpoints(inv), NewLoadBalancer(inv))
	for _, o := range []*api.Object{api.New(api.KindDatacenter, dc, nil), api.New(api.KindCluster, cluster, spec)} {
		b.must(inv.Create("admin", o))
	}
	for _, h := range hosts {
		_, err := inv.Join(api.JoinRequest{Name: h, Cluster: cluster, Address: "127.0.0.1:1", Runtime: "sim", CPUCapacity: 8000, MemCapacity: 16384})
		b.must(nil, err)
		inv.SetConnection(cluster+"/"+h, true)
	}
	b.drain()
	return b
}

func (b *lbBed) must(_ any, err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b *lbBed) drain() { b.runner.Drain(context.Background()) }

// holder is the host answering for the Service's address (its base name).
func (b *lbBed) holder(svc string) (ip, host string) {
	b.t.Helper()
	o, err := b.inv.Get(svc)
	if err != nil {
		b.t.Fatal(err)
	}
	var st api.ServiceStatus
	_ = o.DecodeStatus(&st)
	if len(st.LoadBalancer.Ingress) == 0 {
		return "", ""
	}
	in := st.LoadBalancer.Ingress[0]
	if in.Host == "" {
		return in.IP, ""
	}
	return in.IP, api.Base(in.Host)
}

func (b *lbBed) ingressHolder() string {
	o, _ := b.inv.Get(cluster)
	var st api.ClusterStatus
	_ = o.DecodeStatus(&st)
	if st.Ingress.Host == "" {
		return ""
	}
	return api.Base(st.Ingress.Host)
}

func (b *lbBed) events(target, typ string) []string {
	var out []string
	for _, o := range b.inv.List(store.Query{Kind: api.KindEvent}).Items {
		var e api.EventSpec
		_ = o.DecodeSpec(&e)
		if e.Target == target && e.Type == typ {
			out = append(out, e.User+": "+e.Message)
		}
	}
	return out
}

// The address of a LoadBalancer Service is answered by one healthy host,
// spread with the cluster's Ingress address; it stays while its host is
// healthy, moves when the host stops responding or enters maintenance,
// each move leaving an event naming the controller and both hosts; the
// endpoints controller's writes keep it.
func TestLoadBalancerHolderMoves(t *testing.T) {
	b := newLBBed(t, api.ClusterSpec{LoadBalancerAddresses: []string{"10.99.0.200-10.99.0.239"}}, "esx-01", "esx-02", "esx-03")
	if h := b.ingressHolder(); h != "esx-01" {
		t.Fatalf("Ingress address held by %q: want esx-01", h)
	}
	const web = dc + "/service/web"
	b.must(b.inv.Create("admin", api.New(api.KindService, web, api.ServiceSpec{Type: api.ServiceLoadBalancer,
		Selector: map[string]string{"app": "web"}, Ports: []api.ServicePort{{Port: 80}}})))
	b.drain()
	ip, h := b.holder(web)
	if ip != "10.99.0.201" || h != "esx-02" {
		t.Fatalf("web: %s held by %q, want 10.99.0.201 on esx-02 (esx-01 holds the Ingress address)", ip, h)
	}

	// A change of an unrelated host leaves the holder where it is.
	b.inv.SetConnection(cluster+"/esx-03", false)
	b.drain()
	if _, h := b.holder(web); h != "esx-02" {
		t.Fatalf("after esx-03 failed: held by %s, want esx-02 still (sticky)", h)
	}
	b.inv.SetConnection(cluster+"/esx-03", true)

	// The holder fails: the address moves to the least loaded healthy host.
	b.inv.SetConnection(cluster+"/esx-02", false)
	b.drain()
	if _, h := b.holder(web); h != "esx-03" {
		t.Fatalf("after esx-02 failed: held by %s, want esx-03", h)
	}
	ev := b.events(web, "LoadBalancerHolderChangedEvent")
	if len(ev) != 2 || !strings.HasPrefix(ev[1], LoadBalancerUser) || !strings.Contains(ev[1], "answered by esx-03 instead of esx-02 (not responding") {
		t.Errorf("events %q: want the move from esx-02 to esx-03 by %s", ev, LoadBalancerUser)
	}
	// esx-02 comes back: nothing moves back.
	b.inv.SetConnection(cluster+"/esx-02", true)
	b.drain()
	if _, h := b.holder(web); h != "esx-03" {
		t.Fatalf("after esx-02 came back: held by %s, want esx-03 (sticky)", h)
	}

	// The holder enters maintenance mode.
	o, _ := b.inv.Get(cluster + "/esx-03")
	o.SetSpec(api.HostSpec{Maintenance: true})
	b.must(b.inv.Change("admin", o))
	b.drain()
	if _, h := b.holder(web); h != "esx-02" {
		t.Fatalf("after esx-03 entered maintenance: held by %s, want esx-02", h)
	}
	ev = b.events(web, "LoadBalancerHolderChangedEvent")
	if !strings.Contains(ev[len(ev)-1], "instead of esx-03 (entering maintenance mode)") {
		t.Errorf("last event %q: want the move off esx-03 for maintenance", ev[len(ev)-1])
	}

	// The endpoints controller's writes keep the holder (it owns the rest
	// of the status): a VM joining the Service does not reset it.
	vm := api.New(api.KindVirtualMachine, dc+"/vm/web-1", api.VMSpec{Pool: root, NumCPU: 1, MemoryMB: 64, PowerState: api.PoweredOn,
		Containers: []api.Container{{Name: "main", Image: "httpd"}}})
	vm.Labels = map[string]string{"app": "web"}
	b.must(b.inv.Create("admin", vm))
	vm, _ = b.inv.Get(dc + "/vm/web-1")
	var vs api.VMSpec
	_ = vm.DecodeSpec(&vs)
	vm.SetStatus(api.VMStatus{PowerState: api.PoweredOn, Host: vs.Host, IP: "10.244.1.5", Ready: true})
	b.must(b.inv.SetStatus("host", vm))
	b.drain()
	o, _ = b.inv.Get(web)
	var st api.ServiceStatus
	_ = o.DecodeStatus(&st)
	if st.Total != 1 || len(st.LoadBalancer.Ingress) != 1 || api.Base(st.LoadBalancer.Ingress[0].Host) != "esx-02" {
		t.Errorf("after the endpoints changed: %+v, want 1 endpoint and the address still on esx-02", st)
	}

	// No healthy host: nobody answers.
	for _, h := range []string{"esx-01", "esx-02"} {
		b.inv.SetConnection(cluster+"/"+h, false)
	}
	b.drain()
	if _, h := b.holder(web); h != "" {
		t.Errorf("with no healthy host: held by %s, want nobody", h)
	}
}

// A LoadBalancer Service created before the cluster had addresses gets
// one, and a host, once the admin gives some.
func TestLoadBalancerPendingGetsAddress(t *testing.T) {
	b := newLBBed(t, api.ClusterSpec{}, "esx-01")
	const web = dc + "/service/web"
	b.must(b.inv.Create("admin", api.New(api.KindService, web, api.ServiceSpec{Type: api.ServiceLoadBalancer, Ports: []api.ServicePort{{Port: 80}}})))
	b.drain()
	if ip, _ := b.holder(web); ip != "" {
		t.Fatalf("got %s with no addresses", ip)
	}
	o, _ := b.inv.Get(cluster)
	var cs api.ClusterSpec
	_ = o.DecodeSpec(&cs)
	cs.LoadBalancerAddresses = []string{"10.99.0.200-10.99.0.201"}
	o.SetSpec(cs)
	b.must(b.inv.Change("admin", o))
	b.drain()
	if ip, h := b.holder(web); ip != "10.99.0.201" || h != "esx-01" {
		t.Errorf("after addresses were given: %s on %q, want 10.99.0.201 on esx-01", ip, h)
	}
}

// A Service sharing the cluster's Ingress address (TCP or UDP through it)
// is answered by the Ingress address's host, and follows it when it
// moves; its own events say so.
func TestIngressSharersFollowIngressHolder(t *testing.T) {
	b := newLBBed(t, api.ClusterSpec{LoadBalancerAddresses: []string{"10.99.0.200-10.99.0.239"}}, "esx-01", "esx-02", "esx-03")
	const dns, web = dc + "/service/dns", dc + "/service/web"
	b.must(b.inv.Create("admin", api.New(api.KindService, dns, api.ServiceSpec{Type: api.ServiceLoadBalancer, LoadBalancerIP: "10.99.0.200",
		Selector: map[string]string{"app": "dns"}, Ports: []api.ServicePort{{Port: 53, Protocol: "UDP"}}})))
	b.must(b.inv.Create("admin", api.New(api.KindService, web, api.ServiceSpec{Type: api.ServiceLoadBalancer,
		Selector: map[string]string{"app": "web"}, Ports: []api.ServicePort{{Port: 80}}})))
	b.drain()
	if ip, h := b.holder(dns); ip != "10.99.0.200" || h != "esx-01" || b.ingressHolder() != "esx-01" {
		t.Fatalf("dns: %s on %q, Ingress on %q: want 10.99.0.200 on esx-01 with the Ingress", ip, h, b.ingressHolder())
	}
	// The sharer is not an address of its own: web still goes to the
	// least loaded host, not the Ingress's.
	if _, h := b.holder(web); h != "esx-02" {
		t.Errorf("web held by %s, want esx-02 (esx-01 has the one shared address)", h)
	}

	b.inv.SetConnection(cluster+"/esx-01", false)
	b.drain()
	ing := b.ingressHolder()
	if ing == "esx-01" || ing == "" {
		t.Fatalf("after esx-01 failed the Ingress address is on %q", ing)
	}
	if _, h := b.holder(dns); h != ing {
		t.Errorf("after esx-01 failed: dns on %q, the Ingress address on %q: want the same host", h, ing)
	}
	ev := b.events(dns, "LoadBalancerHolderChangedEvent")
	if len(ev) == 0 || !strings.Contains(ev[len(ev)-1], "answered by "+ing+" instead of esx-01, with the Ingress") {
		t.Errorf("dns events %q: want its move with the Ingress", ev)
	}

	// The endpoints controller's writes keep the shared address and holder.
	vm := api.New(api.KindVirtualMachine, dc+"/vm/dns-1", api.VMSpec{Pool: root, NumCPU: 1, MemoryMB: 64, PowerState: api.PoweredOn,
		Containers: []api.Container{{Name: "main", Image: "coredns"}}})
	vm.Labels = map[string]string{"app": "dns"}
	b.must(b.inv.Create("admin", vm))
	vm, _ = b.inv.Get(dc + "/vm/dns-1")
	var vs api.VMSpec
	_ = vm.DecodeSpec(&vs)
	vm.SetStatus(api.VMStatus{PowerState: api.PoweredOn, Host: vs.Host, IP: "10.244.1.5", Ready: true})
	b.must(b.inv.SetStatus("host", vm))
	b.drain()
	o, _ := b.inv.Get(dns)
	var st api.ServiceStatus
	_ = o.DecodeStatus(&st)
	if st.Total != 1 || len(st.LoadBalancer.Ingress) != 1 || !st.LoadBalancer.Ingress[0].Shared || api.Base(st.LoadBalancer.Ingress[0].Host) != ing {
		t.Errorf("after the endpoints changed: %+v, want 1 endpoint, still shared and on %s", st, ing)
	}

	// No healthy host left: the sharer, like the Ingress, has none.
	for _, h := range []string{"esx-02", "esx-03"} {
		b.inv.SetConnection(cluster+"/"+h, false)
	}
	b.drain()
	if _, h := b.holder(dns); h != "" || b.ingressHolder() != "" {
		t.Errorf("with no healthy host: dns on %q, Ingress on %q, want nobody", h, b.ingressHolder())
	}
}
