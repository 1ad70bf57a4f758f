// Package membership owns vcenter's view of which hosts are alive: the SWIM
// gossip (hashicorp/memberlist) that replaces vSphere HA's heartbeats. vcenter
// runs a Member; each host agent runs a plain memberlist node built with the
// same gossip.MemberlistConfig (internal/gossip), named by its host inventory
// path and keyed by the join token, so only hosts that know the token can take
// part.
package membership

import (
	"errors"
	"fmt"
	"hash/fnv"
	"log"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/internal/gossip"
)

// Handler hears about hosts. name is the host's inventory path (its gossip
// node name), addr its gossip address host:port. Calls for one host arrive in
// the order memberlist saw them, never concurrently for that host, and never
// on memberlist's own goroutines, so a Handler may write to the store.
type Handler interface {
	// HostAlive: the host joined, came back, changed, or (every
	// LastSeenInterval) is still alive.
	HostAlive(name, addr string)
	// HostFailed: the host was declared failed, or left the cluster.
	// Gossip cannot tell an agent restart (a graceful leave) from a crash.
	HostFailed(name string)
}

// Member is vcenter's node in the gossip cluster.
type Member struct {
	name string
	t    gossip.Timings
	list *memberlist.Memberlist
	q    *queue

	mu    sync.Mutex
	alive map[string]string // host name -> gossip address, as last told to the Handler

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start binds vcenter's gossip node (named name, e.g. "vcenter") on bind and
// reports every other node to h. It joins nobody: hosts join it.
func Start(name, bind string, joinToken string, t gossip.Timings, h Handler, logger *log.Logger) (*Member, error) {
	if h == nil {
		return nil, fmt.Errorf("membership: nil Handler: %w", api.ErrInvalid)
	}
	c, err := gossip.MemberlistConfig(name, bind, gossip.GossipKey(joinToken), t)
	if err != nil {
		return nil, err
	}
	m := &Member{
		name:  name,
		t:     t,
		q:     newQueue(h, 8),
		alive: map[string]string{},
		stop:  make(chan struct{}),
	}
	c.Events = events{m}
	c.LogOutput = nil
	c.Logger = gossip.Logger(logger)
	list, err := memberlist.Create(c)
	if err != nil {
		m.q.close()
		return nil, fmt.Errorf("start gossip on %s: %w", bind, err)
	}
	m.list = list
	if t.LastSeenInterval > 0 {
		m.wg.Add(1)
		go m.refresh()
	}
	return m, nil
}

// events is memberlist's EventDelegate. memberlist calls it holding its node
// lock, so it only records and queues.
type events struct{ m *Member }

func (e events) NotifyJoin(n *memberlist.Node)   { e.m.seen(n.Name, n.Address(), true) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.m.seen(n.Name, n.Address(), true) }
func (e events) NotifyLeave(n *memberlist.Node)  { e.m.seen(n.Name, "", false) }

func (m *Member) seen(name, addr string, alive bool) {
	if name == m.name {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if alive {
		m.alive[name] = addr
	} else {
		delete(m.alive, name)
	}
	m.q.push(event{name: name, addr: addr, alive: alive})
}

// refresh re-reports live hosts every LastSeenInterval. It reads and queues
// under m.mu, so a refresh can never overtake a failure queued before it.
func (m *Member) refresh() {
	defer m.wg.Done()
	tick := time.NewTicker(m.t.LastSeenInterval)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
			m.mu.Lock()
			for name, addr := range m.alive {
				m.q.push(event{name: name, addr: addr, alive: true})
			}
			m.mu.Unlock()
		}
	}
}

// Join contacts hosts at addrs (gossip host:port). vcenter needs it only
// after its own restart, to reach hosts the inventory knows without waiting
// for them to rejoin; it returns how many answered.
func (m *Member) Join(addrs []string) (int, error) {
	return m.list.Join(addrs)
}

// Addr is the address vcenter's node gossips on, host:port.
func (m *Member) Addr() string { return m.list.LocalNode().Address() }

// Alive lists the hosts alive now (suspect ones included), sorted.
func (m *Member) Alive() []string {
	m.mu.Lock()
	names := make([]string, 0, len(m.alive))
	for n := range m.alive {
		names = append(names, n)
	}
	m.mu.Unlock()
	sort.Strings(names)
	return names
}

// NumMembers counts live gossip members, vcenter itself included.
func (m *Member) NumMembers() int { return m.list.NumMembers() }

// Close leaves the cluster, stops gossiping, and returns once every queued
// Handler call has run.
func (m *Member) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		var errs []error
		if err := m.list.Leave(m.t.LeaveTimeout); err != nil {
			errs = append(errs, fmt.Errorf("leave gossip: %w", err))
		}
		if err := m.list.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("stop gossip: %w", err))
		}
		m.wg.Wait()
		m.q.close()
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

// event is one Handler call waiting to be made.
type event struct {
	name, addr string
	alive      bool
}

// queue hands events to the Handler off memberlist's goroutines. Events are
// sharded by host name, one worker per shard, so one host's events keep
// their order while a slow Handler call for one host does not hold up all
// others. Shards are unbounded: memberlist must never block on us.
type queue struct {
	h      Handler
	shards []*shard
	wg     sync.WaitGroup
}

type shard struct {
	mu     sync.Mutex
	events []event
	closed bool
	wake   chan struct{}
}

func newQueue(h Handler, n int) *queue {
	q := &queue{h: h}
	for range n {
		s := &shard{wake: make(chan struct{}, 1)}
		q.shards = append(q.shards, s)
		q.wg.Add(1)
		go q.work(s)
	}
	return q
}

func (q *queue) push(e event) {
	f := fnv.New32a()
	_, _ = f.Write([]byte(e.name))
	s := q.shards[f.Sum32()%uint32(len(q.shards))]
	s.mu.Lock()
	if !s.closed {
		s.events = append(s.events, e)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (q *queue) work(s *shard) {
	defer q.wg.Done()
	for {
		s.mu.Lock()
		batch, closed := s.events, s.closed
		s.events = nil
		s.mu.Unlock()
		for _, e := range batch {
			if e.alive {
				q.h.HostAlive(e.name, e.addr)
			} else {
				q.h.HostFailed(e.name)
			}
		}
		if closed && len(batch) == 0 {
			return
		}
		if len(batch) == 0 {
			<-s.wake
		}
	}
}

// close stops taking events and waits until the queued ones are handled.
func (q *queue) close() {
	for _, s := range q.shards {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	q.wg.Wait()
}
