package containerd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/containers"
)

// watcher supervises one container's task: when it exits, the driver restarts
// it per the VM's restart policy with exponential backoff.
type watcher struct {
	cancel context.CancelFunc
}

// shouldRestart applies the restart policy to an exit code (-1: unknown, the
// task vanished, e.g. containerd lost it).
func shouldRestart(policy string, code int) bool {
	switch policy {
	case RestartNever:
		return false
	case RestartOnFailure:
		return code != 0
	default:
		return true
	}
}

// nextBackoff doubles the delay up to max.
func nextBackoff(cur, max time.Duration) time.Duration {
	if cur*2 > max {
		return max
	}
	return cur * 2
}

// adopt supervises the containers a previous agent left: running ones are
// only watched (never restarted), exited ones are handled by their policy.
func (d *Driver) adopt(ctx context.Context) error {
	infos, err := d.client.ContainerService().List(ctx, fmt.Sprintf("labels.%q", LabelVMID))
	if err != nil {
		return fmt.Errorf("containerd: adopt: %w", err)
	}
	byVM := map[string][]containers.Container{}
	for _, info := range infos {
		if info.Labels[LabelDesired] == desiredRunning {
			id := info.Labels[LabelVMID]
			byVM[id] = append(byVM[id], info)
		}
	}
	for vmID, cs := range byVM {
		sortByIndex(cs)
		inits, mains := splitInit(cs)
		if len(inits) > 0 {
			boot, _ := time.Parse(time.RFC3339Nano, cs[0].Labels[LabelBootTime])
			if !initsDone(inits, boot) {
				// Booting: the init sequence goes on where it was and
				// starts the containers when done.
				d.runInits(vmID, boot)
				continue
			}
		}
		d.adoptContainers(ctx, mains)
	}
	return nil
}

// adoptContainers supervises containers of one VM that a previous agent started.
func (d *Driver) adoptContainers(ctx context.Context, infos []containers.Container) {
	for _, info := range infos {
		var task containerd.Task
		if c, err := d.client.LoadContainer(ctx, info.ID); err == nil {
			if t, err := c.Task(ctx, nil); err == nil {
				task = t
			}
		}
		started, _ := time.Parse(time.RFC3339Nano, info.Labels[LabelStartedAt])
		d.watch(info.Labels[LabelVMID], info.ID, task, started)
	}
}

// supervised says whether the driver is watching the container (running, or
// waiting out a restart backoff).
func (d *Driver) supervised(cid string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.watchers[cid]
	return ok
}

func (d *Driver) unwatch(cid string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w, ok := d.watchers[cid]; ok {
		w.cancel()
		delete(d.watchers, cid)
	}
}

// goWatch runs body in a goroutine as the watcher named key, unless one
// by that name already runs; Stop, Delete and Recreate end it through its
// context (unwatch). ended, when set, runs after body returns.
func (d *Driver) goWatch(key string, ended func(), body func(ctx context.Context)) {
	d.mu.Lock()
	if _, ok := d.watchers[key]; ok {
		d.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(d.ctx)
	w := &watcher{cancel: cancel}
	d.watchers[key] = w
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		defer func() {
			d.mu.Lock()
			if d.watchers[key] == w {
				delete(d.watchers, key)
			}
			d.mu.Unlock()
			cancel()
			if ended != nil {
				ended()
			}
		}()
		body(ctx)
	}()
}

// watch starts supervising a container unless it already is. task may be nil
// when the container has no task (it is then treated as exited).
func (d *Driver) watch(vmID, cid string, task containerd.Task, started time.Time) {
	d.goWatch(cid, nil, func(ctx context.Context) {
		backoff := d.cfg.Backoff
		for {
			code := -1
			if task != nil {
				stopProbes := d.startProbes(ctx, vmID, cid, task, started)
				exitCh, err := task.Wait(ctx)
				if err != nil {
					stopProbes()
					if ctx.Err() != nil {
						return
					}
					d.log.Warn("wait for container", "container", cid, "err", err)
				} else {
					select {
					case st := <-exitCh:
						stopProbes()
						if ctx.Err() != nil {
							return
						}
						code = int(st.ExitCode())
					case <-ctx.Done():
						stopProbes()
						return
					}
				}
				d.changed(vmID)
			}
			if !started.IsZero() && time.Since(started) >= d.cfg.BackoffReset {
				backoff = d.cfg.Backoff
			}
			if !d.afterExit(ctx, vmID, cid, code) {
				return
			}
			d.log.Info("container exited, restarting", "vm", vmID, "container", cid, "exitCode", code, "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = nextBackoff(backoff, d.cfg.BackoffMax)
			var err error
			task, started, err = d.restart(ctx, vmID, cid, code)
			d.changed(vmID)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if errors.As(err, new(lockRefused)) {
					// Off it stays, saying why (LabelMessage): the agent
					// powers it on again if vcenter still places it here.
					d.log.Warn("container not restarted: HA lock", "container", cid, "err", err)
					return
				}
				d.log.Warn("restart container", "container", cid, "err", err)
				task = nil // counts as another failed start, after a longer backoff
			}
		}
	})
}

// afterExit records the exit and says whether the container should restart.
func (d *Driver) afterExit(ctx context.Context, vmID, cid string, code int) bool {
	l := d.vmLock(vmID)
	l.Lock()
	defer l.Unlock()
	if ctx.Err() != nil {
		return false
	}
	info, err := d.client.ContainerService().Get(ctx, cid)
	if err != nil || info.Labels[LabelDesired] != desiredRunning {
		return false
	}
	if err := d.setLabels(ctx, cid, map[string]string{LabelExitCode: strconv.Itoa(code)}); err != nil {
		d.log.Warn("record exit code", "container", cid, "err", err)
	}
	return shouldRestart(info.Labels[LabelRestartPolicy], code)
}

// restart replaces the container's exited task by a new one and counts it.
func (d *Driver) restart(ctx context.Context, vmID, cid string, code int) (containerd.Task, time.Time, error) {
	l := d.vmLock(vmID)
	l.Lock()
	defer l.Unlock()
	if ctx.Err() != nil {
		return nil, time.Time{}, ctx.Err()
	}
	c, err := d.client.LoadContainer(ctx, cid)
	if err != nil {
		return nil, time.Time{}, err
	}
	labels, err := c.Labels(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	if labels[LabelDesired] != desiredRunning {
		return nil, time.Time{}, context.Canceled
	}
	if old, err := c.Task(ctx, nil); err == nil {
		_, _ = old.Delete(ctx, containerd.WithProcessKill)
	}
	// A VM whose HA lock this host lost (lapsed, released by the isolation
	// response, taken by another host) stays down: it may run elsewhere.
	if err := d.lockForStart(ctx, c, labels); err != nil {
		_ = d.setLabels(ctx, cid, map[string]string{LabelMessage: "not restarted: " + err.Error()})
		return nil, time.Time{}, err
	}
	restarts, _ := strconv.Atoi(labels[LabelRestarts])
	restarts++
	// Count the attempt even if it fails: the count is what the admin sees.
	if _, err := c.SetLabels(ctx, map[string]string{LabelRestarts: strconv.Itoa(restarts)}); err != nil {
		return nil, time.Time{}, err
	}
	t, started, err := d.newTask(ctx, c, vmID, labels[LabelContainer])
	if d.cfg.OnRestart != nil {
		d.cfg.OnRestart(vmID, labels[LabelContainer], restarts, code)
	}
	return t, started, err
}
