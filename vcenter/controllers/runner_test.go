package controllers

import (
	"testing"
	"time"
)

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
