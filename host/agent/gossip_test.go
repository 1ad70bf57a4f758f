package agent

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/podsphere/podsphere/internal/gossip"
)

// TestSeedAliveWhileSeedReannounces: the agent's check that it still
// gossips with vcenter reads the members' addresses while vcenter
// re-announces itself, as a restarted vcenter does when it refutes its old
// incarnation. Reading them from the nodes Members() returns raced with
// memberlist rewriting those nodes in place (go test -race caught it in
// vcenter/server's kill -9 rollout test; hashicorp/memberlist#306): the
// addresses now come from memberlist's event callbacks. Run it with -race.
// The seed counts as alive while it gossips and no longer once it left.
func TestSeedAliveWhileSeedReannounces(t *testing.T) {
	tm := gossip.DefaultTimings()
	tm.GossipInterval = 20 * time.Millisecond // re-announcements spread in a few rounds
	node := func(name string, events memberlist.EventDelegate) *memberlist.Memberlist {
		c, err := gossip.MemberlistConfig(name, "127.0.0.1:0", gossip.GossipKey(token), tm)
		if err != nil {
			t.Fatal(err)
		}
		c.Events = events
		l, err := memberlist.Create(c)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	seed := node("vcenter", nil)
	defer seed.Shutdown()
	live := &liveMembers{addrs: map[string]string{}}
	host := node(me, live)
	defer host.Shutdown()
	seeds := []string{seed.LocalNode().Address()}
	if _, err := host.Join(seeds); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eventually(t, "the seed alive", func() bool { return seedAlive(ctx, live, seeds) })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if !seedAlive(ctx, live, seeds) {
				t.Error("the seed is not alive while it re-announces itself")
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	for range 20 {
		// A new incarnation of the same node at the same address: the
		// host's memberlist rewrites its node of the seed in place.
		if err := seed.UpdateNode(time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	if err := seed.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the seed gone", func() bool { return !seedAlive(ctx, live, seeds) })
}
