package ingress

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/lb"
)

// backend is a real HTTP server on loopback answering "NAME PATH" and
// echoing what the proxy told it in headers.
func backend(t *testing.T, name string) (addr string, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-Forwarded-For", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-Forwarded-Host", r.Header.Get("X-Forwarded-Host"))
		w.Header().Set("X-Seen-Forwarded-Proto", r.Header.Get("X-Forwarded-Proto"))
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	}))
	t.Cleanup(s.Close)
	return s.Listener.Addr().String(), hits
}

// deadAddr is a loopback address where nothing listens (connections are refused).
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// service is a Service /dc1/service/NAME port 80 with endpoints addrs
// ("IP:port" on loopback).
func service(name string, addrs ...string) lb.Service {
	s := lb.Service{Path: "/dc1/service/" + name, Name: name,
		Spec: api.ServiceSpec{Ports: []api.ServicePort{{Port: 80, Protocol: "TCP"}}}}
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		var n int
		fmt.Sscan(port, &n)
		s.Status.Subsets = append(s.Status.Subsets, api.EndpointSubset{
			Addresses: []api.EndpointAddress{{IP: host}}, Ports: []api.EndpointPort{{Port: n, Protocol: "TCP"}}})
	}
	return s
}

func path(pathType, p, svc string) api.HTTPIngressPath {
	return api.HTTPIngressPath{PathType: pathType, Path: p,
		Backend: api.IngressBackend{Service: &api.IngressServiceBackend{Name: svc, Port: api.ServiceBackendPort{Number: 80}}}}
}

func table(rules []api.IngressRule, svcs ...lb.Service) *lb.RouteTable {
	in := lb.Ingress{Path: "/dc1/ingress/web", Name: "web", Spec: api.IngressSpec{Rules: rules}}
	m := map[string]lb.Service{}
	for _, s := range svcs {
		m[s.Path] = s
	}
	return lb.Routes(map[string]lb.Ingress{in.Path: in}, m)
}

func oneRoute(svc lb.Service) *lb.RouteTable {
	return table([]api.IngressRule{{HTTP: &api.HTTPIngressRuleValue{Paths: []api.HTTPIngressPath{path("Prefix", "/", svc.Name)}}}}, svc)
}

// front serves p on loopback with the plain-HTTP listener's own HTTP/1.1
// loop, as ListenAndServe does.
func front(t *testing.T, p *Proxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &h1Server{p: p, conns: map[*h1Conn]struct{}{}}
	go s.serve(ln)
	t.Cleanup(func() {
		s.stopping.Store(true)
		ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

// frontStd serves p with net/http's server (ServeHTTP), as the TLS listener does.
func frontStd(t *testing.T, p *Proxy) string {
	t.Helper()
	s := httptest.NewServer(p)
	t.Cleanup(s.Close)
	return s.URL
}

// fronts are both ways of serving a proxy, for tests that run on each.
var fronts = []struct {
	name string
	fn   func(*testing.T, *Proxy) string
}{{"http1", front}, {"net/http", frontStd}}

func get(t *testing.T, c *http.Client, url, host string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (host %s): %v", url, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestProxyRoutesByHostAndPath(t *testing.T) {
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) { testRoutesByHostAndPath(t, f.fn) })
	}
}

