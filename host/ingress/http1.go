package ingress

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The plain-HTTP listener is served by an HTTP/1.1 loop of the proxy's own
// rather than net/http's server: one goroutine per client connection
// reads a request, forwards it on a kept-alive endpoint connection and
// writes the answer, with no per-request goroutines, contexts or copies of
// the request (net/http's server and ReverseProxy cost about twice nginx's
// CPU per request; docs/benchmarks.md). Parsing is net/http's own
// (http.ReadRequest, http.ReadResponse), so what is accepted and how
// bodies are framed is what net/http does. TLS (with HTTP/2) stays on
// net/http's server, and so do clients speaking HTTP/2 without TLS (h2c,
// handed over whole).

// h1Server serves one listener.
type h1Server struct {
	p        *Proxy
	h2c      *handoff // nil: h2c refused
	mu       sync.Mutex
	conns    map[*h1Conn]struct{}
	stopping atomic.Bool
}

type h1Conn struct {
	net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	idle atomic.Bool
}

var (
	clientReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 8<<10) }}
	clientWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 8<<10) }}
)

func (s *h1Server) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.stopping.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return err
		}
		hc := &h1Conn{Conn: c, br: clientReaders.Get().(*bufio.Reader), bw: clientWriters.Get().(*bufio.Writer)}
		hc.br.Reset(c)
		hc.bw.Reset(c)
		s.mu.Lock()
		s.conns[hc] = struct{}{}
		s.mu.Unlock()
		go s.serveConn(hc)
	}
}

// shutdown closes idle connections at once and the others after their
// current request, waiting up to ctx.
func (s *h1Server) shutdown(ctx context.Context) {
	s.stopping.Store(true)
	for {
		s.mu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			if c.idle.Load() {
				c.SetReadDeadline(aLongTimeAgo)
			}
		}
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				c.Close()
			}
			s.mu.Unlock()
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

func (s *h1Server) serveConn(c *h1Conn) {
	handedOff := false
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		if !handedOff {
			c.Close()
			c.br.Reset(nil)
			c.bw.Reset(nil)
			clientReaders.Put(c.br)
			clientWriters.Put(c.bw)
		}
	}()
	for first := true; !s.stopping.Load(); first = false {
		c.idle.Store(true)
		c.SetReadDeadline(time.Now().Add(ClientIdleTimeout)) // deadlines are the kernel clock's, not the injected one
		if _, err := c.br.Peek(1); err != nil {
			return // closed, idle too long, or shutting down
		}
		c.idle.Store(false)
		c.SetReadDeadline(time.Now().Add(ReadHeaderTimeout))
		if first && s.h2c != nil {
			if b, err := c.br.Peek(len(h2Preface)); err == nil && bytes.Equal(b, h2Preface) {
				handedOff = s.h2c.give(c)
				return
			}
		}
		req, err := http.ReadRequest(c.br)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.bw.WriteString("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request: " + err.Error() + "\n")
				c.bw.Flush()
			}
			return
		}
		c.SetReadDeadline(time.Time{}) // bodies and streams have no deadline
		req.RemoteAddr = c.RemoteAddr().String()
		if !s.p.serveH1(c, req) {
			return
		}
	}
}

// serveH1 answers one request; false closes the connection.
func (p *Proxy) serveH1(c *h1Conn, req *http.Request) bool {
	start := p.now()
	e := entryOf(req, start)
	defer func() {
		e.Duration = p.now().Sub(start)
		p.log.Add(e)
	}()
	keep := !req.Close // Connection: close, or HTTP/1.0 without keep-alive
	if req.Header.Get("Expect") != "" {
		if !strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
			e.Status = http.StatusExpectationFailed
			h1Plain(c, &e, e.Status, "unsupported Expect: "+req.Header.Get("Expect")+"\n", false)
			return false
		}
		// Answered here, as nginx does: the endpoint gets the body without asking.
		c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		c.bw.Flush()
		req.Header.Del("Expect")
	}
	route := p.routes.Load().Match(req.Host, req.URL.Path)
	switch {
	case route == nil:
		e.Status = http.StatusNotFound
		return drain(req) && h1Plain(c, &e, e.Status, fmt.Sprintf("no Ingress rule matches host %q path %q, and no Ingress has a defaultBackend\n", req.Host, req.URL.Path), keep) && keep
	case len(route.Backend.Endpoints) == 0:
		e.Ingress, e.Status = route.Ingress, http.StatusServiceUnavailable
		return drain(req) && h1Plain(c, &e, e.Status, fmt.Sprintf("Ingress %s: %s (route %s%s)\n", route.Ingress, route.Backend.Reason, route.Host, route.Path), keep) && keep
	}
	e.Ingress = route.Ingress
	var tried [MaxTries]string
	upgrade := req.Header.Get("Upgrade") != "" && headerHasToken(req.Header, "Connection", "upgrade")
	var ec *endpointConn
	var resp *http.Response
	var err error
	for e.Tries = 0; e.Tries < MaxTries; {
		ep := p.pick(route.Backend.Endpoints, tried[:e.Tries])
		if ep == "" {
			break
		}
		tried[e.Tries] = ep
		e.Tries++
		e.Upstream = ep
		ec, resp, err = p.forward(ep, req, c, upgrade)
		if err == nil {
			p.health.Success(ep)
			break
		}
		if !connectFailed(err) {
			break
		}
		// Nothing of the request reached the endpoint (nor was its body
		// read): any request may go to another, as nginx does.
		p.health.Failure(ep, p.now())
	}
	if err != nil {
		e.Status = http.StatusBadGateway
		h1Plain(c, &e, e.Status, fmt.Sprintf("Service %s: no endpoint answered (tried %v): %v\n", route.Backend.Service, tried[:e.Tries], err), false)
		return false
	}
	e.Status = resp.StatusCode
	if resp.StatusCode == http.StatusSwitchingProtocols && upgrade {
		p.pipe(c, ec, resp, &e)
		return false
	}
	ok, n := p.respond(c, req, ec, resp, keep)
	e.Bytes = n
	return ok && keep
}

