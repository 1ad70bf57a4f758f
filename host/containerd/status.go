package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	v1 "github.com/containerd/cgroups/stats/v1"
	v2 "github.com/containerd/cgroups/v2/stats"
	containerd "github.com/containerd/containerd"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/typeurl/v2"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/runtime"
)

// Container states in api.ContainerStatus.
const (
	StateRunning = "running"
	StateExited  = "exited"
	StateCreated = "created"
)

// List returns every VM in the driver's namespace. It costs two containerd
// calls however many VMs there are: one container list and one task list.
func (d *Driver) List(ctx context.Context) ([]runtime.VMState, error) {
	ctx = d.nsCtx(ctx)
	infos, err := d.client.ContainerService().List(ctx, fmt.Sprintf("labels.%q", LabelVMID))
	if err != nil {
		return nil, fmt.Errorf("containerd: list: %w", err)
	}
	if len(infos) == 0 {
		return []runtime.VMState{}, nil
	}
	procs, err := d.tasks(ctx)
	if err != nil {
		return nil, err
	}
	byVM := map[string][]containers.Container{}
	var order []string
	for _, info := range infos {
		id := info.Labels[LabelVMID]
		if _, ok := byVM[id]; !ok {
			order = append(order, id)
		}
		byVM[id] = append(byVM[id], info)
	}
	states := make([]runtime.VMState, 0, len(order))
	for _, id := range order {
		cs := byVM[id]
		sortByIndex(cs)
		states = append(states, d.vmState(id, cs, procs))
	}
	return states, nil
}

// tasks returns the state of every task in the namespace, by container ID:
// one call, where asking each container for its task would take three.
func (d *Driver) tasks(ctx context.Context) (map[string]*task.Process, error) {
	resp, err := d.client.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("containerd: list tasks: %w", errdefs.FromGRPC(err))
	}
	procs := make(map[string]*task.Process, len(resp.Tasks))
	for _, p := range resp.Tasks {
		procs[p.ID] = p
	}
	return procs, nil
}

// Status reports one VM: one container list and one task lookup per container.
func (d *Driver) Status(ctx context.Context, id string) (runtime.VMState, error) {
	ctx = d.nsCtx(ctx)
	cs, err := d.existingVMContainers(ctx, id)
	if err != nil {
		return runtime.VMState{}, err
	}
	procs := make(map[string]*task.Process, len(cs))
	for _, info := range cs {
		resp, err := d.client.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: info.ID})
		if err == nil && resp.Process != nil {
			procs[info.ID] = resp.Process
		}
	}
	return d.vmState(id, cs, procs), nil
}

// vmState builds a VM's state from its containers (in index order: init
// containers first) and the namespace's tasks by container ID; a
// container without a task is judged by its labels. Started and Ready come
// from the probes of the container's current run; Phase from the exits of
// a run-to-completion VM that nothing supervises any more.
func (d *Driver) vmState(id string, cs []containers.Container, procs map[string]*task.Process) runtime.VMState {
	first := cs[0].Labels
	st := runtime.VMState{ID: id, Path: first[LabelVMPath], IP: first[LabelIP], PowerState: api.PoweredOff, SpecHash: first[LabelSpecHash],
		ShapeHash: first[LabelShapeHash]}
	if g, err := strconv.ParseInt(first[LabelGrace], 10, 64); err == nil {
		st.Grace = &g
	}
	on := d.supervised(initKey(id))
	var msgs []string
	for _, info := range cs {
		cst := containerStatus(info, procs[info.ID])
		if cst.Init {
			cst.Ready = cst.State == StateExited && cst.ExitCode == 0
		} else if cst.State == StateRunning {
			if r := d.prober(info.ID); r != nil {
				cst.Started, cst.Ready = r.Started(), r.Ready()
			} else {
				// Without probes a running container is started and ready;
				// with probes it is neither until its probes say so.
				cst.Started = info.Labels[LabelProbes] == ""
				cst.Ready = cst.Started
			}
		}
		st.Containers = append(st.Containers, cst)
		st.Restarts += cst.Restarts
		if cst.State == StateRunning || d.supervised(info.ID) {
			on = true
		}
		if m := info.Labels[LabelMessage]; m != "" {
			msgs = append(msgs, m)
		}
	}
	st.Message = strings.Join(msgs, "; ")
	if first[LabelDesired] != desiredRunning {
		return st
	}
	boot, _ := time.Parse(time.RFC3339Nano, first[LabelBootTime])
	if on {
		st.PowerState = api.PoweredOn
		st.BootTime = boot
		st.Ready, st.ReadySince = d.readiness(cs, st.Containers)
		return st
	}
	st.Phase = phase(first[LabelRestartPolicy], st.Containers, boot)
	return st
}

