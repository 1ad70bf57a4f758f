package inventory

import (
	"testing"

	"github.com/podsphere/podsphere/api"
)

func setIngressHost(t *testing.T, inv *Inventory, host string) {
	t.Helper()
	err := inv.Update("controller:loadbalancer", func(tx *Txn) error {
		o, err := tx.Get("/dc1/host/c1")
		if err != nil {
			return err
		}
		var st api.ClusterStatus
		_ = o.DecodeStatus(&st)
		st.Ingress.Host = host
		o.SetStatus(st)
		_, err = tx.Update(o)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A LoadBalancer Service asking for the cluster's Ingress address shares
// it (TCP and UDP forwarding through the Ingress's address), each on its
// own ports.
func TestServiceSharesIngressAddress(t *testing.T) {
	inv := openSvcInventory(t, api.ClusterSpec{LoadBalancerAddresses: []string{"10.99.0.200-10.99.0.202"}})
	_, cst := clusterSpec(t, inv, "/dc1/host/c1")
	ing := cst.Ingress.IP
	if ing != "10.99.0.200" {
		t.Fatalf("cluster Ingress address %q: want 10.99.0.200", ing)
	}
	setIngressHost(t, inv, "/dc1/host/c1/esx-02")
	shared := func(ports ...api.ServicePort) api.ServiceSpec {
		return api.ServiceSpec{Type: api.ServiceLoadBalancer, LoadBalancerIP: ing, Ports: ports}
	}

	_, dst := mustSvc(t, inv, "dns", shared(api.ServicePort{Name: "dns", Port: 53, Protocol: "UDP"}, api.ServicePort{Name: "dns-tcp", Port: 53, Protocol: "TCP"}))
	if got := dst.LoadBalancer.Ingress; len(got) != 1 || got[0].IP != ing || got[0].Host != "/dc1/host/c1/esx-02" || !got[0].Shared {
		t.Errorf("status.loadBalancer.ingress %+v: want the Ingress address, answered by its holder esx-02, shared", got)
	}
	_, pst := mustSvc(t, inv, "pg", shared(api.ServicePort{Port: 5432}))
	if got := pst.LoadBalancer.Ingress; len(got) != 1 || got[0].IP != ing || !got[0].Shared {
		t.Errorf("a second sharer on another port: %+v, want the Ingress address too", got)
	}
	// Same port, other protocol is another port.
	mustSvc(t, inv, "pg-udp", shared(api.ServicePort{Port: 5432, Protocol: "UDP"}))

	for _, c := range []struct {
		name string
		port api.ServicePort
		want []string
	}{
		{"the Ingress's HTTP", api.ServicePort{Port: 80}, []string{"spec.ports[0] 80/TCP", "Ingress proxy's", "/dc1/host/c1"}},
		{"the Ingress's HTTPS", api.ServicePort{Port: 443}, []string{"spec.ports[0] 443/TCP", "Ingress proxy's"}},
		{"another sharer's", api.ServicePort{Port: 53, Protocol: "UDP"}, []string{"spec.ports[0] 53/UDP", ing, "/dc1/service/dns", "port dns (53/UDP)"}},
	} {
		_, _, err := svc(t, inv, "clash", shared(c.port))
		wantErr(t, err, api.ErrConflict, c.want...)
	}
	// 80/UDP is not the Ingress's.
	mustSvc(t, inv, "quic", shared(api.ServicePort{Port: 80, Protocol: "UDP"}))
	// Refused with nothing half-applied: the second port's clash keeps the first free.
	_, _, err := svc(t, inv, "half", shared(api.ServicePort{Name: "a", Port: 6000}, api.ServicePort{Name: "b", Port: 5432}))
	wantErr(t, err, api.ErrConflict, "spec.ports[1] 5432/TCP", "/dc1/service/pg")
	mustSvc(t, inv, "six", shared(api.ServicePort{Port: 6000}))

	// The Ingress address is not given out as a Service's own, and the
	// sharers hold no address of their own.
	_, own := mustSvc(t, inv, "own", api.ServiceSpec{Type: api.ServiceLoadBalancer, Ports: port80})
	if own.LoadBalancer.Ingress[0].IP != "10.99.0.201" || own.LoadBalancer.Ingress[0].Shared {
		t.Errorf("a Service without loadBalancerIP got %+v, want 10.99.0.201 of its own", own.LoadBalancer.Ingress)
	}
	addrs := inv.LoadBalancerAddresses("/dc1/host/c1")
	if len(addrs) != 2 || addrs[0] != (LoadBalancerAddress{ing, "/dc1/host/c1"}) || addrs[1].Holder != "/dc1/service/own" {
		t.Errorf("addresses given out: %+v: want the Ingress's (the cluster's) and own's", addrs)
	}
	if got := inv.IngressSharers("/dc1/host/c1"); len(got) != 5 || got[0] != "/dc1/service/dns" {
		t.Errorf("sharers %v: want dns, pg, pg-udp, quic, six", got)
	}

	// A sharer's port change re-checks; removing the sharer frees its ports.
	o, _ := inv.Get("/dc1/service/six")
	var s api.ServiceSpec
	_ = o.DecodeSpec(&s)
	s.Ports = []api.ServicePort{{Port: 53, Protocol: "TCP"}}
	o.SetSpec(s)
	_, err = inv.Change("admin", o)
	wantErr(t, err, api.ErrConflict, "spec.ports[0] 53/TCP", "/dc1/service/dns", "dns-tcp")
	if err := inv.Remove("admin", "/dc1/service/dns", RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSvc(t, inv, "dns2", shared(api.ServicePort{Port: 53, Protocol: "UDP"}))

	// Dropping spec.loadBalancerIP leaves the Ingress address for one of
	// the Service's own.
	o, _ = inv.Get("/dc1/service/six")
	_ = o.DecodeSpec(&s)
	s.LoadBalancerIP = ""
	o.SetSpec(s)
	out, err := inv.Change("admin", o)
	if err != nil {
		t.Fatal(err)
	}
	var st api.ServiceStatus
	_ = out.DecodeStatus(&st)
	if len(st.LoadBalancer.Ingress) != 1 || st.LoadBalancer.Ingress[0].IP != "10.99.0.202" || st.LoadBalancer.Ingress[0].Shared {
		t.Errorf("after dropping loadBalancerIP: %+v, want its own 10.99.0.202", st.LoadBalancer.Ingress)
	}
	if addrs := inv.LoadBalancerAddresses("/dc1/host/c1"); addrs[0].Holder != "/dc1/host/c1" {
		t.Errorf("the Ingress address is now %s's, want the cluster's still", addrs[0].Holder)
	}

	// The cluster cannot move its Ingress address from under its sharers.
	c, _ := inv.Get("/dc1/host/c1")
	var cs api.ClusterSpec
	_ = c.DecodeSpec(&cs)
	cs.LoadBalancerAddresses = []string{"10.99.0.201-10.99.0.210"}
	c.SetSpec(cs)
	_, err = inv.Change("admin", c)
	wantErr(t, err, api.ErrConflict, "spec.loadBalancerAddresses", "Ingress address 10.99.0.200", "Service /dc1/service/dns2 shares")
}
