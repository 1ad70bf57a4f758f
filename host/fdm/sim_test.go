package fdm

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/podsphere/podsphere/api"
)

// simAgentFake is a sim host agent's API: GET /vms and POST /stop.
type simAgentFake struct {
	mu      sync.Mutex
	vms     map[string]api.HostVM
	stopped []string
	broken  bool // GET /vms answers 503
}

func (f *simAgentFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer tok" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/vms":
		if f.broken {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: "runtime down"})
			return
		}
		l := api.HostVMList{Host: "esx-01", VMs: []api.HostVM{}}
		for _, vm := range f.vms {
			l.VMs = append(l.VMs, vm)
		}
		_ = json.NewEncoder(w).Encode(l)
	case r.Method == http.MethodPost && r.URL.Path == "/stop":
		var req api.HostStopRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		vm, ok := f.vms[req.VM]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		vm.PowerState = api.PoweredOff
		f.vms[req.VM] = vm
		f.stopped = append(f.stopped, req.VM)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func placedHere(uid, name string) *api.Object {
	o := api.New(api.KindVirtualMachine, "/dc1/vm/"+name, api.VMSpec{Host: me, PowerState: api.PoweredOn})
	o.UID = uid
	o.SetStatus(api.VMStatus{Host: me, PowerState: api.PoweredOn})
	return o
}

func byUID(vms []LocalVM) map[string]LocalVM {
	m := map[string]LocalVM{}
	for _, vm := range vms {
		m[vm.UID] = vm
	}
	return m
}

// With the agent's API, a simulated host's VMs are what its agent runs,
// not what vcenter last said, and the isolation response's Kill really
// stops them there.
func TestSimAgentVMs(t *testing.T) {
	ctx := context.Background()
	agent := &simAgentFake{vms: map[string]api.HostVM{
		"u-a": {ID: "u-a", Path: "/dc1/vm/a", PowerState: api.PoweredOn},
		"u-b": {ID: "u-b", Path: "/dc1/vm/b", PowerState: api.PoweredOff},
		"u-x": {ID: "u-x", Path: "/dc1/vm/x", PowerState: api.PoweredOn}, // not placed here as vcenter last said
	}}
	srv := httptest.NewServer(agent)
	defer srv.Close()
	s := NewSimAgentVMs(strings.TrimPrefix(srv.URL, "http://"), "tok")
	s.observe([]*api.Object{placedHere("u-a", "a"), placedHere("u-b", "b")}, me)

	vms, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := byUID(vms)
	if len(got) != 3 || !got["u-a"].Running || got["u-b"].Running || !got["u-b"].Desired || !got["u-x"].Running || got["u-x"].Path != "/dc1/vm/x" {
		t.Errorf("List = %+v; want u-a running, u-b desired but not running (vcenter says on, the agent has it off), u-x running", vms)
	}

	if err := s.Kill(ctx, "u-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Terminate(ctx, "u-x"); err != nil {
		t.Fatal(err)
	}
	agent.mu.Lock()
	stopped := strings.Join(agent.stopped, ",")
	agent.mu.Unlock()
	if stopped != "u-a,u-x" {
		t.Errorf("the agent was asked to stop %q, want u-a,u-x", stopped)
	}
	vms, _ = s.List(ctx)
	if got := byUID(vms); got["u-a"].Running || got["u-x"].Running {
		t.Errorf("after Kill and Terminate: %+v; want nothing running", vms)
	}
	if err := s.Kill(ctx, "u-gone"); err != nil {
		t.Errorf("killing a VM the agent does not have: %v, want nil (it is not running)", err)
	}

	agent.mu.Lock()
	agent.broken = true
	agent.mu.Unlock()
	if vms, err := s.List(ctx); err == nil || !strings.Contains(err.Error(), "runtime down") {
		t.Errorf("List with the agent failing: %+v, %v; want its error, not an empty list", vms, err)
	}

	// No agent listens any more: a sim host's VMs died with it.
	srv.Close()
	vms, err = s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, vm := range vms {
		if vm.Running {
			t.Errorf("agent gone, but %s counts as running", vm.UID)
		}
	}
	if err := s.Kill(ctx, "u-a"); err != nil {
		t.Errorf("Kill with the agent gone: %v", err)
	}
}
