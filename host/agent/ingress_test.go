package agent

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/ingress"
	"github.com/podsphere/podsphere/host/sim"
)

func ingressObj(name, clusterPath, svc string) *api.Object {
	return api.New(api.KindIngress, "/dc1/ingress/"+name, api.IngressSpec{Cluster: clusterPath,
		Rules: []api.IngressRule{{Host: name + ".example.com", HTTP: &api.HTTPIngressRuleValue{Paths: []api.HTTPIngressPath{{
			Path: "/", PathType: api.PathTypePrefix,
			Backend: api.IngressBackend{Service: &api.IngressServiceBackend{Name: svc, Port: api.ServiceBackendPort{Number: 80}}}}}}}}})
}

// The agent's proxy serves the cluster's Ingresses over the Services'
// endpoints as vcenter has them, follows a change, and shows its access
// log at GET /ingress/log.
func TestAgentIngressProxyServesTheClustersIngresses(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "web at "+r.Host) }))
	t.Cleanup(backend.Close)
	bhost, bport, _ := net.SplitHostPort(backend.Listener.Addr().String())

	f, srv := newFakeVCenter(t)
	f.put(api.New(api.KindCluster, cluster, api.ClusterSpec{}))
	svc := svcObj("web", "", "10.96.0.10")
	var n int
	for _, c := range bport {
		n = n*10 + int(c-'0')
	}
	svc.SetStatus(api.ServiceStatus{Subsets: []api.EndpointSubset{{Addresses: []api.EndpointAddress{{IP: bhost}},
		Ports: []api.EndpointPort{{Port: n, Protocol: "TCP"}}}}})
	f.put(svc)
	f.put(ingressObj("shop", "", "web"))
	f.put(ingressObj("elsewhere", "/dc1/host/c2", "web"))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	proxy := ingress.New(ingress.Options{})
	a := startAgentWith(t, srv.URL, sim.New(1000, 1024, "10.250.0"), token, func(c *Config) {
		c.Ingress = proxy
		c.IngressListen = ingress.Listeners{HTTP: addr}
	})
	get := func(host string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	eventually(t, "the proxy routes shop.example.com to web", func() bool {
		code, body := get("shop.example.com")
		return code == 200 && body == "web at shop.example.com"
	})
	if code, _ := get("elsewhere.example.com"); code != 404 {
		t.Errorf("another cluster's Ingress is served: %d", code)
	}
	f.put(ingressObj("shop", "", "gone"))
	eventually(t, "a backend naming a missing Service answers 503", func() bool {
		code, body := get("shop.example.com")
		return code == 503 && strings.Contains(body, "/dc1/service/gone does not exist")
	})

	req := httptest.NewRequestWithContext(context.Background(), "GET", "/ingress/log?n=2", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	a.agent.apiHandler().ServeHTTP(rec, req)
	var l api.IngressLog
	if err := json.NewDecoder(rec.Body).Decode(&l); err != nil || len(l.Entries) != 2 || l.Entries[1].Status != 503 || l.Total < 3 {
		t.Errorf("GET /ingress/log: %d %v %+v", rec.Code, err, l)
	}
}
