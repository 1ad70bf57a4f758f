package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/podsphere/podsphere/host/network"
)

// startDaemon starts argv detached (own session, stdin /dev/null, output
// appended to logPath) with its network namespace switched to netns ("" =
// root). It does not use `ip netns exec`: that also unshares the mount
// namespace, and a host agent must pin its VMs' netns in /run/netns where
// containerd (in the root mount namespace) can see them.
func startDaemon(name, netns string, argv []string, logPath string) (Process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return Process{}, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return Process{}, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	nsPath := ""
	if netns != "" {
		nsPath = filepath.Join(network.NetNSDir, netns)
	}
	if err := network.InNetNS(nsPath, cmd.Start); err != nil {
		return Process{}, fmt.Errorf("start %s: %w", name, err)
	}
	p := Process{Name: name, PID: cmd.Process.Pid, NetNS: netns, Args: argv, Log: logPath}
	p.Start, _ = procStart(p.PID)
	// Reap it if it dies while we still run; after we exit, init does.
	go func() { _ = cmd.Wait() }()
	return p, nil
}

// stopProcess sends SIGTERM, waits up to grace, then SIGKILLs. A process
// that is gone (or whose PID now belongs to another program) is left alone.
func stopProcess(p Process, grace time.Duration) error {
	if !p.Alive() {
		return nil
	}
	_ = syscall.Kill(p.PID, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !p.Alive() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(p.PID, syscall.SIGKILL)
	for i := 0; i < 100; i++ {
		if !p.Alive() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s (pid %d) survives SIGKILL", p.Name, p.PID)
}

// pidsIn lists the processes whose network namespace is the one pinned at nsPath.
func pidsIn(nsPath string) []int {
	var st syscall.Stat_t
	if err := syscall.Stat(nsPath, &st); err != nil {
		return nil
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if link, err := os.Readlink("/proc/" + e.Name() + "/ns/net"); err == nil && link == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killPIDs stops stray processes found by scanning (no record of theirs): SIGTERM, then SIGKILL.
func killPIDs(pids []int, grace time.Duration) {
	var ps []Process
	for _, pid := range pids {
		if start, ok := procStart(pid); ok {
			ps = append(ps, Process{Name: "pid " + strconv.Itoa(pid), PID: pid, Start: start})
		}
	}
	for _, p := range ps {
		_ = syscall.Kill(p.PID, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for _, p := range ps {
		for p.Alive() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if p.Alive() {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
}

// cmdline is /proc/PID/cmdline split at NULs.
func cmdline(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// shimsOf lists containerd shims serving the containerd at address (a socket path).
func shimsOf(address string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		args := cmdline(pid)
		if len(args) == 0 || !strings.Contains(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-address" && args[i+1] == address {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
