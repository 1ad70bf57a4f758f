package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// defaultCommand keeps a busybox VM running (busybox's own default, sh, exits at once).
const defaultCommand = "httpd -f -p 80"

var restartPolicies = []string{"Always", "OnFailure", "Never"}

// vmCreateOptions runs `psc vm.create NAME`.
type vmCreateOptions struct {
	env           *Env
	tmpl          templateFlags
	pool, host    string
	on            bool
	restartPolicy string
	name          string

	spec api.VMSpec
}

func newVMCreateCommand(env *Env) *cobra.Command {
	o := &vmCreateOptions{env: env}
	cmd := &cobra.Command{
		Use:   "vm.create NAME",
		Short: "Create a VM (one container) in a pool, powered on unless -on=false",
		Example: `  psc vm.create -c 2 -m 2048 -pool dev -cpu.reservation 1000 web-01
  psc vm.create -image nginx -cmd '' -port 80 -e MODE=prod -on=false web-02
  psc vm.create -host esx-02 -pool dev/web web-03
  psc vm.create -namespace team api-01   # /dc1/vm/team/api-01 in pool Resources/team`,
		Args: exactArgs(1, "one NAME"),
		RunE: runE(o),
	}
	f := cmd.Flags()
	o.tmpl.register(f)
	f.StringVar(&o.pool, "pool", "", "resource pool (default: the namespace's pool, the cluster's root pool for the default namespace)")
	f.StringVar(&o.host, "host", "", "pin the VM to this host (default: DRS places it)")
	f.BoolVar(&o.on, "on", true, "power on after creating")
	f.StringVar(&o.restartPolicy, "restart-policy", "Always", "container restart policy: "+strings.Join(restartPolicies, ", "))
	return cmd
}

func (o *vmCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.name = args[0]
	return nil
}

func (o *vmCreateOptions) Validate() (err error) {
	if err := createName("vm.create", o.name); err != nil {
		return err
	}
	if !slices.Contains(restartPolicies, o.restartPolicy) {
		return usagef("-restart-policy %q: want one of %s", o.restartPolicy, strings.Join(restartPolicies, ", "))
	}
	o.spec, err = o.tmpl.spec(o.restartPolicy)
	return err
}

func (o *vmCreateOptions) Run(ctx context.Context) error {
	r, p, err := o.env.resolvePath(ctx, api.KindVirtualMachine, o.name)
	if err != nil {
		return err
	}
	if o.spec.Pool, err = namespacePool(ctx, r, p, o.pool); err != nil {
		return err
	}
	if o.host != "" {
		if o.spec.Host, err = r.Path(ctx, api.KindHost, o.host); err != nil {
			return err
		}
		o.spec.Pinned = true // -host pins: DRS never places it elsewhere
	}
	if _, err := r.API.Create(ctx, api.New(api.KindVirtualMachine, p, o.spec)); err != nil {
		return err
	}
	fmt.Fprintf(o.env.Out, "Created VM %s in pool %s\n", p, o.spec.Pool)
	if !o.on {
		return nil
	}
	return powerVM(ctx, r.API, o.env.Out, p, "on")
}

// powerVerbs are what vm.power says while it works, by action.
var powerVerbs = map[string]string{
	"on": "Powering on", "off": "Powering off", "reset": "Resetting", "suspend": "Suspending",
	"shutdown": "Shutting down guest", "reboot": "Rebooting guest",
}

// powerVM runs one power operation and reports it as govc does; a refusal
// comes back with vcenter's reason verbatim.
func powerVM(ctx context.Context, c API, w io.Writer, p, action string) error {
	fmt.Fprintf(w, "%s %s... ", powerVerbs[action], p)
	out, err := c.Power(ctx, p, action)
	if err != nil {
		fmt.Fprintln(w, "failed")
		return err
	}
	where := ""
	// The host DRS placed it on is spec.host; status.host may still be the
	// host it last ran on until the new one reports.
	h := vmSpec(out).Host
	if h == "" {
		h = vmStatus(out).Host
	}
	if action == "on" && h != "" {
		where = " (host " + api.Base(h) + ")"
	}
	fmt.Fprintf(w, "OK%s\n", where)
	return nil
}

