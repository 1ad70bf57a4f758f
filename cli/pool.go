package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// poolCreateOptions runs `psc pool.create POOL...`.
type poolCreateOptions struct {
	env   *Env
	alloc allocFlags
	pools []string
}

func newPoolCreateCommand(env *Env) *cobra.Command {
	o := &poolCreateOptions{env: env}
	cmd := &cobra.Command{
		Use:   "pool.create POOL...",
		Short: "Create resource pools",
		Long: "Create resource pools. POOL is an inventory path, a path relative to the datacenter's\n" +
			"host folder (c1/Resources/dev) or a name under the cluster's root pool (dev, dev/web).",
		Example: `  psc pool.create -cpu.reservation=6000 -cpu.expandable=false -mem.limit=-1 dev
  psc pool.create c1/Resources/dev/web /dc1/host/c1/Resources/test`,
		Args: minArgs(1, "at least one POOL"),
		RunE: runE(o),
	}
	o.alloc.register(cmd.Flags(), true, true)
	return cmd
}

func (o *poolCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.pools = args
	return nil
}

func (o *poolCreateOptions) Validate() error {
	var s api.PoolSpec
	return o.alloc.apply(&s.CPU, &s.Mem, true)
}

func (o *poolCreateOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	for _, name := range o.pools {
		p, err := r.Path(ctx, api.KindResourcePool, name)
		if err != nil {
			return err
		}
		var s api.PoolSpec
		if err := o.alloc.apply(&s.CPU, &s.Mem, true); err != nil {
			return err
		}
		if _, err := r.API.Create(ctx, api.New(api.KindResourcePool, p, s)); err != nil {
			return err
		}
		fmt.Fprintf(o.env.Out, "Created pool %s\n", p)
	}
	return nil
}

// poolChangeOptions runs `psc pool.change POOL...`: only the flags given change.
type poolChangeOptions struct {
	env   *Env
	alloc allocFlags
	name  string
	pools []string
}

func newPoolChangeCommand(env *Env) *cobra.Command {
	o := &poolChangeOptions{env: env}
	cmd := &cobra.Command{
		Use:     "pool.change POOL...",
		Short:   "Change resource pools' allocation (unset flags stay as they are)",
		Example: `  psc pool.change -cpu.reservation=8000 -mem.shares=high dev`,
		Args:    minArgs(1, "at least one POOL"),
		RunE:    runE(o),
	}
	o.alloc.register(cmd.Flags(), false, true)
	cmd.Flags().StringVar(&o.name, "name", "", "new name (not supported yet)")
	return cmd
}

func (o *poolChangeOptions) Complete(_ *cobra.Command, args []string) error {
	o.pools = args
	return nil
}

func (o *poolChangeOptions) Validate() error {
	if o.name != "" {
		return usagef("pool.change -name: renaming a pool is not supported yet (a pool's path is its identity); create the new pool, move the VMs and destroy the old one")
	}
	if !o.alloc.anySet() {
		return usagef("pool.change: nothing to change (give -cpu.* or -mem.* flags)")
	}
	return nil
}

