package cli

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// lsOptions runs `psc ls [-l] [-t TYPE] [-selector SEL] [PATH...]`.
type lsOptions struct {
	env   *Env
	long  bool
	types []string        // -t, repeatable as govc's
	kinds map[string]bool // what -t names; nil: every kind
	sel   selectorFlag
	paths []string
}

func newLsCommand(env *Env) *cobra.Command {
	o := &lsOptions{env: env}
	cmd := &cobra.Command{
		Use:   "ls [PATH...]",
		Short: "List inventory objects (the datacenter when no PATH is given)",
		Example: `  psc ls
  psc ls -l /dc1/host/c1
  psc ls -t m
  psc ls '*/Resources/*'
  psc ls -selector 'env in (prod,qa),!canary' /dc1/vm`,
		RunE: runE(o),
	}
	cmd.Flags().BoolVarP(&o.long, "l", "l", false, "long listing: kind and key figures")
	cmd.Flags().StringArrayVarP(&o.types, "t", "t", nil, "only objects of this type, repeatable (d c h p m f rs deploy ds job hpa, govc's type names such as ClusterComputeResource, or datacenter cluster host pool vm folder replicaset deployment daemonset)")
	o.sel.register(cmd)
	return cmd
}

func (o *lsOptions) Complete(_ *cobra.Command, args []string) error {
	o.paths = args
	return nil
}

func (o *lsOptions) Validate() (err error) {
	if o.kinds, err = parseTypes(o.types); err != nil {
		return err
	}
	return o.sel.parse()
}

func (o *lsOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	root := "/"
	if r.DC != "" {
		root = "/" + strings.Trim(r.DC, "/")
	}
	args := o.paths
	if len(args) == 0 {
		args = []string{""}
	}
	var listed []*api.Object
	var inv *inventory
	for _, a := range args {
		p, err := r.inventoryPath(ctx, a, root)
		if err != nil {
			return err
		}
		if inv == nil {
			// One snapshot serves every argument; it is taken from / so
			// that hosts can count VMs and pools can show theirs.
			if inv, err = loadInventory(ctx, r.API, "/"); err != nil {
				return err
			}
		}
		found, err := inv.lookup(p)
		if err != nil {
			return err
		}
		for _, f := range found {
			if hasGlob(p) {
				listed = append(listed, f) // a glob lists its matches themselves
				continue
			}
			kids := inv.children(f.Path)
			if len(kids) == 0 && f.Kind != api.KindResourcePool && f.Kind != KindFolder && f.Kind != api.KindDatacenter && f.Kind != api.KindCluster {
				kids = []*api.Object{f} // a leaf lists itself, as govc ls does
			}
			listed = append(listed, kids...)
		}
	}
	if o.kinds != nil {
		var keep []*api.Object
		for _, l := range listed {
			if o.kinds[l.Kind] {
				keep = append(keep, l)
			}
		}
		listed = keep
	}
	if listed, err = o.sel.keep(ctx, r.API, listed); err != nil {
		return err
	}
	if o.env.JSON {
		if listed == nil {
			listed = []*api.Object{}
		}
		return writeJSON(o.env.Out, listed)
	}
	if o.long {
		for _, l := range listed {
			if ref, err := api.ParsePath(l.Path); err == nil && l.Kind == api.KindResourcePool && len(ref.Pools) == 0 {
				pi, err := r.API.Pool(ctx, l.Path)
				if err != nil {
					return err
				}
				if inv.rootPools == nil {
					inv.rootPools = map[string]*api.PoolInfo{}
				}
				inv.rootPools[l.Path] = pi
			}
		}
		return writeLsLong(o.env.Out, inv, listed)
	}
	for _, l := range listed {
		if _, err := fmt.Fprintln(o.env.Out, l.Path); err != nil {
			return err
		}
	}
	return nil
}

// writeLsLong prints ls -l: path, kind and the figures that matter for it.
func writeLsLong(w io.Writer, inv *inventory, objs []*api.Object) error {
	rows := make([][]string, 0, len(objs))
	for _, o := range objs {
		rows = append(rows, []string{o.Path, o.Kind, summary(inv, o)})
	}
	return writeTable(w, []string{"Path", "Type", "Summary"}, rows)
}

