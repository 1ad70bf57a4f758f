package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// vmMigrateOptions runs `psc vm.migrate [-host H] VM...`: a cold
// migration, as govc's vm.migrate with -host (podsphere has no vMotion).
type vmMigrateOptions struct {
	env      *Env
	host     string
	pool, ds string
	net      string
	priority string
	wait     time.Duration
	vms      []string
}

func newVMMigrateCommand(env *Env) *cobra.Command {
	o := &vmMigrateOptions{env: env}
	cmd := &cobra.Command{
		Use:   "vm.migrate [-host HOST] [-wait 5m] VM...",
		Short: "Cold-migrate VMs to a host (stopped where they run, then started on HOST; same identity); without -host DRS chooses",
		Example: `  psc vm.migrate -host esx-02 db
  psc vm.migrate -wait 0 'web-*'`,
		Args: minArgs(1, "at least one VM"),
		RunE: runE(o),
	}
	f := cmd.Flags()
	f.StringVar(&o.host, "host", "", "destination host (default: DRS chooses among the cluster's other hosts)")
	f.StringVar(&o.pool, "pool", "", "not supported: a VM keeps its resource pool (change it with vm.change's spec or psc apply)")
	f.StringVar(&o.ds, "ds", "", "not supported: podsphere has no datastores to move a VM between")
	f.StringVar(&o.net, "net", "", "not supported: a VM's network is its host's pod subnet")
	f.StringVar(&o.priority, "priority", "defaultPriority", "accepted for govc compatibility: cold migrations have no priority")
	f.DurationVar(&o.wait, "wait", 5*time.Minute, "how long to wait for a powered-on VM to run on its new host (0: return once the migration is admitted)")
	return cmd
}

func (o *vmMigrateOptions) Complete(_ *cobra.Command, args []string) error {
	o.vms = args
	return nil
}

func (o *vmMigrateOptions) Validate() error {
	switch {
	case o.pool != "":
		return usagef("vm.migrate -pool: not supported: a VM keeps its resource pool when it moves between hosts; change spec.pool instead")
	case o.ds != "":
		return usagef("vm.migrate -ds: not supported: podsphere has no datastores (a VM's storage is its images and volumes)")
	case o.net != "":
		return usagef("vm.migrate -net: not supported: a VM's network is the pod subnet of the host it runs on")
	}
	if o.wait < 0 {
		return usagef("vm.migrate -wait %s is negative", o.wait)
	}
	switch o.priority {
	case "defaultPriority", "highPriority", "lowPriority":
	default:
		return usagef("vm.migrate -priority %q: want defaultPriority, highPriority or lowPriority", o.priority)
	}
	return nil
}

func (o *vmMigrateOptions) Run(ctx context.Context) error {
	r, paths, err := o.env.resolvePaths(ctx, api.KindVirtualMachine, o.vms)
	if err != nil {
		return err
	}
	host := ""
	if o.host != "" {
		if host, err = r.Path(ctx, api.KindHost, o.host); err != nil {
			return err
		}
	}
	for _, p := range paths {
		fmt.Fprintf(o.env.Out, "Migrating %s... ", p)
		out, err := r.API.Migrate(ctx, p, host)
		if err != nil {
			fmt.Fprintln(o.env.Out, "failed")
			return err
		}
		m := vmSpec(out).Migration
		if m == nil || o.wait == 0 {
			if m != nil {
				fmt.Fprintf(o.env.Out, "admitted (stopping on %s, then starting on %s)\n", api.Base(vmSpec(out).Host), api.Base(m.Host))
				continue
			}
			fmt.Fprintf(o.env.Out, "OK (host %s)\n", api.Base(vmHost(out)))
			continue
		}
		if err := o.follow(ctx, r.API, p, vmSpec(out).Host, m); err != nil {
			return err
		}
	}
	return nil
}

// follow shows a powered-on VM's cold migration step by step until it
// runs on its new host, or says why it did not get there: stopping on
// its host, starting on the destination.
func (o *vmMigrateOptions) follow(ctx context.Context, c API, p, from string, m *api.VMMigration) error {
	fmt.Fprintf(o.env.Out, "stopping on %s... ", api.Base(from))
	starting := false
	var last *api.Object
	_, err := waitFor(ctx, c, p, o.wait, func(vm *api.Object) bool {
		last = vm
		spec, st := vmSpec(vm), vmStatus(vm)
		if spec.Migration != nil && spec.Migration.ID == m.ID {
			return false
		}
		if spec.Host != m.Host {
			return true // abandoned: said below
		}
		if !starting {
			starting = true
			fmt.Fprintf(o.env.Out, "starting on %s... ", api.Base(m.Host))
		}
		return st.Host == m.Host && st.PowerState == api.PoweredOn
	})
	if err != nil {
		fmt.Fprintln(o.env.Out, "failed")
		why := ""
		if last != nil {
			if msg := vmStatus(last).Message; msg != "" {
				why = " (" + msg + ")"
			}
		}
		return fmt.Errorf("%s did not run on %s%s: %w", p, api.Base(m.Host), why, err)
	}
	if spec := vmSpec(last); spec.Host != m.Host {
		fmt.Fprintln(o.env.Out, "failed")
		return fmt.Errorf("the migration of %s to %s was abandoned: it is registered on %s, %s (psc events %s says why): %w",
			p, api.Base(m.Host), api.Base(spec.Host), spec.PowerState, api.Base(p), api.ErrConflict)
	}
	fmt.Fprintf(o.env.Out, "OK (host %s)\n", api.Base(m.Host))
	return nil
}
