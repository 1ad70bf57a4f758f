package placement

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

const (
	benchHosts   = 1000
	benchVMs     = 100_000
	benchNewVMs  = 64 // distinct VMs the benchmarks place, round robin
	benchRuleVMs = 20 // of which the first 20 are each in one rule
)

// benchCluster is 1,000 hosts (64 GHz, 512 GB; 10 in maintenance, 5 not
// responding) already running 100,000 VMs with mixed reservations, 20 rules
// with a few members each, and Running holding every VM.
func benchCluster() (*State, []VM) {
	rng := rand.New(rand.NewPCG(1, 2)) // fixed seed: same cluster every run
	st := &State{Hosts: make([]Host, benchHosts), Running: make(map[string]string, benchVMs)}
	for i := range st.Hosts {
		st.Hosts[i] = Host{
			Name:        fmt.Sprintf("esx-%04d", i),
			Connected:   i%200 != 7,
			Maintenance: i%100 == 3,
			CPUCapacity: 64000,
			MemCapacity: 524288,
		}
	}
	cpuSizes := []int64{0, 0, 250, 500, 1000}
	memSizes := []int64{0, 1024, 2048, 4096}
	running := make([]string, benchVMs)
	for i := range benchVMs {
		name := fmt.Sprintf("vm-%06d", i)
		h := &st.Hosts[rng.IntN(benchHosts)]
		h.CPUReserved += cpuSizes[rng.IntN(len(cpuSizes))]
		h.MemReserved += memSizes[rng.IntN(len(memSizes))]
		h.VMs++
		st.Running[name] = h.Name
		running[i] = name
	}
	vms := make([]VM, benchNewVMs)
	for i := range vms {
		vms[i] = VM{Name: fmt.Sprintf("new-%02d", i), CPUReservation: 500, MemReservation: 2048, NumCPU: 2, MemoryMB: 4096}
	}
	member := func() string { return running[rng.IntN(benchVMs)] }
	group := func(n int) []string {
		hs := make([]string, n)
		for i := range hs {
			hs[i] = st.Hosts[rng.IntN(benchHosts)].Name
		}
		return hs
	}
	for j := range benchRuleVMs {
		r := Rule{Name: fmt.Sprintf("rule-%02d", j), Enabled: true, VMs: []string{vms[j].Name}}
		switch {
		case j < 8:
			r.Kind = RuleAntiAffinity
			r.VMs = append(r.VMs, member(), member(), member())
		case j < 14:
			r.Kind = RuleAffinity
			r.VMs = append(r.VMs, member(), member())
		default:
			r.Kind = RuleVMHost
			r.Mandatory = j%2 == 0
			r.Affine = j < 18
			r.VMs = append(r.VMs, member())
			r.Hosts = group(16)
		}
		st.Rules = append(st.Rules, r)
	}
	return st, vms
}

var sink Decision

func BenchmarkPlace(b *testing.B) {
	st, vms := benchCluster()
	for _, vm := range vms { // the setup must be placeable, or we measure the error path
		if _, err := Place(st, vm); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, _ := Place(st, vms[i%len(vms)])
		sink = d
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "placements/s")
}

var sinkIndex int

// BenchmarkFloorFirstFit is the floor: the first host whose unreserved
// capacity covers the VM, nothing else checked, no verdicts.
func BenchmarkFloorFirstFit(b *testing.B) {
	st, vms := benchCluster()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vm := vms[i%len(vms)]
		sinkIndex = -1
		for j := range st.Hosts {
			h := &st.Hosts[j]
			if h.CPUCapacity-h.CPUReserved >= vm.CPUReservation && h.MemCapacity-h.MemReserved >= vm.MemReservation {
				sinkIndex = j
				break
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "placements/s")
}

// BenchmarkFloorFullScan is the floor for any spreading placer: every host's
// capacity checked and scored, best kept, no rules and no verdicts.
func BenchmarkFloorFullScan(b *testing.B) {
	st, vms := benchCluster()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vm := vms[i%len(vms)]
		best, bestScore := -1, -1.0
		for j := range st.Hosts {
			h := &st.Hosts[j]
			if h.CPUCapacity-h.CPUReserved >= vm.CPUReservation && h.MemCapacity-h.MemReserved >= vm.MemReservation {
				if s := score(h, vm); s > bestScore {
					best, bestScore = j, s
				}
			}
		}
		sinkIndex = best
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "placements/s")
}
