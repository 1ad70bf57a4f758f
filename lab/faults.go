package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"

	"github.com/podsphere/podsphere/api"
)

// Faults the lab injects into a host, for HA drills (docs/lab.md).
const (
	// FaultCrashed: the host lost power. Its daemons and VMs were killed at
	// once and its management link is down; host.restart boots it.
	FaultCrashed = "crashed"
	// FaultIsolated: the host's management link is down; its daemons, VMs and
	// the shared directory stay. host.heal plugs it back.
	FaultIsolated = "isolated"
	// FaultPartitioned: the host is on a network of its own with the other
	// hosts of its partition, away from vcenter and the rest. host.heal ends it.
	FaultPartitioned = "partitioned"
)

// lockFile serialises the fault verbs' read-modify-write of state.json.
const lockFile = "state.lock"

// partitionBridge names the N-th partition's bridge in the management namespace.
func partitionBridge(n int) string { return fmt.Sprintf("part%d", n) }

// hostPort is the switch side of a host's management link: the veth end on
// the management bridge. Faults act here, never on the host's own NIC, as
// pulling a cable or powering off a switch port would.
func hostPort(h *Host) string { return "v-" + h.Name }

// faultState loads the lab for a fault verb under the lab's lock; unlock
// releases it. It fails when there is no lab.
func faultState(opts *Options) (s *State, unlock func(), err error) {
	if err := opts.complete(); err != nil {
		return nil, nil, err
	}
	if err := requireRoot(); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(filepath.Join(opts.Dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("no lab in %s (podsphere lab up --dir %s): %w", opts.Dir, opts.Dir, api.ErrNotFound)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, nil, err
	}
	unlock = func() { f.Close() }
	s, err = LoadState(opts.Dir)
	if err == nil && s == nil {
		err = fmt.Errorf("no lab in %s (podsphere lab up --dir %s): %w", opts.Dir, opts.Dir, api.ErrNotFound)
	}
	if err == nil && !s.Ready {
		err = fmt.Errorf("the lab in %s is incomplete (lab up did not finish): tear it down with podsphere lab down --dir %s: %w", opts.Dir, opts.Dir, api.ErrUnavailable)
	}
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return s, unlock, nil
}

// labHost finds the named host or says which hosts there are.
func (s *State) labHost(name string) (*Host, error) {
	if h := s.host(name); h != nil {
		return h, nil
	}
	return nil, fmt.Errorf("host %q: not in the lab (its hosts: %s): %w", name, strings.Join(hostNames(s.Hosts), ", "), api.ErrNotFound)
}

// setFault records a fault (or its end, with "") on the host.
func (h *Host) setFault(fault string) {
	h.Fault = fault
	h.FaultSince = time.Time{}
	if fault != "" {
		h.FaultSince = time.Now().UTC()
	}
}

// CrashHost powers host name off: SIGKILL to each of its daemons, then
// SIGKILL to every task in its containerd namespace at once, then its
// management link goes down. It is what a host that lost power looks like
// from the rest of the lab: it vanishes from the network and nothing of it
// runs, while containerd keeps its (stopped) containers, as a host's disk
// keeps its VM files. It takes a few tens of milliseconds.
func CrashHost(ctx context.Context, opts Options, name string) error {
	s, unlock, err := faultState(&opts)
	if err != nil {
		return err
	}
	defer unlock()
	h, err := s.labHost(name)
	if err != nil {
		return err
	}
	start := time.Now()
	killed, err := s.crash(ctx, h)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, "%s crashed in %s: %s; management link down\n", h.Name, time.Since(start).Round(time.Millisecond), killed)
	return nil
}

// crash does CrashHost's work and records it; it returns what it killed.
func (s *State) crash(ctx context.Context, h *Host) (string, error) {
	// 1. The host's daemons first, so no agent sees its VMs die and restarts them
	// (and no HA agent reacts to anything).
	var procs []Process
	for _, i := range s.hostProcesses(h.Name) {
		if p := s.Processes[i]; p.Alive() {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
			procs = append(procs, p)
		}
	}
	// Its link goes down meanwhile: a powered-off host leaves the network as its processes die.
	var wg sync.WaitGroup
	var linkErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		linkErr = ipIn(mgmtNS(s.Prefix), "link", "set", hostPort(h), "down")
	}()
	// Dead before its VMs are touched: an agent's last RPC must not start a task after the kill below.
	var names []string
	var errs []error
	for _, p := range procs {
		for i := 0; p.Alive() && i < 100; i++ { // SIGKILL is not instant; 1 s is plenty
			time.Sleep(5 * time.Millisecond)
		}
		if p.Alive() {
			errs = append(errs, fmt.Errorf("%s (pid %d) survives SIGKILL", p.Name, p.PID))
		}
		names = append(names, fmt.Sprintf("%s (pid %d)", p.Name, p.PID))
	}
	// 2. Its VMs.
	var nTasks int
	if h.Namespace != "" && s.Containerd != nil {
		var err error
		nTasks, err = killTasks(ctx, s.Containerd.Socket, h.Namespace)
		errs = append(errs, err)
	}
	wg.Wait()
	// Recorded even if a step failed: what did happen must be undone by restart or down.
	h.setFault(FaultCrashed)
	if err := s.save(); err != nil {
		return "", err
	}
	if err := errors.Join(append(errs, linkErr)...); err != nil {
		return "", fmt.Errorf("crash %s: %w", h.Name, err)
	}
	what := "no daemon was running"
	if len(names) > 0 {
		what = "killed " + strings.Join(names, ", ")
	}
	if h.Namespace != "" {
		what += fmt.Sprintf(", %d tasks in containerd namespace %s", nTasks, h.Namespace)
	}
	return what, nil
}