// readiness says whether every container but the init ones is ready, and
// since when: the latest of their ready times (the probes' verdict, or
// the start of a container without a readiness or startup probe).
func (d *Driver) readiness(cs []containers.Container, sts []api.ContainerStatus) (bool, time.Time) {
	var since time.Time
	n := 0
	for i, cst := range sts {
		if cst.Init {
			continue
		}
		n++
		if !cst.Ready {
			return false, time.Time{}
		}
		at := cst.StartedAt
		if r := d.prober(cs[i].ID); r != nil {
			at = r.ReadySince()
		}
		if at.After(since) {
			since = at
		}
	}
	return n > 0, since
}

// phase is the Phase of a VM that is to run but that nothing runs or
// supervises any more, as the kubelet's getPhase: under restart policy
// Never or OnFailure, Succeeded once every container exited 0 in this boot;
// under Never, Failed once they all exited and one failed, or once an init
// container failed. "" otherwise.
func phase(policy string, sts []api.ContainerStatus, boot time.Time) string {
	if policy != RestartNever && policy != RestartOnFailure {
		return ""
	}
	thisBoot := func(cst api.ContainerStatus) bool { return !cst.StartedAt.IsZero() && !cst.StartedAt.Before(boot) }
	exited, failed, mains := 0, 0, 0
	for _, cst := range sts {
		if cst.Init {
			if policy == RestartNever && cst.State == StateExited && thisBoot(cst) && cst.ExitCode != 0 {
				return api.PhaseFailed
			}
			continue
		}
		mains++
		if cst.State == StateExited && thisBoot(cst) {
			exited++
			if cst.ExitCode != 0 {
				failed++
			}
		}
	}
	switch {
	case mains == 0 || exited < mains:
		return ""
	case failed == 0:
		return api.PhaseSucceeded
	case policy == RestartNever:
		return api.PhaseFailed
	}
	return ""
}

// containerStatus is a container's state from its labels and its task (nil: none).
func containerStatus(info containers.Container, p *task.Process) api.ContainerStatus {
	cst := api.ContainerStatus{Name: info.Labels[LabelContainer], State: StateCreated, Init: info.Labels[LabelInit] == "true"}
	cst.Restarts, _ = strconv.Atoi(info.Labels[LabelRestarts])
	cst.StartedAt, _ = time.Parse(time.RFC3339Nano, info.Labels[LabelStartedAt])
	if info.Labels[LabelStartedAt] != "" {
		cst.State = StateExited
		cst.ExitCode, _ = strconv.Atoi(info.Labels[LabelExitCode])
	}
	if p == nil {
		return cst
	}
	switch p.Status {
	case task.Status_RUNNING, task.Status_PAUSED, task.Status_PAUSING:
		cst.State = StateRunning
	case task.Status_CREATED:
		cst.State = StateCreated
	case task.Status_STOPPED:
		cst.State = StateExited
		cst.ExitCode = int(p.ExitStatus)
	}
	return cst
}

// resolve finds the container of a VM by name ("" = the VM's first).
func (d *Driver) resolve(ctx context.Context, id, container string) (containers.Container, error) {
	cs, err := d.existingVMContainers(ctx, id)
	if err != nil {
		return containers.Container{}, err
	}
	if container == "" {
		// The VM's first container that is not an init container.
		for _, c := range cs {
			if c.Labels[LabelInit] != "true" {
				return c, nil
			}
		}
		return cs[0], nil
	}
	for _, c := range cs {
		if c.Labels[LabelContainer] == container {
			return c, nil
		}
	}
	return containers.Container{}, fmt.Errorf("containerd: VM %s has no container %q: %w", id, container, api.ErrNotFound)
}

// logPoll is how often a followed log is checked for new output.
const logPoll = 200 * time.Millisecond

// Logs copies the container's log to w; with follow it keeps copying new
// output until ctx ends.
func (d *Driver) Logs(ctx context.Context, id, container string, follow bool, w io.Writer) error {
	info, err := d.resolve(d.nsCtx(ctx), id, container)
	if err != nil {
		return err
	}
	path := d.LogPath(id, info.Labels[LabelContainer])
	var f *os.File
	for f == nil {
		f, err = os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			if !follow {
				return nil // never started: nothing logged yet
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(logPoll):
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("containerd: logs of %s: %w", info.ID, err)
		}
	}
	defer f.Close()
	for {
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(logPoll):
		}
	}
}

var execSeq atomic.Uint64

