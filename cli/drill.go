package cli

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/ha/drill"
	"github.com/podsphere/podsphere/internal/hads"
	"github.com/spf13/cobra"
)

// Injector makes a drill's failure real. The lab's injector crashes,
// isolates or partitions its hosts for real (podsphere lab host.crash ...)
// and reads their containerd namespaces directly (simulated hosts: each
// agent's GET /vms, from inside the host's network namespace).
type Injector interface {
	// Inject puts the failure in effect on the named hosts.
	Inject(ctx context.Context, mode string, hosts []string) error
	// Heal undoes it: a crashed host is restarted, an isolated or
	// partitioned one reconnected.
	Heal(ctx context.Context, mode string, hosts []string) error
	// Running reads every host's runtime directly, not through agents the
	// failure may have killed: host name to the IDs of the VMs running there.
	Running(ctx context.Context) (map[string][]string, error)
}

// Prober sends requests through a Service that selects the drill's VMs
// while the drill runs, and counts what failed: the load-balancing work
// plugs in here (Env.DrillProber); the report keeps the counts as
// requests.
type Prober interface {
	// Start begins sending; Stop ends it and says what was sent.
	Start(ctx context.Context) error
	Stop() api.DrillRequests
}

// HeartbeatReader is an injector that also reads the hosts' HA
// heartbeats on the heartbeat datastore (by host name): the drill waits
// until each failed host's HA process has the cluster's current settings,
// and reports the isolation response the host says it applied.
type HeartbeatReader interface {
	Heartbeats(ctx context.Context) (map[string]hads.Heartbeat, error)
}

// DrillEventTypes are the events by which HA declares a host failed or
// isolated (the drill's "declared" time).
var DrillEventTypes = []string{"DasHostFailedEvent", "DasHostIsolatedEvent"}

type drillOptions struct {
	env      *Env
	mode     string
	name     string
	duration time.Duration
	timeout  time.Duration
	heal     bool
	svg      string
	hosts    []string
	interval time.Duration
}

func newHADrillCommand(env *Env) *cobra.Command {
	o := &drillOptions{env: env, interval: 100 * time.Millisecond}
	cmd := &cobra.Command{
		Use:   "ha.drill -mode crash|isolate|partition|maintenance [-duration D] [-svg FILE] HOST[,HOST...]",
		Short: "Inject a real host failure, measure HA's failover, and keep the report (ha.drill.ls, ha.drill.info)",
		Long: "ha.drill crashes, isolates or partitions hosts for real, watches vcenter and every host's runtime\n" +
			"(sampled directly every 100 ms) until every protected VM runs and is ready again, heals the hosts\n" +
			"(unless -heal=false) and reports: when the failure was seen and declared, each VM's restart, the\n" +
			"time until all were back, capacity before and after, and any VM seen running twice (which fails\n" +
			"the drill). When a Service selects the protected VMs, it also sends 20 requests a second through it from\n" +
			"outside the hosts (its LoadBalancer address, else a NodePort) and 20 a second to its ClusterIP from inside\n" +
			"a VM on a host the drill leaves alone, and reports for each stream sent, failed and the longest gap.\n" +
			"The report is kept as /DC/drill/NAME.",
		Example: `  psc ha.drill -mode crash esx-02
  psc ha.drill -mode isolate -duration 20s -svg isolate.svg esx-03
  psc ha.drill -mode partition esx-02,esx-03 -json`,
		Args: exactArgsDrill,
		RunE: runE(o),
	}
	f := cmd.Flags()
	f.StringVar(&o.mode, "mode", "", "crash, isolate, partition or maintenance (host.maintenance.enter: its VMs are evacuated)")
	f.StringVar(&o.name, "name", "", "the drill's name (default drill-MODE-HOST-TIME)")
	f.DurationVar(&o.duration, "duration", 0, "how long the failure lasts at least before the hosts are healed (default: until every protected VM is back; 15s when nothing should move)")
	f.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up waiting for the VMs after this long")
	f.BoolVar(&o.heal, "heal", true, "heal the hosts at the end (restart a crashed host, reconnect an isolated one)")
	f.StringVar(&o.svg, "svg", "", "write the timeline picture (SVG) to this file")
	return cmd
}

func exactArgsDrill(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usagef("ha.drill: name the HOST to fail (HOST or HOST,HOST for a partition)")
	}
	return nil
}

func (o *drillOptions) Complete(_ *cobra.Command, args []string) error {
	for _, h := range strings.Split(args[0], ",") {
		if h = strings.TrimSpace(h); h != "" {
			o.hosts = append(o.hosts, api.Base(h))
		}
	}
	return nil
}

