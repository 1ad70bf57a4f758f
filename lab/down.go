package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/podsphere/podsphere/host/containerd/daemon"
	"github.com/podsphere/podsphere/host/network"
)

// labFiles are the entries a lab makes in its directory; down removes these
// and then the directory if it is empty, never anything else it finds there.
var labFiles = []string{"env", "proxy.addr", "proxy.addr.tmp", "logs", "datastore", SharedDir, "fdm", "vcenter", "hosts", "containerd", lockFile, StateFile + ".tmp"}

// Down removes everything a lab made: its processes, the containerd
// namespaces its hosts used (and its private containerd), its network
// namespaces (taking their veths, bridges and iptables rules with them), the
// VMs' network namespaces and cgroups, and its files. It works from
// DIR/state.json and also sweeps for leftovers by the lab's prefix, so it
// is safe after a crash and safe to run twice. On a partial failure it
// keeps state.json so the next run can retry.
func Down(ctx context.Context, opts Options) error {
	if err := opts.complete(); err != nil {
		return err
	}
	if err := requireRoot(); err != nil {
		return err
	}
	s, err := LoadState(opts.Dir)
	if err != nil {
		return err
	}
	if s == nil {
		s = &State{Prefix: opts.Prefix, Dir: opts.Dir}
	}
	prefix := s.Prefix
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	say := func(format string, args ...any) { fmt.Fprintf(opts.Out, format+"\n", args...) }
	say("Tearing down lab %q in %s", prefix, opts.Dir)

	// 1. The lab's daemons, newest first; the private containerd stays for step 3.
	var ctrdProc *Process
	for i := len(s.Processes) - 1; i >= 0; i-- {
		p := s.Processes[i]
		if p.Name == "containerd" {
			if ctrdProc == nil || p.Start > ctrdProc.Start {
				ctrdProc = &s.Processes[i]
			}
			continue
		}
		if p.Alive() {
			say("  stopping %s (pid %d)", p.Name, p.PID)
		}
		note(stopProcess(p, StopGrace))
	}
	// 2. Anything else still inside the lab's namespaces (a daemon whose record was lost, a plugin).
	namespaces := labNetNS(prefix)
	for _, n := range s.NetNS {
		if !slices.Contains(namespaces, n) && netNSExists(n) {
			namespaces = append(namespaces, n)
		}
	}
	for _, n := range namespaces {
		if pids := pidsIn(filepath.Join(network.NetNSDir, n)); len(pids) > 0 {
			say("  stopping %d stray processes in %s", len(pids), n)
			killPIDs(pids, StopGrace)
		}
	}

	// 3. containerd: the hosts' namespaces, then the lab's own daemon.
	priv := s.Containerd
	if priv == nil {
		if _, err := os.Stat(privateContainerd(opts.Dir).Config); err == nil {
			priv = privateContainerd(opts.Dir)
		}
	}
	switch {
	case priv != nil && priv.Private:
		note(downPrivateContainerd(ctx, s, priv, ctrdProc, say))
	case priv != nil:
		if answering(ctx, priv.Socket) {
			say("  removing containerd namespaces %s-* from %s", prefix, priv.Socket)
			note(cleanNamespaces(ctx, priv.Socket, prefix, s.CtrdNamespaces))
		} else {
			note(fmt.Errorf("containerd at %s does not answer: the namespaces %v may still hold containers; start it and run lab down again", priv.Socket, s.CtrdNamespaces))
		}
	default: // no record: sweep the machine's containerd for the prefix
		if answering(ctx, SystemSocket) {
			note(cleanNamespaces(ctx, SystemSocket, prefix, nil))
		}
	}
	for _, ns := range s.CtrdNamespaces {
		removeCgroupTree("/podsphere/" + ns)
		_ = os.RemoveAll(filepath.Join("/run/containerd/runc", ns))
	}
	removeCgroupTree("/podsphere/")

	// 4. Network namespaces: VMs' first (named after the lab's hosts), the management one last.
	namespaces = labNetNS(prefix)
	for _, n := range s.NetNS {
		if !slices.Contains(namespaces, n) {
			namespaces = append(namespaces, n)
		}
	}
	slices.SortFunc(namespaces, func(a, b string) int {
		am, bm := a == mgmtNS(prefix), b == mgmtNS(prefix)
		switch {
		case am && !bm:
			return 1
		case bm && !am:
			return -1
		}
		return len(b) - len(a)
	})
	if len(namespaces) > 0 {
		say("  removing network namespaces %v", namespaces)
	}
	for _, n := range namespaces {
		note(network.DeleteNamedNetNS(n))
	}

	// 5. Files.
	daemon.UnmountUnder(opts.Dir)
	if len(errs) > 0 {
		return fmt.Errorf("lab down left something behind (state kept in %s; run lab down again): %w", statePath(opts.Dir), errors.Join(errs...))
	}
	for _, f := range labFiles {
		note(os.RemoveAll(filepath.Join(opts.Dir, f)))
	}
	note(os.RemoveAll(statePath(opts.Dir)))
	if entries, err := os.ReadDir(opts.Dir); err == nil && len(entries) == 0 {
		note(os.Remove(opts.Dir))
	} else if err == nil {
		say("  left %s in place: it holds files the lab did not make", opts.Dir)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	say("Lab %q is gone.", prefix)
	return nil
}

// downPrivateContainerd cleans the hosts' namespaces in the lab's own
// containerd and stops it. After a crash it restarts it first: containerd
// reconnects to the shims still running the VMs, so they are removed cleanly.
func downPrivateContainerd(ctx context.Context, s *State, c *Containerd, proc *Process, say func(string, ...any)) error {
	var errs []error
	running := proc != nil && proc.Alive()
	if !running {
		if _, err := os.Stat(c.Config); err != nil {
			return nil // never started
		}
		say("  restarting the lab's containerd to clean up after it")
		p, err := startPrivateContainerd(ctx, c, filepath.Join(s.Dir, "logs", "containerd.log"))
		if err != nil {
			_ = stopProcess(p, StopGrace)
			errs = append(errs, err)
		} else {
			proc = &p
		}
	}
	if proc != nil && proc.Alive() {
		say("  removing containerd namespaces %s-* and stopping the lab's containerd (pid %d)", s.Prefix, proc.PID)
		if err := cleanNamespaces(ctx, c.Socket, s.Prefix, s.CtrdNamespaces); err != nil {
			errs = append(errs, err)
		}
		if err := stopProcess(*proc, StopGrace); err != nil {
			errs = append(errs, err)
		}
	}
	if shims := shimsOf(c.Socket); len(shims) > 0 {
		say("  stopping %d leftover containerd shims", len(shims))
		killPIDs(shims, StopGrace)
	}
	daemon.UnmountUnder(c.Root)
	return errors.Join(errs...)
}
