package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/podsphere/podsphere/api"
)

// NetNSDir is where iproute2 pins named network namespaces.
const NetNSDir = "/run/netns"

// NetNSPath is where the VM's pinned netns lives.
func (n *Network) NetNSPath(vmID string) string {
	return filepath.Join(NetNSDir, n.cfg.NetNSPrefix+vmID)
}

// CreateNetNS pins a fresh netns for the VM and returns its path. An
// existing one is kept when this host attached it (a VM restarted or
// adopted here); one this host never attached is another incarnation's and
// is replaced. That happens in the lab, whose hosts share /run/netns: a VM
// that HA restarts on another host finds the crashed host's copy under its
// name, and attaching into it would fail on the eth0 already there. Unpinning
// it harms nobody: a process still running in it keeps its namespace.
func (n *Network) CreateNetNS(vmID string) (string, error) {
	name := n.cfg.NetNSPrefix + vmID
	if isNetNS(filepath.Join(NetNSDir, name)) && n.IP(vmID) == "" {
		if err := DeleteNamedNetNS(name); err != nil {
			return "", fmt.Errorf("netns %s: replace one this host never attached: %w", name, err)
		}
	}
	return CreateNamedNetNS(name)
}

// Remove detaches the VM from the netns at netnsPath and unpins it, as
// removing the VM does. A netns pinned there that does not carry the address
// this host leased the VM is another host's incarnation of it: in the lab,
// whose hosts share /run/netns, a crashed host restarted cleans up the VM
// that HA restarted elsewhere meanwhile, and entering that netns would
// delete the other host's eth0 (the VM unreachable, found by ha.drill's
// ClusterIP stream). Then only this host's lease is released.
func (n *Network) Remove(ctx context.Context, vmID, netnsPath string) error {
	if n.pinnedElsewhere(vmID, netnsPath) {
		return n.Teardown(ctx, vmID, "")
	}
	err := n.Teardown(ctx, vmID, netnsPath)
	if derr := DeleteNamedNetNS(filepath.Base(netnsPath)); derr != nil && err == nil {
		err = derr
	}
	return err
}

// pinnedElsewhere says whether the netns at path is another host's copy of
// the VM's: this host leased it an address that the netns does not carry.
func (n *Network) pinnedElsewhere(vmID, path string) bool {
	ip := n.IP(vmID)
	if ip == "" || !isNetNS(path) {
		return false
	}
	has := false
	err := InNetNS(path, func() error {
		addrs, err := net.InterfaceAddrs()
		for _, a := range addrs {
			if p, ok := a.(*net.IPNet); ok && p.IP.String() == ip {
				has = true
			}
		}
		return err
	})
	return err == nil && !has
}

// DeleteNetNS unpins the VM's netns; the kernel frees it (and its veth end) once
// no process holds it. A missing netns is not an error.
func (n *Network) DeleteNetNS(vmID string) error {
	return DeleteNamedNetNS(n.cfg.NetNSPrefix + vmID)
}

// CreateNamedNetNS pins a fresh network namespace at /run/netns/NAME, with
// its loopback up, and returns the path; an existing one is kept. It does
// what `ip netns add NAME` does, without running ip: /run/netns is made a
// shared mount point (bind-mounted onto itself first if it is not one yet),
// so the pin propagates to other mount namespaces and unpinning it there
// too frees the netns; then a thread of ours unshares its network
// namespace and the namespace is bind-mounted onto an empty file there.
// Admins see the result with `ip netns`, as before.
func CreateNamedNetNS(name string) (string, error) {
	if err := validNetNSName(name); err != nil {
		return "", err
	}
	path := filepath.Join(NetNSDir, name)
	if isNetNS(path) {
		return path, nil
	}
	if err := shareNetNSDir(); err != nil {
		return "", fmt.Errorf("netns %s: %w", name, err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0)
	if errors.Is(err, os.ErrExist) {
		// A file that is no netns: left by a crash between create and
		// mount. Names are ours alone, so nobody is about to mount it.
		if err = os.Remove(path); err == nil {
			f, err = os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0)
		}
	}
	if err != nil {
		return "", fmt.Errorf("netns %s: %w", name, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: when the goroutine ends, Go ends the thread and
		// with it the thread's hold on the new namespace; the mount keeps it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind mount: %w", err)
			return
		}
		// lo up, so the loopback plugin has nothing left to fix and a VM
		// without a network still has 127.0.0.1.
		if err := loopbackUp(); err != nil {
			_ = unix.Unmount(path, unix.MNT_DETACH)
			errc <- err
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("netns %s: %w", name, err)
	}
	return path, nil
}

// DeleteNamedNetNS unpins a netns as `ip netns delete` does (lazy unmount,
// then unlink); the kernel frees it once nothing else holds it. A missing
// netns is not an error.
func DeleteNamedNetNS(name string) error {
	if err := validNetNSName(name); err != nil {
		return err
	}
	path := filepath.Join(NetNSDir, name)
	// EINVAL: not a mount point, a stale file.
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("netns %s: unmount: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	return nil
}

func validNetNSName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/ ") {
		return fmt.Errorf("netns name %q: %w", name, api.ErrInvalid)
	}
	return nil
}

// netnsDirMu keeps two of our goroutines from both finding /run/netns no
// mount point and both bind-mounting it onto itself.
var netnsDirMu sync.Mutex

// shareNetNSDir makes /run/netns a shared mount point, the way iproute2's
// netns_add does before every add.
func shareNetNSDir() error {
	netnsDirMu.Lock()
	defer netnsDirMu.Unlock()
	if err := os.MkdirAll(NetNSDir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", NetNSDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if !errors.Is(err, unix.EINVAL) {
		if err != nil {
			return fmt.Errorf("mount --make-rshared %s: %w", NetNSDir, err)
		}
		return nil
	}
	// Not a mount point yet: make it one, recursively so that namespaces
	// already pinned there stay visible, then share it.
	if err := unix.Mount(NetNSDir, NetNSDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount --rbind %s %s: %w", NetNSDir, NetNSDir, err)
	}
	if err := unix.Mount("", NetNSDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount --make-rshared %s: %w", NetNSDir, err)
	}
	return nil
}

// loopbackUp sets lo up in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
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
