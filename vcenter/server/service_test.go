package server

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/sim"
)

// serviceStatus reads a Service's endpoints as psc svc.info does.
func (e *env) serviceStatus(t *testing.T, path string) api.ServiceStatus {
	t.Helper()
	o, err := e.admin.Get(ctxT(t), path)
	if err != nil {
		t.Fatalf("get %s: %v", path, err)
	}
	var st api.ServiceStatus
	_ = o.DecodeStatus(&st)
	return st
}

func readyVMs(st api.ServiceStatus) map[string]api.EndpointAddress {
	out := map[string]api.EndpointAddress{}
	for _, s := range st.Subsets {
		for _, a := range s.Addresses {
			out[a.VM] = a
		}
	}
	return out
}

// A Deployment of 3 behind a Service: 3 ready endpoints with the VMs'
// addresses, hosts and the named target port resolved; a VM whose
// readiness fails leaves (and comes back); a host that stops responding
// takes its endpoints out.
func TestServiceEndpointsFollowReadinessAndHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three sim agents with gossip")
	}
	e := startVCenter(t, Config{Gossip: "127.0.0.1:0", Timings: testTimings()})
	e.inventory(t, nil)
	hosts := []string{"esx-01", "esx-02", "esx-03"}
	drivers := map[string]*sim.Driver{}
	agents := map[string]*runningAgent{}
	for i, n := range hosts {
		drivers[cluster+"/"+n] = sim.New(8000, 16384, sim.IPPrefix(i))
		agents[n] = e.startAgent(t, n, drivers[cluster+"/"+n], e.s.JoinToken())
	}
	for _, n := range hosts {
		e.waitState(t, n, api.HostConnected, 30*time.Second)
	}
	web := map[string]string{"app": "web"}
	dep := api.DeploymentSpec{Pool: rootRP, Replicas: 3, Selector: api.LabelSelector{MatchLabels: web},
		Template: api.VMTemplate{Labels: web, Spec: api.VMSpec{NumCPU: 1, MemoryMB: 64, Containers: []api.Container{{Name: "main", Image: "httpd",
			Ports: []api.Port{{Name: "http", ContainerPort: 8080}}}}}}}
	e.mustCreate(t, api.New(api.KindDeployment, dc+"/deployment/web", dep))
	const svc = dc + "/service/web"
	e.mustCreate(t, api.New(api.KindService, svc, api.ServiceSpec{Selector: web,
		Ports: []api.ServicePort{{Name: "http", Port: 80, TargetPort: api.Str("http")}}}))

	var st api.ServiceStatus
	eventually(t, "3 ready endpoints", 30*time.Second, func() bool {
		st = e.serviceStatus(t, svc)
		return st.Ready == 3 && st.Total == 3
	})
	if len(st.Subsets) != 1 || len(st.Subsets[0].Ports) != 1 || st.Subsets[0].Ports[0] != (api.EndpointPort{Name: "http", Port: 8080, Protocol: "TCP"}) {
		t.Errorf("subsets %+v: want one with port http 8080/TCP", st.Subsets)
	}
	for p, a := range readyVMs(st) {
		_, vs := e.vmStatus(t, api.Base(p))
		if a.IP == "" || a.IP != vs.IP || a.Host != vs.Host {
			t.Errorf("endpoint %+v: the VM reports ip %s on %s", a, vs.IP, vs.Host)
		}
	}
	eventually(t, "an EndpointsChangedEvent saying 3 of 3 ready", 5*time.Second, func() bool {
		return hasEvent(e.eventsFor(t, svc), "EndpointsChangedEvent", "3 of 3 endpoints ready")
	})

	// Readiness fails on one VM: it moves to notReadyAddresses.
	var victim api.EndpointAddress
	for _, a := range readyVMs(st) {
		victim = a
		break
	}
	o := mustGet(t, e, victim.VM)
	if err := drivers[victim.Host].FailReadiness(o.UID, true); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, api.Base(victim.VM)+" not ready", 10*time.Second, func() bool {
		st = e.serviceStatus(t, svc)
		_, in := readyVMs(st)[victim.VM]
		return !in && st.Ready == 2 && st.Total == 3
	})
	t.Logf("a VM whose readiness failed left the Service's ready endpoints after %v", time.Since(start).Round(time.Millisecond))
	eventually(t, "an event naming "+api.Base(victim.VM)+" leaving", 5*time.Second, func() bool {
		return hasEvent(e.eventsFor(t, svc), "EndpointsChangedEvent", "left "+api.Base(victim.VM))
	})
	if err := drivers[victim.Host].FailReadiness(o.UID, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "back to 3 ready", 10*time.Second, func() bool { return e.serviceStatus(t, svc).Ready == 3 })

	// A host stops responding: its VMs leave the Service.
	gone := victim.Host
	agents[api.Base(gone)].stop(t)
	e.waitState(t, api.Base(gone), api.HostNotResponding, 30*time.Second)
	eventually(t, "no endpoint on "+api.Base(gone), 10*time.Second, func() bool {
		st = e.serviceStatus(t, svc)
		for _, s := range st.Subsets {
			for _, a := range append(append([]api.EndpointAddress(nil), s.Addresses...), s.NotReadyAddresses...) {
				if a.Host == gone {
					return false
				}
			}
		}
		return st.Total >= 2
	})
}

func TestServiceBadInput(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	for _, c := range []struct {
		spec any
		want string
	}{
		{api.ServiceSpec{Type: "Balanced", Ports: []api.ServicePort{{Port: 80}}}, "spec.type"},
		{api.ServiceSpec{Selector: map[string]string{"app": "web"}}, "spec.ports"},
		{api.ServiceSpec{Selector: map[string]string{"bad key!": "x"}, Ports: []api.ServicePort{{Port: 80}}}, "spec.selector"},
		{map[string]any{"ports": []any{map[string]any{"port": 80}}, "loadBalancerClass": "x"}, "loadBalancerClass"},
	} {
		before := e.revision(t)
		_, err := e.admin.Create(ctxT(t), api.New(api.KindService, dc+"/service/bad", c.spec))
		if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want ErrInvalid naming %s", c.spec, err, c.want)
		}
		if after := e.revision(t); after != before {
			t.Errorf("%+v: refused, yet the store moved from %d to %d", c.spec, before, after)
		}
	}
	// Status is vcenter's: a client cannot write endpoints.
	e.mustCreate(t, api.New(api.KindService, dc+"/service/ok", api.ServiceSpec{Ports: []api.ServicePort{{Port: 80}}}))
	o := mustGet(t, e, dc+"/service/ok")
	o.SetStatus(api.ServiceStatus{Ready: 9, Total: 9})
	if _, err := e.join.UpdateStatus(ctxT(t), o); err == nil {
		t.Error(fmt.Sprintf("a client wrote a Service's endpoints: %+v", e.serviceStatus(t, dc+"/service/ok")))
	}
}
