package cli

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/ha/drill"
	"github.com/spf13/cobra"
)

// writeDrill prints a drill's report: the headline figures, then one row per VM.
func writeDrill(env *Env, r api.HADrillReport) error {
	if env.JSON {
		return writeJSON(env.Out, r)
	}
	w := env.Out
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "Drill %s: %s %s: %s\n", r.Name, r.Mode, strings.Join(r.Hosts, ","), verdict)
	line := func(k, v string) { fmt.Fprintf(w, "  %-18s %s\n", k+":", v) }
	line("Injected", timeString(r.Injected, env.Location))
	if r.Mode == api.DrillMaintenance {
		line("In maintenance", drill.Offset(r.Detected, r.Injected)+" (every VM off the host)")
	} else {
		line("Seen by vcenter", drill.Offset(r.Detected, r.Injected)+" (notResponding)")
	}
	if r.Declared.IsZero() {
		line("Declared by HA", "-")
	} else {
		line("Declared by HA", drill.Offset(r.Declared, r.Injected)+" "+r.Verdict)
	}
	if r.HostResponse != "" {
		line("Host response", drill.Offset(r.HostResponseAt, r.Injected)+" "+r.HostResponse)
	}
	if r.Recovered.IsZero() {
		line("All back", "no")
	} else {
		line("All back", fmt.Sprintf("%s (every protected VM running and ready)", drill.Offset(r.Recovered, r.Injected)))
	}
	if !r.Healed.IsZero() {
		line("Healed", drill.Offset(r.Healed, r.Injected))
	}
	line("Capacity", fmt.Sprintf("%s -> %s", capacityString(r.CapacityBefore), capacityString(r.CapacityAfter)))
	line("Runtime samples", fmt.Sprintf("%d, every %d ms, read directly from each host", r.Samples, r.SampleIntervalMs))
	line("Duplicates", fmt.Sprintf("%d", len(r.Duplicates)))
	// The stream from outside, then the one to the ClusterIP from a VM,
	// each with its own gap and last error.
	for _, st := range []struct {
		q                 *api.DrillRequests
		label, gap, lastE string
	}{{r.Requests, "Requests", "Longest gap", "Last error"}, {r.ClusterIPRequests, "Via ClusterIP", "ClusterIP gap", "ClusterIP error"}} {
		q := st.q
		if q == nil {
			continue
		}
		sent := fmt.Sprintf("%d sent through %s (%s), %d failed", q.Sent, api.Base(q.Service), q.Target, q.Failed)
		if q.FromVM != "" {
			sent = fmt.Sprintf("%d sent through %s (%s) from %s, %d failed", q.Sent, api.Base(q.Service), q.Target, q.From, q.Failed)
		}
		line(st.label, sent)
		if q.Sent > 0 {
			gap := fmt.Sprintf("%.2f s", float64(q.LongestGapMs)/1000)
			if !q.GapFrom.IsZero() {
				gap += fmt.Sprintf(" (%s to %s)", drill.Offset(q.GapFrom, r.Injected), drill.Offset(q.GapTo, r.Injected))
			}
			line(st.gap, gap)
		}
		if q.LastError != "" {
			line(st.lastE, q.LastError)
		}
	}
	for _, why := range r.RequestsNotSent {
		line("No requests", why)
	}
	rows := make([][]string, 0, len(r.VMs))
	for _, v := range r.VMs {
		to := v.To
		if to == "" {
			to = "-"
		}
		outcome := v.Outcome
		if v.Reason != "" {
			outcome += ": " + v.Reason
		}
		rows = append(rows, []string{api.Base(v.VM), v.Priority, v.From, to, drill.Offset(v.Stopped, r.Injected),
			drill.Offset(v.Restarted, r.Injected), drill.Offset(v.Running, r.Injected), drill.Offset(v.Ready, r.Injected), outcome})
	}
	if err := writeTable(w, []string{"VM", "Priority", "From", "To", "Stopped", "Restarted", "Running", "Ready", "Outcome"}, rows); err != nil {
		return err
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  failure: %s\n", f)
	}
	return nil
}

