package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/host/agent"
	"github.com/podsphere/podsphere/host/sim"
	"github.com/podsphere/podsphere/vcenter/server"
)

// testTime is the clock of the renderer tests, which print given objects.
var testTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testLab is a real vcenter serving in this process, with real host agents
// (sim runtime) gossiping with it. Command tests run psc against it through
// the real HTTP client, exactly as `psc -u URL -token T` would.
type testLab struct {
	t     *testing.T
	srv   *server.Server
	url   string
	token string
	api   *client.Client // admin client, for setting up and for checking what psc did

	mu     sync.Mutex
	agents map[string]*labHost
}

// labHost is one running host agent.
type labHost struct {
	cancel context.CancelFunc
	done   chan error
	rt     *sim.Driver // its runtime, read directly by drills
}

func labLogger(prefix string) *log.Logger {
	if testing.Verbose() {
		return log.New(os.Stderr, prefix, log.Lmicroseconds)
	}
	return log.New(io.Discard, "", 0)
}

// newLab starts an empty vcenter on loopback ports and stops it (and its
// hosts) at the end of the test.
func newLab(t *testing.T) *testLab {
	t.Helper()
	return newLabConfig(t, server.Config{})
}

// newLabConfig is newLab with cfg's HA timings.
func newLabConfig(t *testing.T, cfg server.Config) *testLab {
	t.Helper()
	s, err := server.New(server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Gossip: "127.0.0.1:0",
		Logger: labLogger("vcenter: "), HATimings: cfg.HATimings})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := s.Serve(); err != nil {
		s.Close()
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() { s.Close() }) // registered first, so it runs after the hosts stopped
	l := &testLab{t: t, srv: s, url: "http://" + s.Addr(), token: s.AdminToken(), agents: map[string]*labHost{}}
	if l.api, err = client.New(l.url, l.token); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *testLab) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	l.t.Cleanup(cancel)
	return ctx
}

func (l *testLab) create(o *api.Object) *api.Object {
	l.t.Helper()
	out, err := l.api.Create(l.ctx(), o)
	if err != nil {
		l.t.Fatalf("create %s %s: %v", o.Kind, o.Path, err)
	}
	return out
}

// get reads an object from vcenter, failing the test if it is not there.
func (l *testLab) get(p string) *api.Object {
	l.t.Helper()
	o, err := l.api.Get(l.ctx(), p)
	if err != nil {
		l.t.Fatalf("get %s: %v", p, err)
	}
	return o
}

// exists says whether vcenter has an object at p.
func (l *testLab) exists(p string) bool {
	l.t.Helper()
	_, err := l.api.Get(l.ctx(), p)
	if err != nil && !errors.Is(err, api.ErrNotFound) {
		l.t.Fatalf("get %s: %v", p, err)
	}
	return err == nil
}

func (l *testLab) poolSpec(p string) api.PoolSpec {
	l.t.Helper()
	var s api.PoolSpec
	if err := l.get(p).DecodeSpec(&s); err != nil {
		l.t.Fatal(err)
	}
	return s
}

func (l *testLab) hostStatus(p string) api.HostStatus {
	l.t.Helper()
	var st api.HostStatus
	_ = l.get(p).DecodeStatus(&st)
	return st
}

// events lists vcenter's events about target, oldest first.
func (l *testLab) events(target string) []api.EventSpec {
	l.t.Helper()
	list, err := l.api.List(l.ctx(), client.ListOptions{Kind: api.KindEvent})
	if err != nil {
		l.t.Fatal(err)
	}
	var out []api.EventSpec
	for _, o := range list.Items {
		if e, ok := eventOf(o, target); ok && e.Target == target {
			out = append(out, e)
		}
	}
	return out
}

// eventTypes lists the types of evs in order, leaving out what host agents
// report (state changes, restarts), which comes whenever the host gets to it.
func eventTypes(evs []api.EventSpec) []string {
	var out []string
	for _, e := range evs {
		if e.User != "host" {
			out = append(out, e.Type)
		}
	}
	return out
}

// startHost runs a host agent with a sim runtime of 20 GHz and 64 GB that
// joins cluster c1 and gossips with vcenter; it returns once the host is
// connected.
func (l *testLab) startHost(name string) { l.t.Helper(); l.startHostWith(name, nil) }

