package gossip

import (
	"errors"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

func TestMemberlistConfig(t *testing.T) {
	key := GossipKey("x")
	tm := DefaultTimings()
	c, err := MemberlistConfig("vcenter", "127.0.0.1:7950", key, tm)
	if err != nil {
		t.Fatal(err)
	}
	if c.BindAddr != "127.0.0.1" || c.BindPort != 7950 || c.AdvertisePort != 7950 {
		t.Errorf("bind = %s:%d advertise port %d", c.BindAddr, c.BindPort, c.AdvertisePort)
	}
	if c.ProbeInterval != tm.ProbeInterval || c.SuspicionMult != tm.SuspicionMult || c.DeadNodeReclaimTime != tm.DeadNodeReclaimTime {
		t.Error("timings not carried into the memberlist config")
	}
	if len(c.SecretKey) != 32 || !c.GossipVerifyIncoming {
		t.Error("gossip is not encrypted and verified")
	}
	for _, tc := range []struct {
		name, bind string
		key        []byte
		t          Timings
	}{
		{"", "127.0.0.1:0", key, tm},
		{"n", "127.0.0.1", key, tm},
		{"n", "localhost:0", key, tm},
		{"n", "127.0.0.1:99999", key, tm},
		{"n", "127.0.0.1:0", key[:10], tm},
		{"n", "127.0.0.1:0", key, Timings{}},
		{"n", "127.0.0.1:0", key, func() Timings { x := tm; x.ProbeTimeout = x.ProbeInterval; return x }()},
	} {
		if _, err := MemberlistConfig(tc.name, tc.bind, tc.key, tc.t); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("MemberlistConfig(%q, %q, %d-byte key) = %v, want ErrInvalid", tc.name, tc.bind, len(tc.key), err)
		}
	}
}

func TestGossipKey(t *testing.T) {
	a, b := GossipKey("one"), GossipKey("two")
	if len(a) != 32 || string(a) == string(b) || string(a) != string(GossipKey("one")) {
		t.Error("GossipKey must be a stable 32-byte key that differs per token")
	}
}

// The figures quoted in DefaultTimings' comment and docs/membership.md.
func TestDefaultDetectionFigures(t *testing.T) {
	tm := DefaultTimings()
	for _, tc := range []struct {
		n               int
		suspicion       time.Duration
		expected, bound time.Duration
	}{
		{2, 2 * time.Second, 3 * time.Second, 3 * time.Second},
		{3, 2 * time.Second, 3 * time.Second, 4 * time.Second},
		{9, 2 * time.Second, 3 * time.Second, 14 * time.Second},
		{100, 4 * time.Second, 5 * time.Second, 111 * time.Second},
		{1000, 6 * time.Second, 7 * time.Second, 1017 * time.Second},
	} {
		if s := tm.Suspicion(tc.n); s != tc.suspicion {
			t.Errorf("Suspicion(%d) = %v, want %v", tc.n, s, tc.suspicion)
		}
		if e := tm.ExpectedDetection(tc.n); e != tc.expected {
			t.Errorf("ExpectedDetection(%d) = %v, want %v", tc.n, e, tc.expected)
		}
		if b := tm.DetectionBound(tc.n); b != tc.bound {
			t.Errorf("DetectionBound(%d) = %v, want %v", tc.n, b, tc.bound)
		}
	}
}
