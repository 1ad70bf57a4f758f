// Package sim is the runtime driver that runs no containers: VMs live in
// memory only, so hundreds of simulated hosts fit in one process for scale
// tests, placement and HA drills. Power state, boot time and a fake IP
// behave as a real host's would; nothing executes.
//
// Probes: nothing runs, so every probe passes. A container is started once
// its startup probe's initialDelaySeconds have passed since it started,
// and ready once its readiness probe's have too (immediately without
// delays); the VM is ready when all its containers are. The driver tells
// the agent (runtime.Notifier) when a delay runs out, so readiness reaches
// vcenter at once. Liveness probes never fail.
//
// Completion: a container whose command line (command and args) is
// `true`, `false`, `exit N` under a shell (`sh -c "exit N"`), or a path
// ending in /true or /false, "exits" with that code as soon as it starts;
// any other command runs until the VM stops. Completion is modelled only
// where the restart policy would not restart the container (Never, or
// OnFailure with exit 0): under Always, or OnFailure with a failing
// command, the container is shown running (the sim models no crash loop).
// When every container of a Never or OnFailure VM has completed the VM is
// powered off with Phase Succeeded (all exited 0) or Failed. Init
// containers complete at once with their modelled code (0 for any other
// command); a failing one under Never fails the VM, under the other
// policies it leaves the VM on with its containers never started.
package sim

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/runtime"
)

// Driver is one simulated host's runtime. It is safe for concurrent use.
type Driver struct {
	cap runtime.Capacity
	ips *ipPool
	now func() time.Time // a test may replace it

	mu     sync.Mutex
	vms    map[string]*vm
	notify func(vmID string)
	// createErr, when set, refuses creates (SetCreateError).
	createErr func(spec runtime.VMSpec) error
}

type vm struct {
	spec   runtime.VMSpec
	state  runtime.VMState
	ip     string
	booted bool // started at least once
	// crashed: its containers died (Crash) since the last start, so the
	// next start is the runtime restarting them, which counts; a start
	// after an admin's stop is a power-on, which does not (as containerd's
	// driver counts only its own restarts).
	crashed bool
	// timer tells the agent when the probes' delays run out (nil: none pending).
	timer *time.Timer
	// unready: its readiness probes fail (FailReadiness) while it keeps running.
	unready bool
}

var (
	_ runtime.Runtime  = (*Driver)(nil)
	_ runtime.Resizer  = (*Driver)(nil)
	_ runtime.Notifier = (*Driver)(nil)
)

// SetNotify sets the function told of VMs whose readiness changes when a
// probe delay runs out (runtime.Notifier); nil tells nobody.
func (d *Driver) SetNotify(notify func(vmID string)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.notify = notify
}

// New makes a sim host offering cpuMHz and memMB. VMs get addresses under
// ipPrefix, one to three leading octets ("10.250.7" gives 10.250.7.2 to
// 10.250.7.254); see IPPrefix for one prefix per host.
func New(cpuMHz, memMB int64, ipPrefix string) *Driver {
	return &Driver{
		cap: runtime.Capacity{CPUMHz: cpuMHz, MemMB: memMB},
		ips: newIPPool(ipPrefix),
		now: time.Now,
		vms: map[string]*vm{},
	}
}

// IPPrefix is a distinct /24 prefix for sim host number i (0-based):
// 10.250.0 for host 0, 10.250.255 for host 255, 10.251.0 for host 256...
// It serves 1536 hosts (up to 10.255.255); beyond that prefixes repeat.
func IPPrefix(i int) string {
	i %= 6 * 256
	return fmt.Sprintf("10.%d.%d", 250+i/256, i%256)
}

// SetPodSubnet gives VMs addresses from the pod subnet vcenter assigned to
// this host (a /24 like 10.244.2.0/24), unless New was given a prefix.
func (d *Driver) SetPodSubnet(cidr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.ips.prefix) > 0 {
		return
	}
	ip, _, ok := strings.Cut(cidr, "/")
	if !ok {
		return
	}
	if i := strings.LastIndex(ip, "."); i > 0 {
		d.ips = newIPPool(ip[:i])
	}
}