func (o *drillOptions) Validate() error {
	switch o.mode {
	case api.DrillCrash, api.DrillIsolate, api.DrillPartition, api.DrillMaintenance:
	case "":
		return usagef("ha.drill: give -mode crash, isolate, partition or maintenance")
	default:
		return usagef("ha.drill -mode %q: want crash, isolate, partition or maintenance", o.mode)
	}
	if len(o.hosts) == 0 {
		return usagef("ha.drill: name the HOST to fail")
	}
	if o.mode != api.DrillPartition && len(o.hosts) > 1 {
		return usagef("ha.drill -mode %s takes one host (%d given); -mode partition takes several", o.mode, len(o.hosts))
	}
	if o.timeout <= 0 || o.duration < 0 {
		return usagef("ha.drill: -timeout must be positive and -duration not negative")
	}
	if o.env.Cluster == "" {
		return usagef("ha.drill: set the cluster with -cluster or PSC_CLUSTER")
	}
	if o.name != "" {
		if err := api.ValidName(o.name); err != nil {
			return usagef("ha.drill -name: %v", err)
		}
	}
	return nil
}

// drillRun is one drill's recording.
type drillRun struct {
	mu    sync.Mutex
	in    drill.Input
	paths map[string]bool // the protected VMs, by path
}

func (o *drillOptions) Run(ctx context.Context) error {
	r, cluster, err := o.env.resolvePath(ctx, api.KindCluster, o.env.Cluster)
	if err != nil {
		return err
	}
	c := r.API
	co, err := c.Get(ctx, cluster)
	if err != nil {
		return err
	}
	var cs api.ClusterSpec
	_ = co.DecodeSpec(&cs)
	if !cs.HA.Enabled {
		return fmt.Errorf("ha.drill: HA is not enabled on cluster %s (psc cluster.change -ha-enabled %s): %w", cluster, api.Base(cluster), api.ErrConflict)
	}
	hosts, err := c.List(ctx, client.ListOptions{Kind: api.KindHost, Prefix: cluster})
	if err != nil {
		return err
	}
	for _, h := range o.hosts {
		if !slices.ContainsFunc(hosts.Items, func(x *api.Object) bool { return x.Name() == h }) {
			return fmt.Errorf("ha.drill: host %s is not in cluster %s: %w", h, cluster, api.ErrNotFound)
		}
	}
	if o.env.Injector == nil {
		return fmt.Errorf("ha.drill injects real failures and reads every host's runtime directly: it runs in a lab "+
			"(. DIR/env after podsphere lab up sets PSC_LAB): %w", api.ErrUnavailable)
	}
	inj, err := o.env.Injector(ctx)
	if err != nil {
		return err
	}
	dc := strings.Split(strings.TrimPrefix(cluster, "/"), "/")[0]
	now := o.env.Now()
	name := o.name
	if name == "" {
		name = fmt.Sprintf("drill-%s-%s-%s", o.mode, strings.Join(o.hosts, "-"), now.UTC().Format("20060102T150405"))
	}
	path := "/" + dc + "/drill/" + name
	if _, err := c.Get(ctx, path); err == nil {
		return fmt.Errorf("ha.drill: a drill named %s exists already (psc ha.drill.info %s): %w", name, name, api.ErrConflict)
	}
	run := &drillRun{paths: map[string]bool{}}
	run.in = drill.Input{Name: name, Cluster: cluster, Mode: o.mode, Hosts: o.hosts, IsolationResponse: cs.HA.IsolationResponse,
		SampleInterval: o.interval, DeclaredTypes: DrillEventTypes}
	if err := o.protected(ctx, c, dc, cluster, cs, run); err != nil {
		return err
	}
	// Nothing should move when isolated hosts keep their VMs (response
	// disabled) or partitioned hosts still see each other.
	resp := cs.HA.IsolationResponse
	run.in.KeepRunning = (o.mode == api.DrillIsolate || o.mode == api.DrillPartition) && (resp == "" || resp == "disabled") ||
		o.mode == api.DrillPartition && len(o.hosts) > 1
	run.in.CapacityBefore = capacityOf(hosts.Items)
	run.in.CapacityBefore.Failover = failoverOf(ctx, c, cluster)

	paths := make([]string, 0, len(run.in.Protected))
	for _, p := range run.in.Protected {
		paths = append(paths, p.VM)
	}
	streams, err := o.startStreams(ctx, c, inj, dc, cluster, paths)
	if err != nil {
		return err
	}
	defer streams.stop(nil) // on an early return: no stream outlives the drill
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); o.sample(sctx, c, inj, dc, cluster, run) }()
	defer func() { stop(); wg.Wait() }()
	if err := o.waitSamples(ctx, run, 1); err != nil {
		return err
	}
	if err := o.waitSettings(ctx, inj, co.Modified); err != nil {
		return err
	}

	fmt.Fprintf(o.env.Err, "ha.drill %s: %s %s, %d protected VM(s)\n", name, o.mode, strings.Join(o.hosts, ","), len(run.in.Protected))
	run.mu.Lock()
	run.in.Injected = time.Now()
	run.mu.Unlock()
	var injectErr error
	if o.mode == api.DrillMaintenance {
		injectErr = o.maintenance(ctx, c, cluster, true)
	} else {
		injectErr = inj.Inject(ctx, o.mode, o.hosts)
	}
	if injectErr == nil {
		injectErr = o.waitRecovered(ctx, run)
	}
	// Capacity "after" is the cluster's while the failure is still in effect.
	if hs, err := c.List(context.WithoutCancel(ctx), client.ListOptions{Kind: api.KindHost, Prefix: cluster}); err == nil {
		run.in.CapacityAfter = capacityOf(hs.Items)
		run.in.CapacityAfter.Failover = failoverOf(context.WithoutCancel(ctx), c, cluster)
	}
	if o.heal {
		run.mu.Lock()
		run.in.Healed = time.Now()
		run.mu.Unlock()
		heal := func() error { return inj.Heal(context.WithoutCancel(ctx), o.mode, o.hosts) }
		if o.mode == api.DrillMaintenance {
			heal = func() error { return o.maintenance(context.WithoutCancel(ctx), c, cluster, false) }
		}
		if err := heal(); err != nil && injectErr == nil {
			injectErr = fmt.Errorf("healing %s: %w", strings.Join(o.hosts, ","), err)
		}
		// Duplicates show up when a host comes back: keep sampling until it
		// is connected again, and a little after.
		o.waitConnected(ctx, c, cluster, run)
	}
	stop()
	wg.Wait()
	streams.stop(&run.in)
	run.in.Ended = time.Now()
	rep := drill.Build(run.in)
	if injectErr != nil {
		rep.Passed = false
		rep.Failures = append(rep.Failures, injectErr.Error())
	}
	obj := &api.Object{Meta: api.Meta{Kind: api.KindHADrill, Path: path}}
	obj.SetSpec(rep)
	if _, err := c.Create(context.WithoutCancel(ctx), obj); err != nil {
		fmt.Fprintf(o.env.Err, "ha.drill: the report could not be kept: %v\n", err)
	}
	if o.svg != "" {
		if err := os.WriteFile(o.svg, []byte(drill.SVG(rep)), 0o644); err != nil {
			return fmt.Errorf("writing the timeline %s: %v: %w", o.svg, err, api.ErrInvalid)
		}
	}
	if err := writeDrill(o.env, rep); err != nil {
		return err
	}
	if !rep.Passed {
		return &cliError{msg: fmt.Sprintf("drill %s failed: %s", name, strings.Join(rep.Failures, "; ")), sentinel: api.ErrConflict}
	}
	return nil
}