func capacityString(c api.DrillCapacity) string {
	s := fmt.Sprintf("%d hosts, %d MHz, %d MB", c.Hosts, c.CPUMHz, c.MemMB)
	if c.Failover != "" {
		s += ", failover " + c.Failover
	}
	return s
}

// ha.drill.ls and ha.drill.info read the kept reports.
type drillLsOptions struct {
	env  *Env
	info bool
	svg  string
	name string
}

func newHADrillLsCommand(env *Env) *cobra.Command {
	o := &drillLsOptions{env: env}
	return &cobra.Command{
		Use:     "ha.drill.ls",
		Short:   "List the failover drills run in the datacenter, newest first",
		Example: "  psc ha.drill.ls\n  psc ha.drill.ls -json",
		Args:    maxArgs(0, "no arguments"),
		RunE:    runE(o),
	}
}

func newHADrillInfoCommand(env *Env) *cobra.Command {
	o := &drillLsOptions{env: env, info: true}
	cmd := &cobra.Command{
		Use:     "ha.drill.info [-svg FILE] NAME",
		Short:   "Show a failover drill's report (and write its timeline picture with -svg)",
		Example: "  psc ha.drill.info drill-crash-esx-02-20261204T101500\n  psc ha.drill.info -svg t.svg NAME",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("ha.drill.info: name the drill (psc ha.drill.ls lists them)")
			}
			return nil
		},
		RunE: runE(o),
	}
	cmd.Flags().StringVar(&o.svg, "svg", "", "write the drill's timeline picture (SVG) to this file")
	return cmd
}

func (o *drillLsOptions) Complete(_ *cobra.Command, args []string) error {
	if len(args) == 1 {
		o.name = api.Base(args[0])
	}
	return nil
}

func (o *drillLsOptions) Validate() error {
	if o.env.Datacenter == "" {
		return usagef("set the datacenter with -dc or PSC_DATACENTER")
	}
	return nil
}

func (o *drillLsOptions) Run(ctx context.Context) error {
	c, err := o.env.Client()
	if err != nil {
		return err
	}
	folder := "/" + o.env.Datacenter + "/drill"
	if o.info {
		obj, err := c.Get(ctx, folder+"/"+o.name)
		if err != nil {
			return err
		}
		var r api.HADrillReport
		if err := obj.DecodeSpec(&r); err != nil {
			return err
		}
		if o.svg != "" {
			if err := os.WriteFile(o.svg, []byte(drill.SVG(r)), 0o644); err != nil {
				return fmt.Errorf("writing the timeline %s: %v: %w", o.svg, err, api.ErrInvalid)
			}
		}
		return writeDrill(o.env, r)
	}
	l, err := c.List(ctx, client.ListOptions{Kind: api.KindHADrill, Prefix: folder})
	if err != nil {
		return err
	}
	reps := make([]api.HADrillReport, 0, len(l.Items))
	for _, obj := range l.Items {
		var r api.HADrillReport
		if obj.DecodeSpec(&r) == nil {
			reps = append(reps, r)
		}
	}
	sort.Slice(reps, func(i, j int) bool { return reps[i].Injected.After(reps[j].Injected) })
	if o.env.JSON {
		return writeJSON(o.env.Out, reps)
	}
	rows := make([][]string, 0, len(reps))
	for _, r := range reps {
		back, result := "-", "FAILED"
		if !r.Recovered.IsZero() {
			back = fmt.Sprintf("%.2fs", r.RecoverySeconds)
		}
		if r.Passed {
			result = "passed"
		}
		rows = append(rows, []string{r.Name, r.Mode, strings.Join(r.Hosts, ","), timeString(r.Injected, o.env.Location),
			fmt.Sprint(len(r.VMs)), back, fmt.Sprint(len(r.Duplicates)), result})
	}
	return writeTable(o.env.Out, []string{"Name", "Mode", "Hosts", "Injected", "VMs", "All back", "Duplicates", "Result"}, rows)
}
