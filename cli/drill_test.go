package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/vcenter/server"
)

// simInjector fails the test lab's simulated hosts as a power loss would:
// the agent stops and its VMs are gone with it (a sim VM lives in its
// agent's memory); healing starts the host again, empty. Running reads
// each live host's sim runtime directly.
type simInjector struct {
	l    *testLab
	mu   sync.Mutex
	down map[string]bool
}

func (s *simInjector) Inject(_ context.Context, mode string, hosts []string) error {
	if mode != api.DrillCrash {
		return fmt.Errorf("the sim injector only crashes hosts, not %q: %w", mode, api.ErrInvalid)
	}
	for _, h := range hosts {
		s.mu.Lock()
		s.down[h] = true
		s.mu.Unlock()
		s.l.stopHost(h)
	}
	return nil
}

func (s *simInjector) Heal(_ context.Context, _ string, hosts []string) error {
	for _, h := range hosts {
		s.l.startHost(h)
		s.mu.Lock()
		delete(s.down, h)
		s.mu.Unlock()
	}
	return nil
}

func (s *simInjector) Running(ctx context.Context) (map[string][]string, error) {
	s.l.mu.Lock()
	agents := make(map[string]*labHost, len(s.l.agents))
	for n, h := range s.l.agents {
		agents[n] = h
	}
	s.l.mu.Unlock()
	out := map[string][]string{}
	for name, h := range agents {
		s.mu.Lock()
		down := s.down[name]
		s.mu.Unlock()
		out[name] = nil
		if down {
			continue
		}
		vms, err := h.rt.List(ctx)
		if err != nil {
			return nil, err
		}
		for _, v := range vms {
			if v.PowerState == api.PoweredOn {
				out[name] = append(out[name], v.ID)
			}
		}
	}
	return out, nil
}

// simVMInjector is a simInjector that also dials from inside VMs: the
// sim VMs have no network namespace, so every connection a VM opens goes
// to a local HTTP server standing in for the Service's endpoints, and the
// address and VM asked for are recorded.
type simVMInjector struct {
	*simInjector
	server string
	mu     sync.Mutex
	uids   []string
	dialed []string
}

func (s *simVMInjector) DialFromVM(uid string) (Dialer, error) {
	s.mu.Lock()
	s.uids = append(s.uids, uid)
	s.mu.Unlock()
	return func(ctx context.Context, nw, addr string) (net.Conn, error) {
		s.mu.Lock()
		s.dialed = append(s.dialed, addr)
		s.mu.Unlock()
		return (&net.Dialer{}).DialContext(ctx, nw, s.server)
	}, nil
}

// countingProber stands in for requests sent through a Service: it says
// it sent 10, none failed.
type countingProber struct {
	started bool
	vms     []string
}

func (p *countingProber) Start(context.Context) error { p.started = true; return nil }
func (p *countingProber) Stop() api.DrillRequests {
	return api.DrillRequests{Service: "web", Sent: 10}
}