// Name is "sim".
func (d *Driver) Name() string { return "sim" }

// Capacity is what New was given.
func (d *Driver) Capacity(ctx context.Context) (runtime.Capacity, error) { return d.cap, nil }

// List returns every VM, sorted by ID.
func (d *Driver) List(ctx context.Context) ([]runtime.VMState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]runtime.VMState, 0, len(d.vms))
	for _, v := range d.vms {
		out = append(out, v.snapshot(d.now()))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// SetCreateError makes Create fail with what fn returns for a spec (nil:
// create it), as a real host fails on an image missing from its content
// library; a nil fn lifts it. Tests use it to make a host unable to power
// a VM on.
func (d *Driver) SetCreateError(fn func(spec runtime.VMSpec) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.createErr = fn
}

// Create registers a powered-off VM, recording runtime.SpecHash of its spec
// (reported in VMState.SpecHash). Creating an existing VM keeps it as it is.
func (d *Driver) Create(ctx context.Context, spec runtime.VMSpec) error {
	if spec.ID == "" {
		return fmt.Errorf("sim: create vm %q: empty ID: %w", spec.Path, api.ErrInvalid)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.vms[spec.ID]; ok {
		return nil
	}
	if d.createErr != nil {
		if err := d.createErr(spec); err != nil {
			return err
		}
	}
	v := &vm{spec: spec, state: runtime.VMState{ID: spec.ID, Path: spec.Path, PowerState: api.PoweredOff, SpecHash: runtime.SpecHash(spec),
		ShapeHash: runtime.ShapeHash(spec), Grace: spec.TerminationGracePeriodSeconds}}
	v.spec.Containers = append([]api.Container(nil), spec.Containers...)
	v.spec.InitContainers = append([]api.Container(nil), spec.InitContainers...)
	for _, c := range spec.InitContainers {
		v.state.Containers = append(v.state.Containers, api.ContainerStatus{Name: c.Name, State: "created", Init: true})
	}
	for _, c := range spec.Containers {
		v.state.Containers = append(v.state.Containers, api.ContainerStatus{Name: c.Name, State: "created"})
	}
	d.vms[spec.ID] = v
	return nil
}

// Resize changes a VM's size and allocations in place: a running VM keeps
// its boot time, address and restart count.
func (d *Driver) Resize(ctx context.Context, spec runtime.VMSpec) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(spec.ID)
	if err != nil {
		return err
	}
	if got := runtime.ShapeHash(spec); got != v.state.ShapeHash {
		return fmt.Errorf("sim: resize vm %s: more than its size changed: %w", spec.ID, api.ErrInvalid)
	}
	v.spec.NumCPU, v.spec.MemoryMB, v.spec.CPU, v.spec.Mem = spec.NumCPU, spec.MemoryMB, spec.CPU, spec.Mem
	v.state.SpecHash = runtime.SpecHash(spec)
	return nil
}

// Start powers a VM on: a new boot time, and an address from the host's
// range that stays the VM's until Delete. A start after a Crash counts as a
// restart of the VM and of every container; a start after Stop is a
// power-on and counts nothing.
func (d *Driver) Start(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return err
	}
	if v.state.PowerState == api.PoweredOn {
		return nil
	}
	if v.ip == "" {
		ip, err := d.ips.take()
		if err != nil {
			return fmt.Errorf("sim: start vm %s: %w", id, err)
		}
		v.ip = ip
	}
	now := d.now()
	v.state.PowerState = api.PoweredOn
	v.state.BootTime = now
	v.state.Phase = ""
	restart := v.booted && v.crashed
	v.crashed = false
	if restart {
		v.state.Restarts++
	}
	// Init containers first: each completes at once.
	initFailed := false
	nInit := len(v.spec.InitContainers)
	for i, c := range v.spec.InitContainers {
		st := &v.state.Containers[i]
		if initFailed {
			st.State = "created"
			continue
		}
		if restart {
			st.Restarts++
		}
		code, _ := exitOf(c)
		st.State, st.ExitCode, st.StartedAt = "exited", code, now
		initFailed = code != 0
	}
	running := 0
	for i, c := range v.spec.Containers {
		st := &v.state.Containers[nInit+i]
		if initFailed {
			st.State = "created"
			continue
		}
		if restart {
			st.Restarts++
		}
		st.State, st.ExitCode, st.StartedAt = "running", 0, now
		if code, ok := exitOf(c); ok && completes(v.spec.RestartPolicy, code) {
			st.State, st.ExitCode = "exited", code
		} else {
			running++
		}
	}
	v.booted = true
	switch {
	case initFailed && v.spec.RestartPolicy == "Never":
		v.complete(api.PhaseFailed)
	case !initFailed && running == 0 && runToCompletion(v.spec.RestartPolicy):
		phase := api.PhaseSucceeded
		for _, st := range v.state.Containers[nInit:] {
			if st.ExitCode != 0 {
				phase = api.PhaseFailed
			}
		}
		v.complete(phase)
	case !initFailed:
		d.armProbeTimer(id, v, now)
	}
	return nil
}