func (o *poolChangeOptions) Run(ctx context.Context) error {
	r, paths, err := o.env.resolvePaths(ctx, api.KindResourcePool, o.pools)
	if err != nil {
		return err
	}
	for _, p := range paths {
		_, err := modify(ctx, r.API, p, func(obj *api.Object) error {
			var s api.PoolSpec
			if err := obj.DecodeSpec(&s); err != nil {
				return fmt.Errorf("pool %s: %w", p, err)
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
		fmt.Fprintf(o.env.Out, "Reconfigured pool %s\n", p)
	}
	return nil
}

// poolInfoOptions runs `psc pool.info POOL...`.
type poolInfoOptions struct {
	env   *Env
	pools []string
}

func newPoolInfoCommand(env *Env) *cobra.Command {
	o := &poolInfoOptions{env: env}
	return &cobra.Command{
		Use:   "pool.info POOL...",
		Short: "Show resource pools' allocation and usage as govc does",
		Example: `  psc pool.info dev
  psc pool.info '*/Resources/*'`,
		Args: minArgs(1, "at least one POOL"),
		RunE: runE(o),
	}
}

func (o *poolInfoOptions) Complete(_ *cobra.Command, args []string) error {
	o.pools = args
	return nil
}

func (o *poolInfoOptions) Validate() error { return nil }

func (o *poolInfoOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	args := make([]string, len(o.pools))
	for i, a := range o.pools {
		args[i] = rootPoolOf(ctx, r, a)
	}
	r, paths, err := o.env.resolvePaths(ctx, api.KindResourcePool, args)
	if err != nil {
		return err
	}
	infos := make([]*api.PoolInfo, 0, len(paths))
	for _, p := range paths {
		pi, err := r.API.Pool(ctx, p)
		if err != nil {
			return err
		}
		if pi.Pool == nil {
			pi.Pool = &api.Object{Meta: api.Meta{Kind: api.KindResourcePool, Path: p}}
		}
		infos = append(infos, pi)
	}
	if o.env.JSON {
		return writeJSON(o.env.Out, infos)
	}
	for _, pi := range infos {
		if err := writePoolInfo(o.env.Out, pi); err != nil {
			return err
		}
	}
	return nil
}

// rootPoolOf is arg, or the root pool of the cluster arg names when it names
// a cluster and no pool of that name exists: govc's pool.info CLUSTER shows
// the cluster's root pool.
func rootPoolOf(ctx context.Context, r *Resolver, arg string) string {
	if strings.ContainsAny(arg, "*?[") {
		return arg
	}
	if p, err := r.Path(ctx, api.KindResourcePool, arg); err == nil {
		if _, err := r.API.Get(ctx, p); err == nil {
			return arg
		}
	}
	cp := arg
	if ref, err := api.ParsePath(arg); err != nil || ref.Kind != api.KindCluster {
		p, err := r.Path(ctx, api.KindCluster, arg)
		if err != nil {
			return arg
		}
		cp = p
	}
	if o, err := r.API.Get(ctx, cp); err == nil && o.Kind == api.KindCluster {
		return cp + "/" + api.RootPoolName
	}
	return arg
}

// writePoolInfo prints one pool in govc's pool.info layout. Usage is shown
// as a share of maxUsage (what the pool may use under its own and its
// ancestors' limits); when maxUsage is unknown (<= 0) as a share of the
// reservation.
func writePoolInfo(w io.Writer, pi *api.PoolInfo) error {
	var spec api.PoolSpec
	_ = pi.Pool.DecodeSpec(&spec)
	b := &block{name: pi.Pool.Name()}
	b.add("Path", "%s", pi.Pool.Path)
	res := func(label, u string, use api.PoolUsage, shares api.Shares) {
		f := func(v int64) string { return unit(v, u) }
		whole := use.MaxUsage
		if whole <= 0 {
			whole = use.Reservation
		}
		b.add(label+" Usage", "%s (%s)", f(use.OverallUsage), percent(use.OverallUsage, whole))
		b.add(label+" Shares", "%s", sharesString(shares))
		b.add(label+" Reservation", "%s (expandable=%t)", f(use.Reservation), use.Expandable)
		b.add(label+" Limit", "%s", f(use.Limit))
		b.add(label+" Unreserved", "%s for pools, %s for VMs", f(use.UnreservedForPool), f(use.UnreservedForVm))
	}
	res("CPU", "MHz", pi.CPU, spec.CPU.Shares)
	res("Mem", "MB", pi.Mem, spec.Mem.Shares)
	return b.write(w)
}

// poolDestroyOptions runs `psc pool.destroy [-children] POOL...`.
type poolDestroyOptions struct {
	env      *Env
	children bool
	pools    []string
}

func newPoolDestroyCommand(env *Env) *cobra.Command {
	o := &poolDestroyOptions{env: env}
	cmd := &cobra.Command{
		Use:   "pool.destroy [-children] POOL...",
		Short: "Destroy resource pools; their VMs move to the parent (-children destroys only the child pools, as govc)",
		Example: `  psc pool.destroy dev
  psc pool.destroy -children '*/Resources/test'`,
		Args: minArgs(1, "at least one POOL"),
		RunE: runE(o),
	}
	cmd.Flags().BoolVar(&o.children, "children", false, "destroy only the pool's child pools (their VMs move to the pool), keeping the pool")
	return cmd
}

func (o *poolDestroyOptions) Complete(_ *cobra.Command, args []string) error {
	o.pools = args
	return nil
}

func (o *poolDestroyOptions) Validate() error { return nil }

func (o *poolDestroyOptions) Run(ctx context.Context) error {
	r, paths, err := o.env.resolvePaths(ctx, api.KindResourcePool, o.pools)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if o.children {
			if err := o.destroyChildren(ctx, r.API, p); err != nil {
				return err
			}
			continue
		}
		if ref, _ := api.ParsePath(p); len(ref.Pools) == 0 {
			return usagef("%s is a cluster's root pool; it goes away with the cluster (pool.destroy -children destroys its child pools)", p)
		}
		if err := r.API.Delete(ctx, p, client.DeleteOptions{}); err != nil {
			return err
		}
		fmt.Fprintf(o.env.Out, "Destroyed pool %s\n", p)
	}
	return nil
}

// destroyChildren is govc's pool.destroy -children (vSphere's
// DestroyChildren): every child pool of p goes, with its own children, and
// their VMs move to p, which stays. The root pool may be given.
func (o *poolDestroyOptions) destroyChildren(ctx context.Context, c API, p string) error {
	list, err := c.List(ctx, client.ListOptions{Kind: api.KindResourcePool, Prefix: p + "/"})
	if err != nil {
		return err
	}
	var direct []string
	for _, it := range list.Items {
		if api.Parent(it.Path) == p {
			direct = append(direct, it.Path)
		}
	}
	slices.Sort(direct)
	for _, child := range direct {
		if err := c.Delete(ctx, child, client.DeleteOptions{Children: true}); err != nil {
			return fmt.Errorf("destroying the child pools of %s: %w", p, err)
		}
		fmt.Fprintf(o.env.Out, "Destroyed pool %s\n", child)
	}
	if len(direct) == 0 {
		fmt.Fprintf(o.env.Out, "Pool %s has no child pools\n", p)
	}
	return nil
}
