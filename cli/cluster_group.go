package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// Group kinds as ClusterGroup.Kind spells them.
const (
	vmGroup   = "vm"
	hostGroup = "host"
)

// isKind says whether p is the path of an object of kind.
func isKind(p, kind string) bool {
	if p == "" {
		return false
	}
	ref, err := api.ParsePath(p)
	return err == nil && ref.Kind == kind
}

func findGroup(groups []api.ClusterGroup, name string) *api.ClusterGroup {
	for i := range groups {
		if groups[i].Name == name {
			return &groups[i]
		}
	}
	return nil
}

// groupMembers resolves members of a group of kind: VM or host names,
// paths or globs.
func groupMembers(ctx context.Context, r *Resolver, kind string, args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	if kind == hostGroup {
		return r.Paths(ctx, api.KindHost, args)
	}
	return r.Paths(ctx, api.KindVirtualMachine, args)
}

// groupOptions are the flags every cluster.group verb shares.
type groupOptions struct {
	env     *Env
	name    string
	members []string
}

func (o *groupOptions) Complete(_ *cobra.Command, args []string) error {
	o.members = args
	return nil
}

func (o *groupOptions) needName(verb string) error {
	if o.name == "" {
		return usagef("%s: -name is required", verb)
	}
	return nil
}

// clusterGroupCreateOptions runs `psc cluster.group.create -name N -vm|-host MEMBER...`.
type clusterGroupCreateOptions struct {
	groupOptions
	vm, host bool
}

func newClusterGroupCreateCommand(env *Env) *cobra.Command {
	o := &clusterGroupCreateOptions{groupOptions: groupOptions{env: env}}
	cmd := &cobra.Command{
		Use:   "cluster.group.create -name N -vm|-host MEMBER...",
		Short: "Create a VM or host group in the cluster (-cluster or PSC_CLUSTER), for rules to name",
		Example: `  psc cluster.group.create -name db-vms -vm db-01 db-02
  psc cluster.group.create -name rack-a -host esx-01 esx-02`,
		RunE: runE(o),
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "group name")
	f.BoolVar(&o.vm, "vm", false, "create a VM group")
	f.BoolVar(&o.host, "host", false, "create a host group")
	return cmd
}

func (o *clusterGroupCreateOptions) Validate() error {
	if err := o.needName("cluster.group.create"); err != nil {
		return err
	}
	if o.vm == o.host {
		return usagef("cluster.group.create: give exactly one of -vm, -host (the group's type)")
	}
	return nil
}