// protected records the VMs HA protects on the hosts the drill fails.
func (o *drillOptions) protected(ctx context.Context, c API, dc, cluster string, cs api.ClusterSpec, run *drillRun) error {
	vms, err := c.List(ctx, client.ListOptions{Kind: api.KindVirtualMachine, Prefix: "/" + dc + "/vm"})
	if err != nil {
		return err
	}
	def := cs.HA.DefaultRestartPriority
	if def == "" {
		def = "medium"
	}
	for _, v := range vms.Items {
		var s api.VMSpec
		_ = v.DecodeSpec(&s)
		prio := s.HA.RestartPriority
		if prio == "" {
			prio = def
		}
		// Pinned VMs (vm.create -host, DaemonSet members) run only on their
		// host: HA does not restart them elsewhere, nor does evacuation.
		if s.PowerState != api.PoweredOn || s.Removing || s.Pinned || prio == "disabled" || !strings.HasPrefix(s.Host, cluster+"/") ||
			!slices.Contains(o.hosts, api.Base(s.Host)) {
			continue
		}
		run.in.Protected = append(run.in.Protected, drill.Protected{VM: v.Path, UID: v.UID, Priority: prio, Host: api.Base(s.Host)})
		run.paths[v.Path] = true
	}
	if len(run.in.Protected) == 0 {
		return fmt.Errorf("ha.drill: no VM HA protects runs on %s: nothing to measure (power on VMs there, or set a restart priority): %w",
			strings.Join(o.hosts, ","), api.ErrConflict)
	}
	return nil
}

