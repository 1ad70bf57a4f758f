package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/podsphere/podsphere/api"
	ctrdriver "github.com/podsphere/podsphere/host/containerd"
	"github.com/podsphere/podsphere/host/containerd/imagebuild"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/lab"
)

// The floor is the same work as a podsphere power-on done directly: a fresh
// network namespace, CNI ADD with the bridge plugin (same network config as
// podsphere's: bridge + host-local + loopback, run from a "host" netns), a
// busybox httpd container joined to that netns with the same memory and CPU
// limits, its task started. No API, no watch, no agent, no status write; no
// exec of ip(8) for the netns. It runs on the lab's containerd in a
// containerd namespace of its own, so image, snapshotter and daemon are the
// very ones the lab's hosts use.
type floorHost struct {
	prefix string // the lab's: the VMs' netns are <prefix>-f<id>, so lab down sweeps them too
	name   string // containerd namespace and host netns: <lab prefix>-floor
	ctx    context.Context
	client *containerd.Client
	image  containerd.Image
	hostNS string // netns path where the bridge lives
	dir    string
	cni    *libcni.CNIConfig
	list   *libcni.NetworkConfigList

	mu  sync.Mutex
	vms []floorVM
}

type floorVM struct {
	id, netns string
}

// floorPhases are the floor's steps, timed one by one.
var floorPhaseNames = []string{"netns", "cni add", "container create", "task start"}

func newFloorHost(b *testing.B, l *benchLab, subnet string) *floorHost {
	b.Helper()
	f := &floorHost{prefix: l.prefix, name: l.prefix + "-floor", dir: filepath.Join(filepath.Dir(l.dir), "floor")}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		b.Fatal(err)
	}
	td := onTeardown(f.name, f.teardown)
	b.Cleanup(func() {
		if err := td(); err != nil {
			b.Errorf("floor teardown: %v", err)
		}
	})
	var err error
	if f.hostNS, err = network.CreateNamedNetNS(f.name); err != nil {
		b.Fatal(err)
	}
	if f.client, err = containerd.New(l.socket, containerd.WithTimeout(10*time.Second)); err != nil {
		b.Fatal(err)
	}
	f.ctx = namespaces.WithNamespace(context.Background(), f.name)
	f.image = importBusybox(b, f.ctx, f.client)

	gw := subnetGateway(b, subnet)
	conf, _ := json.Marshal(map[string]any{
		"cniVersion": "1.0.0",
		"name":       "floor",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": "ps0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": subnet, "gateway": gw}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": filepath.Join(f.dir, "ipam"),
				},
			},
			map[string]any{"type": "loopback"},
		},
	})
	if f.list, err = libcni.ConfListFromBytes(conf); err != nil {
		b.Fatal(err)
	}
	exec := &inNetNSExec{
		DefaultExec: invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}},
		netns:       f.hostNS,
	}
	f.cni = libcni.NewCNIConfigWithCacheDir([]string{network.DefaultBinDir}, filepath.Join(f.dir, "cache"), exec)
	return f
}

func subnetGateway(b *testing.B, subnet string) string {
	var a, c, d, e, bits int
	if _, err := fmt.Sscanf(subnet, "%d.%d.%d.%d/%d", &a, &c, &d, &e, &bits); err != nil {
		b.Fatalf("subnet %q: %v", subnet, err)
	}
	return fmt.Sprintf("%d.%d.%d.%d", a, c, d, e+1)
}

// importBusybox imports the lab's busybox image (built by imagebuild, as the
// lab's content library holds it) into ctx's namespace and unpacks it.
func importBusybox(b *testing.B, ctx context.Context, c *containerd.Client) containerd.Image {
	b.Helper()
	var buf bytes.Buffer
	if err := imagebuild.Build(&buf, imagebuild.Options{Name: lab.ImageRef}); err != nil {
		b.Fatal(err)
	}
	imgs, err := c.Import(ctx, &buf)
	if err != nil || len(imgs) != 1 {
		b.Fatalf("import busybox: %v (%d images)", err, len(imgs))
	}
	img := containerd.NewImage(c, imgs[0])
	if err := img.Unpack(ctx, ctrdriver.DefaultSnapshotter); err != nil {
		b.Fatal(err)
	}
	return img
}

// inNetNSExec runs CNI plugins with their thread in the host netns, as podsphere does.
type inNetNSExec struct {
	invoke.DefaultExec
	netns string
}

func (e *inNetNSExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	var out []byte
	err := network.InNetNS(e.netns, func() error {
		var err error
		out, err = e.DefaultExec.ExecPlugin(ctx, pluginPath, stdin, environ)
		return err
	})
	return out, err
}

