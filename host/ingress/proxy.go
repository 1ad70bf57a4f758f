// Package ingress is the host's L7 proxy: it serves its cluster's Ingress
// objects (what NSX Advanced Load Balancer virtual services do in a
// vSphere shop), routing HTTP by host name and path to the ready endpoints
// of Services. Routes come from lb.Routes and are swapped whole
// (atomic.Pointer): a change applies to the next request with no reload,
// and requests in flight and open connections are not touched.
package ingress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podsphere/podsphere/lb"
)

// Defaults, each with its reason.
const (
	// DialTimeout bounds a connection attempt to an endpoint: endpoints are
	// on the hosts' VM bridges, a round trip is well under a millisecond,
	// so two seconds means the endpoint is gone, and the request moves on.
	DialTimeout = 2 * time.Second
	// MaxIdlePerEndpoint keeps enough warm connections per endpoint for a
	// busy route (a new TCP connection per request halves throughput).
	MaxIdlePerEndpoint = 512
	// IdleTimeout closes connections to endpoints unused this long
	// (ingress-nginx's upstream keepalive_timeout is 60 s).
	IdleTimeout = 60 * time.Second
	// MaxTries is how many endpoints an idempotent request tries when
	// connecting fails (nginx's proxy_next_upstream_tries is unlimited;
	// three endpoints refusing means the Service is down, say so).
	MaxTries = 3
	// LogEntries is how many requests the access log keeps.
	LogEntries = 1000
)

// Proxy is the Ingress proxy. Its zero value is not usable: use New.
type Proxy struct {
	routes    atomic.Pointer[lb.RouteTable]
	transport *http.Transport // upgrades and Expect: 100-continue
	conns     *endpointConns  // everything else (transport.go)
	rp        *httputil.ReverseProxy
	health    *Health
	log       *AccessLog
	certs     *Certs
	next      atomic.Uint64 // round robin over a backend's endpoints
	now       func() time.Time
	pool      sync.Pool // *exchange
}

// Options configure a Proxy; zero fields take the defaults above.
type Options struct {
	// CertDir holds NAME.crt / NAME.key pairs for TLS termination (NAME is
	// an Ingress's tls[].secretName); "" serves no TLS.
	CertDir string
	// LogEntries is the size of the access log ring.
	LogEntries int
	// Now is the clock of ejection and the access log (tests move it).
	Now func() time.Time
	// Backoff is the first ejection of a failing endpoint (doubles per
	// consecutive ejection up to MaxBackoff).
	Backoff, MaxBackoff time.Duration
}

