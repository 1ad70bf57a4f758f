package e2e

import (
	"context"
	"fmt"
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
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/internal/testenv"
)

// webDeployment is a Kubernetes Deployment of busybox httpd VMs, as
// `psc apply -f` takes it. The shell stays PID 1 and exits on SIGTERM, so a
// VM stops at once rather than after its grace period (httpd as PID 1
// would ignore SIGTERM). /www/healthz is what the liveness probe asks for.
// A new VM is ready 2 s after it starts (the readiness probe's initial
// delay), so each step of a rollout takes a few of the test's samples.
const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 3
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 1}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: httpd
        image: busybox
        command: ["sh", "-c"]
        args: ["echo web $VERSION starting; echo ok > /www/healthz; trap 'exit 0' TERM; httpd -f -p 80 -h /www & wait"]
        env:
        - {name: VERSION, value: %s}
        ports:
        - {name: http, containerPort: 80}
        resources:
          requests: {cpu: 50m, memory: 16Mi}
          limits: {cpu: 250m, memory: 32Mi}
        readinessProbe:
          httpGet: {path: /index.html, port: http}
          initialDelaySeconds: 2
          periodSeconds: 1
          failureThreshold: 1
        livenessProbe:
          httpGet: {path: /healthz, port: http}
          initialDelaySeconds: 1
          periodSeconds: 1
          failureThreshold: 2
