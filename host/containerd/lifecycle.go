package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/host/runtime"
)

// Restart policies (runtime.VMSpec.RestartPolicy); "" means Always.
const (
	RestartAlways    = "Always"
	RestartOnFailure = "OnFailure"
	RestartNever     = "Never"
)

const (
	desiredRunning = "running"
	desiredStopped = "stopped"
)

var containerName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (d *Driver) nsCtx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, d.cfg.Namespace)
}

// ContainerID is the containerd ID of one of a VM's containers.
func ContainerID(vmID, name string) string { return vmID + "-" + name }

// CgroupPath is the VM's cgroup, parent of its containers' cgroups.
func (d *Driver) CgroupPath(vmID string) string { return d.cfg.CgroupRoot + "/" + vmID }

// LogPath is where a container's stdout and stderr go.
func (d *Driver) LogPath(vmID, container string) string {
	return filepath.Join(d.cfg.LogDir, vmID, container+".log")
}

// NetNSPath is the VM's pinned network namespace.
func (d *Driver) NetNSPath(vmID string) string {
	if n := d.network(); n != nil {
		return n.NetNSPath(vmID)
	}
	return filepath.Join(network.NetNSDir, network.DefaultNetNSPrefix+vmID)
}

// vmContainers returns the VM's containers in spec order.
func (d *Driver) vmContainers(ctx context.Context, vmID string) ([]containers.Container, error) {
	cs, err := d.client.ContainerService().List(ctx, fmt.Sprintf("labels.%q==%q", LabelVMID, vmID))
	if err != nil {
		return nil, fmt.Errorf("containerd: list VM %s: %w", vmID, err)
	}
	sortByIndex(cs)
	return cs, nil
}

// existingVMContainers is vmContainers, but a VM without containers is
// api.ErrNotFound.
func (d *Driver) existingVMContainers(ctx context.Context, vmID string) ([]containers.Container, error) {
	cs, err := d.vmContainers(ctx, vmID)
	if err == nil && len(cs) == 0 {
		err = fmt.Errorf("containerd: VM %s: %w", vmID, api.ErrNotFound)
	}
	return cs, err
}

func sortByIndex(cs []containers.Container) {
	idx := func(c containers.Container) int { i, _ := strconv.Atoi(c.Labels[LabelIndex]); return i }
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && idx(cs[j]) < idx(cs[j-1]); j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

// setLabels sets some of a container's labels, leaving the others alone, in
// one call (what containerd.Container.SetLabels does, without loading it first).
func (d *Driver) setLabels(ctx context.Context, cid string, labels map[string]string) error {
	paths := make([]string, 0, len(labels))
	for k := range labels {
		paths = append(paths, "labels."+k)
	}
	_, err := d.client.ContainerService().Update(ctx, containers.Container{ID: cid, Labels: labels}, paths...)
	return err
}

// Create makes the VM's netns, network attachment, cgroup and containers, but
// starts nothing. A VM that already has containers is left as it is (see
// Recreate). The containers carry runtime.SpecHash(spec) in LabelSpecHash.
func (d *Driver) Create(ctx context.Context, spec runtime.VMSpec) error {
	if err := validSpec(spec); err != nil {
		return err
	}
	ctx = d.nsCtx(ctx)
	l := d.vmLock(spec.ID)
	l.Lock()
	defer l.Unlock()

	existing, err := d.vmContainers(ctx, spec.ID)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		return nil
	}
	images, err := d.ensureImages(ctx, spec)
	if err != nil {
		return err
	}
	return d.create(ctx, spec, images)
}

