package lab

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

// fakeAgent answers GET /vms as host name with vms, to the bearer "tok".
func fakeAgent(t *testing.T, name string, vms []api.HostVM) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/vms" || r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: "wrong bearer token", Reason: "Unauthorized"})
			return
		}
		_ = json.NewEncoder(w).Encode(api.HostVMList{Host: name, VMs: vms})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func refUIDs(refs []vmRef) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r.uid)
	}
	return out
}

// A sim host's agent is read as what runs there: powered-off VMs do not
// run; a refused connection (the agent is gone, and its VMs with it) is
// "nothing runs"; any other failure is an error, never an empty list.
func TestAgentReader(t *testing.T) {
	ctx := context.Background()
	srv := fakeAgent(t, "esx-01", []api.HostVM{
		{ID: "uid-a", Path: "/dc1/vm/a", PowerState: api.PoweredOn},
		{ID: "uid-b", Path: "/dc1/vm/b", PowerState: api.PoweredOff},
		{ID: "uid-c", Path: "/dc1/vm/c", PowerState: api.Suspended},
	})
	addr := strings.TrimPrefix(srv.URL, "http://")

	refs, err := newAgentReader("esx-01", "", addr, "tok").running(ctx)
	if err != nil || !slices.Equal(refUIDs(refs), []string{"uid-a", "uid-c"}) || refs[0].path != "/dc1/vm/a" {
		t.Errorf("running = %+v, %v; want uid-a (/dc1/vm/a) and the suspended uid-c, not the powered-off uid-b", refs, err)
	}

	if refs, err := newAgentReader("esx-01", "", addr, "wrong").running(ctx); err == nil || !strings.Contains(err.Error(), "wrong bearer token") {
		t.Errorf("with a wrong token: %v, %v; want an error with the agent's reason", refs, err)
	}
	if refs, err := newAgentReader("esx-02", "", addr, "tok").running(ctx); err == nil || !strings.Contains(err.Error(), `answers as host "esx-01"`) {
		t.Errorf("reading esx-02 at esx-01's agent: %v, %v; want an error", refs, err)
	}

	// A port nobody listens on: what a crashed sim host looks like.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	if refs, err := newAgentReader("esx-01", "", gone, "tok").running(ctx); err != nil || len(refs) != 0 {
		t.Errorf("agent gone: %v, %v; want nothing running and no error", refs, err)
	}

	// An agent that answers garbage was not looked at.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) }))
	defer bad.Close()
	if refs, err := newAgentReader("esx-01", "", strings.TrimPrefix(bad.URL, "http://"), "tok").running(ctx); err == nil {
		t.Errorf("an agent answering HTML: %v, no error", refs)
	}
	// A namespace that does not exist fails the read.
	if refs, err := newAgentReader("esx-01", "/nonexistent/netns", addr, "tok").running(ctx); err == nil {
		t.Errorf("reading inside a missing netns: %v, no error", refs)
	}
}

func TestNewSamplerSimArgs(t *testing.T) {
	dir := t.TempDir()
	s := &State{Dir: dir, Runtime: "sim", Hosts: []Host{{Name: "esx-01", NetNS: "psl-esx-01", Address: "10.99.0.11"}},
		Processes: []Process{{Name: "esx-01", Host: "esx-01", Args: []string{"podsphere", "host", "--join-token", "T", "--listen", "10.99.0.11:8990"}}}}
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	sm, err := NewSampler(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	if r := sm.agents["esx-01"]; r == nil || r.url != "http://10.99.0.11:8990/vms" || r.token != "T" {
		t.Errorf("esx-01's reader: %+v", r)
	}
	// A sim lab whose agents serve no API (made before they had --listen).
	s.Processes[0].Args = []string{"podsphere", "host", "--join-token", "T"}
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSampler(dir); err == nil || !strings.Contains(err.Error(), "without --listen") {
		t.Errorf("NewSampler on a sim lab without agent APIs: %v", err)
	}
}
