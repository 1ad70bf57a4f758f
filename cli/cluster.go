package cli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// DRS automation levels -drs-mode accepts.
var drsModes = []string{"manual", "partiallyAutomated", "fullyAutomated"}

// newClusterSpec is what cluster.create makes: DRS places VMs on power-on
// (fullyAutomated), HA stays off until cluster.change turns it on.
func newClusterSpec() api.ClusterSpec {
	return api.ClusterSpec{DRS: api.DRSConfig{Enabled: true, Mode: "fullyAutomated"}}
}

// clusterCreateOptions runs `psc cluster.create NAME...`.
type clusterCreateOptions struct {
	env   *Env
	names []string
}

func newClusterCreateCommand(env *Env) *cobra.Command {
	o := &clusterCreateOptions{env: env}
	return &cobra.Command{
		Use:     "cluster.create NAME...",
		Short:   "Create clusters (each with its root pool Resources) in the datacenter",
		Example: "  PSC_DATACENTER=dc1 psc cluster.create c1",
		Args:    minArgs(1, "at least one NAME"),
		RunE:    runE(o),
	}
}

func (o *clusterCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.names = args
	return nil
}

func (o *clusterCreateOptions) Validate() error { return nil }

func (o *clusterCreateOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	for _, n := range o.names {
		p, err := r.Path(ctx, api.KindCluster, n)
		if err != nil {
			return err
		}
		if _, err := r.API.Create(ctx, api.New(api.KindCluster, p, newClusterSpec())); err != nil {
			return err
		}
		fmt.Fprintf(o.env.Out, "Created cluster %s\n", p)
	}
	return nil
}

// clusterChangeOptions runs `psc cluster.change CLUSTER...` with DRS and HA flags.
type clusterChangeOptions struct {
	env        *Env
	cmd        *cobra.Command
	drs        bool
	drsMode    string
	ha         bool
	haAC       bool
	haFailures int
	haPolicy   string
	clusters   []string
}

func newClusterChangeCommand(env *Env) *cobra.Command {
	o := &clusterChangeOptions{env: env}
	cmd := &cobra.Command{
		Use:   "cluster.change CLUSTER...",
		Short: "Change DRS and HA settings of clusters (unset flags stay as they are)",
		Example: `  psc cluster.change -drs-enabled -drs-mode partiallyAutomated c1
  psc cluster.change -ha-enabled -ha-admission-control-enabled=false c1
  psc cluster.change -ha-enabled -ha-admission-control-enabled -ha-host-failures 1 -ha-admission-policy slot c1`,
		Args: minArgs(1, "at least one CLUSTER"),
		RunE: runE(o),
	}
	f := cmd.Flags()
	f.BoolVar(&o.drs, "drs-enabled", false, "enable DRS")
	f.StringVar(&o.drsMode, "drs-mode", "", "DRS automation level: "+strings.Join(drsModes, "|"))
	f.BoolVar(&o.ha, "ha-enabled", false, "enable HA")
	f.BoolVar(&o.haAC, "ha-admission-control-enabled", false, "enable HA admission control")
	f.IntVar(&o.haFailures, "ha-host-failures", 1, "host failures the cluster tolerates (HA admission control)")
	f.StringVar(&o.haPolicy, "ha-admission-policy", "", "HA admission control policy: percentage|slot")
	o.cmd = cmd
	return cmd
}

func (o *clusterChangeOptions) Complete(_ *cobra.Command, args []string) error {
	o.clusters = args
	return nil
}

func (o *clusterChangeOptions) Validate() error {
	if o.drsMode != "" && !slices.Contains(drsModes, o.drsMode) {
		return usagef("-drs-mode %q: want one of %s", o.drsMode, strings.Join(drsModes, ", "))
	}
	f := o.cmd.Flags()
	if o.haPolicy != "" && o.haPolicy != "percentage" && o.haPolicy != "slot" {
		return usagef("-ha-admission-policy %q: want percentage or slot", o.haPolicy)
	}
	if f.Changed("ha-host-failures") && o.haFailures < 1 {
		return usagef("-ha-host-failures %d: want at least 1 (turn admission control off with -ha-admission-control-enabled=false)", o.haFailures)
	}
	changed := false
	for _, n := range []string{"drs-enabled", "drs-mode", "ha-enabled", "ha-admission-control-enabled", "ha-host-failures", "ha-admission-policy"} {
		changed = changed || f.Changed(n)
	}
	if !changed {
		return usagef("cluster.change: nothing to change (give -drs-enabled, -drs-mode, -ha-enabled, -ha-admission-control-enabled, -ha-host-failures or -ha-admission-policy)")
	}
	return nil
}

func (o *clusterChangeOptions) Run(ctx context.Context) error {
	r, paths, err := o.env.resolvePaths(ctx, api.KindCluster, o.clusters)
	if err != nil {
		return err
	}
	f := o.cmd.Flags()
	for _, p := range paths {
		_, err := modify(ctx, r.API, p, func(obj *api.Object) error {
			var s api.ClusterSpec
			if err := obj.DecodeSpec(&s); err != nil {
				return fmt.Errorf("cluster %s: %w", p, err)
			}
			if f.Changed("drs-enabled") {
				s.DRS.Enabled = o.drs
			}
			if f.Changed("drs-mode") {
				s.DRS.Mode = o.drsMode
			}
			if f.Changed("ha-enabled") {
				s.HA.Enabled = o.ha
			}
			if f.Changed("ha-admission-control-enabled") {
				s.HA.AdmissionControlEnabled = o.haAC
			}
			if f.Changed("ha-host-failures") {
				s.HA.HostFailuresTolerated = o.haFailures
			}
			if f.Changed("ha-admission-policy") {
				s.HA.AdmissionPolicy = o.haPolicy
			}
			obj.SetSpec(s)
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(o.env.Out, "Reconfigured cluster %s\n", p)
	}
	return nil
}

// Rule kinds as ClusterRule.Kind spells them.
const (
	ruleAffinity     = "affinity"
	ruleAntiAffinity = "anti-affinity"
	ruleVMHost       = "vm-host"
)

// clusterRuleCreateOptions runs `psc cluster.rule.create`.
type clusterRuleCreateOptions struct {
	env                    *Env
	name                   string
	enable, mandatory      bool
	affinity, antiAffinity bool
	vmHost, affine         bool
	hosts                  []string
	vms                    []string
	kind                   string
}

func newClusterRuleCreateCommand(env *Env) *cobra.Command {
	o := &clusterRuleCreateOptions{env: env}
	cmd := &cobra.Command{
		Use:   "cluster.rule.create -name N [-enable] [-mandatory] -affinity|-anti-affinity|-vm-host [-host H1,H2] [-affine=true] VM...",
		Short: "Create a DRS rule in the cluster (-cluster or PSC_CLUSTER)",
		Example: `  psc cluster.rule.create -name web-spread -enable -mandatory -anti-affinity web-01 web-02 web-03
  psc cluster.rule.create -name db-on-01 -enable -vm-host -host esx-01 db-01`,
		Args: minArgs(1, "at least one VM"),
		RunE: runE(o),
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "rule name")
	f.BoolVar(&o.enable, "enable", false, "enable the rule")
	f.BoolVar(&o.mandatory, "mandatory", false, "a mandatory rule blocks power-ons that would break it")
	f.BoolVar(&o.affinity, "affinity", false, "keep the VMs together")
	f.BoolVar(&o.antiAffinity, "anti-affinity", false, "keep the VMs apart")
	f.BoolVar(&o.vmHost, "vm-host", false, "tie the VMs to the hosts given with -host")
	f.StringSliceVar(&o.hosts, "host", nil, "hosts of a -vm-host rule, comma separated")
	f.BoolVar(&o.affine, "affine", true, "-vm-host: run on (true) or not on (false) the hosts")
	return cmd
}

func (o *clusterRuleCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.vms = args
	return nil
}

func (o *clusterRuleCreateOptions) Validate() error {
	if o.name == "" {
		return usagef("cluster.rule.create: -name is required")
	}
	n := 0
	for k, set := range map[string]bool{ruleAffinity: o.affinity, ruleAntiAffinity: o.antiAffinity, ruleVMHost: o.vmHost} {
		if set {
			o.kind = k
			n++
		}
	}
	if n != 1 {
		return usagef("cluster.rule.create: give exactly one of -affinity, -anti-affinity, -vm-host")
	}
	if o.kind == ruleVMHost && len(o.hosts) == 0 {
		return usagef("cluster.rule.create: -vm-host needs -host H1,H2")
	}
	if o.kind != ruleVMHost && len(o.hosts) > 0 {
		return usagef("cluster.rule.create: -host is only for -vm-host rules")
	}
	if o.kind != ruleVMHost && len(o.vms) < 2 {
		return usagef("cluster.rule.create: an %s rule needs at least two VMs", o.kind)
	}
	return nil
}

func (o *clusterRuleCreateOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	cp, err := r.clusterPath(ctx)
	if err != nil {
		return err
	}
	rule := api.ClusterRule{Name: o.name, Enabled: o.enable, Kind: o.kind, Mandatory: o.mandatory}
	if rule.VMs, err = r.Paths(ctx, api.KindVirtualMachine, o.vms); err != nil {
		return err
	}
	if o.kind == ruleVMHost {
		rule.Affine = o.affine
		if rule.Hosts, err = r.Paths(ctx, api.KindHost, o.hosts); err != nil {
			return err
		}
	}
	_, err = modify(ctx, r.API, cp, func(obj *api.Object) error {
		var s api.ClusterSpec
		if err := obj.DecodeSpec(&s); err != nil {
			return fmt.Errorf("cluster %s: %w", cp, err)
		}
		for _, x := range s.Rules {
			if x.Name == rule.Name {
				return fmt.Errorf("cluster %s already has a rule named %q: %w", cp, rule.Name, api.ErrConflict)
			}
		}
		s.Rules = append(s.Rules, rule)
		obj.SetSpec(s)
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.env.Out, "Created rule %s in cluster %s\n", rule.Name, cp)
	return nil
}

// clusterRuleLsOptions runs `psc cluster.rule.ls`.
type clusterRuleLsOptions struct{ env *Env }

func newClusterRuleLsCommand(env *Env) *cobra.Command {
	o := &clusterRuleLsOptions{env: env}
	return &cobra.Command{
		Use:     "cluster.rule.ls",
		Short:   "List the DRS rules of the cluster (-cluster or PSC_CLUSTER)",
		Example: "  psc cluster.rule.ls -cluster c1",
		Args:    exactArgs(0, "no arguments (the cluster comes from -cluster)"),
		RunE:    runE(o),
	}
}

func (o *clusterRuleLsOptions) Complete(*cobra.Command, []string) error { return nil }
func (o *clusterRuleLsOptions) Validate() error                         { return nil }

func (o *clusterRuleLsOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	cp, err := r.clusterPath(ctx)
	if err != nil {
		return err
	}
	obj, err := r.API.Get(ctx, cp)
	if err != nil {
		return err
	}
	var s api.ClusterSpec
	if err := obj.DecodeSpec(&s); err != nil {
		return fmt.Errorf("cluster %s: %w", cp, err)
	}
	if o.env.JSON {
		if s.Rules == nil {
			s.Rules = []api.ClusterRule{}
		}
		return writeJSON(o.env.Out, s.Rules)
	}
	return writeRules(o, s.Rules)
}

func writeRules(o *clusterRuleLsOptions, rules []api.ClusterRule) error {
	rows := make([][]string, 0, len(rules))
	for _, ru := range rules {
		kind := ru.Kind
		if ru.Kind == ruleVMHost && !ru.Affine {
			kind += " (not on)"
		}
		rows = append(rows, []string{ru.Name, kind, strconv.FormatBool(ru.Enabled), strconv.FormatBool(ru.Mandatory),
			baseNames(ru.VMs), orDash(baseNames(ru.Hosts))})
	}
	return writeTable(o.env.Out, []string{"Name", "Kind", "Enabled", "Mandatory", "VMs", "Hosts"}, rows)
}

// baseNames joins the last elements of paths with commas.
func baseNames(paths []string) string {
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = api.Base(p)
	}
	return strings.Join(names, ",")
}
