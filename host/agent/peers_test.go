package agent

import (
	"slices"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/runtime"
)

func TestPeerRoutes(t *testing.T) {
	host := func(name, state, addr, subnet string) *api.Object {
		o := api.New(api.KindHost, "/dc1/host/c1/"+name, api.HostSpec{})
		o.SetStatus(api.HostStatus{State: state, Address: addr, PodSubnet: subnet})
		return o
	}
	hosts := []*api.Object{
		host("h1", api.HostConnected, "10.0.0.1:7946", "10.244.0.0/24"),
		host("h3", api.HostMaintenance, "10.0.0.3:7946", "10.244.2.0/24"),
		host("h2", api.HostConnected, "10.0.0.2:7946", "10.244.1.0/24"),
		host("h4", api.HostNotResponding, "10.0.0.4:7946", "10.244.3.0/24"), // silent, maybe restarting: its VMs may still run
		host("h5", api.HostConnected, "10.0.0.5:7946", ""),                  // no subnet yet
		host("h6", api.HostConnected, "not-an-ip", "10.244.5.0/24"),
	}
	got := PeerRoutes("/dc1/host/c1/h1", hosts)
	want := []runtime.Peer{
		{Host: "/dc1/host/c1/h2", Subnet: "10.244.1.0/24", Via: "10.0.0.2"},
		{Host: "/dc1/host/c1/h3", Subnet: "10.244.2.0/24", Via: "10.0.0.3"},
		{Host: "/dc1/host/c1/h4", Subnet: "10.244.3.0/24", Via: "10.0.0.4"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("PeerRoutes = %+v, want %+v", got, want)
	}
}
