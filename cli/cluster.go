package cli

import (
	"context"
	"fmt"
	"net"
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
	cmd   *cobra.Command
	net   serviceNetworkFlags
	names []string
}

func newClusterCreateCommand(env *Env) *cobra.Command {
	o := &clusterCreateOptions{env: env}
	o.cmd = &cobra.Command{
		Use:   "cluster.create NAME...",
		Short: "Create clusters (each with its root pool Resources) in the datacenter",
		Example: `  PSC_DATACENTER=dc1 psc cluster.create c1
  psc cluster.create -lb-addresses 10.99.0.200-10.99.0.239 -node-port-range 8000-9000 c2`,
		Args: minArgs(1, "at least one NAME"),
		RunE: runE(o),
	}
	o.net.register(o.cmd.Flags())
	return o.cmd
}

func (o *clusterCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.names = args
	return nil
}

func (o *clusterCreateOptions) Validate() error { return o.net.validate(o.cmd.Flags()) }

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
		spec := newClusterSpec()
		o.net.apply(o.cmd.Flags(), &spec)
		if _, err := r.API.Create(ctx, api.New(api.KindCluster, p, spec)); err != nil {
			return err
		}
		fmt.Fprintf(o.env.Out, "Created cluster %s\n", p)
	}
	return nil
}

// HA values cluster.change and cluster.override.change accept, as vSphere's.
var (
	haIsolationResponses   = []string{"disabled", "powerOff", "shutdown"}
	haReadyConditions      = []string{"none", "poweredOn", "guestHbStatusGreen", "appHbStatusGreen"}
	vmIsolationResponses   = []string{"none", "powerOff", "shutdown"}
	haAdmissionPolicies    = []string{"percentage", "slot"}
	clusterChangeFlagNames = []string{"drs-enabled", "drs-mode", "ha-enabled", "ha-admission-control-enabled", "ha-host-failures",
		"ha-admission-policy", "ha-restart-priority", "ha-isolation-response", "ha-isolation-address", "ha-shutdown-timeout",
		"ha-ready-condition", "ha-additional-delay", "ha-ready-timeout"}
)

// clusterChangeOptions runs `psc cluster.change CLUSTER...` with DRS and HA flags.
type clusterChangeOptions struct {
	env          *Env
	cmd          *cobra.Command
	drs          bool
	drsMode      string
	ha           bool
	haAC         bool
	haFailures   int
	haPolicy     string
	priority     string
	isolation    string
	addresses    []string
	shutdown     int
	ready        string
	delay        int
	readyTimeout int
	net          serviceNetworkFlags
	clusters     []string
}

