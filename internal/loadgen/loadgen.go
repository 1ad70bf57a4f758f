// Package loadgen sends a steady stream of HTTP requests to one address
// and says how many failed and how long the address gave no answer: what
// a failover drill measures of a Service while a host fails. Each request
// is a new connection (no keep-alive), so every one goes through the
// Service's address resolution and rules again, as a new client's would;
// requests are sent at a fixed rate whether or not earlier ones answered
// (open loop), so a hanging backend cannot slow the stream and hide the gap.
package loadgen

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
)

// Defaults of Config, with why.
const (
	// DefaultInterval: 20 requests a second finds a gap to within 50 ms,
	// far below the seconds a failover takes, at a load any VM serves.
	DefaultInterval = 50 * time.Millisecond
	// DefaultTimeout: a request unanswered after a second counts as lost;
	// a healthy answer on the lab's network takes about a millisecond.
	DefaultTimeout = time.Second
)

// Config says where and how fast to send.
type Config struct {
	// URL is what each request GETs (http://ADDRESS:PORT/PATH).
	URL string
	// Host is the Host header ("" = the URL's): an Ingress routes by it.
	Host string
	// Interval between two requests' starts (0 = DefaultInterval), Timeout
	// of each (0 = DefaultTimeout).
	Interval, Timeout time.Duration
	// Dial opens the connections (nil = net.Dialer): the lab dials from
	// inside its namespaces.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the clock results are stamped with (nil = time.Now).
	Now func() time.Time
}

// Result is one request's outcome.
type Result struct {
	Sent time.Time     // when it was sent
	Took time.Duration // until it was answered or given up on
	// Err says why it failed ("" = answered: any status below 500).
	Err string
}

// Answered is when its answer came (zero for a failed request).
func (r Result) Answered() time.Time {
	if r.Err != "" {
		return time.Time{}
	}
	return r.Sent.Add(r.Took)
}

// Stream is a running load generator.
type Stream struct {
	cfg    Config
	client *http.Client
	cancel context.CancelFunc
	done   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	start   time.Time
	results []Result
}

// Start validates cfg and starts sending; Stop ends it.
func Start(ctx context.Context, cfg Config) (*Stream, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("loadgen: url %q: want http://ADDRESS:PORT/...: %w", cfg.URL, api.ErrInvalid)
	}
	if cfg.Interval < 0 || cfg.Timeout < 0 {
		return nil, fmt.Errorf("loadgen: interval %s and timeout %s must not be negative: %w", cfg.Interval, cfg.Timeout, api.ErrInvalid)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	dial := cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	tr := &http.Transport{DialContext: dial, DisableKeepAlives: true, Proxy: nil}
	// Stop ends the sending loop only: requests in flight keep the
	// caller's ctx and their own timeout, so the last ones count too.
	loop, cancel := context.WithCancel(ctx)
	s := &Stream{cfg: cfg, client: &http.Client{Transport: tr, Timeout: cfg.Timeout}, cancel: cancel, done: make(chan struct{}), start: cfg.Now()}
	go s.run(loop, ctx)
	return s, nil
}

func (s *Stream) run(loop, ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		s.wg.Add(1)
		go s.one(ctx)
		select {
		case <-loop.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Stream) one(ctx context.Context) {
	defer s.wg.Done()
	sent := s.cfg.Now()
	r := Result{Sent: sent}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.URL, nil)
	if err == nil {
		if s.cfg.Host != "" {
			req.Host = s.cfg.Host
		}
		var resp *http.Response
		if resp, err = s.client.Do(req); err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode >= 500 {
				err = fmt.Errorf("HTTP %s", resp.Status)
			}
		}
	}
	if ctx.Err() != nil && err != nil {
		return // the caller gave up on the whole stream: not a lost request
	}
	r.Took = s.cfg.Now().Sub(sent)
	if err != nil {
		r.Err = err.Error()
	}
	s.mu.Lock()
	s.results = append(s.results, r)
	s.mu.Unlock()
}

// Stop ends the stream: requests in flight are given their timeout to
// answer, then the results are summed up.
func (s *Stream) Stop() Summary {
	end := s.cfg.Now()
	s.cancel()
	<-s.done
	s.wg.Wait() // each in-flight request is bounded by its timeout
	s.client.CloseIdleConnections()
	s.mu.Lock()
	defer s.mu.Unlock()
	return Summarize(s.start, end, s.results)
}

// Count is how many requests have been answered or given up on so far,
// and how many of them failed.
func (s *Stream) Count() (done, failed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.results {
		if r.Err != "" {
			failed++
		}
	}
	return len(s.results), failed
}
