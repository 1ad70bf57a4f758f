package membership

import (
	"log"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/podsphere/podsphere/internal/gossip"
)

// recorder is a Handler that keeps every call, in order.
type recorder struct {
	mu     sync.Mutex
	calls  []call
	notify chan struct{}
}

type call struct {
	at         time.Time
	name, addr string
	alive      bool
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) HostAlive(name, addr string) { r.add(call{time.Now(), name, addr, true}) }
func (r *recorder) HostFailed(name string)      { r.add(call{time.Now(), name, "", false}) }

func (r *recorder) add(c call) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// waitFor returns the first call after index from that matches, or fails after d.
func (r *recorder) waitFor(t *testing.T, from int, d time.Duration, match func(call) bool) (call, int) {
	t.Helper()
	deadline := time.After(d)
	for {
		r.mu.Lock()
		for i := from; i < len(r.calls); i++ {
			if match(r.calls[i]) {
				c := r.calls[i]
				r.mu.Unlock()
				return c, i
			}
		}
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("no matching Handler call within %v; calls: %+v", d, r.snapshot())
		}
	}
}

func (r *recorder) snapshot() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

func testLogger(t *testing.T) *log.Logger {
	if testing.Verbose() {
		return log.New(os.Stderr, t.Name()+" ", log.Lmicroseconds)
	}
	return nil
}

// startHost starts an agent-side gossip node the way host agents do.
func startHost(t *testing.T, name, token string, tm gossip.Timings) *memberlist.Memberlist {
	t.Helper()
	c, err := gossip.MemberlistConfig(name, "127.0.0.1:0", gossip.GossipKey(token), tm)
	if err != nil {
		t.Fatal(err)
	}
	c.LogOutput = nil
	c.Logger = gossip.Logger(testLogger(t))
	l, err := memberlist.Create(c)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestFailureDetectionAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("gossip timing test takes ~10 s")
	}
	const token = "s3cret"
	tm := gossip.DefaultTimings()
	tm.LastSeenInterval = 0 // keep the call log to membership changes
	rec := newRecorder()
	vc, err := Start("vcenter", "127.0.0.1:0", token, tm, rec, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()

	const h1, h2 = "/dc1/host/c1/esx-01", "/dc1/host/c1/esx-02"
	a := startHost(t, h1, token, tm)
	b := startHost(t, h2, token, tm)
	defer b.Shutdown()
	for _, n := range []*memberlist.Memberlist{a, b} {
		if _, err := n.Join([]string{vc.Addr()}); err != nil {
			t.Fatalf("join: %v", err)
		}
	}
	rec.waitFor(t, 0, 5*time.Second, func(c call) bool { return c.alive && c.name == h1 && c.addr == a.LocalNode().Address() })
	rec.waitFor(t, 0, 5*time.Second, func(c call) bool { return c.alive && c.name == h2 })
	if got := vc.Alive(); len(got) != 2 || got[0] != h1 || got[1] != h2 {
		t.Fatalf("Alive() = %v, want [%s %s]", got, h1, h2)
	}
	if n := vc.NumMembers(); n != 3 {
		t.Fatalf("NumMembers() = %d, want 3", n)
	}

	// A host with another join token cannot join, and is never reported.
	intruder := startHost(t, "/dc1/host/c1/esx-99", "wrong-token", tm)
	defer intruder.Shutdown()
	if _, err := intruder.Join([]string{vc.Addr()}); err == nil {
		t.Fatal("a node with a wrong join token joined the gossip cluster")
	}

	// Crash esx-01: no leave message, it just goes silent.
	mark := len(rec.snapshot())
	crashed := time.Now()
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	bound := tm.DetectionBound(3)
	slack := tm.GossipInterval + 500*time.Millisecond // scheduling, -race
	failed, _ := rec.waitFor(t, mark, bound+slack+2*time.Second, func(c call) bool { return !c.alive && c.name == h1 })
	took := failed.at.Sub(crashed)
	t.Logf("esx-01 declared failed %v after it went silent (bound %v, expected ~%v)", took.Round(time.Millisecond), bound, tm.ExpectedDetection(3))
	if took > bound+slack {
		t.Errorf("failure detected after %v, documented bound is %v", took, bound)
	}
	if got := vc.Alive(); len(got) != 1 || got[0] != h2 {
		t.Fatalf("Alive() after failure = %v, want [%s]", got, h2)
	}

	// Restart esx-01 on a new port once its name may be reclaimed.
	time.Sleep(tm.DeadNodeReclaimTime)
	mark = len(rec.snapshot())
	a2 := startHost(t, h1, token, tm)
	defer a2.Shutdown()
	if a2.LocalNode().Address() == a.LocalNode().Address() {
		t.Fatal("restarted node got the same port; test needs a new one")
	}
	if _, err := a2.Join([]string{vc.Addr()}); err != nil {
		t.Fatalf("rejoin: %v", err)
	}
	back, _ := rec.waitFor(t, mark, 5*time.Second, func(c call) bool { return c.alive && c.name == h1 })
	if back.addr != a2.LocalNode().Address() {
		t.Errorf("HostAlive addr = %s, want the new address %s", back.addr, a2.LocalNode().Address())
	}

	// Over the whole run the intruder never showed up.
	for _, c := range rec.snapshot() {
		if c.name == "/dc1/host/c1/esx-99" {
			t.Errorf("intruder reported: %+v", c)
		}
	}
	// A graceful leave is reported as HostFailed.
	mark = len(rec.snapshot())
	if err := b.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, mark, 3*time.Second, func(c call) bool { return !c.alive && c.name == h2 })
}