// TestHADrill: psc ha.drill refuses what it cannot drill (bad mode, no HA,
// an unknown host, no injector) and, on simulated hosts whose crash the
// sim injector makes real, reports every protected VM restarted elsewhere,
// keeps the report, and lists it.
func TestHADrill(t *testing.T) {
	t.Parallel()
	tm := ha.DefaultTimings()
	tm.FenceTime, tm.FenceMargin = 500*time.Millisecond, 500*time.Millisecond // no heartbeat datastore: fencing shortened
	l := newLabConfig(t, server.Config{HATimings: tm})
	l.create(api.New(api.KindDatacenter, "/dc1", api.DatacenterSpec{}))
	l.create(api.New(api.KindCluster, labCluster, newClusterSpec()))
	for _, h := range []string{"esx-01", "esx-02", "esx-03"} {
		l.startHost(h)
	}
	for _, name := range []string{"db", "app"} {
		vm := api.New(api.KindVirtualMachine, "/dc1/vm/"+name, api.VMSpec{Pool: labRoot, NumCPU: 1, MemoryMB: 64,
			PowerState: api.PoweredOn, CPU: vmAllocation(), Mem: vmAllocation(), Containers: []api.Container{{Name: "main", Image: "busybox"}}})
		vm.Labels = map[string]string{"app": name}
		l.create(vm)
	}
	var spec api.VMSpec
	_ = l.get("/dc1/vm/db").DecodeSpec(&spec)
	victim := api.Base(spec.Host)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "db\n") }))
	t.Cleanup(srv.Close)
	inj := &simVMInjector{simInjector: &simInjector{l: l, down: map[string]bool{}}, server: srv.Listener.Addr().String()}
	var prober *countingProber
	drill := func(injector bool, args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		e := &Env{In: strings.NewReader(""), Out: &out, Err: &errb, Now: time.Now, Location: time.UTC, NewAPI: newClient}
		if injector {
			e.Injector = func(context.Context) (Injector, error) { return inj, nil }
		}
		if prober != nil {
			e.DrillProber = func(_ context.Context, _ string, vms []string) (Prober, error) {
				prober.vms = vms
				return prober, nil
			}
		}
		vars := map[string]string{"PSC_URL": l.url, "PSC_TOKEN": l.token, "PSC_DATACENTER": "dc1", "PSC_CLUSTER": "c1"}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		code := Run(ctx, e, func(k string) string { return vars[k] }, args)
		return out.String(), errb.String(), code
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ha.drill", victim}, api.ExitUsage, "give -mode crash, isolate, partition or maintenance"},
		{[]string{"ha.drill", "-mode", "melt", victim}, api.ExitUsage, `-mode "melt": want crash, isolate, partition or maintenance`},
		{[]string{"ha.drill", "-mode", "crash", "esx-01,esx-02"}, api.ExitUsage, "takes one host (2 given)"},
		{[]string{"ha.drill", "-mode", "crash", victim}, api.ExitConflict, "HA is not enabled on cluster /dc1/host/c1"},
	} {
		if _, errOut, code := drill(true, c.args...); code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("psc %q: exit %d, %q; want exit %d naming %q", c.args, code, errOut, c.code, c.want)
		}
	}
	l.ok("cluster.change", "-ha-enabled", "c1")
	if _, errOut, code := drill(true, "ha.drill", "-mode", "crash", "esx-09"); code != api.ExitNotFound || !strings.Contains(errOut, "host esx-09 is not in cluster") {
		t.Errorf("drill of an unknown host: exit %d, %q", code, errOut)
	}
	if _, errOut, code := drill(false, "ha.drill", "-mode", "crash", victim); code != api.ExitUnavailable || !strings.Contains(errOut, "it runs in a lab") {
		t.Errorf("drill without an injector: exit %d, %q", code, errOut)
	}
	if ls := l.ok("ha.drill.ls"); strings.Contains(ls, "drill-") {
		t.Fatalf("a refused drill was kept:\n%s", ls)
	}

	// A Service selects db; a client VM runs on a host the drill leaves
	// alone (sorted first, as the drill picks): the drill streams to the
	// Service's ClusterIP from inside it.
	l.create(api.New(api.KindService, "/dc1/service/db", api.ServiceSpec{Type: api.ServiceClusterIP, Selector: map[string]string{"app": "db"},
		Ports: []api.ServicePort{{Port: 5432}}}))
	other := "esx-01"
	if victim == other {
		other = "esx-02"
	}
	l.create(api.New(api.KindVirtualMachine, "/dc1/vm/a-client", api.VMSpec{Pool: labRoot, NumCPU: 1, MemoryMB: 64, Host: labCluster + "/" + other,
		Pinned: true, PowerState: api.PoweredOn, CPU: vmAllocation(), Mem: vmAllocation(), Containers: []api.Container{{Name: "main", Image: "busybox"}}}))
	var svc api.ServiceSpec
	l.eventually("db's endpoint and the client VM running", func() bool {
		var st api.ServiceStatus
		var vst api.VMStatus
		o := l.get("/dc1/service/db")
		_ = o.DecodeStatus(&st)
		_ = o.DecodeSpec(&svc)
		_ = l.get("/dc1/vm/a-client").DecodeStatus(&vst)
		return st.Ready == 1 && svc.ClusterIP != "" && vst.PowerState == api.PoweredOn && vst.IP != ""
	})

	prober = &countingProber{}
	out, errOut, code := drill(true, "ha.drill", "-json", "-mode", "crash", "-name", "sim-crash", victim)
	var rep api.HADrillReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
		t.Fatalf("ha.drill on sim hosts: exit %d, %v\n%s\n%s", code, err, out, errOut)
	}
	if !rep.Passed || rep.Samples == 0 || rep.Detected.IsZero() || rep.Declared.IsZero() || rep.Healed.IsZero() {
		t.Errorf("report: passed %v, %d samples, detected %v, declared %v, healed %v, failures %v",
			rep.Passed, rep.Samples, rep.Detected, rep.Declared, rep.Healed, rep.Failures)
	}
	if !prober.started || rep.Requests == nil || rep.Requests.Sent != 10 || len(prober.vms) != len(rep.VMs) {
		t.Errorf("the drill's prober: started %v, given %v, report %+v", prober.started, prober.vms, rep.Requests)
	}
	// The ClusterIP stream went from the client VM to the Service's
	// clusterIP:port, and was answered.
	q := rep.ClusterIPRequests
	if q == nil || q.Sent == 0 || q.Failed != 0 || q.FromVM != "/dc1/vm/a-client" || q.FromHost != other ||
		q.Target != "http://"+net.JoinHostPort(svc.ClusterIP, "5432")+"/" || q.Service != "/dc1/service/db" {
		t.Errorf("the ClusterIP stream: %+v, want sent from /dc1/vm/a-client on %s to %s:5432, none failed", q, other, svc.ClusterIP)
	}
	inj.mu.Lock()
	uid := l.get("/dc1/vm/a-client").UID
	if len(inj.uids) != 1 || inj.uids[0] != uid || len(inj.dialed) == 0 || inj.dialed[0] != net.JoinHostPort(svc.ClusterIP, "5432") {
		t.Errorf("the injector was asked to dial from %v to %v, want from the client VM %s to %s:5432", inj.uids, inj.dialed, uid, svc.ClusterIP)
	}
	inj.mu.Unlock()
	moved := 0
	for _, v := range rep.VMs {
		if v.From != victim || v.Outcome != "restarted" || v.To == victim || v.Ready.IsZero() {
			t.Errorf("%s: %+v, want restarted off %s", v.VM, v, victim)
		}
		moved++
	}
	if moved == 0 {
		t.Fatal("the drill protected no VM")
	}
	if ls := l.ok("ha.drill.ls"); !strings.Contains(ls, "sim-crash") || !strings.Contains(ls, "passed") {
		t.Errorf("ha.drill.ls:\n%s", ls)
	}
	if info := l.ok("ha.drill.info", "sim-crash"); !strings.Contains(info, "Drill sim-crash: crash "+victim+": PASSED") {
		t.Errorf("ha.drill.info:\n%s", info)
	}
	if _, errOut, code := drill(true, "ha.drill", "-mode", "crash", "-name", "sim-crash", victim); code != api.ExitConflict || !strings.Contains(errOut, "exists already") {
		t.Errorf("a second drill under the same name: exit %d, %q", code, errOut)
	}
}