// sample records, every interval, every host's runtime read directly and
// what vcenter says of the hosts, the protected VMs and its events.
func (o *drillOptions) sample(ctx context.Context, c API, inj Injector, dc, cluster string, run *drillRun) {
	events, stopWatch, err := c.Watch(ctx, client.ListOptions{Kind: api.KindEvent}, 0)
	if err == nil {
		defer stopWatch()
		go func() {
			for ev := range events {
				var e api.EventSpec
				if ev.Object == nil || ev.Object.DecodeSpec(&e) != nil {
					continue
				}
				run.mu.Lock()
				run.in.Events = append(run.in.Events, drill.Event{At: e.Time, Type: e.Type, Target: e.Target, Message: e.Message})
				run.mu.Unlock()
			}
		}()
	}
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for {
		at := time.Now()
		if hr, ok := inj.(HeartbeatReader); ok {
			o.hostResponse(ctx, hr, run)
		}
		if running, err := inj.Running(ctx); err == nil {
			run.mu.Lock()
			run.in.Samples = append(run.in.Samples, drill.Sample{At: at, Running: running})
			run.mu.Unlock()
		}
		if hs, err := c.List(ctx, client.ListOptions{Kind: api.KindHost, Prefix: cluster}); err == nil {
			run.mu.Lock()
			for _, h := range hs.Items {
				var st api.HostStatus
				_ = h.DecodeStatus(&st)
				run.in.HostStates = append(run.in.HostStates, drill.HostObs{At: at, Host: h.Name(), State: st.State})
			}
			run.mu.Unlock()
		}
		if vs, err := c.List(ctx, client.ListOptions{Kind: api.KindVirtualMachine, Prefix: "/" + dc + "/vm"}); err == nil {
			run.mu.Lock()
			listed := map[string]bool{}
			for _, v := range vs.Items {
				listed[v.Path] = true
			}
			for p := range run.paths {
				if !listed[p] {
					run.in.VMs = append(run.in.VMs, drill.VMObs{At: at, VM: p, Gone: true})
				}
			}
			for _, v := range vs.Items {
				if !run.paths[v.Path] {
					continue
				}
				var s api.VMSpec
				var st api.VMStatus
				_ = v.DecodeSpec(&s)
				_ = v.DecodeStatus(&st)
				run.in.VMs = append(run.in.VMs, drill.VMObs{At: at, VM: v.Path, Host: api.Base(s.Host), StatusHost: api.Base(st.Host),
					PowerState: st.PowerState, Ready: st.Ready, Message: haMessage(st)})
			}
			run.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// maintenance puts the drill's host into maintenance mode (enter: its
// VMs are evacuated by vcenter, within the drill's timeout) or takes it out.
func (o *drillOptions) maintenance(ctx context.Context, c API, cluster string, enter bool) error {
	_, err := modify(ctx, c, cluster+"/"+o.hosts[0], func(obj *api.Object) error {
		var s api.HostSpec
		if err := obj.DecodeSpec(&s); err != nil {
			return err
		}
		s.Maintenance, s.EvacuatePoweredOff, s.MaintenanceTimeoutSeconds = enter, false, 0
		if enter {
			s.MaintenanceTimeoutSeconds = int(o.timeout / time.Second)
		}
		obj.SetSpec(s)
		return nil
	})
	return err
}

// waitSettings waits until the HA process of every host the drill fails
// has read the cluster's HA settings since they last changed (it rereads
// them every few seconds), so the isolation response measured is the one
// configured.
func (o *drillOptions) waitSettings(ctx context.Context, inj Injector, changed time.Time) error {
	hr, ok := inj.(HeartbeatReader)
	if !ok {
		return nil
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		hbs, err := hr.Heartbeats(ctx)
		stale := ""
		for _, h := range o.hosts {
			if hb, ok := hbs[h]; err != nil || !ok || hb.ConfigRead.Before(changed) {
				stale = h
				break
			}
		}
		if stale == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ha.drill: the HA process (podsphere fdm) of %s has not read the cluster's HA settings since they changed at %s: is it running? (podsphere lab status): %w",
				stale, timeString(changed, o.env.Location), api.ErrUnavailable)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// hostResponse records when a failed host's heartbeat first says it is
// isolated, and the response it applied.
func (o *drillOptions) hostResponse(ctx context.Context, hr HeartbeatReader, run *drillRun) {
	run.mu.Lock()
	done, injected := run.in.HostResponse != "", run.in.Injected
	run.mu.Unlock()
	if done || injected.IsZero() {
		return
	}
	hbs, err := hr.Heartbeats(ctx)
	if err != nil {
		return
	}
	for _, h := range o.hosts {
		hb, ok := hbs[h]
		if !ok || !hb.Isolated || hb.IsolatedSince.Before(injected) {
			continue
		}
		resp := hb.Response
		if resp == "" {
			resp = "disabled"
		}
		run.mu.Lock()
		run.in.HostResponse, run.in.HostResponseAt = fmt.Sprintf("%s isolated itself, response %s", h, resp), hb.IsolatedSince
		run.mu.Unlock()
		return
	}
}

// haMessage is what HA says of a VM (its attempts, why it is not back),
// else what its host says.
func haMessage(st api.VMStatus) string {
	switch h := st.HA; {
	case h != nil && h.GaveUp:
		return fmt.Sprintf("HA gave up after %d attempts: %s", h.Attempts, h.LastError)
	case h != nil && h.LastError != "":
		return fmt.Sprintf("HA attempt %d failed: %s", h.Attempts, h.LastError)
	}
	return st.Message
}

// waitSamples waits until the sampler has recorded n rounds.
func (o *drillOptions) waitSamples(ctx context.Context, run *drillRun, n int) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		run.mu.Lock()
		got := len(run.in.Samples)
		run.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.interval):
		}
	}
	return fmt.Errorf("ha.drill: the hosts' runtimes could not be read directly (no sample in 10 s): %w", api.ErrUnavailable)
}

