package network

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/podsphere/podsphere/api"
)

// NetNSDir is where iproute2 pins named network namespaces.
const NetNSDir = "/run/netns"

// NetNSPath is where the VM's pinned netns lives.
func (n *Network) NetNSPath(vmID string) string {
	return filepath.Join(NetNSDir, n.cfg.NetNSPrefix+vmID)
}

// CreateNetNS pins a fresh netns for the VM and returns its path; an existing one is kept.
func (n *Network) CreateNetNS(vmID string) (string, error) {
	return CreateNamedNetNS(n.cfg.NetNSPrefix + vmID)
}

// DeleteNetNS unpins the VM's netns; the kernel frees it (and its veth end) once
// no process holds it. A missing netns is not an error.
func (n *Network) DeleteNetNS(vmID string) error {
	return DeleteNamedNetNS(n.cfg.NetNSPrefix + vmID)
}

// CreateNamedNetNS runs `ip netns add`: iproute2 gets the shared-mount dance
// of /run/netns right, and admins inspect the result with `ip netns exec`.
func CreateNamedNetNS(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/ ") {
		return "", fmt.Errorf("netns name %q: %w", name, api.ErrInvalid)
	}
	path := filepath.Join(NetNSDir, name)
	if isNetNS(path) {
		return path, nil
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return "", fmt.Errorf("ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	// Bring lo up so the loopback plugin has nothing left to fix and tests can use 127.0.0.1.
	_ = exec.Command("ip", "-n", name, "link", "set", "lo", "up").Run()
	return path, nil
}

// DeleteNamedNetNS runs `ip netns delete`; a missing netns is not an error.
func DeleteNamedNetNS(name string) error {
	path := filepath.Join(NetNSDir, name)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
		if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("ip netns delete %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// isNetNS says whether path is a mounted network namespace (not a stale file).
func isNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// InNetNS runs fn on an OS thread switched into the netns at path ("" = the
// current one). Processes fn starts inherit that netns. The thread is thrown
// away if it cannot be switched back.
func InNetNS(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: %w", path, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		} // else: the goroutine ends locked and Go retires the thread
		errc <- ferr
	}()
	return <-errc
}
