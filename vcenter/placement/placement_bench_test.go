package placement

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/podsphere/podsphere/api/labels"
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
			r.Kind, r.Mandatory = RuleAntiAffinity, true
			r.VMs = append(r.VMs, member(), member(), member())
		case j < 14:
			r.Kind, r.Mandatory = RuleAffinity, true
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
				if s := score(h, &vm); s > bestScore {
					best, bestScore = j, s
				}
			}
		}
		sinkIndex = best
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "placements/s")
}

// benchNeighbours is how many running VMs the namespace of the VM placed
// by BenchmarkPlaceVMRules has (the cluster's other 95,000 are elsewhere).
const benchNeighbours = 5000

// BenchmarkPlaceVMRules is BenchmarkPlace for VMs with their own rules: a
// hostSelector most hosts match, a preferred host term, required
// anti-affinity to their own app and preferred affinity to a cache, over
// a namespace of 5,000 running VMs in 50 apps.
func BenchmarkPlaceVMRules(b *testing.B) {
	st, vms := benchCluster()
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range st.Hosts {
		st.Hosts[i].Labels = map[string]string{"pool": "general", "rack": fmt.Sprintf("r%d", i%40)}
		if i%10 == 0 {
			st.Hosts[i].Labels["pool"] = "gpu"
		}
	}
	for i := range benchNeighbours {
		st.Neighbours = append(st.Neighbours, RunningVM{Name: fmt.Sprintf("ns-%05d", i), Namespace: "shop",
			Host: st.Hosts[rng.IntN(benchHosts)].Name, Labels: map[string]string{"app": fmt.Sprintf("app-%02d", i%50)}})
	}
	rules := VMRules{
		HostSelector:   labels.MustParse("pool=general"),
		HostPreferred:  []WeightedSelector{{Weight: 10, Selector: labels.MustParse("rack in (r1,r2,r3)")}},
		VMAntiAffinity: []VMTerm{{Selector: labels.MustParse("app=app-07"), Required: true}},
		VMAffinity:     []VMTerm{{Selector: labels.MustParse("app=app-01"), Weight: 50}},
	}
	for i := range vms {
		vms[i].Namespace, vms[i].Labels, vms[i].Rules = "shop", map[string]string{"app": "app-07"}, rules
		if _, err := Place(st, vms[i]); err != nil {
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
