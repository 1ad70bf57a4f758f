package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// datacenterCreateOptions runs `psc datacenter.create NAME...`.
type datacenterCreateOptions struct {
	env   *Env
	names []string
}

func newDatacenterCreateCommand(env *Env) *cobra.Command {
	o := &datacenterCreateOptions{env: env}
	return &cobra.Command{
		Use:     "datacenter.create NAME...",
		Short:   "Create datacenters",
		Example: "  psc datacenter.create dc1",
		Args:    minArgs(1, "at least one NAME"),
		RunE:    runE(o),
	}
}

func (o *datacenterCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.names = args
	return nil
}

func (o *datacenterCreateOptions) Validate() error { return nil }

func (o *datacenterCreateOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	for _, n := range o.names {
		p, err := r.Path(ctx, api.KindDatacenter, n)
		if err != nil {
			return err
		}
		if _, err := r.API.Create(ctx, api.New(api.KindDatacenter, p, api.DatacenterSpec{})); err != nil {
			return err
		}
		fmt.Fprintf(o.env.Out, "Created datacenter %s\n", p)
	}
	return nil
}
