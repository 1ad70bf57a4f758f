package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/spf13/cobra"
)

// haPlanOptions runs `psc ha.plan -fail HOST[,HOST...] [CLUSTER]`.
type haPlanOptions struct {
	env     *Env
	fail    string
	cluster string
}

func newHAPlanCommand(env *Env) *cobra.Command {
	o := &haPlanOptions{env: env}
	cmd := &cobra.Command{
		Use:   "ha.plan -fail HOST[,HOST...] [CLUSTER]",
		Short: "Show what HA would do if hosts failed now: which VMs restart where, in what order, and which cannot and why (nothing is touched)",
		Example: `  psc ha.plan -fail esx-02
  psc ha.plan -fail esx-02,esx-03 -json c1`,
		Args: maxArgs(1, "at most one CLUSTER"),
		RunE: runE(o),
	}
	cmd.Flags().StringVar(&o.fail, "fail", "", "the hosts to fail, comma-separated")
	return cmd
}

func (o *haPlanOptions) Complete(_ *cobra.Command, args []string) error {
	o.cluster = o.env.Cluster
	if len(args) == 1 {
		o.cluster = args[0]
	}
	return nil
}

func (o *haPlanOptions) Validate() error {
	if strings.TrimSpace(o.fail) == "" {
		return usagef("ha.plan: give the hosts to fail with -fail HOST[,HOST...]")
	}
	if o.cluster == "" {
		return usagef("ha.plan: name the CLUSTER (or set PSC_CLUSTER)")
	}
	return nil
}

func (o *haPlanOptions) Run(ctx context.Context) error {
	r, p, err := o.env.resolvePath(ctx, api.KindCluster, o.cluster)
	if err != nil {
		return err
	}
	plan, err := r.API.HAPlan(ctx, p, strings.Split(o.fail, ","))
	if err != nil {
		return err
	}
	if o.env.JSON {
		return writeJSON(o.env.Out, plan)
	}
	w := o.env.Out
	fmt.Fprintf(w, "If %s failed now, HA would restart %d VM(s):\n", strings.Join(plan.Failed, ", "), len(plan.Steps))
	rows := make([][]string, 0, len(plan.Steps))
	for _, s := range plan.Steps {
		rows = append(rows, []string{strconv.Itoa(s.Round), s.VM, s.Priority, s.From, s.To})
	}
	if err := writeTable(w, []string{"Round", "VM", "Priority", "From", "To"}, rows); err != nil {
		return err
	}
	if len(plan.NotRestarted) > 0 {
		fmt.Fprintf(w, "Not restarted:\n")
		for _, n := range plan.NotRestarted {
			fmt.Fprintf(w, "  %s: %s\n", n.VM, n.Reason)
		}
	}
	if len(plan.Unprotected) > 0 {
		fmt.Fprintf(w, "Left down (restart priority disabled): %s\n", strings.Join(plan.Unprotected, ", "))
	}
	return nil
}
