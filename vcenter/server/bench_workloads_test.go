package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/agent"
	"github.com/podsphere/podsphere/host/sim"
	"github.com/podsphere/podsphere/internal/gossip"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// Workload benchmarks: the controllers (real runner, real clock) over the
// real inventory (Badger in a temp dir), with 500 sim hosts reporting the
// VMs placed on them. Two kinds of host:
//
//   - agents: 500 real host agents (host/agent with the host/sim runtime)
//     in this process, each joining vcenter over HTTP, watching its VMs
//     (GET /api/v1/watch?host=...) and writing their status back (PUT
//     /api/v1/status), as `podsphere host --runtime sim` does. vcenter runs
//     without gossip, so hosts stay connected from their join on (each agent
//     still starts its own memberlist, alone).
//   - direct: no HTTP. One store watch in the process hands each VM placed
//     on a host to that host's goroutine, which calls inventory.SetStatus
//     with what a sim host reports (poweredOn and ready, or poweredOff).
//
// Both run only under -bench: `go test ./...` never pays for them.

const (
	fleetHosts = 500
	hostMHz    = 20000
	hostMB     = 65536
)

// loadavg is /proc/loadavg's first three fields (other work on the machine).
func benchLoadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// profileWindow writes a CPU profile of the measured span only (not the
// setup: joining 500 hosts, the first rollout) when
// PODSPHERE_BENCH_CPUPROFILE names a file prefix; the file is
// PREFIX.NAME.prof. It cannot be combined with go test -cpuprofile.
func profileWindow(b *testing.B) (stop func()) {
	prefix := os.Getenv("PODSPHERE_BENCH_CPUPROFILE")
	if prefix == "" {
		return func() {}
	}
	name := strings.NewReplacer("/", "-", "=", "-").Replace(b.Name())
	f, err := os.Create(prefix + "." + name + ".prof")
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// benchCluster is a cluster whose pod CIDR has room for 500 hosts' /24s.
func benchCluster() *api.ClusterSpec { return &api.ClusterSpec{PodCIDR: "10.64.0.0/14"} }

// startAgents runs n sim host agents against e and waits until each has
// joined and opened its watch.
func startAgents(b *testing.B, e *env, n int) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	agents := make([]*agent.Agent, n)
	for i := range n {
		a, err := agent.New(agent.Config{Name: fmt.Sprintf("esx-%03d", i+1), Cluster: cluster, VCenter: e.url,
			JoinToken: e.s.JoinToken(), GossipBind: "127.0.0.1:0", Runtime: sim.New(hostMHz, hostMB, sim.IPPrefix(i)),
			Timings: gossip.DefaultTimings(), Logger: discardLogger()})
		if err != nil {
			b.Fatal(err)
		}
		agents[i] = a
		wg.Go(func() {
			if err := a.Run(ctx); err != nil {
				b.Errorf("agent %s: %v", a.HostPath(), err)
			}
		})
	}
	b.Cleanup(func() { cancel(); wg.Wait() })
	deadline := time.After(2 * time.Minute)
	for _, a := range agents {
		select {
		case <-a.Ready():
		case <-deadline:
			b.Fatalf("agent %s did not join within 2 minutes", a.HostPath())
		}
	}
	// Ready is the join; each agent lists and opens its watch just after.
	time.Sleep(3 * time.Second)
}

// joinHosts registers n sim-sized hosts directly in the inventory.
func joinHosts(b *testing.B, inv *inventory.Inventory, n int) {
	b.Helper()
	for i := range n {
		if _, err := inv.Join(api.JoinRequest{Name: fmt.Sprintf("esx-%03d", i+1), Cluster: cluster, Address: "127.0.0.1:1",
			Runtime: "sim", CPUCapacity: hostMHz, MemCapacity: hostMB}); err != nil {
			b.Fatal(err)
		}
	}
}

