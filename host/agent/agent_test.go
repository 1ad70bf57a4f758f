package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/runtime"
	"github.com/podsphere/podsphere/host/sim"
	"github.com/podsphere/podsphere/internal/gossip"
	"github.com/podsphere/podsphere/vcenter/membership"
)

const (
	token   = "join-me"
	cluster = "/dc1/host/c1"
	me      = cluster + "/esx-01"
)

// fakeVCenter serves the few endpoints an agent uses, over an in-memory
// store with revisions, so the agent's I/O loop runs for real.
type fakeVCenter struct {
	t      *testing.T
	seed   string // gossip seed handed out on join
	mu     sync.Mutex
	rev    uint64
	objs   map[string]*api.Object
	log    []api.WatchEvent
	change chan struct{} // closed and replaced on every write
	joins  []api.JoinRequest
	// conflicts makes the next status writes of a path fail with 409.
	conflicts map[string]int
	statusPut int
}

func newFakeVCenter(t *testing.T) (*fakeVCenter, *httptest.Server) {
	f := &fakeVCenter{t: t, objs: map[string]*api.Object{}, change: make(chan struct{}), conflicts: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/hosts/join", f.join)
	mux.HandleFunc("GET /api/v1/list", f.list)
	mux.HandleFunc("GET /api/v1/watch", f.watch)
	mux.HandleFunc("GET /api/v1/object", f.get)
	mux.HandleFunc("PUT /api/v1/status", f.putStatus)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv
}

func fail(w http.ResponseWriter, code int, reason, msg string) {
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: msg, Reason: reason})
}

func (f *fakeVCenter) join(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+token {
		fail(w, http.StatusUnauthorized, "Unauthorized", "invalid join token")
		return
	}
	var req api.JoinRequest
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	f.joins = append(f.joins, req)
	f.mu.Unlock()
	h := api.New(api.KindHost, req.Cluster+"/"+req.Name, api.HostSpec{})
	_ = json.NewEncoder(w).Encode(api.JoinReply{Host: h, GossipSeed: []string{f.seed}, Joined: time.Now()})
}

// put writes o as an admin would (spec and status as given) and returns the stored copy.
func (f *fakeVCenter) put(o *api.Object) *api.Object {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.store(o, api.Modified)
}

func (f *fakeVCenter) store(o *api.Object, typ string) *api.Object {
	f.rev++
	o = o.Clone()
	if old, ok := f.objs[o.Path]; ok {
		o.UID = old.UID
	} else {
		typ = api.Added
		if o.UID == "" {
			o.UID = "uid-" + api.Base(o.Path)
		}
	}
	o.ResourceVersion = f.rev
	f.objs[o.Path] = o
	f.log = append(f.log, api.WatchEvent{Type: typ, Revision: f.rev, Object: o.Clone()})
	close(f.change)
	f.change = make(chan struct{})
	return o.Clone()
}

func (f *fakeVCenter) obj(path string) *api.Object {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.objs[path].Clone()
}

func hostOf(o *api.Object) string {
	var s api.VMSpec
	_ = o.DecodeSpec(&s)
	return s.Host
}

func (f *fakeVCenter) list(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	l := api.List{Revision: f.rev, Items: []*api.Object{}}
	for _, o := range f.objs {
		if o.Kind == r.URL.Query().Get("kind") && hostOf(o) == r.URL.Query().Get("host") {
			l.Items = append(l.Items, o.Clone())
		}
	}
	f.mu.Unlock()
	_ = json.NewEncoder(w).Encode(l)
}

// watch streams every event after from; unlike the real server it sends
// events of VMs that moved away too, which the agent must filter.
func (f *fakeVCenter) watch(w http.ResponseWriter, r *http.Request) {
	from, _ := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	enc := json.NewEncoder(w)
	for {
		f.mu.Lock()
		var evs []api.WatchEvent
		for _, ev := range f.log {
			if ev.Revision > from {
				evs = append(evs, ev)
			}
		}
		change := f.change
		f.mu.Unlock()
		for _, ev := range evs {
			_ = enc.Encode(ev)
			from = ev.Revision
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-change:
		}
	}
}

