// Package daemon runs a private containerd: one that keeps everything it
// has (root, state, sockets, opt) under one directory, with CRI off, so it
// neither clashes with a system containerd nor leaves anything behind once
// that directory is unmounted and removed. The lab starts one for a lab
// without a system containerd; data-plane tests start one each.
package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// MaxSocketPath leaves room under the 108-byte sun_path limit for ".ttrpc".
const MaxSocketPath = 100

// StopGrace is how long Stop waits after SIGTERM before it kills containerd.
const StopGrace = 10 * time.Second

// Socket is the gRPC socket of a private containerd whose root is root.
func Socket(root string) string { return filepath.Join(root, "containerd.sock") }

// ConfigFile is the config.toml of a private containerd whose root is root.
func ConfigFile(root string) string { return filepath.Join(root, "config.toml") }

// WriteConfig writes, at configPath, a containerd config that keeps
// everything under root and serves gRPC on socket: CRI off (no CNI or ports
// of its own), no /opt/containerd. It creates root if need be.
func WriteConfig(configPath, root, socket string) error {
	if len(socket) > MaxSocketPath {
		return fmt.Errorf("containerd socket path %s is longer than %d bytes: use a shorter --dir", socket, MaxSocketPath)
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return err
	}
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
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, root+"/root", root+"/state", socket, socket+".ttrpc", root+"/debug.sock", root+"/opt")
	return os.WriteFile(configPath, []byte(cfg), 0o644)
}

// Daemon is a private containerd run as a child of this process.
type Daemon struct {
	Root   string // everything it keeps
	Socket string // its gRPC socket
	Log    string // its output

	cmd  *exec.Cmd
	logf *os.File
	done chan struct{} // closed once cmd has been waited for
}

// Start writes the config of a private containerd under root (which must
// exist, be short enough for the socket path, and be owned by the caller),
// and starts it in its own process group with its output in
// root/containerd.log. It does not wait for it to answer: see WaitReady.
// The caller must Stop it.
func Start(root string) (*Daemon, error) {
	d := &Daemon{Root: root, Socket: Socket(root), Log: filepath.Join(root, "containerd.log")}
	if err := WriteConfig(ConfigFile(root), root, d.Socket); err != nil {
		return nil, err
	}
	logf, err := os.Create(d.Log)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("containerd", "--config", ConfigFile(root))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	d.cmd, d.logf, d.done = cmd, logf, make(chan struct{})
	go func() { _ = cmd.Wait(); close(d.done) }()
	return d, nil
}

// WaitReady waits up to timeout for the socket to appear.
func (d *Daemon) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(d.Socket); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("containerd did not come up")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop sends SIGTERM, kills containerd if it has not exited after
// StopGrace, closes its log and detaches every mount it left under Root.
// It leaves Root itself to the caller.
func (d *Daemon) Stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(StopGrace):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	d.logf.Close()
	UnmountUnder(d.Root)
}

// LogTail is the last n lines of the log, or "" when it cannot be read.
func (d *Daemon) LogTail(n int) string {
	b, err := os.ReadFile(d.Log)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// UnmountUnder detaches every mount at or below dir (a private containerd's
// overlay snapshots and shm mounts), deepest first.
func UnmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			mounts = append(mounts, fields[4])
		}
	}
	f.Close()
	sort.SliceStable(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	for _, m := range mounts {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}
