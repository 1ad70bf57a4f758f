package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/containerd/imagebuild"
	"github.com/podsphere/podsphere/host/runtime"
	"github.com/podsphere/podsphere/internal/testenv"
)

// notices records the driver's runtime.Notifier calls.
type notices struct {
	mu  sync.Mutex
	ids []string
}

func (n *notices) add(id string) { n.mu.Lock(); n.ids = append(n.ids, id); n.mu.Unlock() }
func (n *notices) count(id string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, x := range n.ids {
		if x == id {
			c++
		}
	}
	return c
}

func status(t *testing.T, d *Driver, id string) runtime.VMState {
	t.Helper()
	st, err := d.Status(context.Background(), id)
	if err != nil {
		t.Fatalf("status of %s: %v", id, err)
	}
	return st
}

func startVM(t *testing.T, d *Driver, s runtime.VMSpec) {
	t.Helper()
	ctx := context.Background()
	if err := d.Create(ctx, s); err != nil {
		t.Fatalf("Create %s: %v", s.ID, err)
	}
	if err := d.Start(ctx, s.ID); err != nil {
		t.Fatalf("Start %s: %v", s.ID, err)
	}
}

// TestProbes: (a) a busybox httpd VM with a readiness httpGet probe (sent
// from the host's network namespace to the VM's address) becomes ready,
// goes not ready when the page it serves disappears (404) and ready again
// when it is back, each change announced to the agent at once; (b) a
// failing liveness exec probe restarts the container, with a message.
func TestProbes(t *testing.T) {
	testenv.RequireContainers(t)
	sock := testenv.StartContainerd(t)
	name := fmt.Sprintf("psp%04x", rand.IntN(0xffff))
	h := newTestHost(t, sock, name, "10.244.1.0/24", busyboxLibrary(t))
	d := h.drv
	var seen notices
	d.SetNotify(seen.add)

	t.Run("readiness httpGet", func(t *testing.T) {
		web := vmSpec("web", "httpd", "-f", "-p", "80", "-h", "/www")
		web.Containers[0].Ports = []api.Port{{Name: "http", ContainerPort: 80}}
		web.Containers[0].ReadinessProbe = &api.Probe{
			HTTPGet:             &api.HTTPGetAction{Path: "/index.html", Port: api.Str("http")},
			InitialDelaySeconds: 1, PeriodSeconds: 1, FailureThreshold: 1,
		}
		startVM(t, d, web)
		// Not ready before the first probe, 1 s after the start (checked only
		// while that second has not passed: a loaded machine may be slower).
		testenv.WaitFor(t, "web started", 10*time.Second, func() bool {
			c := status(t, d, "web").Containers[0]
			return c.State == StateRunning && c.Started && !c.StartedAt.IsZero()
		})
		if st := status(t, d, "web"); time.Since(st.Containers[0].StartedAt) < 900*time.Millisecond && (st.Ready || st.Containers[0].Ready) {
			t.Fatalf("ready before the first probe (initial delay 1 s): %+v", st)
		}
		testenv.WaitFor(t, "web ready", 10*time.Second, func() bool { return status(t, d, "web").Ready })
		st := status(t, d, "web")
		if !st.Containers[0].Ready || !st.Containers[0].Started || st.ReadySince.Before(st.Containers[0].StartedAt) {
			t.Fatalf("ready status %+v", st)
		}
		before := seen.count("web")
		if _, errs, code := exec1(t, d, "web", "", "rm", "/www/index.html"); code != 0 {
			t.Fatalf("rm: %d %s", code, errs)
		}
		removed := time.Now()
		testenv.WaitFor(t, "web not ready after a 404", 10*time.Second, func() bool { return !status(t, d, "web").Ready })
		if took := time.Since(removed); took > 4*time.Second {
			t.Errorf("readiness took %v to drop (period 1 s, threshold 1)", took)
		}
		if seen.count("web") <= before {
			t.Error("no notice when readiness dropped")
		}
		st = status(t, d, "web")
		if st.PowerState != api.PoweredOn || st.Containers[0].Restarts != 0 || !st.ReadySince.IsZero() {
			t.Fatalf("not-ready VM %+v (a readiness failure restarts nothing)", st)
		}
		if _, errs, code := exec1(t, d, "web", "", "sh", "-c", "echo back > /www/index.html"); code != 0 {
			t.Fatalf("restore page: %d %s", code, errs)
		}
		testenv.WaitFor(t, "web ready again", 10*time.Second, func() bool { return status(t, d, "web").Ready })
	})

	t.Run("liveness exec restarts", func(t *testing.T) {
		grace := int64(0) // 2 s (the floor): sleep as PID 1 ignores SIGTERM
		live := vmSpec("live", "sh", "-c", "touch /tmp/healthy; exec sleep 3600")
		live.TerminationGracePeriodSeconds = &grace
		live.Containers[0].LivenessProbe = &api.Probe{
			Exec:          &api.ExecAction{Command: []string{"test", "-f", "/tmp/healthy"}},
			PeriodSeconds: 1, FailureThreshold: 2,
		}
		startVM(t, d, live)
		testenv.WaitFor(t, "live running and ready", 10*time.Second, func() bool { return status(t, d, "live").Ready })
		time.Sleep(2500 * time.Millisecond) // a few passing probes: no restart
		before := status(t, d, "live")
		if before.Restarts != 0 {
			t.Fatalf("restarted while healthy: %+v", before)
		}
		if _, errs, code := exec1(t, d, "live", "", "rm", "/tmp/healthy"); code != 0 {
			t.Fatalf("rm: %d %s", code, errs)
		}
		testenv.WaitFor(t, "a restart after the liveness probe failed", 20*time.Second, func() bool {
			return status(t, d, "live").Restarts >= 1
		})
		// Running again in a new run: the restart count can be seen before
		// the new task is (the old one is being reaped), so wait for both.
		testenv.WaitFor(t, "live running again", 10*time.Second, func() bool {
			c := status(t, d, "live").Containers[0]
			return c.State == StateRunning && c.StartedAt.After(before.Containers[0].StartedAt)
		})
		st := status(t, d, "live")
		if st.Containers[0].Restarts != 1 || !st.Containers[0].StartedAt.After(before.Containers[0].StartedAt) {
			t.Fatalf("after the restart: %+v (before %+v)", st, before)
		}
		if !strings.Contains(st.Message, "liveness probe failed") || !strings.Contains(st.Message, "test -f /tmp/healthy") {
			t.Fatalf("message %q does not say the liveness probe failed and why", st.Message)
		}
		// The new run touched the file again: it stays up.
		time.Sleep(3 * time.Second)
		if st := status(t, d, "live"); st.Restarts != 1 || st.Containers[0].State != StateRunning {
			t.Fatalf("restarted again: %+v", st)
		}
	})

	// A restarted agent (a new driver) probes the VMs it adopts.
	t.Run("adopted VM is probed", func(t *testing.T) {
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		d2, err := New(h.cfg)
		if err != nil {
			t.Fatal(err)
		}
		h.drv, d = d2, d2
		d.SetNotify(seen.add)
		testenv.WaitFor(t, "adopted web ready", 10*time.Second, func() bool { return status(t, d, "web").Ready })
		if _, errs, code := exec1(t, d, "web", "", "rm", "/www/index.html"); code != 0 {
			t.Fatalf("rm: %d %s", code, errs)
		}
		testenv.WaitFor(t, "adopted web not ready", 10*time.Second, func() bool { return !status(t, d, "web").Ready })
	})

	t.Run("deleted VM leaves no prober", func(t *testing.T) {
		ctx := context.Background()
		for _, id := range []string{"web", "live"} {
			if err := d.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		testenv.WaitFor(t, "probers gone", 5*time.Second, func() bool {
			d.mu.Lock()
			defer d.mu.Unlock()
			return len(d.probers) == 0
		})
	})
}

// TestInitContainers: init containers run in order, each to completion,
// before the container starts; a failing one is run again (restart policy
// Always) or fails the VM for good (Never); a run-to-completion VM ends
// with its Phase.
func TestInitContainers(t *testing.T) {
	testenv.RequireContainers(t)
	sock := testenv.StartContainerd(t)
	name := fmt.Sprintf("psi%04x", rand.IntN(0xffff))
	h := newTestHost(t, sock, name, "10.244.1.0/24", busyboxLibrary(t))
	d := h.drv
	ctx := context.Background()

	t.Run("in order", func(t *testing.T) {
		s := vmSpec("ordered", "sleep", "3600")
		s.InitContainers = []api.Container{
			{Name: "first", Image: "busybox", Command: []string{"sh", "-c", "sleep 1"}},
			// Runs again after failing once: its root filesystem keeps /ran across runs.
			{Name: "second", Image: "busybox", Command: []string{"sh", "-c", "test -f /ran && exit 0; touch /ran; exit 1"}},
		}
		startVM(t, d, s)
		st := status(t, d, "ordered")
		if st.PowerState != api.PoweredOn || st.Containers[2].State != StateCreated {
			t.Fatalf("while the init containers run: %+v", st)
		}
		testenv.WaitFor(t, "main running", 20*time.Second, func() bool {
			c := status(t, d, "ordered").Containers[2]
			return c.State == StateRunning && !c.StartedAt.IsZero()
		})
		st = status(t, d, "ordered")
		first, second, main := st.Containers[0], st.Containers[1], st.Containers[2]
		if !first.Init || !second.Init || main.Init || first.Name != "first" || main.Name != "main" {
			t.Fatalf("statuses %+v", st.Containers)
		}
		if first.State != StateExited || first.ExitCode != 0 || second.State != StateExited || second.ExitCode != 0 || !first.Ready || !second.Ready {
			t.Fatalf("init containers did not complete: %+v", st.Containers)
		}
		if second.Restarts != 1 || first.Restarts != 0 {
			t.Fatalf("restarts first %d second %d, want 0 and 1", first.Restarts, second.Restarts)
		}
		// first slept 1 s before second started; second ran (twice) before main.
		if second.StartedAt.Sub(first.StartedAt) < time.Second || !main.StartedAt.After(second.StartedAt) {
			t.Fatalf("out of order: first %v, second %v, main %v", first.StartedAt, second.StartedAt, main.StartedAt)
		}
		testenv.WaitFor(t, "ready", 5*time.Second, func() bool { return status(t, d, "ordered").Ready })
		var logs bytes.Buffer
		if err := d.Logs(ctx, "ordered", "", false, &logs); err != nil {
			t.Fatal(err)
		}
		if _, _, code := exec1(t, d, "ordered", "", "true"); code != 0 {
			t.Fatal("exec without a container name does not reach the main container")
		}
		// A power cycle runs the init containers again.
		if err := d.Stop(ctx, "ordered", time.Second); err != nil {
			t.Fatal(err)
		}
		if err := d.Start(ctx, "ordered"); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, "main running after power-on", 20*time.Second, func() bool {
			st := status(t, d, "ordered")
			return st.Containers[2].State == StateRunning && st.Containers[0].StartedAt.After(first.StartedAt)
		})
	})

	t.Run("failing init, Never", func(t *testing.T) {
		s := vmSpec("doomed", "sleep", "3600")
		s.RestartPolicy = RestartNever
		s.InitContainers = []api.Container{{Name: "setup", Image: "busybox", Command: []string{"sh", "-c", "exit 4"}}}
		startVM(t, d, s)
		testenv.WaitFor(t, "phase Failed", 15*time.Second, func() bool { return status(t, d, "doomed").Phase == api.PhaseFailed })
		st := status(t, d, "doomed")
		if st.PowerState != api.PoweredOff || st.Containers[0].ExitCode != 4 || st.Containers[1].State != StateCreated || st.Ready {
			t.Fatalf("failed VM %+v", st)
		}
		// Starting it again (vm.power -reset of a completed VM) is a new run.
		if err := d.Start(ctx, "doomed"); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, "a new run that fails again", 15*time.Second, func() bool {
			again := status(t, d, "doomed")
			return again.Phase == api.PhaseFailed && again.Containers[0].StartedAt.After(st.Containers[0].StartedAt)
		})
	})

	t.Run("run to completion", func(t *testing.T) {
		s := vmSpec("job", "sh", "-c", "exit 0")
		s.RestartPolicy = RestartNever
		s.InitContainers = []api.Container{{Name: "setup", Image: "busybox", Command: []string{"true"}}}
		startVM(t, d, s)
		testenv.WaitFor(t, "phase Succeeded", 15*time.Second, func() bool { return status(t, d, "job").Phase == api.PhaseSucceeded })
		fail := vmSpec("failjob", "sh", "-c", "exit 2")
		fail.RestartPolicy = RestartNever
		startVM(t, d, fail)
		testenv.WaitFor(t, "phase Failed", 15*time.Second, func() bool { return status(t, d, "failjob").Phase == api.PhaseFailed })
		if st := status(t, d, "failjob"); st.PowerState != api.PoweredOff || st.Restarts != 0 {
			t.Fatalf("failed job %+v", st)
		}
	})
}