func testRoutesByHostAndPath(t *testing.T, front func(*testing.T, *Proxy) string) {
	v1, _ := backend(t, "v1")
	v2, _ := backend(t, "v2")
	api_, _ := backend(t, "api")
	p := New(Options{})
	p.SetRoutes(table([]api.IngressRule{
		{Host: "sphinx-v1.esxcloud.net", HTTP: &api.HTTPIngressRuleValue{Paths: []api.HTTPIngressPath{path("Prefix", "/", "v1"), path("Prefix", "/api", "api")}}},
		{Host: "*.esxcloud.net", HTTP: &api.HTTPIngressRuleValue{Paths: []api.HTTPIngressPath{path("Prefix", "/", "v2")}}},
		{Host: "gone.example.com", HTTP: &api.HTTPIngressRuleValue{Paths: []api.HTTPIngressPath{path("Prefix", "/", "missing")}}},
	}, service("v1", v1), service("v2", v2), service("api", api_)))
	url := front(t, p)
	c := &http.Client{}
	for _, tc := range []struct{ host, path, want string }{
		{"sphinx-v1.esxcloud.net", "/index.html", "v1 /index.html"},
		{"sphinx-v1.esxcloud.net", "/api/items", "api /api/items"},
		{"sphinx-v1.esxcloud.net", "/apifoo", "v1 /apifoo"},
		{"sphinx-v2.esxcloud.net", "/", "v2 /"},
	} {
		code, body, h := get(t, c, url+tc.path, tc.host)
		if code != 200 || body != tc.want {
			t.Errorf("%s%s: %d %q, want %q", tc.host, tc.path, code, body, tc.want)
		}
		if h.Get("X-Seen-Host") != tc.host || h.Get("X-Seen-Forwarded-Host") != tc.host || h.Get("X-Seen-Forwarded-Proto") != "http" || h.Get("X-Seen-Forwarded-For") != "127.0.0.1" {
			t.Errorf("%s%s: backend saw Host %q X-Forwarded-Host %q -Proto %q -For %q", tc.host, tc.path,
				h.Get("X-Seen-Host"), h.Get("X-Seen-Forwarded-Host"), h.Get("X-Seen-Forwarded-Proto"), h.Get("X-Seen-Forwarded-For"))
		}
	}
	code, body, _ := get(t, c, url+"/", "gone.example.com")
	if code != 503 || !strings.Contains(body, "Service /dc1/service/missing does not exist") {
		t.Errorf("missing Service: %d %q, want 503 naming it", code, body)
	}
	code, body, _ = get(t, c, url+"/", "other.example.com")
	if code != 404 || !strings.Contains(body, "no Ingress rule matches host") {
		t.Errorf("no route: %d %q, want 404", code, body)
	}
	// The answer can reach the client just before its log entry is kept.
	entries, total := p.Log().Last(0)
	for i := 0; i < 100 && total < 6; i++ {
		time.Sleep(10 * time.Millisecond)
		entries, total = p.Log().Last(0)
	}
	if total != 6 || entries[0].Host != "sphinx-v1.esxcloud.net" || entries[0].Status != 200 || entries[0].Upstream != v1 || entries[4].Status != 503 {
		t.Errorf("access log (%d): %+v", total, entries)
	}
}

func TestProxyRetriesAnotherEndpointWhenOneRefuses(t *testing.T) {
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) { testProxyRetriesAnotherEndpointWhenOneRefuses(t, f.fn) })
	}
}

func testProxyRetriesAnotherEndpointWhenOneRefuses(t *testing.T, front func(*testing.T, *Proxy) string) {
	live, hits := backend(t, "live")
	dead := deadAddr(t)
	p := New(Options{})
	p.SetRoutes(oneRoute(service("web", dead, live)))
	url := front(t, p)
	for i := range 10 {
		if code, body, _ := get(t, http.DefaultClient, fmt.Sprintf("%s/%d", url, i), ""); code != 200 || !strings.HasPrefix(body, "live") {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	if hits.Load() != 10 {
		t.Errorf("live endpoint answered %d of 10", hits.Load())
	}
	if !p.Health().Ejected(dead, time.Now()) {
		t.Errorf("the refusing endpoint is not ejected: %+v", p.Health().Failing())
	}
	// A POST that no endpoint took gets 502 naming what was tried.
	p2 := New(Options{})
	p2.SetRoutes(oneRoute(service("web", dead)))
	resp, err := http.Post(front(t, p2)+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || !strings.Contains(string(b), "no endpoint answered") {
		t.Errorf("POST to a refusing endpoint: %d %q, want 502", resp.StatusCode, b)
	}
}

func TestProxyEjectsAndReadmits(t *testing.T) {
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) { testProxyEjectsAndReadmits(t, f.fn) })
	}
}

