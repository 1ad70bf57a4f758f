package store

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/podsphere/podsphere/api"
)

// entry is one change-log entry: the event as stored, plus the object before
// the change (nil for creates, and for the first entry of a path in a log
// loaded at Open) so filtered watchers can tell objects leaving their view.
type entry struct {
	ev   api.WatchEvent
	prev *api.Object
}

// hub holds the in-memory change log (the durable changes, newest
// LogRetention of them) and fans new entries out to watchers. Appending and
// subscribing share one lock, so a new watcher's replay and its live feed
// meet exactly: no gap, no duplicate.
type hub struct {
	mu        sync.Mutex
	retention int
	log       []entry // revisions oldest..head, contiguous
	oldest    uint64  // revision of log[0]; head+1 when the log is empty
	head      uint64  // last durable revision
	// watchers by the kind their query selects ("" for any kind): an entry
	// is offered only to the watchers of its object's kind and to those of
	// any kind, never to the hundreds of host watches for an event.
	watchers  map[string]map[*Watcher]struct{}
	closedErr error
}

func (h *hub) init(retention int) {
	h.retention = retention
	h.oldest = 1
	h.watchers = map[string]map[*Watcher]struct{}{}
}

func (h *hub) add(w *Watcher) {
	m := h.watchers[w.q.Kind]
	if m == nil {
		m = map[*Watcher]struct{}{}
		h.watchers[w.q.Kind] = m
	}
	m[w] = struct{}{}
}

func (h *hub) drop(w *Watcher) {
	if m := h.watchers[w.q.Kind]; m != nil {
		delete(m, w)
		if len(m) == 0 {
			delete(h.watchers, w.q.Kind)
		}
	}
}

func (h *hub) load(entries []entry, oldest, head uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(entries) - h.retention; n > 0 {
		entries, oldest = entries[n:], oldest+uint64(n)
	}
	h.log, h.oldest, h.head = entries, oldest, head
}

// publish appends durable entries and offers them to every watcher.
func (h *hub) publish(es []entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = append(h.log, es...)
	h.head = es[len(es)-1].ev.Revision
	if n := len(h.log) - h.retention; n > 0 {
		clear(h.log[:n]) // let old object versions be collected
		h.log = h.log[n:]
		h.oldest += uint64(n)
	}
	// Each entry goes to every watcher before the next entry, so filters
	// that decode an object (a host's watch) can reuse their last result. A
	// watcher of another kind would not match it (an object keeps its kind).
	for _, e := range es {
		for _, kind := range [2]string{e.ev.Object.Kind, ""} {
			for w := range h.watchers[kind] {
				if !w.offer(e) {
					h.drop(w) // closed: it gets no later entries
				}
			}
			if kind == "" {
				break // (stored objects always have a kind)
			}
		}
	}
}

func (h *hub) closeAll(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closedErr == nil {
		h.closedErr = err
	}
	for _, m := range h.watchers {
		for w := range m {
			w.close(err)
		}
	}
	clear(h.watchers)
}

func (h *hub) remove(w *Watcher) {
	h.mu.Lock()
	h.drop(w)
	h.mu.Unlock()
}

// Watcher delivers the changes matching its query, in revision order.
type Watcher struct {
	hub     *hub
	q       Query
	from    uint64
	backlog int
	out     chan api.WatchEvent
	done    chan struct{} // closed when the delivery goroutine has exited

	mu     sync.Mutex
	queue  []api.WatchEvent // live events not yet delivered
	notify chan struct{}    // cap 1: the queue grew
	quit   chan struct{}    // closed by Stop or close
	closed bool
	err    error
}