// vmChangeOptions runs `psc vm.change VM...`.
type vmChangeOptions struct {
	env   *Env
	cmd   *cobra.Command
	cpus  int
	memMB int64
	alloc allocFlags
	vms   []string
}

func newVMChangeCommand(env *Env) *cobra.Command {
	o := &vmChangeOptions{env: env}
	cmd := &cobra.Command{
		Use:     "vm.change VM...",
		Short:   "Change VMs' size and resource allocation (unset flags stay as they are)",
		Example: `  psc vm.change -c 2 -m 4096 -cpu.reservation 2000 web-01`,
		Args:    minArgs(1, "at least one VM"),
		RunE:    runE(o),
	}
	cmd.Flags().IntVarP(&o.cpus, "c", "c", 0, "number of vCPUs")
	cmd.Flags().Int64VarP(&o.memMB, "m", "m", 0, "memory in MB")
	o.alloc.register(cmd.Flags(), false, false)
	o.cmd = cmd
	return cmd
}

func (o *vmChangeOptions) Complete(_ *cobra.Command, args []string) error {
	o.vms = args
	return nil
}

func (o *vmChangeOptions) Validate() error {
	f := o.cmd.Flags()
	if !f.Changed("c") && !f.Changed("m") && !o.alloc.anySet() {
		return usagef("vm.change: nothing to change (give -c, -m, -cpu.* or -mem.*)")
	}
	if f.Changed("c") && o.cpus < 1 {
		return usagef("-c %d: a VM needs at least one vCPU", o.cpus)
	}
	if f.Changed("m") && o.memMB < 1 {
		return usagef("-m %d: a VM needs memory (MB)", o.memMB)
	}
	return nil
}

