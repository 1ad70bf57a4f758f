package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/labels"
)

// next reads one event or fails after a timeout.
func next(t *testing.T, w *Watcher) api.WatchEvent {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("watch closed: %v", w.Err())
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	panic("unreachable")
}

func describe(ev api.WatchEvent) string {
	return fmt.Sprintf("%s %d %s", ev.Type, ev.Revision, ev.Object.Path)
}

func expectEvents(t *testing.T, w *Watcher, want ...string) {
	t.Helper()
	for _, wv := range want {
		if got := describe(next(t, w)); got != wv {
			t.Fatalf("event %q, want %q", got, wv)
		}
	}
}

func expectQuiet(t *testing.T, w *Watcher) {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if ok {
			t.Fatalf("unexpected event %s", describe(ev))
		}
	case <-time.After(50 * time.Millisecond):
	}
}

func TestWatchFromNow(t *testing.T) {
	s, _ := newStore(t, Options{})
	create(t, s, vm("/dc1/vm/old", "", nil))
	w, err := s.Watch(t.Context(), Query{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	a := vm("/dc1/vm/a", "", nil)
	create(t, s, a)
	err = update(s, func(tx *Tx) error {
		o, _ := tx.Get("/dc1/vm/a")
		o.Labels = map[string]string{"x": "1"}
		if _, err := tx.Update(o); err != nil {
			return err
		}
		return tx.Delete("/dc1/vm/old", 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	expectEvents(t, w, "ADDED 2 /dc1/vm/a", "MODIFIED 3 /dc1/vm/a", "DELETED 4 /dc1/vm/old")
	expectQuiet(t, w)
}

func TestWatchReplayThenLive(t *testing.T) {
	s, _ := newStore(t, Options{})
	for i := range 50 {
		create(t, s, vm(fmt.Sprintf("/dc1/vm/pre%d", i), "", nil))
	}
	const writers, each = 8, 40
	final := uint64(50 + writers*each)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range writers {
		wg.Go(func() {
			<-start
			for i := range each {
				create(t, s, vm(fmt.Sprintf("/dc1/vm/g%d-%d", g, i), "", nil))
			}
		})
	}
	close(start)
	// Subscribe while the writers run: replay 11..N, then live, meeting exactly.
	w, err := s.Watch(t.Context(), Query{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	seen := map[string]bool{}
	for want := uint64(11); want <= final; want++ {
		ev := next(t, w)
		if ev.Revision != want {
			t.Fatalf("got revision %d, want %d (gap or duplicate)", ev.Revision, want)
		}
		if ev.Type != api.Added || seen[ev.Object.Path] || ev.Object.ResourceVersion != ev.Revision {
			t.Fatalf("bad event %s rv %d", describe(ev), ev.Object.ResourceVersion)
		}
		seen[ev.Object.Path] = true
	}
	wg.Wait()
	expectQuiet(t, w)
}

func TestWatchCompacted(t *testing.T) {
	s, dir := newStore(t, Options{LogRetention: 10})
	for i := range 30 {
		create(t, s, vm(fmt.Sprintf("/dc1/vm/v%d", i), "", nil))
	}
	_, err := s.Watch(t.Context(), Query{}, 5)
	want := "revision 5 has been compacted; the oldest retained is 21: re-list and watch again"
	if !errors.Is(err, ErrCompacted) || !errors.Is(err, api.ErrGone) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v; want %q wrapping ErrCompacted and api.ErrGone", err, want)
	}
	// The oldest retained one can still be resumed from just before it.
	w, err := s.Watch(t.Context(), Query{}, 20)
	if err != nil {
		t.Fatal(err)
	}
	expectEvents(t, w, "ADDED 21 /dc1/vm/v20")
	w.Stop()

	s.Close()
	s = openAt(t, dir, Options{LogRetention: 10})
	defer s.Close()
	if _, err := s.Watch(t.Context(), Query{}, 19); !errors.Is(err, ErrCompacted) {
		t.Fatalf("after reopen, from 19: %v", err)
	}
	w, err = s.Watch(t.Context(), Query{}, 28)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expectEvents(t, w, "ADDED 29 /dc1/vm/v28", "ADDED 30 /dc1/vm/v29")
	first, n := logOnDisk(t, s)
	if first != 21 || n != 10 {
		t.Fatalf("disk log holds %d entries from %d; want 10 from 21", n, first)
	}
}

func TestWatchFilters(t *testing.T) {
	s, _ := newStore(t, Options{})
	create(t, s, api.New(api.KindCluster, "/dc1/host/c1", nil), api.New(api.KindCluster, "/dc1/host/c10", nil))
	ctx := t.Context()
	byKind, _ := s.Watch(ctx, Query{Kind: api.KindHost}, 0)
	byPrefix, _ := s.Watch(ctx, Query{Prefix: "/dc1/host/c1"}, 0)
	onH1, _ := s.Watch(ctx, Query{Kind: api.KindVirtualMachine, Filter: func(o *api.Object) bool {
		var spec api.VMSpec
		return o.DecodeSpec(&spec) == nil && spec.Host == "h1"
	}}, 0)
	web, _ := s.Watch(ctx, Query{Selector: labels.MustParse("app=web")}, 0)

	create(t, s,
		api.New(api.KindHost, "/dc1/host/c1/h1", nil),          // 3
		api.New(api.KindHost, "/dc1/host/c10/h1", nil),         // 4
		vm("/dc1/vm/a", "h1", map[string]string{"app": "web"}), // 5
	)
	// Migrate a to h2 and relabel it: it leaves onH1's and web's views.
	err := update(s, func(tx *Tx) error {
		a, _ := tx.Get("/dc1/vm/a")
		a.SetSpec(api.VMSpec{Host: "h2"})
		a.Labels = nil
		_, err := tx.Update(a) // 6
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = update(s, func(tx *Tx) error {
		a, _ := tx.Get("/dc1/vm/a")
		a.SetSpec(api.VMSpec{Host: "h1"})
		if _, err := tx.Update(a); err != nil { // 7: back on h1
			return err
		}
		return tx.Delete("/dc1/host/c1/h1", 0) // 8
	})
	if err != nil {
		t.Fatal(err)
	}
	expectEvents(t, byKind, "ADDED 3 /dc1/host/c1/h1", "ADDED 4 /dc1/host/c10/h1", "DELETED 8 /dc1/host/c1/h1")
	expectEvents(t, byPrefix, "ADDED 3 /dc1/host/c1/h1", "DELETED 8 /dc1/host/c1/h1")
	expectEvents(t, onH1, "ADDED 5 /dc1/vm/a", "DELETED 6 /dc1/vm/a", "ADDED 7 /dc1/vm/a")
	expectEvents(t, web, "ADDED 5 /dc1/vm/a", "DELETED 6 /dc1/vm/a")
	for _, w := range []*Watcher{byKind, byPrefix, onH1, web} {
		expectQuiet(t, w)
		w.Stop()
		if w.Err() != nil {
			t.Errorf("Err after Stop = %v", w.Err())
		}
	}
}

func TestWatchSlowWatcherIsClosed(t *testing.T) {
	s, _ := newStore(t, Options{WatchBacklog: 5})
	w, err := s.Watch(t.Context(), Query{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads: the writers must not stall.
	for i := range 20 {
		create(t, s, vm(fmt.Sprintf("/dc1/vm/v%d", i), "", nil))
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-w.Events():
			if ok {
				continue
			}
		case <-deadline:
			t.Fatal("slow watcher was not closed")
		}
		break
	}
	if !errors.Is(w.Err(), ErrFellBehind) || !strings.Contains(w.Err().Error(), "more than 5 events behind") {
		t.Fatalf("Err = %v", w.Err())
	}
}

func TestWatchEnds(t *testing.T) {
	s, _ := newStore(t, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	byCtx, _ := s.Watch(ctx, Query{}, 0)
	byClose, _ := s.Watch(t.Context(), Query{}, 0)
	cancel()
	for range byCtx.Events() {
	}
	if byCtx.Err() != nil {
		t.Fatalf("ctx cancel: Err = %v", byCtx.Err())
	}
	s.Close()
	for range byClose.Events() {
	}
	if !errors.Is(byClose.Err(), api.ErrUnavailable) {
		t.Fatalf("store close: Err = %v", byClose.Err())
	}
	if _, err := s.Watch(t.Context(), Query{}, 0); !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("Watch after close: %v", err)
	}
	if _, err := s.Update(func(tx *Tx) error { return nil }); !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("Update after close: %v", err)
	}
}

// Watched objects are copies.
func TestWatchHandsOutCopies(t *testing.T) {
	s, _ := newStore(t, Options{})
	w, _ := s.Watch(t.Context(), Query{}, 0)
	defer w.Stop()
	create(t, s, vm("/dc1/vm/a", "", map[string]string{"a": "1"}))
	ev := next(t, w)
	ev.Object.Labels["a"] = "2"
	if o, _ := s.Get("/dc1/vm/a"); o.Labels["a"] != "1" {
		t.Fatal("watch event aliased the cache")
	}
}