// complete powers a VM off as completed in phase, its containers' exit codes kept.
func (v *vm) complete(phase string) {
	v.state.PowerState = api.PoweredOff
	v.state.BootTime = time.Time{}
	v.state.Phase = phase
}

func runToCompletion(policy string) bool { return policy == "Never" || policy == "OnFailure" }

// completes says whether a container exiting with code stays exited.
func completes(policy string, code int) bool {
	return policy == "Never" || policy == "OnFailure" && code == 0
}

// exitOf is the exit code the sim gives a container's command line, and
// whether it models one at all (see the package comment).
func exitOf(c api.Container) (int, bool) {
	cmd := append(append([]string(nil), c.Command...), c.Args...)
	word := func(s string) (int, bool) {
		s = strings.TrimSpace(s)
		switch {
		case s == "true" || strings.HasSuffix(s, "/true"):
			return 0, true
		case s == "false" || strings.HasSuffix(s, "/false"):
			return 1, true
		case s == "exit":
			return 0, true
		}
		if n, ok := strings.CutPrefix(s, "exit "); ok {
			if code, err := strconv.Atoi(strings.TrimSpace(n)); err == nil && code >= 0 && code < 256 {
				return code, true
			}
		}
		return 0, false
	}
	switch {
	case len(cmd) == 1:
		return word(cmd[0])
	case len(cmd) == 3 && (cmd[0] == "sh" || strings.HasSuffix(cmd[0], "/sh")) && cmd[1] == "-c":
		return word(cmd[2])
	}
	return 0, false
}

// probeDelays are how long after its start container c is started (its
// startup probe's initial delay) and ready (the later of both delays).
func probeDelays(c api.Container) (started, ready time.Duration) {
	if p := c.StartupProbe; p != nil {
		started = time.Duration(max(p.InitialDelaySeconds, 0)) * time.Second
	}
	ready = started
	if p := c.ReadinessProbe; p != nil {
		ready = max(ready, time.Duration(max(p.InitialDelaySeconds, 0))*time.Second)
	}
	return started, ready
}

// armProbeTimer tells the agent when the last probe delay of the VM
// started at now runs out.
func (d *Driver) armProbeTimer(id string, v *vm, now time.Time) {
	v.stopTimer()
	var longest time.Duration
	for _, c := range v.spec.Containers {
		_, ready := probeDelays(c)
		longest = max(longest, ready)
	}
	if longest <= 0 {
		return
	}
	v.timer = time.AfterFunc(longest, func() {
		d.mu.Lock()
		notify := d.notify
		d.mu.Unlock()
		if notify != nil {
			notify(id)
		}
	})
}

func (v *vm) stopTimer() {
	if v.timer != nil {
		v.timer.Stop()
		v.timer = nil
	}
}

// Stop powers a VM off at once; the sim has nothing to wait for.
func (d *Driver) Stop(ctx context.Context, id string, timeout time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return err
	}
	v.stop(0)
	return nil
}