// summary is the one-line state of an object in ls -l.
func summary(inv *inventory, o *api.Object) string {
	switch o.Kind {
	case api.KindDatacenter:
		return fmt.Sprintf("%d cluster(s), %d VM(s)",
			len(inv.objects(api.KindCluster, o.Path)), len(inv.objects(api.KindVirtualMachine, o.Path)))
	case api.KindCluster:
		var s api.ClusterSpec
		_ = o.DecodeSpec(&s)
		drs := "off"
		if s.DRS.Enabled {
			drs = orDash(s.DRS.Mode)
		}
		ha := "off"
		if s.HA.Enabled {
			ha = "on"
		}
		return fmt.Sprintf("%d host(s), DRS %s, HA %s", len(inv.objects(api.KindHost, o.Path)), drs, ha)
	case api.KindHost:
		var st api.HostStatus
		_ = o.DecodeStatus(&st)
		return fmt.Sprintf("%s, CPU %s, Mem %s, %d VM(s)", orDash(hostState(o)), mhz(st.CPUCapacity), mb(st.MemCapacity), len(inv.hostVMs(o.Path)))
	case api.KindResourcePool:
		var s api.PoolSpec
		_ = o.DecodeSpec(&s)
		q := ""
		if s.Quota != nil {
			q = ", quota"
		}
		cpu, mem := [2]int64{s.CPU.Reservation, s.CPU.Limit}, [2]int64{s.Mem.Reservation, s.Mem.Limit}
		if pi := inv.rootPools[o.Path]; pi != nil {
			cpu, mem = [2]int64{pi.CPU.Reservation, pi.CPU.Limit}, [2]int64{pi.Mem.Reservation, pi.Mem.Limit}
		}
		return fmt.Sprintf("CPU %s/%s, Mem %s/%s, %d VM(s)%s", mhz(cpu[0]), mhz(cpu[1]),
			mb(mem[0]), mb(mem[1]), len(inv.poolVMs(o.Path)), q)
	case api.KindVirtualMachine:
		s := vmSpec(o)
		h := vmHost(o)
		on := ""
		if h != "" {
			on = " on " + api.Base(h)
		}
		var st api.VMStatus
		_ = o.DecodeStatus(&st)
		ready := ""
		switch {
		case st.Phase != "":
			ready = ", " + strings.ToLower(st.Phase)
		case st.PowerState == api.PoweredOn && st.Ready:
			ready = ", ready"
		case st.PowerState == api.PoweredOn:
			ready = ", not ready"
		}
		return fmt.Sprintf("%s%s, %d vCPU, %dMB%s", vmPowerState(o), ready, s.NumCPU, s.MemoryMB, on)
	case KindFolder:
		if ref, err := api.ParsePath(o.Path); err == nil && ref.Namespace == "" && ref.Kind != "" && api.FolderOf(ref.Kind) != "" {
			return "namespace " + ref.Name // /DC/vm/NS parses as an object NS of the default namespace
		}
	}
	if wk := workloadKinds[o.Kind]; wk != nil {
		return wk.summary(o)
	}
	return ""
}

// hostState is the observed state, or maintenance requested when not yet reported.
func hostState(o *api.Object) string {
	var st api.HostStatus
	_ = o.DecodeStatus(&st)
	return st.State
}

// findOptions runs `psc find [ROOT] [-type T] [-name PATTERN] [-selector SEL]
// [-PROPERTY VALUE]...` with govc's property filters for the common
// properties.
type findOptions struct {
	env   *Env
	types []string        // -type, repeatable as govc's
	kinds map[string]bool // what -type names; nil: every kind
	name  string
	sel   selectorFlag
	root  string

	powerState string // -runtime.powerState: VMs in this power state
	onHost     string // -runtime.host: VMs running on this host
	inPool     string // -resourcePool: VMs of this pool
	hostState  string // -runtime.connectionState: hosts in this state
}

func newFindCommand(env *Env) *cobra.Command {
	o := &findOptions{env: env}
	cmd := &cobra.Command{
		Use:   "find [ROOT] [-type T] [-name PATTERN] [-selector SEL]",
		Short: "Find inventory objects below ROOT (default /) by type, name and labels",
		Example: `  psc find -type m -name 'web-*'
  psc find /dc1/host/c1 -type p
  psc find -type m -selector 'env in (prod,qa),tier!=db'
  psc find . -type m -runtime.powerState poweredOn
  psc find -type m -runtime.host esx-01 -resourcePool dev`,
		Args: maxArgs(1, "one ROOT"),
		RunE: runE(o),
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.types, "type", nil, "object type, repeatable: govc's letter or type name (m, VirtualMachine, ...) or d c h p m f rs deploy ds job hpa svc")
	f.StringVar(&o.name, "name", "*", "name pattern (path.Match syntax)")
	f.StringVar(&o.powerState, "runtime.powerState", "", "only VMs in this power state (poweredOn, poweredOff, suspended; a pattern)")
	f.StringVar(&o.onHost, "runtime.host", "", "only VMs running on this host (name or path)")
	f.StringVar(&o.inPool, "resourcePool", "", "only VMs of this resource pool (name or path)")
	f.StringVar(&o.hostState, "runtime.connectionState", "", "only hosts in this state (connected, notResponding, failed, isolated; a pattern)")
	o.sel.register(cmd)
	return cmd
}

