package ingress

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/podsphere/podsphere/api"
)

// Passive health, as nginx's max_fails/fail_timeout and Envoy's outlier
// detection: an endpoint that refuses a connection is ejected (requests
// skip it) for a backoff, then readmitted; failing again doubles the
// backoff, a success resets it. Nothing probes: the requests are the probes.
const (
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 30 * time.Second
)

// Health is the passive health of endpoints ("IP:port").
type Health struct {
	backoff, maxBackoff time.Duration
	ejected             atomic.Int64 // endpoints with a record: the fast path skips the lock at 0

	mu  sync.RWMutex
	eps map[string]*endpointHealth
}

type endpointHealth struct {
	until   time.Time // ejected until
	backoff time.Duration
	fails   int
}

// NewHealth makes the record; zero durations take the defaults.
func NewHealth(backoff, maxBackoff time.Duration) *Health {
	if backoff <= 0 {
		backoff = DefaultBackoff
	}
	if maxBackoff <= 0 {
		maxBackoff = DefaultMaxBackoff
	}
	return &Health{backoff: backoff, maxBackoff: max(maxBackoff, backoff), eps: map[string]*endpointHealth{}}
}

// Ejected reports whether requests should skip ep at now.
func (h *Health) Ejected(ep string, now time.Time) bool {
	if h.ejected.Load() == 0 {
		return false
	}
	h.mu.RLock()
	e := h.eps[ep]
	out := e != nil && now.Before(e.until)
	h.mu.RUnlock()
	return out
}

// Failure ejects ep from now for its backoff, doubling the next one.
func (h *Health) Failure(ep string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.eps[ep]
	if e == nil {
		e = &endpointHealth{backoff: h.backoff}
		h.eps[ep] = e
		h.ejected.Add(1)
	} else if now.Before(e.until) {
		return // concurrent failures of one ejection count once
	} else {
		e.backoff = min(2*e.backoff, h.maxBackoff)
	}
	e.fails++
	e.until = now.Add(e.backoff)
}

// Success forgets ep's failures: it is healthy again.
func (h *Health) Success(ep string) {
	if h.ejected.Load() == 0 {
		return
	}
	h.mu.Lock()
	if _, ok := h.eps[ep]; ok {
		delete(h.eps, ep)
		h.ejected.Add(-1)
	}
	h.mu.Unlock()
}

// EndpointState is what psc shows of one failing endpoint.
type EndpointState = api.IngressEndpointState

// Failing lists the endpoints with failures not yet cleared by a success.
func (h *Health) Failing() []EndpointState {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]EndpointState, 0, len(h.eps))
	for ep, e := range h.eps {
		out = append(out, EndpointState{Endpoint: ep, Until: e.until, Failures: e.fails})
	}
	return out
}
