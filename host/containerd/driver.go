// Package containerd is the host agent's real runtime driver: it runs each VM
// as one pinned network namespace (attached to the host bridge by the network
// package) plus one containerd container per api.Container, all joining that
// netns, under one VM-level cgroup that carries the VM's CPU and memory
// allocation. Everything the driver needs to find a VM again is kept in
// containerd labels, so a restarted agent adopts running VMs untouched.
package containerd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/halock"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/host/probe"
	"github.com/podsphere/podsphere/host/runtime"
)

// Defaults, in one place.
const (
	DefaultNamespace    = "podsphere"
	DefaultSnapshotter  = "overlayfs"
	DefaultRuntime      = "io.containerd.runc.v2"
	DefaultMHzPerCore   = 2000             // when /proc/cpuinfo has no "cpu MHz" (e.g. some ARM boards)
	DefaultBackoff      = 1 * time.Second  // first restart delay after a container exits
	DefaultBackoffMax   = 30 * time.Second // restart delay cap (doubling from DefaultBackoff)
	DefaultBackoffReset = 60 * time.Second // a container that ran this long restarts with DefaultBackoff again
	DefaultStopTimeout  = 10 * time.Second // SIGTERM grace when Stop is given no timeout
	cfsPeriod           = 100000           // µs; the kernel's default CFS period
)

// Labels the driver puts on every container it makes.
const (
	LabelVMID          = "podsphere.vm.id"
	LabelVMPath        = "podsphere.vm.path"
	LabelContainer     = "podsphere.container.name"
	LabelIndex         = "podsphere.container.index"
	LabelRestartPolicy = "podsphere.restart-policy"
	LabelDesired       = "podsphere.desired"  // running or stopped: what the admin last asked for
	LabelRestarts      = "podsphere.restarts" // restarts done by the driver, survives agent restarts
	LabelStartedAt     = "podsphere.started-at"
	LabelBootTime      = "podsphere.boot-time"
	LabelExitCode      = "podsphere.exit-code"
	LabelIP            = "podsphere.ip"
	LabelNetNS         = "podsphere.netns"
	LabelCgroup        = "podsphere.cgroup"
	LabelPorts         = "podsphere.ports"
	// LabelSpecHash is runtime.SpecHash of the spec the containers were
	// made from; containers an older driver made lack it (hash unknown).
	LabelSpecHash = "podsphere.spec-hash"
	// LabelShapeHash is runtime.ShapeHash of that spec: with it, a change of
	// size and allocations alone is made in place (Resize).
	LabelShapeHash = "podsphere.shape-hash"
	// LabelInit marks an init container ("true").
	LabelInit = "podsphere.init"
	// LabelProbes holds the container's probes and ports (JSON of an
	// api.Container with only those set), so a restarted agent probes
	// the containers it adopts; absent without probes.
	LabelProbes = "podsphere.probes"
	// LabelGrace is the VM's terminationGracePeriodSeconds, the grace a
	// container killed for a failed liveness probe gets; absent: DefaultStopTimeout.
	LabelGrace = "podsphere.grace"
	// LabelPullPolicy is the container's imagePullPolicy ("" = IfNotPresent).
	LabelPullPolicy = "podsphere.pull-policy"
	// LabelMessage is what the driver last did to the container on its
	// own (killed it for a failed liveness probe); cleared at power-on.
	LabelMessage = "podsphere.message"
)

// ImageSource is the content library: it serves OCI image archives by name.
// Fetch wraps api.ErrNotFound when it has no such image.
type ImageSource interface {
	Fetch(ctx context.Context, name string) (io.ReadCloser, error)
}