func (f *fakeVCenter) get(w http.ResponseWriter, r *http.Request) {
	o := f.obj(r.URL.Query().Get("path"))
	if o == nil {
		fail(w, http.StatusNotFound, "NotFound", "no such object")
		return
	}
	_ = json.NewEncoder(w).Encode(o)
}

func (f *fakeVCenter) putStatus(w http.ResponseWriter, r *http.Request) {
	var in api.Object
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, "Invalid", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statusPut++
	cur, ok := f.objs[in.Path]
	switch {
	case !ok:
		fail(w, http.StatusNotFound, "NotFound", "no such object")
		return
	case f.conflicts[in.Path] > 0:
		f.conflicts[in.Path]--
		f.rev++ // someone else wrote meanwhile
		cur.ResourceVersion = f.rev
		fail(w, http.StatusConflict, "Conflict", "resourceVersion changed")
		return
	case in.ResourceVersion != cur.ResourceVersion:
		fail(w, http.StatusConflict, "Conflict", fmt.Sprintf("resourceVersion %d is not current %d", in.ResourceVersion, cur.ResourceVersion))
		return
	}
	o := cur.Clone()
	o.Status = in.Status // only the status is applied
	_ = json.NewEncoder(w).Encode(f.store(o, api.Modified))
}

func vmObj(name, host, power string, gen int64) *api.Object {
	return api.New(api.KindVirtualMachine, "/dc1/vm/"+name, api.VMSpec{
		Pool: cluster + "/Resources", Host: host, NumCPU: 1, MemoryMB: 128, PowerState: power, ResetGeneration: gen,
		Containers: []api.Container{{Name: "main", Image: "busybox"}},
	})
}

func status(o *api.Object) api.VMStatus {
	var s api.VMStatus
	if o != nil {
		_ = o.DecodeStatus(&s)
	}
	return s
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fastTimings() gossip.Timings {
	t := gossip.DefaultTimings()
	t.StatusInterval = 100 * time.Millisecond
	t.RejoinInterval = 100 * time.Millisecond
	t.RetryMin = 10 * time.Millisecond
	t.RetryMax = 100 * time.Millisecond
	return t
}

func testLogger(t *testing.T) *log.Logger {
	if testing.Verbose() {
		return log.New(os.Stderr, t.Name()+" ", log.Lmicroseconds)
	}
	return log.New(io.Discard, "", 0)
}

// hosts records membership as vcenter would see it.
type hosts struct {
	mu    sync.Mutex
	alive map[string]string
}

func (h *hosts) HostAlive(name, addr string) { h.mu.Lock(); h.alive[name] = addr; h.mu.Unlock() }
func (h *hosts) HostFailed(name string)      { h.mu.Lock(); delete(h.alive, name); h.mu.Unlock() }
func (h *hosts) addr(name string) string     { h.mu.Lock(); defer h.mu.Unlock(); return h.alive[name] }

type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error
	agent  *Agent
}

func startAgent(t *testing.T, url string, rt runtime.Runtime, tok string) *running {
	t.Helper()
	return startAgentWith(t, url, rt, tok, nil)
}

