package containerd

import (
	"context"
	"fmt"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/runtime"
)

var _ runtime.Resizer = (*Driver)(nil)

// Resize changes the VM's size and allocations in place, as vSphere's hot
// add and a reservation change do: the VM cgroup's limits are rewritten,
// each running container's task is updated (runc update) and each
// container's stored OCI spec gets the new limits for its next start, then
// the containers record the new spec hash. Nothing stops: the boot time,
// address and restart count stay. spec must differ from the recorded one
// only in size and allocations (same runtime.ShapeHash).
func (d *Driver) Resize(ctx context.Context, spec runtime.VMSpec) error {
	ctx = d.nsCtx(ctx)
	l := d.vmLock(spec.ID)
	l.Lock()
	defer l.Unlock()
	cs, err := d.existingVMContainers(ctx, spec.ID)
	if err != nil {
		return err
	}
	shape := runtime.ShapeHash(spec)
	if got := cs[0].Labels[LabelShapeHash]; got != shape {
		return fmt.Errorf("containerd: resize VM %s: more than its size changed (shape %q, want %q): %w", spec.ID, shape, got, api.ErrInvalid)
	}
	limits := LimitsFor(spec, d.cfg.MHzPerCore)
	hash := runtime.SpecHash(spec)
	containersToo := func() error {
		for _, info := range cs {
			if err := d.resizeContainer(ctx, info.ID, limits, hash); err != nil {
				return fmt.Errorf("containerd: resize VM %s container %s: %w", spec.ID, info.Labels[LabelContainer], err)
			}
		}
		return nil
	}
	// cgroup v1 refuses a CPU quota above the parent's: growing goes VM
	// cgroup first, shrinking containers first. Try the first order, and the
	// other when the kernel refuses it.
	if err := setupVMCgroup(d.CgroupPath(spec.ID), limits); err != nil {
		if err := containersToo(); err != nil {
			return err
		}
		if err := setupVMCgroup(d.CgroupPath(spec.ID), limits); err != nil {
			return fmt.Errorf("containerd: resize VM %s: %w", spec.ID, err)
		}
	} else if err := containersToo(); err != nil {
		return err
	}
	d.log.Info("VM resized in place", "vm", spec.ID, "path", spec.Path, "cpu", spec.NumCPU, "memoryMB", spec.MemoryMB, "spec", hash)
	return nil
}

// resizeContainer gives one container the VM's new limits: its running task
// at once, its stored spec for later starts, and the new hash label last, so
// a failure part way leaves the old hash and the agent tries again.
func (d *Driver) resizeContainer(ctx context.Context, cid string, l Limits, hash string) error {
	c, err := d.client.LoadContainer(ctx, cid)
	if err != nil {
		return err
	}
	if t, err := c.Task(ctx, nil); err == nil {
		if st, err := t.Status(ctx); err == nil && st.Status == containerd.Running {
			if err := t.Update(ctx, containerd.WithResources(taskResources(l))); err != nil {
				return fmt.Errorf("update running task: %w", err)
			}
		}
	}
	s, err := c.Spec(ctx)
	if err != nil {
		return err
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	s.Linux.Resources = specResources(s.Linux.Resources, l)
	return c.Update(ctx, func(_ context.Context, _ *containerd.Client, ci *containers.Container) error {
		a, err := typeurl.MarshalAny(s)
		if err != nil {
			return err
		}
		ci.Spec = a
		ci.Labels[LabelSpecHash] = hash
		return nil
	})
}

// taskResources are the limits for runc update: -1 lifts a limit the new
// allocation no longer sets, where nil would leave the old one in place.
func taskResources(l Limits) *specs.LinuxResources {
	quota, mem := int64(-1), int64(-1)
	if l.CPUQuota > 0 {
		quota = l.CPUQuota
	}
	if l.MemLimit > 0 {
		mem = l.MemLimit
	}
	period, shares := uint64(cfsPeriod), uint64(1024)
	if l.CPUShares > 0 {
		shares = l.CPUShares
	}
	return &specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Quota: &quota, Period: &period, Shares: &shares},
		Memory: &specs.LinuxMemory{Limit: &mem},
	}
}

// specResources is the stored spec's resources with the limits specOpts
// would have written for l (and none where l sets none).
func specResources(r *specs.LinuxResources, l Limits) *specs.LinuxResources {
	if r == nil {
		r = &specs.LinuxResources{}
	}
	if r.CPU == nil {
		r.CPU = &specs.LinuxCPU{}
	}
	r.CPU.Quota, r.CPU.Period, r.CPU.Shares = nil, nil, nil
	if l.CPUQuota > 0 {
		q, p := l.CPUQuota, uint64(cfsPeriod)
		r.CPU.Quota, r.CPU.Period = &q, &p
	}
	if l.CPUShares > 0 {
		sh := l.CPUShares
		r.CPU.Shares = &sh
	}
	if r.Memory == nil {
		r.Memory = &specs.LinuxMemory{}
	}
	r.Memory.Limit = nil
	if l.MemLimit > 0 {
		m := l.MemLimit
		r.Memory.Limit = &m
	}
	return r
}