func newClusterChangeCommand(env *Env) *cobra.Command {
	o := &clusterChangeOptions{env: env}
	cmd := &cobra.Command{
		Use:   "cluster.change CLUSTER...",
		Short: "Change DRS, HA and service network settings of clusters (unset flags stay as they are)",
		Example: `  psc cluster.change -drs-enabled -drs-mode partiallyAutomated c1
  psc cluster.change -ha-enabled -ha-admission-control-enabled=false c1
  psc cluster.change -ha-enabled -ha-admission-control-enabled -ha-host-failures 1 -ha-admission-policy slot c1
  psc cluster.change -ha-restart-priority high -ha-ready-condition guestHbStatusGreen -ha-additional-delay 10 c1
  psc cluster.change -ha-isolation-response powerOff -ha-isolation-address 10.0.0.1,10.0.0.2 c1
  psc cluster.change -lb-addresses 10.99.0.200-10.99.0.239,10.99.1.0/28 c1`,
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
	f.StringVar(&o.priority, "ha-restart-priority", "", "HA restart priority of VMs without an override: "+strings.Join(api.RestartPriorities, "|")+" (default medium)")
	f.StringVar(&o.isolation, "ha-isolation-response", "", "what an isolated host does with its VMs: "+strings.Join(haIsolationResponses, "|")+" (default disabled: leave them running)")
	f.StringSliceVar(&o.addresses, "ha-isolation-address", nil, "IP addresses a host pings before it calls itself isolated, comma separated (\"\" clears: its gateway and vcenter)")
	f.IntVar(&o.shutdown, "ha-shutdown-timeout", 0, "seconds the shutdown isolation response waits before powering a VM off (0: 300)")
	f.StringVar(&o.ready, "ha-ready-condition", "", "when restarted VMs count as ready and the next priority starts: "+strings.Join(haReadyConditions, "|")+" (default poweredOn)")
	f.IntVar(&o.delay, "ha-additional-delay", 0, "seconds HA waits after a priority is ready before starting the next (postReadyDelay)")
	f.IntVar(&o.readyTimeout, "ha-ready-timeout", 0, "seconds HA waits for a priority to be ready before starting the next anyway (0: 60)")
	o.net.register(f)
	o.cmd = cmd
	return cmd
}

func (o *clusterChangeOptions) Complete(_ *cobra.Command, args []string) error {
	o.clusters = args
	o.addresses = slices.DeleteFunc(o.addresses, func(a string) bool { return strings.TrimSpace(a) == "" })
	return nil
}

// oneOf refuses a flag value outside allowed, naming them.
func oneOf(flag, v string, allowed []string) error {
	if v != "" && !slices.Contains(allowed, v) {
		return usagef("-%s %q: want one of %s", flag, v, strings.Join(allowed, ", "))
	}
	return nil
}

func (o *clusterChangeOptions) Validate() error {
	f := o.cmd.Flags()
	for _, c := range []struct {
		flag, v string
		allowed []string
	}{{"drs-mode", o.drsMode, drsModes}, {"ha-admission-policy", o.haPolicy, haAdmissionPolicies},
		{"ha-restart-priority", o.priority, api.RestartPriorities}, {"ha-isolation-response", o.isolation, haIsolationResponses},
		{"ha-ready-condition", o.ready, haReadyConditions}} {
		if err := oneOf(c.flag, c.v, c.allowed); err != nil {
			return err
		}
	}
	if f.Changed("ha-host-failures") && o.haFailures < 1 {
		return usagef("-ha-host-failures %d: want at least 1 (turn admission control off with -ha-admission-control-enabled=false)", o.haFailures)
	}
	for _, n := range []struct {
		flag string
		v    int
	}{{"ha-shutdown-timeout", o.shutdown}, {"ha-additional-delay", o.delay}, {"ha-ready-timeout", o.readyTimeout}} {
		if n.v < 0 {
			return usagef("-%s %d: want seconds, 0 or more", n.flag, n.v)
		}
	}
	for _, a := range o.addresses {
		if net.ParseIP(a) == nil {
			return usagef("-ha-isolation-address %q is not an IP address", a)
		}
	}
	if err := o.net.validate(f); err != nil {
		return err
	}
	changed := false
	for _, n := range append(clusterChangeFlagNames, serviceNetworkFlagNames...) {
		changed = changed || f.Changed(n)
	}
	if !changed {
		return usagef("cluster.change: nothing to change (give one of -%s)", strings.Join(append(clusterChangeFlagNames, serviceNetworkFlagNames...), ", -"))
	}
	return nil
}

// apply sets the fields of the flags given on the command line.
func (o *clusterChangeOptions) apply(s *api.ClusterSpec) {
	f := o.cmd.Flags()
	h := &s.HA
	set := func(flag string, fn func()) {
		if f.Changed(flag) {
			fn()
		}
	}
	set("drs-enabled", func() { s.DRS.Enabled = o.drs })
	set("drs-mode", func() { s.DRS.Mode = o.drsMode })
	set("ha-enabled", func() { h.Enabled = o.ha })
	set("ha-admission-control-enabled", func() { h.AdmissionControlEnabled = o.haAC })
	set("ha-host-failures", func() { h.HostFailuresTolerated = o.haFailures })
	set("ha-admission-policy", func() { h.AdmissionPolicy = o.haPolicy })
	set("ha-restart-priority", func() { h.DefaultRestartPriority = o.priority })
	set("ha-isolation-response", func() { h.IsolationResponse = o.isolation })
	set("ha-isolation-address", func() { h.IsolationAddresses = o.addresses })
	set("ha-shutdown-timeout", func() { h.ShutdownTimeoutSeconds = o.shutdown })
	set("ha-ready-condition", func() { h.ReadyCondition = o.ready })
	set("ha-additional-delay", func() { h.PostReadyDelaySeconds = o.delay })
	set("ha-ready-timeout", func() { h.ReadyTimeoutSeconds = o.readyTimeout })
	o.net.apply(f, s)
}

func (o *clusterChangeOptions) Run(ctx context.Context) error {
	r, paths, err := o.env.resolvePaths(ctx, api.KindCluster, o.clusters)
	if err != nil {
		return err
	}
	for _, p := range paths {
		err := modifyCluster(ctx, r, p, func(s *api.ClusterSpec) error {
			o.apply(s)
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(o.env.Out, "Reconfigured cluster %s\n", p)
	}
	return nil
}

// modifyCluster changes the spec of the cluster at p with fn.
func modifyCluster(ctx context.Context, r *Resolver, p string, fn func(*api.ClusterSpec) error) error {
	_, err := modify(ctx, r.API, p, func(obj *api.Object) error {
		var s api.ClusterSpec
		if err := obj.DecodeSpec(&s); err != nil {
			return fmt.Errorf("cluster %s: %w", p, err)
		}
		if err := fn(&s); err != nil {
			return err
		}
		obj.SetSpec(s)
		return nil
	})
	return err
}

// Rule kinds as ClusterRule.Kind spells them.
const (
	ruleAffinity     = "affinity"
	ruleAntiAffinity = "anti-affinity"
	ruleVMHost       = "vm-host"
	ruleDepends      = "depends"
)

// clusterRuleCreateOptions runs `psc cluster.rule.create`.
type clusterRuleCreateOptions struct {
	env                    *Env
	name                   string
	enable, mandatory      bool
	affinity, antiAffinity bool
	vmHost, affine         bool
	depends                bool
	cmd                    *cobra.Command
	hosts                  []string
	vms                    []string
	kind                   string
}

func newClusterRuleCreateCommand(env *Env) *cobra.Command {
	o := &clusterRuleCreateOptions{env: env}
	cmd := &cobra.Command{
		Use:   "cluster.rule.create -name N [-enable] [-mandatory] -affinity|-anti-affinity|-vm-host [-host H1,H2] [-affine=true] VM... | -depends VMGROUP DEPENDS_ON_VMGROUP",
		Short: "Create a DRS rule, or an HA VM dependency rule between VM groups, in the cluster (-cluster or PSC_CLUSTER)",
		Example: `  psc cluster.rule.create -name web-spread -enable -mandatory -anti-affinity web-01 web-02 web-03
  psc cluster.rule.create -name db-on-01 -enable -vm-host -host esx-01 db-01
  psc cluster.rule.create -name app-after-db -depends app-vms db-vms`,
		Args: minArgs(1, "at least one VM (or, with -depends, two VM groups)"),
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
	f.BoolVar(&o.depends, "depends", false, "HA starts the VMs of the first VM group only once those of the second are ready (enabled unless -enable=false)")
	o.cmd = cmd
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
	for k, set := range map[string]bool{ruleAffinity: o.affinity, ruleAntiAffinity: o.antiAffinity, ruleVMHost: o.vmHost, ruleDepends: o.depends} {
		if set {
			o.kind = k
			n++
		}
	}
	if n != 1 {
		return usagef("cluster.rule.create: give exactly one of -affinity, -anti-affinity, -vm-host, -depends")
	}
	if o.kind == ruleDepends {
		if len(o.vms) != 2 {
			return usagef("cluster.rule.create: -depends takes two VM groups, VMGROUP DEPENDS_ON_VMGROUP, got %d argument(s)", len(o.vms))
		}
		if len(o.hosts) > 0 || o.mandatory {
			return usagef("cluster.rule.create: -host and -mandatory are not for -depends rules")
		}
		if o.vms[0] == o.vms[1] {
			return usagef("cluster.rule.create: VM group %s cannot depend on itself", o.vms[0])
		}
		// A dependency is meant to hold: on unless -enable=false.
		if !o.cmd.Flags().Changed("enable") {
			o.enable = true
		}
		return nil
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
	if o.kind == ruleDepends {
		rule.VMGroup, rule.DependsOnVMGroup = o.vms[0], o.vms[1]
	} else if rule.VMs, err = r.Paths(ctx, api.KindVirtualMachine, o.vms); err != nil {
		return err
	}
	if o.kind == ruleVMHost {
		rule.Affine = o.affine
		if rule.Hosts, err = r.Paths(ctx, api.KindHost, o.hosts); err != nil {
			return err
		}
	}
	err = modifyCluster(ctx, r, cp, func(s *api.ClusterSpec) error {
		for _, x := range s.Rules {
			if x.Name == rule.Name {
				return fmt.Errorf("cluster %s already has a rule named %q: %w", cp, rule.Name, api.ErrConflict)
			}
		}
		if rule.Kind == ruleDepends {
			for _, g := range []string{rule.VMGroup, rule.DependsOnVMGroup} {
				if x := findGroup(s.Groups, g); x == nil || x.Kind != vmGroup {
					return fmt.Errorf("cluster %s has no VM group %q (psc cluster.group.create -name %s -vm VM...): %w", cp, g, g, api.ErrNotFound)
				}
			}
		}
		s.Rules = append(s.Rules, rule)
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
		vms := baseNames(ru.VMs)
		if ru.Kind == ruleDepends {
			// The VM column names the groups: "app after db".
			vms = fmt.Sprintf("group %s after group %s", ru.VMGroup, ru.DependsOnVMGroup)
		}
		rows = append(rows, []string{ru.Name, kind, strconv.FormatBool(ru.Enabled), strconv.FormatBool(ru.Mandatory),
			vms, orDash(baseNames(ru.Hosts))})
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