func (o *vmChangeOptions) Run(ctx context.Context) error {
	r, paths, err := o.env.resolvePaths(ctx, api.KindVirtualMachine, o.vms)
	if err != nil {
		return err
	}
	f := o.cmd.Flags()
	for _, p := range paths {
		out, err := modify(ctx, r.API, p, func(obj *api.Object) error {
			s := vmSpec(obj)
			if f.Changed("c") {
				s.NumCPU = o.cpus
			}
			if f.Changed("m") {
				s.MemoryMB = o.memMB
			}
			if err := o.alloc.apply(&s.CPU, &s.Mem, false); err != nil {
				return err
			}
			obj.SetSpec(s)
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(o.env.Out, "Reconfigured VM %s%s\n", p, o.said(vmSpec(out)))
	}
	return nil
}

// said is what vm.change did, in govc's units: " live: cpu 2, memory
// 256MB, ..." for a running VM, whose host changes the limits of its cgroup
// without a restart (its boot time and restart count stay), or ": cpu 2, ..."
// for one that is not running, which boots with them.
func (o *vmChangeOptions) said(s api.VMSpec) string {
	f := o.cmd.Flags()
	parts := []string{fmt.Sprintf("cpu %d", s.NumCPU), fmt.Sprintf("memory %dMB", s.MemoryMB)}
	for _, a := range []struct {
		flag, what, unit string
		v                int64
	}{
		{"cpu.reservation", "cpu reservation", "MHz", s.CPU.Reservation},
		{"cpu.limit", "cpu limit", "MHz", s.CPU.Limit},
		{"mem.reservation", "memory reservation", "MB", s.Mem.Reservation},
		{"mem.limit", "memory limit", "MB", s.Mem.Limit},
	} {
		switch {
		case !f.Changed(a.flag):
		case a.v < 0:
			parts = append(parts, a.what+" unlimited")
		default:
			parts = append(parts, fmt.Sprintf("%s %d%s", a.what, a.v, a.unit))
		}
	}
	for _, sh := range []struct {
		flag, what string
		v          api.Shares
	}{{"cpu.shares", "cpu shares", s.CPU.Shares}, {"mem.shares", "memory shares", s.Mem.Shares}} {
		if f.Changed(sh.flag) {
			parts = append(parts, sh.what+" "+sharesString(sh.v))
		}
	}
	if s.PowerState == api.PoweredOn {
		return " live: " + strings.Join(parts, ", ")
	}
	return ": " + strings.Join(parts, ", ")
}

// vmPowerOptions runs `psc vm.power -on|-off|-reset|-suspend|-s|-r VM...`.
type vmPowerOptions struct {
	env                     *Env
	on, off, reset, suspend bool
	shutdown, reboot        bool
	force                   bool
	wait                    bool
	action                  string
	vms                     []string
}

func newVMPowerCommand(env *Env) *cobra.Command {
	o := &vmPowerOptions{env: env}
	cmd := &cobra.Command{
		Use:   "vm.power -on|-off|-reset|-suspend|-s|-r VM...",
		Short: "Change VMs' power state; a refused power-on says why",
		Example: `  psc vm.power -on web-01 web-02
  psc vm.power -s 'web-*'
  psc vm.power -off -force web-01`,
		Args: minArgs(1, "at least one VM"),
		RunE: runE(o),
	}
	f := cmd.Flags()
	f.BoolVar(&o.on, "on", false, "power on (runs pool admission, quota and DRS placement)")
	f.BoolVar(&o.off, "off", false, "power off")
	f.BoolVar(&o.reset, "reset", false, "reset (restart the containers)")
	f.BoolVar(&o.suspend, "suspend", false, "refused: podsphere cannot suspend a VM (power it off instead)")
	f.BoolVarP(&o.shutdown, "s", "s", false, "shut down the guest")
	f.BoolVarP(&o.reboot, "r", "r", false, "reboot the guest")
	f.BoolVar(&o.wait, "wait", true, "wait for the operation to complete (govc's; psc always waits, -wait=false is refused)")
	f.BoolVar(&o.force, "force", false, "as govc: -s and -r become a hard power-off and reset, and a VM in the wrong state for the action is skipped, not an error")
	return cmd
}

func (o *vmPowerOptions) Complete(_ *cobra.Command, args []string) error {
	o.vms = args
	return nil
}

func (o *vmPowerOptions) Validate() error {
	var set []string
	for _, a := range []struct {
		on     bool
		action string
	}{{o.on, "on"}, {o.off, "off"}, {o.reset, "reset"}, {o.suspend, "suspend"}, {o.shutdown, "shutdown"}, {o.reboot, "reboot"}} {
		if a.on {
			set = append(set, a.action)
		}
	}
	if len(set) != 1 {
		return usagef("vm.power: give exactly one of -on, -off, -reset, -suspend, -s, -r")
	}
	if !o.wait {
		return usagef("vm.power: -wait=false is not supported: psc returns once vcenter has recorded the change and placed the VM")
	}
	o.action = set[0]
	if o.force {
		// govc -force: hard shutdown / reboot instead of the guest's own.
		// A podsphere guest has no tools to ask, so the difference is
		// only in the verb vcenter records (PowerOffVM_Task, ResetVM_Task).
		switch o.action {
		case "shutdown":
			o.action = "off"
		case "reboot":
			o.action = "reset"
		}
	}
	return nil
}

func (o *vmPowerOptions) Run(ctx context.Context) error {
	r, paths, err := o.env.resolvePaths(ctx, api.KindVirtualMachine, o.vms)
	if err != nil {
		return err
	}
	for _, p := range paths {
		err := powerVM(ctx, r.API, o.env.Out, p, o.action)
		if err != nil && o.force && errors.Is(err, api.ErrConflict) {
			// govc -force ignores a state error (resetting a powered-off
			// VM) and goes on with the next VM; say so all the same.
			fmt.Fprintf(o.env.Err, "psc: %s: ignored (-force): %v\n", p, err)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// vmInfoOptions runs `psc vm.info [-r] VM...`.
type vmInfoOptions struct {
	env       *Env
	resources bool
	waitIP    bool
	vms       []string
}

func newVMInfoCommand(env *Env) *cobra.Command {
	o := &vmInfoOptions{env: env}
	cmd := &cobra.Command{
		Use:   "vm.info [-r] VM...",
		Short: "Show VMs: size, power state, readiness, host, pool, the workload that keeps them, IP, restarts",
		Example: `  psc vm.info web-01
  psc vm.info -r 'web-*'`,
		Args: minArgs(1, "at least one VM"),
		RunE: runE(o),
	}
	cmd.Flags().BoolVarP(&o.resources, "r", "r", false, "also show resource allocation (reservation, limit, shares)")
	cmd.Flags().BoolVar(&o.waitIP, "waitip", false, "wait until each VM has an IP address (up to "+waitIPTimeout.String()+", as govc's vm.ip)")
	return cmd
}

func (o *vmInfoOptions) Complete(_ *cobra.Command, args []string) error {
	o.vms = args
	return nil
}

func (o *vmInfoOptions) Validate() error { return nil }

func (o *vmInfoOptions) Run(ctx context.Context) error {
	r, paths, err := o.env.resolvePaths(ctx, api.KindVirtualMachine, o.vms)
	if err != nil {
		return err
	}
	objs := make([]*api.Object, 0, len(paths))
	for _, p := range paths {
		var vm *api.Object
		if o.waitIP {
			vm, err = waitFor(ctx, r.API, p, waitIPTimeout, func(vm *api.Object) bool { return vmStatus(vm).IP != "" })
			if err != nil {
				err = fmt.Errorf("IP address of %s: %w", p, err)
			}
		} else {
			vm, err = r.API.Get(ctx, p)
		}
		if err != nil {
			return err
		}
		objs = append(objs, vm)
	}
	if o.env.JSON {
		return writeJSON(o.env.Out, objs)
	}
	clusters := map[string]*api.ClusterSpec{}
	for _, vm := range objs {
		if err := writeVMInfo(o.env.Out, vm, ownerText(ctx, r.API, vm.Owner), clusterOf(ctx, r.API, vm, clusters), o.resources, o.env.Location); err != nil {
			return err
		}
	}
	return nil
}

// ownerText says which workload keeps a VM and, when that one is kept too
// (a Deployment's replica set), by whom: "/dc1/replicaset/web-5d8f (Deployment
// /dc1/deployment/web)". "" for a VM no workload keeps.
func ownerText(ctx context.Context, c API, owner string) string {
	if owner == "" {
		return ""
	}
	ref, err := api.ParsePath(owner)
	if err != nil {
		return owner
	}
	text := ref.Kind + " " + owner
	if o, err := c.Get(ctx, owner); err == nil && o.Owner != "" {
		if oref, err := api.ParsePath(o.Owner); err == nil {
			text += " (" + oref.Kind + " " + o.Owner + ")"
		}
	}
	return text
}

// writeVMInfo prints govc's vm.info block for one VM; owner is
// ownerText's, cs the spec of its cluster (nil: HA protection not shown).
func writeVMInfo(w io.Writer, vm *api.Object, owner string, cs *api.ClusterSpec, resources bool, loc *time.Location) error {
	s, st := vmSpec(vm), vmStatus(vm)
	b := &block{name: vm.Name()}
	b.add("Path", "%s", vm.Path)
	b.add("UUID", "%s", orDash(vm.UID))
	b.add("CPU", "%d vCPU(s)", s.NumCPU)
	b.add("Memory", "%dMB", s.MemoryMB)
	b.add("Power state", "%s", vmPowerState(vm))
	b.add("Boot time", "%s", timeString(st.BootTime, loc))
	b.add("IP address", "%s", orDash(st.IP))
	b.add("Host", "%s", orDash(vmHost(vm)))
	b.add("Pool", "%s", orDash(s.Pool))
	if owner != "" {
		b.add("Owner", "%s", owner)
	}
	if s.Removing {
		b.add("Removing", "true (its owner scaled it away: removed once its host reports it off)")
	}
	if m := s.Migration; m != nil {
		b.add("Migrating", "to %s (by %s, since %s): stopping on %s first", api.Base(m.Host), m.User, timeString(m.Started, loc), api.Base(s.Host))
	}
	b.add("Restarts", "%d", st.Restarts)
	if st.PowerState == api.PoweredOn {
		if st.Ready {
			b.add("Ready", "yes, since %s", timeString(st.ReadySince, loc))
		} else {
			b.add("Ready", "no")
		}
	}
	if st.Phase != "" {
		b.add("Phase", "%s", st.Phase)
	}
	if len(s.Containers) > 0 {
		c := s.Containers[0]
		b.add("Image", "%s", c.Image)
	}
	if st.Message != "" {
		b.add("Message", "%s", st.Message)
	}
	if st.PowerOnFailed != "" {
		b.add("Power-on failed", "%s (host %s)", st.PowerOnFailed, orDash(api.Base(st.Host)))
	}
	if cs != nil {
		b.add("HA protection", "%s", haProtection(cs, s))
	}
	writeHARecord(b, st.HA, loc)
	if resources {
		for _, res := range []struct {
			label string
			al    api.Allocation
			f     func(int64) string
		}{{"CPU", s.CPU, mhz}, {"Mem", s.Mem, mb}} {
			b.add(res.label+" Reservation", "%s", res.f(res.al.Reservation))
			b.add(res.label+" Limit", "%s", res.f(res.al.Limit))
			b.add(res.label+" Shares", "%s", sharesString(res.al.Shares))
		}
		if st.CPUUsageMHz > 0 || st.MemUsageMB > 0 { // measured by the host (cgroups)
			b.add("CPU Usage", "%s", mhz(st.CPUUsageMHz))
			b.add("Mem Usage", "%s", mb(st.MemUsageMB))
		}
	}
	return b.write(w)
}

// vmIPOptions runs `psc vm.ip [-wait 1m] VM...`.
type vmIPOptions struct {
	env  *Env
	wait time.Duration
	vms  []string
}

func newVMIPCommand(env *Env) *cobra.Command {
	o := &vmIPOptions{env: env}
	cmd := &cobra.Command{
		Use:     "vm.ip [-wait 1m] VM...",
		Short:   "Print VMs' IP addresses, waiting until they have one (none after -wait: nothing printed, exit 0, as govc)",
		Example: "  psc vm.ip -wait 30s web-01",
		Args:    minArgs(1, "at least one VM"),
		RunE:    runE(o),
	}
	cmd.Flags().DurationVar(&o.wait, "wait", time.Minute, "how long to wait for an IP address")
	return cmd
}

func (o *vmIPOptions) Complete(_ *cobra.Command, args []string) error {
	o.vms = args
	return nil
}

func (o *vmIPOptions) Validate() error {
	if o.wait < 0 {
		return usagef("-wait %s is negative", o.wait)
	}
	return nil
}

func (o *vmIPOptions) Run(ctx context.Context) error {
	r, paths, err := o.env.resolvePaths(ctx, api.KindVirtualMachine, o.vms)
	if err != nil {
		return err
	}
	type vmIP struct {
		Path string `json:"path"`
		IP   string `json:"ip"`
	}
	var ips []vmIP
	for _, p := range paths {
		vm, err := waitFor(ctx, r.API, p, o.wait, func(vm *api.Object) bool { return vmStatus(vm).IP != "" })
		if errors.Is(err, errTimeout) {
			// govc's meaning: no address yet is an answer, not a failure
			// (exit 0, nothing printed); stderr says why, for a person.
			fmt.Fprintf(o.env.Err, "psc: vm.ip: %s has no IP address after %s\n", p, o.wait)
			ips = append(ips, vmIP{Path: p})
			continue
		}
		if err != nil {
			return fmt.Errorf("IP address of %s: %w", p, err)
		}
		ips = append(ips, vmIP{Path: p, IP: vmStatus(vm).IP})
		if !o.env.JSON {
			fmt.Fprintln(o.env.Out, vmStatus(vm).IP)
		}
	}
	if o.env.JSON {
		return writeJSON(o.env.Out, ips)
	}
	return nil
}

// waitIPTimeout bounds vm.info -waitip; govc's vm.ip waits an hour too.
const waitIPTimeout = time.Hour

// errTimeout is a wait that ran out of time.
var errTimeout = errors.New("timed out")

// waitFor returns the object at p once done says so, watching it for up to
// timeout; like govc it lists first and watches from that revision, so no
// change in between is missed.
func waitFor(ctx context.Context, c API, p string, timeout time.Duration, done func(*api.Object) bool) (*api.Object, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ref, err := api.ParsePath(p)
	if err != nil {
		return nil, usageErr(err)
	}
	opts := client.ListOptions{Kind: ref.Kind, Prefix: p}
	for {
		l, err := c.List(ctx, opts)
		if err != nil {
			return nil, timeoutErr(ctx, timeout, err)
		}
		var cur *api.Object
		for _, o := range l.Items {
			if o.Path == p {
				cur = o
			}
		}
		if cur == nil {
			return nil, fmt.Errorf("%s: %w", p, api.ErrNotFound)
		}
		if done(cur) {
			return cur, nil
		}
		ch, wait, err := c.Watch(ctx, opts, l.Revision)
		if err != nil {
			return nil, timeoutErr(ctx, timeout, err)
		}
		for ev := range ch {
			if ev.Object == nil || ev.Object.Path != p {
				continue
			}
			if ev.Type == api.Deleted {
				cancel()
				return nil, fmt.Errorf("%s was deleted: %w", p, api.ErrNotFound)
			}
			if done(ev.Object) {
				cancel()
				return ev.Object, nil
			}
		}
		if err := wait(); err != nil && !errors.Is(err, client.ErrGone) {
			return nil, timeoutErr(ctx, timeout, err)
		}
		if ctx.Err() != nil {
			return nil, timeoutErr(ctx, timeout, ctx.Err())
		}
		// The stream ended or was compacted away: list again and resume.
	}
}

func timeoutErr(ctx context.Context, timeout time.Duration, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w after %s", errTimeout, timeout)
	}
	return err
}

// vmDestroyOptions runs `psc vm.destroy VM...`.
type vmDestroyOptions struct {
	env *Env
	vms []string
}

func newVMDestroyCommand(env *Env) *cobra.Command {
	o := &vmDestroyOptions{env: env}
	return &cobra.Command{
		Use:     "vm.destroy VM...",
		Short:   "Power off and destroy VMs",
		Example: "  psc vm.destroy web-01 'test-*'",
		Args:    minArgs(1, "at least one VM"),
		RunE:    runE(o),
	}
}

func (o *vmDestroyOptions) Complete(_ *cobra.Command, args []string) error {
	o.vms = args
	return nil
}

func (o *vmDestroyOptions) Validate() error { return nil }

func (o *vmDestroyOptions) Run(ctx context.Context) error {
	r, paths, err := o.env.resolvePaths(ctx, api.KindVirtualMachine, o.vms)
	if err != nil {
		return err
	}
	for _, p := range paths {
		vm, err := r.API.Get(ctx, p)
		if err != nil {
			return err
		}
		if vmSpec(vm).PowerState == api.PoweredOn {
			if err := powerVM(ctx, r.API, o.env.Out, p, "off"); err != nil {
				return err
			}
		}
		if err := r.API.Delete(ctx, p, client.DeleteOptions{}); err != nil {
			return err
		}
		fmt.Fprintf(o.env.Out, "Destroyed VM %s\n", p)
	}
	return nil
}

// splitCommand splits a command line into words, honouring single and
// double quotes and backslash escapes as a shell would (no expansion).
func splitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, c := range s {
		switch {
		case escaped:
			cur.WriteRune(c)
			escaped = false
		case c == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if escaped {
		return nil, fmt.Errorf("trailing backslash in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
