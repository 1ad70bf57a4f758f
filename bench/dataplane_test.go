package bench

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/runtime"
)

// Goals from issue 3 ("Benchmarks").
const (
	powerOnSamples = 50                     // VMs per side in BenchmarkPowerOn
	goalRatio      = 1.3                    // podsphere p50 and p99 within 1.3x the floor
	goalP99        = 500 * time.Millisecond // podsphere power-on p99
	burstVMs       = 100                    // VMs powered on at once in BenchmarkPowerOnBurst
	goalBurst      = 10 * time.Second       // until all of them run with an IP
)

// Subnets of the floor's and the driver's bridges, inside their own netns;
// outside the lab's cluster CIDR so nothing routes between them.
const (
	floorSubnet  = "10.250.1.0/24"
	driverSubnet = "10.250.2.0/24"
)

func driverSpec(id string) runtime.VMSpec {
	alloc := api.Allocation{Limit: -1, Shares: api.Shares{Level: "normal"}}
	return runtime.VMSpec{
		ID: id, Path: vmFolder + id, NumCPU: 1, MemoryMB: vmMemoryMB, CPU: alloc, Mem: alloc,
		Containers:    []api.Container{{Name: "main", Image: "busybox", Command: httpdArgs}},
		RestartPolicy: "Always",
	}
}

// reportLatency adds a sub-benchmark that only reports figures measured by its parent.
func reportLatency(b *testing.B, name string, d, floor []time.Duration) {
	b.Run(name, func(b *testing.B) {
		b.ReportMetric(float64(percentile(d, 50)), "ns/op")
		b.ReportMetric(ms(percentile(d, 50)), "ms_p50")
		b.ReportMetric(ms(percentile(d, 99)), "ms_p99")
		if floor != nil {
			b.ReportMetric(float64(percentile(d, 50))/float64(percentile(floor, 50)), "x_floor_p50")
			b.ReportMetric(float64(percentile(d, 99))/float64(percentile(floor, 99)), "x_floor_p99")
		}
	})
}

