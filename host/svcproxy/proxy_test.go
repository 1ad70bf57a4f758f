package svcproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/lb"
)

// syncs records which kind of sync the proxy asked its backend for.
type syncs struct {
	calls []string
	fail  bool
	gen   *lb.Generator
	last  *lb.Ruleset
}

func (s *syncs) Name() string                 { return "recording" }
func (s *syncs) Remove(context.Context) error { return nil }
func (s *syncs) Sync(_ context.Context, st *lb.State, full bool) error {
	if s.gen == nil {
		s.gen = lb.NewGenerator()
	}
	rs := s.gen.Rules(st)
	if full {
		s.calls = append(s.calls, "full")
	} else {
		w, r := lb.Diff(s.last, rs)
		s.calls = append(s.calls, fmt.Sprintf("update %d/%d", len(w), len(r)))
	}
	if s.fail {
		return errors.New("iptables-restore: exit status 1")
	}
	s.last = rs
	return nil
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func oneService(hc int, local bool) *lb.State {
	host := "/dc1/host/c1/esx-02"
	if local {
		host = self
	}
	s := lb.Service{Path: "/dc1/service/shop/web", Namespace: "shop", Name: "web", Spec: api.ServiceSpec{
		Type: api.ServiceLoadBalancer, ClusterIP: "10.96.0.10", ExternalTrafficPolicy: "Local", HealthCheckNodePort: hc,
		Ports: []api.ServicePort{{Port: 80, NodePort: 30080}}}}
	s.Status.Subsets = []api.EndpointSubset{{Addresses: []api.EndpointAddress{{IP: "10.244.1.5", Host: host}}, Ports: []api.EndpointPort{{Port: 80, Protocol: "TCP"}}}}
	return &lb.State{Self: self, Hosts: map[string]lb.Host{self: {PodSubnet: "10.244.1.0/24"}}, Services: map[string]lb.Service{s.Path: s}}
}

func TestProxySyncsFullThenChanges(t *testing.T) {
	be := &syncs{}
	p, err := New(Config{Backend: be, HealthBind: "127.0.0.1", Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	hc := freePort(t)
	ctx := context.Background()
	for _, st := range []*lb.State{oneService(hc, true), oneService(hc, true), oneService(hc, false)} {
		if err := p.ApplyLB(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	be.fail = true
	if err := p.ApplyLB(ctx, oneService(hc, false)); err == nil {
		t.Error("a failed full sync was not reported")
	}
	be.fail = false
	_ = p.ApplyLB(ctx, oneService(hc, false))
	_ = p.ApplyLB(ctx, oneService(hc, false))
	// First a full sync (adoption); an unchanged state writes nothing; the
	// endpoint moving to another host rewrites its endpoint chain (no
	// hairpin now), the ext chain (no local endpoints) and the filter
	// chain (which drops outside traffic now), and deletes the chain of
	// local endpoints. After a failure the next sync is full.
	want := []string{"full", "update 0/0", "update 3/1", "update 0/0", "full", "update 0/0"}
	if fmt.Sprint(be.calls) != fmt.Sprint(want) {
		t.Errorf("syncs = %v, want %v", be.calls, want)
	}
}

func TestHealthCheckNodePort(t *testing.T) {
	p, err := New(Config{Backend: &syncs{}, HealthBind: "127.0.0.1", Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	hc := freePort(t)
	check := func(wantCode, wantLocal int) {
		t.Helper()
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", hc))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b hcBody
		if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != wantCode || b.LocalEndpoints != wantLocal || b.Service.Namespace != "shop" || b.Service.Name != "web" || !b.ServiceProxyHealthy {
			t.Errorf("health check = %d %+v, want %d with %d local endpoints of shop/web", resp.StatusCode, b, wantCode, wantLocal)
		}
	}
	ctx := context.Background()
	if err := p.ApplyLB(ctx, oneService(hc, true)); err != nil {
		t.Fatal(err)
	}
	check(http.StatusOK, 1)
	if err := p.ApplyLB(ctx, oneService(hc, false)); err != nil {
		t.Fatal(err)
	}
	check(http.StatusServiceUnavailable, 0)
	// The Service goes: its port closes.
	if err := p.ApplyLB(ctx, &lb.State{Self: self}); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", hc)); err == nil {
		t.Error("the health check port of a removed Service still answers")
	}
}

func TestNewBackendRefusesUnknownNames(t *testing.T) {
	_, err := NewBackend(context.Background(), "ebpf", "", log.New(io.Discard, "", 0))
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "--service-rules-backend") {
		t.Errorf("NewBackend(ebpf) = %v, want api.ErrInvalid naming the flag", err)
	}
}
