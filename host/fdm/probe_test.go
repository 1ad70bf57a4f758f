package fdm

import (
	"context"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsphere/podsphere/internal/hads"
)

func TestTCPProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := ln.Addr().String()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	defer ln.Close()
	ctx := context.Background()
	if !TCPProbe(ctx, open, time.Second) {
		t.Error("a listening address is not reachable")
	}
	if !TCPProbe(ctx, refused, time.Second) {
		t.Error("a refused connection must prove the address reachable")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if TCPProbe(canceled, open, time.Second) {
		t.Error("a probe that never ran proved something")
	}
}

func TestProbeAllAsksPeersOnlyWhenVCenterIsSilent(t *testing.T) {
	var asked atomic.Int32
	answer := map[string]bool{}
	probe := func(_ context.Context, addr string, _ time.Duration) bool { asked.Add(1); return answer[addr] }
	targets := []Probe{{Addr: "vc:8989", Kind: "vcenter"}, {Addr: "p1:7946"}, {Addr: "p2:7946"}}
	answer["vc:8989"] = true
	if got := probeAll(context.Background(), probe, targets, time.Second); len(got) != 1 || !got[0].Reachable || asked.Load() != 1 {
		t.Fatalf("vcenter answers: %+v after %d probes, want vcenter alone", got, asked.Load())
	}
	answer["vc:8989"], answer["p2:7946"] = false, true
	got := probeAll(context.Background(), probe, targets, time.Second)
	if len(got) != 3 || got[0].Reachable || got[1].Reachable || !got[2].Reachable {
		t.Fatalf("vcenter silent: %+v", got)
	}
	if withPort("10.0.0.1") != "10.0.0.1:7" || withPort("10.0.0.1:53") != "10.0.0.1:53" || withPort("fd00::1") != "[fd00::1]:7" {
		t.Fatal("withPort")
	}
}

func TestTargets(t *testing.T) {
	f := &FDM{host: me, vcAt: "10.99.0.2:8989"}
	c := cache{Peers: map[string]string{cluster + "/esx-02": "10.99.0.12:7946", me: "10.99.0.11:7946"}}
	c.HA.IsolationAddresses = []string{"10.99.0.12", "10.99.0.11", "10.99.0.1:53"}
	hbs := map[string]hads.Heartbeat{cluster + "/esx-03": {Host: cluster + "/esx-03", Address: "10.99.0.13", Time: time.Now()}}
	local := map[string]bool{"10.99.0.11": true}
	var got []string
	for _, p := range f.targets(c, hbs, local) {
		got = append(got, p.Addr)
	}
	want := []string{"10.99.0.2:8989", "10.99.0.12:7946", "10.99.0.13:7", "10.99.0.12:7", "10.99.0.1:53"}
	if !slices.Equal(got, want) {
		t.Fatalf("targets %v, want %v (vcenter first, this host's own addresses left out)", got, want)
	}
	// --isolation-address replaces the cluster's.
	f.cfg.IsolationAddresses = []string{"192.0.2.1"}
	got = nil
	for _, p := range f.targets(c, nil, local) {
		got = append(got, p.Addr)
	}
	if want := []string{"10.99.0.2:8989", "10.99.0.12:7946", "192.0.2.1:7"}; !slices.Equal(got, want) {
		t.Fatalf("with --isolation-address: %v, want %v", got, want)
	}
}
