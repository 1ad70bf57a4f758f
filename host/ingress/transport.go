package ingress

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// endpointConns is the proxy's hand transport to endpoints: HTTP/1.1 over
// kept-alive connections, each request written and its response read by
// the goroutine serving the client. net/http's Transport hands every
// request to two goroutines of the connection (a writer and a reader) and
// back; on a busy host those hand-offs cost more than the proxying, so
// plain requests take this path (measured in docs/benchmarks.md).
// Upgrades (WebSocket) and Expect: 100-continue go through net/http's
// Transport, which implements them.
type endpointConns struct {
	dialer      net.Dialer
	maxIdle     int
	idleTimeout time.Duration
	now         func() time.Time

	mu     sync.Mutex
	idle   map[string][]*endpointConn
	closed bool
	sweep  *time.Timer
}

type endpointConn struct {
	net.Conn
	ep   string // as routes name it ("IP:port", or an ExternalName's host:port)
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time
}

func newEndpointConns(maxIdle int, idleTimeout time.Duration, now func() time.Time) *endpointConns {
	t := &endpointConns{dialer: net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second},
		maxIdle: maxIdle, idleTimeout: idleTimeout, now: now, idle: map[string][]*endpointConn{}}
	t.sweep = time.AfterFunc(idleTimeout, t.closeIdle)
	return t
}

// closeIdle closes connections unused for idleTimeout, so endpoints that
// left their Service do not keep connections forever.
func (t *endpointConns) closeIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	cutoff := t.now().Add(-t.idleTimeout)
	for ep, cs := range t.idle {
		keep := cs[:0]
		for _, c := range cs {
			if c.used.Before(cutoff) {
				c.Close()
			} else {
				keep = append(keep, c)
			}
		}
		if len(keep) == 0 {
			delete(t.idle, ep)
		} else {
			t.idle[ep] = keep
		}
	}
	t.sweep.Reset(t.idleTimeout)
}

// Close closes the idle connections; requests in flight finish.
func (t *endpointConns) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	t.sweep.Stop()
	for _, cs := range t.idle {
		for _, c := range cs {
			c.Close()
		}
	}
	t.idle = map[string][]*endpointConn{}
}

func (t *endpointConns) get(ctx context.Context, ep string) (*endpointConn, bool, error) {
	cutoff := t.now().Add(-t.idleTimeout)
	t.mu.Lock()
	for cs := t.idle[ep]; len(cs) > 0; cs = t.idle[ep] {
		c := cs[len(cs)-1]
		t.idle[ep] = cs[:len(cs)-1]
		if c.used.Before(cutoff) {
			c.Close()
			continue
		}
		t.mu.Unlock()
		return c, true, nil
	}
	t.mu.Unlock()
	nc, err := t.dialer.DialContext(ctx, "tcp", ep)
	if err != nil {
		return nil, false, err
	}
	return &endpointConn{Conn: nc, ep: ep, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 8<<10)}, false, nil
}

func (t *endpointConns) put(c *endpointConn) {
	c.used = t.now()
	t.mu.Lock()
	if !t.closed && len(t.idle[c.ep]) < t.maxIdle {
		t.idle[c.ep] = append(t.idle[c.ep], c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	c.Close()
}

// handles reports whether the hand transport sends req (else net/http's).
func handles(req *http.Request) bool {
	return req.Header.Get("Upgrade") == "" && req.Header.Get("Expect") == ""
}

var errStale = errors.New("kept-alive connection closed by the endpoint")

func (t *endpointConns) RoundTrip(req *http.Request) (*http.Response, error) {
	ep := req.URL.Host
	for {
		c, reused, err := t.get(req.Context(), ep)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(c, req)
		if err == nil {
			return resp, nil
		}
		c.Close()
		// An endpoint may close a kept-alive connection just as a request
		// goes out on it; nothing was processed, so a request without a
		// body goes again on a new connection (net/http's Transport does
		// the same).
		if reused && errors.Is(err, errStale) && (req.Body == nil || req.Body == http.NoBody) {
			continue
		}
		return nil, err
	}
}

// aLongTimeAgo is a deadline that makes blocked reads and writes return.
var aLongTimeAgo = time.Unix(1, 0)

func (t *endpointConns) exchange(c *endpointConn, req *http.Request) (*http.Response, error) {
	// A client that goes away ends the exchange: its deadline interrupts
	// the endpoint connection, which is then closed, not reused.
	stop := context.AfterFunc(req.Context(), func() { c.SetDeadline(aLongTimeAgo) })
	if err := req.Write(c.bw); err != nil {
		stop()
		return nil, staleIf(err)
	}
	if err := c.bw.Flush(); err != nil {
		stop()
		return nil, staleIf(err)
	}
	for {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			stop()
			return nil, staleIf(err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue // 103 Early Hints and the like: the final answer follows
		}
		if resp.Body == http.NoBody || resp.Body == nil {
			if stop() && !resp.Close {
				t.put(c)
			} else {
				c.Close()
			}
			return resp, nil
		}
		resp.Body = &endpointBody{ReadCloser: resp.Body, t: t, c: c, close: resp.Close, stop: stop}
		return resp, nil
	}
}

// staleIf marks errors that mean the endpoint had closed the connection
// before reading the request.
func staleIf(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return errors.Join(errStale, err)
	}
	return err
}

// endpointBody gives the connection back once the body was read to its
// end (and the endpoint keeps it open); a body left unread closes it.
type endpointBody struct {
	io.ReadCloser
	t     *endpointConns
	c     *endpointConn
	close bool
	eof   bool
	done  bool
	stop  func() bool
}

func (b *endpointBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *endpointBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.eof {
		b.c.Close()
		b.stop()
		return nil
	}
	err := b.ReadCloser.Close() // reads the trailers, if any
	if b.stop() && err == nil && !b.close {
		b.t.put(b.c)
	} else {
		b.c.Close()
	}
	return err
}