func (o *clusterGroupCreateOptions) Run(ctx context.Context) error {
	r, cp, err := o.env.clusterResolver(ctx)
	if err != nil {
		return err
	}
	g := api.ClusterGroup{Name: o.name, Kind: vmGroup}
	if o.host {
		g.Kind = hostGroup
	}
	members, err := groupMembers(ctx, r, g.Kind, o.members)
	if err != nil {
		return err
	}
	if g.Kind == hostGroup {
		g.Hosts = members
	} else {
		g.VMs = members
	}
	err = modifyCluster(ctx, r, cp, func(s *api.ClusterSpec) error {
		if findGroup(s.Groups, g.Name) != nil {
			return fmt.Errorf("cluster %s already has a group named %q: %w", cp, g.Name, api.ErrConflict)
		}
		s.Groups = append(s.Groups, g)
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.env.Out, "Created %s group %s in cluster %s\n", g.Kind, g.Name, cp)
	return nil
}

// clusterGroupChangeOptions runs `psc cluster.group.change -name N MEMBER...`.
type clusterGroupChangeOptions struct{ groupOptions }

func newClusterGroupChangeCommand(env *Env) *cobra.Command {
	o := &clusterGroupChangeOptions{groupOptions{env: env}}
	cmd := &cobra.Command{
		Use:   "cluster.group.change -name N MEMBER...",
		Short: "Set the members of a cluster group (all of them: list the ones to keep too)",
		Example: `  psc cluster.group.change -name db-vms db-01 db-02 db-03
  psc cluster.group.change -name db-vms $(psc cluster.group.ls -name db-vms) db-04   # add`,
		RunE: runE(o),
	}
	cmd.Flags().StringVar(&o.name, "name", "", "group name")
	return cmd
}

func (o *clusterGroupChangeOptions) Validate() error { return o.needName("cluster.group.change") }

func (o *clusterGroupChangeOptions) Run(ctx context.Context) error {
	r, cp, err := o.env.clusterResolver(ctx)
	if err != nil {
		return err
	}
	obj, err := r.API.Get(ctx, cp)
	if err != nil {
		return err
	}
	var cur api.ClusterSpec
	_ = obj.DecodeSpec(&cur)
	g := findGroup(cur.Groups, o.name)
	if g == nil {
		return fmt.Errorf("cluster %s has no group named %q (psc cluster.group.ls): %w", cp, o.name, api.ErrNotFound)
	}
	members, err := groupMembers(ctx, r, g.Kind, o.members)
	if err != nil {
		return err
	}
	err = modifyCluster(ctx, r, cp, func(s *api.ClusterSpec) error {
		g := findGroup(s.Groups, o.name)
		if g == nil {
			return fmt.Errorf("cluster %s has no group named %q: %w", cp, o.name, api.ErrNotFound)
		}
		if g.Kind == hostGroup {
			g.Hosts = members
		} else {
			g.VMs = members
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.env.Out, "Changed %s group %s in cluster %s: %d member(s)\n", g.Kind, o.name, cp, len(members))
	return nil
}

// clusterGroupRemoveOptions runs `psc cluster.group.remove -name N`.
type clusterGroupRemoveOptions struct{ groupOptions }

func newClusterGroupRemoveCommand(env *Env) *cobra.Command {
	o := &clusterGroupRemoveOptions{groupOptions{env: env}}
	cmd := &cobra.Command{
		Use:     "cluster.group.remove -name N",
		Short:   "Remove a cluster group (refused while a rule uses it)",
		Example: "  psc cluster.group.remove -name db-vms",
		Args:    exactArgs(0, "no arguments (the group comes from -name)"),
		RunE:    runE(o),
	}
	cmd.Flags().StringVar(&o.name, "name", "", "group name")
	return cmd
}

func (o *clusterGroupRemoveOptions) Validate() error { return o.needName("cluster.group.remove") }

func (o *clusterGroupRemoveOptions) Run(ctx context.Context) error {
	r, cp, err := o.env.clusterResolver(ctx)
	if err != nil {
		return err
	}
	err = modifyCluster(ctx, r, cp, func(s *api.ClusterSpec) error {
		i := slices.IndexFunc(s.Groups, func(g api.ClusterGroup) bool { return g.Name == o.name })
		if i < 0 {
			return fmt.Errorf("cluster %s has no group named %q: %w", cp, o.name, api.ErrNotFound)
		}
		for _, ru := range s.Rules {
			if ru.VMGroup == o.name || ru.DependsOnVMGroup == o.name {
				return fmt.Errorf("group %s of cluster %s is used by rule %s: remove the rule first (psc cluster.rule.remove -name %s): %w", o.name, cp, ru.Name, ru.Name, api.ErrConflict)
			}
		}
		s.Groups = slices.Delete(s.Groups, i, i+1)
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.env.Out, "Removed group %s from cluster %s\n", o.name, cp)
	return nil
}

// clusterGroupLsOptions runs `psc cluster.group.ls [-name N]`.
type clusterGroupLsOptions struct{ groupOptions }

func newClusterGroupLsCommand(env *Env) *cobra.Command {
	o := &clusterGroupLsOptions{groupOptions{env: env}}
	cmd := &cobra.Command{
		Use:   "cluster.group.ls [-name N]",
		Short: "List the cluster's groups, or with -name the members of one (one a line)",
		Example: `  psc cluster.group.ls
  psc cluster.group.ls -name db-vms`,
		Args: exactArgs(0, "no arguments"),
		RunE: runE(o),
	}
	cmd.Flags().StringVar(&o.name, "name", "", "group whose members to list")
	return cmd
}

func (o *clusterGroupLsOptions) Validate() error { return nil }

func (o *clusterGroupLsOptions) Run(ctx context.Context) error {
	r, cp, err := o.env.clusterResolver(ctx)
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
	if o.name != "" {
		g := findGroup(s.Groups, o.name)
		if g == nil {
			return fmt.Errorf("cluster %s has no group named %q: %w", cp, o.name, api.ErrNotFound)
		}
		if o.env.JSON {
			return writeJSON(o.env.Out, g)
		}
		for _, m := range append(slices.Clone(g.VMs), g.Hosts...) {
			fmt.Fprintln(o.env.Out, m)
		}
		return nil
	}
	if o.env.JSON {
		if s.Groups == nil {
			s.Groups = []api.ClusterGroup{}
		}
		return writeJSON(o.env.Out, s.Groups)
	}
	rows := make([][]string, 0, len(s.Groups))
	for _, g := range s.Groups {
		rows = append(rows, []string{g.Name, g.Kind, orDash(strings.Join(append(slices.Clone(g.VMs), g.Hosts...), ","))})
	}
	return writeTable(o.env.Out, []string{"Name", "Kind", "Members"}, rows)
}

// clusterRuleRemoveOptions runs `psc cluster.rule.remove -name N`.
type clusterRuleRemoveOptions struct {
	env  *Env
	name string
}

func newClusterRuleRemoveCommand(env *Env) *cobra.Command {
	o := &clusterRuleRemoveOptions{env: env}
	cmd := &cobra.Command{
		Use:     "cluster.rule.remove -name N",
		Short:   "Remove a rule (DRS or VM dependency) from the cluster",
		Example: "  psc cluster.rule.remove -name app-after-db",
		Args:    exactArgs(0, "no arguments (the rule comes from -name)"),
		RunE:    runE(o),
	}
	cmd.Flags().StringVar(&o.name, "name", "", "rule name")
	return cmd
}

func (o *clusterRuleRemoveOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *clusterRuleRemoveOptions) Validate() error {
	if o.name == "" {
		return usagef("cluster.rule.remove: -name is required")
	}
	return nil
}

func (o *clusterRuleRemoveOptions) Run(ctx context.Context) error {
	r, cp, err := o.env.clusterResolver(ctx)
	if err != nil {
		return err
	}
	err = modifyCluster(ctx, r, cp, func(s *api.ClusterSpec) error {
		i := slices.IndexFunc(s.Rules, func(ru api.ClusterRule) bool { return ru.Name == o.name })
		if i < 0 {
			return fmt.Errorf("cluster %s has no rule named %q (psc cluster.rule.ls): %w", cp, o.name, api.ErrNotFound)
		}
		s.Rules = slices.Delete(s.Rules, i, i+1)
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.env.Out, "Removed rule %s from cluster %s\n", o.name, cp)
	return nil
}

// clusterResolver is the resolver and the cluster (-cluster or PSC_CLUSTER,
// or the datacenter's only one) a cluster.* verb works on.
func (e *Env) clusterResolver(ctx context.Context) (*Resolver, string, error) {
	r, err := e.Resolver()
	if err != nil {
		return nil, "", err
	}
	cp, err := r.clusterPath(ctx)
	if err != nil {
		return nil, "", err
	}
	return r, cp, nil
}
