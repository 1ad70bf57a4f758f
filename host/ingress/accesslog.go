package ingress

import (
	"sync"

	"github.com/podsphere/podsphere/api"
)

// Entry is one request in the access log.
type Entry = api.IngressLogEntry

// AccessLog keeps the last requests in a ring: memory stays bounded
// whatever the traffic, and psc ingress.log reads it from the agent.
type AccessLog struct {
	mu    sync.Mutex
	ring  []Entry
	next  int
	full  bool
	total uint64
}

// NewAccessLog keeps the last n entries (n 0 keeps none).
func NewAccessLog(n int) *AccessLog { return &AccessLog{ring: make([]Entry, n)} }

// Add records e, dropping the oldest entry when the ring is full.
func (l *AccessLog) Add(e Entry) {
	if len(l.ring) == 0 {
		return
	}
	l.mu.Lock()
	l.ring[l.next] = e
	l.next++
	l.total++
	if l.next == len(l.ring) {
		l.next, l.full = 0, true
	}
	l.mu.Unlock()
}

// Last is up to n of the newest entries, oldest first (n <= 0: all kept),
// and how many requests were ever logged.
func (l *AccessLog) Last(n int) ([]Entry, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	size := l.next
	if l.full {
		size = len(l.ring)
	}
	if n <= 0 || n > size {
		n = size
	}
	out := make([]Entry, 0, n)
	for i := size - n; i < size; i++ {
		j := i
		if l.full {
			j = (l.next + i) % len(l.ring)
		}
		out = append(out, l.ring[j])
	}
	return out, l.total
}