// Recreate replaces the VM's containers and cgroup with ones made from spec,
// after a spec change: the images are made ready first (a missing image
// fails the call with the old containers untouched), then the old
// containers are stopped (SIGKILL after timeout) and deleted with their
// snapshots and cgroup, and the new ones created, not started. The netns,
// the network attachment and so the VM's IP stay, as do its logs. A VM
// without containers is simply created. If making the new containers fails,
// the VM is removed altogether (as a failed Create leaves nothing), and the
// agent creates it afresh on a later pass.
func (d *Driver) Recreate(ctx context.Context, spec runtime.VMSpec, timeout time.Duration) error {
	if err := validSpec(spec); err != nil {
		return err
	}
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	ctx = d.nsCtx(ctx)
	l := d.vmLock(spec.ID)
	l.Lock()
	defer l.Unlock()

	images, err := d.ensureImages(ctx, spec)
	if err != nil {
		return err
	}
	existing, err := d.vmContainers(ctx, spec.ID)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		if err := d.stopAll(ctx, spec.ID, existing, timeout); err != nil {
			return err
		}
		if err := d.removeContainers(ctx, existing); err != nil {
			return err
		}
		if err := removeVMCgroup(d.CgroupPath(spec.ID)); err != nil {
			// create writes every limit again, whatever the cgroup held.
			d.log.Warn("recreate: old VM cgroup kept", "vm", spec.ID, "err", err)
		}
		d.mu.Lock()
		delete(d.fresh, spec.ID)
		delete(d.samples, spec.ID)
		d.mu.Unlock()
	}
	if err := d.create(ctx, spec, images); err != nil {
		return err
	}
	d.log.Info("VM recreated", "vm", spec.ID, "path", spec.Path, "spec", runtime.SpecHash(spec))
	return nil
}

// validSpec checks what Create and Recreate need of a spec.
func validSpec(spec runtime.VMSpec) error {
	if spec.ID == "" || len(spec.Containers) == 0 {
		return fmt.Errorf("containerd: VM needs an id and at least one container: %w", api.ErrInvalid)
	}
	seen := map[string]bool{}
	for _, c := range allContainers(spec) {
		if !containerName.MatchString(c.Name) || seen[c.Name] || c.Image == "" {
			return fmt.Errorf("containerd: VM %s: container %q: name must be a unique DNS label and image set: %w", spec.ID, c.Name, api.ErrInvalid)
		}
		seen[c.Name] = true
		switch c.ImagePullPolicy {
		case "", api.PullIfNotPresent, api.PullAlways, api.PullNever:
		default:
			return fmt.Errorf("containerd: VM %s: container %s: imagePullPolicy %q: %w", spec.ID, c.Name, c.ImagePullPolicy, api.ErrInvalid)
		}
		if c.RunAsUser != nil && (*c.RunAsUser < 0 || *c.RunAsUser > math.MaxUint32) {
			return fmt.Errorf("containerd: VM %s: container %s: runAsUser %d: %w", spec.ID, c.Name, *c.RunAsUser, api.ErrInvalid)
		}
		if len(probesLabel(c)) > maxLabel {
			return fmt.Errorf("containerd: VM %s: container %s: probes and ports take more than %d bytes: %w", spec.ID, c.Name, maxLabel, api.ErrInvalid)
		}
	}
	switch spec.RestartPolicy {
	case "", RestartAlways, RestartOnFailure, RestartNever:
	default:
		return fmt.Errorf("containerd: restart policy %q: %w", spec.RestartPolicy, api.ErrInvalid)
	}
	// Probes, ports, users and the rest, as vcenter is to check them too.
	if err := api.ValidateVMContainers(api.VMSpec{Containers: spec.Containers, InitContainers: spec.InitContainers,
		TerminationGracePeriodSeconds: spec.TerminationGracePeriodSeconds, Hostname: spec.Hostname}); err != nil {
		return fmt.Errorf("containerd: VM %s: %w", spec.ID, err)
	}
	return nil
}

// allContainers is the VM's init containers, then its containers: the
// order of their index labels.
func allContainers(spec runtime.VMSpec) []api.Container {
	return append(append([]api.Container(nil), spec.InitContainers...), spec.Containers...)
}

// maxLabel is what containerd takes of one label, key and value.
const maxLabel = 4096 - len(LabelProbes)

// probesLabel is the LabelProbes value of c ("" without probes).
func probesLabel(c api.Container) string {
	if c.LivenessProbe == nil && c.ReadinessProbe == nil && c.StartupProbe == nil {
		return ""
	}
	b, _ := json.Marshal(api.Container{Name: c.Name, Ports: c.Ports,
		LivenessProbe: c.LivenessProbe, ReadinessProbe: c.ReadinessProbe, StartupProbe: c.StartupProbe})
	return string(b)
}