// run does one VM's worth of floor work and returns its phases.
func (f *floorHost) run(id string) (ip string, ph [4]time.Duration, err error) {
	ctx := f.ctx
	t0 := time.Now()
	netns, err := newNetNS(f.prefix + "-f" + id)
	if err != nil {
		return "", ph, err
	}
	f.mu.Lock()
	f.vms = append(f.vms, floorVM{id: id, netns: netns})
	f.mu.Unlock()
	t1 := time.Now()
	res, err := f.cni.AddNetworkList(ctx, f.list, &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: "eth0"})
	if err != nil {
		return "", ph, fmt.Errorf("floor %s: CNI ADD: %w", id, err)
	}
	if ip = network.ResultIP(res); ip == "" {
		return "", ph, fmt.Errorf("floor %s: CNI ADD gave no IPv4 address", id)
	}
	t2 := time.Now()
	c, err := f.client.NewContainer(ctx, id,
		containerd.WithImage(f.image),
		containerd.WithSnapshotter(ctrdriver.DefaultSnapshotter),
		containerd.WithNewSnapshot(id, f.image),
		containerd.WithRuntime(ctrdriver.DefaultRuntime, nil),
		containerd.WithNewSpec(
			oci.WithImageConfig(f.image),
			oci.WithProcessArgs(httpdArgs...),
			oci.WithHostname(id),
			oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns}),
			oci.WithCPUCFS(100000, 100000), // one vCPU, as podsphere's limit for NumCPU 1
			oci.WithMemoryLimit(vmMemoryMB<<20),
		),
	)
	if err != nil {
		return "", ph, fmt.Errorf("floor %s: container: %w", id, err)
	}
	t3 := time.Now()
	task, err := c.NewTask(ctx, cio.LogFile(filepath.Join(f.dir, id+".log")))
	if err != nil {
		return "", ph, fmt.Errorf("floor %s: task: %w", id, err)
	}
	if err := task.Start(ctx); err != nil {
		return "", ph, fmt.Errorf("floor %s: start: %w", id, err)
	}
	st, err := task.Status(ctx)
	if err != nil || st.Status != containerd.Running {
		return "", ph, fmt.Errorf("floor %s: task is %q, not running: %v", id, st.Status, err)
	}
	t4 := time.Now()
	return ip, [4]time.Duration{t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3)}, nil
}

