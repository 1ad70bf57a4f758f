package ha

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkDecide10Of1000HostsFail: 1,000 hosts, 50,000 protected VMs,
// 10 hosts fail at once (500 VMs to restart). Goal: a plan in <= 100 ms.
//
//	go test -run '^$' -bench Decide -benchtime 20x ./ha/
func BenchmarkDecide10Of1000HostsFail(b *testing.B) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	st := State{Now: now, Config: Config{Enabled: true, Datastores: true, Timings: DefaultTimings()}}
	for i := range 1000 {
		h := Host{Name: fmt.Sprintf("esx-%04d", i), Gossip: true, Heartbeat: now, CPUCapacity: 100000, MemCapacity: 1 << 20}
		if i < 10 {
			h.Gossip, h.SilentSince, h.Heartbeat = false, now.Add(-10*time.Second), now.Add(-10*time.Second)
		}
		st.Hosts = append(st.Hosts, h)
	}
	prios := []string{"lowest", "low", "medium", "high", "highest"}
	for i := range 50000 {
		st.VMs = append(st.VMs, VM{Name: fmt.Sprintf("vm-%05d", i), Host: fmt.Sprintf("esx-%04d", i%1000), Priority: prios[i%5],
			On: true, Running: true, Ready: true, CPUReservation: 100, MemReservation: 64, NumCPU: 1, MemoryMB: 64,
			Lock: now.Add(-10 * time.Second)})
	}
	b.ResetTimer()
	var p Plan
	for b.Loop() {
		p = Decide(st)
	}
	if len(p.Restarts) == 0 {
		b.Fatal("nothing restarted")
	}
	b.ReportMetric(float64(len(p.Restarts)), "restarts")
}