func entryOf(req *http.Request, t time.Time) Entry {
	return Entry{Time: t, Client: req.RemoteAddr, Method: req.Method, Host: req.Host, Path: req.URL.Path, Proto: req.Proto}
}

// drain reads what is left of a request body the proxy answers itself, so
// the connection can carry the next request (at most 256 KiB; more closes it).
func drain(req *http.Request) bool {
	if req.Body == nil || req.Body == http.NoBody {
		return true
	}
	n, err := io.CopyN(io.Discard, req.Body, 256<<10)
	return err == io.EOF || (err == nil && n < 256<<10)
}

func h1Plain(c *h1Conn, e *Entry, code int, body string, keep bool) bool {
	e.Status, e.Bytes = code, int64(len(body))
	fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: %d\r\n", code, http.StatusText(code), len(body))
	if !keep {
		c.bw.WriteString("Connection: close\r\n")
	}
	c.bw.WriteString("\r\n")
	c.bw.WriteString(body)
	return c.bw.Flush() == nil
}

// hopHeaders are the connection's own headers (RFC 9110 7.6.1), not forwarded.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func isHop(h http.Header, k string) bool {
	for _, x := range hopHeaders {
		if k == x {
			return true
		}
	}
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(f)) == k {
				return true
			}
		}
	}
	return false
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

// forward sends req to ep and reads the response head. A kept-alive
// connection the endpoint had closed is replaced once for a request
// without a body.
func (p *Proxy) forward(ep string, req *http.Request, c *h1Conn, upgrade bool) (*endpointConn, *http.Response, error) {
	for {
		ec, reused, err := p.conns.get(context.Background(), ep)
		if err != nil {
			return nil, nil, err
		}
		resp, err := p.exchangeH1(ec, req, c, upgrade)
		if err == nil {
			return ec, resp, nil
		}
		ec.Close()
		if reused && errors.Is(err, errStale) && (req.Body == nil || req.Body == http.NoBody) {
			continue
		}
		return nil, nil, err
	}
}

