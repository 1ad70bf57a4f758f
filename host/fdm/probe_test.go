package fdm

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
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
