package controllers

import (
	"slices"
	"testing"

	"github.com/podsphere/podsphere/api"
)

// Keys decide which Services look again; a change that concerns no
// endpoint (CPU use, a host's lastSeen) must queue nothing, or every status
// report would reconcile every Service.
func TestEndpointsKeys(t *testing.T) {
	c := NewEndpoints(nil)
	svc := func(path string, sel map[string]string) *api.Object {
		return api.New(api.KindService, path, api.ServiceSpec{Selector: sel, Ports: []api.ServicePort{{Port: 80}}})
	}
	web, dev := svc("/dc1/service/web", map[string]string{"app": "web"}), svc("/dc1/service/dev/web", map[string]string{"app": "web"})
	for _, s := range []*api.Object{web, dev, svc("/dc1/service/db", map[string]string{"app": "db"})} {
		if got := c.Keys(nil, s); !slices.Equal(got, []string{s.Path}) {
			t.Fatalf("Service created: keys %v", got)
		}
	}
	rv := uint64(0) // every stored version has its own (the decode cache relies on it)
	vmObj := func(path string, labels map[string]string, st api.VMStatus) *api.Object {
		o := api.New(api.KindVirtualMachine, path, api.VMSpec{PowerState: api.PoweredOn})
		rv++
		o.Labels, o.ResourceVersion = labels, rv
		o.SetStatus(st)
		return o
	}
	up := api.VMStatus{PowerState: api.PoweredOn, Ready: true, IP: "10.0.0.2", Host: "/dc1/host/c1/esx-01"}
	busy := up
	busy.CPUUsageMHz = 900
	down := up
	down.Ready = false
	webL, dbL := map[string]string{"app": "web"}, map[string]string{"app": "db"}
	for _, tt := range []struct {
		name     string
		old, new *api.Object
		want     []string
	}{
		{"CPU use only", vmObj("/dc1/vm/a", webL, up), vmObj("/dc1/vm/a", webL, busy), nil},
		{"readiness", vmObj("/dc1/vm/a", webL, up), vmObj("/dc1/vm/a", webL, down), []string{"/dc1/service/web"}},
		{"in namespace dev", vmObj("/dc1/vm/dev/a", webL, up), vmObj("/dc1/vm/dev/a", webL, down), []string{"/dc1/service/dev/web"}},
		{"relabelled: the old and the new Service", vmObj("/dc1/vm/a", webL, up), vmObj("/dc1/vm/a", dbL, up), []string{"/dc1/service/db", "/dc1/service/web"}},
		{"created", nil, vmObj("/dc1/vm/a", webL, up), []string{"/dc1/service/web"}},
		{"deleted", vmObj("/dc1/vm/a", webL, up), nil, []string{"/dc1/service/web"}},
		{"selected by none", vmObj("/dc1/vm/a", map[string]string{"app": "x"}, up), vmObj("/dc1/vm/a", map[string]string{"app": "x"}, down), nil},
	} {
		if got := c.Keys(tt.old, tt.new); !slices.Equal(got, tt.want) {
			t.Errorf("VM %s: keys %v, want %v", tt.name, got, tt.want)
		}
	}
	host := func(state string, seen int) *api.Object {
		o := api.New(api.KindHost, "/dc1/host/c1/esx-01", api.HostSpec{})
		o.SetStatus(api.HostStatus{State: state, CPUUsage: int64(seen)})
		return o
	}
	if got := c.Keys(host(api.HostConnected, 1), host(api.HostConnected, 2)); got != nil {
		t.Errorf("host report without a state change: keys %v", got)
	}
	if got := c.Keys(host(api.HostConnected, 1), host(api.HostNotResponding, 1)); len(got) != 3 {
		t.Errorf("host stopped responding: keys %v, want every Service", got)
	}
	if got := c.Keys(web, nil); !slices.Equal(got, []string{web.Path}) {
		t.Errorf("Service deleted: keys %v", got)
	}
	if got := c.Keys(vmObj("/dc1/vm/a", webL, up), vmObj("/dc1/vm/a", webL, down)); got != nil {
		t.Errorf("after the Service is gone, its VMs queue %v", got)
	}
}