// startAgentWith is startAgent with the config edited first (edit may be nil).
func startAgentWith(t *testing.T, url string, rt runtime.Runtime, tok string, edit func(*Config)) *running {
	t.Helper()
	cfg := Config{
		Name: "esx-01", Cluster: cluster, VCenter: url, JoinToken: tok,
		GossipBind: "127.0.0.1:0", Runtime: rt, Timings: fastTimings(), Logger: testLogger(t),
	}
	if edit != nil {
		edit(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{}), agent: a}
	go func() { r.err = a.Run(ctx); close(r.done) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestJoinRefused(t *testing.T) {
	_, srv := newFakeVCenter(t)
	a, err := New(Config{Name: "esx-01", Cluster: cluster, VCenter: srv.URL, JoinToken: "wrong",
		GossipBind: "127.0.0.1:0", Runtime: sim.New(1000, 1024, "10.250.0"), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = a.Run(ctx)
	if !errors.Is(err, ErrJoinRefused) || !strings.Contains(err.Error(), "vcenter refused the join token") {
		t.Fatalf("Run = %v, want the join refused", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run retried a refused token instead of failing")
	}
}

func TestAgent(t *testing.T) {
	ctx := context.Background()
	f, srv := newFakeVCenter(t)
	seen := &hosts{alive: map[string]string{}}
	vc, err := membership.Start("vcenter", "127.0.0.1:0", token, fastTimings(), seen, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	f.seed = vc.Addr()

	f.put(vmObj("web", me, api.PoweredOn, 0))
	f.put(vmObj("db", me, api.PoweredOff, 0))
	f.put(vmObj("other", cluster+"/esx-02", api.PoweredOn, 0))
	f.conflicts["/dc1/vm/web"] = 2 // the first status writes lose a race

	rt := sim.New(4000, 8192, sim.IPPrefix(1))
	// Left over from before: a VM vcenter no longer has.
	_ = rt.Create(ctx, runtime.VMSpec{ID: "uid-gone", Path: "/dc1/vm/gone"})
	_ = rt.Start(ctx, "uid-gone")

	r := startAgent(t, srv.URL, rt, token)
	<-r.agent.Ready()
	if r.agent.HostPath() != me {
		t.Errorf("HostPath = %s", r.agent.HostPath())
	}

	eventually(t, "web reported powered on", func() bool {
		s := status(f.obj("/dc1/vm/web"))
		return s.PowerState == api.PoweredOn && s.IP == "10.250.1.2" && s.Host == me && !s.BootTime.IsZero() && len(s.Containers) == 1
	})
	eventually(t, "db reported powered off on this host", func() bool {
		s := status(f.obj("/dc1/vm/db"))
		return s.PowerState == api.PoweredOff && s.Host == me
	})
	eventually(t, "gossip: vcenter sees the host", func() bool { return seen.addr(me) == r.agent.GossipAddr() })
	if _, err := rt.Status(ctx, "uid-gone"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("unwanted VM not removed: %v", err)
	}
	if _, err := rt.Status(ctx, "uid-other"); !errors.Is(err, api.ErrNotFound) {
		t.Error("agent ran a VM assigned to another host")
	}
	if s := status(f.obj("/dc1/vm/other")); s.Host != "" {
		t.Errorf("agent wrote the status of another host's VM: %+v", s)
	}
	f.mu.Lock()
	j := f.joins[0]
	f.mu.Unlock()
	if j.Name != "esx-01" || j.Cluster != cluster || j.Runtime != "sim" || j.CPUCapacity != 4000 || j.MemCapacity != 8192 || j.Address != r.agent.GossipAddr() {
		t.Errorf("join request = %+v", j)
	}

	// Power off, on, reset.
	f.put(vmObj("web", me, api.PoweredOff, 0))
	eventually(t, "web powered off", func() bool {
		st, _ := rt.Status(ctx, "uid-web")
		return st.PowerState == api.PoweredOff && status(f.obj("/dc1/vm/web")).PowerState == api.PoweredOff
	})
	f.put(vmObj("web", me, api.PoweredOn, 0))
	eventually(t, "web powered on again", func() bool { return status(f.obj("/dc1/vm/web")).PowerState == api.PoweredOn })
	before := status(f.obj("/dc1/vm/web")).BootTime
	time.Sleep(time.Millisecond)
	f.put(vmObj("web", me, api.PoweredOn, 1))
	eventually(t, "web reset", func() bool {
		s := status(f.obj("/dc1/vm/web"))
		return s.ResetGeneration == 1 && s.BootTime.After(before) && s.PowerState == api.PoweredOn
	})

	// Agent restart: VMs keep running and are adopted, not restarted.
	r.stop(t)
	webBoot := status(f.obj("/dc1/vm/web")).BootTime
	webRestarts := status(f.obj("/dc1/vm/web")).Restarts
	if st, _ := rt.Status(ctx, "uid-web"); st.PowerState != api.PoweredOn {
		t.Fatal("stopping the agent stopped a VM")
	}
	eventually(t, "vcenter hears the leave", func() bool { return seen.addr(me) == "" })
	f.mu.Lock()
	puts := f.statusPut
	f.mu.Unlock()

	r2 := startAgent(t, srv.URL, rt, token)
	<-r2.agent.Ready()
	eventually(t, "host alive again at its new address", func() bool { return seen.addr(me) == r2.agent.GossipAddr() })
	time.Sleep(3 * fastTimings().StatusInterval) // several passes
	st, _ := rt.Status(ctx, "uid-web")
	if !st.BootTime.Equal(webBoot) || st.Restarts != webRestarts {
		t.Errorf("agent restart restarted web: boot %v (was %v), restarts %d (was %d)", st.BootTime, webBoot, st.Restarts, webRestarts)
	}
	f.mu.Lock()
	if f.statusPut != puts {
		t.Errorf("adoption rewrote %d unchanged statuses", f.statusPut-puts)
	}
	f.mu.Unlock()

	// Moved elsewhere (vm.migrate): stopped and deleted here.
	f.put(vmObj("web", cluster+"/esx-02", api.PoweredOn, 1))
	eventually(t, "web removed after moving away", func() bool {
		_, err := rt.Status(ctx, "uid-web")
		return errors.Is(err, api.ErrNotFound)
	})
	// Deleted in vcenter.
	f.mu.Lock()
	o := f.objs["/dc1/vm/db"]
	delete(f.objs, "/dc1/vm/db")
	f.rev++
	f.log = append(f.log, api.WatchEvent{Type: api.Deleted, Revision: f.rev, Object: o})
	close(f.change)
	f.change = make(chan struct{})
	f.mu.Unlock()
	f.put(vmObj("db2", me, api.PoweredOn, 0)) // and something new arrives
	eventually(t, "db gone, db2 running", func() bool {
		_, err := rt.Status(ctx, "uid-db")
		s, _ := rt.Status(ctx, "uid-db2")
		return errors.Is(err, api.ErrNotFound) && s.PowerState == api.PoweredOn
	})
}

// failingRuntime fails Start, to show runtime errors in status.message.
type failingRuntime struct{ *sim.Driver }

func (failingRuntime) Start(ctx context.Context, id string) error {
	return fmt.Errorf("image pull failed: %w", api.ErrUnavailable)
}

func TestRuntimeErrorInStatus(t *testing.T) {
	f, srv := newFakeVCenter(t)
	vc, err := membership.Start("vcenter", "127.0.0.1:0", token, fastTimings(), &hosts{alive: map[string]string{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	f.seed = vc.Addr()
	f.put(vmObj("web", me, api.PoweredOn, 0))
	startAgent(t, srv.URL, failingRuntime{sim.New(1, 1, "10.250.9")}, token)
	eventually(t, "error in status.message", func() bool {
		s := status(f.obj("/dc1/vm/web"))
		return s.PowerState == api.PoweredOff && strings.Contains(s.Message, "image pull failed")
	})
}

// TestPowerOnFailedInStatus: a VM its host cannot create is reported
// with status.powerOnFailed (what vSphere HA retries elsewhere on), kept
// while the host retries, and cleared once the VM runs.
func TestPowerOnFailedInStatus(t *testing.T) {
	f, srv := newFakeVCenter(t)
	vc, err := membership.Start("vcenter", "127.0.0.1:0", token, fastTimings(), &hosts{alive: map[string]string{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	f.seed = vc.Addr()
	f.put(vmObj("web", me, api.PoweredOn, 0))
	rt := sim.New(1000, 1024, "10.250.9")
	rt.SetCreateError(func(runtime.VMSpec) error { return fmt.Errorf("image web:1 not found: %w", api.ErrNotFound) })
	startAgent(t, srv.URL, rt, token)
	eventually(t, "status.powerOnFailed set", func() bool {
		s := status(f.obj("/dc1/vm/web"))
		return s.PowerState == api.PoweredOff && strings.HasPrefix(s.PowerOnFailed, "create: image web:1 not found")
	})
	rt.SetCreateError(nil)
	eventually(t, "web running, powerOnFailed cleared", func() bool {
		s := status(f.obj("/dc1/vm/web"))
		return s.PowerState == api.PoweredOn && s.PowerOnFailed == ""
	})
}

func TestNewValidates(t *testing.T) {
	ok := Config{Name: "esx-01", Cluster: cluster, VCenter: "http://127.0.0.1:1", JoinToken: "t", Runtime: sim.New(1, 1, "10.250.0")}
	if _, err := New(ok); err != nil {
		t.Fatalf("New(valid) = %v", err)
	}
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"Name", func(c *Config) { c.Name = "" }},
		{"Name", func(c *Config) { c.Name = "a/b" }},
		{"Cluster", func(c *Config) { c.Cluster = "/dc1/vm" }},
		{"Cluster", func(c *Config) { c.Cluster = "c1" }},
		{"VCenter", func(c *Config) { c.VCenter = "" }},
		{"VCenter", func(c *Config) { c.VCenter = "127.0.0.1:8989" }},
		{"JoinToken", func(c *Config) { c.JoinToken = "" }},
		{"Runtime", func(c *Config) { c.Runtime = nil }},
		{"CPUMHz", func(c *Config) { c.CPUMHz = -1 }},
		{"GossipBind", func(c *Config) { c.GossipBind = "nope" }},
		{"Timings", func(c *Config) { c.Timings = fastTimings(); c.Timings.StatusInterval = 0 }},
	} {
		c := ok
		tc.edit(&c)
		_, err := New(c)
		if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("New with bad %s = %v; want ErrInvalid naming it", tc.field, err)
		}
	}
}

// gatedRuntime holds Start of the VMs in gate until their channel closes,
// and records how many runtime steps overlap, overall and per VM.
type gatedRuntime struct {
	*sim.Driver
	gate map[string]chan struct{}

	mu        sync.Mutex
	active    map[string]int // steps in progress, by VM ID
	total     int
	maxTotal  int
	sameVM    int // times a step began while another step of that VM ran
	stepDelay time.Duration
}

func (g *gatedRuntime) step(id string) func() {
	g.mu.Lock()
	if g.active[id] > 0 {
		g.sameVM++
	}
	g.active[id]++
	g.total++
	g.maxTotal = max(g.maxTotal, g.total)
	g.mu.Unlock()
	time.Sleep(g.stepDelay)
	return func() {
		g.mu.Lock()
		g.active[id]--
		g.total--
		g.mu.Unlock()
	}
}

func (g *gatedRuntime) Create(ctx context.Context, spec runtime.VMSpec) error {
	defer g.step(spec.ID)()
	return g.Driver.Create(ctx, spec)
}

func (g *gatedRuntime) Start(ctx context.Context, id string) error {
	defer g.step(id)()
	if ch := g.gate[id]; ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.Driver.Start(ctx, id)
}

// TestActsConcurrently: a burst of power-ons runs on several VMs at once
// (at most ActionParallel, never two steps of one VM together), and each VM
// is reported as soon as its own steps are done, not after the others'.
func TestActsConcurrently(t *testing.T) {
	f, srv := newFakeVCenter(t)
	vc, err := membership.Start("vcenter", "127.0.0.1:0", token, fastTimings(), &hosts{alive: map[string]string{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	f.seed = vc.Addr()

	release := make(chan struct{})
	rt := &gatedRuntime{
		Driver:    sim.New(100000, 100000, sim.IPPrefix(3)),
		gate:      map[string]chan struct{}{"uid-a-slow": release},
		active:    map[string]int{},
		stepDelay: 20 * time.Millisecond,
	}
	f.put(vmObj("a-slow", me, api.PoweredOn, 0)) // first in Plan's order
	const n = 3 * ActionParallel
	for i := range n {
		f.put(vmObj(fmt.Sprintf("vm%02d", i), me, api.PoweredOn, 0))
	}
	startAgent(t, srv.URL, rt, token)

	eventually(t, "every other VM reported powered on while a-slow is still starting", func() bool {
		for i := range n {
			if status(f.obj(fmt.Sprintf("/dc1/vm/vm%02d", i))).PowerState != api.PoweredOn {
				return false
			}
		}
		return true
	})
	if s := status(f.obj("/dc1/vm/a-slow")); s.PowerState == api.PoweredOn {
		t.Fatalf("a-slow reported powered on before its Start returned: %+v", s)
	}
	close(release)
	eventually(t, "a-slow reported powered on", func() bool {
		return status(f.obj("/dc1/vm/a-slow")).PowerState == api.PoweredOn
	})
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.maxTotal < 2 || rt.maxTotal > ActionParallel {
		t.Errorf("at most %d runtime steps ran at once; want 2..%d", rt.maxTotal, ActionParallel)
	}
	if rt.sameVM != 0 {
		t.Errorf("%d times two steps of one VM ran at once", rt.sameVM)
	}
}

// vmEdited is vmObj with its spec edited, as vm.change or a re-applied Pod would.
func vmEdited(name, host, power string, edit func(*api.VMSpec)) *api.Object {
	o := vmObj(name, host, power, 0)
	var s api.VMSpec
	_ = o.DecodeSpec(&s)
	edit(&s)
	return api.New(api.KindVirtualMachine, o.Path, s)
}

// specRuntime is the sim runtime that counts Create and Recreate calls by
// VM, hides the recorded spec hash of the VMs in legacy (as an older agent's
// containers carry none) and, with recreator, offers runtime.Recreator.
type specRuntime struct {
	*sim.Driver
	mu        sync.Mutex
	legacy    map[string]bool
	creates   map[string]int
	recreates map[string]int
}

func (s *specRuntime) Create(ctx context.Context, spec runtime.VMSpec) error {
	s.mu.Lock()
	s.creates[spec.ID]++
	s.mu.Unlock()
	return s.Driver.Create(ctx, spec)
}

func (s *specRuntime) hide(st runtime.VMState) runtime.VMState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.legacy[st.ID] {
		st.SpecHash = ""
	}
	return st
}

func (s *specRuntime) List(ctx context.Context) ([]runtime.VMState, error) {
	l, err := s.Driver.List(ctx)
	for i := range l {
		l[i] = s.hide(l[i])
	}
	return l, err
}

func (s *specRuntime) Status(ctx context.Context, id string) (runtime.VMState, error) {
	st, err := s.Driver.Status(ctx, id)
	return s.hide(st), err
}

func (s *specRuntime) count(m map[string]int, id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return m[id]
}

// recreatorRuntime is specRuntime with a runtime.Recreator of its own.
type recreatorRuntime struct{ *specRuntime }

func (r recreatorRuntime) Recreate(ctx context.Context, spec runtime.VMSpec, timeout time.Duration) error {
	r.mu.Lock()
	r.recreates[spec.ID]++
	r.mu.Unlock()
	_ = r.Driver.Stop(ctx, spec.ID, timeout)
	_ = r.Driver.Delete(ctx, spec.ID)
	return r.Driver.Create(ctx, spec)
}

// TestSpecChangeRecreates: a change to a VM's allocation or containers
// recreates it on its host with the new spec (a new boot), whether it runs
// or is off; a VM whose spec did not change, or whose containers carry no
// spec hash (made by an older agent), is adopted untouched, also across an
// agent restart.
func TestSpecChangeRecreates(t *testing.T) {
	for _, withRecreator := range []bool{false, true} {
		t.Run(fmt.Sprintf("recreator=%v", withRecreator), func(t *testing.T) {
			testSpecChange(t, withRecreator)
		})
	}
}

func testSpecChange(t *testing.T, withRecreator bool) {
	ctx := context.Background()
	f, srv := newFakeVCenter(t)
	vc, err := membership.Start("vcenter", "127.0.0.1:0", token, fastTimings(), &hosts{alive: map[string]string{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	f.seed = vc.Addr()

	sr := &specRuntime{Driver: sim.New(8000, 8192, sim.IPPrefix(4)), legacy: map[string]bool{"uid-legacy": true},
		creates: map[string]int{}, recreates: map[string]int{}}
	var rt runtime.Runtime = sr
	if withRecreator {
		rt = recreatorRuntime{sr}
	}
	// Left by an older agent: running, no hash recorded, and its spec is not
	// even what vcenter has now. It must be adopted, not recreated.
	_ = sr.Driver.Create(ctx, runtime.VMSpec{ID: "uid-legacy", Path: "/dc1/vm/legacy", Containers: []api.Container{{Name: "old", Image: "busybox:old"}}})
	_ = sr.Driver.Start(ctx, "uid-legacy")
	legacy, _ := sr.Status(ctx, "uid-legacy")
	if legacy.SpecHash != "" || legacy.BootTime.IsZero() {
		t.Fatalf("legacy VM set up wrong: %+v", legacy)
	}
	legacyBoot := legacy.BootTime

	f.put(vmObj("web", me, api.PoweredOn, 0))
	f.put(vmObj("db", me, api.PoweredOff, 0))
	f.put(vmObj("legacy", me, api.PoweredOn, 0))
	r := startAgent(t, srv.URL, rt, token)
	<-r.agent.Ready()
	eventually(t, "web reported powered on", func() bool { return status(f.obj("/dc1/vm/web")).PowerState == api.PoweredOn })
	// db is off: created only at its first power-on; power it on and off so it exists.
	f.put(vmObj("db", me, api.PoweredOn, 0))
	eventually(t, "db powered on", func() bool { return status(f.obj("/dc1/vm/db")).PowerState == api.PoweredOn })
	f.put(vmObj("db", me, api.PoweredOff, 0))
	eventually(t, "db powered off", func() bool { return status(f.obj("/dc1/vm/db")).PowerState == api.PoweredOff })

	recreated := func(id string) int {
		if withRecreator {
			return sr.count(sr.recreates, id)
		}
		return sr.count(sr.creates, id) - 1
	}
	web := status(f.obj("/dc1/vm/web"))
	time.Sleep(time.Millisecond)

	// A new environment for the running web: only a new container does that.
	newWeb := vmEdited("web", me, api.PoweredOn, func(s *api.VMSpec) {
		s.Containers[0].Env = append(s.Containers[0].Env, api.EnvVar{Name: "MODE", Value: "new"})
	})
	want := runtime.SpecHash(specOf(newWeb))
	f.put(newWeb)
	eventually(t, "web recreated with the new spec and running again", func() bool {
		st, err := rt.Status(ctx, "uid-web")
		s := status(f.obj("/dc1/vm/web"))
		return err == nil && st.SpecHash == want && st.PowerState == api.PoweredOn &&
			s.PowerState == api.PoweredOn && s.BootTime.After(web.BootTime)
	})
	if n := recreated("uid-web"); n != 1 {
		t.Errorf("web recreated %d times, want 1", n)
	}

	// vm.change -mem.limit 64 on the running web: resized in place, it keeps
	// running from the same boot.
	webBoot := status(f.obj("/dc1/vm/web")).BootTime
	resized := vmEdited("web", me, api.PoweredOn, func(s *api.VMSpec) {
		s.Containers[0].Env = append(s.Containers[0].Env, api.EnvVar{Name: "MODE", Value: "new"})
		s.Mem.Limit = 64
	})
	f.put(resized)
	eventually(t, "web resized to the new memory limit", func() bool {
		st, err := rt.Status(ctx, "uid-web")
		return err == nil && st.SpecHash == runtime.SpecHash(specOf(resized))
	})
	if st, _ := rt.Status(ctx, "uid-web"); st.PowerState != api.PoweredOn || !st.BootTime.Equal(webBoot) || st.Restarts != 0 {
		t.Errorf("resizing web restarted it: %+v (boot was %v)", st, webBoot)
	}
	if n := recreated("uid-web"); n != 1 {
		t.Errorf("web recreated %d times after a resize, want 1", n)
	}

	// A new image for db while it is off: recreated, not started.
	newDB := vmEdited("db", me, api.PoweredOff, func(s *api.VMSpec) { s.Containers[0].Image = "busybox:1.36" })
	f.put(newDB)
	eventually(t, "db recreated with the new image, still off", func() bool {
		st, err := rt.Status(ctx, "uid-db")
		return err == nil && st.SpecHash == runtime.SpecHash(specOf(newDB)) && st.PowerState == api.PoweredOff
	})
	if s := status(f.obj("/dc1/vm/db")); s.PowerState != api.PoweredOff {
		t.Errorf("db started by its recreate: %+v", s)
	}

	// Agent restart: nothing changed, so nothing is recreated or restarted.
	time.Sleep(3 * fastTimings().StatusInterval)
	r.stop(t)
	webNow, _ := rt.Status(ctx, "uid-web")
	r2 := startAgent(t, srv.URL, rt, token)
	<-r2.agent.Ready()
	time.Sleep(5 * fastTimings().StatusInterval) // several passes
	if st, _ := rt.Status(ctx, "uid-web"); !st.BootTime.Equal(webNow.BootTime) || st.PowerState != api.PoweredOn {
		t.Errorf("agent restart restarted web: boot %v (was %v)", st.BootTime, webNow.BootTime)
	}
	if n := recreated("uid-web"); n != 1 {
		t.Errorf("web recreated %d times in all, want 1", n)
	}
	if n := recreated("uid-db"); n != 1 {
		t.Errorf("db recreated %d times in all, want 1", n)
	}
	st, err := rt.Status(ctx, "uid-legacy")
	if err != nil || st.PowerState != api.PoweredOn || !st.BootTime.Equal(legacyBoot) || sr.count(sr.creates, "uid-legacy") != 0 || sr.count(sr.recreates, "uid-legacy") != 0 {
		t.Errorf("legacy VM without a spec hash was not left alone: %+v, %v", st, err)
	}
	if s := status(f.obj("/dc1/vm/legacy")); s.PowerState != api.PoweredOn {
		t.Errorf("legacy VM reported %+v", s)
	}
}

// specOf is the runtime spec the agent derives from a VM object.
func specOf(o *api.Object) runtime.VMSpec {
	var r reconciler
	return r.desiredOf(o).Spec
}

// stopFailingRuntime cannot stop VMs (a wedged container).
type stopFailingRuntime struct{ *sim.Driver }

func (stopFailingRuntime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	return fmt.Errorf("task did not exit: %w", api.ErrUnavailable)
}

func migrating(o *api.Object, id string) *api.Object {
	var s api.VMSpec
	_ = o.DecodeSpec(&s)
	s.Migration = &api.VMMigration{ID: id, Host: cluster + "/esx-02", User: "admin"}
	o.SetSpec(s)
	return o
}

// A VM being cold-migrated away (spec.migration) is stopped here though its
// spec says poweredOn, and only once it is stopped does the host confirm
// it (status.migrationStopped = the migration's ID), which is what vcenter
// waits for before starting it elsewhere. A VM the host fails to stop is
// never confirmed.
func TestMigrationStopsThenConfirms(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		stopFail bool
	}{{"stops", false}, {"stop fails", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFakeVCenter(t)
			vc, err := membership.Start("vcenter", "127.0.0.1:0", token, fastTimings(), &hosts{alive: map[string]string{}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer vc.Close()
			f.seed = vc.Addr()
			f.put(vmObj("web", me, api.PoweredOn, 0))
			d := sim.New(4000, 8192, sim.IPPrefix(2))
			var rt runtime.Runtime = d
			if tc.stopFail {
				rt = stopFailingRuntime{d}
			}
			startAgent(t, srv.URL, rt, token)
			eventually(t, "web running", func() bool { return status(f.obj("/dc1/vm/web")).PowerState == api.PoweredOn })
			f.put(migrating(vmObj("web", me, api.PoweredOn, 0), "esx-02@7"))
			if !tc.stopFail {
				eventually(t, "web stopped and confirmed", func() bool {
					s := status(f.obj("/dc1/vm/web"))
					return s.MigrationStopped == "esx-02@7" && s.PowerState == api.PoweredOff
				})
				if st, _ := d.Status(ctx, "uid-web"); st.PowerState == api.PoweredOn {
					t.Error("web confirmed stopped while it runs")
				}
				return
			}
			eventually(t, "the failed stop reported", func() bool {
				return strings.Contains(status(f.obj("/dc1/vm/web")).Message, "task did not exit")
			})
			if s := status(f.obj("/dc1/vm/web")); s.MigrationStopped != "" || s.PowerState != api.PoweredOn {
				t.Errorf("web that failed to stop: %s, migrationStopped %q; want running, unconfirmed", s.PowerState, s.MigrationStopped)
			}
		})
	}
}