func TestLastSeenRefresh(t *testing.T) {
	const token = "t"
	tm := gossip.DefaultTimings()
	tm.LastSeenInterval = 100 * time.Millisecond
	rec := newRecorder()
	vc, err := Start("vcenter", "127.0.0.1:0", token, tm, rec, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	h := startHost(t, "/dc1/host/c1/esx-01", token, tm)
	defer h.Shutdown()
	if _, err := h.Join([]string{vc.Addr()}); err != nil {
		t.Fatal(err)
	}
	_, i := rec.waitFor(t, 0, 5*time.Second, func(c call) bool { return c.alive })
	rec.waitFor(t, i+1, 5*time.Second, func(c call) bool { return c.alive }) // the refresh
	if err := vc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := vc.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	n := len(rec.snapshot())
	time.Sleep(3 * tm.LastSeenInterval)
	if m := len(rec.snapshot()); m != n {
		t.Errorf("Handler called %d times after Close", m-n)
	}
}

// slowHandler blocks until released; memberlist must keep running meanwhile.
type slowHandler struct {
	release chan struct{}
	rec     *recorder
}

func (s slowHandler) HostAlive(name, addr string) { <-s.release; s.rec.HostAlive(name, addr) }
func (s slowHandler) HostFailed(name string)      { <-s.release; s.rec.HostFailed(name) }

func TestHandlerDoesNotBlockGossip(t *testing.T) {
	const token = "t"
	tm := gossip.DefaultTimings()
	tm.LastSeenInterval = 0
	rec := newRecorder()
	release := make(chan struct{})
	vc, err := Start("vcenter", "127.0.0.1:0", token, tm, slowHandler{release, rec}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	var hosts []*memberlist.Memberlist
	for _, name := range []string{"/dc1/host/c1/a", "/dc1/host/c1/b", "/dc1/host/c1/c"} {
		h := startHost(t, name, token, tm)
		defer h.Shutdown()
		hosts = append(hosts, h)
		if _, err := h.Join([]string{vc.Addr()}); err != nil {
			t.Fatal(err)
		}
	}
	// With the Handler stuck, gossip still converges.
	deadline := time.Now().Add(5 * time.Second)
	for vc.NumMembers() != 4 || len(vc.Alive()) != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("members = %d, alive = %v while the Handler blocks", vc.NumMembers(), vc.Alive())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := hosts[0].Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	close(release)
	// Per host, order is kept: a's join comes before a's leave.
	rec.waitFor(t, 0, 5*time.Second, func(c call) bool { return !c.alive && c.name == "/dc1/host/c1/a" })
	var seenJoin bool
	for _, c := range rec.snapshot() {
		if c.name != "/dc1/host/c1/a" {
			continue
		}
		if c.alive {
			seenJoin = true
		} else if !seenJoin {
			t.Fatal("HostFailed for a before its HostAlive")
		}
	}
}