// killTasks sends SIGKILL to every live task of the containerd namespace at
// once (all of each task's processes) and lists again until none runs; it
// returns how many tasks it killed.
func killTasks(ctx context.Context, sock, ns string) (int, error) {
	client, err := containerd.New(sock, containerd.WithTimeout(2*time.Second))
	if err != nil {
		return 0, fmt.Errorf("containerd at %s: %w", sock, err)
	}
	defer client.Close()
	ctx = namespaces.WithNamespace(ctx, ns)
	ts := client.TaskService()
	killed := map[string]bool{}
	for deadline := time.Now().Add(2 * time.Second); ; {
		resp, err := ts.List(ctx, &tasks.ListTasksRequest{})
		if err != nil {
			return len(killed), fmt.Errorf("containerd namespace %s: list tasks: %w", ns, errdefs.FromGRPC(err))
		}
		var live []string
		for _, t := range resp.Tasks {
			if t.Status == task.Status_RUNNING || t.Status == task.Status_PAUSED || t.Status == task.Status_PAUSING {
				live = append(live, t.ID)
			}
		}
		if len(live) == 0 {
			return len(killed), nil
		}
		if time.Now().After(deadline) {
			return len(killed), fmt.Errorf("containerd namespace %s: tasks %v still run 2s after SIGKILL", ns, live)
		}
		errs := make([]error, len(live))
		var wg sync.WaitGroup
		for i, id := range live {
			killed[id] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := ts.Kill(ctx, &tasks.KillRequest{ContainerID: id, Signal: uint32(syscall.SIGKILL), All: true})
				if err = errdefs.FromGRPC(err); err != nil && !errdefs.IsNotFound(err) {
					errs[i] = fmt.Errorf("containerd namespace %s: kill %s: %w", ns, id, err)
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return len(killed), err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// IsolateHost puts host name's management link down and nothing else: its
// daemons and VMs keep running and it keeps the shared directory (storage),
// as an ESXi host whose management network failed. host.heal ends it.
func IsolateHost(ctx context.Context, opts Options, name string) error {
	s, h, unlock, err := upHost(&opts, name, "is crashed")
	if err != nil {
		return err
	}
	defer unlock()
	if err := ipIn(mgmtNS(s.Prefix), "link", "set", hostPort(h), "down"); err != nil {
		return fmt.Errorf("isolate %s: %w", h.Name, err)
	}
	h.setFault(FaultIsolated)
	if err := s.save(); err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, "%s isolated: management link down; its processes, VMs and the shared datastore stay\n", h.Name)
	return nil
}

// PartitionHosts puts the named hosts on a network of their own: their
// switch ports move from the management bridge to a new bridge in the
// management namespace, so they reach each other (gossip, API, VM traffic)
// but neither vcenter nor the other hosts. Hosts already in a partition
// move to the new one. host.heal puts a host back.
func PartitionHosts(ctx context.Context, opts Options, names []string) error {
	s, unlock, err := faultState(&opts)
	if err != nil {
		return err
	}
	defer unlock()
	if len(names) == 0 {
		return fmt.Errorf("partition: name at least one host: %w", api.ErrInvalid)
	}
	var hosts []*Host
	for _, n := range names {
		h, err := s.labHost(n)
		if err != nil {
			return err
		}
		if h.Fault == FaultCrashed {
			return fmt.Errorf("%s is crashed: boot it with podsphere lab host.restart %s first: %w", h.Name, h.Name, api.ErrConflict)
		}
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	used := map[string]bool{}
	for _, h := range s.Hosts {
		used[h.Partition] = true
	}
	n := 1
	for used[partitionBridge(n)] {
		n++
	}
	br := partitionBridge(n)
	mgmt := mgmtNS(s.Prefix)
	if err := ipIn(mgmt, "link", "add", br, "type", "bridge"); err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	if err := ipIn(mgmt, "link", "set", br, "up"); err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	var errs []error
	for _, h := range hosts {
		old := h.Partition
		err := ipIn(mgmt, "link", "set", hostPort(h), "master", br)
		if err == nil {
			// An isolated host stays cut off: its port stays down until host.heal.
			if h.Fault != FaultIsolated {
				err = ipIn(mgmt, "link", "set", hostPort(h), "up")
				h.setFault(FaultPartitioned)
			}
			h.Partition = br
		}
		errs = append(errs, err)
		if old != "" {
			errs = append(errs, s.dropPartitionIfEmpty(old))
		}
	}
	if err := errors.Join(append(errs, s.save())...); err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	if len(hosts) == 1 {
		fmt.Fprintf(opts.Out, "partition %s: %s is cut off from vcenter and the other hosts\n", br, hosts[0].Name)
	} else {
		fmt.Fprintf(opts.Out, "partition %s: %s reach each other but not vcenter nor the other hosts\n", br, strings.Join(hostNames(derefHosts(hosts)), ", "))
	}
	return nil
}

func derefHosts(hs []*Host) []Host {
	out := make([]Host, len(hs))
	for i, h := range hs {
		out[i] = *h
	}
	return out
}

// dropPartitionIfEmpty deletes a partition bridge no host is on any more.
func (s *State) dropPartitionIfEmpty(br string) error {
	for _, h := range s.Hosts {
		if h.Partition == br {
			return nil
		}
	}
	return ipIn(mgmtNS(s.Prefix), "link", "del", br)
}

// reconnect puts the host's port back on the management bridge and up.
func (s *State) reconnect(h *Host) error {
	mgmt := mgmtNS(s.Prefix)
	var errs []error
	if h.Partition != "" {
		if err := ipIn(mgmt, "link", "set", hostPort(h), "master", BridgeName); err != nil {
			return err
		}
		old := h.Partition
		h.Partition = ""
		errs = append(errs, s.dropPartitionIfEmpty(old))
	}
	errs = append(errs, ipIn(mgmt, "link", "set", hostPort(h), "up"))
	return errors.Join(errs...)
}

// upHost locks the lab's state for a fault verb on host name, which must
// not be crashed (why completes the refusal: "esx-01 is crashed"); the
// caller runs unlock.
func upHost(opts *Options, name, why string) (*State, *Host, func(), error) {
	s, unlock, err := faultState(opts)
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := s.labHost(name)
	if err == nil && h.Fault == FaultCrashed {
		err = fmt.Errorf("%s %s: boot it with podsphere lab host.restart %s: %w", h.Name, why, h.Name, api.ErrConflict)
	}
	if err != nil {
		unlock()
		return nil, nil, nil, err
	}
	return s, h, unlock, nil
}

// HealHost ends an isolation or a partition: the host's port goes back on
// the management bridge, up. A crashed host needs host.restart instead.
func HealHost(ctx context.Context, opts Options, name string) error {
	s, h, unlock, err := upHost(&opts, name, "is crashed, not cut off")
	if err != nil {
		return err
	}
	defer unlock()
	was := h.Fault
	if err := s.reconnect(h); err != nil {
		return fmt.Errorf("heal %s: %w", h.Name, err)
	}
	h.setFault("")
	if err := s.save(); err != nil {
		return err
	}
	if was == "" {
		was = "no fault"
	}
	fmt.Fprintf(opts.Out, "%s healed (was: %s): on the management network again\n", h.Name, was)
	return nil
}

// RestartHost boots host name again: a host that is not crashed is crashed
// first (a power cycle), then its management link comes up on the
// management bridge and its daemons start with the arguments they were
// first started with. The host agent finds its containers in containerd and
// adopts them (restarting the VMs still assigned to it) or removes them.
func RestartHost(ctx context.Context, opts Options, name string) error {
	s, unlock, err := faultState(&opts)
	if err != nil {
		return err
	}
	defer unlock()
	h, err := s.labHost(name)
	if err != nil {
		return err
	}
	if h.Fault != FaultCrashed {
		what, err := s.crash(ctx, h)
		if err != nil {
			return err
		}
		fmt.Fprintf(opts.Out, "%s powered off: %s\n", h.Name, what)
	}
	if err := s.reconnect(h); err != nil {
		return fmt.Errorf("restart %s: %w", h.Name, err)
	}
	var started []string
	for _, i := range s.hostProcesses(h.Name) {
		old := s.Processes[i]
		p, err := startDaemon(old.Name, old.NetNS, old.Args, old.Log)
		if err != nil {
			_ = s.save()
			return fmt.Errorf("restart %s: %w", h.Name, err)
		}
		p.Host = old.Host
		s.Processes[i] = p
		if err := s.save(); err != nil {
			return err
		}
		started = append(started, fmt.Sprintf("%s (pid %d)", p.Name, p.PID))
	}
	h.setFault("")
	if err := s.save(); err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, "%s restarted: management link up, started %s\n", h.Name, strings.Join(started, ", "))
	return nil
}
