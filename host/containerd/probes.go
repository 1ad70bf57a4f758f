package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/host/probe"
	"github.com/podsphere/podsphere/host/runtime"
)

// startProbes begins probing one run of a container (its task, started
// at started) if it has probes, and returns the function that stops them
// and waits for their goroutines. The watcher calls it for every task it
// supervises and stops the probes when the task exits, so probes never
// outlive the run they judge; a failed liveness or startup probe kills the
// task, and the watcher then restarts it per the restart policy.
func (d *Driver) startProbes(ctx context.Context, vmID, cid string, task containerd.Task, started time.Time) func() {
	info, err := d.client.ContainerService().Get(ctx, cid)
	if err != nil || info.Labels[LabelProbes] == "" {
		return func() {}
	}
	var c api.Container
	if err := json.Unmarshal([]byte(info.Labels[LabelProbes]), &c); err != nil {
		d.log.Warn("unreadable probes label, not probing", "container", cid, "err", err)
		return func() {}
	}
	if started.IsZero() {
		started = time.Now()
	}
	name := info.Labels[LabelContainer]
	grace := DefaultStopTimeout
	if g, err := strconv.ParseInt(info.Labels[LabelGrace], 10, 64); err == nil {
		grace = runtime.VMSpec{TerminationGracePeriodSeconds: &g}.StopTimeout(DefaultStopTimeout)
	}
	policy := info.Labels[LabelRestartPolicy]
	pctx, cancel := context.WithCancel(ctx)
	r := probe.Start(pctx, c, started, probe.Config{
		Unit: d.cfg.ProbeUnit,
		Target: probe.Target{
			Container: c,
			IP:        info.Labels[LabelIP],
			Dial:      d.dialHost,
			Exec: func(ctx context.Context, cmd []string, out io.Writer) (int, error) {
				code, err := d.Exec(ctx, vmID, name, cmd, out, out)
				if errors.Is(err, api.ErrConflict) || errors.Is(err, api.ErrNotFound) || errdefs.IsNotFound(err) {
					err = fmt.Errorf("%w: %v", probe.ErrNotRunning, err)
				}
				return code, err
			},
		},
		OnChange: func(ch probe.Change) {
			d.changed(vmID)
			if ch.Kill {
				d.probeKill(pctx, vmID, cid, name, task, ch.Reason, policy, grace)
			}
		},
	})
	d.mu.Lock()
	d.probers[cid] = r
	d.mu.Unlock()
	return func() {
		cancel()
		r.Wait()
		d.mu.Lock()
		if d.probers[cid] == r {
			delete(d.probers, cid)
		}
		d.mu.Unlock()
	}
}

// prober is the probe runner of the container's current run, nil if none.
func (d *Driver) prober(cid string) *probe.Runner {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.probers[cid]
}

// probeKill stops a task whose liveness or startup probe failed: SIGTERM,
// SIGKILL after the VM's grace period, as the kubelet kills it. The reason
// goes into the container's LabelMessage (the VM's status message). It
// returns when the task exits, or ctx ends (the watcher saw the exit).
func (d *Driver) probeKill(ctx context.Context, vmID, cid, name string, task containerd.Task, reason, policy string, grace time.Duration) {
	next := "restarting it"
	if policy == RestartNever {
		next = "not restarted (restartPolicy Never)"
	}
	msg := fmt.Sprintf("container %s %s; killed at %s, %s", name, reason, time.Now().UTC().Format(time.RFC3339), next)
	d.log.Warn("probe failed, killing container", "vm", vmID, "container", cid, "reason", reason)
	if err := d.setLabels(ctx, cid, map[string]string{LabelMessage: msg}); err != nil && ctx.Err() == nil {
		d.log.Warn("record probe kill", "container", cid, "err", err)
	}
	exitCh, err := task.Wait(ctx)
	if err != nil {
		return
	}
	if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) && ctx.Err() == nil {
		d.log.Warn("SIGTERM after failed probe", "container", cid, "err", err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-exitCh:
	case <-ctx.Done():
	case <-timer.C:
		if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) && ctx.Err() == nil {
			d.log.Warn("SIGKILL after failed probe", "container", cid, "err", err)
		}
		select {
		case <-exitCh:
		case <-ctx.Done():
		}
	}
}

// dialHost dials from the host's network namespace (network.Config's
// HostNetNS), where VM addresses are routed: httpGet and tcpSocket probes
// reach a VM as its host does. A socket stays in the namespace it was made
// in, so only the dial runs there.
func (d *Driver) dialHost(ctx context.Context, proto, addr string) (net.Conn, error) {
	var dl net.Dialer
	ns := ""
	if n := d.network(); n != nil {
		ns = n.Config().HostNetNS
	}
	if ns == "" {
		return dl.DialContext(ctx, proto, addr)
	}
	var conn net.Conn
	err := network.InNetNS(ns, func() error {
		var err error
		conn, err = dl.DialContext(ctx, proto, addr)
		return err
	})
	return conn, err
}
