package cli

import (
	"context"
	"fmt"

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
	vms      []string
}

func newVMMigrateCommand(env *Env) *cobra.Command {
	o := &vmMigrateOptions{env: env}
	cmd := &cobra.Command{
		Use:   "vm.migrate [-host HOST] VM...",
		Short: "Cold-migrate VMs to a host (stopped there, started on HOST; same identity); without -host DRS chooses",
		Example: `  psc vm.migrate -host esx-02 db
  psc vm.migrate 'web-*'`,
		Args: minArgs(1, "at least one VM"),
		RunE: runE(o),
	}
	f := cmd.Flags()
	f.StringVar(&o.host, "host", "", "destination host (default: DRS chooses among the cluster's other hosts)")
	f.StringVar(&o.pool, "pool", "", "not supported: a VM keeps its resource pool (change it with vm.change's spec or psc apply)")
	f.StringVar(&o.ds, "ds", "", "not supported: podsphere has no datastores to move a VM between")
	f.StringVar(&o.net, "net", "", "not supported: a VM's network is its host's pod subnet")
	f.StringVar(&o.priority, "priority", "defaultPriority", "accepted for govc compatibility: cold migrations have no priority")
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
		fmt.Fprintf(o.env.Out, "OK (host %s)\n", api.Base(vmHost(out)))
	}
	return nil
}
