package containerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/network"
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
	info, err := c.Info(ctx)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("containerd: container %s: %w", c.ID(), err)
	}
	if err := d.lockForStart(ctx, c, info.Labels); err != nil {
		return nil, time.Time{}, err
	}
	if info.Labels[LabelPullPolicy] == api.PullAlways {
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
