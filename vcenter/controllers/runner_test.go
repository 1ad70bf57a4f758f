package controllers

import (
	"context"
	"io"
	"log"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/inventory"
)

// busy is a controller whose every reconcile changes its object, which
// queues it again at once: a key that is always due.
type busy struct {
	inv    *inventory.Inventory
	passes atomic.Int64
}

func (c *busy) Name() string { return "busy" }
func (c *busy) Keys(old, new *api.Object) []string {
	if o := new; o != nil && o.Kind == api.KindDatacenter {
		return []string{o.Path}
	}
	return nil
}
func (c *busy) Resync(inv *inventory.Inventory) []string { return nil }
func (c *busy) Reconcile(ctx context.Context, key string) (Result, error) {
	n := c.passes.Add(1)
	_, err := c.inv.WriteStatus("busy", key, func(cur *api.Object) (bool, error) {
		cur.SetStatus(map[string]int64{"passes": n})
		return true, nil
	})
	return Result{}, err
}

// TestRunnerStopsWhileBusy: Start's workers return once the context ends
// even when a key is due again after every reconcile.
func TestRunnerStopsWhileBusy(t *testing.T) {
	inv, err := inventory.Open(t.TempDir(), inventory.Options{Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer inv.Close()
	c := &busy{inv: inv}
	r := New(inv, Options{Logger: log.New(io.Discard, "", 0)}, c)
	ctx, cancel := context.WithCancel(context.Background())
	wg := r.Start(ctx)
	if _, err := inv.Create("admin", api.New(api.KindDatacenter, "/dc1", nil)); err != nil {
		t.Fatal(err)
	}
	for c.passes.Load() < 5 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the runner did not stop within 10 s of its context ending")
	}
}

// TestDeploymentCompleteStatusSettles: once a rollout is complete, a later
// reconcile (the clock has moved on) writes nothing: the status of a
// complete Deployment does not change by itself, or every write would
// queue it again.
func TestDeploymentCompleteStatusSettles(t *testing.T) {
	h := newHarness(t)
	for _, line := range []string{"hosts 2", "deploy web replicas=3", "report 2"} {
		if out := h.do(line); out != "" {
			t.Fatalf("%s: %s", line, out)
		}
		h.drain()
	}
	path := dc + "/deployment/web"
	before, err := h.inv.Get(path)
	h.must(err)
	var st api.DeploymentStatus
	h.must(before.DecodeStatus(&st))
	if c := findCondition(st.Conditions, "Progressing"); c == nil || c.Reason != "NewReplicaSetAvailable" {
		t.Fatalf("not rolled out: %+v", st)
	}
	h.clock.now = h.clock.now.Add(time.Second)
	d := NewDeployments(h.inv, h.clock)
	d.Resync(h.inv)
	if _, err := d.Reconcile(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	after, err := h.inv.Get(path)
	h.must(err)
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("a reconcile of the complete Deployment a second later rewrote its status:\n%s\n%s", before.Status, after.Status)
	}
}