func testProxyEjectsAndReadmits(t *testing.T, front func(*testing.T, *Proxy) string) {
	var now atomic.Pointer[time.Time]
	t0 := time.Unix(1_000_000, 0)
	now.Store(&t0)
	clock := func() time.Time { return *now.Load() }
	p := New(Options{Now: clock, Backoff: time.Second})
	other, _ := backend(t, "other")
	flaky := deadAddr(t)
	p.SetRoutes(oneRoute(service("web", flaky, other)))
	url := front(t, p)
	for range 4 {
		get(t, http.DefaultClient, url+"/", "")
	}
	if !p.Health().Ejected(flaky, clock()) {
		t.Fatal("refusing endpoint not ejected")
	}
	// It comes back, but stays ejected until its backoff is over.
	ln, err := net.Listen("tcp", flaky)
	if err != nil {
		t.Skipf("port %s taken again meanwhile: %v", flaky, err)
	}
	var backHits atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { backHits.Add(1); io.WriteString(w, "flaky") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	for range 4 {
		get(t, http.DefaultClient, url+"/", "")
	}
	if backHits.Load() != 0 {
		t.Errorf("ejected endpoint got %d requests during its backoff", backHits.Load())
	}
	t1 := t0.Add(1500 * time.Millisecond)
	now.Store(&t1)
	for range 4 {
		get(t, http.DefaultClient, url+"/", "")
	}
	if backHits.Load() == 0 {
		t.Error("readmitted endpoint got no request after its backoff")
	}
	if len(p.Health().Failing()) != 0 {
		t.Errorf("a success should clear the record: %+v", p.Health().Failing())
	}
}

func TestHealthBackoffDoubles(t *testing.T) {
	h := NewHealth(time.Second, 4*time.Second)
	t0 := time.Unix(0, 0)
	h.Failure("a", t0)
	h.Failure("a", t0.Add(100*time.Millisecond)) // same ejection
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{{999 * time.Millisecond, true}, {time.Second, false}} {
		if got := h.Ejected("a", t0.Add(c.at)); got != c.want {
			t.Errorf("at %v: ejected %v, want %v", c.at, got, c.want)
		}
	}
	t1 := t0.Add(time.Second)
	h.Failure("a", t1) // fails again once readmitted: 2 s
	if !h.Ejected("a", t1.Add(1999*time.Millisecond)) || h.Ejected("a", t1.Add(2*time.Second)) {
		t.Error("second ejection is not 2 s")
	}
	t2 := t1.Add(2 * time.Second)
	h.Failure("a", t2)
	t3 := t2.Add(4 * time.Second)
	h.Failure("a", t3) // capped at 4 s
	if h.Ejected("a", t3.Add(4*time.Second)) {
		t.Error("backoff not capped at 4 s")
	}
	h.Success("a")
	if h.Ejected("a", t3) {
		t.Error("success did not readmit")
	}
}

// A WebSocket (any Upgrade) passes through: the proxy hands the two
// connections to each other and bytes flow both ways.
func TestProxyWebSocketEcho(t *testing.T) {
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) { testProxyWebSocketEcho(t, f.fn) })
	}
}

func testProxyWebSocketEcho(t *testing.T, front func(*testing.T, *Proxy) string) {
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw) // echo
	}))
	t.Cleanup(ws.Close)
	p := New(Options{})
	p.SetRoutes(oneRoute(service("ws", ws.Listener.Addr().String())))
	url := front(t, p)
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /chat HTTP/1.1\r\nHost: chat.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	for _, msg := range []string{"hello", "podsphere"} {
		io.WriteString(conn, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("echo of %q: %q %v", msg, got, err)
		}
	}
}

// A stream (server-sent events) reaches the client as it is written, not
// when the backend finishes.
func TestProxyStreamsAsWritten(t *testing.T) {
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) { testProxyStreamsAsWritten(t, f.fn) })
	}
}

func testProxyStreamsAsWritten(t *testing.T, front func(*testing.T, *Proxy) string) {
	release := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: second\n\n")
	}))
	t.Cleanup(s.Close)
	defer close(release)
	p := New(Options{})
	p.SetRoutes(oneRoute(service("sse", s.Listener.Addr().String())))
	resp, err := http.Get(front(t, p) + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
}

// Swapping the route table ten times a second under steady load loses no
// request: every one is answered 200 by one of the two backends.
func TestProxyReconfigureUnderLoadLosesNothing(t *testing.T) {
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) { testProxyReconfigureUnderLoadLosesNothing(t, f.fn) })
	}
}