// startHostWith starts a host agent whose configuration edit changes first.
func (l *testLab) startHostWith(name string, edit func(*agent.Config)) {
	l.t.Helper()
	// No IP prefix: like `podsphere host --runtime sim`, VMs get addresses
	// from the pod subnet vcenter assigns the host when it joins.
	rt := sim.New(20000, 65536, "")
	cfg := agent.Config{Name: name, Cluster: "/dc1/host/c1", VCenter: l.url, JoinToken: l.srv.JoinToken(),
		Join: []string{l.srv.GossipAddr()}, GossipBind: "127.0.0.1:0", Runtime: rt,
		Logger: labLogger(name + ": ")}
	if edit != nil {
		edit(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &labHost{cancel: cancel, done: make(chan error, 1), rt: rt}
	go func() { h.done <- a.Run(ctx) }()
	l.t.Cleanup(func() { cancel(); <-h.done })
	l.mu.Lock()
	l.agents[name] = h
	l.mu.Unlock()
	select {
	case <-a.Ready():
	case err := <-h.done:
		l.t.Fatalf("host %s: Run: %v", name, err)
	case <-time.After(20 * time.Second):
		l.t.Fatalf("host %s did not join vcenter", name)
	}
	l.waitHostState(name, api.HostConnected)
}

// stopHost stops a host agent; vcenter then finds it not responding.
func (l *testLab) stopHost(name string) {
	l.t.Helper()
	l.mu.Lock()
	h := l.agents[name]
	l.mu.Unlock()
	h.cancel()
	if err := <-h.done; err != nil {
		l.t.Fatalf("host %s: Run: %v", name, err)
	}
	h.done <- nil // for the cleanup's receive
	l.waitHostState(name, api.HostNotResponding)
}

func (l *testLab) waitHostState(name, state string) {
	l.t.Helper()
	l.eventually(fmt.Sprintf("host %s %s", name, state), func() bool {
		return l.hostStatus("/dc1/host/c1/"+name).State == state
	})
}

// eventually polls cond until it holds, failing the test after 20 s.
func (l *testLab) eventually(what string, cond func() bool) {
	l.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			l.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// psc runs one psc command line against the lab, as a user with
// PSC_URL, PSC_TOKEN, PSC_DATACENTER=dc1 and PSC_CLUSTER=c1 set, and
// returns stdout, stderr and the exit code.
func (l *testLab) psc(stdin string, env map[string]string, args ...string) (string, string, int) {
	l.t.Helper()
	var out, errb bytes.Buffer
	e := &Env{
		In: strings.NewReader(stdin), Out: &out, Err: &errb,
		Now: time.Now, Location: time.UTC, NewAPI: newClient,
	}
	vars := map[string]string{"PSC_URL": l.url, "PSC_TOKEN": l.token, "PSC_DATACENTER": "dc1", "PSC_CLUSTER": "c1"}
	for k, v := range env {
		vars[k] = v
	}
	code := Run(l.ctx(), e, func(k string) string { return vars[k] }, args)
	return out.String(), errb.String(), code
}

// ok runs psc and fails the test unless it exits 0.
func (l *testLab) ok(args ...string) string {
	l.t.Helper()
	out, errOut, code := l.psc("", nil, args...)
	if code != 0 {
		l.t.Fatalf("psc %q: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
	}
	return out
}

// Paths of the lab inventory.
const (
	labCluster = "/dc1/host/c1"
	labRoot    = "/dc1/host/c1/Resources"
	labDev     = "/dc1/host/c1/Resources/dev"
)

func defaultPoolAlloc() api.Allocation {
	return api.Allocation{Limit: -1, Expandable: true, Shares: api.Shares{Level: "normal"}}
}

// labBase is datacenter dc1 with cluster c1 (as cluster.create makes it) and
// the connected hosts named.
func labBase(t *testing.T, hosts ...string) *testLab {
	t.Helper()
	l := newLab(t)
	l.create(api.New(api.KindDatacenter, "/dc1", api.DatacenterSpec{}))
	l.create(api.New(api.KindCluster, labCluster, newClusterSpec()))
	for _, h := range hosts {
		l.startHost(h)
	}
	return l
}

// labInventory is dc1/c1 with hosts esx-01 and esx-02 connected and esx-03
// stopped (not responding); pools dev (6 GHz reserved, fixed), dev/web and
// test; VMs web-01 (dev, on esx-01) and web-02 (dev/web, on esx-02) powered
// on and reported running by their hosts, and db-01 (root pool) powered off.
func labInventory(t *testing.T) *testLab {
	t.Helper()
	l := labBase(t, "esx-01", "esx-02", "esx-03")
	def := defaultPoolAlloc()
	dev := api.PoolSpec{CPU: api.Allocation{Reservation: 6000, Limit: -1, Shares: api.Shares{Level: "normal"}}, Mem: def}
	l.create(api.New(api.KindResourcePool, labDev, dev))
	l.create(api.New(api.KindResourcePool, labDev+"/web", api.PoolSpec{CPU: def, Mem: def}))
	l.create(api.New(api.KindResourcePool, labRoot+"/test", api.PoolSpec{CPU: def, Mem: def}))
	vm := func(name, pool, host string, on bool) {
		spec := api.VMSpec{Pool: pool, Host: host, Pinned: host != "", NumCPU: 1, MemoryMB: 1024, CPU: vmAllocation(), Mem: vmAllocation(),
			PowerState: api.PoweredOff, Containers: []api.Container{{Name: "main", Image: "busybox"}}}
		l.create(api.New(api.KindVirtualMachine, "/dc1/vm/"+name, spec))
		if on {
			if _, err := l.api.Power(l.ctx(), "/dc1/vm/"+name, "on"); err != nil {
				t.Fatalf("power on %s: %v", name, err)
			}
		}
	}
	vm("web-01", labDev, labCluster+"/esx-01", true)
	vm("web-02", labDev+"/web", labCluster+"/esx-02", true)
	vm("db-01", labRoot, "", false)
	l.stopHost("esx-03")
	for _, name := range []string{"web-01", "web-02"} {
		l.eventually(name+" reported running with an IP", func() bool {
			st := vmStatus(l.get("/dc1/vm/" + name))
			return st.PowerState == api.PoweredOn && st.IP != ""
		})
	}
	return l
}

// syncBuffer is a bytes.Buffer a running command writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