// Exec runs cmd in the container (its namespaces, env and cwd) and returns its exit code.
func (d *Driver) Exec(ctx context.Context, id, container string, cmd []string, stdout, stderr io.Writer) (int, error) {
	if len(cmd) == 0 {
		return -1, fmt.Errorf("containerd: exec needs a command: %w", api.ErrInvalid)
	}
	ctx = d.nsCtx(ctx)
	info, err := d.resolve(ctx, id, container)
	if err != nil {
		return -1, err
	}
	c, err := d.client.LoadContainer(ctx, info.ID)
	if err != nil {
		return -1, err
	}
	t, err := c.Task(ctx, nil)
	if err != nil {
		return -1, fmt.Errorf("containerd: exec in %s: not running: %w", info.ID, api.ErrConflict)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return -1, err
	}
	pspec := *spec.Process
	pspec.Args = cmd
	pspec.Terminal = false
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	execID := fmt.Sprintf("exec-%d-%d", time.Now().UnixNano(), execSeq.Add(1))
	p, err := t.Exec(ctx, execID, &pspec, cio.NewCreator(cio.WithStreams(nil, stdout, stderr), cio.WithFIFODir(d.cfg.StateDir+"/fifo")))
	if err != nil {
		return -1, fmt.Errorf("containerd: exec in %s: %w", info.ID, err)
	}
	defer p.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
	exitCh, err := p.Wait(ctx)
	if err != nil {
		return -1, err
	}
	if err := p.Start(ctx); err != nil {
		return -1, fmt.Errorf("containerd: exec in %s: %w", info.ID, err)
	}
	select {
	case st := <-exitCh:
		// Let the output drain; a daemon the command left behind may hold it open.
		done := make(chan struct{})
		go func() { p.IO().Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		code, _, err := st.Result()
		return int(code), err
	case <-ctx.Done():
		_ = p.Kill(context.WithoutCancel(ctx), 9)
		return -1, ctx.Err()
	}
}

type cpuSample struct {
	at      time.Time
	usageNs uint64
}

// Metrics sums the cgroup metrics of the VM's tasks: CPU as MHz (usage over
// the time since the last sample, times MHzPerCore) and memory as working-set MB.
func (d *Driver) Metrics(ctx context.Context, id string) (runtime.Metrics, error) {
	ctx = d.nsCtx(ctx)
	usage, mem, err := d.sample(ctx, id)
	if err != nil {
		return runtime.Metrics{}, err
	}
	now := time.Now()
	d.mu.Lock()
	prev, ok := d.samples[id]
	d.mu.Unlock()
	if !ok || usage < prev.usageNs {
		// First look: take a second sample shortly after.
		prev = cpuSample{at: now, usageNs: usage}
		time.Sleep(250 * time.Millisecond)
		if usage, mem, err = d.sample(ctx, id); err != nil {
			return runtime.Metrics{}, err
		}
		now = time.Now()
	}
	d.mu.Lock()
	d.samples[id] = cpuSample{at: now, usageNs: usage}
	d.mu.Unlock()
	m := runtime.Metrics{MemUsageMB: int64(mem >> 20)}
	if wall := now.Sub(prev.at); wall > 0 {
		m.CPUUsageMHz = int64(float64(usage-prev.usageNs) / float64(wall.Nanoseconds()) * float64(d.cfg.MHzPerCore))
	}
	return m, nil
}

// sample returns total CPU ns and working-set bytes over the VM's running tasks.
func (d *Driver) sample(ctx context.Context, id string) (cpuNs, memBytes uint64, err error) {
	cs, err := d.existingVMContainers(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	for _, info := range cs {
		c, err := d.client.LoadContainer(ctx, info.ID)
		if err != nil {
			continue
		}
		t, err := c.Task(ctx, nil)
		if err != nil {
			continue
		}
		m, err := t.Metrics(ctx)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return 0, 0, fmt.Errorf("containerd: metrics of %s: %w", info.ID, err)
		}
		v, err := typeurl.UnmarshalAny(m.Data)
		if err != nil {
			return 0, 0, fmt.Errorf("containerd: metrics of %s: %w", info.ID, err)
		}
		switch s := v.(type) {
		case *v1.Metrics:
			if s.CPU != nil && s.CPU.Usage != nil {
				cpuNs += s.CPU.Usage.Total
			}
			if s.Memory != nil && s.Memory.Usage != nil {
				memBytes += sub(s.Memory.Usage.Usage, s.Memory.TotalInactiveFile)
			}
		case *v2.Metrics:
			if s.CPU != nil {
				cpuNs += s.CPU.UsageUsec * 1000
			}
			if s.Memory != nil {
				memBytes += sub(s.Memory.Usage, s.Memory.InactiveFile)
			}
		default:
			return 0, 0, fmt.Errorf("containerd: metrics of %s: unknown type %s", info.ID, strings.TrimPrefix(fmt.Sprintf("%T", v), "*"))
		}
	}
	return cpuNs, memBytes, nil
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
