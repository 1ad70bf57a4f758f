package controllers

import (
	"context"
	"io"
	"log"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/inventory"
)

// An Ingress reports its cluster's Ingress address and the host answering
// for it, and follows the address to another host when its holder fails.
func TestIngressStatusFollowsTheClustersAddress(t *testing.T) {
	clock := &fakeClock{now: epoch}
	inv, err := inventory.Open(t.TempDir(), inventory.Options{Now: clock.Now, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inv.Close() })
	r := New(inv, Options{Clock: clock, Logger: log.New(io.Discard, "", 0)}, NewLoadBalancer(inv), NewIngressStatus(inv))
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(inv.Create("admin", api.New(api.KindDatacenter, dc, nil)))
	must(inv.Create("admin", api.New(api.KindCluster, cluster, api.ClusterSpec{LoadBalancerAddresses: []string{"10.99.0.200-10.99.0.209"}})))
	for _, h := range []string{"esx-01", "esx-02"} {
		_, err := inv.Join(api.JoinRequest{Name: h, Cluster: cluster, Address: "127.0.0.1:1", Runtime: "sim", CPUCapacity: 8000, MemCapacity: 16384})
		must(nil, err)
		inv.SetConnection(cluster+"/"+h, true)
	}
	const shop = dc + "/ingress/shop"
	must(inv.Create("admin", api.New(api.KindIngress, shop, api.IngressSpec{DefaultBackend: &api.IngressBackend{
		Service: &api.IngressServiceBackend{Name: "web", Port: api.ServiceBackendPort{Number: 80}}}})))
	r.Drain(context.Background())
	status := func() api.LoadBalancerIngress {
		t.Helper()
		o, err := inv.Get(shop)
		if err != nil {
			t.Fatal(err)
		}
		var st api.IngressStatus
		_ = o.DecodeStatus(&st)
		if len(st.LoadBalancer.Ingress) != 1 {
			t.Fatalf("status %+v: want one address", st)
		}
		return st.LoadBalancer.Ingress[0]
	}
	if in := status(); in.IP != "10.99.0.200" || in.Host != cluster+"/esx-01" {
		t.Fatalf("Ingress status %+v: want 10.99.0.200 answered by esx-01", in)
	}
	inv.SetConnection(cluster+"/esx-01", false)
	r.Drain(context.Background())
	if in := status(); in.IP != "10.99.0.200" || in.Host != cluster+"/esx-02" {
		t.Fatalf("after esx-01 failed: %+v, want 10.99.0.200 answered by esx-02", in)
	}
}
