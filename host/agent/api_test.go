package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/runtime"
	"github.com/podsphere/podsphere/host/sim"
)

// The agent answers every sentinel as vcenter does (api.Sentinels).
func TestWriteAPIError(t *testing.T) {
	for _, s := range api.Sentinels {
		rec := httptest.NewRecorder()
		writeAPIError(rec, fmt.Errorf("vm 42: %w", s.Err))
		var eb api.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil {
			t.Fatal(err)
		}
		if rec.Code != s.HTTPStatus || eb.Reason != s.Reason || eb.Error != api.Message(fmt.Errorf("vm 42: %w", s.Err)) {
			t.Errorf("%v: answered %d %+v; want %d %s", s.Err, rec.Code, eb, s.HTTPStatus, s.Reason)
		}
	}
	rec := httptest.NewRecorder()
	writeAPIError(rec, fmt.Errorf("containerd: VM 42: %w", api.ErrNotFound))
	var eb api.ErrorBody
	_ = json.Unmarshal(rec.Body.Bytes(), &eb)
	if eb.Error != "containerd: VM 42: not found" {
		t.Errorf("not found message = %q", eb.Error)
	}
}

// listFailing is a runtime that cannot say what it runs.
type listFailing struct{ *sim.Driver }

func (listFailing) List(context.Context) ([]runtime.VMState, error) {
	return nil, fmt.Errorf("containerd: connection refused: %w", api.ErrUnavailable)
}

// GET /vms answers what the runtime runs, each VM with its power state,
// only to a caller with the join token; a runtime that cannot list is an
// error, never an empty list.
func TestAPIListsVMs(t *testing.T) {
	ctx := context.Background()
	rt := sim.New(4000, 4096, "10.250.7")
	for _, id := range []string{"uid-web", "uid-db"} {
		spec := runtime.VMSpec{ID: id, Path: "/dc1/vm/" + strings.TrimPrefix(id, "uid-"), NumCPU: 1, MemoryMB: 64,
			Containers: []api.Container{{Name: "main", Image: "busybox"}}}
		if err := rt.Create(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	if err := rt.Start(ctx, "uid-web"); err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Name: "esx-01", Cluster: cluster, VCenter: "http://127.0.0.1:1", JoinToken: token, Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	get := func(a *Agent, bearer string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/vms", nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		rec := httptest.NewRecorder()
		a.apiHandler().ServeHTTP(rec, req)
		return rec
	}

	rec := get(a, token)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /vms = %d %s", rec.Code, rec.Body)
	}
	var l api.HostVMList
	if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil {
		t.Fatal(err)
	}
	want := []api.HostVM{{ID: "uid-db", Path: "/dc1/vm/db", PowerState: api.PoweredOff}, {ID: "uid-web", Path: "/dc1/vm/web", PowerState: api.PoweredOn}}
	if l.Host != "esx-01" || !slices.Equal(l.VMs, want) {
		t.Errorf("GET /vms = %+v; want host esx-01 with %+v", l, want)
	}

	for _, bearer := range []string{"", "not-the-join-token"} {
		if rec := get(a, bearer); rec.Code != http.StatusUnauthorized || strings.Contains(rec.Body.String(), "uid-web") {
			t.Errorf("GET /vms with bearer %q = %d %s; want 401 and no VMs", bearer, rec.Code, rec.Body)
		}
	}

	empty, err := New(Config{Name: "esx-02", Cluster: cluster, VCenter: "http://127.0.0.1:1", JoinToken: token, Runtime: sim.New(1, 1, "10.250.8")})
	if err != nil {
		t.Fatal(err)
	}
	if rec := get(empty, token); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"vms":[]`) {
		t.Errorf("GET /vms on a host running nothing = %d %s; want an empty list", rec.Code, rec.Body)
	}

	broken, err := New(Config{Name: "esx-03", Cluster: cluster, VCenter: "http://127.0.0.1:1", JoinToken: token, Runtime: listFailing{sim.New(1, 1, "10.250.9")}})
	if err != nil {
		t.Fatal(err)
	}
	rec = get(broken, token)
	var eb api.ErrorBody
	_ = json.Unmarshal(rec.Body.Bytes(), &eb)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(eb.Error, "esx-03") || !strings.Contains(eb.Error, "connection refused") {
		t.Errorf("GET /vms with a failing runtime = %d %+v; want 503 naming the host and the cause", rec.Code, eb)
	}
}

// POST /stop stops the VM in the runtime (the HA process's isolation
// response on simulated hosts); a bad request or an unknown VM is refused
// and stops nothing.
func TestAPIStopsVM(t *testing.T) {
	ctx := context.Background()
	rt := sim.New(4000, 4096, "10.250.6")
	for _, id := range []string{"uid-web", "uid-db"} {
		if err := rt.Create(ctx, runtime.VMSpec{ID: id, Path: "/dc1/vm/" + id, NumCPU: 1, MemoryMB: 64,
			Containers: []api.Container{{Name: "main", Image: "busybox"}}}); err != nil {
			t.Fatal(err)
		}
		if err := rt.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	a, err := New(Config{Name: "esx-01", Cluster: cluster, VCenter: "http://127.0.0.1:1", JoinToken: token, Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	post := func(bearer, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/stop", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+bearer)
		rec := httptest.NewRecorder()
		a.apiHandler().ServeHTTP(rec, req)
		return rec
	}
	power := func(id string) string {
		st, err := rt.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return st.PowerState
	}
	for _, tc := range []struct {
		bearer, body string
		code         int
	}{
		{"wrong", `{"vm":"uid-web"}`, http.StatusUnauthorized},
		{token, `{"vm":""}`, http.StatusBadRequest},
		{token, `{"vm":"uid-web","timeoutSeconds":-1}`, http.StatusBadRequest},
		{token, `{"vm":"uid-web","force":true}`, http.StatusBadRequest},
		{token, `{"vm":"uid-nope"}`, http.StatusNotFound},
	} {
		if rec := post(tc.bearer, tc.body); rec.Code != tc.code {
			t.Errorf("POST /stop %s (bearer %s) = %d %s; want %d", tc.body, tc.bearer, rec.Code, rec.Body, tc.code)
		}
	}
	if power("uid-web") != api.PoweredOn {
		t.Fatal("a refused stop request stopped uid-web")
	}
	if rec := post(token, `{"vm":"uid-web"}`); rec.Code != http.StatusNoContent {
		t.Fatalf("POST /stop uid-web = %d %s", rec.Code, rec.Body)
	}
	if power("uid-web") != api.PoweredOff || power("uid-db") != api.PoweredOn {
		t.Errorf("after stopping uid-web: web %s, db %s; want only web powered off", power("uid-web"), power("uid-db"))
	}
}
