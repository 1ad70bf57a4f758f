package server

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/api/manifest"
	"github.com/podsphere/podsphere/host/agent"
	"github.com/podsphere/podsphere/host/runtime"
	"github.com/podsphere/podsphere/host/sim"
	"github.com/podsphere/podsphere/vcenter/controllers"
)

// rolloutManifest is what `psc apply -f` would send: 6 replicas rolled 2
// over and 1 under; each new VM is ready a second after it starts (the sim
// host honours the readiness probe's initial delay), so a rollout takes
// several seconds and a kill lands in the middle of it.
const rolloutManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 6
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 2, maxUnavailable: 1}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: main
        image: busybox:1
        ports: [{name: http, containerPort: 80}]
        resources:
          requests: {cpu: 100m, memory: 32Mi}
        readinessProbe:
          httpGet: {path: /, port: http}
          initialDelaySeconds: 1
          periodSeconds: 1
`

const (
	rolloutDeploy = dc + "/deployment/web"
	rolloutSurge  = 2
)

// slowStopSim is a sim host whose VMs take 100-400 ms to stop, as real
// containers take a moment after SIGTERM: meanwhile the VM is still on and
// its host reports it so, which is the "still stopping" the Deployment
// controller must count, also across a vcenter restart.
type slowStopSim struct {
	*sim.Driver
	mu  sync.Mutex
	rng *rand.Rand
}

func (s *slowStopSim) Stop(ctx context.Context, id string, timeout time.Duration) error {
	s.mu.Lock()
	d := 100*time.Millisecond + time.Duration(s.rng.IntN(300))*time.Millisecond
	s.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Driver.Stop(ctx, id, timeout)
}

var _ runtime.Runtime = (*slowStopSim)(nil)

// TestRolloutSurvivesKill9 runs a real vcenter process (a child, as
// TestDurabilityUnderKill9 does) with three in-process sim host agents that
// gossip with it and report their VMs, and a Deployment of 6 replicas
// (maxSurge 2, maxUnavailable 1). It rolls out new templates and scales up,
// SIGKILLs vcenter at random points of each rollout and in the middle of
// the scale-up, and restarts it on the same data dir (same ports) each time.
// It asserts:
//
//   - throughout, at every revision the inventory went through (a watch of
//     every change, resumed across restarts, so no state is missed), no more
//     than replicas + maxSurge of the Deployment's VMs are powered on
//     counting VMs still stopping (spec or status poweredOn), and no VM
//     leaves the inventory while its host still reports it on;
//   - throughout, sampled every 20 ms from the hosts' runtimes themselves,
//     no more than replicas + maxSurge VMs run, and none runs on two hosts;
//   - after every restart's rollout, the controllers converge to exactly
//     the desired count, all of the current template, available, and the
//     hosts run exactly those VMs: none lost, none duplicated, no orphan.
func TestRolloutSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns vcenter child processes and runs gossip")
	}
	start := time.Now()
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill points seeded with %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))

	logPath := filepath.Join(t.TempDir(), "rollout.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("--- vcenter and agent log (last 80 lines):\n%s", strings.Join(lines[max(0, len(lines)-80):], "\n"))
		}
	})

	dir := t.TempDir()
	apiAddr, gossipAddr := freeTCPAddr(t), freeGossipAddr(t)
	childEnv := []string{childListenEnv + "=" + apiAddr, childGossipEnv + "=" + gossipAddr, "VCENTER_CHILD_VERBOSE=1"}
	vc := startChildWith(t, dir, childEnv, logf)
	ctx := ctxT(t)
	for _, o := range []*api.Object{api.New(api.KindDatacenter, dc, nil), api.New(api.KindCluster, cluster, nil)} {
		if _, err := vc.admin.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	joinToken, err := os.ReadFile(filepath.Join(dir, "join.token"))
	if err != nil {
		t.Fatal(err)
	}
	hosts := startRolloutHosts(t, vc.url, gossipAddr, strings.TrimSpace(string(joinToken)), seed, logf)
	for _, h := range hosts {
		eventually(t, h.name+" connected", 30*time.Second, func() bool { return rolloutHostState(t, vc.admin, h.name) == api.HostConnected })
	}

	items, err := manifest.Decode(strings.NewReader(rolloutManifest), manifest.Context{Datacenter: "dc1", Cluster: "c1"})
	if err != nil || len(items) != 1 || items[0].Object.Path != rolloutDeploy {
		t.Fatalf("manifest: %v, %+v", err, items)
	}
	w := newSurgeWatch(t, vc.admin, hosts)
	if _, err := vc.admin.Create(ctx, items[0].Object); err != nil {
		t.Fatal(err)
	}
	w.waitConverged(6, "busybox:1", "initial rollout")
	t.Logf("6 VMs of revision 1 available in %v", time.Since(start).Round(time.Millisecond))

	restart := func(why string) {
		t.Helper()
		vc.kill()
		w.noteKill(why)
		// Down for a moment: the hosts keep stopping and starting what they
		// were told, and cannot report it until vcenter is back.
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		vc = startChildWith(t, dir, childEnv, logf)
	}
	change := func(f func(*api.DeploymentSpec)) {
		t.Helper()
		for {
			o, err := vc.admin.Get(ctxT(t), rolloutDeploy)
			if err != nil {
				t.Fatal(err)
			}
			var spec api.DeploymentSpec
			_ = o.DecodeSpec(&spec)
			f(&spec)
			o.SetSpec(spec)
			if _, err := vc.admin.Update(ctxT(t), o); err == nil {
				return
			} else if !errors.Is(err, api.ErrConflict) {
				t.Fatal(err)
			}
		}
	}
	setImage := func(image string) func(*api.DeploymentSpec) {
		return func(s *api.DeploymentSpec) { s.Template.Spec.Containers[0].Image = image }
	}
	// killDuring waits a random time up to maxWait, or until the rollout
	// completes, and kills vcenter.
	killDuring := func(maxWait time.Duration, why string) {
		t.Helper()
		deadline := time.Now().Add(time.Duration(rng.Int64N(int64(maxWait))))
		for time.Now().Before(deadline) && w.inProgress() {
			time.Sleep(5 * time.Millisecond)
		}
		restart(why)
	}

	replicas := 6
	rounds := []struct {
		name  string
		image string
		f     func(*api.DeploymentSpec)
		kills int
	}{
		{"rollout to busybox:2, one kill", "busybox:2", setImage("busybox:2"), 1},
		{"rollout to busybox:3, killed again while recovering", "busybox:3", setImage("busybox:3"), 2},
		{"env change, one kill", "busybox:3", func(s *api.DeploymentSpec) {
			s.Template.Spec.Containers[0].Env = append(s.Template.Spec.Containers[0].Env, api.EnvVar{Name: "MODE", Value: "blue"})
		}, 1},
	}
	for _, r := range rounds {
		began := time.Now()
		change(r.f)
		killDuring(2500*time.Millisecond, r.name)
		for range r.kills - 1 {
			// The restarted controllers have just resumed: kill them again.
			killDuring(1500*time.Millisecond, r.name+" (again)")
		}
		w.waitConverged(replicas, r.image, r.name)
		t.Logf("%s: converged after %v", r.name, time.Since(began).Round(time.Millisecond))
	}

	// A scale-up, killed once its first new VM exists and before all are available.
	began := time.Now()
	replicas = 9
	change(func(s *api.DeploymentSpec) { s.Replicas = replicas })
	eventually(t, "the scale-up's first new VM", 20*time.Second, func() bool { return w.members() > 6 })
	time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
	restart("scale-up 6 -> 9")
	w.waitConverged(replicas, "busybox:3", "scale-up")
	t.Logf("scale-up 6 -> 9: converged after %v", time.Since(began).Round(time.Millisecond))

	// And a rollout of the bigger Deployment (replicas + maxSurge = 11), killed twice.
	began = time.Now()
	change(setImage("busybox:4"))
	killDuring(2500*time.Millisecond, "rollout of 9 to busybox:4")
	killDuring(2500*time.Millisecond, "rollout of 9 to busybox:4 (again)")
	w.waitConverged(replicas, "busybox:4", "rollout of 9")
	t.Logf("rollout of 9 to busybox:4: converged after %v", time.Since(began).Round(time.Millisecond))

	// And once exactly while retired VMs are still stopping: the restarted
	// controllers must count them until their hosts report them off.
	began = time.Now()
	change(setImage("busybox:5"))
	eventually(t, "a retired VM still stopping", 20*time.Second, func() bool { return w.stopping() > 0 })
	restart("rollout of 9 to busybox:5, VMs stopping")
	w.waitConverged(replicas, "busybox:5", "rollout of 9, killed while VMs stop")
	t.Logf("rollout of 9 to busybox:5: converged after %v", time.Since(began).Round(time.Millisecond))

	w.stop()
	w.report()
	t.Logf("test took %v", time.Since(start).Round(time.Millisecond))
}

// rolloutHost is one in-process host agent on a slow-stopping sim runtime.
type rolloutHost struct {
	name string
	rt   *slowStopSim
}

func startRolloutHosts(t *testing.T, url, gossipAddr, token string, seed uint64, logw *os.File) []*rolloutHost {
	t.Helper()
	var hosts []*rolloutHost
	var cancels []context.CancelFunc
	var dones []chan error
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("esx-%02d", i)
		rt := &slowStopSim{Driver: sim.New(8000, 16384, ""), rng: rand.New(rand.NewPCG(seed, uint64(i)))}
		a, err := agent.New(agent.Config{Name: name, Cluster: cluster, VCenter: url, JoinToken: token,
			Join: []string{gossipAddr}, GossipBind: "127.0.0.1:0", Runtime: rt,
			Timings: testTimings(), Logger: log.New(logw, name+": ", log.Lmicroseconds)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		cancels, dones = append(cancels, cancel), append(dones, done)
		hosts = append(hosts, &rolloutHost{name: name, rt: rt})
	}
	// Stopped together: each leaves the gossip, which takes a moment.
	t.Cleanup(func() {
		for _, c := range cancels {
			c()
		}
		for i, d := range dones {
			select {
			case err := <-d:
				if err != nil {
					t.Errorf("agent %s: Run: %v", hosts[i].name, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("agent %s did not stop within 30 s", hosts[i].name)
			}
		}
	})
	return hosts
}

func rolloutHostState(t *testing.T, c *client.Client, name string) string {
	o, err := c.Get(ctxT(t), cluster+"/"+name)
	if err != nil {
		return ""
	}
	var st api.HostStatus
	_ = o.DecodeStatus(&st)
	return st.State
}

// freeTCPAddr is a loopback address with a port free now, for a server
// that must come back on the same address after a restart.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// freeGossipAddr is a loopback port free for both TCP and UDP (memberlist binds both).
func freeGossipAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("no loopback port free for both TCP and UDP")
	return ""
}

// surgeWatch follows every change of the inventory through a watch that
// resumes, across vcenter restarts, from the last revision it saw (watch
// events are durable, so a restarted vcenter continues after them), and
// checks the Deployment's surge bound at every revision. It also samples
// the hosts' runtimes every 20 ms.
type surgeWatch struct {
	t     *testing.T
	c     *client.Client // the admin client: vcenter keeps its address and token
	hosts []*rolloutHost

	cancel context.CancelFunc
	done   sync.WaitGroup

	mu          sync.Mutex
	objs        map[string]*api.Object // VMs, replica sets and the Deployment, by path
	rev         uint64
	states      int // revisions checked
	resumes     int
	samples     int
	maxOn       int // most VMs on or stopping at one revision
	maxStopping int // most VMs retired but still reported on
	maxRunning  int // most VMs running on the hosts at one sample
	limit       int // replicas + maxSurge at the last revision seen
	violations  []string
	nViolations int
	kills       []string
	midKills    int // kills that found a rollout or scale-up under way
}

func newSurgeWatch(t *testing.T, c *client.Client, hosts []*rolloutHost) *surgeWatch {
	t.Helper()
	w := &surgeWatch{t: t, c: c, hosts: hosts, objs: map[string]*api.Object{}}
	// Listed while nothing writes: the revision is durable, so the watch
	// can always resume after it.
	l, err := c.List(ctxT(t), client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range l.Items {
		w.apply(api.WatchEvent{Type: api.Added, Revision: o.ResourceVersion, Object: o})
	}
	w.rev = l.Revision
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.done.Add(2)
	go func() { defer w.done.Done(); w.follow(ctx) }()
	go func() { defer w.done.Done(); w.sample(ctx) }()
	t.Cleanup(w.stop)
	return w
}

func (w *surgeWatch) stop() {
	w.cancel()
	w.done.Wait()
}

func (w *surgeWatch) follow(ctx context.Context) {
	for ctx.Err() == nil {
		w.mu.Lock()
		from := w.rev
		w.mu.Unlock()
		events, wait, err := w.c.Watch(ctx, client.ListOptions{}, from)
		if err != nil {
			time.Sleep(20 * time.Millisecond) // vcenter is down
			continue
		}
		for ev := range events {
			w.mu.Lock()
			w.apply(ev)
			w.mu.Unlock()
		}
		err = wait()
		if errors.Is(err, api.ErrGone) {
			w.mu.Lock()
			w.violate(fmt.Sprintf("watch from revision %d: %v (the change log lost revisions the watch had not seen)", from, err))
			w.mu.Unlock()
			return
		}
		w.mu.Lock()
		w.resumes++
		w.mu.Unlock()
	}
}

// violate records a broken promise; the first 10 are kept whole.
func (w *surgeWatch) violate(msg string) {
	w.nViolations++
	if len(w.violations) < 10 {
		w.violations = append(w.violations, msg)
	}
}

// violationText says what was broken, or "" when nothing was. Called under mu.
func (w *surgeWatch) violationText() string {
	if w.nViolations == 0 {
		return ""
	}
	return fmt.Sprintf("%d violations, the first %d:\n%s", w.nViolations, len(w.violations), strings.Join(w.violations, "\n"))
}

// apply takes one change and checks the bound in the state it leads to. Called under mu.
func (w *surgeWatch) apply(ev api.WatchEvent) {
	if ev.Revision > w.rev {
		w.rev = ev.Revision
	}
	o := ev.Object
	if o == nil || (o.Kind != api.KindVirtualMachine && o.Kind != api.KindReplicaSet && o.Kind != api.KindDeployment) {
		return
	}
	if ev.Type == api.Deleted {
		if o.Kind == api.KindVirtualMachine {
			var st api.VMStatus
			_ = o.DecodeStatus(&st)
			if st.PowerState == api.PoweredOn {
				w.violate(fmt.Sprintf("revision %d: %s removed while its host %s still reports it on", ev.Revision, o.Path, st.Host))
			}
		}
		delete(w.objs, o.Path)
	} else {
		w.objs[o.Path] = o
	}
	w.check(ev.Revision)
}

// deployment is the Deployment's spec and whether it exists. Called under mu.
func (w *surgeWatch) deployment() (api.DeploymentSpec, *api.Object) {
	var spec api.DeploymentSpec
	d := w.objs[rolloutDeploy]
	if d != nil {
		_ = d.DecodeSpec(&spec)
	}
	return spec, d
}

// ownVMs are the Deployment's VMs with their decoded spec and status. Called under mu.
func (w *surgeWatch) ownVMs() []rolloutVM {
	var out []rolloutVM
	for _, o := range w.objs {
		if o.Kind != api.KindVirtualMachine {
			continue
		}
		rs := w.objs[o.Owner]
		if rs == nil || rs.Owner != rolloutDeploy {
			continue
		}
		v := rolloutVM{obj: o, hash: rs.Labels[controllers.TemplateHashLabel]}
		_ = o.DecodeSpec(&v.spec)
		_ = o.DecodeStatus(&v.status)
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].obj.Path < out[j].obj.Path })
	return out
}

type rolloutVM struct {
	obj    *api.Object
	hash   string // of its replica set
	spec   api.VMSpec
	status api.VMStatus
}

func (v rolloutVM) on() bool {
	return v.spec.PowerState == api.PoweredOn || v.status.PowerState == api.PoweredOn
}

func (w *surgeWatch) check(rev uint64) {
	spec, d := w.deployment()
	if d == nil {
		return
	}
	w.states++
	limit := spec.Replicas + rolloutSurge
	w.limit = limit
	n, stopping := 0, 0
	var desc []string
	for _, v := range w.ownVMs() {
		if !v.on() {
			continue
		}
		n++
		state := "on"
		if v.spec.Removing || v.spec.PowerState != api.PoweredOn {
			stopping++
			state = "stopping"
		} else if v.status.PowerState != api.PoweredOn {
			state = "starting"
		}
		desc = append(desc, fmt.Sprintf("%s(%s %s)", api.Base(v.obj.Path), v.hash, state))
	}
	w.maxOn = max(w.maxOn, n)
	w.maxStopping = max(w.maxStopping, stopping)
	if n > limit {
		w.violate(fmt.Sprintf("revision %d: %d VMs of %s on or stopping, more than replicas %d + maxSurge %d: %s",
			rev, n, rolloutDeploy, spec.Replicas, rolloutSurge, strings.Join(desc, " ")))
	}
}

// sample counts what the hosts' runtimes run, every 20 ms.
func (w *surgeWatch) sample(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		running := 0
		where := map[string][]string{}
		for _, h := range w.hosts {
			vms, _ := h.rt.List(ctx)
			for _, v := range vms {
				where[v.ID] = append(where[v.ID], h.name)
				if v.PowerState == api.PoweredOn && strings.HasPrefix(v.Path, dc+"/vm/web-") {
					running++
				}
			}
		}
		w.mu.Lock()
		w.samples++
		w.maxRunning = max(w.maxRunning, running)
		// The limit read after the sample: replicas only grow in this test.
		if running > w.limit {
			w.violate(fmt.Sprintf("the hosts run %d VMs of %s, more than replicas + maxSurge = %d", running, rolloutDeploy, w.limit))
		}
		for id, hs := range where {
			if len(hs) > 1 {
				w.violate(fmt.Sprintf("VM %s exists on hosts %v", id, hs))
			}
		}
		w.mu.Unlock()
	}
}

// inProgress says whether the latest template is not fully rolled out in
// what the watch has seen.
func (w *surgeWatch) inProgress() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	spec, d := w.deployment()
	if d == nil {
		return true
	}
	hash := controllers.TemplateHash(spec.Template)
	ready := 0
	for _, v := range w.ownVMs() {
		if v.hash != hash || v.spec.Removing {
			return true
		}
		if v.status.Ready && v.status.PowerState == api.PoweredOn {
			ready++
		}
	}
	return ready != spec.Replicas
}

// members counts the Deployment's VMs not being removed, as the watch saw them.
func (w *surgeWatch) members() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, v := range w.ownVMs() {
		if !v.spec.Removing {
			n++
		}
	}
	return n
}

// stopping counts the Deployment's retired VMs still reported on.
func (w *surgeWatch) stopping() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, v := range w.ownVMs() {
		if v.spec.Removing && v.status.PowerState == api.PoweredOn {
			n++
		}
	}
	return n
}

// noteKill records where a rollout was when vcenter was killed.
func (w *surgeWatch) noteKill(why string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	spec, _ := w.deployment()
	hash := controllers.TemplateHash(spec.Template)
	var old, cur, ready, stopping int
	for _, v := range w.ownVMs() {
		switch {
		case v.spec.Removing:
			if v.status.PowerState == api.PoweredOn {
				stopping++
			}
		case v.hash == hash:
			cur++
			if v.status.Ready {
				ready++
			}
		default:
			old++
		}
	}
	if old > 0 || stopping > 0 || ready < spec.Replicas {
		w.midKills++
	}
	w.kills = append(w.kills, fmt.Sprintf("%s: killed at revision %d with %d old VMs, %d new (%d ready of %d), %d stopping",
		why, w.rev, old, cur, ready, spec.Replicas, stopping))
}

// waitConverged waits until the Deployment holds exactly replicas VMs of
// its current template (image), all available, and the hosts run exactly
// those; then checks that no violation was seen so far.
func (w *surgeWatch) waitConverged(replicas int, image, what string) {
	w.t.Helper()
	var why string
	deadline := time.Now().Add(30 * time.Second)
	for {
		why = w.converged(replicas, image)
		if why == "" {
			break
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: not converged after 30 s: %s", what, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if v := w.violationText(); v != "" {
		w.t.Fatalf("%s: %s", what, v)
	}
}

// converged says what is not as it should be yet ("" when all is), read
// through the API and from the hosts.
func (w *surgeWatch) converged(replicas int, image string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := w.c.Get(ctx, rolloutDeploy)
	if err != nil {
		return err.Error()
	}
	var spec api.DeploymentSpec
	var st api.DeploymentStatus
	_ = d.DecodeSpec(&spec)
	_ = d.DecodeStatus(&st)
	if spec.Replicas != replicas || spec.Template.Spec.Containers[0].Image != image {
		return fmt.Sprintf("the Deployment asks %d of %s", spec.Replicas, spec.Template.Spec.Containers[0].Image)
	}
	if st.ObservedGeneration != d.Generation || st.Replicas != replicas || st.UpdatedReplicas != replicas ||
		st.ReadyReplicas != replicas || st.AvailableReplicas != replicas || st.UnavailableReplicas != 0 {
		return fmt.Sprintf("Deployment status %+v (generation %d)", st, d.Generation)
	}
	l, err := w.c.List(ctx, client.ListOptions{})
	if err != nil {
		return err.Error()
	}
	hash := controllers.TemplateHash(spec.Template)
	sets := map[string]*api.Object{}
	for _, o := range l.Items {
		if o.Kind == api.KindReplicaSet && o.Owner == rolloutDeploy {
			sets[o.Path] = o
			var rs api.ReplicaSetSpec
			_ = o.DecodeSpec(&rs)
			if want := map[bool]int{true: replicas, false: 0}[o.Labels[controllers.TemplateHashLabel] == hash]; rs.Replicas != want {
				return fmt.Sprintf("replica set %s has replicas %d, want %d", o.Path, rs.Replicas, want)
			}
		}
	}
	vms := map[string]api.VMStatus{} // by UID
	for _, o := range l.Items {
		if o.Kind != api.KindVirtualMachine {
			continue
		}
		rs := sets[o.Owner]
		if rs == nil {
			return fmt.Sprintf("VM %s is not the Deployment's (owner %q)", o.Path, o.Owner)
		}
		var vs api.VMSpec
		var vst api.VMStatus
		_ = o.DecodeSpec(&vs)
		_ = o.DecodeStatus(&vst)
		switch {
		case rs.Labels[controllers.TemplateHashLabel] != hash:
			return fmt.Sprintf("VM %s of old replica set %s is still there", o.Path, rs.Path)
		case vs.Removing || vs.PowerState != api.PoweredOn || vst.PowerState != api.PoweredOn || !vst.Ready:
			return fmt.Sprintf("VM %s: spec %s removing=%v, status %s ready=%v", o.Path, vs.PowerState, vs.Removing, vst.PowerState, vst.Ready)
		case vs.Containers[0].Image != image:
			return fmt.Sprintf("VM %s runs %s", o.Path, vs.Containers[0].Image)
		}
		vms[o.UID] = vst
	}
	if len(vms) != replicas {
		return fmt.Sprintf("%d VMs, want %d", len(vms), replicas)
	}
	// The hosts run exactly those VMs, each once, where vcenter says.
	seen := map[string]bool{}
	for _, h := range w.hosts {
		rvms, _ := h.rt.List(ctx)
		for _, v := range rvms {
			st, ok := vms[v.ID]
			switch {
			case !ok:
				return fmt.Sprintf("host %s has VM %s (%s, %s) that vcenter does not", h.name, v.ID, v.Path, v.PowerState)
			case seen[v.ID]:
				return fmt.Sprintf("VM %s (%s) is on two hosts", v.ID, v.Path)
			case v.PowerState != api.PoweredOn:
				return fmt.Sprintf("host %s has VM %s %s", h.name, v.Path, v.PowerState)
			case st.Host != cluster+"/"+h.name:
				return fmt.Sprintf("VM %s runs on %s, vcenter says %s", v.Path, h.name, st.Host)
			}
			seen[v.ID] = true
		}
	}
	if len(seen) != replicas {
		var missing []string
		for id := range vms {
			if !seen[id] {
				missing = append(missing, id)
			}
		}
		slices.Sort(missing)
		return fmt.Sprintf("the hosts run %d VMs, want %d; missing %v", len(seen), replicas, missing)
	}
	return ""
}

func (w *surgeWatch) report() {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range w.kills {
		w.t.Log(k)
	}
	w.t.Logf("checked %d inventory states (up to revision %d, watch resumed %d times) and %d host samples; at most %d VMs on or stopping, %d stopping, %d running on the hosts",
		w.states, w.rev, w.resumes, w.samples, w.maxOn, w.maxStopping, w.maxRunning)
	if v := w.violationText(); v != "" {
		w.t.Error(v)
	}
	w.t.Logf("%d of %d kills landed during a rollout or scale-up", w.midKills, len(w.kills))
	if w.midKills == 0 {
		w.t.Errorf("no kill landed during a rollout: the test proved nothing")
	}
}