// TestContainerFields: runAsUser, readOnlyRootFilesystem, hostname and the
// image pull policies on real containers.
func TestContainerFields(t *testing.T) {
	testenv.RequireContainers(t)
	sock := testenv.StartContainerd(t)
	name := fmt.Sprintf("psf%04x", rand.IntN(0xffff))
	lib := busyboxLibrary(t)
	h := newTestHost(t, sock, name, "10.244.1.0/24", lib)
	d := h.drv
	ctx := context.Background()

	t.Run("pull policy Never without the image", func(t *testing.T) {
		s := vmSpec("never", "sleep", "3600")
		s.Containers[0].ImagePullPolicy = api.PullNever
		if err := d.Create(ctx, s); !errors.Is(err, api.ErrNotFound) || !strings.Contains(err.Error(), "Never") {
			t.Fatalf("Create with Never and no image on the host: %v", err)
		}
	})

	t.Run("user, read-only root, hostname", func(t *testing.T) {
		uid := int64(1000)
		s := vmSpec("locked", "sleep", "3600")
		s.Hostname = "custom-host"
		s.Containers[0].RunAsUser = &uid
		s.Containers[0].ReadOnlyRootFilesystem = true
		startVM(t, d, s)
		if out, _, _ := exec1(t, d, "locked", "", "id", "-u"); strings.TrimSpace(out) != "1000" {
			t.Errorf("id -u = %q, want 1000", out)
		}
		if _, _, code := exec1(t, d, "locked", "", "touch", "/x"); code == 0 {
			t.Error("wrote to a read-only root filesystem")
		}
		if out, _, _ := exec1(t, d, "locked", "", "hostname"); strings.TrimSpace(out) != "custom-host" {
			t.Errorf("hostname = %q", out)
		}
	})

	t.Run("pull policy Never with the image, Always picks up a new one", func(t *testing.T) {
		s := vmSpec("never", "sleep", "3600")
		s.Containers[0].ImagePullPolicy = api.PullNever
		startVM(t, d, s) // busybox is on the host now

		web := vmSpec("always", "httpd", "-f", "-p", "80", "-h", "/www")
		web.Containers[0].ImagePullPolicy = api.PullAlways
		startVM(t, d, web)
		if out, _, _ := exec1(t, d, "always", "", "cat", "/www/index.html"); !strings.Contains(out, "podsphere busybox") {
			t.Fatalf("page %q", out)
		}
		// The library item is replaced; the next start fetches it again.
		var buf bytes.Buffer
		if err := imagebuild.Build(&buf, imagebuild.Options{Name: busyboxRef, IndexHTML: "version two\n"}); err != nil {
			t.Fatal(err)
		}
		lib[busyboxRef] = buf.Bytes()
		if err := d.Stop(ctx, "always", time.Second); err != nil {
			t.Fatal(err)
		}
		if err := d.Start(ctx, "always"); err != nil {
			t.Fatal(err)
		}
		if out, _, _ := exec1(t, d, "always", "", "cat", "/www/index.html"); strings.TrimSpace(out) != "version two" {
			t.Fatalf("after a restart with Always the page is %q", out)
		}
	})
}
