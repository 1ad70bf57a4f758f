// Package testenv holds what root-only data-plane tests share: the check
// that the machine can run real containers, and a private containerd.
package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireDataPlane skips unless the test can run real containers: root, a
// containerd binary to start privately, runc, the CNI plugins, busybox.
func RequireDataPlane(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping data-plane test: needs root (starts its own containerd, creates netns, cgroups, veths)")
	}
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ip", "iptables", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipping data-plane test: %s not installed (apt-get install containerd runc iproute2 iptables util-linux)", bin)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("skipping data-plane test: /usr/lib/cni/bridge missing (apt-get install containernetworking-plugins)")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("skipping data-plane test: /bin/busybox missing (apt-get install busybox-static)")
	}
}

// StartContainerd runs a private containerd (CRI disabled) under a temp dir
// and returns its socket; cleanup stops it and removes everything it left.
func StartContainerd(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "psctrd") // short: the socket path must fit in 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "containerd.sock")
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = %q
`, dir+"/root", dir+"/state", sock, sock+".ttrpc", dir+"/debug.sock")
	if err := os.WriteFile(dir+"/config.toml", []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(dir + "/containerd.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", dir+"/config.toml")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		UnmountUnder(dir)
		if t.Failed() {
			if b, err := os.ReadFile(dir + "/containerd.log"); err == nil {
				lines := strings.Split(string(b), "\n")
				t.Logf("containerd log tail:\n%s", strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("containerd did not come up")
	return ""
}

// UnmountUnder lazily unmounts every mount below dir, deepest first.
func UnmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	f.Close()
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
}

// WaitFor polls cond every 200 ms until it holds, failing the test after timeout.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
