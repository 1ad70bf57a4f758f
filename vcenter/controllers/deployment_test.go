package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

// TestCompleteDeploymentIsQuiet: a reconcile of a Deployment whose rollout
// is complete, at a later time, writes nothing. The Progressing condition's
// lastUpdate used to be set to now on every reconcile of a complete
// Deployment, and every status write queues the Deployment again: with a
// real clock vcenter rewrote each complete Deployment's status hundreds of
// times a second, so `psc apply` of a new template lost its update to the
// controller's writes five times over ("has been modified ... re-read and
// try again"; found by e2e TestWorkloads), and Close never returned (the
// runner's worker always had the key due). The scenarios' frozen clock hid it.
func TestCompleteDeploymentIsQuiet(t *testing.T) {
	h := newHarness(t)
	for _, cmd := range []string{"hosts 2", "deploy web replicas=2", "report 2"} {
		if out := h.do(cmd); out != "" {
			t.Fatalf("%s: %s", cmd, out)
		}
		h.drain()
	}
	path := dc + "/deployment/web"
	before, err := h.inv.Get(path)
	if err != nil {
		t.Fatal(err)
	}
	var st api.DeploymentStatus
	_ = before.DecodeStatus(&st)
	if c := findCondition(st.Conditions, "Progressing"); c == nil || c.Reason != "NewReplicaSetAvailable" {
		t.Fatalf("rollout not complete: %+v", st)
	}
	for range 3 {
		h.clock.now = h.clock.now.Add(time.Second)
		if _, err := NewDeployments(h.inv, h.clock).Reconcile(context.Background(), path); err != nil {
			t.Fatal(err)
		}
		if n := h.runner.Drain(context.Background()); n > 10 {
			t.Errorf("%d reconciles after one of a complete Deployment", n)
		}
	}
	after, _ := h.inv.Get(path)
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("a complete Deployment's status was rewritten: resourceVersion %d -> %d\nbefore %s\nafter  %s",
			before.ResourceVersion, after.ResourceVersion, before.Status, after.Status)
	}
}
