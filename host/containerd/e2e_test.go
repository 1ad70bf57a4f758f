package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/containerd/imagebuild"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/host/runtime"
	"github.com/podsphere/podsphere/internal/testenv"
)

// library is an in-memory content library.
type library map[string][]byte

func (l library) Fetch(_ context.Context, name string) (io.ReadCloser, error) {
	b, ok := l[name]
	if !ok {
		return nil, fmt.Errorf("content library item %q: %w", name, api.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

const busyboxRef = "docker.io/library/busybox:latest"

func busyboxLibrary(t *testing.T) library {
	t.Helper()
	var buf bytes.Buffer
	if err := imagebuild.Build(&buf, imagebuild.Options{Name: busyboxRef}); err != nil {
		t.Fatal(err)
	}
	return library{busyboxRef: buf.Bytes()}
}

// testHost is one "ESXi host": a netns with a bridge network, and a driver on
// its own containerd namespace.
type testHost struct {
	name  string
	netns string
	net   *network.Network
	cfg   Config
	drv   *Driver
}

func newTestHost(t *testing.T, sock, name, subnet string, lib ImageSource) *testHost {
	t.Helper()
	hostNS, err := network.CreateNamedNetNS(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := network.DeleteNamedNetNS(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	state := t.TempDir()
	n, err := network.New(network.Config{Subnet: subnet, ClusterCIDR: "10.244.0.0/16", StateDir: state + "/net", HostNetNS: hostNS, NetNSPrefix: name + "-"})
	if err != nil {
		t.Fatal(err)
	}
	h := &testHost{name: name, netns: hostNS, net: n}
	h.cfg = Config{Socket: sock, Namespace: name, Network: n, StateDir: state + "/ctr", LogDir: state + "/logs", Images: lib, Backoff: 500 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if h.drv, err = New(h.cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.cleanup(t) })
	return h
}

// cleanup deletes whatever VMs are left, the namespace's images and the namespace.
func (h *testHost) cleanup(t *testing.T) {
	ctx := namespaces.WithNamespace(context.Background(), h.cfg.Namespace)
	d := h.drv
	vms, err := d.List(ctx)
	if err != nil {
		t.Errorf("cleanup: %v", err)
	}
	for _, vm := range vms {
		if err := d.Delete(ctx, vm.ID); err != nil {
			t.Errorf("cleanup: delete %s: %v", vm.ID, err)
		}
	}
	is := d.Client().ImageService()
	if imgs, err := is.List(ctx); err == nil {
		for _, img := range imgs {
			_ = is.Delete(ctx, img.Name, images.SynchronousDelete())
		}
	}
	_ = h.net.RemoveHostRules()
	if err := removeVMCgroup(d.cfg.CgroupRoot); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	// The shared parent goes too once no other agent uses it (rmdir fails while not empty).
	mounts, _ := os.ReadDir(cgroupFS)
	for _, m := range mounts {
		_ = os.Remove(filepath.Join(cgroupFS, m.Name(), filepath.Dir(d.cfg.CgroupRoot)))
	}
	_ = os.Remove(filepath.Join(cgroupFS, filepath.Dir(d.cfg.CgroupRoot)))
	if err := d.Client().NamespaceService().Delete(ctx, h.cfg.Namespace); err != nil {
		t.Logf("cleanup: namespace %s: %v (removed with the private containerd anyway)", h.cfg.Namespace, err)
	}
	d.Close()
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func exec1(t *testing.T, d *Driver, vm, container string, cmd ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code, err := d.Exec(ctx, vm, container, cmd, &out, &errb)
	if err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, vm, err)
	}
	return out.String(), errb.String(), code
}

// fetch gets a page from inside a VM, retrying while the server starts.
// (No wget -T: busybox 1.35 segfaults with it; Exec's context bounds the wait.)
func fetch(t *testing.T, d *Driver, vm, url string) string {
	t.Helper()
	var out, errs string
	var code int
	for i := 0; i < 30; i++ {
		if out, errs, code = exec1(t, d, vm, "", "wget", "-q", "-O-", url); code == 0 {
			return out
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("wget %s from %s: exit %d: %s", url, vm, code, errs)
	return ""
}

func vmSpec(id string, cmd ...string) runtime.VMSpec {
	return runtime.VMSpec{
		ID: id, Path: "/dc1/vm/" + id, NumCPU: 1, MemoryMB: 128,
		CPU: api.Allocation{Limit: -1}, Mem: api.Allocation{Limit: -1},
		Containers: []api.Container{{Name: "main", Image: "busybox", Command: cmd}},
	}
}

// cgroupFile reads a cgroup file of the task's cgroup (v1 controller or v2).
func cgroupFile(t *testing.T, pid uint32, controller, v1file, v2file string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if CgroupV2() && parts[0] == "0" {
			v, err := os.ReadFile(filepath.Join(cgroupFS, parts[2], v2file))
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(v))
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				v, err := os.ReadFile(filepath.Join(cgroupFS, controller, parts[2], v1file))
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(string(v))
			}
		}
	}
	t.Fatalf("no %s cgroup for pid %d", controller, pid)
	return ""
}

func TestVMLifecycle(t *testing.T) {
	testenv.RequireContainers(t)
	sock := testenv.StartContainerd(t)
	name := fmt.Sprintf("pst%04x", rand.IntN(0xffff))
	h := newTestHost(t, sock, name, "10.244.1.0/24", busyboxLibrary(t))
	d := h.drv
	ctx := context.Background()

	if c, err := d.Capacity(ctx); err != nil || c.CPUMHz <= 0 || c.MemMB <= 0 {
		t.Fatalf("Capacity = %+v, %v", c, err)
	}

	web := vmSpec("web", "httpd", "-f", "-p", "80", "-h", "/www")
	web.CPU.Limit, web.Mem.Limit, web.Mem.Reservation = 500, 64, 16
	web.Containers[0].Ports = []api.Port{{ContainerPort: 80, Protocol: "TCP"}}
	client := vmSpec("client", "sh", "-c", "echo hello-from-vm; echo $GREETING; exec sleep 3600")
	client.Containers[0].Env = []api.EnvVar{{Name: "GREETING", Value: "hi-there"}}
	for _, s := range []runtime.VMSpec{web, client} {
		if err := d.Create(ctx, s); err != nil {
			t.Fatalf("Create %s: %v", s.ID, err)
		}
		if err := d.Create(ctx, s); err != nil {
			t.Fatalf("Create %s again: %v", s.ID, err)
		}
		if st, err := d.Status(ctx, s.ID); err != nil || st.PowerState != api.PoweredOff || st.Containers[0].State != StateCreated {
			t.Fatalf("after Create: %+v, %v", st, err)
		}
		if err := d.Start(ctx, s.ID); err != nil {
			t.Fatalf("Start %s: %v", s.ID, err)
		}
	}
	webSt, err := d.Status(ctx, "web")
	if err != nil || webSt.PowerState != api.PoweredOn || webSt.IP == "" || webSt.Containers[0].State != StateRunning {
		t.Fatalf("web status %+v, %v", webSt, err)
	}

	t.Run("cgroup limits", func(t *testing.T) {
		c, err := d.Client().LoadContainer(namespaces.WithNamespace(ctx, name), ContainerID("web", "main"))
		if err != nil {
			t.Fatal(err)
		}
		task, err := c.Task(namespaces.WithNamespace(ctx, name), nil)
		if err != nil {
			t.Fatal(err)
		}
		mem := cgroupFile(t, task.Pid(), "memory", "memory.limit_in_bytes", "memory.max")
		if mem != strconv.Itoa(64<<20) {
			t.Errorf("memory limit %s, want %d", mem, 64<<20)
		}
		quota := 500 * cfsPeriod / d.MHzPerCore()
		if CgroupV2() {
			if got := cgroupFile(t, task.Pid(), "cpu", "", "cpu.max"); got != fmt.Sprintf("%d %d", quota, cfsPeriod) {
				t.Errorf("cpu.max %q, want %d %d", got, quota, cfsPeriod)
			}
		} else if got := cgroupFile(t, task.Pid(), "cpu", "cpu.cfs_quota_us", ""); got != strconv.FormatInt(quota, 10) {
			t.Errorf("cfs quota %s, want %d", got, quota)
		}
		// The VM cgroup above the container carries the same limit for all its containers.
		if !CgroupV2() {
			b, err := os.ReadFile(filepath.Join(cgroupFS, "memory", d.CgroupPath("web"), "memory.limit_in_bytes"))
			if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(64<<20) {
				t.Errorf("VM cgroup memory limit %q, %v", b, err)
			}
		}
	})

	t.Run("resize in place", func(t *testing.T) {
		// vm.change -m/-cpu.limit on the running web: new limits at once, same
		// task (no restart), new spec hash; then back, for the subtests after.
		nsCtx := namespaces.WithNamespace(ctx, name)
		c, err := d.Client().LoadContainer(nsCtx, ContainerID("web", "main"))
		if err != nil {
			t.Fatal(err)
		}
		task, err := c.Task(nsCtx, nil)
		if err != nil {
			t.Fatal(err)
		}
		before, _ := d.Status(ctx, "web")
		bigger := web
		bigger.CPU.Limit, bigger.Mem.Limit = 1000, 96
		if err := d.Resize(ctx, bigger); err != nil {
			t.Fatalf("Resize: %v", err)
		}
		if mem := cgroupFile(t, task.Pid(), "memory", "memory.limit_in_bytes", "memory.max"); mem != strconv.Itoa(96<<20) {
			t.Errorf("memory limit after resize %s, want %d", mem, 96<<20)
		}
		quota := 1000 * cfsPeriod / d.MHzPerCore()
		if CgroupV2() {
			if got := cgroupFile(t, task.Pid(), "cpu", "", "cpu.max"); got != fmt.Sprintf("%d %d", quota, cfsPeriod) {
				t.Errorf("cpu.max after resize %q, want %d %d", got, quota, cfsPeriod)
			}
		}
		after, err := d.Status(ctx, "web")
		if err != nil || after.PowerState != api.PoweredOn || !after.BootTime.Equal(before.BootTime) || after.Restarts != before.Restarts {
			t.Errorf("resize restarted web: %+v -> %+v (%v)", before, after, err)
		}
		if after.SpecHash != runtime.SpecHash(bigger) || after.ShapeHash != runtime.ShapeHash(web) {
			t.Errorf("hashes after resize %q/%q, want %q/%q", after.SpecHash, after.ShapeHash, runtime.SpecHash(bigger), runtime.ShapeHash(web))
		}
		if t2, err := c.Task(nsCtx, nil); err != nil || t2.Pid() != task.Pid() {
			t.Errorf("web's task changed by a resize: %v", err)
		}
		other := bigger
		other.Containers = []api.Container{{Name: "main", Image: busyboxRef, Command: []string{"sleep", "1"}}}
		if err := d.Resize(ctx, other); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("Resize with a new command = %v, want ErrInvalid", err)
		}
		if err := d.Resize(ctx, web); err != nil {
			t.Fatalf("Resize back: %v", err)
		}
		if mem := cgroupFile(t, task.Pid(), "memory", "memory.limit_in_bytes", "memory.max"); mem != strconv.Itoa(64<<20) {
			t.Errorf("memory limit after resizing back %s, want %d", mem, 64<<20)
		}
	})

	t.Run("VM to VM by IP", func(t *testing.T) {
		if page := fetch(t, d, "client", "http://"+webSt.IP+"/"); !strings.Contains(page, "podsphere busybox") {
			t.Fatalf("page %q", page)
		}
	})

	t.Run("exec", func(t *testing.T) {
		out, errs, code := exec1(t, d, "client", "main", "sh", "-c", "echo out; echo err >&2; exit 7")
		if code != 7 || strings.TrimSpace(out) != "out" || strings.TrimSpace(errs) != "err" {
			t.Fatalf("exec = %q, %q, %d", out, errs, code)
		}
		if out, _, _ := exec1(t, d, "client", "", "hostname"); strings.TrimSpace(out) != "client" {
			t.Fatalf("hostname %q", out)
		}
	})

	t.Run("logs", func(t *testing.T) {
		var buf bytes.Buffer
		if err := d.Logs(ctx, "client", "main", false, &buf); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "hello-from-vm\nhi-there\n") {
			t.Fatalf("logs %q", buf.String())
		}
		fctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
		defer cancel()
		buf.Reset()
		if err := d.Logs(fctx, "client", "", true, &buf); err != nil || !strings.Contains(buf.String(), "hello-from-vm") {
			t.Fatalf("follow logs %q, %v", buf.String(), err)
		}
		if err := d.Logs(ctx, "client", "nope", false, &buf); !errors.Is(err, api.ErrNotFound) {
			t.Fatalf("logs of unknown container: %v", err)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m, err := d.Metrics(ctx, "web")
		if err != nil || m.MemUsageMB < 0 || m.CPUUsageMHz < 0 {
			t.Fatalf("Metrics = %+v, %v", m, err)
		}
	})

	crash := vmSpec("crash", "sh", "-c", "echo crashing; exit 3")
	if err := d.Create(ctx, crash); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, "crash"); err != nil {
		t.Fatal(err)
	}
	once := vmSpec("once", "sh", "-c", "exit 0")
	once.RestartPolicy = RestartOnFailure
	if err := d.Create(ctx, once); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, "once"); err != nil {
		t.Fatal(err)
	}

	t.Run("crash restart", func(t *testing.T) {
		var st runtime.VMState
		waitFor(t, "crash VM to restart twice", 20*time.Second, func() bool {
			st, _ = d.Status(ctx, "crash")
			return st.Restarts >= 2
		})
		if st.PowerState != api.PoweredOn || st.Containers[0].Restarts != st.Restarts {
			t.Fatalf("crash status %+v", st)
		}
		waitFor(t, "exit code 3", 10*time.Second, func() bool {
			st, _ = d.Status(ctx, "crash")
			return st.Containers[0].ExitCode == 3
		})
		var logs bytes.Buffer
		_ = d.Logs(ctx, "crash", "", false, &logs)
		if strings.Count(logs.String(), "crashing") < 2 {
			t.Fatalf("restarts did not append to the log: %q", logs.String())
		}
		st, _ = d.Status(ctx, "once")
		if st.Restarts != 0 || st.Containers[0].State != StateExited || st.PowerState != api.PoweredOff {
			t.Fatalf("OnFailure VM that exited 0: %+v", st)
		}
	})

	t.Run("stop start", func(t *testing.T) {
		before, _ := d.Status(ctx, "client")
		start := time.Now()
		if err := d.Stop(ctx, "client", time.Second); err != nil { // sleep as PID 1 ignores SIGTERM: SIGKILL after 1s
			t.Fatal(err)
		}
		if took := time.Since(start); took > 8*time.Second {
			t.Fatalf("Stop took %v", took)
		}
		st, _ := d.Status(ctx, "client")
		if st.PowerState != api.PoweredOff || st.Containers[0].State != StateExited {
			t.Fatalf("after Stop: %+v", st)
		}
		if err := d.Stop(ctx, "client", time.Second); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
		if err := d.Start(ctx, "client"); err != nil {
			t.Fatal(err)
		}
		st, _ = d.Status(ctx, "client")
		if st.PowerState != api.PoweredOn || st.IP != before.IP || !st.BootTime.After(before.BootTime) {
			t.Fatalf("after Start: %+v (before %+v)", st, before)
		}
		fetch(t, d, "client", "http://"+webSt.IP+"/")
	})

	// Only the first Start after Create trusts the attachment Create made;
	// any later one checks it and makes it again if it is broken.
	t.Run("start repairs the network", func(t *testing.T) {
		if err := d.Stop(ctx, "client", time.Second); err != nil {
			t.Fatal(err)
		}
		ns := filepath.Base(d.NetNSPath("client"))
		if out, err := exec.Command("ip", "-n", ns, "link", "del", "eth0").CombinedOutput(); err != nil {
			t.Fatalf("break the attachment: %v: %s", err, out)
		}
		if err := d.Start(ctx, "client"); err != nil {
			t.Fatal(err)
		}
		st, _ := d.Status(ctx, "client")
		if st.PowerState != api.PoweredOn || st.IP == "" {
			t.Fatalf("after Start: %+v", st)
		}
		if out, err := exec.Command("ip", "-n", ns, "-4", "addr", "show", "eth0").CombinedOutput(); err != nil || !strings.Contains(string(out), st.IP+"/") {
			t.Fatalf("eth0 in %s after Start: %v: %s (want %s)", ns, err, out, st.IP)
		}
		fetch(t, d, "client", "http://"+webSt.IP+"/")
	})

	t.Run("adoption", func(t *testing.T) {
		before, _ := d.Status(ctx, "web")
		crashBefore, _ := d.Status(ctx, "crash")
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		d2, err := New(h.cfg)
		if err != nil {
			t.Fatal(err)
		}
		h.drv, d = d2, d2
		vms, err := d.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]runtime.VMState{}
		for _, vm := range vms {
			found[vm.ID] = vm
		}
		got := found["web"]
		if got.PowerState != api.PoweredOn || !got.BootTime.Equal(before.BootTime) || got.IP != before.IP ||
			!got.Containers[0].StartedAt.Equal(before.Containers[0].StartedAt) || got.Restarts != before.Restarts {
			t.Fatalf("adopted web VM %+v, want %+v", got, before)
		}
		if found["crash"].Restarts < crashBefore.Restarts {
			t.Fatalf("restart count lost: %d < %d", found["crash"].Restarts, crashBefore.Restarts)
		}
		// The adopted crash VM is still supervised.
		waitFor(t, "adopted crash VM to keep restarting", 20*time.Second, func() bool {
			st, _ := d.Status(ctx, "crash")
			return st.Restarts > crashBefore.Restarts
		})
		fetch(t, d, "client", "http://"+webSt.IP+"/")
	})

	// A spec change (vm.change -mem.limit) recreates the VM's containers and
	// cgroup with the new spec, keeping its network and IP.
	t.Run("recreate", func(t *testing.T) {
		before, err := d.Status(ctx, "web")
		if err != nil || before.SpecHash != runtime.SpecHash(web) || before.PowerState != api.PoweredOn {
			t.Fatalf("web before: %+v, %v (want hash %s)", before, err, runtime.SpecHash(web))
		}
		changed := web
		changed.Mem.Limit = 32
		if err := d.Recreate(ctx, changed, time.Second); err != nil {
			t.Fatal(err)
		}
		st, err := d.Status(ctx, "web")
		if err != nil || st.PowerState != api.PoweredOff || st.SpecHash != runtime.SpecHash(changed) || st.IP != before.IP ||
			st.Containers[0].State != StateCreated || st.Restarts != 0 {
			t.Fatalf("after Recreate: %+v, %v (want off, hash %s, IP %s)", st, err, runtime.SpecHash(changed), before.IP)
		}
		if err := d.Start(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		st, _ = d.Status(ctx, "web")
		if st.PowerState != api.PoweredOn || st.IP != before.IP || !st.BootTime.After(before.BootTime) {
			t.Fatalf("after Start: %+v (before %+v)", st, before)
		}
		nctx := namespaces.WithNamespace(ctx, name)
		c, err := d.Client().LoadContainer(nctx, ContainerID("web", "main"))
		if err != nil {
			t.Fatal(err)
		}
		task, err := c.Task(nctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if mem := cgroupFile(t, task.Pid(), "memory", "memory.limit_in_bytes", "memory.max"); mem != strconv.Itoa(32<<20) {
			t.Errorf("memory limit after recreate %s, want %d", mem, 32<<20)
		}
		if !CgroupV2() {
			b, err := os.ReadFile(filepath.Join(cgroupFS, "memory", d.CgroupPath("web"), "memory.limit_in_bytes"))
			if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(32<<20) {
				t.Errorf("VM cgroup memory limit %q, %v", b, err)
			}
		} else if b, err := os.ReadFile(filepath.Join(cgroupFS, d.CgroupPath("web"), "memory.max")); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(32<<20) {
			t.Errorf("VM cgroup memory.max %q, %v", b, err)
		}
		fetch(t, d, "client", "http://"+before.IP+"/")
		// Create with the new spec is a no-op now; the hash survives a driver restart.
		if err := d.Create(ctx, web); err != nil {
			t.Fatal(err)
		}
		vms, _ := d.List(ctx)
		for _, vm := range vms {
			if vm.ID == "web" && vm.SpecHash != runtime.SpecHash(changed) {
				t.Errorf("List reports hash %s, want %s", vm.SpecHash, runtime.SpecHash(changed))
			}
		}
	})

	t.Run("delete", func(t *testing.T) {
		for _, id := range []string{"web", "client", "crash", "once"} {
			if err := d.Delete(ctx, id); err != nil {
				t.Fatalf("Delete %s: %v", id, err)
			}
			if err := d.Delete(ctx, id); err != nil {
				t.Fatalf("Delete %s again: %v", id, err)
			}
			if _, err := d.Status(ctx, id); !errors.Is(err, api.ErrNotFound) {
				t.Fatalf("Status of deleted %s: %v", id, err)
			}
			if _, err := os.Stat(h.net.NetNSPath(id)); !os.IsNotExist(err) {
				t.Errorf("netns of %s left: %v", id, err)
			}
			if _, err := os.Stat(filepath.Join(h.cfg.LogDir, id)); !os.IsNotExist(err) {
				t.Errorf("logs of %s left", id)
			}
		}
		cs, err := d.Client().Containers(namespaces.WithNamespace(ctx, name))
		if err != nil || len(cs) != 0 {
			t.Fatalf("containers left: %d, %v", len(cs), err)
		}
		snaps := 0
		_ = d.Client().SnapshotService(DefaultSnapshotter).Walk(namespaces.WithNamespace(ctx, name), func(_ context.Context, i snapshots.Info) error {
			if strings.HasPrefix(i.Name, "web-") || strings.HasPrefix(i.Name, "client-") {
				snaps++
			}
			return nil
		})
		if snaps != 0 {
			t.Errorf("%d container snapshots left", snaps)
		}
		if leases, _ := h.net.Leases(); len(leases) != 0 {
			t.Errorf("IP leases left: %v", leases)
		}
		out, _ := exec.Command("ip", "-n", name, "-o", "link", "show", "type", "veth").CombinedOutput()
		if strings.TrimSpace(string(out)) != "" {
			t.Errorf("veths left in the host netns:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(cgroupFS, "memory", d.CgroupPath("web"))); !CgroupV2() && !os.IsNotExist(err) {
			t.Errorf("VM cgroup left: %v", err)
		}
	})
}

// TestTwoHosts runs a VM on each of two "hosts" (netns joined by a veth pair,
// each with its own bridge, subnet and containerd namespace) and fetches a
// page across them over the peer routes.
func TestTwoHosts(t *testing.T) {
	testenv.RequireContainers(t)
	sock := testenv.StartContainerd(t)
	name := fmt.Sprintf("pst%04x", rand.IntN(0xffff))
	lib := busyboxLibrary(t)
	a := newTestHost(t, sock, name+"a", "10.244.1.0/24", lib)
	b := newTestHost(t, sock, name+"b", "10.244.2.0/24", lib)
	for _, args := range [][]string{
		{"-n", a.name, "link", "add", "wire", "type", "veth", "peer", "name", "wire", "netns", b.name},
		{"-n", a.name, "addr", "add", "192.168.77.1/24", "dev", "wire"},
		{"-n", b.name, "addr", "add", "192.168.77.2/24", "dev", "wire"},
		{"-n", a.name, "link", "set", "wire", "up"},
		{"-n", b.name, "link", "set", "wire", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	if err := a.net.SetPeerRoutes([]network.Peer{{Subnet: "10.244.2.0/24", Via: "192.168.77.2"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.net.SetPeerRoutes([]network.Peer{{Subnet: "10.244.1.0/24", Via: "192.168.77.1"}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, x := range []struct {
		h    *testHost
		spec runtime.VMSpec
	}{
		{b, vmSpec("server", "httpd", "-f", "-p", "80", "-h", "/www")},
		{a, vmSpec("client", "sleep", "3600")},
	} {
		if err := x.h.drv.Create(ctx, x.spec); err != nil {
			t.Fatal(err)
		}
		if err := x.h.drv.Start(ctx, x.spec.ID); err != nil {
			t.Fatal(err)
		}
	}
	server, err := b.drv.Status(ctx, "server")
	if err != nil || !strings.HasPrefix(server.IP, "10.244.2.") {
		t.Fatalf("server on B: %+v, %v", server, err)
	}
	if page := fetch(t, a.drv, "client", "http://"+server.IP+"/"); !strings.Contains(page, "podsphere busybox") {
		t.Fatalf("page %q", page)
	}
	for _, x := range []struct {
		h  *testHost
		id string
	}{{a, "client"}, {b, "server"}} {
		if err := x.h.drv.Delete(ctx, x.id); err != nil {
			t.Fatal(err)
		}
	}
}
