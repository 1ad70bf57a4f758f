package controllers

import (
	"context"
	"io"
	"log"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/inventory"
)

// busy is a controller that always has its key due again at once.
type busy struct{}

func (busy) Name() string                         { return "busy" }
func (busy) Keys(old, new *api.Object) []string   { return nil }
func (busy) Resync(*inventory.Inventory) []string { return []string{"k"} }
func (busy) Reconcile(context.Context, string) (Result, error) {
	return Result{RequeueAfter: time.Nanosecond}, nil
}

// TestStartStopsWhileKeysAreDue: the workers stop when ctx ends even if
// their queue always has a key due. They used to look at ctx only when
// nothing was due, so a controller that kept itself busy (the Deployment
// controller's status loop) made vcenter's Close wait forever.
func TestStartStopsWhileKeysAreDue(t *testing.T) {
	inv, err := inventory.Open(t.TempDir(), inventory.Options{Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer inv.Close()
	r := New(inv, Options{Logger: log.New(io.Discard, "", 0)}, busy{})
	ctx, cancel := context.WithCancel(context.Background())
	wg := r.Start(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for r.Passes() < 100 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the runner's workers did not stop within 5 s of ctx ending")
	}
}