// Config wires the driver to a containerd and a host network.
type Config struct {
	Socket    string // containerd's gRPC socket
	Namespace string // containerd namespace of this agent; default DefaultNamespace
	// Network attaches VMs to the host bridge; nil gives VMs a netns with loopback only.
	Network *network.Network
	// NetworkTemplate, when Network is nil, is the host network SetupNetwork
	// builds once vcenter has assigned the pod subnet (its Subnet is filled in then).
	NetworkTemplate *network.Config
	// StateDir holds exec FIFOs; LogDir holds LogDir/<vmID>/<container>.log.
	StateDir string
	LogDir   string
	Images   ImageSource // nil: only images already in the namespace, or pulled

	Snapshotter string // default DefaultSnapshotter
	Runtime     string // default DefaultRuntime
	// MHzPerCore turns MHz allocations into fractions of a core; default:
	// /proc/cpuinfo's first "cpu MHz", else DefaultMHzPerCore.
	MHzPerCore int64
	// Capacity overrides the measured capacity, field by field when non-zero.
	Capacity runtime.Capacity
	// CgroupRoot is the cgroup parent of all VMs; default /podsphere/<namespace>.
	CgroupRoot string

	Backoff, BackoffMax, BackoffReset time.Duration

	Logger *slog.Logger
	// OnRestart, if set, hears of every restart the driver does (for events).
	OnRestart func(vmID, container string, restarts, exitCode int)
	// ProbeUnit is the length of one of the probes' seconds; default
	// time.Second (tests shrink it).
	ProbeUnit time.Duration
	// Locks, when set, protects every VM the driver creates with HA's VM
	// lock: each container runs under the fence (FenceBinary, mounted in
	// as PID 1), which kills the VM once its lock lapses, names another
	// host or was released; and no container starts, not even a restart
	// the driver does on its own, unless the lock is this host's and live.
	Locks       *halock.Locks
	FenceBinary string // the podsphere-fence executable on this host
	// HostResolvConf is the host's resolv.conf, which VMs of dnsPolicy
	// Default copy; default DefaultHostResolvConf.
	HostResolvConf string
}

// Driver implements runtime.Runtime on containerd v1.7's client.
type Driver struct {
	cfg    Config
	client *containerd.Client
	ctx    context.Context // carries the namespace; canceled by Close
	cancel context.CancelFunc
	log    *slog.Logger

	mu      sync.Mutex
	vmLocks map[string]*sync.Mutex
	// fresh holds the VMs Create attached to the network in this driver's
	// life that have not been started since, with their IPs: their first
	// Start need not CHECK an attachment made moments before.
	fresh    map[string]string
	watchers map[string]*watcher      // container ID (or initKey) -> its supervisor
	probers  map[string]*probe.Runner // container ID -> the probes of its current run
	notify   func(vmID string)
	samples  map[string]cpuSample
	// clusterDomain ends the search path of new VMs' resolv.conf (SetClusterDomain).
	clusterDomain string
	importMu      sync.Mutex
	wg            sync.WaitGroup
}

var (
	_ runtime.Runtime   = (*Driver)(nil)
	_ runtime.Networker = (*Driver)(nil)
	_ runtime.Recreator = (*Driver)(nil)
	_ runtime.Notifier  = (*Driver)(nil)
)

// SetNotify sets who hears of VMs that changed on their own: a probe
// verdict, a container exiting or restarting, an init container done
// (runtime.Notifier). nil tells nobody.
func (d *Driver) SetNotify(notify func(vmID string)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.notify = notify
}

// changed tells the notify function, if any, that the VM changed.
func (d *Driver) changed(vmID string) {
	d.mu.Lock()
	notify := d.notify
	d.mu.Unlock()
	if notify != nil {
		notify(vmID)
	}
}

// network is the host network VMs attach to (nil: loopback only).
func (d *Driver) network() *network.Network {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg.Network
}

// SetupNetwork builds the host network from Config.NetworkTemplate and the
// pod subnet vcenter assigned. Setting up the same subnet again is a no-op;
// a different one is refused, since running VMs hold addresses from the old one.
func (d *Driver) SetupNetwork(ctx context.Context, podSubnet string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := d.cfg.Network; n != nil {
		if cur := n.Config().Subnet; cur != podSubnet {
			return fmt.Errorf("containerd: host network already uses pod subnet %s, vcenter now assigns %s: %w", cur, podSubnet, api.ErrConflict)
		}
		return nil
	}
	if d.cfg.NetworkTemplate == nil {
		return nil // VMs get a loopback-only netns
	}
	nc := *d.cfg.NetworkTemplate
	nc.Subnet = podSubnet
	n, err := network.New(nc)
	if err != nil {
		return err
	}
	d.cfg.Network = n
	d.log.Info("host network ready", "subnet", podSubnet, "bridge", n.Config().Bridge)
	return nil
}

