package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/podsphere/podsphere/internal/hads"
)

const testHost = "/dc1/host/c1/esx-01"

func TestCheck(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	held := lockView{Host: testHost, State: stateHeld, Renewed: t0}
	f := &fence{host: testHost, lease: 3 * time.Second}
	if kill, why := f.check(held, true, t0.Add(time.Second)); kill {
		t.Fatalf("fresh lock: killed (%s)", why)
	}
	// A failed read changes nothing: the lease runs on.
	if kill, _ := f.check(lockView{}, false, t0.Add(2900*time.Millisecond)); kill {
		t.Fatal("killed before the lease ran out")
	}
	if kill, why := f.check(lockView{}, false, t0.Add(3*time.Second)); !kill || !strings.Contains(why, "beyond its 3s lease") {
		t.Fatalf("lease ran out: kill=%v why=%q", kill, why)
	}
	// An older renewal (a stale copy read late) does not move the lease back.
	f = &fence{host: testHost, lease: 3 * time.Second}
	f.observe(held)
	f.observe(lockView{Host: testHost, State: stateHeld, Renewed: t0.Add(-time.Minute)})
	if kill, _ := f.check(lockView{}, false, t0.Add(time.Second)); kill {
		t.Fatal("an older renewal killed the VM")
	}
	for _, tc := range []struct {
		l    lockView
		want string
	}{
		{lockView{Host: "/dc1/host/c1/esx-02", State: stateHeld, Renewed: t0}, "held by host /dc1/host/c1/esx-02"},
		{lockView{Host: testHost, State: stateReleased, Renewed: t0, Reason: "isolation response powerOff"}, "released (isolation response powerOff)"},
		{lockView{Host: testHost, State: "", Renewed: t0}, "in state"},
	} {
		f := &fence{host: testHost, lease: 3 * time.Second}
		f.observe(held)
		// Lost for good: a later renewal by this host does not bring it back.
		f.observe(tc.l)
		if kill, why := f.check(held, true, t0); !kill || !strings.Contains(why, tc.want) {
			t.Errorf("%+v: kill=%v why=%q, want %q", tc.l, kill, why, tc.want)
		}
	}
	if kill, why := (&fence{host: testHost, lease: time.Second}).check(lockView{}, false, t0); !kill || !strings.Contains(why, "never renewed") {
		t.Fatalf("no lock ever: kill=%v why=%q", kill, why)
	}
}

// The binary, run without root and outside a PID namespace: it then kills
// its child's process group instead of the whole namespace.

var fenceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fence")
	if err != nil {
		panic(err)
	}
	fenceBin = filepath.Join(dir, "podsphere-fence")
	cmd := exec.Command("go", "build", "-o", fenceBin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testUID = "4f1b2c3d"

type fenced struct {
	t    *testing.T
	root string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (f *fenced) renew(state, host string) {
	f.t.Helper()
	if err := hads.WriteLock(f.root, hads.Lock{UID: testUID, VM: "/dc1/vm/web", Host: host, State: state, Renewed: time.Now(), Reason: "isolation response powerOff"}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fenced) running() bool {
	select {
	case <-f.done:
		return false
	default:
		return true
	}
}

// exit waits (bounded) for the fence to end and returns its exit status.
func (f *fenced) exit() int {
	f.t.Helper()
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		f.t.Fatal("the fence did not exit within 10s")
	}
	var ee *exec.ExitError
	if errors.As(f.err, &ee) {
		return ee.ExitCode()
	}
	if f.err != nil {
		f.t.Fatal(f.err)
	}
	return 0
}

// startFence runs the fence over a fresh lock held by this host.
func startFence(t *testing.T, lease time.Duration, argv ...string) *fenced {
	t.Helper()
	f := &fenced{t: t, root: t.TempDir(), done: make(chan struct{})}
	if err := hads.CheckRoot(f.root); err != nil {
		t.Fatal(err)
	}
	f.renew(hads.Held, testHost)
	args := append([]string{"-lock", hads.LockFile(f.root, testUID), "-host", testHost, "-lease", lease.String(), "-interval", "20ms", "--"}, argv...)
	f.cmd = exec.Command(fenceBin, args...)
	f.cmd.Stderr = os.Stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.err = f.cmd.Wait(); close(f.done) }()
	t.Cleanup(func() {
		if f.running() {
			_ = f.cmd.Process.Kill()
			<-f.done
		}
	})
	return f
}

func TestFenceKeepsRenewedVMRunningThenKillsOnLapse(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "grandchild")
	lease := 300 * time.Millisecond
	// The child leaves a grandchild behind: the fence must kill it too.
	f := startFence(t, lease, "sh", "-c", "sleep 60 & echo $! > "+pidFile+"; wait")
	// Renewed for over three leases: a fence that missed renewals would have killed it.
	for i := 0; i < 20; i++ {
		time.Sleep(lease / 6)
		f.renew(hads.Held, testHost)
		if !f.running() {
			t.Fatalf("the fence stopped a VM whose lock was renewed (renewal %d)", i)
		}
	}
	grandchild := readPid(t, pidFile)
	// Renewals stop: the lease runs out and the tree dies.
	if code := f.exit(); code != exitFenced {
		t.Fatalf("exit status %d, want %d", code, exitFenced)
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(grandchild, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d outlived the fence", grandchild)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readPid(t *testing.T, file string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(file)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", file)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFenceKillsWhenLockReleasedOrTaken(t *testing.T) {
	for _, tc := range []struct{ state, host string }{
		{hads.Released, testHost},
		{hads.Held, "/dc1/host/c1/esx-02"},
	} {
		f := startFence(t, time.Minute, "sleep", "60")
		f.renew(tc.state, tc.host)
		if code := f.exit(); code != exitFenced {
			t.Errorf("lock %s by %s: exit status %d, want %d", tc.state, tc.host, code, exitFenced)
		}
	}
}

func TestFenceExitStatusAndSignals(t *testing.T) {
	if code := startFence(t, time.Minute, "sh", "-c", "exit 3").exit(); code != 3 {
		t.Errorf("child exit 3: fence exit %d", code)
	}
	if code := startFence(t, time.Minute, "sh", "-c", "kill -TERM $$").exit(); code != 128+int(syscall.SIGTERM) {
		t.Errorf("child killed by SIGTERM: fence exit %d, want %d", code, 128+int(syscall.SIGTERM))
	}
	// SIGTERM to the fence reaches the child, whose handler decides the exit.
	ready := filepath.Join(t.TempDir(), "ready")
	f := startFence(t, time.Minute, "sh", "-c", "trap 'exit 7' TERM; touch "+ready+"; while :; do sleep 0.05; done")
	deadline := time.Now().Add(5 * time.Second)
	for _, err := os.Stat(ready); err != nil; _, err = os.Stat(ready) {
		if time.Now().After(deadline) {
			t.Fatal("child never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := f.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := f.exit(); code != 7 {
		t.Errorf("SIGTERM forwarded: fence exit %d, want the child's 7", code)
	}
	if code := startFence(t, time.Minute, "no-such-entrypoint").exit(); code != exitNotFound {
		t.Errorf("missing entrypoint: exit %d, want %d", code, exitNotFound)
	}
}

func TestFenceRefusesToStartWithoutLiveLock(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "started")
	f := startFence(t, time.Minute, "touch", marker)
	f.exit()
	// A lock released before the start: the entrypoint never runs.
	root := t.TempDir()
	if err := hads.CheckRoot(root); err != nil {
		t.Fatal(err)
	}
	marker2 := filepath.Join(t.TempDir(), "started")
	for _, l := range []*hads.Lock{
		nil, // no lock file at all
		{UID: testUID, Host: testHost, State: hads.Released, Renewed: time.Now()},
		{UID: testUID, Host: testHost, State: hads.Held, Renewed: time.Now().Add(-2 * time.Minute)},
	} {
		if l != nil {
			if err := hads.WriteLock(root, *l); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(fenceBin, "-lock", hads.LockFile(root, testUID), "-host", testHost, "-lease", "1m", "--", "touch", marker2)
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitFenced {
			t.Errorf("lock %+v: %v, want exit %d", l, err, exitFenced)
		}
		if _, err := os.Stat(marker2); err == nil {
			t.Fatalf("lock %+v: the entrypoint ran", l)
		}
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("with a live lock the entrypoint did not run: %v", err)
	}
}