// Watch delivers every change with Revision > from that matches q, in
// revision order, with no gaps or duplicates: retained changes first, then
// live ones. from == 0 means from the current revision. If from is older than
// the oldest retained change, Watch fails with ErrCompacted and the caller
// should re-list and watch from the list's revision.
//
// A Modified event that moves an object into q is delivered as Added, one
// that moves it out as Deleted (carrying the object after the change), so a
// filtered watcher's view stays exact.
func (s *Store) Watch(ctx context.Context, q Query, from uint64) (*Watcher, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	s.mu.RLock()
	err, rev := s.usableLocked(), s.rev
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if from == 0 {
		from = rev
	}
	w := &Watcher{
		hub:     &s.hub,
		q:       q.normalized(),
		from:    from,
		backlog: s.opt.WatchBacklog,
		out:     make(chan api.WatchEvent),
		done:    make(chan struct{}),
		notify:  make(chan struct{}, 1),
		quit:    make(chan struct{}),
	}
	h := &s.hub
	h.mu.Lock()
	if h.closedErr != nil {
		h.mu.Unlock()
		return nil, h.closedErr
	}
	if from+1 < h.oldest {
		oldest := h.oldest
		h.mu.Unlock()
		return nil, fmt.Errorf("revision %d has been compacted; the oldest retained is %d: re-list and watch again: %w", from, oldest, ErrCompacted)
	}
	var replay []entry
	if from < h.head {
		replay = slices.Clone(h.log[from+1-h.oldest:])
	}
	h.add(w)
	h.mu.Unlock()
	go w.run(ctx, replay)
	return w, nil
}

// Events is closed when the context ends, Stop is called, the store closes
// or fails, or the watcher falls behind; Err says which.
func (w *Watcher) Events() <-chan api.WatchEvent { return w.out }

// Err is why the watcher closed: nil after Stop or the context ending.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stop ends the watch and waits for Events to close.
func (w *Watcher) Stop() {
	w.close(nil)
	<-w.done
}

// close ends delivery with err (nil for a normal stop), once.
func (w *Watcher) close(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed, w.err, w.queue = true, err, nil
	close(w.quit)
}

// offer queues e if the watcher wants it; false once the watcher is closed.
// Called with the hub locked.
func (w *Watcher) offer(e entry) bool {
	ev, ok := w.convert(e)
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	if !ok {
		w.mu.Unlock()
		return true
	}
	if len(w.queue) >= w.backlog {
		w.mu.Unlock()
		w.close(fmt.Errorf("watcher fell more than %d events behind at revision %d: re-list and watch again: %w", w.backlog, e.ev.Revision, ErrFellBehind))
		return false
	}
	w.queue = append(w.queue, ev)
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
	return true
}

// convert decides whether the watcher sees e and as what.
func (w *Watcher) convert(e entry) (api.WatchEvent, bool) {
	if e.ev.Revision <= w.from {
		return api.WatchEvent{}, false
	}
	ev := e.ev
	now := w.q.matches(ev.Object)
	if ev.Type != api.Modified || e.prev == nil {
		return ev, now
	}
	was := w.q.matches(e.prev)
	switch {
	case now && !was:
		ev.Type = api.Added
	case !now && was:
		ev.Type = api.Deleted
	}
	return ev, now || was
}

func (w *Watcher) run(ctx context.Context, replay []entry) {
	defer close(w.done)
	defer close(w.out)
	defer w.hub.remove(w)
	send := func(ev api.WatchEvent) bool {
		ev.Object = ev.Object.Clone()
		select {
		case w.out <- ev:
			return true
		case <-w.quit:
		case <-ctx.Done():
		}
		return false
	}
	for _, e := range replay {
		if ev, ok := w.convert(e); ok && !send(ev) {
			return
		}
	}
	replay = nil
	for {
		w.mu.Lock()
		queue, closed := w.queue, w.closed
		w.queue = nil
		w.mu.Unlock()
		if closed {
			return
		}
		for _, ev := range queue {
			if !send(ev) {
				return
			}
		}
		select {
		case <-w.notify:
		case <-w.quit:
			return
		case <-ctx.Done():
			return
		}
	}
}