`

const webPath = "/" + dc + "/deployment/web"

// TestWorkloads runs a Deployment of real containers on a 3-host lab
// through psc apply: the rollout, a rolling update that never leaves fewer
// than replicas - maxUnavailable VMs ready, and a liveness probe failure
// that restarts a VM's container in place, as vcenter sees them.
func TestWorkloads(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping end-to-end test in -short mode")
	}
	start := time.Now()
	l := newLab(t, 3)
	for _, h := range l.hosts {
		l.startAgent(h)
	}
	for _, h := range l.hosts {
		l.waitHost(h, start)
	}
	l.importBusybox(t)
	t.Logf("lab with 3 hosts and the busybox image up in %v", time.Since(start).Round(time.Millisecond))

	manifest := func(version string) string {
		p := filepath.Join(l.dir, "web-"+version+".yaml")
		if err := os.WriteFile(p, []byte(fmt.Sprintf(webDeployment, version)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v1, v2 := manifest("v1"), manifest("v2")
	var uids []string // of every VM the Deployment ran, for the cleanup check

	ok := t.Run("apply rolls out 3 ready VMs on 3 hosts", func(t *testing.T) {
		began := time.Now()
		if out := l.psc("apply", "-f", v1); !strings.Contains(out, "created") {
			t.Fatalf("apply said %q", out)
		}
		vms := l.waitWeb(t, "v1", 90*time.Second)
		hosts := map[string]string{}
		for _, v := range vms {
			if other, dup := hosts[v.status.Host]; dup {
				t.Errorf("%s and %s both run on %s", other, v.name, v.status.Host)
			}
			hosts[v.status.Host] = v.name
			uids = append(uids, v.obj.UID)
		}
		if logs := l.psc("vm.logs", vms[0].name); !strings.Contains(logs, "web v1 starting") {
			t.Errorf("%s logs %q", vms[0].name, logs)
		}
		t.Logf("3 ready VMs on %d hosts in %v", len(hosts), time.Since(began).Round(time.Millisecond))
	})

	ok = ok && t.Run("rolling update keeps 2 ready", func(t *testing.T) {
		before := l.webVMs(t)
		began := time.Now()
		poll := l.watchRollout(t, 3, 1, 1)
		if out := l.psc("apply", "-f", v2); !strings.Contains(out, "configured") {
			t.Fatalf("apply said %q", out)
		}
		vms := l.waitWeb(t, "v2", 120*time.Second)
		poll.stop()
		took := time.Since(began)
		for _, v := range vms {
			uids = append(uids, v.obj.UID)
			for _, b := range before {
				if b.obj.UID == v.obj.UID {
					t.Errorf("%s of the old revision is still there", v.name)
				}
			}
		}
		// The old VMs' containers are gone from the hosts: 3 left, the new ones.
		testenv.WaitFor(t, "only the new VMs' containers on the hosts", 30*time.Second, func() bool {
			n := 0
			for _, h := range l.hosts {
				cs, err := l.ctr.ContainerService().List(h.ctx())
				if err != nil {
					return false
				}
				n += len(cs)
			}
			return n == 3
		})
		if logs := l.psc("vm.logs", vms[0].name); !strings.Contains(logs, "web v2 starting") {
			t.Errorf("%s logs %q", vms[0].name, logs)
		}
		o, _ := l.api.Get(context.Background(), webPath)
		var st api.DeploymentStatus
		if o == nil || o.DecodeStatus(&st) != nil || st.Revision != 2 {
			t.Errorf("the Deployment is at revision %d after one update, want 2", st.Revision)
		}
		poll.check(t)
		t.Logf("rolled out in %v", took.Round(time.Millisecond))
	})

	ok = ok && t.Run("liveness failure restarts the container in place", func(t *testing.T) {
		vms := l.webVMs(t)
		v := vms[0]
		h := l.host(v.status.Host)
		cs := h.containersOf(v.obj.UID)
		if len(cs) != 1 {
			t.Fatalf("%s has %d containers on %s", v.name, len(cs), h.name)
		}
		pid, _ := h.task(cs[0].ID)
		l.psc("guest.run", v.name, "--", "rm", "/www/healthz")
		failed := time.Now()
		_, st := l.waitVM(v.name, "restarted by its liveness probe", 30*time.Second, func(_ api.VMSpec, st api.VMStatus) bool {
			return st.Restarts > v.status.Restarts
		})
		t.Logf("%s restarted %v after its liveness check went: %q", v.name, time.Since(failed).Round(time.Millisecond), st.Message)
		var restarted *api.EventSpec
		testenv.WaitFor(t, "VmRestartedEvent of "+v.name, 10*time.Second, func() bool {
			restarted = l.event(t, "VmRestartedEvent", v.obj.Path)
			return restarted != nil
		})
		if !strings.Contains(restarted.Message, "liveness probe failed") && !strings.Contains(st.Message, "liveness probe failed") {
			t.Errorf("neither the event (%q) nor the status (%q) says the liveness probe failed", restarted.Message, st.Message)
		}
		// The same VM, ready again with a new container process, and the
		// Deployment whole: a restart in place, nothing replaced.
		l.waitVM(v.name, "ready again", 30*time.Second, func(_ api.VMSpec, st api.VMStatus) bool {
			return st.Ready && st.PowerState == api.PoweredOn
		})
		if p, status := h.task(cs[0].ID); p == pid || status != "running" {
			t.Errorf("%s's task after the restart: pid %d (was %d), %s", v.name, p, pid, status)
		}
		after := l.waitWeb(t, "v2", 30*time.Second)
		for i := range after {
			if after[i].obj.UID != vms[i].obj.UID {
				t.Errorf("the Deployment's VMs changed across a liveness restart: %s -> %s", vms[i].name, after[i].name)
			}
		}
	})

	t.Run("delete removes the VMs", func(t *testing.T) {
		if out, errOut, code := l.pscCode("delete", "-f", v2); code != 0 {
			t.Errorf("psc delete: exit %d: %s%s", code, out, errOut)
		}
		for _, h := range l.hosts {
			testenv.WaitFor(t, "no containers on "+h.name, 60*time.Second, func() bool {
				cs, err := l.ctr.ContainerService().List(h.ctx())
				return err == nil && len(cs) == 0
			})
		}
		for _, uid := range uids {
			testenv.WaitFor(t, "netns of VM "+uid+" gone", 10*time.Second, func() bool {
				_, err := os.Stat(filepath.Join(network.NetNSDir, network.DefaultNetNSPrefix+uid))
				return os.IsNotExist(err)
			})
		}
		if vms := l.webVMs(t); len(vms) != 0 {
			t.Errorf("%d VMs of the Deployment left", len(vms))
		}
	})
	t.Logf("workloads run took %v", time.Since(start).Round(time.Millisecond))
}

// webVM is one VM of the web Deployment.
type webVM struct {
	name    string
	obj     *api.Object
	spec    api.VMSpec
	status  api.VMStatus
	version string // its VERSION env var
}

// ready: running, ready, and not being retired.
func (v webVM) ready() bool {
	return v.status.Ready && v.status.PowerState == api.PoweredOn && v.spec.PowerState == api.PoweredOn && !v.spec.Removing
}

// webVMs lists the Deployment's VMs (owned by one of its replica sets), by name.
func (l *lab) webVMs(t *testing.T) []webVM {
	t.Helper()
	list, err := l.api.List(context.Background(), client.ListOptions{Kind: api.KindVirtualMachine})
	if err != nil {
		t.Fatalf("list VMs: %v", err)
	}
	var out []webVM
	for _, o := range list.Items {
		if !strings.HasPrefix(o.Owner, "/"+dc+"/replicaset/web-") {
			continue
		}
		v := webVM{name: o.Name(), obj: o}
		_ = o.DecodeSpec(&v.spec)
		_ = o.DecodeStatus(&v.status)
		for _, c := range v.spec.Containers {
			for _, e := range c.Env {
				if e.Name == "VERSION" {
					v.version = e.Value
				}
			}
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// waitWeb waits until the Deployment has exactly 3 VMs, all of version and
// ready, and says so in its status; it returns them.
func (l *lab) waitWeb(t *testing.T, version string, timeout time.Duration) []webVM {
	t.Helper()
	var vms []webVM
	var why string
	deadline := time.Now().Add(timeout)
	for {
		vms, why = l.webConverged(t, version)
		if why == "" {
			return vms
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Deployment did not converge to 3 ready VMs of %s in %v: %s", version, timeout, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (l *lab) webConverged(t *testing.T, version string) ([]webVM, string) {
	t.Helper()
	o, err := l.api.Get(context.Background(), webPath)
	if err != nil {
		return nil, err.Error()
	}
	var st api.DeploymentStatus
	_ = o.DecodeStatus(&st)
	if st.ObservedGeneration != o.Generation || st.Replicas != 3 || st.UpdatedReplicas != 3 || st.AvailableReplicas != 3 {
		return nil, fmt.Sprintf("status %+v at generation %d", st, o.Generation)
	}
	vms := l.webVMs(t)
	if len(vms) != 3 {
		return nil, fmt.Sprintf("%d VMs", len(vms))
	}
	for _, v := range vms {
		if v.version != version || !v.ready() {
			return nil, fmt.Sprintf("VM %s: %s, ready %v, %s", v.name, v.version, v.ready(), v.status.Message)
		}
	}
	return vms, ""
}

// event finds the newest event of type typ about target.
func (l *lab) event(t *testing.T, typ, target string) *api.EventSpec {
	t.Helper()
	list, err := l.api.List(context.Background(), client.ListOptions{Kind: api.KindEvent})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	var found *api.EventSpec
	for _, o := range list.Items {
		var ev api.EventSpec
		if o.DecodeSpec(&ev) == nil && ev.Type == typ && ev.Target == target {
			found = &ev
		}
	}
	return found
}

// rolloutPoll samples the Deployment's VMs every 200 ms while a rollout runs.
type rolloutPoll struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu               sync.Mutex
	samples, errs    int
	minReady, maxOn  int
	low, high        []string // samples that broke a bound
	minReadyAt       string   // the sample with the fewest ready
	minWant, maxWant int
}

// watchRollout starts sampling: at least replicas - maxUnavailable VMs
// ready, at most replicas + maxSurge on or stopping (spec or status on).
func (l *lab) watchRollout(t *testing.T, replicas, surge, unavailable int) *rolloutPoll {
	ctx, cancel := context.WithCancel(context.Background())
	p := &rolloutPoll{cancel: cancel, done: make(chan struct{}), minReady: replicas + surge + 1,
		minWant: replicas - unavailable, maxWant: replicas + surge}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			list, err := l.api.List(ctx, client.ListOptions{Kind: api.KindVirtualMachine})
			p.mu.Lock()
			if err != nil {
				if ctx.Err() == nil {
					p.errs++
				}
			} else {
				p.take(list.Items)
			}
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(p.stop)
	return p
}

// take is one sample. Called under mu.
func (p *rolloutPoll) take(items []*api.Object) {
	p.samples++
	ready, on := 0, 0
	var desc []string
	for _, o := range items {
		if !strings.HasPrefix(o.Owner, "/"+dc+"/replicaset/web-") {
			continue
		}
		v := webVM{name: o.Name(), obj: o}
		_ = o.DecodeSpec(&v.spec)
		_ = o.DecodeStatus(&v.status)
		if v.ready() {
			ready++
		}
		if v.spec.PowerState == api.PoweredOn || v.status.PowerState == api.PoweredOn {
			on++
		}
		desc = append(desc, fmt.Sprintf("%s(spec %s removing=%v, status %s ready=%v)", v.name, v.spec.PowerState, v.spec.Removing, v.status.PowerState, v.status.Ready))
	}
	slices.Sort(desc)
	state := strings.Join(desc, " ")
	if ready < p.minReady {
		p.minReady, p.minReadyAt = ready, state
	}
	p.maxOn = max(p.maxOn, on)
	if ready < p.minWant && len(p.low) < 5 {
		p.low = append(p.low, fmt.Sprintf("%d ready: %s", ready, state))
	}
	if on > p.maxWant && len(p.high) < 5 {
		p.high = append(p.high, fmt.Sprintf("%d on or stopping: %s", on, state))
	}
}

func (p *rolloutPoll) stop() {
	p.cancel()
	<-p.done
}

// check fails the test if a sample broke a bound, or too few were taken.
func (p *rolloutPoll) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	t.Logf("%d samples of the rollout: at least %d VMs ready (%s), at most %d on or stopping", p.samples, p.minReady, p.minReadyAt, p.maxOn)
	for _, s := range p.low {
		t.Errorf("fewer than replicas - maxUnavailable = %d ready: %s", p.minWant, s)
	}
	for _, s := range p.high {
		t.Errorf("more than replicas + maxSurge = %d: %s", p.maxWant, s)
	}
	if p.samples < 10 || p.errs > p.samples/10 {
		t.Errorf("%d samples, %d failed lists: the rollout was not watched", p.samples, p.errs)
	}
}