// waitRecovered waits until every protected VM is back (or, when nothing
// should move, for the drill's duration), within the timeout.
func (o *drillOptions) waitRecovered(ctx context.Context, run *drillRun) error {
	start := time.Now()
	hold := o.duration
	if run.in.KeepRunning && hold == 0 {
		hold = 15 * time.Second // past every lock lease and fence time: long enough to see nothing move
	}
	for {
		run.mu.Lock()
		rep := drill.Build(run.in)
		run.mu.Unlock()
		elapsed := time.Since(start)
		if elapsed >= hold && (run.in.KeepRunning || !rep.Recovered.IsZero()) {
			return nil
		}
		if elapsed >= o.timeout {
			return fmt.Errorf("not every protected VM was back within -timeout %s", o.timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.interval):
		}
	}
}

// waitConnected samples on until the healed hosts are connected again,
// then 2 s more (a returning host is where a duplicate would appear).
func (o *drillOptions) waitConnected(ctx context.Context, c API, cluster string, run *drillRun) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		hs, err := c.List(ctx, client.ListOptions{Kind: api.KindHost, Prefix: cluster})
		if err == nil && allConnected(hs.Items, o.hosts) {
			break
		}
		time.Sleep(o.interval)
	}
	time.Sleep(2 * time.Second)
}

func allConnected(hosts []*api.Object, names []string) bool {
	for _, h := range hosts {
		var st api.HostStatus
		_ = h.DecodeStatus(&st)
		if slices.Contains(names, h.Name()) && st.State != api.HostConnected {
			return false
		}
	}
	return true
}

func capacityOf(hosts []*api.Object) api.DrillCapacity {
	var c api.DrillCapacity
	for _, h := range hosts {
		var st api.HostStatus
		_ = h.DecodeStatus(&st)
		if st.State != api.HostConnected {
			continue
		}
		c.Hosts++
		c.CPUMHz += st.CPUCapacity
		c.MemMB += st.MemCapacity
	}
	return c
}

// failoverOf words the cluster's HA failover capacity as cluster.info does.
func failoverOf(ctx context.Context, c API, cluster string) string {
	hc, err := c.HACapacity(ctx, cluster)
	if err != nil {
		return ""
	}
	if hc.Policy == "slot" {
		return fmt.Sprintf("%d of %d usable slots free (%d tolerated host failure(s))", hc.FreeSlots, hc.UsableSlots, hc.HostFailuresTolerated)
	}
	return fmt.Sprintf("current CPU %.0f%% / memory %.0f%%, configured %.0f%% / %.0f%% (%d tolerated host failure(s))",
		hc.CPU.CurrentPercent, hc.Mem.CurrentPercent, hc.CPU.FailoverPercent, hc.Mem.FailoverPercent, hc.HostFailuresTolerated)
}
