package fdm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	ctrdriver "github.com/podsphere/podsphere/host/containerd"
	"github.com/podsphere/podsphere/host/containerd/imagebuild"
	"github.com/podsphere/podsphere/host/halock"
	"github.com/podsphere/podsphere/host/runtime"
	"github.com/podsphere/podsphere/internal/hads"
	"github.com/podsphere/podsphere/internal/testenv"
)

type library map[string][]byte

func (l library) Fetch(_ context.Context, name string) (io.ReadCloser, error) {
	b, ok := l[name]
	if !ok {
		return nil, fmt.Errorf("content library item %q: %w", name, api.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func buildFence(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "../../cmd/podsphere-fence")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build podsphere-fence: %v\n%s", err, out)
	}
	return filepath.Join(dir, ctrdriver.FenceBinaryName)
}

// e2eHost is one host's containerd namespace, its HA locks and the fence.
type e2eHost struct {
	t     *testing.T
	sock  string
	ns    string
	state string
	lib   library
	locks *halock.Locks
	fence string
}

// driver is a host agent's driver (a new one is an agent restart).
func (h *e2eHost) driver(locks *halock.Locks) *ctrdriver.Driver {
	h.t.Helper()
	cfg := ctrdriver.Config{Socket: h.sock, Namespace: h.ns, StateDir: h.state + "/ctr", LogDir: h.state + "/logs", Images: h.lib,
		CgroupRoot: "/podsphere-e2e/" + h.ns, Backoff: 200 * time.Millisecond, BackoffMax: 400 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if locks != nil {
		cfg.Locks, cfg.FenceBinary = locks, h.fence
	}
	d, err := ctrdriver.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

func newE2EHost(t *testing.T) *e2eHost {
	testenv.RequireContainers(t)
	h := &e2eHost{t: t, sock: testenv.StartContainerd(t), ns: fmt.Sprintf("psf%04x", rand.IntN(0xffff)), state: t.TempDir(), fence: buildFence(t)}
	var buf bytes.Buffer
	if err := imagebuild.Build(&buf, imagebuild.Options{Name: "docker.io/library/busybox:latest"}); err != nil {
		t.Fatal(err)
	}
	h.lib = library{"docker.io/library/busybox:latest": buf.Bytes()}
	var err error
	if h.locks, err = halock.New(halock.Config{Host: me, Datastores: []string{t.TempDir()}, Timings: ha.DefaultTimings()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d := h.driver(nil)
		ctx := context.Background()
		vms, _ := d.List(ctx)
		for _, vm := range vms {
			if err := d.Delete(ctx, vm.ID); err != nil {
				t.Errorf("cleanup: delete %s: %v", vm.ID, err)
			}
		}
		d.Close()
		for _, dir := range []string{"/sys/fs/cgroup/podsphere-e2e/" + h.ns, "/sys/fs/cgroup/podsphere-e2e"} {
			_ = os.Remove(dir)
		}
		mounts, _ := os.ReadDir("/sys/fs/cgroup")
		for _, m := range mounts {
			_ = os.Remove(filepath.Join("/sys/fs/cgroup", m.Name(), "podsphere-e2e", h.ns))
			_ = os.Remove(filepath.Join("/sys/fs/cgroup", m.Name(), "podsphere-e2e"))
		}
	})
	return h
}

func sleeper(id string) runtime.VMSpec {
	return runtime.VMSpec{ID: id, Path: "/dc1/vm/" + id, NumCPU: 1, MemoryMB: 64,
		CPU: api.Allocation{Limit: -1}, Mem: api.Allocation{Limit: -1},
		Containers: []api.Container{{Name: "main", Image: "busybox", Command: []string{"sleep", "3600"}}}}
}

// task is the VM's main container task status (exit status once stopped).
func (h *e2eHost) task(id string) (containerd.Status, uint32) {
	h.t.Helper()
	c, err := containerd.New(h.sock, containerd.WithDefaultNamespace(h.ns))
	if err != nil {
		h.t.Fatal(err)
	}
	defer c.Close()
	ctx := namespaces.WithNamespace(context.Background(), h.ns)
	ct, err := c.LoadContainer(ctx, ctrdriver.ContainerID(id, "main"))
	if err != nil {
		h.t.Fatal(err)
	}
	tk, err := ct.Task(ctx, nil)
	if err != nil {
		return containerd.Status{Status: containerd.Unknown}, 0
	}
	st, err := tk.Status(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return st, tk.Pid()
}

// The invariant's host half, on real containers: a fenced VM keeps running
// while its lock is renewed, by the FDM alone once the agent is dead, and
// dies within the lease once nothing renews it; a restarted agent does not
// bring it back by itself.
func TestE2EFencedVMLivesOnlyWhileItsLockIsRenewed(t *testing.T) {
	h := newE2EHost(t)
	tm := ha.DefaultTimings()
	ctx := context.Background()
	d := h.driver(h.locks)
	vm := sleeper(h.ns + "-fenced")
	if err := h.locks.Acquire(vm.ID, vm.Path, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(ctx, vm); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code, err := d.Exec(ctx, vm.ID, "", []string{"cat", "/proc/1/cmdline"}, &out, &errb); err != nil || code != 0 {
		t.Fatalf("exec: %d %v %s", code, err, errb.String())
	}
	if args := strings.Split(out.String(), "\x00"); args[0] != ctrdriver.FenceMount || !slices.Contains(args, "sleep") {
		t.Fatalf("PID 1 is %q, want the fence over sleep", args)
	}
	_, pid := h.task(vm.ID)
	t.Logf("fence memory: %s", vmRSS(pid))

	vms, err := NewContainerd(h.sock, h.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer vms.Close()
	fctx, stopFDM := context.WithCancel(ctx)
	defer stopFDM()
	f, err := New(Config{Name: "esx-01", Cluster: cluster, VCenter: "http://127.0.0.1:1", JoinToken: "tok",
		Datastores: []string{h.locks.Root()}, Address: "127.0.0.1", StateDir: t.TempDir(), VMs: vms, Timings: tm,
		Probe:  func(context.Context, string, time.Duration) bool { return true },
		Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	fdmDone := make(chan error, 1)
	go func() { fdmDone <- f.Run(fctx) }()

	// liveFor waits until the FDM renewed the lock 2 leases past from,
	// checking that the VM runs all along.
	liveFor := func(what string, from time.Time) {
		t.Helper()
		testenv.WaitFor(t, what, 4*tm.LockLease+10*time.Second, func() bool {
			if st, _ := h.task(vm.ID); st.Status != containerd.Running {
				t.Fatalf("%s: the VM stopped (%+v)", what, st)
			}
			l, _, _ := hads.ReadLock(h.locks.Root(), vm.ID)
			return l.Renewed.Sub(from) > 2*tm.LockLease
		})
	}
	liveFor("VM running while the FDM renews its lock", time.Now())

	// The agent dies (its driver goes; the containers stay): the FDM alone keeps it alive.
	d.Close()
	liveFor("VM running with the agent dead", time.Now())

	// The FDM dies too: nothing renews the lock, and the fence kills the VM.
	stopFDM()
	if err := <-fdmDone; err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	testenv.WaitFor(t, "the fence to stop the VM", tm.LockLease+5*time.Second, func() bool {
		st, _ := h.task(vm.ID)
		return st.Status == containerd.Stopped
	})
	st, _ := h.task(vm.ID)
	t.Logf("VM stopped %s after the FDM (lease %s), exit status %d", time.Since(stopped).Round(100*time.Millisecond), tm.LockLease, st.ExitStatus)
	if st.ExitStatus != 137 {
		t.Fatalf("exit status %d, want 137 (killed by the fence)", st.ExitStatus)
	}

	// The agent restarts: its driver does not restart a VM whose lock lapsed.
	d2 := h.driver(h.locks)
	defer d2.Close()
	testenv.WaitFor(t, "the restart refused with the reason", 20*time.Second, func() bool {
		s, err := d2.Status(ctx, vm.ID)
		return err == nil && s.PowerState == api.PoweredOff && strings.Contains(s.Message, "lapsed")
	})
}

// The fence's cost: power-on time with and without it (logged, not
// asserted: the bench package holds the goals).
func TestE2EFenceOverhead(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	h := newE2EHost(t)
	ctx := context.Background()
	measure := func(d *ctrdriver.Driver, name string, fenced bool) time.Duration {
		var times []time.Duration
		for i := range 8 {
			vm := sleeper(fmt.Sprintf("%s-%s%d", h.ns, name, i))
			if fenced {
				if err := h.locks.Acquire(vm.ID, vm.Path, time.Now(), false); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			if err := d.Create(ctx, vm); err != nil {
				t.Fatal(err)
			}
			if err := d.Start(ctx, vm.ID); err != nil {
				t.Fatal(err)
			}
			times = append(times, time.Since(start))
			if err := d.Delete(ctx, vm.ID); err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(times)
		return times[len(times)/2]
	}
	plain := h.driver(nil)
	measure(plain, "warm", false) // image import, first cgroup
	p := measure(plain, "plain", false)
	plain.Close()
	fd := h.driver(h.locks)
	defer fd.Close()
	fz := measure(fd, "fenced", true)
	t.Logf("power-on (create+start) p50: %s without the fence, %s with it", p.Round(time.Millisecond), fz.Round(time.Millisecond))
}

func vmRSS(pid uint32) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")) + " RSS"
		}
	}
	return "unknown"
}
