package fdm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/internal/hads"
)

const cluster = "/dc1/host/c1"

// fakeRuntime is the host's containers in memory.
type fakeRuntime struct {
	mu     sync.Mutex
	vms    map[string]*LocalVM
	killed []string
	termed []string
}

func (r *fakeRuntime) List(context.Context) ([]LocalVM, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []LocalVM
	for _, vm := range r.vms {
		out = append(out, *vm)
	}
	return out, nil
}

func (r *fakeRuntime) Kill(_ context.Context, uid string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.killed = append(r.killed, uid)
	r.vms[uid].Running = false
	return nil
}

func (r *fakeRuntime) Terminate(_ context.Context, uid string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.termed = append(r.termed, uid)
	return nil
}

func (r *fakeRuntime) running(uid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.vms[uid].Running
}

// fakeVCenter answers the FDM's reads: the cluster, this host's VMs, the hosts.
func fakeVCenter(t *testing.T, objs ...*api.Object) *httptest.Server {
	byPath := map[string]*api.Object{}
	for _, o := range objs {
		byPath[o.Path] = o
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/object", func(w http.ResponseWriter, r *http.Request) {
		o := byPath[r.URL.Query().Get("path")]
		if o == nil {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: "no such object", Reason: "NotFound"})
			return
		}
		_ = json.NewEncoder(w).Encode(o)
	})
	mux.HandleFunc("GET /api/v1/list", func(w http.ResponseWriter, r *http.Request) {
		l := api.List{Items: []*api.Object{}}
		for _, o := range objs {
			if o.Kind == r.URL.Query().Get("kind") {
				l.Items = append(l.Items, o)
			}
		}
		_ = json.NewEncoder(w).Encode(l)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func testTimings() ha.Timings {
	t := ha.DefaultTimings()
	t.DatastoreHeartbeat = 10 * time.Millisecond
	t.IsolationDetection = 50 * time.Millisecond
	t.ProbeTimeout = 5 * time.Millisecond
	return t
}

type harness struct {
	t       *testing.T
	ds      string
	state   string
	rt      *fakeRuntime
	reach   atomic.Bool
	ticks   atomic.Int64
	vcenter string
}

func newHarness(t *testing.T, response string) *harness {
	h := &harness{t: t, ds: t.TempDir(), state: t.TempDir(), rt: &fakeRuntime{vms: map[string]*LocalVM{}}}
	h.reach.Store(true)
	cl := api.New(api.KindCluster, cluster, api.ClusterSpec{HA: api.HAConfig{Enabled: true, IsolationResponse: response}})
	me := api.New(api.KindHost, cluster+"/esx-01", api.HostSpec{})
	me.SetStatus(api.HostStatus{State: api.HostConnected, Address: "10.0.0.1:7946"})
	peer := api.New(api.KindHost, cluster+"/esx-02", api.HostSpec{})
	peer.SetStatus(api.HostStatus{State: api.HostConnected, Address: "10.0.0.2:7946"})
	h.vcenter = fakeVCenter(t, cl, me, peer).URL
	return h
}

// start runs an FDM until the test ends; it returns a stop function.
func (h *harness) start(datastores ...string) (stop func() error) {
	h.t.Helper()
	f, err := New(Config{Name: "esx-01", Cluster: cluster, VCenter: h.vcenter, JoinToken: "tok",
		Datastores: datastores, Address: "10.0.0.1", StateDir: h.state, VMs: h.rt, Timings: testTimings(),
		Probe:  func(context.Context, string, time.Duration) bool { return h.reach.Load() },
		Logger: testLogger(h.t)})
	if err != nil {
		h.t.Fatal(err)
	}
	f.ticks = func(int) { h.ticks.Add(1) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	h.t.Cleanup(func() { _ = stop() })
	return stop
}

func testLogger(t *testing.T) *log.Logger {
	if testing.Verbose() {
		return log.New(os.Stderr, t.Name()+" ", log.Lmicroseconds)
	}
	return log.New(io.Discard, "", 0)
}

func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) lock(root, uid string) hads.Lock {
	l, _, _ := hads.ReadLock(root, uid)
	return l
}

const me = cluster + "/esx-01"

func TestFDMRenewsKillsAndAppliesIsolationResponse(t *testing.T) {
	h := newHarness(t, ResponsePowerOff)
	h.rt.vms["a"] = &LocalVM{UID: "a", Path: "/dc1/vm/a", Desired: true, Running: true}
	h.rt.vms["b"] = &LocalVM{UID: "b", Path: "/dc1/vm/b", Desired: true, Running: true}
	taken := time.Now()
	if err := hads.CheckRoot(h.ds); err != nil {
		t.Fatal(err)
	}
	for _, uid := range []string{"a", "b"} {
		if err := hads.WriteLock(h.ds, hads.Lock{UID: uid, VM: "/dc1/vm/" + uid, Host: me, State: hads.Held, Renewed: taken}); err != nil {
			t.Fatal(err)
		}
	}
	h.start(h.ds)
	h.eventually("locks renewed and heartbeat written", func() bool {
		hbs, _ := hads.ReadHeartbeats(h.ds)
		hb := hbs[me]
		return h.lock(h.ds, "a").Renewed.After(taken) && hb.Address == "10.0.0.1" && !hb.Isolated
	})
	// esx-02 took b (it lapsed there, say): the local copy must die.
	if err := hads.WriteLock(h.ds, hads.Lock{UID: "b", VM: "/dc1/vm/b", Host: cluster + "/esx-02", State: hads.Held, Renewed: time.Now()}); err != nil {
		t.Fatal(err)
	}
	h.eventually("the copy of b killed", func() bool { return !h.rt.running("b") })
	if l := h.lock(h.ds, "b"); l.Host != cluster+"/esx-02" {
		t.Fatalf("the FDM touched esx-02's lock: %+v", l)
	}
	// Nothing answers any more: isolated, powerOff: a is killed and released.
	h.reach.Store(false)
	h.eventually("a released by the isolation response", func() bool {
		l := h.lock(h.ds, "a")
		return l.State == hads.Released && l.Reason == "isolation response powerOff" && !h.rt.running("a")
	})
	hbs, _ := hads.ReadHeartbeats(h.ds)
	if hb := hbs[me]; !hb.Isolated || hb.IsolatedSince.IsZero() || hb.Response != ResponsePowerOff {
		t.Fatalf("heartbeat while isolated: %+v", hb)
	}
	// Back on the network: no longer isolated; a stays released.
	h.reach.Store(true)
	h.eventually("heartbeat no longer isolated", func() bool {
		hbs, _ := hads.ReadHeartbeats(h.ds)
		return !hbs[me].Isolated
	})
	if l := h.lock(h.ds, "a"); l.State != hads.Released {
		t.Fatalf("a's lock after isolation: %+v", l)
	}
}

func TestFDMRestartedDuringIsolationKeepsVerdictAndResponse(t *testing.T) {
	h := newHarness(t, ResponseShutdown)
	if err := hads.CheckRoot(h.ds); err != nil {
		t.Fatal(err)
	}
	stop := h.start(h.ds)
	h.eventually("cluster settings cached", func() bool {
		return strings.Contains(readFile(h.state+"/"+CacheFileName), `"isolationResponse": "shutdown"`)
	})
	h.reach.Store(false)
	h.eventually("isolated", func() bool { hbs, _ := hads.ReadHeartbeats(h.ds); return hbs[me].Isolated })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// A VM appears (an agent restarted it before learning better, say) and
	// the FDM restarts with vcenter out of reach: it knows it is isolated
	// and that the response is shutdown, from its state directory.
	h.rt.vms["a"] = &LocalVM{UID: "a", Path: "/dc1/vm/a", Desired: true, Running: true}
	if err := hads.WriteLock(h.ds, hads.Lock{UID: "a", VM: "/dc1/vm/a", Host: me, State: hads.Held, Renewed: time.Now()}); err != nil {
		t.Fatal(err)
	}
	h.vcenter = "http://127.0.0.1:1"
	h.ticks.Store(0)
	h.start(h.ds)
	h.eventually("a sent SIGTERM by the shutdown response", func() bool {
		h.rt.mu.Lock()
		defer h.rt.mu.Unlock()
		return len(h.rt.termed) > 0 && h.rt.termed[0] == "a"
	})
	// It stops on its own: released.
	h.rt.mu.Lock()
	h.rt.vms["a"].Running = false
	h.rt.mu.Unlock()
	h.eventually("a released once down", func() bool { return h.lock(h.ds, "a").Reason == "isolation response shutdown" })
}

func readFile(p string) string { b, _ := os.ReadFile(p); return string(b) }

func TestFDMSelfFencingStopsRenewingWhenIsolated(t *testing.T) {
	h := newHarness(t, "") // disabled: only self-fencing stops the VM
	h.rt.vms["a"] = &LocalVM{UID: "a", Path: "/dc1/vm/a", Desired: true, Running: true}
	if err := hads.CheckRoot(h.state); err != nil {
		t.Fatal(err)
	}
	if err := hads.WriteLock(h.state, hads.Lock{UID: "a", VM: "/dc1/vm/a", Host: me, State: hads.Held, Renewed: time.Now()}); err != nil {
		t.Fatal(err)
	}
	h.start() // no datastore
	first := h.lock(h.state, "a").Renewed
	h.eventually("self-fencing lock renewed in the state dir", func() bool { return h.lock(h.state, "a").Renewed.After(first) })
	h.reach.Store(false)
	h.eventually("isolated (heartbeat in the state dir)", func() bool { hbs, _ := hads.ReadHeartbeats(h.state); return hbs[me].Isolated })
	// Renewals stopped: the lock no longer moves however many ticks pass.
	last := h.lock(h.state, "a").Renewed
	n := h.ticks.Load()
	h.eventually("20 more ticks", func() bool { return h.ticks.Load() >= n+20 })
	if got := h.lock(h.state, "a").Renewed; !got.Equal(last) {
		t.Fatalf("an isolated self-fencing host renewed a lock (%v -> %v)", last, got)
	}
	if !h.rt.running("a") {
		t.Fatal("response disabled: the FDM itself must not kill; the fence does, FenceTime after the last renewal")
	}
}

func TestFDMSelfFencingNeedsVCentersWord(t *testing.T) {
	h := newHarness(t, "")
	h.vcenter = "http://127.0.0.1:1" // down: nobody confirms the host, though its peers answer
	h.rt.vms["a"] = &LocalVM{UID: "a", Path: "/dc1/vm/a", Desired: true, Running: true}
	if err := hads.CheckRoot(h.state); err != nil {
		t.Fatal(err)
	}
	taken := time.Now()
	if err := hads.WriteLock(h.state, hads.Lock{UID: "a", VM: "/dc1/vm/a", Host: me, State: hads.Held, Renewed: taken}); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.eventually("20 ticks", func() bool { return h.ticks.Load() >= 20 })
	if got := h.lock(h.state, "a").Renewed; !got.Equal(taken) {
		t.Fatalf("renewed without vcenter's word (%v -> %v)", taken, got)
	}
	if hbs, _ := hads.ReadHeartbeats(h.state); hbs[me].Isolated {
		t.Fatal("isolated while every probe answers")
	}
}

func TestFDMSingleInstance(t *testing.T) {
	h := newHarness(t, "")
	h.start(h.ds)
	h.eventually("first FDM running", func() bool { return h.ticks.Load() > 0 })
	f, err := New(Config{Name: "esx-01", Cluster: cluster, VCenter: h.vcenter, JoinToken: "tok", Datastores: []string{h.ds},
		StateDir: h.state, VMs: h.rt, Timings: testTimings(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = f.Run(context.Background())
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "another FDM (pid") {
		t.Fatalf("second FDM: %v", err)
	}
}

func TestNewNamesBadFields(t *testing.T) {
	ok := Config{Name: "esx-01", Cluster: cluster, VCenter: "http://127.0.0.1:8989", JoinToken: "t", StateDir: t.TempDir(), VMs: &fakeRuntime{}}
	if _, err := New(ok); err != nil {
		t.Fatal(err)
	}
	for field, edit := range map[string]func(*Config){
		"Name":                func(c *Config) { c.Name = "" },
		"Cluster":             func(c *Config) { c.Cluster = "/dc1/vm" },
		"VCenter":             func(c *Config) { c.VCenter = "::" },
		"JoinToken":           func(c *Config) { c.JoinToken = "" },
		"Address":             func(c *Config) { c.Address = "esx-01" },
		"IsolationAddresses":  func(c *Config) { c.IsolationAddresses = []string{"10.0.0.1:"} },
		"heartbeat datastore": func(c *Config) { c.Datastores = []string{"relative"} },
		"Timings": func(c *Config) {
			c.Timings = ha.DefaultTimings()
			c.Timings.SelfFenceGrace = c.Timings.FenceMargin
		},
	} {
		c := ok
		edit(&c)
		if _, err := New(c); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
}

func TestFDMOnSimulatedHostRenewsWhatVCenterReportsRunning(t *testing.T) {
	ds := t.TempDir()
	if err := hads.CheckRoot(ds); err != nil {
		t.Fatal(err)
	}
	on := api.New(api.KindVirtualMachine, "/dc1/vm/on", api.VMSpec{Host: me, PowerState: api.PoweredOn})
	on.UID = "u-on"
	on.SetStatus(api.VMStatus{Host: me, PowerState: api.PoweredOn})
	elsewhere := api.New(api.KindVirtualMachine, "/dc1/vm/elsewhere", api.VMSpec{Host: cluster + "/esx-02", PowerState: api.PoweredOn})
	elsewhere.UID = "u-elsewhere"
	elsewhere.SetStatus(api.VMStatus{Host: cluster + "/esx-02", PowerState: api.PoweredOn})
	vc := fakeVCenter(t, api.New(api.KindCluster, cluster, api.ClusterSpec{}), on, elsewhere)
	taken := time.Now()
	for _, o := range []*api.Object{on, elsewhere} {
		if err := hads.WriteLock(ds, hads.Lock{UID: o.UID, VM: o.Path, Host: me, State: hads.Held, Renewed: taken}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := New(Config{Name: "esx-01", Cluster: cluster, VCenter: vc.URL, JoinToken: "tok", Datastores: []string{ds},
		StateDir: t.TempDir(), VMs: NewSimVMs(), Timings: testTimings(),
		Probe: func(context.Context, string, time.Duration) bool { return true }, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ticks atomic.Int64
	f.ticks = func(int) { ticks.Add(1) }
	go f.Run(ctx)
	h := &harness{t: t}
	h.eventually("the running VM's lock renewed", func() bool { return h.lock(ds, "u-on").Renewed.After(taken) && ticks.Load() > 20 })
	if got := h.lock(ds, "u-elsewhere").Renewed; !got.Equal(taken) {
		t.Fatal("renewed the lock of a VM vcenter places on another host")
	}
}