// ensureImages makes every container's image ready, init containers
// first, as its pull policy says.
func (d *Driver) ensureImages(ctx context.Context, spec runtime.VMSpec) ([]containerd.Image, error) {
	all := allContainers(spec)
	images := make([]containerd.Image, len(all))
	for i, c := range all {
		var err error
		if images[i], err = d.imageFor(ctx, c.Image, c.ImagePullPolicy); err != nil {
			return nil, fmt.Errorf("containerd: VM %s: container %s: %w", spec.ID, c.Name, err)
		}
	}
	return images, nil
}

// create is Create for a VM without containers, its images ready, under
// the VM's lock. On an error it removes everything of the VM.
func (d *Driver) create(ctx context.Context, spec runtime.VMSpec, images []containerd.Image) (err error) {
	defer func() {
		if err != nil {
			_ = d.remove(context.WithoutCancel(ctx), spec.ID)
		}
	}()
	netns, ip, err := d.ensureNetwork(ctx, spec.ID)
	if err != nil {
		return err
	}
	limits := LimitsFor(spec, d.cfg.MHzPerCore)
	cgroup := d.CgroupPath(spec.ID)
	if err := setupVMCgroup(cgroup, limits); err != nil {
		return fmt.Errorf("containerd: VM %s: %w", spec.ID, err)
	}
	if err := os.MkdirAll(filepath.Join(d.cfg.LogDir, spec.ID), 0o755); err != nil {
		return err
	}
	policy := spec.RestartPolicy
	if policy == "" {
		policy = RestartAlways
	}
	hash := runtime.SpecHash(spec)
	for i, c := range allContainers(spec) {
		ports, _ := json.Marshal(c.Ports)
		labels := map[string]string{
			LabelVMID:          spec.ID,
			LabelVMPath:        spec.Path,
			LabelContainer:     c.Name,
			LabelIndex:         strconv.Itoa(i),
			LabelRestartPolicy: policy,
			LabelDesired:       desiredStopped,
			LabelRestarts:      "0",
			LabelIP:            ip,
			LabelNetNS:         netns,
			LabelCgroup:        cgroup,
			LabelPorts:         string(ports),
			LabelSpecHash:      hash,
		}
		if i < len(spec.InitContainers) {
			labels[LabelInit] = "true"
		}
		if p := probesLabel(c); p != "" {
			labels[LabelProbes] = p
		}
		if g := spec.TerminationGracePeriodSeconds; g != nil {
			labels[LabelGrace] = strconv.FormatInt(*g, 10)
		}
		if c.ImagePullPolicy != "" {
			labels[LabelPullPolicy] = c.ImagePullPolicy
		}
		opts := specOpts(c, images[i], netns, cgroup, hostname(spec), limits)
		cid := ContainerID(spec.ID, c.Name)
		_, err := d.client.NewContainer(ctx, cid,
			containerd.WithImage(images[i]),
			containerd.WithSnapshotter(d.cfg.Snapshotter),
			containerd.WithNewSnapshot(cid, images[i]),
			containerd.WithRuntime(d.cfg.Runtime, nil),
			containerd.WithNewSpec(opts...),
			containerd.WithContainerLabels(labels),
		)
		if err != nil {
			return fmt.Errorf("containerd: VM %s: container %s: %w", spec.ID, c.Name, err)
		}
	}
	d.mu.Lock()
	d.fresh[spec.ID] = ip
	d.mu.Unlock()
	d.log.Info("VM created", "vm", spec.ID, "path", spec.Path, "ip", ip, "containers", len(spec.Containers), "initContainers", len(spec.InitContainers))
	return nil
}

// takeFresh says whether Create attached the VM in this driver's life and
// it was not started since (then its containers have no tasks and its
// attachment needs no CHECK), and returns its IP. It is true once.
func (d *Driver) takeFresh(vmID string) (ip string, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ip, ok = d.fresh[vmID]
	delete(d.fresh, vmID)
	return ip, ok
}