// SetPeerRoutes routes the other hosts' pod subnets via their addresses.
func (d *Driver) SetPeerRoutes(peers []runtime.Peer) error {
	n := d.network()
	if n == nil {
		return nil
	}
	ps := make([]network.Peer, 0, len(peers))
	for _, p := range peers {
		ps = append(ps, network.Peer{Subnet: p.Subnet, Via: p.Via})
	}
	return n.SetPeerRoutes(ps)
}

// New connects to containerd and adopts the VMs already running in the namespace.
func New(cfg Config) (*Driver, error) {
	if cfg.Socket == "" {
		return nil, fmt.Errorf("containerd: socket is required")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.Snapshotter == "" {
		cfg.Snapshotter = DefaultSnapshotter
	}
	if cfg.Runtime == "" {
		cfg.Runtime = DefaultRuntime
	}
	if cfg.StateDir == "" {
		cfg.StateDir = "/var/lib/podsphere/containerd"
	}
	if cfg.LogDir == "" {
		cfg.LogDir = "/var/log/podsphere/vms"
	}
	if cfg.MHzPerCore <= 0 {
		cfg.MHzPerCore = cpuinfoMHz()
	}
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "/podsphere/" + cfg.Namespace
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.BackoffReset <= 0 {
		cfg.BackoffReset = DefaultBackoffReset
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := checkFence(cfg); err != nil {
		return nil, err
	}
	for _, dir := range []string{cfg.StateDir, cfg.LogDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
	}
	client, err := containerd.New(cfg.Socket, containerd.WithDefaultNamespace(cfg.Namespace), containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("containerd: connect %s: %w", cfg.Socket, err)
	}
	ctx, cancel := context.WithCancel(namespaces.WithNamespace(context.Background(), cfg.Namespace))
	d := &Driver{
		cfg: cfg, client: client, ctx: ctx, cancel: cancel,
		log:      cfg.Logger.With("runtime", "containerd", "namespace", cfg.Namespace),
		vmLocks:  map[string]*sync.Mutex{},
		fresh:    map[string]string{},
		watchers: map[string]*watcher{},
		probers:  map[string]*probe.Runner{},
		samples:  map[string]cpuSample{},
	}
	if err := d.adopt(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Close stops supervising (containers keep running) and disconnects.
func (d *Driver) Close() error {
	d.cancel()
	d.wg.Wait()
	return d.client.Close()
}

// Client is the underlying containerd client, for tests and tools.
func (d *Driver) Client() *containerd.Client { return d.client }

// Name is the runtime's name in HostStatus.Runtime.
func (d *Driver) Name() string { return "containerd" }

// MHzPerCore is the figure that converts MHz to fractions of a core.
func (d *Driver) MHzPerCore() int64 { return d.cfg.MHzPerCore }

// Capacity is cores x MHzPerCore and MemTotal, unless overridden by Config.
func (d *Driver) Capacity(ctx context.Context) (runtime.Capacity, error) {
	c := runtime.Capacity{CPUMHz: int64(goruntime.NumCPU()) * d.cfg.MHzPerCore, MemMB: memTotalMB()}
	if d.cfg.Capacity.CPUMHz > 0 {
		c.CPUMHz = d.cfg.Capacity.CPUMHz
	}
	if d.cfg.Capacity.MemMB > 0 {
		c.MemMB = d.cfg.Capacity.MemMB
	}
	return c, nil
}

// vmLock serializes lifecycle calls and restarts of one VM.
func (d *Driver) vmLock(id string) *sync.Mutex {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.vmLocks[id]
	if !ok {
		l = &sync.Mutex{}
		d.vmLocks[id] = l
	}
	return l
}

func cpuinfoMHz() int64 {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return DefaultMHzPerCore
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "cpu MHz" {
			if mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && mhz > 0 {
				return int64(math.Round(mhz))
			}
		}
	}
	return DefaultMHzPerCore
}

func memTotalMB() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb / 1024
		}
	}
	return 0
}