func (o *findOptions) Complete(_ *cobra.Command, args []string) error {
	if len(args) == 1 && args[0] != "." { // govc's "." is the root (or the datacenter)
		o.root = args[0]
	}
	return nil
}

func (o *findOptions) Validate() (err error) {
	for _, p := range []struct{ flag, pattern string }{
		{"name", o.name}, {"runtime.powerState", o.powerState}, {"runtime.connectionState", o.hostState},
	} {
		if _, err := path.Match(p.pattern, ""); err != nil {
			return usagef("bad -%s pattern %q: %v", p.flag, p.pattern, err)
		}
	}
	if o.kinds, err = parseTypes(o.types); err != nil {
		return err
	}
	only := func(kind string) bool { return o.kinds == nil || len(o.kinds) == 1 && o.kinds[kind] }
	vmOnly := o.powerState != "" || o.onHost != "" || o.inPool != ""
	if vmOnly && !only(api.KindVirtualMachine) {
		return usagef("find: -runtime.powerState, -runtime.host and -resourcePool are VM properties; -type %s has none", strings.Join(o.types, ","))
	}
	if o.hostState != "" && (vmOnly || !only(api.KindHost)) {
		return usagef("find: -runtime.connectionState is a host property; it does not go with -type %s or VM properties", orDash(strings.Join(o.types, ",")))
	}
	return o.sel.parse()
}

// propertyFilter keeps the objects whose properties match find's
// -runtime.* / -resourcePool flags; objects without the property do not
// match, as in govc.
func (o *findOptions) propertyFilter(ctx context.Context, r *Resolver) (func(*api.Object) bool, error) {
	var host, pool string
	var err error
	if o.onHost != "" {
		if host, err = r.Path(ctx, api.KindHost, o.onHost); err != nil {
			return nil, err
		}
	}
	if o.inPool != "" {
		if pool, err = r.Path(ctx, api.KindResourcePool, o.inPool); err != nil {
			return nil, err
		}
	}
	match := func(pattern, v string) bool {
		ok, _ := path.Match(pattern, v)
		return pattern == "" || ok
	}
	return func(obj *api.Object) bool {
		switch {
		case o.powerState != "" || host != "" || pool != "":
			return obj.Kind == api.KindVirtualMachine && match(o.powerState, vmPowerState(obj)) &&
				(host == "" || vmHost(obj) == host) && (pool == "" || vmSpec(obj).Pool == pool)
		case o.hostState != "":
			return obj.Kind == api.KindHost && match(o.hostState, hostState(obj))
		}
		return true
	}, nil
}

func (o *findOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	root, err := r.inventoryPath(ctx, o.root, "/")
	if err != nil {
		return err
	}
	inv, err := loadInventory(ctx, r.API, "/")
	if err != nil {
		return err
	}
	if _, err := inv.lookup(root); err != nil {
		return err
	}
	props, err := o.propertyFilter(ctx, r)
	if err != nil {
		return err
	}
	var found []*api.Object
	for _, obj := range inv.objects("", root) {
		if o.kinds != nil && !o.kinds[obj.Kind] {
			continue
		}
		if ok, _ := path.Match(o.name, obj.Name()); ok && props(obj) {
			found = append(found, obj)
		}
	}
	if found, err = o.sel.keep(ctx, r.API, found); err != nil {
		return err
	}
	var paths []string
	for _, obj := range found {
		paths = append(paths, obj.Path)
	}
	if o.env.JSON {
		if paths == nil {
			paths = []string{}
		}
		return writeJSON(o.env.Out, paths)
	}
	for _, p := range paths {
		if _, err := fmt.Fprintln(o.env.Out, p); err != nil {
			return err
		}
	}
	return nil
}