func testProxyReconfigureUnderLoadLosesNothing(t *testing.T, front func(*testing.T, *Proxy) string) {
	a, aHits := backend(t, "a")
	b, bHits := backend(t, "b")
	tables := []*lb.RouteTable{oneRoute(service("web", a)), oneRoute(service("web", b)), oneRoute(service("web", a, b))}
	p := New(Options{})
	p.SetRoutes(tables[0])
	url := front(t, p)
	res := runLoad(url, 8, 2*time.Second, func(i int) { p.SetRoutes(tables[i%len(tables)]) })
	if res.failed != 0 || res.sent == 0 {
		t.Fatalf("%d of %d requests failed while reconfiguring %d times: %v", res.failed, res.sent, res.swaps, res.firstErr)
	}
	if aHits.Load() == 0 || bHits.Load() == 0 || res.swaps < 15 {
		t.Errorf("a %d, b %d requests, %d swaps: the swaps did not take effect", aHits.Load(), bHits.Load(), res.swaps)
	}
	t.Logf("%d requests, %d route swaps, 0 failed", res.sent, res.swaps)
}

type loadResult struct {
	sent, failed, swaps int
	firstErr            error
}

// runLoad sends GETs over workers keep-alive connections for d while
// calling swap every 100 ms (10 times a second).
func runLoad(url string, workers int, d time.Duration, swap func(int)) loadResult {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var sent, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				sent.Add(1)
				resp, err := c.Get(url + "/")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	swaps := 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			swaps++
			swap(swaps)
		}
	}
	wg.Wait()
	r := loadResult{sent: int(sent.Load()), failed: int(failed.Load()), swaps: swaps}
	if e := firstErr.Load(); e != nil {
		r.firstErr = *e
	}
	return r
}

// TLS is terminated with the certificate the Ingress names (a file pair
// in the certificate directory), and TLS clients speak HTTP/2.
func TestProxyTLSAndHTTP2(t *testing.T) {
	dir := t.TempDir()
	pool := writeCert(t, dir, "sphinx-tls", "sphinx-v1.esxcloud.net")
	web, _ := backend(t, "web")
	p := New(Options{CertDir: dir})
	in := lb.Ingress{Path: "/dc1/ingress/web", Spec: api.IngressSpec{
		TLS:   []api.IngressTLS{{Hosts: []string{"sphinx-v1.esxcloud.net"}, SecretName: "sphinx-tls"}},
		Rules: []api.IngressRule{{Host: "sphinx-v1.esxcloud.net", HTTP: &api.HTTPIngressRuleValue{Paths: []api.HTTPIngressPath{path("Prefix", "/", "web")}}}}}}
	svc := service("web", web)
	if err := p.ApplyLB(context.Background(), &lb.State{Ingresses: map[string]lb.Ingress{in.Path: in}, Services: map[string]lb.Service{svc.Path: svc}}); err != nil {
		t.Fatal(err)
	}
	plain, tlsAddr := deadAddr(t), deadAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.ListenAndServe(ctx, Listeners{HTTP: plain, HTTPS: tlsAddr}) }()
	t.Cleanup(func() { cancel(); <-done })
	c := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "sphinx-v1.esxcloud.net"}}}
	var resp *http.Response
	var err error
	for range 50 { // the listeners come up in the goroutine
		req, _ := http.NewRequest("GET", "https://"+tlsAddr+"/secure", nil)
		req.Host = "sphinx-v1.esxcloud.net"
		if resp, err = c.Do(req); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || string(body) != "web /secure" || resp.Header.Get("X-Seen-Forwarded-Proto") != "https" {
		t.Errorf("%s %q X-Forwarded-Proto %q: want HTTP/2, the backend, https", resp.Proto, body, resp.Header.Get("X-Seen-Forwarded-Proto"))
	}
}

// writeCert writes NAME.crt / NAME.key, a self-signed certificate for
// host, and returns a pool trusting it.
func writeCert(t *testing.T, dir, name, host string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

func TestAccessLogRing(t *testing.T) {
	l := NewAccessLog(3)
	for i := range 5 {
		l.Add(Entry{Status: 200 + i})
	}
	got, total := l.Last(0)
	if total != 5 || len(got) != 3 || got[0].Status != 202 || got[2].Status != 204 {
		t.Errorf("%d %+v", total, got)
	}
	if got, _ := l.Last(2); len(got) != 2 || got[0].Status != 203 {
		t.Errorf("last 2: %+v", got)
	}
}
