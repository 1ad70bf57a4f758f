package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/internal/testenv"
	"github.com/podsphere/podsphere/lab"
)

// The VM every benchmark powers on: the lab's busybox running httpd, 32 MB,
// no reservations, so 100 of them fit on any host that can run the lab.
const (
	vmMemoryMB = 32
	cluster    = "/dc1/host/c1"
	rootPool   = cluster + "/" + api.RootPoolName
	vmFolder   = "/dc1/vm/"
)

var httpdArgs = []string{"httpd", "-f", "-p", "80", "-h", "/www"}

// requireDataPlane skips unless this is a root benchmark run on a machine
// that can run real containers.
func requireDataPlane(b *testing.B) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("skipping data-plane benchmark: needs root (builds a lab in network namespaces, runs containerd, CNI and cgroups)")
	}
	testenv.RequireDataPlane(b)
}

var podsphereBuild struct {
	once sync.Once
	path string
	err  error
}

// podsphereBinary builds cmd/podsphere once per run; the lab's daemons run it.
func podsphereBinary(b *testing.B) string {
	b.Helper()
	pb := &podsphereBuild
	pb.once.Do(func() {
		dir, err := os.MkdirTemp("", "psbench-bin")
		if err != nil {
			pb.err = err
			return
		}
		onTeardown("podsphere binary", func() error { return os.RemoveAll(dir) })
		out, err := exec.Command("go", "build", "-o", dir+"/", "../cmd/podsphere").CombinedOutput()
		if err != nil {
			pb.err = fmt.Errorf("go build ../cmd/podsphere: %v\n%s", err, out)
			return
		}
		// The HA fence, static, beside podsphere (where the agent looks for it).
		fence := exec.Command("go", "build", "-o", dir+"/", "../cmd/podsphere-fence")
		fence.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := fence.CombinedOutput(); err != nil {
			pb.err = fmt.Errorf("go build ../cmd/podsphere-fence: %v\n%s", err, out)
			return
		}
		pb.path = filepath.Join(dir, "podsphere")
	})
	if pb.err != nil {
		b.Fatal(pb.err)
	}
	return pb.path
}

// benchLab is a lab brought up for one benchmark, torn down at its end.
type benchLab struct {
	prefix string
	dir    string // the lab's directory (inside a temp dir)
	state  *lab.State
	api    *client.Client
	socket string // the lab's containerd, which the floor uses too
}

// upLab builds a lab of hosts hosts with a fresh prefix under a temp dir.
// Teardown (lab down, then the temp dir) runs at the benchmark's end, on
// failure and on Ctrl-C; a run killed harder is cleaned by the command it logs.
func upLab(b *testing.B, hosts int) *benchLab {
	b.Helper()
	bin := podsphereBinary(b)
	tmp, err := os.MkdirTemp("", "psbench") // short: the private containerd's socket lives below
	if err != nil {
		b.Fatal(err)
	}
	l := &benchLab{prefix: fmt.Sprintf("b%04x", rand.IntN(0x10000)), dir: filepath.Join(tmp, "lab")}
	down := onTeardown("lab "+l.prefix, func() error {
		var out bytes.Buffer
		if err := lab.Down(context.Background(), lab.Options{Dir: l.dir, Prefix: l.prefix, Out: &out}); err != nil {
			return fmt.Errorf("%v\n%s(left %s in place)", err, out.String(), tmp)
		}
		return os.RemoveAll(tmp) // only once lab down has unmounted everything below it
	})
	b.Cleanup(func() {
		start := time.Now()
		if err := down(); err != nil {
			b.Errorf("lab down: %v", err)
			return
		}
		b.Logf("lab %s down in %v", l.prefix, time.Since(start).Round(time.Millisecond))
	})
	b.Logf("lab %s in %s (if this run is killed: podsphere lab down --dir %s --prefix %s)", l.prefix, l.dir, l.dir, l.prefix)
	var out bytes.Buffer
	start := time.Now()
	l.state, err = lab.Up(context.Background(), lab.Options{Dir: l.dir, Prefix: l.prefix, Hosts: hosts, Binary: bin, PrivateContainerd: true, Out: &out})
	if err != nil {
		b.Fatalf("lab up: %v\n%s", err, out.String())
	}
	b.Logf("lab up --hosts %d: %v", hosts, time.Since(start).Round(time.Millisecond))
	token, err := os.ReadFile(filepath.Join(l.dir, "vcenter", "admin.token"))
	if err != nil {
		b.Fatal(err)
	}
	if l.api, err = client.New(l.state.LocalURL, strings.TrimSpace(string(token))); err != nil {
		b.Fatal(err)
	}
	l.socket = l.state.Containerd.Socket
	return l
}

func hostPath(name string) string { return cluster + "/" + name }

