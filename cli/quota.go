package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// quotaField is one quota limit: its flag, its unit and where it lives.
type quotaField struct {
	flag, unit, usage string
	get               func(*api.QuotaLimits) *int64
}

// quotaFields in the order quota.info prints them.
var quotaFields = []quotaField{
	{"vms", "", "VMs (pods)", func(q *api.QuotaLimits) *int64 { return &q.VMs }},
	{"replicasets", "", "replica sets", func(q *api.QuotaLimits) *int64 { return &q.ReplicaSets }},
	{"services", "", "services", func(q *api.QuotaLimits) *int64 { return &q.Services }},
	{"volumeclaims", "", "volume claims", func(q *api.QuotaLimits) *int64 { return &q.VolumeClaims }},
	{"configmaps", "", "config maps", func(q *api.QuotaLimits) *int64 { return &q.ConfigMaps }},
	{"secrets", "", "secrets", func(q *api.QuotaLimits) *int64 { return &q.Secrets }},
	{"storage", "GB", "storage in GB", func(q *api.QuotaLimits) *int64 { return &q.StorageGB }},
	{"cpu", "MHz", "CPU limit in MHz", func(q *api.QuotaLimits) *int64 { return &q.CPUMHz }},
	{"mem", "MB", "memory limit in MB", func(q *api.QuotaLimits) *int64 { return &q.MemMB }},
}

// noQuota is a quota with every limit unset.
func noQuota() *api.QuotaLimits {
	q := &api.QuotaLimits{}
	for _, f := range quotaFields {
		*f.get(q) = -1
	}
	return q
}

// quotaSetOptions runs `psc quota.set POOL -vms N ...`.
type quotaSetOptions struct {
	env    *Env
	cmd    *cobra.Command
	values map[string]*int64
	pool   string
}

func newQuotaSetCommand(env *Env) *cobra.Command {
	o := &quotaSetOptions{env: env, values: map[string]*int64{}}
	cmd := &cobra.Command{
		Use:   "quota.set POOL [-vms N] [-replicasets N] [-services N] [-volumeclaims N] [-configmaps N] [-secrets N] [-storage GB] [-cpu MHz] [-mem MB]",
		Short: "Set a pool's quota (namespace limits); only the flags given change, -1 removes a limit",
		Example: `  psc quota.set dev -vms 10 -cpu 8000 -mem 16384
  psc quota.set dev -cpu -1`,
		Args: exactArgs(1, "one POOL"),
		RunE: runE(o),
	}
	for _, f := range quotaFields {
		o.values[f.flag] = cmd.Flags().Int64(f.flag, -1, "limit on "+f.usage+" (-1 none)")
	}
	o.cmd = cmd
	return cmd
}

func (o *quotaSetOptions) Complete(_ *cobra.Command, args []string) error {
	o.pool = args[0]
	return nil
}

func (o *quotaSetOptions) Validate() error {
	n := 0
	for _, f := range quotaFields {
		if o.cmd.Flags().Changed(f.flag) {
			n++
			if v := *o.values[f.flag]; v < -1 {
				return usagef("-%s %d: want a limit >= 0, or -1 for none", f.flag, v)
			}
		}
	}
	if n == 0 {
		return usagef("quota.set: nothing to set (give -vms, -cpu, -mem, ...)")
	}
	return nil
}

func (o *quotaSetOptions) Run(ctx context.Context) error {
	r, p, err := o.env.resolvePath(ctx, api.KindResourcePool, o.pool)
	if err != nil {
		return err
	}
	_, err = modify(ctx, r.API, p, func(obj *api.Object) error {
		var s api.PoolSpec
		if err := obj.DecodeSpec(&s); err != nil {
			return fmt.Errorf("pool %s: %w", p, err)
		}
		if s.Quota == nil {
			s.Quota = noQuota()
		}
		for _, f := range quotaFields {
			if o.cmd.Flags().Changed(f.flag) {
				*f.get(s.Quota) = *o.values[f.flag]
			}
		}
		obj.SetSpec(s)
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.env.Out, "Set quota of pool %s\n", p)
	return nil
}

// quotaInfoOptions runs `psc quota.info POOL`.
type quotaInfoOptions struct {
	env  *Env
	pool string
}

func newQuotaInfoCommand(env *Env) *cobra.Command {
	o := &quotaInfoOptions{env: env}
	return &cobra.Command{
		Use:     "quota.info POOL",
		Short:   "Show a pool's quota: what its subtree uses against each limit",
		Example: "  psc quota.info dev",
		Args:    exactArgs(1, "one POOL"),
		RunE:    runE(o),
	}
}

func (o *quotaInfoOptions) Complete(_ *cobra.Command, args []string) error {
	o.pool = args[0]
	return nil
}

func (o *quotaInfoOptions) Validate() error { return nil }

func (o *quotaInfoOptions) Run(ctx context.Context) error {
	r, p, err := o.env.resolvePath(ctx, api.KindResourcePool, o.pool)
	if err != nil {
		return err
	}
	qi, err := r.API.Quota(ctx, p)
	if err != nil {
		return err
	}
	if o.env.JSON {
		return writeJSON(o.env.Out, qi)
	}
	return writeQuotaInfo(o.env.Out, qi)
}

// writeQuotaInfo prints one row per limit as "used / limit" ("3 / 10",
// "2000MHz / unlimited").
func writeQuotaInfo(w io.Writer, qi *api.QuotaInfo) error {
	rows := make([][]string, 0, len(quotaFields))
	for _, f := range quotaFields {
		used := *f.get(&qi.Used)
		limit := *f.get(&qi.Limits)
		rows = append(rows, []string{f.flag, strconv.FormatInt(used, 10) + f.unit + " / " + limitString(limit, f.unit)})
	}
	if _, err := fmt.Fprintf(w, "Quota of %s\n", qi.Path); err != nil {
		return err
	}
	return writeTable(w, []string{"Resource", "Used / Limit"}, rows)
}