// startReporter plays every host in the process: one store watch hands each
// VM placed on a host to that host's goroutine, which reports it as a sim
// host would, running and ready when powered on, off when powered off.
func startReporter(b *testing.B, inv *inventory.Inventory) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := inv.Store().Watch(ctx, store.Query{Kind: api.KindVirtualMachine}, 0)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	queues := map[string]chan *api.Object{}
	wg.Go(func() {
		defer func() {
			for _, q := range queues {
				close(q)
			}
		}()
		for ev := range w.Events() {
			if ev.Type == api.Deleted {
				continue
			}
			var spec api.VMSpec
			var st api.VMStatus
			_ = ev.Object.DecodeSpec(&spec)
			if spec.Host == "" {
				continue
			}
			_ = ev.Object.DecodeStatus(&st)
			on := spec.PowerState == api.PoweredOn
			if st.Host == spec.Host && (on && st.PowerState == api.PoweredOn && st.Ready || !on && st.PowerState == api.PoweredOff) {
				continue
			}
			q := queues[spec.Host]
			if q == nil {
				q = make(chan *api.Object, 4096)
				queues[spec.Host] = q
				user := "host:" + api.Base(spec.Host)
				wg.Go(func() {
					for o := range q {
						reportAsSim(inv, user, o)
					}
				})
			}
			q <- ev.Object
		}
	})
	b.Cleanup(func() { cancel(); w.Stop(); wg.Wait() })
}

// reportAsSim writes the status a sim host reports for o.
func reportAsSim(inv *inventory.Inventory, user string, o *api.Object) {
	var spec api.VMSpec
	_ = o.DecodeSpec(&spec)
	now := time.Now().UTC()
	st := api.VMStatus{Host: spec.Host, PowerState: api.PoweredOff}
	if spec.PowerState == api.PoweredOn {
		st.PowerState, st.Ready, st.ReadySince, st.BootTime = api.PoweredOn, true, now, now
		for _, c := range spec.Containers {
			st.Containers = append(st.Containers, api.ContainerStatus{Name: c.Name, State: "running", StartedAt: now, Ready: true, Started: true})
		}
	}
	o.SetStatus(st)
	o.ResourceVersion = 0
	if _, err := inv.SetStatus(user, o); err != nil && !strings.Contains(err.Error(), "not found") {
		log.Printf("report %s: %v", o.Path, err)
	}
}

// vmWatch follows the VMs one owner owns through a store watch: when each
// first had a host (placed) and when each was first reported poweredOn and
// ready on that host (running).
type vmWatch struct {
	start time.Time
	want  int

	mu                      sync.Mutex
	placed, running         map[string]bool
	lastPlaced, lastRunning time.Time
	done                    chan struct{}
}

func watchVMs(b *testing.B, st *store.Store, owner string, want int) *vmWatch {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := st.Watch(ctx, store.Query{Kind: api.KindVirtualMachine, Filter: func(o *api.Object) bool { return o.Owner == owner }}, 0)
	if err != nil {
		b.Fatal(err)
	}
	v := &vmWatch{want: want, placed: map[string]bool{}, running: map[string]bool{}, done: make(chan struct{})}
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
			v.mu.Lock()
			if spec.Host != "" && !v.placed[ev.Object.Path] {
				v.placed[ev.Object.Path] = true
				v.lastPlaced = now
			}
			if vs.PowerState == api.PoweredOn && vs.Ready && vs.Host == spec.Host && !v.running[ev.Object.Path] {
				v.running[ev.Object.Path] = true
				v.lastRunning = now
				if len(v.running) == v.want {
					close(v.done)
				}
			}
			v.mu.Unlock()
		}
	}()
	b.Cleanup(func() { cancel(); w.Stop() })
	return v
}

// wait waits until want VMs run, or fails after limit.
func (v *vmWatch) wait(b *testing.B, limit time.Duration) {
	b.Helper()
	select {
	case <-v.done:
	case <-time.After(limit):
		v.mu.Lock()
		defer v.mu.Unlock()
		b.Fatalf("after %v: %d placed, %d running of %d", limit, len(v.placed), len(v.running), v.want)
	}
}

// report adds the figures: all running, all placed, and placements/s.
func (v *vmWatch) report(b *testing.B) {
	v.mu.Lock()
	defer v.mu.Unlock()
	running, placed := v.lastRunning.Sub(v.start), v.lastPlaced.Sub(v.start)
	b.ReportMetric(running.Seconds(), "s_all_running")
	b.ReportMetric(placed.Seconds(), "s_all_placed")
	b.ReportMetric(float64(len(v.placed))/placed.Seconds(), "placed/s")
	b.ReportMetric(float64(len(v.running))/running.Seconds(), "running/s")
	b.Logf("load average %s; %d placed in %v, %d running in %v", benchLoadavg(), len(v.placed), placed.Round(time.Millisecond), len(v.running), running.Round(time.Millisecond))
}