// Crash stops a running VM as if its containers died with exitCode, so tests
// can drive restart and HA logic. Under restart policy Never (or OnFailure
// with exit code 0) the VM has then completed, with Phase Succeeded or
// Failed by the code. Crashing a stopped VM changes nothing.
func (d *Driver) Crash(id string, exitCode int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return err
	}
	if v.state.PowerState == api.PoweredOn {
		v.stop(exitCode)
		v.crashed = true
		// A run-to-completion VM whose policy would not restart it has completed.
		if completes(v.spec.RestartPolicy, exitCode) {
			v.state.Phase = api.PhaseSucceeded
			if exitCode != 0 {
				v.state.Phase = api.PhaseFailed
			}
		}
	}
	return nil
}

// FailReadiness makes the running VM's readiness probes fail (failing
// true) or pass again, as an application that stops answering would,
// without stopping it; the agent is told at once. Tests drive load
// balancing with it (a VM that is not ready leaves its Services).
func (d *Driver) FailReadiness(id string, failing bool) error {
	d.mu.Lock()
	v, err := d.get(id)
	if err == nil {
		v.unready = failing
	}
	notify := d.notify
	d.mu.Unlock()
	if err == nil && notify != nil {
		notify(id)
	}
	return err
}

func (v *vm) stop(exitCode int) {
	v.stopTimer()
	if v.state.PowerState != api.PoweredOn {
		return
	}
	v.state.PowerState = api.PoweredOff
	v.state.BootTime = time.Time{}
	for i := range v.state.Containers {
		if c := &v.state.Containers[i]; c.State == "running" {
			c.State, c.ExitCode = "exited", exitCode
		}
	}
}

// Delete forgets a VM and frees its address; an unknown VM is no error.
func (d *Driver) Delete(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.vms[id]; ok {
		v.stopTimer()
		d.ips.give(v.ip)
		delete(d.vms, id)
	}
	return nil
}

// Status is one VM's state.
func (d *Driver) Status(ctx context.Context, id string) (runtime.VMState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.get(id)
	if err != nil {
		return runtime.VMState{}, err
	}
	return v.snapshot(d.now()), nil
}

// Logs writes a few synthetic lines about the container (every container
// when container is ""). With follow it then waits for ctx to end, as a real
// log stream with nothing more to say would.
func (d *Driver) Logs(ctx context.Context, id, container string, follow bool, w io.Writer) error {
	d.mu.Lock()
	v, err := d.get(id)
	var lines []string
	if err == nil {
		found := false
		for i, c := range v.spec.Containers {
			if container != "" && c.Name != container {
				continue
			}
			found = true
			st := v.state.Containers[i]
			lines = append(lines,
				fmt.Sprintf("sim: vm %s container %s image %s", v.spec.Path, c.Name, c.Image),
				fmt.Sprintf("sim: state %s, restarts %d", st.State, st.Restarts))
			if !st.StartedAt.IsZero() {
				lines = append(lines, fmt.Sprintf("sim: started at %s, ip %s", st.StartedAt.UTC().Format(time.RFC3339), v.ip))
			}
			lines = append(lines, "sim: the sim runtime runs no processes; this is all the log there is")
		}
		if !found && container != "" {
			err = fmt.Errorf("sim: vm %s has no container %q: %w", id, container, api.ErrNotFound)
		}
	}
	d.mu.Unlock()
	if err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	if follow {
		<-ctx.Done()
	}
	return nil
}

// Exec always fails: there is no process to run a command in.
func (d *Driver) Exec(ctx context.Context, id, container string, cmd []string, stdout, stderr io.Writer) (int, error) {
	d.mu.Lock()
	_, err := d.get(id)
	d.mu.Unlock()
	if err != nil {
		return -1, err
	}
	return -1, fmt.Errorf("exec in vm %s: the sim runtime runs no processes: %w", id, api.ErrUnavailable)
}