// BenchmarkPowerOn measures, one VM at a time and interleaved so that load
// from anything else on the machine falls on all three alike:
//   - podsphere: client.Power on a 3-host lab until the watch shows the VM
//     poweredOn with an IP (DRS places it);
//   - floor: netns + CNI ADD + container + task start, directly;
//   - driver: podsphere's host/containerd Driver Create+Start with no
//     vcenter and no agent (where podsphere's own data-plane code stands).
func BenchmarkPowerOn(b *testing.B) {
	requireDataPlane(b)
	l := upLab(b, 3)
	w := l.watchVMs(b)
	l.warmUp(b, w)
	fl := newFloorHost(b, l, floorSubnet)
	dh := newDriverHost(b, l, driverSubnet)
	if _, _, err := fl.run("fwarm"); err != nil { // creates the bridge, first plugin runs
		b.Fatal(err)
	}
	if _, err := dh.run("dwarm"); err != nil {
		b.Fatal(err)
	}
	n := powerOnSamples * b.N
	paths := l.createVMs(b, "lat", n)

	var pod, flo, drv []time.Duration
	var podPh, floPh, drvPh phases
	loadStart := loadavg()
	b.ResetTimer()
	for i := range n {
		for k := range 3 { // who goes first rotates
			switch (i + k) % 3 {
			case 0:
				tr, err := l.powerOn(w, paths[i], time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				pod = append(pod, tr.running.Sub(tr.call))
				podPh.add("api call (Power answered)", tr.answered.Sub(tr.call))
				podPh.add("call -> spec event", tr.specOn.Sub(tr.call))
				podPh.add("spec event -> bootTime", tr.bootTime().Sub(tr.specOn))
				podPh.add("bootTime -> task started", tr.startedAt().Sub(tr.bootTime()))
				podPh.add("task started -> status event", tr.running.Sub(tr.startedAt()))
			case 1:
				start := time.Now()
				_, ph, err := fl.run(fmt.Sprintf("f%03d", i))
				if err != nil {
					b.Fatal(err)
				}
				flo = append(flo, time.Since(start))
				for j, name := range floorPhaseNames {
					floPh.add(name, ph[j])
				}
			case 2:
				start := time.Now()
				ph, err := dh.run(fmt.Sprintf("d%03d", i))
				if err != nil {
					b.Fatal(err)
				}
				drv = append(drv, time.Since(start))
				drvPh.add("Driver.Create", ph[0])
				drvPh.add("Driver.Start", ph[1])
			}
		}
	}
	b.StopTimer()
	loadEnd := loadavg()
	steps := profileSteps(b, l, dh, (n+3)/3+1)

	b.Logf("load average %s at start, %s at end of the measured loop", loadStart, loadEnd)
	b.Logf("steps timed alone afterwards:\n%s", steps)
	b.Logf("power-on latency, %d VMs each, one at a time, same run:\n"+
		"podsphere (vm.power -on -> poweredOn with IP, via watch): %s\n%s"+
		"driver (host/containerd Create+Start, no vcenter/agent):   %s\n%s"+
		"floor (netns + CNI ADD + container + task, directly):       %s\n%s"+
		"ratio podsphere/floor: p50 %.2fx, p99 %.2fx (goal <= %.1fx; p99 <= %v)\n"+
		"first and last 10 samples (VMs per host grow over the run): podsphere p50 %.1fms -> %.1fms, driver %.1fms -> %.1fms, floor %.1fms -> %.1fms",
		n, summary(pod), podPh.String(), summary(drv), drvPh.String(), summary(flo), floPh.String(),
		float64(percentile(pod, 50))/float64(percentile(flo, 50)), float64(percentile(pod, 99))/float64(percentile(flo, 99)),
		goalRatio, goalP99,
		ms(percentile(pod[:10], 50)), ms(percentile(pod[n-10:], 50)), ms(percentile(drv[:10], 50)), ms(percentile(drv[n-10:], 50)),
		ms(percentile(flo[:10], 50)), ms(percentile(flo[n-10:], 50)))
	reportLatency(b, "podsphere", pod, flo)
	reportLatency(b, "driver", drv, flo)
	reportLatency(b, "floor", flo, nil)
}

// BenchmarkPowerOnBurst powers on 100 VMs at once (concurrent client.Power
// calls, VMs created beforehand, DRS placing them) on a 3-host lab and times
// until the watch shows the last one poweredOn with an IP. Before it, the
// floor does the same 100 at once with containerd and CNI directly.
func BenchmarkPowerOnBurst(b *testing.B) {
	requireDataPlane(b)
	l := upLab(b, 3)
	w := l.watchVMs(b)
	l.warmUp(b, w)
	fl := newFloorHost(b, l, floorSubnet)
	if _, _, err := fl.run("fwarm"); err != nil {
		b.Fatal(err)
	}

	b.Logf("load average at start: %s", loadavg())
	defer func() { b.Logf("load average at end: %s", loadavg()) }()
	var podTotal, floTotal time.Duration
	var podLat, floLat []time.Duration
	for iter := range b.N {
		// The floor: 100 goroutines at once.
		lat := make([]time.Duration, burstVMs)
		errs := make([]error, burstVMs)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range burstVMs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				_, _, errs[i] = fl.run(fmt.Sprintf("b%d-%03d", iter, i))
				lat[i] = time.Since(t0)
			}()
		}
		wg.Wait()
		floTotal += time.Since(start)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		floLat = append(floLat, lat...)
		t0 := time.Now()
		if err := fl.stopAll(); err != nil { // podsphere's burst starts on a machine without them
			b.Fatal(err)
		}
		b.Logf("floor: removed %d containers in %v", burstVMs, time.Since(t0).Round(time.Millisecond))

		// podsphere: 100 concurrent vm.power -on.
		paths := l.createVMs(b, fmt.Sprintf("burst%d", iter), burstVMs)
		traces := make([]*trace, burstVMs)
		start = time.Now()
		for i, p := range paths {
			wg.Add(1)
			go func() {
				defer wg.Done()
				traces[i], errs[i] = l.powerOn(w, p, 5*time.Minute)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		var last time.Time
		for _, tr := range traces {
			if tr.running.After(last) {
				last = tr.running
			}
			podLat = append(podLat, tr.running.Sub(tr.call))
		}
		podTotal += last.Sub(start)
		b.Logf("podsphere burst %d: all %d running with IPs after %v\n%s", iter, burstVMs, last.Sub(start).Round(time.Millisecond), burstBreakdown(start, traces))
	}
	b.Logf("100 VMs at once: podsphere %v (goal <= %v), floor %v; per-VM latency podsphere %s; floor %s",
		(podTotal / time.Duration(b.N)).Round(time.Millisecond), goalBurst, (floTotal / time.Duration(b.N)).Round(time.Millisecond), summary(podLat), summary(floLat))
	report := func(name string, total time.Duration, lat []time.Duration) {
		b.Run(name, func(b *testing.B) {
			b.ReportMetric(float64(total/time.Duration(b.N)), "ns/op")
			b.ReportMetric((total / time.Duration(b.N)).Seconds(), "s_all_running")
			b.ReportMetric(ms(percentile(lat, 50)), "ms_p50")
			b.ReportMetric(ms(percentile(lat, 99)), "ms_p99")
		})
	}
	report("podsphere", podTotal, podLat)
	report("floor", floTotal, floLat)
}

// burstBreakdown says, host by host, where a burst's time went, from the
// timestamps the agents put in the status (bootTime: the driver is about to
// start the VM's tasks; containers[].startedAt: they started) and the
// watch's own arrival times.
func burstBreakdown(start time.Time, traces []*trace) string {
	byHost := map[string][]*trace{}
	var hosts []string
	var calls []time.Duration
	for _, tr := range traces {
		h := api.Base(tr.status.Host)
		if _, ok := byHost[h]; !ok {
			hosts = append(hosts, h)
		}
		byHost[h] = append(byHost[h], tr)
		calls = append(calls, tr.answered.Sub(tr.call))
	}
	slices.Sort(hosts)
	var sb strings.Builder
	fmt.Fprintf(&sb, "  api calls answered: %s\n", summary(calls))
	off := func(t time.Time) string { return fmt.Sprintf("%6.0fms", ms(t.Sub(start))) }
	for _, h := range hosts {
		trs := byHost[h]
		slices.SortFunc(trs, func(a, b *trace) int { return a.bootTime().Compare(b.bootTime()) })
		var firstSpec, lastSpec, lastStarted, firstRunning, lastRunning time.Time
		var gaps, starts, reportLag []time.Duration
		for i, tr := range trs {
			if firstSpec.IsZero() || tr.specOn.Before(firstSpec) {
				firstSpec = tr.specOn
			}
			if tr.specOn.After(lastSpec) {
				lastSpec = tr.specOn
			}
			if tr.startedAt().After(lastStarted) {
				lastStarted = tr.startedAt()
			}
			if firstRunning.IsZero() || tr.running.Before(firstRunning) {
				firstRunning = tr.running
			}
			if tr.running.After(lastRunning) {
				lastRunning = tr.running
			}
			if i > 0 {
				gaps = append(gaps, tr.bootTime().Sub(trs[i-1].startedAt()))
			}
			starts = append(starts, tr.startedAt().Sub(tr.bootTime()))
			reportLag = append(reportLag, tr.running.Sub(tr.startedAt()))
		}
		fmt.Fprintf(&sb, "  %s: %d VMs; spec events %s..%s; first bootTime %s; last task started %s; status events %s..%s\n",
			h, len(trs), off(firstSpec), off(lastSpec), off(trs[0].bootTime()), off(lastStarted), off(firstRunning), off(lastRunning))
		fmt.Fprintf(&sb, "    per VM, one after another: previous task started -> next bootTime (create: netns, CNI, cgroup, container) %s\n", summary(gaps))
		fmt.Fprintf(&sb, "    bootTime -> task started %s\n", summary(starts))
		fmt.Fprintf(&sb, "    task started -> status event seen %s\n", summary(reportLag))
	}
	return sb.String()
}
