package server

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/vcenter/controllers"
	"github.com/podsphere/podsphere/vcenter/store"
)

// The HA benchmark's fleet (issue 7): 1,000 sim hosts, 50,000 powered-on
// protected VMs (50 a host, restart priorities highest..lowest in turn),
// 10 hosts failing at once: 500 VMs to restart.
const (
	haHosts  = 1000
	haVMs    = 50000
	haFailed = 10
)

var haPriorities = []string{"highest", "high", "medium", "low", "lowest"}

// haHostName is the i-th host (0-based) as joinHosts names it.
func haHostName(i int) string { return fmt.Sprintf("esx-%03d", i+1) }

// haFailedHosts are the hosts that fail: one in every hundred.
func haFailedHosts() []string {
	var out []string
	for i := range haFailed {
		out = append(out, cluster+"/"+haHostName(i*haHosts/haFailed))
	}
	return out
}

// seedRunningVMs writes n powered-on VMs straight into the store, 2000 per
// transaction, already registered on host i%haHosts and reported running
// and ready there, as a cluster at rest looks (the admission index follows
// the store as usual). Placing and powering on 50,000 VMs through the
// inventory would only lengthen the setup.
func seedRunningVMs(b *testing.B, st *store.Store, n int) {
	b.Helper()
	now := time.Now().UTC()
	const perTx = 2000
	for start := 0; start < n; start += perTx {
		_, err := st.Update(func(tx *store.Tx) error {
			for i := start; i < min(n, start+perTx); i++ {
				spec := benchTemplate("nginx:1").Spec
				spec.Pool, spec.PowerState = rootRP, api.PoweredOn
				spec.Host = cluster + "/" + haHostName(i%haHosts)
				spec.HA.RestartPriority = haPriorities[i/haHosts%len(haPriorities)] // mixed on every host
				o := api.New(api.KindVirtualMachine, fmt.Sprintf("%s/vm/vm-%05d", dc, i), spec)
				o.Labels = map[string]string{"app": "web"}
				o.SetStatus(api.VMStatus{Host: spec.Host, PowerState: api.PoweredOn, Ready: true, ReadySince: now, BootTime: now,
					Containers: []api.ContainerStatus{{Name: "main", State: "running", StartedAt: now, Ready: true, Started: true}}})
				if _, err := tx.Create(o); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// passLog keeps every HA pass that took a snapshot.
type passLog struct {
	mu     sync.Mutex
	passes []controllers.HAPass
}

func (l *passLog) add(p controllers.HAPass) {
	l.mu.Lock()
	l.passes = append(l.passes, p)
	l.mu.Unlock()
}

// since is the passes that started at or after t.
func (l *passLog) since(t time.Time) []controllers.HAPass {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []controllers.HAPass
	for _, p := range l.passes {
		if !p.Start.Before(t) {
			out = append(out, p)
		}
	}
	return out
}

// failoverWatch follows a set of VMs through a store watch: when each was
// first registered on a host other than the one it started on, and when
// each was first reported poweredOn and ready there; and, through the
// events, when HA declared each failed host failed.
type failoverWatch struct {
	want int

	mu                      sync.Mutex
	from                    map[string]string // VM path -> the host it ran on
	priority                map[string]string // VM path -> its restart priority
	moved, running          map[string]bool
	moves                   map[string]string    // VM path -> the host it was restarted on
	byPriority              map[string]time.Time // priority -> when its last VM ran
	declared                map[string]time.Time // failed host -> when HA declared it failed
	declaredWant            int
	lastMoved, lastRunning  time.Time
	firstDeclared           time.Time
	cpuDeclared, cpuRunning time.Duration // the process's CPU time then, and when all ran
	lastDeclared            time.Time
	allRunning, allDeclared chan struct{}
}

func watchFailover(b *testing.B, st *store.Store, hosts []string) *failoverWatch {
	b.Helper()
	failed := map[string]bool{}
	for _, h := range hosts {
		failed[h] = true
	}
	f := &failoverWatch{from: map[string]string{}, moved: map[string]bool{}, running: map[string]bool{},
		declared: map[string]time.Time{}, moves: map[string]string{}, byPriority: map[string]time.Time{}, priority: map[string]string{},
		allRunning: make(chan struct{}), allDeclared: make(chan struct{}), declaredWant: len(hosts)}
	for _, o := range st.List(store.Query{Kind: api.KindVirtualMachine}).Items {
		var spec api.VMSpec
		_ = o.DecodeSpec(&spec)
		if failed[spec.Host] {
			f.from[o.Path] = spec.Host
			f.priority[o.Path] = spec.HA.RestartPriority
		}
	}
	f.want = len(f.from)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := st.Watch(ctx, store.Query{Kind: api.KindVirtualMachine, Filter: func(o *api.Object) bool { return f.from[o.Path] != "" }}, 0)
	if err != nil {
		b.Fatal(err)
	}
	ew, err := st.Watch(ctx, store.Query{Kind: api.KindEvent}, 0)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for ev := range w.Events() {
			if ev.Type == api.Deleted {
				continue
			}
			var spec api.VMSpec
			var vs api.VMStatus
			_ = ev.Object.DecodeSpec(&spec)
			_ = ev.Object.DecodeStatus(&vs)
			now := time.Now()
			p := ev.Object.Path
			f.mu.Lock()
			if spec.Host != "" && spec.Host != f.from[p] && !f.moved[p] {
				f.moved[p], f.moves[p] = true, spec.Host
				f.lastMoved = now
			}
			if f.moved[p] && vs.PowerState == api.PoweredOn && vs.Ready && vs.Host == spec.Host && !f.running[p] {
				f.running[p] = true
				f.lastRunning = now
				f.byPriority[f.priority[p]] = now
				if len(f.running) == f.want {
					f.cpuRunning = cpuTime()
					close(f.allRunning)
				}
			}
			f.mu.Unlock()
		}
	}()
	go func() {
		for ev := range ew.Events() {
			var es api.EventSpec
			if ev.Type == api.Deleted || ev.Object.DecodeSpec(&es) != nil || es.Type != "DasHostFailedEvent" || !failed[es.Target] {
				continue
			}
			now := time.Now()
			f.mu.Lock()
			if _, ok := f.declared[es.Target]; !ok {
				f.declared[es.Target] = now
				f.lastDeclared = now
				if f.firstDeclared.IsZero() {
					f.firstDeclared, f.cpuDeclared = now, cpuTime()
				}
				if len(f.declared) == f.declaredWant {
					close(f.allDeclared)
				}
			}
			f.mu.Unlock()
		}
	}()
	b.Cleanup(func() { cancel(); w.Stop(); ew.Stop() })
	return f
}

// wait waits until every watched VM runs on its new host, or fails after limit.
func (f *failoverWatch) wait(b *testing.B, limit time.Duration) {
	b.Helper()
	select {
	case <-f.allRunning:
	case <-time.After(limit):
		f.mu.Lock()
		defer f.mu.Unlock()
		b.Fatalf("after %v: %d of %d failed hosts declared failed, %d of %d VMs restarted elsewhere, %d running",
			limit, len(f.declared), f.declaredWant, len(f.moved), f.want, len(f.running))
	}
}

// check says what is wrong with where the VMs went: every one off the
// failed hosts, none on a failed host, no survivor over MaxPowerOnsPerHost.
func (f *failoverWatch) check(b *testing.B, hosts []string) {
	b.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	per := map[string]int{}
	for _, h := range f.moves {
		if slices.Contains(hosts, h) {
			b.Fatalf("a VM was restarted on failed host %s", h)
		}
		per[h]++
	}
	if len(f.moves) != f.want {
		b.Fatalf("%d of %d VMs moved", len(f.moves), f.want)
	}
	b.Logf("%d VMs restarted over %d hosts", len(f.moves), len(per))
}

// quantile of ds (sorted in place), nearest rank.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// haFleet is vcenter (the real server: inventory, controllers, HA on the
// real clock, no gossip) over 1,000 hosts joined directly in the
// inventory and 50,000 VMs running on them, with the in-process reporter
// playing every host: the "direct" mode of the workload benchmarks. 1,000
// host agents would not fit on this machine's two cores (500 already
// leave vcenter a bit over half of them).
func haFleet(b *testing.B, haOn bool, log *passLog) *env {
	b.Helper()
	cfg := Config{}
	if log != nil {
		cfg.HAObserve = log.add
	}
	e := startVCenter(b, cfg)
	cs := &api.ClusterSpec{PodCIDR: "10.64.0.0/14", HA: api.HAConfig{Enabled: haOn}}
	e.inventory(b, cs)
	joinHosts(b, e.s.inv, haHosts)
	seedRunningVMs(b, e.s.store, haVMs)
	startReporter(b, e.s.inv)
	return e
}

// BenchmarkHAFailover: 1,000 sim hosts, 50,000 powered-on protected VMs
// (five restart priorities), 10 hosts fail at once (marked notResponding,
// as gossip does when it declares a member dead): 500 VMs to restart.
//
//   - ha: vSphere HA's controller on the real server. Detection is set by
//     ha.Timings (without heartbeat datastores, FenceTime + FenceMargin =
//     10 s of silence) and measured only for the record; the restart phase
//     is timed from HA declaring the last host failed (its
//     DasHostFailedEvent) to every VM registered on a survivor and to every
//     one reported poweredOn and ready there. Every pass that took a
//     snapshot in that span is reported: the full pass (snapshot, plan,
//     acting on it) and ha.Decide alone.
//
//   - failover: the floor for HA's write path: the same 500 VMs handed to
//     inventory.Failover directly, 64 at a time, with no planner, no
//     priorities and no controller.
//
//   - create: the floor for a power-on: 500 new powered-on VMs created
//     with inventory.Create, 64 at a time, in the same fleet (admission,
//     DRS placement and the reporter, as a ReplicaSet's scale-up does).
//
//     go test -run '^$' -bench BenchmarkHAFailover -benchtime 1x -timeout 30m ./vcenter/server/
func BenchmarkHAFailover(b *testing.B) {
	b.Run("ha", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			log := &passLog{}
			e := haFleet(b, true, log)
			hosts := haFailedHosts()
			f := watchFailover(b, e.s.store, hosts)
			if f.want != haVMs/haHosts*haFailed {
				b.Fatalf("%d VMs on the failed hosts, want %d", f.want, haVMs/haHosts*haFailed)
			}
			stopProfile := profileWindow(b)
			cpu0 := cpuTime()
			b.StartTimer()
			failed := time.Now()
			for _, h := range hosts {
				e.s.inv.SetConnection(h, false)
			}
			select {
			case <-f.allDeclared:
			case <-time.After(time.Minute):
				b.Fatalf("the failed hosts were not declared failed within a minute")
			}
			f.wait(b, 5*time.Minute)
			b.StopTimer()
			stopProfile()
			cpu := cpuTime() - cpu0
			f.check(b, hosts)
			// The pass that restarted the last VMs may still be clearing
			// records: wait for one that starts after they all ran.
			f.mu.Lock()
			last := f.lastRunning
			f.mu.Unlock()
			for deadline := time.Now().Add(30 * time.Second); len(log.since(last)) == 0; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					b.Fatalf("no HA pass within 30 s after the VMs ran")
				}
			}
			f.mu.Lock()
			// The restart phase starts when HA declared the first host
			// failed: with the ten failures a few milliseconds apart, the
			// passes may not declare them all at once.
			declared, spread := f.firstDeclared, f.lastDeclared.Sub(f.firstDeclared)
			restartCPU := f.cpuRunning - f.cpuDeclared
			registered, running := f.lastMoved.Sub(declared), f.lastRunning.Sub(declared)
			byPrio := map[string]time.Duration{}
			for p, t := range f.byPriority {
				byPrio[p] = t.Sub(declared)
			}
			f.mu.Unlock()
			// Afterwards, with the failed hosts still down: how many passes
			// still take a snapshot, and what the process spends, over 2 s.
			settledFrom, settledCPU, settledPasses := time.Now(), cpuTime(), e.s.HA().Passes()
			time.Sleep(2 * time.Second)
			settledCPU = cpuTime() - settledCPU
			settledSnaps := len(log.since(settledFrom))
			settledPasses = e.s.HA().Passes() - settledPasses
			// The passes of the restart phase: from the one that declared
			// the hosts failed (it started before the event) on.
			var total, decide, snap []time.Duration
			acting := 0
			for _, p := range log.since(declared.Add(-time.Minute)) {
				if p.Start.Add(p.Total).Before(declared) || p.Start.After(f.lastRunning) {
					continue
				}
				total, decide, snap = append(total, p.Total), append(decide, p.Decide), append(snap, p.Snapshot)
				b.Logf("pass at %+v: snapshot %v, Decide %v, acting %v: %d restarts, %d waiting", p.Start.Sub(declared).Round(time.Millisecond),
					p.Snapshot.Round(time.Millisecond), p.Decide.Round(time.Millisecond), (p.Total - p.Snapshot - p.Decide).Round(time.Millisecond), p.Restarts, p.Waiting)
				if p.Restarts > 0 {
					acting++
				}
			}
			t := ha.DefaultTimings()
			b.ReportMetric((t.FenceTime + t.FenceMargin).Seconds(), "s_detect_timings")
			b.ReportMetric(declared.Sub(failed).Seconds(), "s_detect_measured")
			b.ReportMetric(spread.Seconds(), "s_declared_spread")
			b.ReportMetric(registered.Seconds(), "s_all_registered")
			b.ReportMetric(running.Seconds(), "s_all_running")
			b.ReportMetric(restartCPU.Seconds(), "cpu-s_restart")
			b.ReportMetric(float64(len(total)), "passes")
			b.ReportMetric(ms(quantile(total, 0.5)), "pass-ms_p50")
			b.ReportMetric(ms(quantile(total, 1)), "pass-ms_max")
			b.ReportMetric(ms(quantile(decide, 0.5)), "decide-ms_p50")
			b.ReportMetric(ms(quantile(decide, 1)), "decide-ms_max")
			b.ReportMetric(ms(quantile(snap, 0.5)), "snapshot-ms_p50")
			b.ReportMetric(float64(settledSnaps), "settled-snapshots")
			b.ReportMetric(0, "ns/op") // the figures above say it; ns/op would include detection
			b.Logf("afterwards, failed hosts still down: %d passes in 2 s, %d of them took a snapshot; process CPU %v",
				settledPasses, settledSnaps, settledCPU.Round(time.Millisecond))
			b.Logf("load average %s; declared failed %v after the failure; restart phase: all registered +%v, all running +%v; "+
				"all running by priority %v; %d passes (%d acting): pass p50 %v max %v, Decide p50 %v max %v, snapshot p50 %v; process CPU %v (restart phase %v)",
				benchLoadavg(), declared.Sub(failed).Round(time.Millisecond), registered.Round(time.Millisecond), running.Round(time.Millisecond),
				roundAll(byPrio), len(total), acting, quantile(total, 0.5).Round(time.Millisecond), quantile(total, 1).Round(time.Millisecond),
				quantile(decide, 0.5).Round(time.Millisecond), quantile(decide, 1).Round(time.Millisecond), quantile(snap, 0.5).Round(time.Millisecond),
				cpu.Round(time.Millisecond), restartCPU.Round(time.Millisecond))
		}
	})
	b.Run("failover", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			e := haFleet(b, false, nil)
			hosts := haFailedHosts()
			for _, h := range hosts {
				e.s.inv.SetConnection(h, false)
			}
			f := watchFailover(b, e.s.store, hosts)
			down := map[string]bool{}
			for _, h := range hosts {
				down[h] = true
			}
			f.mu.Lock()
			from := maps.Clone(f.from)
			f.mu.Unlock()
			stopProfile := profileWindow(b)
			b.StartTimer()
			start := time.Now()
			parallel(64, from, func(path, host string) {
				if _, ok, err := e.s.inv.Failover(path, host, "host failed", 1, down); err != nil || !ok {
					b.Errorf("failover %s: %v (done %v)", path, err, ok)
				}
			})
			f.wait(b, 5*time.Minute)
			b.StopTimer()
			stopProfile()
			f.check(b, hosts)
			f.reportFrom(b, start)
		}
	})
	b.Run("create", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			e := haFleet(b, false, nil)
			paths := map[string]string{}
			for i := range haVMs / haHosts * haFailed {
				paths[fmt.Sprintf("%s/vm/new-%05d", dc, i)] = haPriorities[i%len(haPriorities)]
			}
			v := watchVMs(b, e.s.store, "", len(paths))
			stopProfile := profileWindow(b)
			b.StartTimer()
			v.start = time.Now()
			parallel(64, paths, func(path, prio string) {
				spec := benchTemplate("nginx:1").Spec
				spec.Pool, spec.PowerState, spec.HA.RestartPriority = rootRP, api.PoweredOn, prio
				o := api.New(api.KindVirtualMachine, path, spec)
				o.Labels = map[string]string{"app": "web"}
				if _, err := e.s.inv.Create("admin", o); err != nil {
					b.Error(err)
				}
			})
			v.wait(b, 5*time.Minute)
			b.StopTimer()
			stopProfile()
			v.report(b)
			b.ReportMetric(0, "ns/op")
		}
	})
}

// reportFrom reports the floors' figures, timed from start.
func (f *failoverWatch) reportFrom(b *testing.B, start time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b.ReportMetric(f.lastMoved.Sub(start).Seconds(), "s_all_registered")
	b.ReportMetric(f.lastRunning.Sub(start).Seconds(), "s_all_running")
	b.ReportMetric(0, "ns/op")
	b.Logf("load average %s; %d registered elsewhere in %v, running in %v", benchLoadavg(), len(f.moved),
		f.lastMoved.Sub(start).Round(time.Millisecond), f.lastRunning.Sub(start).Round(time.Millisecond))
}

func roundAll(m map[string]time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	for k, v := range m {
		out[k] = v.Round(time.Millisecond)
	}
	return out
}

// parallel runs fn over every entry of m, n at a time.
func parallel(n int, m map[string]string, fn func(k, v string)) {
	type kv struct{ k, v string }
	next := make(chan kv)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for x := range next {
				fn(x.k, x.v)
			}
		})
	}
	for k, v := range m {
		next <- kv{k, v}
	}
	close(next)
	wg.Wait()
}