// Metrics is zero for every VM: nothing runs.
func (d *Driver) Metrics(ctx context.Context, id string) (runtime.Metrics, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.get(id); err != nil {
		return runtime.Metrics{}, err
	}
	return runtime.Metrics{}, nil
}

func (d *Driver) get(id string) (*vm, error) {
	v, ok := d.vms[id]
	if !ok {
		return nil, fmt.Errorf("sim: vm %s: %w", id, api.ErrNotFound)
	}
	return v, nil
}

// snapshot copies the state as of now; the IP shows only while the VM
// runs, as vm.ip does. Started and Ready follow the probe delays.
func (v *vm) snapshot(now time.Time) runtime.VMState {
	s := v.state
	s.Containers = append([]api.ContainerStatus(nil), v.state.Containers...)
	if s.PowerState == api.PoweredOn {
		s.IP = v.ip
	}
	nInit := len(v.spec.InitContainers)
	for i := range s.Containers {
		c := &s.Containers[i]
		if c.Init {
			c.Ready = c.State == "exited" && c.ExitCode == 0
			continue
		}
		if c.State != "running" || s.PowerState != api.PoweredOn || i-nInit >= len(v.spec.Containers) {
			continue
		}
		started, ready := probeDelays(v.spec.Containers[i-nInit])
		c.Started = !now.Before(c.StartedAt.Add(started))
		c.Ready = c.Started && !now.Before(c.StartedAt.Add(ready)) && !v.unready
	}
	if s.PowerState == api.PoweredOn && len(v.spec.Containers) > 0 {
		s.Ready = true
		for i, c := range s.Containers[nInit:] {
			_, ready := probeDelays(v.spec.Containers[i])
			if !c.Ready {
				s.Ready, s.ReadySince = false, time.Time{}
				break
			}
			if at := c.StartedAt.Add(ready); at.After(s.ReadySince) {
				s.ReadySince = at
			}
		}
	}
	return s
}

// ipPool hands out the host addresses under a prefix, lowest free first.
type ipPool struct {
	prefix []int // leading octets
	size   int   // addresses under the prefix
	next   int   // lowest never-used host number
	free   []int // returned host numbers
}

func newIPPool(prefix string) *ipPool {
	p := &ipPool{}
	for _, s := range strings.Split(strings.Trim(prefix, "."), ".") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 255 || len(p.prefix) == 3 {
			p.prefix = nil // unusable prefix: every start fails with a clear error
			break
		}
		p.prefix = append(p.prefix, n)
	}
	if len(p.prefix) > 0 {
		p.size = 1 << (8 * (4 - len(p.prefix)))
	}
	p.next = 2 // .0 is the network, .1 the gateway
	return p
}

func (p *ipPool) take() (string, error) {
	var n int
	switch {
	case len(p.prefix) == 0:
		return "", fmt.Errorf("no usable IP prefix (want 1 to 3 octets, like 10.250.7): %w", api.ErrInvalid)
	case len(p.free) > 0:
		sort.Ints(p.free)
		n, p.free = p.free[0], p.free[1:]
	case p.next < p.size-1: // the last address is broadcast
		n = p.next
		p.next++
	default:
		return "", fmt.Errorf("all %d addresses under %s are in use: %w", p.size-3, p.prefixString(), api.ErrInsufficientResources)
	}
	oct := append([]int(nil), p.prefix...)
	for i := 4 - len(p.prefix) - 1; i >= 0; i-- {
		oct = append(oct, (n>>(8*i))&0xff)
	}
	return fmt.Sprintf("%d.%d.%d.%d", oct[0], oct[1], oct[2], oct[3]), nil
}

func (p *ipPool) give(ip string) {
	if ip == "" {
		return
	}
	parts := strings.Split(ip, ".")
	n := 0
	for _, s := range parts[len(p.prefix):] {
		o, _ := strconv.Atoi(s)
		n = n<<8 | o
	}
	p.free = append(p.free, n)
}

func (p *ipPool) prefixString() string {
	s := make([]string, len(p.prefix))
	for i, o := range p.prefix {
		s[i] = strconv.Itoa(o)
	}
	return strings.Join(s, ".")
}