// specOpts builds a container's OCI spec the Kubernetes way: Command replaces
// the image's entrypoint, Args alone replace its cmd.
func specOpts(c api.Container, img containerd.Image, netns, cgroup, host string, l Limits) []oci.SpecOpts {
	var opts []oci.SpecOpts
	switch {
	case len(c.Command) > 0:
		opts = append(opts, oci.WithImageConfig(img), oci.WithProcessArgs(append(append([]string{}, c.Command...), c.Args...)...))
	case len(c.Args) > 0:
		opts = append(opts, oci.WithImageConfigArgs(img, c.Args))
	default:
		opts = append(opts, oci.WithImageConfig(img))
	}
	if len(c.Env) > 0 {
		env := make([]string, 0, len(c.Env))
		for _, e := range c.Env {
			env = append(env, e.Name+"="+e.Value)
		}
		opts = append(opts, oci.WithEnv(env))
	}
	if c.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(c.WorkingDir))
	}
	if c.RunAsUser != nil {
		// The uid's group comes from the image's /etc/passwd (0 if it has none), as with the CRI.
		opts = append(opts, oci.WithUserID(uint32(*c.RunAsUser)))
	}
	if c.ReadOnlyRootFilesystem {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	opts = append(opts,
		oci.WithHostname(host),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns}),
		oci.WithCgroup(cgroup+"/"+c.Name),
	)
	// The VM cgroup enforces the allocation for all containers together; each
	// container also carries it, so its own cgroup shows the VM's limits.
	if l.CPUQuota > 0 {
		opts = append(opts, oci.WithCPUCFS(l.CPUQuota, cfsPeriod))
	}
	if l.CPUShares > 0 {
		opts = append(opts, oci.WithCPUShares(l.CPUShares))
	}
	if l.MemLimit > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(l.MemLimit)))
	}
	return opts
}

var notHostname = regexp.MustCompile(`[^a-z0-9-]+`)

// hostname is the VM's UTS host name: spec.Hostname, else its name made a
// DNS label.
func hostname(spec runtime.VMSpec) string {
	if spec.Hostname != "" {
		return spec.Hostname
	}
	name := spec.ID
	if spec.Path != "" {
		name = filepath.Base(spec.Path)
	}
	name = strings.Trim(notHostname.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	if name == "" {
		return "vm"
	}
	return name
}

// ensureNetwork pins the VM's netns and attaches it; both steps are idempotent.
func (d *Driver) ensureNetwork(ctx context.Context, vmID string) (netns, ip string, err error) {
	n := d.network()
	if n == nil {
		netns, err = network.CreateNamedNetNS(network.DefaultNetNSPrefix + vmID)
		return netns, "", err
	}
	if netns, err = n.CreateNetNS(vmID); err != nil {
		return "", "", fmt.Errorf("containerd: VM %s: %w", vmID, err)
	}
	if ip, err = n.Setup(ctx, vmID, netns); err != nil {
		return "", "", fmt.Errorf("containerd: VM %s: %w", vmID, err)
	}
	return netns, ip, nil
}

// Start starts every container of the VM that is not running, and supervises them.
func (d *Driver) Start(ctx context.Context, id string) error {
	ctx = d.nsCtx(ctx)
	l := d.vmLock(id)
	l.Lock()
	defer l.Unlock()
	cs, err := d.existingVMContainers(ctx, id)
	if err != nil {
		return err
	}
	// Right after Create the attachment is as CNI made it; any other start
	// (power-on after power-off, reset, a VM a previous agent made, a retry
	// after a failed start) re-checks it and repairs it if need be.
	ip, fresh := d.takeFresh(id)
	if !fresh {
		if _, ip, err = d.ensureNetwork(ctx, id); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(d.cfg.LogDir, id), 0o755); err != nil {
		return err
	}
	// A new boot, unless the VM runs (a repeated Start, or one after a
	// failed Start): a VM that completed, or whose init container failed
	// for good, boots afresh when started again (vm.power -reset).
	alive := d.supervised(initKey(id))
	for _, c := range cs {
		alive = alive || d.supervised(c.ID)
	}
	boot := cs[0].Labels[LabelBootTime]
	newBoot := cs[0].Labels[LabelDesired] != desiredRunning || boot == "" || !alive
	if newBoot {
		boot = time.Now().UTC().Format(time.RFC3339Nano)
	}
	for i := range cs {
		labels := map[string]string{LabelDesired: desiredRunning, LabelBootTime: boot}
		if ip != "" {
			labels[LabelIP] = ip
		}
		if newBoot {
			labels[LabelMessage] = ""
		}
		if err := d.setLabels(ctx, cs[i].ID, labels); err != nil {
			return fmt.Errorf("containerd: VM %s: %w", id, err)
		}
		for k, v := range labels {
			cs[i].Labels[k] = v
		}
	}
	inits, mains := splitInit(cs)
	bootTime, _ := time.Parse(time.RFC3339Nano, boot)
	if len(inits) > 0 && !initsDone(inits, bootTime) {
		// The init containers run one after the other on a goroutine of
		// their own, which starts the containers once they all succeeded.
		d.runInits(id, bootTime)
		d.log.Info("VM powered on, running init containers", "vm", id, "initContainers", len(inits))
		return nil
	}
	for _, info := range mains {
		if err := d.startContainer(ctx, id, info, fresh); err != nil {
			return err
		}
	}
	d.log.Info("VM powered on", "vm", id)
	return nil
}

// splitInit parts a VM's containers (in index order) into its init
// containers and the others.
func splitInit(cs []containers.Container) (inits, mains []containers.Container) {
	for _, c := range cs {
		if c.Labels[LabelInit] == "true" {
			inits = append(inits, c)
		} else {
			mains = append(mains, c)
		}
	}
	return inits, mains
}

// initsDone says whether every init container has succeeded in the boot
// that began at boot: started since, exited 0.
func initsDone(inits []containers.Container, boot time.Time) bool {
	for _, c := range inits {
		if !initDone(c, boot) {
			return false
		}
	}
	return true
}

func initDone(c containers.Container, boot time.Time) bool {
	started, err := time.Parse(time.RFC3339Nano, c.Labels[LabelStartedAt])
	return err == nil && !started.Before(boot) && c.Labels[LabelExitCode] == "0"
}

// startContainer starts the container's task unless it runs; fresh says it
// was created moments ago and never started, so it has no task to look for.
func (d *Driver) startContainer(ctx context.Context, vmID string, info containers.Container, fresh bool) error {
	c, err := d.client.LoadContainer(ctx, info.ID)
	if err != nil {
		return err
	}
	if !fresh {
		if t, err := c.Task(ctx, nil); err == nil {
			st, err := t.Status(ctx)
			if err == nil && st.Status != containerd.Stopped {
				started, _ := time.Parse(time.RFC3339Nano, info.Labels[LabelStartedAt])
				d.watch(vmID, info.ID, t, started)
				return nil
			}
			if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("containerd: container %s: delete old task: %w", info.ID, err)
			}
		}
	}
	t, started, err := d.newTask(ctx, c, vmID, info.Labels[LabelContainer])
	if err != nil {
		return err
	}
	d.watch(vmID, info.ID, t, started)
	return nil
}

