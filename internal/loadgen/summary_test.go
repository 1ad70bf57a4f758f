package loadgen

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func ok(sentMs, tookMs int) Result {
	return Result{Sent: at(sentMs), Took: time.Duration(tookMs) * time.Millisecond}
}

func lost(sentMs, tookMs int, why string) Result {
	r := ok(sentMs, tookMs)
	r.Err = why
	return r
}

func TestSummarize(t *testing.T) {
	t.Run("a steady healthy stream: the gap is one interval", func(t *testing.T) {
		s := Summarize(at(0), at(200), []Result{ok(0, 1), ok(50, 1), ok(100, 1), ok(150, 1)})
		if s.Sent != 4 || s.Failed != 0 || len(s.Outages) != 0 || s.LastError != "" {
			t.Fatalf("summary %+v", s)
		}
		if s.LongestGap != 50*time.Millisecond {
			t.Fatalf("longest gap %s, want 50ms", s.LongestGap)
		}
	})
	t.Run("a failover: the gap runs from the last answer before to the first after", func(t *testing.T) {
		rs := []Result{ok(0, 1), ok(50, 1), lost(100, 1000, "timeout"), lost(150, 1000, "timeout"),
			lost(200, 3, "connection refused"), ok(250, 2), ok(300, 1)}
		s := Summarize(at(0), at(350), rs)
		if s.Sent != 7 || s.Failed != 3 || s.LastError != "connection refused" {
			t.Fatalf("summary %+v", s)
		}
		if s.LongestGap != 201*time.Millisecond || !s.GapFrom.Equal(at(51)) || !s.GapTo.Equal(at(252)) {
			t.Fatalf("gap %s from %s to %s, want 201ms from +51ms to +252ms", s.LongestGap, s.GapFrom, s.GapTo)
		}
		if len(s.Outages) != 1 || s.Outages[0].Failed != 3 || !s.Outages[0].From.Equal(at(100)) || !s.Outages[0].To.Equal(at(203)) {
			t.Fatalf("outages %+v", s.Outages)
		}
	})
	t.Run("failures apart are two outages, counted in send order whatever the order they came in", func(t *testing.T) {
		s := Summarize(at(0), at(300), []Result{ok(200, 1), lost(250, 5, "b"), lost(50, 5, "a"), ok(0, 1), ok(100, 1)})
		if len(s.Outages) != 2 || s.Outages[0].From != at(50) || s.Outages[1].From != at(250) || s.LastError != "b" {
			t.Fatalf("outages %+v, last error %q", s.Outages, s.LastError)
		}
	})
	t.Run("nothing answered: the gap is the whole stream", func(t *testing.T) {
		s := Summarize(at(0), at(500), []Result{lost(0, 100, "x"), lost(50, 100, "x")})
		if s.LongestGap != 500*time.Millisecond || s.Failed != 2 || len(s.Outages) != 1 {
			t.Fatalf("summary %+v", s)
		}
	})
	t.Run("a slow answer after a fast one does not make a negative gap", func(t *testing.T) {
		s := Summarize(at(0), at(100), []Result{ok(0, 90), ok(10, 1)})
		if s.LongestGap != 79*time.Millisecond {
			t.Fatalf("longest gap %s, want 79ms (from +11ms to +90ms)", s.LongestGap)
		}
	})
}
