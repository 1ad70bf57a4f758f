// Command podsphere-fence is the fence in a VM's own process tree: the
// containerd driver makes it PID 1 of every container of a VM that holds an
// HA lock (internal/hads), and it starts the container's real entrypoint as
// its child. Every Interval it reads the VM's lock file; once the lock has
// not been renewed for Lease, or names another host, or says released, it
// SIGKILLs every process of the container and exits 137. If the fence itself
// dies, PID 1 is gone and the kernel kills the container with it: a VM
// cannot outlive its lock, whatever else on its host (agent, HA process,
// containerd) is dead.
//
// It uses the standard library only and is built static (CGO_ENABLED=0), so
// it runs in any image.
//
//	podsphere-fence -lock FILE -host HOST [-lease 3s] [-interval 100ms] -- CMD [ARG...]
//
// Exit status: the child's, 128+signal when the child was killed by a
// signal, 137 when the fence killed it (or refused to start it), 127 when
// the child cannot be started, 2 for bad arguments.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// Exit statuses of the fence's own making.
const (
	exitFenced   = 137 // 128+SIGKILL: what a killed container reports anyway
	exitNotFound = 127
	exitUsage    = 2
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("podsphere-fence", flag.ContinueOnError)
	lockFile := fs.String("lock", "", "the VM's lock file (hads format)")
	host := fs.String("host", "", "inventory path of this host: the lock must name it")
	lease := fs.Duration("lease", 3*time.Second, "how long a lock stays valid after its last renewal (ha.Timings.LockLease)")
	interval := fs.Duration("interval", 100*time.Millisecond, "how often the lock is read")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	argv := fs.Args()
	if *lockFile == "" || *host == "" || *lease <= 0 || *interval <= 0 || len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "podsphere-fence: usage: podsphere-fence -lock FILE -host HOST [-lease D] [-interval D] -- CMD [ARG...]")
		return exitUsage
	}
	f := &fence{file: *lockFile, host: *host, lease: *lease}

	// The lock must be ours and live before the VM starts at all: a restart
	// the host decided alone must not undo a lapse or a release.
	l, err := readLock(f.file)
	if err != nil {
		fmt.Fprintf(os.Stderr, "podsphere-fence: %v: not starting %s\n", err, argv[0])
		return exitFenced
	}
	if kill, why := f.check(l, true, time.Now()); kill {
		fmt.Fprintf(os.Stderr, "podsphere-fence: %s: not starting %s\n", why, argv[0])
		return exitFenced
	}

	// Signals are caught before the child starts, so none is lost between.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	child, err := start(argv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "podsphere-fence: %v\n", err)
		return exitNotFound
	}

	reads := make(chan readResult, 1)
	go readLoop(f.file, *interval, reads)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		select {
		case s := <-sigs:
			switch s {
			case syscall.SIGCHLD:
				if st, done := reap(child.Pid); done {
					return st
				}
			case syscall.SIGURG, syscall.SIGPIPE:
				// SIGURG is the Go runtime's own preemption signal.
			default:
				_ = child.Signal(s)
			}
		case r := <-reads:
			if r.err == nil {
				f.observe(r.lock)
			}
		case now := <-tick.C:
			if kill, why := f.check(lockView{}, false, now); kill {
				fmt.Fprintf(os.Stderr, "podsphere-fence: %s: killing the VM's processes\n", why)
				killAll(child.Pid)
				for {
					if _, done := reap(child.Pid); done {
						return exitFenced
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			// A SIGCHLD may have been merged with another: reap anyway.
			if st, done := reap(child.Pid); done {
				return st
			}
		}
	}
}

// start runs the real entrypoint in a process group of its own, so a fence
// that is not PID 1 (the tests) can kill its whole tree.
func start(argv []string) (*os.Process, error) {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	return os.StartProcess(path, argv, &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
}

// killAll SIGKILLs every process of the container: as PID 1 of its PID
// namespace, kill(-1) reaches every other process in it; otherwise the
// child's process group.
func killAll(child int) {
	if os.Getpid() == 1 {
		_ = syscall.Kill(-1, syscall.SIGKILL)
		return
	}
	_ = syscall.Kill(-child, syscall.SIGKILL)
	_ = syscall.Kill(child, syscall.SIGKILL)
}

// reap collects every exited process (PID 1 inherits the container's
// orphans) and, once the child is among them, returns its exit status.
func reap(child int) (status int, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid != child {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}

type readResult struct {
	lock lockView
	err  error
}

// readLoop reads the lock every interval on a goroutine of its own: a read
// that hangs (an NFS server gone) only stops renewals from being seen, and
// the lease runs out on the main loop's clock.
func readLoop(file string, interval time.Duration, out chan<- readResult) {
	for {
		l, err := readLock(file)
		select {
		case out <- readResult{l, err}:
		default: // the main loop is busy; the next read is as good
		}
		time.Sleep(interval)
	}
}