// newTask starts the container's process, its output appended to its log file.
func (d *Driver) newTask(ctx context.Context, c containerd.Container, vmID, name string) (containerd.Task, time.Time, error) {
	if info, err := c.Info(ctx); err == nil && info.Labels[LabelPullPolicy] == api.PullAlways {
		if err := d.refreshRootFS(ctx, c); err != nil {
			return nil, time.Time{}, fmt.Errorf("containerd: container %s: imagePullPolicy Always: %w", c.ID(), err)
		}
	}
	t, err := c.NewTask(ctx, cio.LogFile(d.LogPath(vmID, name)))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("containerd: container %s: new task: %w", c.ID(), err)
	}
	if err := t.Start(ctx); err != nil {
		_, _ = t.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		return nil, time.Time{}, fmt.Errorf("containerd: container %s: start: %w", c.ID(), err)
	}
	started := time.Now().UTC()
	if _, err := c.SetLabels(ctx, map[string]string{LabelStartedAt: started.Format(time.RFC3339Nano)}); err != nil {
		d.log.Warn("record start time", "container", c.ID(), "err", err)
	}
	return t, started, nil
}

// Stop sends SIGTERM to every container, SIGKILL to those still up after
// timeout, and removes their tasks. Containers, netns and IP stay.
func (d *Driver) Stop(ctx context.Context, id string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	ctx = d.nsCtx(ctx)
	l := d.vmLock(id)
	l.Lock()
	defer l.Unlock()
	cs, err := d.existingVMContainers(ctx, id)
	if err != nil {
		return err
	}
	if err := d.stopAll(ctx, id, cs, timeout); err != nil {
		return err
	}
	d.log.Info("VM powered off", "vm", id)
	return nil
}

