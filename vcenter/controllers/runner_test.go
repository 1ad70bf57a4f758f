package controllers

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

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

func TestBackoffGrowsToItsBound(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, w := range want {
		if got := Backoff(i); got != w {
			t.Errorf("Backoff(%d) = %s, want %s", i, got, w)
		}
	}
	if got := Backoff(100); got != BackoffMax {
		t.Errorf("Backoff(100) = %s, want the bound %s", got, BackoffMax)
	}
}

// A key queued many times is one entry, due at the earliest time asked.
func TestQueueKeepsOneEntryPerKey(t *testing.T) {
	q := &queue{entries: map[string]*entry{}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	q.add("a", t0.Add(time.Minute))
	q.add("b", t0.Add(2*time.Second))
	q.add("a", t0.Add(time.Second))
	q.add("a", t0.Add(time.Hour))
	if n := len(q.due); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
	if _, ok := q.pop(t0); ok {
		t.Fatal("a key was due before its time")
	}
	var got []string
	for {
		k, ok := q.pop(t0.Add(time.Hour))
		if !ok {
			break
		}
		got = append(got, k)
	}
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("popped %v, want [a b] (a at +1s, b at +2s)", got)
	}
}

// A member's usage report queues nothing; its readiness does.
func TestUsageReportsQueueNothing(t *testing.T) {
	c := NewReplicaSets(nil, nil, 1)
	vm := api.New(api.KindVirtualMachine, "/dc1/vm/web-x", api.VMSpec{PowerState: api.PoweredOn, Host: "/dc1/host/c1/esx-01"})
	vm.Owner = "/dc1/replicaset/web"
	vm.SetStatus(api.VMStatus{PowerState: api.PoweredOn, Host: "/dc1/host/c1/esx-01", Ready: true, CPUUsageMHz: 100})
	busier := vm.Clone()
	busier.SetStatus(api.VMStatus{PowerState: api.PoweredOn, Host: "/dc1/host/c1/esx-01", Ready: true, CPUUsageMHz: 900})
	if keys := c.Keys(vm, busier); len(keys) != 0 {
		t.Errorf("a usage report queued %v", keys)
	}
	unready := busier.Clone()
	unready.SetStatus(api.VMStatus{PowerState: api.PoweredOn, Host: "/dc1/host/c1/esx-01", Ready: false, CPUUsageMHz: 900})
	keys := c.Keys(busier, unready) // the owner of both versions: the queue keeps one entry
	if len(keys) == 0 || slices.ContainsFunc(keys, func(k string) bool { return k != vm.Owner }) {
		t.Errorf("a readiness change queued %v, want %s", keys, vm.Owner)
	}
}
