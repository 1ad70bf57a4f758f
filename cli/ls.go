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
	typ   string
	kind  string
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
	cmd.Flags().StringVarP(&o.typ, "t", "t", "", "only objects of this type (d c h p m f rs deploy ds job hpa, or datacenter cluster host pool vm folder replicaset deployment daemonset)")
	o.sel.register(cmd)
	return cmd
}

func (o *lsOptions) Complete(_ *cobra.Command, args []string) error {
	o.paths = args
	return nil
}

func (o *lsOptions) Validate() (err error) {
	if o.kind, err = parseType(o.typ); err != nil {
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
	if o.kind != "" {
		var keep []*api.Object
		for _, l := range listed {
			if l.Kind == o.kind {
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

// findOptions runs `psc find [ROOT] [-type T] [-name PATTERN] [-selector SEL]`.
type findOptions struct {
	env  *Env
	typ  string
	kind string
	name string
	sel  selectorFlag
	root string
}

func newFindCommand(env *Env) *cobra.Command {
	o := &findOptions{env: env}
	cmd := &cobra.Command{
		Use:   "find [ROOT] [-type T] [-name PATTERN] [-selector SEL]",
		Short: "Find inventory objects below ROOT (default /) by type, name and labels",
		Example: `  psc find -type m -name 'web-*'
  psc find /dc1/host/c1 -type p
  psc find -type m -selector 'env in (prod,qa),tier!=db'`,
		Args: maxArgs(1, "one ROOT"),
		RunE: runE(o),
	}
	cmd.Flags().StringVar(&o.typ, "type", "", "object type (d c h p m f rs deploy ds job hpa)")
	cmd.Flags().StringVar(&o.name, "name", "*", "name pattern (path.Match syntax)")
	o.sel.register(cmd)
	return cmd
}

func (o *findOptions) Complete(_ *cobra.Command, args []string) error {
	if len(args) == 1 {
		o.root = args[0]
	}
	return nil
}

func (o *findOptions) Validate() (err error) {
	if _, err := path.Match(o.name, ""); err != nil {
		return usagef("bad -name pattern %q: %v", o.name, err)
	}
	if o.kind, err = parseType(o.typ); err != nil {
		return err
	}
	return o.sel.parse()
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
	var found []*api.Object
	for _, obj := range inv.objects(o.kind, root) {
		if ok, _ := path.Match(o.name, obj.Name()); ok {
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