// stopAll is Stop for the VM's containers cs, under the VM's lock.
func (d *Driver) stopAll(ctx context.Context, id string, cs []containers.Container, timeout time.Duration) error {
	d.unwatch(initKey(id))
	for _, info := range cs {
		if err := d.setLabels(ctx, info.ID, map[string]string{LabelDesired: desiredStopped}); err != nil {
			return fmt.Errorf("containerd: VM %s: %w", id, err)
		}
		d.unwatch(info.ID)
	}
	deadline := time.Now().Add(timeout)
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, info := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.stopContainer(ctx, info.ID, deadline)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopContainer kills the container's task (SIGTERM, then SIGKILL at deadline)
// and deletes it, recording the exit code.
func (d *Driver) stopContainer(ctx context.Context, cid string, deadline time.Time) error {
	c, err := d.client.LoadContainer(ctx, cid)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	t, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	st, err := t.Status(ctx)
	if err != nil {
		return err
	}
	if st.Status != containerd.Stopped {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		exitCh, err := t.Wait(wctx)
		if err != nil {
			return err
		}
		if err := t.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("containerd: container %s: SIGTERM: %w", cid, err)
		}
		timer := time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		select {
		case <-exitCh:
		case <-timer.C:
			if err := t.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("containerd: container %s: SIGKILL: %w", cid, err)
			}
			select {
			case <-exitCh:
			case <-time.After(DefaultStopTimeout):
				return fmt.Errorf("containerd: container %s: still running after SIGKILL: %w", cid, api.ErrUnavailable)
			}
		}
	}
	status, err := t.Delete(ctx)
	if err != nil && !errdefs.IsNotFound(err) {
		if status, err = t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("containerd: container %s: delete task: %w", cid, err)
		}
	}
	if status != nil {
		_, _ = c.SetLabels(ctx, map[string]string{LabelExitCode: strconv.Itoa(int(status.ExitCode()))})
	}
	return nil
}

// Delete removes the VM's tasks, containers, snapshots, netns, IP lease,
// cgroup and logs. An unknown VM is not an error.
func (d *Driver) Delete(ctx context.Context, id string) error {
	ctx = d.nsCtx(ctx)
	l := d.vmLock(id)
	l.Lock()
	defer l.Unlock()
	if err := d.remove(ctx, id); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.samples, id)
	d.mu.Unlock()
	d.log.Info("VM deleted", "vm", id)
	return nil
}

// remove is Delete without the lock.
func (d *Driver) remove(ctx context.Context, id string) error {
	d.mu.Lock()
	delete(d.fresh, id)
	d.mu.Unlock()
	cs, err := d.vmContainers(ctx, id)
	if err != nil {
		return err
	}
	if err := d.removeContainers(ctx, cs); err != nil {
		return err
	}
	var errs []error
	netns := d.NetNSPath(id)
	if n := d.network(); n != nil {
		if err := n.Teardown(ctx, id, netns); err != nil {
			errs = append(errs, err)
		}
		if err := n.DeleteNetNS(id); err != nil {
			errs = append(errs, err)
		}
	} else if err := network.DeleteNamedNetNS(filepath.Base(netns)); err != nil {
		errs = append(errs, err)
	}
	if err := removeVMCgroup(d.CgroupPath(id)); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(filepath.Join(d.cfg.LogDir, id)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeContainers kills and deletes the containers cs with their tasks and
// snapshots, under their VM's lock.
func (d *Driver) removeContainers(ctx context.Context, cs []containers.Container) error {
	var errs []error
	for _, info := range cs {
		d.unwatch(initKey(info.Labels[LabelVMID]))
		d.unwatch(info.ID)
		if err := d.stopContainer(ctx, info.ID, time.Now()); err != nil {
			errs = append(errs, err)
			continue
		}
		c, err := d.client.LoadContainer(ctx, info.ID)
		if err == nil {
			err = c.Delete(ctx, containerd.WithSnapshotCleanup)
		}
		if err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("containerd: delete container %s: %w", info.ID, err))
		}
	}
	return errors.Join(errs...)
}