// stopAll removes every floor VM: task, container and snapshot, CNI DEL, netns.
func (f *floorHost) stopAll() error {
	f.mu.Lock()
	vms := f.vms
	f.vms = nil
	f.mu.Unlock()
	var errs []error
	for _, vm := range vms {
		if err := f.remove(vm); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (f *floorHost) remove(vm floorVM) error {
	ctx := context.WithoutCancel(f.ctx)
	var errs []error
	if c, err := f.client.LoadContainer(ctx, vm.id); err == nil {
		if t, err := c.Task(ctx, nil); err == nil {
			if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
		if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	rt := &libcni.RuntimeConf{ContainerID: vm.id, NetNS: vm.netns, IfName: "eth0"}
	if err := f.cni.DelNetworkList(ctx, f.list, rt); err != nil {
		errs = append(errs, fmt.Errorf("floor %s: CNI DEL: %w", vm.id, err))
	}
	if err := deleteNetNS(vm.netns); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (f *floorHost) teardown() error {
	var errs []error
	if f.client != nil {
		errs = append(errs, f.stopAll())
		is := f.client.ImageService()
		if imgs, err := is.List(f.ctx); err == nil {
			for _, img := range imgs {
				_ = is.Delete(f.ctx, img.Name, images.SynchronousDelete())
			}
		}
		if err := f.client.NamespaceService().Delete(f.ctx, f.name); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("containerd namespace %s: %w", f.name, err))
		}
		f.client.Close()
	}
	// containerd's default cgroup for a container is /<namespace>/<id>: the parent stays.
	removeCgroupDir("/" + f.name)
	removeRuncState(f.name)
	errs = append(errs, network.DeleteNamedNetNS(f.name)) // takes the bridge and the host ends of the veths
	return errors.Join(errs...)
}

// newNetNS pins a fresh network namespace at /run/netns/NAME the way CNI's
// own tools do: unshare on a locked thread, bind-mount it, let the thread die.
func newNetNS(name string) (string, error) {
	path := filepath.Join(network.NetNSDir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return "", fmt.Errorf("netns %s: %w", name, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine, netns and all
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- unix.Mount(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()), path, "none", unix.MS_BIND, "")
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return "", fmt.Errorf("netns %s: %w", name, err)
	}
	return path, nil
}

func deleteNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// removeRuncState removes the shim's per-namespace runc root, which
// outlives the namespace's last task (empty by then).
func removeRuncState(ns string) {
	_ = os.Remove(filepath.Join("/run/containerd/runc", ns))
}

// removeCgroupDir removes rel (and its empty subdirectories) from every
// cgroup hierarchy; directories still in use stay.
func removeCgroupDir(rel string) {
	roots := []string{"/sys/fs/cgroup"}
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		if e.IsDir() {
			roots = append(roots, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	for _, r := range roots {
		dir := filepath.Join(r, rel)
		var dirs []string
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = os.Remove(dirs[i])
		}
	}
}

// driverHost runs podsphere's own data plane (host/containerd's Driver on a
// host/network bridge) with no vcenter and no agent: Create then Start, as
// the agent calls them. It splits podsphere's time between its data-plane
// code and its control plane.
type driverHost struct {
	name       string // <lab prefix>-drv: containerd namespace and host netns
	net        *network.Network
	drv        *ctrdriver.Driver
	cgroupRoot string
}

func newDriverHost(b *testing.B, l *benchLab, subnet string) *driverHost {
	b.Helper()
	h := &driverHost{name: l.prefix + "-drv"}
	h.cgroupRoot = "/podsphere/" + h.name
	dir := filepath.Join(filepath.Dir(l.dir), "drv")
	td := onTeardown(h.name, h.teardown)
	b.Cleanup(func() {
		if err := td(); err != nil {
			b.Errorf("driver host teardown: %v", err)
		}
	})
	hostNS, err := network.CreateNamedNetNS(h.name)
	if err != nil {
		b.Fatal(err)
	}
	if h.net, err = network.New(network.Config{Subnet: subnet, StateDir: filepath.Join(dir, "net"), HostNetNS: hostNS, NetNSPrefix: l.prefix + "-d"}); err != nil {
		b.Fatal(err)
	}
	var lib bytes.Buffer
	if err := imagebuild.Build(&lib, imagebuild.Options{Name: lab.ImageRef}); err != nil {
		b.Fatal(err)
	}
	h.drv, err = ctrdriver.New(ctrdriver.Config{
		Socket: l.socket, Namespace: h.name, Network: h.net, CgroupRoot: h.cgroupRoot,
		StateDir: filepath.Join(dir, "state"), LogDir: filepath.Join(dir, "logs"),
		Images: oneImage(lib.Bytes()),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// oneImage is a content library holding the busybox archive under every name.
type oneImage []byte

func (o oneImage) Fetch(context.Context, string) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(o)), nil
}

// run creates and starts one VM through the driver; phases: create, start.
func (h *driverHost) run(id string) ([2]time.Duration, error) {
	ctx := context.Background()
	spec := driverSpec(id)
	t0 := time.Now()
	if err := h.drv.Create(ctx, spec); err != nil {
		return [2]time.Duration{}, err
	}
	t1 := time.Now()
	if err := h.drv.Start(ctx, id); err != nil {
		return [2]time.Duration{}, err
	}
	t2 := time.Now()
	st, err := h.drv.Status(ctx, id)
	if err != nil || st.PowerState != api.PoweredOn || st.IP == "" {
		return [2]time.Duration{}, fmt.Errorf("driver VM %s: %+v, %v", id, st, err)
	}
	return [2]time.Duration{t1.Sub(t0), t2.Sub(t1)}, nil
}

func (h *driverHost) teardown() error {
	var errs []error
	if h.drv != nil {
		ctx := context.Background()
		vms, err := h.drv.List(ctx)
		errs = append(errs, err)
		for _, vm := range vms {
			errs = append(errs, h.drv.Delete(ctx, vm.ID))
		}
		nctx := namespaces.WithNamespace(ctx, h.name)
		c := h.drv.Client()
		is := c.ImageService()
		if imgs, err := is.List(nctx); err == nil {
			for _, img := range imgs {
				_ = is.Delete(nctx, img.Name, images.SynchronousDelete())
			}
		}
		if err := c.NamespaceService().Delete(nctx, h.name); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("containerd namespace %s: %w", h.name, err))
		}
		h.drv.Close()
	}
	if h.net != nil {
		errs = append(errs, h.net.RemoveHostRules())
	}
	removeCgroupDir(h.cgroupRoot)
	removeRuncState(h.name)
	errs = append(errs, network.DeleteNamedNetNS(h.name))
	return errors.Join(errs...)
}