func (p *Proxy) exchangeH1(ec *endpointConn, req *http.Request, c *h1Conn, upgrade bool) (*http.Response, error) {
	w := ec.bw
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(req.RequestURI)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(req.Host)
	w.WriteString("\r\n")
	for k, vs := range req.Header {
		if k == "Host" || k == "Content-Length" || k == "X-Forwarded-For" || k == "X-Forwarded-Host" || k == "X-Forwarded-Proto" || isHop(req.Header, k) {
			continue
		}
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	if ip, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		w.WriteString("X-Forwarded-For: ")
		w.WriteString(ip)
		w.WriteString("\r\n")
	}
	w.WriteString("X-Forwarded-Host: ")
	w.WriteString(req.Host)
	w.WriteString("\r\nX-Forwarded-Proto: http\r\n")
	if upgrade {
		w.WriteString("Connection: Upgrade\r\nUpgrade: ")
		w.WriteString(req.Header.Get("Upgrade"))
		w.WriteString("\r\n")
	}
	chunked := req.ContentLength < 0
	switch {
	case chunked:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	case req.ContentLength > 0 || req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch:
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(req.ContentLength, 10))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	if req.Body != nil && req.Body != http.NoBody {
		var bw io.Writer = w
		var cw io.WriteCloser
		if chunked {
			cw = httputil.NewChunkedWriter(w)
			bw = cw
		}
		buf := bufferPool{}.Get()
		_, err := io.CopyBuffer(bw, req.Body, buf)
		bufferPool{}.Put(buf)
		if err != nil {
			return nil, err
		}
		if cw != nil {
			cw.Close()
			w.WriteString("\r\n")
		}
	}
	if err := w.Flush(); err != nil {
		return nil, staleIf(err)
	}
	for {
		resp, err := http.ReadResponse(ec.br, req)
		if err != nil {
			return nil, staleIf(err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue // 103 Early Hints and the like: the final answer follows
		}
		return resp, nil
	}
}

// respond writes resp to the client: its head, then its body with the
// framing the client needs; streams (no length) are flushed at every
// write. It returns whether the client connection is still usable and
// the body bytes written.
func (p *Proxy) respond(c *h1Conn, req *http.Request, ec *endpointConn, resp *http.Response, keep bool) (ok bool, n int64) {
	defer func() { ok = ok && keep }()
	w := c.bw
	w.WriteString("HTTP/1.1 ")
	w.WriteString(resp.Status)
	w.WriteString("\r\n")
	for k, vs := range resp.Header {
		if k == "Content-Length" || isHop(resp.Header, k) {
			continue
		}
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	noBody := req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified
	chunked := false
	switch {
	case noBody:
		if cl := resp.Header.Get("Content-Length"); cl != "" {
			w.WriteString("Content-Length: " + cl + "\r\n")
		}
	case resp.ContentLength >= 0:
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(resp.ContentLength, 10))
		w.WriteString("\r\n")
	case req.ProtoAtLeast(1, 1):
		chunked = true
		w.WriteString("Transfer-Encoding: chunked\r\n")
		if len(resp.Trailer) > 0 {
			keys := make([]string, 0, len(resp.Trailer))
			for k := range resp.Trailer {
				keys = append(keys, k)
			}
			w.WriteString("Trailer: " + strings.Join(keys, ", ") + "\r\n")
		}
	default:
		keep = false // an HTTP/1.0 client reads to the end of the connection
	}
	// The endpoint closing its connection (resp.Close) concerns that
	// connection only: the client's stays open, its body framed here.
	switch {
	case !keep:
		w.WriteString("Connection: close\r\n")
	case !req.ProtoAtLeast(1, 1):
		w.WriteString("Connection: keep-alive\r\n") // an HTTP/1.0 client that asked for it
	}
	w.WriteString("\r\n")
	body := resp.Body
	endpointDone := func(clean bool) {
		if clean && !resp.Close {
			p.conns.put(ec)
		} else {
			ec.Close()
		}
	}
	if noBody || body == nil || body == http.NoBody {
		if body != nil {
			body.Close()
		}
		endpointDone(true)
		return w.Flush() == nil, 0
	}
	var out io.Writer = w
	var cw io.WriteCloser
	if chunked {
		cw = httputil.NewChunkedWriter(w)
		out = cw
	}
	if resp.ContentLength < 0 {
		out = flushWriter{out, w}
	}
	buf := bufferPool{}.Get()
	n, err := io.CopyBuffer(out, body, buf)
	bufferPool{}.Put(buf)
	if err != nil {
		// Either side failed mid-body: neither connection can carry more.
		body.Close()
		ec.Close()
		return false, n
	}
	body.Close() // at EOF: reads the trailers
	endpointDone(true)
	if cw != nil {
		cw.Close()
		for k, vs := range resp.Trailer {
			for _, v := range vs {
				w.WriteString(k + ": " + v + "\r\n")
			}
		}
		w.WriteString("\r\n")
	}
	return w.Flush() == nil, n
}

// flushWriter sends each write at once: a stream's events reach the
// client as the endpoint writes them.
type flushWriter struct {
	io.Writer
	bw *bufio.Writer
}

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.Writer.Write(b)
	if err == nil {
		err = f.bw.Flush()
	}
	return n, err
}

// pipe joins the client and endpoint connections after 101 Switching
// Protocols (WebSocket): bytes flow both ways until either side closes.
func (p *Proxy) pipe(c *h1Conn, ec *endpointConn, resp *http.Response, e *Entry) {
	w := c.bw
	w.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	resp.Header.Write(w)
	w.WriteString("\r\n")
	if w.Flush() != nil {
		ec.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(ec.Conn, c.br) // client -> endpoint, with what the client sent already
		if tc, ok := ec.Conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	n, _ := io.Copy(c.Conn, ec.br)
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	e.Bytes = n
	// The endpoint is done: a client that keeps its side open is not
	// waited for.
	c.SetReadDeadline(aLongTimeAgo)
	<-done
	ec.Close()
}

// handoff gives connections to a net/http server (h2c clients).
type handoff struct {
	conns chan net.Conn
	done  chan struct{}
	addr  net.Addr
	once  sync.Once
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{conns: make(chan net.Conn), done: make(chan struct{}), addr: addr}
}

func (h *handoff) give(c *h1Conn) bool {
	select {
	case h.conns <- &bufferedConn{Conn: c.Conn, r: c.br}:
		return true
	case <-h.done:
		return false
	}
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error   { h.once.Do(func() { close(h.done) }); return nil }
func (h *handoff) Addr() net.Addr { return h.addr }

// bufferedConn reads first what the proxy had already read of it.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }
