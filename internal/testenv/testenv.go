// Package testenv holds what root-only data-plane tests share: the check
// that the machine can run real containers, and a private containerd.
package testenv

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/podsphere/podsphere/host/containerd/daemon"
)

// RequiredEnv, set to 1 (as .ci/run does), turns every "cannot run here"
// skip of a root-only end-to-end test into a failure: in CI a missing
// package or privilege must never pass as a skipped test.
const RequiredEnv = "PODSPHERE_E2E_REQUIRED"

// Unavailable skips the test with the reason, or fails it when RequiredEnv is set.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequiredEnv) == "1" {
		t.Fatalf("end-to-end test cannot run ("+RequiredEnv+"=1): "+format, args...)
	}
	t.Skipf(format, args...)
}

// RequireDataPlane skips unless the test can run real containers and enter
// their network namespaces: what RequireContainers asks, plus nsenter.
func RequireDataPlane(t testing.TB) {
	t.Helper()
	RequireContainers(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		Unavailable(t, "skipping data-plane test: nsenter not installed (apt-get install util-linux)")
	}
}

// RequireContainers skips unless the test can run real containers: root, a
// containerd binary to start privately, runc, the CNI plugins, busybox.
func RequireContainers(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "skipping data-plane test: needs root (starts its own containerd, creates netns, cgroups, veths)")
	}
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ip", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			Unavailable(t, "skipping data-plane test: %s not installed (apt-get install containerd runc iproute2 iptables)", bin)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		Unavailable(t, "skipping data-plane test: /usr/lib/cni/bridge missing (apt-get install containernetworking-plugins)")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		Unavailable(t, "skipping data-plane test: /bin/busybox missing (apt-get install busybox-static)")
	}
}

// StartContainerd runs a private containerd (CRI disabled) under a temp dir
// and returns its socket; cleanup stops it and removes everything it left,
// and shows the tail of its log if the test failed.
func StartContainerd(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "psctrd") // short: the socket path must fit in 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Start(dir)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			if tail := d.LogTail(30); tail != "" {
				t.Logf("containerd log tail:\n%s", tail)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := d.WaitReady(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	return d.Socket
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
