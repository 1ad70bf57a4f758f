package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		runChild(spec) // never returns
	}
	os.Exit(m.Run())
}

// Paths of the inventory most tests build.
const (
	dc      = "/dc1"
	cluster = "/dc1/host/c1"
	rootRP  = "/dc1/host/c1/Resources"
)

// env is one vcenter serving on loopback with clients for both tokens.
type env struct {
	s     *Server
	dir   string
	admin *client.Client
	join  *client.Client
	url   string
}

func quietLogger(t testing.TB) *log.Logger {
	if testing.Verbose() {
		return log.New(os.Stderr, t.Name()+" ", log.Lmicroseconds)
	}
	return log.New(io.Discard, "", 0)
}

// startVCenter runs the real server on 127.0.0.1:0 over dir (a fresh temp
// dir when empty), without gossip unless cfg asks for it, and closes it at
// the end of the test.
func startVCenter(t testing.TB, cfg Config) *env {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger(t)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := s.Serve(); err != nil {
		s.Close()
		t.Fatalf("Serve: %v", err)
	}
	e := &env{s: s, dir: cfg.DataDir, url: "http://" + s.Addr()}
	e.admin = newClient(t, e.url, s.AdminToken())
	e.join = newClient(t, e.url, s.JoinToken())
	closed := false
	t.Cleanup(func() {
		if !closed {
			closed = true
			s.Close()
		}
	})
	return e
}

func newClient(t testing.TB, url, token string) *client.Client {
	t.Helper()
	c, err := client.New(url, token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// revision is the store revision as the API reports it.
func (e *env) revision(t testing.TB) uint64 {
	t.Helper()
	a, err := e.admin.About(ctxT(t))
	if err != nil {
		t.Fatalf("about: %v", err)
	}
	return a.Revision
}

func (e *env) mustCreate(t testing.TB, o *api.Object) *api.Object {
	t.Helper()
	out, err := e.admin.Create(ctxT(t), o)
	if err != nil {
		t.Fatalf("create %s %s: %v", o.Kind, o.Path, err)
	}
	return out
}

// inventory creates /dc1 and cluster c1 (with spec, nil for defaults).
func (e *env) inventory(t testing.TB, spec *api.ClusterSpec) {
	t.Helper()
	e.mustCreate(t, api.New(api.KindDatacenter, dc, nil))
	var s any
	if spec != nil {
		s = *spec
	}
	e.mustCreate(t, api.New(api.KindCluster, cluster, s))
}

// joinHost registers a sim-sized host through the join-token API, as an
// agent does; it is connected from then on (no gossip runs in API tests).
func (e *env) joinHost(t testing.TB, name string, cpuMHz, memMB int64) {
	t.Helper()
	_, err := e.join.Join(ctxT(t), api.JoinRequest{Name: name, Cluster: cluster, Address: "127.0.0.1:1",
		Runtime: "sim", CPUCapacity: cpuMHz, MemCapacity: memMB})
	if err != nil {
		t.Fatalf("join %s: %v", name, err)
	}
}

func alloc(reservation, limit int64, expandable bool) api.Allocation {
	return api.Allocation{Reservation: reservation, Limit: limit, Expandable: expandable, Shares: api.Shares{Level: "normal"}}
}

func pool(path string, cpu api.Allocation, q *api.QuotaLimits) *api.Object {
	return api.New(api.KindResourcePool, path, api.PoolSpec{CPU: cpu, Mem: alloc(0, -1, true), Quota: q})
}

// vm is a VM of 1 vCPU and 512 MB reserving cpuRes MHz.
func vm(name, poolPath string, cpuRes int64, power string) *api.Object {
	return api.New(api.KindVirtualMachine, dc+"/vm/"+name, api.VMSpec{Pool: poolPath, NumCPU: 1, MemoryMB: 512,
		CPU: alloc(cpuRes, -1, false), Mem: alloc(0, -1, false), PowerState: power})
}

// unlimitedQuota is a quota with every limit off; tests set the ones they need.
func unlimitedQuota() *api.QuotaLimits {
	return &api.QuotaLimits{VMs: -1, ReplicaSets: -1, Services: -1, VolumeClaims: -1, ConfigMaps: -1,
		Secrets: -1, StorageGB: -1, CPUMHz: -1, MemMB: -1}
}

// eventsFor lists the events about target, oldest first.
func (e *env) eventsFor(t testing.TB, target string) []api.EventSpec {
	t.Helper()
	l, err := e.admin.List(ctxT(t), client.ListOptions{Kind: api.KindEvent})
	if err != nil {
		t.Fatal(err)
	}
	var out []api.EventSpec
	for _, o := range l.Items {
		var ev api.EventSpec
		if err := o.DecodeSpec(&ev); err != nil {
			t.Fatal(err)
		}
		if ev.Target == target {
			out = append(out, ev)
		}
	}
	return out
}

// tasksFor lists the tasks about target, oldest first.
func (e *env) tasksFor(t testing.TB, target string) []api.TaskSpec {
	t.Helper()
	l, err := e.admin.List(ctxT(t), client.ListOptions{Kind: api.KindTask})
	if err != nil {
		t.Fatal(err)
	}
	var out []api.TaskSpec
	for _, o := range l.Items {
		var ts api.TaskSpec
		if err := o.DecodeSpec(&ts); err != nil {
			t.Fatal(err)
		}
		if ts.Target == target {
			out = append(out, ts)
		}
	}
	return out
}

func hasEvent(evs []api.EventSpec, typ, substr string) bool {
	for _, ev := range evs {
		if ev.Type == typ && strings.Contains(ev.Message, substr) {
			return true
		}
	}
	return false
}

func eventTypes(evs []api.EventSpec) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type+": "+ev.Message)
	}
	return out
}

// rawRequest sends body as is with token and returns the status and the decoded error body.
func rawRequest(t testing.TB, method, url, token string, body []byte) (int, api.ErrorBody) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var eb api.ErrorBody
	if resp.StatusCode/100 != 2 {
		if err := json.Unmarshal(raw, &eb); err != nil {
			t.Fatalf("%s %s: %d with a body that is not an error: %q", method, url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, eb
}

// eventually polls cond until it holds or the generous deadline passes.
func eventually(t testing.TB, what string, deadline time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for: %s", deadline, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return b
}

// getVM reads VM name of dc1 with its decoded spec and status.
func (e *env) getVM(t testing.TB, name string) (*api.Object, api.VMSpec, api.VMStatus) {
	t.Helper()
	o, err := e.admin.Get(ctxT(t), dc+"/vm/"+name)
	if err != nil {
		t.Fatal(err)
	}
	var spec api.VMSpec
	var st api.VMStatus
	_ = o.DecodeSpec(&spec)
	_ = o.DecodeStatus(&st)
	return o, spec, st
}