// New makes a proxy serving no routes (every request gets 404 until
// SetRoutes).
func New(o Options) *Proxy {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	p := &Proxy{now: now, health: NewHealth(o.Backoff, o.MaxBackoff), log: NewAccessLog(max(o.LogEntries, 0))}
	if o.LogEntries == 0 {
		p.log = NewAccessLog(LogEntries)
	}
	if o.CertDir != "" {
		p.certs = &Certs{Dir: o.CertDir}
	}
	p.transport = &http.Transport{
		DialContext:           (&net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          0, // no total cap: the per-endpoint one bounds it
		MaxIdleConnsPerHost:   MaxIdlePerEndpoint,
		IdleConnTimeout:       IdleTimeout,
		ExpectContinueTimeout: time.Second,
		// The client's Accept-Encoding goes through as it is; the proxy
		// neither adds its own nor decompresses.
		DisableCompression: true,
		WriteBufferSize:    32 << 10,
		ReadBufferSize:     32 << 10,
	}
	p.conns = newEndpointConns(MaxIdlePerEndpoint, IdleTimeout, now)
	p.rp = &httputil.ReverseProxy{
		Rewrite:      p.rewrite,
		Transport:    roundTripper{p},
		BufferPool:   bufferPool{},
		ErrorHandler: p.upstreamError,
		ErrorLog:     nil,
		// Streams (text/event-stream, responses without a length) are
		// flushed at every write by ReverseProxy itself (flush interval
		// -1); fixed-length bodies are copied through its buffers.
		FlushInterval: 0,
	}
	p.pool.New = func() any { return &exchange{} }
	return p
}

// SetRoutes swaps the route table: the next request uses t; requests in
// flight finish on the table they started with.
func (p *Proxy) SetRoutes(t *lb.RouteTable) {
	p.routes.Store(t)
	if p.certs != nil {
		p.certs.SetNames(t.TLS)
	}
}

// Routes is the table being served (nil before the first SetRoutes).
func (p *Proxy) Routes() *lb.RouteTable { return p.routes.Load() }

// Name is the proxy's name among the agent's load-balancing consumers.
func (p *Proxy) Name() string { return "ingress" }

// ApplyLB serves the Ingresses of st over its Services.
func (p *Proxy) ApplyLB(_ context.Context, st *lb.State) error {
	p.SetRoutes(lb.Routes(st.Ingresses, st.Services))
	if p.certs != nil {
		return p.certs.Reload()
	}
	return nil
}

// Close closes the idle connections to endpoints.
func (p *Proxy) Close() {
	p.conns.Close()
	p.transport.CloseIdleConnections()
}

// Log is the access log (newest last).
func (p *Proxy) Log() *AccessLog { return p.log }

// Health is the passive health of the endpoints.
func (p *Proxy) Health() *Health { return p.health }

// exchange is one request's state, pooled so routing allocates nothing.
type exchange struct {
	http.ResponseWriter
	p       *Proxy
	backend *lb.Backend
	tried   [MaxTries]string
	tries   int
	status  int
	bytes   int64
}

func (e *exchange) WriteHeader(code int) {
	if e.status == 0 {
		e.status = code
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *exchange) Write(b []byte) (int, error) {
	if e.status == 0 {
		e.status = http.StatusOK
	}
	n, err := e.ResponseWriter.Write(b)
	e.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController (ReverseProxy's flushes and
// WebSocket hijack) reach the server's writer.
func (e *exchange) Unwrap() http.ResponseWriter { return e.ResponseWriter }

type exchangeKey struct{}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := p.now()
	e := p.pool.Get().(*exchange)
	*e = exchange{ResponseWriter: w, p: p}
	route := p.routes.Load().Match(r.Host, r.URL.Path)
	ingress := ""
	switch {
	case route == nil:
		e.plain(http.StatusNotFound, fmt.Sprintf("no Ingress rule matches host %q path %q, and no Ingress has a defaultBackend\n", r.Host, r.URL.Path))
	case len(route.Backend.Endpoints) == 0:
		ingress = route.Ingress
		e.plain(http.StatusServiceUnavailable, fmt.Sprintf("Ingress %s: %s (route %s%s)\n", route.Ingress, route.Backend.Reason, route.Host, route.Path))
	default:
		ingress = route.Ingress
		e.backend = route.Backend
		e.tried[0] = p.pick(route.Backend.Endpoints, e.tried[:0])
		e.tries = 1
		p.rp.ServeHTTP(e, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, e)))
	}
	upstream := ""
	if e.tries > 0 {
		upstream = e.tried[e.tries-1]
	}
	p.log.Add(Entry{Time: start, Client: r.RemoteAddr, Method: r.Method, Host: r.Host, Path: r.URL.Path, Proto: r.Proto,
		Status: e.status, Bytes: e.bytes, Duration: p.now().Sub(start), Ingress: ingress, Upstream: upstream, Tries: e.tries})
	*e = exchange{}
	p.pool.Put(e)
}

func (e *exchange) plain(code int, body string) {
	h := e.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	e.WriteHeader(code)
	_, _ = io.WriteString(e, body)
}

// pick is the next endpoint in round robin that is neither ejected nor
// already tried; when every one is ejected it still picks one (a
// Service whose endpoints all failed is better tried than refused).
func (p *Proxy) pick(eps []string, tried []string) string {
	n := uint64(len(eps))
	start := p.next.Add(1)
	now := p.now()
	var fallback string
	for i := range n {
		ep := eps[(start+i)%n]
		if contains(tried, ep) {
			continue
		}
		if !p.health.Ejected(ep, now) {
			return ep
		}
		if fallback == "" {
			fallback = ep
		}
	}
	return fallback
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// rewrite is the request to the endpoint: the client's Host kept (the
// backend's virtual hosts see what the client asked for), X-Forwarded-For
// / -Host / -Proto set from this connection (ones the client sent are
// replaced, as ingress-nginx does unless told to trust them).
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	e := pr.In.Context().Value(exchangeKey{}).(*exchange)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = e.tried[0]
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
}

// upstreamError answers a request no endpoint took: 502, naming them.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	e, _ := r.Context().Value(exchangeKey{}).(*exchange)
	if errors.Is(err, context.Canceled) {
		// The client went away: nobody reads an answer (nginx logs 499).
		if e != nil {
			e.status = 499
		}
		return
	}
	msg := fmt.Sprintf("%v\n", err)
	if e != nil {
		msg = fmt.Sprintf("Service %s: no endpoint answered (tried %v): %v\n", e.backend.Service, e.tried[:e.tries], err)
		e.plain(http.StatusBadGateway, msg)
		return
	}
	http.Error(w, msg, http.StatusBadGateway)
}

// roundTripper sends a request to its endpoint and, when connecting fails,
// marks the endpoint failed and (for requests that can be sent again)
// tries another.
type roundTripper struct{ p *Proxy }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	p := rt.p
	e := req.Context().Value(exchangeKey{}).(*exchange)
	for {
		ep := e.tried[e.tries-1]
		out := req
		if out.URL.Host != ep {
			out = req.Clone(req.Context())
			out.URL.Host = ep
		}
		var resp *http.Response
		var err error
		if handles(out) {
			resp, err = p.conns.RoundTrip(out)
		} else {
			resp, err = p.transport.RoundTrip(out)
		}
		if err == nil {
			p.health.Success(ep)
			return resp, nil
		}
		if !connectFailed(err) {
			return nil, err
		}
		p.health.Failure(ep, p.now())
		// The hand transport failed before reading the body: any request
		// may go elsewhere. net/http's Transport closes the body on errors,
		// so only requests without one (or with GetBody) are sent again.
		if (!handles(out) && !replayable(req)) || e.tries >= MaxTries {
			return nil, err
		}
		next := p.pick(e.backend.Endpoints, e.tried[:e.tries])
		if next == "" {
			return nil, err
		}
		e.tried[e.tries] = next
		e.tries++
	}
}

// connectFailed: the endpoint did not take the connection (refused,
// unreachable, dial timeout), so nothing of the request reached it.
func connectFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// replayable requests may go to another endpoint: idempotent methods
// whose body, if any, can be read again (nginx too retries only these).
func replayable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
	default:
		return false
	}
	return r.Body == nil || r.Body == http.NoBody || r.GetBody != nil
}

// bufferPool lends ReverseProxy its copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