// template is the VM every benchmark runs: 1 vCPU, 64 MB, no reservation.
func benchTemplate(image string) api.VMTemplate {
	return api.VMTemplate{Labels: map[string]string{"app": "web"}, Spec: api.VMSpec{NumCPU: 1, MemoryMB: 64,
		CPU: alloc(0, -1, false), Mem: alloc(0, -1, false), Containers: []api.Container{{Name: "main", Image: image}}}}
}

// changeSpec reads the object at path, lets change edit its spec, and
// writes it back through the API, again after a conflict (a controller
// wrote its status meanwhile), as `psc` users would.
func changeSpec[T any](b *testing.B, e *env, path string, change func(*T)) {
	b.Helper()
	for try := 0; ; try++ {
		o, err := e.admin.Get(ctxT(b), path)
		if err != nil {
			b.Fatal(err)
		}
		var spec T
		if err := o.DecodeSpec(&spec); err != nil {
			b.Fatal(err)
		}
		change(&spec)
		o.SetSpec(spec)
		_, err = e.admin.Update(ctxT(b), o)
		if err == nil {
			return
		}
		if !errors.Is(err, api.ErrConflict) || try == 10 {
			b.Fatalf("update %s: %v", path, err)
		}
	}
}

// BenchmarkScaleReplicaSet scales one ReplicaSet from 0 to 10,000 replicas
// over 500 sim hosts and times it until every VM is placed and until every
// one is reported poweredOn and ready. "floor" creates the same 10,000
// powered-on VMs with inventory.Create (64 at a time, as the controller
// does; same admission, placement and owner) with no controller, the
// in-process reporter reporting them.
//
//	go test -run '^$' -bench BenchmarkScaleReplicaSet -benchtime 1x -timeout 30m ./vcenter/server/
func BenchmarkScaleReplicaSet(b *testing.B) {
	const replicas = 10000
	const rsPath = dc + "/replicaset/web"
	for _, mode := range []string{"agents", "direct"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				e := startVCenter(b, Config{})
				e.inventory(b, benchCluster())
				if mode == "agents" {
					startAgents(b, e, fleetHosts)
				} else {
					joinHosts(b, e.s.inv, fleetHosts)
					startReporter(b, e.s.inv)
				}
				e.mustCreate(b, api.New(api.KindReplicaSet, rsPath, api.ReplicaSetSpec{Pool: rootRP, Replicas: 0,
					Selector: api.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: benchTemplate("nginx:1")}))
				v := watchVMs(b, e.s.store, rsPath, replicas)
				stopProfile := profileWindow(b)
				cpu0 := cpuTime()
				b.StartTimer()
				v.start = time.Now()
				changeSpec(b, e, rsPath, func(s *api.ReplicaSetSpec) { s.Replicas = replicas })
				v.wait(b, 10*time.Minute)
				b.StopTimer()
				stopProfile()
				v.report(b)
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/replicas, "cpu-ms/VM")
			}
		})
	}
	b.Run("floor", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			inv, err := inventory.Open(b.TempDir(), inventory.Options{Logger: discardLogger()})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { inv.Close() })
			for _, o := range []*api.Object{api.New(api.KindDatacenter, dc, nil), api.New(api.KindCluster, cluster, *benchCluster())} {
				if _, err := inv.Create("admin", o); err != nil {
					b.Fatal(err)
				}
			}
			joinHosts(b, inv, fleetHosts)
			startReporter(b, inv)
			v := watchVMs(b, inv.Store(), rsPath, replicas)
			tmpl := benchTemplate("nginx:1")
			stopProfile := profileWindow(b)
			cpu0 := cpuTime()
			b.StartTimer()
			v.start = time.Now()
			var wg sync.WaitGroup
			next := make(chan int)
			for range 64 {
				wg.Go(func() {
					for i := range next {
						vs := tmpl.Spec
						vs.Pool, vs.PowerState = rootRP, api.PoweredOn
						o := api.New(api.KindVirtualMachine, fmt.Sprintf("%s/vm/web-%05d", dc, i), vs)
						o.Labels = map[string]string{"app": "web"}
						o.Owner = rsPath
						if _, err := inv.Create("controller:replicaset", o); err != nil {
							b.Error(err)
						}
					}
				})
			}
			for i := range replicas {
				next <- i
			}
			close(next)
			wg.Wait()
			created := time.Since(v.start)
			v.wait(b, 10*time.Minute)
			b.StopTimer()
			stopProfile()
			v.report(b)
			b.ReportMetric(created.Seconds(), "s_all_created")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/replicas, "cpu-ms/VM")
		}
	})
}

