package loadgen

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

// waitDone waits until the stream has finished n requests.
func waitDone(t *testing.T, s *Stream, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if done, _ := s.Count(); done >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d requests finished in 10 s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStreamAgainstAHealthyServer(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	s, err := Start(context.Background(), Config{URL: srv.URL + "/", Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, s, 10)
	sum := s.Stop()
	if sum.Sent < 10 || sum.Failed != 0 || len(sum.Outages) != 0 {
		t.Fatalf("summary %+v", sum)
	}
	// Every request is a new client: no connection carries two.
	if got := conns.Load(); got != int64(sum.Sent) {
		t.Fatalf("%d connections for %d requests, want one each", got, sum.Sent)
	}
	if sum.LongestGap <= 0 || sum.LongestGap > sum.End.Sub(sum.Start) {
		t.Fatalf("longest gap %s outside the stream's %s", sum.LongestGap, sum.End.Sub(sum.Start))
	}
}

func TestStreamCountsServerErrorsAndRefusals(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer srv.Close()
	s, err := Start(context.Background(), Config{URL: srv.URL, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, s, 3)
	sum := s.Stop()
	if sum.Failed != sum.Sent || !strings.Contains(sum.LastError, "503") {
		t.Fatalf("503s: %+v", sum)
	}

	// A port nobody listens on refuses at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s, err = Start(context.Background(), Config{URL: "http://" + addr + "/", Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, s, 3)
	sum = s.Stop()
	if sum.Failed != sum.Sent || !strings.Contains(sum.LastError, "refused") || len(sum.Outages) != 1 {
		t.Fatalf("refused: %+v", sum)
	}
}

// A backend that never answers must not slow the stream down: requests
// keep leaving at the rate, and each is given up on at its timeout.
func TestStreamKeepsSendingWhileRequestsHang(t *testing.T) {
	release := make(chan struct{})
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got.Add(1); <-release }))
	defer func() { close(release); srv.Close() }()
	s, err := Start(context.Background(), Config{URL: srv.URL, Interval: 5 * time.Millisecond, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Five requests in the server at once: the stream did not wait for the first.
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests reached the hanging server", got.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitDone(t, s, 1)
	sum := s.Stop()
	if sum.Failed == 0 || sum.Failed != sum.Sent || !strings.Contains(sum.LastError, "Timeout") {
		t.Fatalf("hanging server: %+v", sum)
	}
}

func TestStartRefusesBadConfig(t *testing.T) {
	for _, c := range []Config{{URL: "10.0.0.1:80"}, {URL: "https://x/"}, {URL: "http://x/", Interval: -1}} {
		if _, err := Start(context.Background(), c); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("Start(%+v) = %v, want ErrInvalid", c, err)
		}
	}
}