// createVM makes a powered-off busybox httpd VM; host "" lets DRS place it at power-on.
func (l *benchLab) createVM(ctx context.Context, name, host string) (string, error) {
	alloc := api.Allocation{Limit: -1, Shares: api.Shares{Level: "normal"}}
	spec := api.VMSpec{
		Pool: rootPool, NumCPU: 1, MemoryMB: vmMemoryMB, CPU: alloc, Mem: alloc,
		PowerState:    api.PoweredOff,
		Containers:    []api.Container{{Name: "main", Image: lab.ImageName, Command: httpdArgs}},
		RestartPolicy: "Always",
	}
	if host != "" {
		spec.Host = hostPath(host)
	}
	path := vmFolder + name
	if _, err := l.api.Create(ctx, api.New(api.KindVirtualMachine, path, spec)); err != nil {
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	return path, nil
}

// createVMs makes n VMs named prefix-NNN, a few requests at a time.
func (l *benchLab) createVMs(b *testing.B, prefix string, n int) []string {
	b.Helper()
	paths := make([]string, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			paths[i], errs[i] = l.createVM(context.Background(), fmt.Sprintf("%s-%03d", prefix, i), "")
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	return paths
}

// trace is what the benchmark saw of one VM's power-on, all on this machine's clock.
type trace struct {
	call     time.Time // client.Power called
	answered time.Time // client.Power returned
	specOn   time.Time // the watch delivered spec.powerState=poweredOn (the agent gets the same event)
	running  time.Time // the watch delivered status poweredOn with an IP
	status   api.VMStatus
	done     chan struct{}
}

// bootTime is when the agent's driver began starting the containers
// (status.bootTime, stamped after the netns, CNI and containers were made).
func (t *trace) bootTime() time.Time { return t.status.BootTime }

// startedAt is when the driver saw the last container's task started.
func (t *trace) startedAt() time.Time {
	var last time.Time
	for _, c := range t.status.Containers {
		if c.StartedAt.After(last) {
			last = c.StartedAt
		}
	}
	return last
}

// vmWatch follows every VM through one watch and stamps the traces registered with expect.
type vmWatch struct {
	mu     sync.Mutex
	traces map[string]*trace
	err    error
}

func (l *benchLab) watchVMs(b *testing.B) *vmWatch {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	opts := client.ListOptions{Kind: api.KindVirtualMachine}
	list, err := l.api.List(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	events, wait, err := l.api.Watch(ctx, opts, list.Revision)
	if err != nil {
		b.Fatal(err)
	}
	w := &vmWatch{traces: map[string]*trace{}}
	go func() {
		for ev := range events {
			now := time.Now()
			if ev.Object == nil {
				continue
			}
			w.mu.Lock()
			tr := w.traces[ev.Object.Path]
			w.mu.Unlock()
			if tr == nil {
				continue
			}
			var spec api.VMSpec
			var st api.VMStatus
			_ = ev.Object.DecodeSpec(&spec)
			_ = ev.Object.DecodeStatus(&st)
			w.mu.Lock()
			if tr.specOn.IsZero() && spec.PowerState == api.PoweredOn {
				tr.specOn = now
			}
			if tr.running.IsZero() && st.PowerState == api.PoweredOn && st.IP != "" {
				tr.running, tr.status = now, st
				close(tr.done)
			}
			w.mu.Unlock()
		}
		err := wait()
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
	}()
	return w
}

func (w *vmWatch) expect(path string) *trace {
	tr := &trace{done: make(chan struct{})}
	w.mu.Lock()
	w.traces[path] = tr
	w.mu.Unlock()
	return tr
}

// powerOn calls vm.power -on and waits until the watch shows the VM running with an IP.
func (l *benchLab) powerOn(w *vmWatch, path string, timeout time.Duration) (*trace, error) {
	tr := w.expect(path)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tr.call = time.Now()
	if _, err := l.api.Power(ctx, path, "on"); err != nil {
		return nil, fmt.Errorf("power on %s: %w", path, err)
	}
	tr.answered = time.Now()
	return tr, l.waitRunning(ctx, w, path, tr)
}

func (l *benchLab) waitRunning(ctx context.Context, w *vmWatch, path string, tr *trace) error {
	select {
	case <-tr.done:
		return nil
	case <-ctx.Done():
	}
	w.mu.Lock()
	werr := w.err
	w.mu.Unlock()
	msg := ""
	if o, err := l.api.Get(context.Background(), path); err == nil {
		msg = string(o.Status)
	}
	return fmt.Errorf("%s not running with an IP in time (watch error: %v); status now %s", path, werr, msg)
}

// warmUp powers on one pinned VM per host, so every host has imported the
// image from the content library before anything is measured.
func (l *benchLab) warmUp(b *testing.B, w *vmWatch) {
	b.Helper()
	for _, h := range l.state.Hosts {
		p, err := l.createVM(context.Background(), "warm-"+h.Name, h.Name)
		if err != nil {
			b.Fatal(err)
		}
		tr, err := l.powerOn(w, p, 2*time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("warm-up on %s (image import included): %v", h.Name, tr.running.Sub(tr.call).Round(time.Millisecond))
	}
}
