package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/errdefs"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/network"
)

// Stopping and removing a VM's containers.

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
		if err := n.Remove(ctx, id, netns); err != nil {
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
	if err := os.RemoveAll(d.dnsDir(id)); err != nil {
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
