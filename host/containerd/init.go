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

// initKey is the watchers key of a VM's init sequence (no container ID
// has a slash).
func initKey(vmID string) string { return vmID + "/init" }

// runInits runs the VM's init containers in order, each to completion,
// on a goroutine of its own, then starts the VM's other containers, as
// the kubelet does at a pod's start. An init container that exits with a
// code other than 0 is run again after a backoff (counted in its
// restarts), unless the restart policy is Never: then the VM has failed
// (Phase Failed) and its containers never start. One already done in the
// boot that began at boot is not run again, one still running (adopted
// after an agent restart) is waited for. While the sequence runs the VM
// is powered on. Stop, Delete and Recreate end it (unwatch).
func (d *Driver) runInits(vmID string, boot time.Time) {
	d.goWatch(initKey(vmID), func() { d.changed(vmID) }, func(ctx context.Context) {
		backoff := d.cfg.Backoff
		retry := false
		for i := 0; ; {
			cs, err := d.vmContainers(ctx, vmID)
			if err != nil || len(cs) == 0 {
				if ctx.Err() == nil {
					d.log.Warn("init containers: list", "vm", vmID, "err", err)
				}
				return
			}
			inits, mains := splitInit(cs)
			if i >= len(inits) {
				d.startAfterInit(ctx, vmID, mains)
				return
			}
			info := inits[i]
			if info.Labels[LabelDesired] != desiredRunning {
				return
			}
			if !retry && initDone(info, boot) {
				i++
				continue
			}
			if !retry && initFailed(info, boot) && info.Labels[LabelRestartPolicy] == RestartNever {
				return // failed for good in this boot (found again by an adopting agent)
			}
			code, err := d.runInit(ctx, vmID, info, retry)
			if ctx.Err() != nil {
				return
			}
			if errors.As(err, new(lockRefused)) {
				// Its HA lock is not this host's to take alone: off it stays.
				_ = d.setLabels(ctx, info.ID, map[string]string{LabelMessage: "not started: " + err.Error()})
				d.log.Warn("init container not started: HA lock", "vm", vmID, "container", info.ID, "err", err)
				return
			}
			if err != nil {
				d.log.Warn("init container", "vm", vmID, "container", info.ID, "err", err)
				code = -1
			}
			d.changed(vmID)
			if code == 0 {
				i, retry, backoff = i+1, false, d.cfg.Backoff
				continue
			}
			if info.Labels[LabelRestartPolicy] == RestartNever {
				d.log.Warn("init container failed; the VM has failed (restartPolicy Never)", "vm", vmID, "container", info.ID, "exitCode", code)
				return
			}
			d.log.Info("init container failed, running it again", "vm", vmID, "container", info.ID, "exitCode", code, "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = nextBackoff(backoff, d.cfg.BackoffMax)
			retry = true
		}
	})
}

// runInit runs one init container's task to its exit and records the exit
// code; retry counts the run as a restart. A task already running (left by
// a previous agent) is waited for instead.
func (d *Driver) runInit(ctx context.Context, vmID string, info containers.Container, retry bool) (int, error) {
	l := d.vmLock(vmID)
	l.Lock()
	if ctx.Err() != nil {
		l.Unlock()
		return -1, ctx.Err()
	}
	c, err := d.client.LoadContainer(ctx, info.ID)
	if err != nil {
		l.Unlock()
		return -1, err
	}
	labels, err := c.Labels(ctx)
	if err != nil || labels[LabelDesired] != desiredRunning {
		l.Unlock()
		return -1, context.Canceled
	}
	var task containerd.Task
	if t, err := c.Task(ctx, nil); err == nil {
		if st, err := t.Status(ctx); err == nil && st.Status != containerd.Stopped && !retry {
			task = t
		} else {
			_, _ = t.Delete(ctx, containerd.WithProcessKill)
		}
	}
	if task == nil {
		if retry {
			restarts, _ := strconv.Atoi(labels[LabelRestarts])
			restarts++
			if err := d.setLabels(ctx, info.ID, map[string]string{LabelRestarts: strconv.Itoa(restarts)}); err != nil {
				l.Unlock()
				return -1, err
			}
			if d.cfg.OnRestart != nil {
				d.cfg.OnRestart(vmID, labels[LabelContainer], restarts, -1)
			}
		}
		if task, _, err = d.newTask(ctx, c, vmID, labels[LabelContainer]); err != nil {
			l.Unlock()
			return -1, err
		}
	}
	l.Unlock()
	d.changed(vmID)

	exitCh, err := task.Wait(ctx)
	if err != nil {
		return -1, fmt.Errorf("wait for init container %s: %w", info.ID, err)
	}
	var code int
	select {
	case st := <-exitCh:
		code = int(st.ExitCode())
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	if err := d.setLabels(ctx, info.ID, map[string]string{LabelExitCode: strconv.Itoa(code)}); err != nil {
		return code, err
	}
	return code, nil
}

// initFailed says whether the init container exited with a code other
// than 0 in the boot that began at boot.
func initFailed(c containers.Container, boot time.Time) bool {
	started, err := time.Parse(time.RFC3339Nano, c.Labels[LabelStartedAt])
	code := c.Labels[LabelExitCode]
	return err == nil && !started.Before(boot) && code != "" && code != "0"
}

// startAfterInit starts the VM's containers once its init containers are done.
func (d *Driver) startAfterInit(ctx context.Context, vmID string, mains []containers.Container) {
	l := d.vmLock(vmID)
	l.Lock()
	defer l.Unlock()
	if ctx.Err() != nil {
		return
	}
	for _, info := range mains {
		fresh, err := d.client.ContainerService().Get(ctx, info.ID)
		if err != nil || fresh.Labels[LabelDesired] != desiredRunning {
			return
		}
		if err := d.startContainer(ctx, vmID, fresh, false); err != nil {
			if ctx.Err() == nil {
				d.log.Warn("start container after init containers", "vm", vmID, "container", info.ID, "err", err)
			}
			return
		}
	}
	d.log.Info("init containers done, containers started", "vm", vmID)
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