// deploymentDone says whether the Deployment's status shows revision rev
// rolled out: NewReplicaSetAvailable with n updated and available.
func deploymentDone(o *api.Object, rev int64, n int) bool {
	var st api.DeploymentStatus
	_ = o.DecodeStatus(&st)
	if st.Revision != rev || st.UpdatedReplicas != n || st.AvailableReplicas != n || st.Replicas != n {
		return false
	}
	for _, c := range st.Conditions {
		if c.Type == "Progressing" && c.Reason == "NewReplicaSetAvailable" {
			return true
		}
	}
	return false
}

// waitDeployment waits, through a store watch, until deploymentDone.
func waitDeployment(b *testing.B, st *store.Store, path string, rev int64, n int, limit time.Duration) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if o, err := st.Get(path); err == nil && deploymentDone(o, rev, n) {
		return
	}
	w, err := st.Watch(ctx, store.Query{Kind: api.KindDeployment, Prefix: path}, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	if o, err := st.Get(path); err == nil && deploymentDone(o, rev, n) {
		return
	}
	for ev := range w.Events() {
		if ev.Type != api.Deleted && deploymentDone(ev.Object, rev, n) {
			return
		}
	}
	o, _ := st.Get(path)
	var ds api.DeploymentStatus
	if o != nil {
		_ = o.DecodeStatus(&ds)
	}
	b.Fatalf("%s not rolled out to revision %d within %v: %+v", path, rev, limit, ds)
}

// BenchmarkRollingUpdate rolls a new template out to a Deployment of 1,000
// replicas (maxSurge 25%, maxUnavailable 25%) over 500 sim hosts: from the
// template change until the Deployment's status says NewReplicaSetAvailable
// with 1,000 updated and available, and the process's CPU time over that
// span per replica.
//
//	go test -run '^$' -bench BenchmarkRollingUpdate -benchtime 1x -timeout 30m ./vcenter/server/
func BenchmarkRollingUpdate(b *testing.B) {
	const replicas = 1000
	const path = dc + "/deployment/web"
	for _, mode := range []string{"agents", "direct"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				e := startVCenter(b, Config{})
				e.inventory(b, benchCluster())
				if mode == "agents" {
					startAgents(b, e, fleetHosts)
				} else {
					joinHosts(b, e.s.inv, fleetHosts)
					startReporter(b, e.s.inv)
				}
				surge := api.Str("25%")
				e.mustCreate(b, api.New(api.KindDeployment, path, api.DeploymentSpec{Pool: rootRP, Replicas: replicas,
					Selector: api.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: benchTemplate("nginx:1"),
					Strategy: api.Strategy{Type: api.RollingUpdate, MaxSurge: &surge}}))
				waitDeployment(b, e.s.store, path, 1, replicas, 5*time.Minute)
				time.Sleep(time.Second) // let the last reconciles settle
				stopProfile := profileWindow(b)
				cpu0 := cpuTime()
				b.StartTimer()
				start := time.Now()
				changeSpec(b, e, path, func(s *api.DeploymentSpec) { s.Template.Spec.Containers[0].Image = "nginx:2" })
				waitDeployment(b, e.s.store, path, 2, replicas, 10*time.Minute)
				took := time.Since(start)
				b.StopTimer()
				stopProfile()
				cpu := cpuTime() - cpu0
				b.ReportMetric(took.Seconds(), "s_rolled_out")
				b.ReportMetric(float64(cpu.Microseconds())/1000/replicas, "cpu-ms/replica")
				b.Logf("load average %s; rolled out in %v, process CPU %v", benchLoadavg(), took.Round(time.Millisecond), cpu.Round(time.Millisecond))
			}
		})
	}
}
