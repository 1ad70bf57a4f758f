package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

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

// clusterOf is the spec of the VM's cluster (by its pool), nil when it
// cannot be read; seen caches them by path.
func clusterOf(ctx context.Context, c API, vm *api.Object, seen map[string]*api.ClusterSpec) *api.ClusterSpec {
	ref, err := api.ParsePath(vmSpec(vm).Pool)
	if err != nil {
		return nil
	}
	p := ref.ClusterPath()
	if cs, ok := seen[p]; ok {
		return cs
	}
	var cs *api.ClusterSpec
	if o, err := c.Get(ctx, p); err == nil {
		cs = &api.ClusterSpec{}
		if o.DecodeSpec(cs) != nil {
			cs = nil
		}
	}
	seen[p] = cs
	return cs
}

// haProtection is vSphere's "vSphere HA Protection" of a VM in cluster cs.
func haProtection(cs *api.ClusterSpec, s api.VMSpec) string {
	prio := s.HA.RestartPriority
	if prio == "" {
		prio = cs.HA.DefaultRestartPriority
	}
	if prio == "" {
		prio = "medium"
	}
	switch {
	case !cs.HA.Enabled:
		return "unprotected (vSphere HA is off on the cluster)"
	case prio == "disabled":
		return "unprotected (restart priority disabled)"
	case s.PowerState != api.PoweredOn:
		return "unprotected (powered off)"
	}
	return fmt.Sprintf("protected (restart priority %s)", prio)
}

// writeHARecord adds what vSphere HA did about the VM: the attempts of a
// failover in progress or given up, and its last restart.
func writeHARecord(b *block, r *api.VMHAStatus, loc *time.Location) {
	if r == nil {
		return
	}
	switch {
	case r.GaveUp:
		b.add("HA restart", "gave up after %d attempts (last %s): %s", r.Attempts, timeString(r.LastAttempt, loc), r.LastError)
	case r.LastError != "":
		b.add("HA restart", "attempt %d failed at %s: %s (HA tries again)", r.Attempts, timeString(r.LastAttempt, loc), r.LastError)
	case r.Attempts > 0:
		b.add("HA restart", "attempt %d at %s, waiting for the VM to run", r.Attempts, timeString(r.LastAttempt, loc))
	}
	if !r.RestartedAt.IsZero() {
		b.add("HA restarted", "%s from %s (%s)", timeString(r.RestartedAt, loc), api.Base(r.RestartedFrom), r.Reason)
	}
}
