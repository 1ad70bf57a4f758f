package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// overrideTarget is what a cluster.override verb acts on: one VM, replica
// set or Deployment (-vm, -rs, -deployment).
type overrideTarget struct {
	vm, rs, deployment string
	kind, name         string
}

func (t *overrideTarget) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&t.vm, "vm", "", "virtual machine")
	f.StringVar(&t.rs, "rs", "", "replica set: the override reaches every member, in place")
	f.StringVar(&t.deployment, "deployment", "", "Deployment: the override reaches every VM of every revision, in place (no rollout)")
}

func (t *overrideTarget) validate(verb string) error {
	n := 0
	for kind, name := range map[string]string{api.KindVirtualMachine: t.vm, api.KindReplicaSet: t.rs, api.KindDeployment: t.deployment} {
		if name != "" {
			t.kind, t.name = kind, name
			n++
		}
	}
	if n != 1 {
		return usagef("%s: give exactly one of -vm, -rs, -deployment", verb)
	}
	return nil
}

// changeHA reads the target's HA policy, lets fn change it and writes it
// back. A VM's policy is VMSpec.HA; a set's and a Deployment's is their
// spec.ha (not the template's, so a Deployment does not roll out): the
// controllers pass it on to the members without restarting them.
func changeHA(ctx context.Context, r *Resolver, t overrideTarget, fn func(*api.HAPolicy) error) (string, error) {
	p, err := r.Path(ctx, t.kind, t.name)
	if err != nil {
		return "", err
	}
	_, err = modify(ctx, r.API, p, func(obj *api.Object) error {
		switch t.kind {
		case api.KindVirtualMachine:
			var s api.VMSpec
			if err := obj.DecodeSpec(&s); err != nil {
				return err
			}
			if isKind(obj.Owner, api.KindReplicaSet) {
				return fmt.Errorf("%s is a member of replica set %s: override the set (-rs %s) and its members follow: %w", p, obj.Owner, api.Base(obj.Owner), api.ErrConflict)
			}
			if err := fn(&s.HA); err != nil {
				return err
			}
			obj.SetSpec(s)
		case api.KindReplicaSet:
			var s api.ReplicaSetSpec
			if err := obj.DecodeSpec(&s); err != nil {
				return err
			}
			if isKind(obj.Owner, api.KindDeployment) {
				return fmt.Errorf("replica set %s belongs to Deployment %s: override the Deployment (-deployment %s): %w", p, obj.Owner, api.Base(obj.Owner), api.ErrConflict)
			}
			if err := shadowed(p, s.Template.Spec.HA, fn, &s.HA); err != nil {
				return err
			}
			obj.SetSpec(s)
		case api.KindDeployment:
			var s api.DeploymentSpec
			if err := obj.DecodeSpec(&s); err != nil {
				return err
			}
			if err := shadowed(p, s.Template.Spec.HA, fn, &s.HA); err != nil {
				return err
			}
			obj.SetSpec(s)
		}
		return nil
	})
	return p, err
}

// shadowed applies fn to a set's policy, refusing a field its template
// sets itself: the template's own setting wins for the members, so the
// override would change nothing.
func shadowed(p string, tmpl api.HAPolicy, fn func(*api.HAPolicy) error, h *api.HAPolicy) error {
	old := *h
	if err := fn(h); err != nil {
		return err
	}
	if h.RestartPriority != old.RestartPriority && tmpl.RestartPriority != "" {
		return fmt.Errorf("the template of %s sets restartPriority %s itself, which wins over an override: change the template (spec.template.spec.ha): %w", p, tmpl.RestartPriority, api.ErrConflict)
	}
	if h.IsolationResponse != old.IsolationResponse && tmpl.IsolationResponse != "" {
		return fmt.Errorf("the template of %s sets isolationResponse %s itself, which wins over an override: change the template (spec.template.spec.ha): %w", p, tmpl.IsolationResponse, api.ErrConflict)
	}
	return nil
}

// clusterOverrideChangeOptions runs `psc cluster.override.change -vm VM ...`.
type clusterOverrideChangeOptions struct {
	env       *Env
	cmd       *cobra.Command
	target    overrideTarget
	priority  string
	isolation string
}

func newClusterOverrideChangeCommand(env *Env) *cobra.Command {
	o := &clusterOverrideChangeOptions{env: env}
	cmd := &cobra.Command{
		Use:   "cluster.override.change -vm VM|-rs RS|-deployment D [-ha-restart-priority P] [-ha-isolation-response R]",
		Short: "Override the cluster's HA settings for a VM, a replica set or a Deployment (applied in place: nothing restarts)",
		Example: `  psc cluster.override.change -vm db-01 -ha-restart-priority high
  psc cluster.override.change -vm web-01 -ha-isolation-response shutdown
  psc cluster.override.change -deployment web -ha-restart-priority low`,
		Args: exactArgs(0, "no arguments (the target comes from -vm, -rs or -deployment)"),
		RunE: runE(o),
	}
	o.target.flags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.priority, "ha-restart-priority", "", "HA restart priority: "+strings.Join(api.RestartPriorities, "|"))
	f.StringVar(&o.isolation, "ha-isolation-response", "", "what its host does with it when isolated: "+strings.Join(vmIsolationResponses, "|")+" (none: leave it running)")
	o.cmd = cmd
	return cmd
}

func (o *clusterOverrideChangeOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *clusterOverrideChangeOptions) Validate() error {
	if err := o.target.validate("cluster.override.change"); err != nil {
		return err
	}
	if err := oneOf("ha-restart-priority", o.priority, api.RestartPriorities); err != nil {
		return err
	}
	if err := oneOf("ha-isolation-response", o.isolation, vmIsolationResponses); err != nil {
		return err
	}
	f := o.cmd.Flags()
	if !f.Changed("ha-restart-priority") && !f.Changed("ha-isolation-response") {
		return usagef("cluster.override.change: nothing to change (give -ha-restart-priority or -ha-isolation-response)")
	}
	return nil
}

func (o *clusterOverrideChangeOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	f := o.cmd.Flags()
	p, err := changeHA(ctx, r, o.target, func(h *api.HAPolicy) error {
		if f.Changed("ha-restart-priority") {
			h.RestartPriority = o.priority
		}
		if f.Changed("ha-isolation-response") {
			h.IsolationResponse = o.isolation
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.env.Out, "Changed HA override of %s\n", p)
	return nil
}

// clusterOverrideRemoveOptions runs `psc cluster.override.remove -vm VM`.
type clusterOverrideRemoveOptions struct {
	env    *Env
	target overrideTarget
}

func newClusterOverrideRemoveCommand(env *Env) *cobra.Command {
	o := &clusterOverrideRemoveOptions{env: env}
	cmd := &cobra.Command{
		Use:     "cluster.override.remove -vm VM|-rs RS|-deployment D",
		Short:   "Remove the HA override of a VM, replica set or Deployment: the cluster's settings apply again",
		Example: "  psc cluster.override.remove -vm db-01",
		Args:    exactArgs(0, "no arguments (the target comes from -vm, -rs or -deployment)"),
		RunE:    runE(o),
	}
	o.target.flags(cmd)
	return cmd
}

func (o *clusterOverrideRemoveOptions) Complete(*cobra.Command, []string) error { return nil }
func (o *clusterOverrideRemoveOptions) Validate() error {
	return o.target.validate("cluster.override.remove")
}

func (o *clusterOverrideRemoveOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	p, err := changeHA(ctx, r, o.target, func(h *api.HAPolicy) error {
		*h = api.HAPolicy{}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.env.Out, "Removed HA override of %s\n", p)
	return nil
}

// Override is one row of cluster.override.info (-json: a list of them).
type Override struct {
	Path              string `json:"path"`
	Kind              string `json:"kind"`
	RestartPriority   string `json:"restartPriority,omitempty"`
	IsolationResponse string `json:"isolationResponse,omitempty"`
}

// clusterOverrideInfoOptions runs `psc cluster.override.info`.
type clusterOverrideInfoOptions struct{ env *Env }

func newClusterOverrideInfoCommand(env *Env) *cobra.Command {
	o := &clusterOverrideInfoOptions{env: env}
	return &cobra.Command{
		Use:   "cluster.override.info",
		Short: "List the HA overrides of the cluster's VMs, replica sets and Deployments (-cluster or PSC_CLUSTER)",
		Example: `  psc cluster.override.info
  psc cluster.override.info -json`,
		Args: exactArgs(0, "no arguments (the cluster comes from -cluster)"),
		RunE: runE(o),
	}
}

func (o *clusterOverrideInfoOptions) Complete(*cobra.Command, []string) error { return nil }
func (o *clusterOverrideInfoOptions) Validate() error                         { return nil }

func (o *clusterOverrideInfoOptions) Run(ctx context.Context) error {
	r, cp, err := o.env.clusterResolver(ctx)
	if err != nil {
		return err
	}
	ref, _ := api.ParsePath(cp)
	inCluster := func(pool string) bool {
		pr, err := api.ParsePath(pool)
		return err == nil && pr.ClusterPath() == cp
	}
	var out []Override
	for _, k := range []struct{ kind, folder string }{{api.KindVirtualMachine, "vm"}, {api.KindReplicaSet, "replicaset"}, {api.KindDeployment, "deployment"}} {
		l, err := r.API.List(ctx, client.ListOptions{Kind: k.kind, Prefix: "/" + ref.Datacenter + "/" + k.folder})
		if err != nil {
			return err
		}
		for _, obj := range l.Items {
			var s struct {
				Pool string       `json:"pool"`
				HA   api.HAPolicy `json:"ha"`
			}
			_ = obj.DecodeSpec(&s)
			// A set's members follow the set: listed once, as the set.
			owned := isKind(obj.Owner, api.KindReplicaSet) || isKind(obj.Owner, api.KindDeployment)
			if s.HA == (api.HAPolicy{}) || owned || !inCluster(s.Pool) {
				continue
			}
			out = append(out, Override{Path: obj.Path, Kind: k.kind, RestartPriority: s.HA.RestartPriority, IsolationResponse: s.HA.IsolationResponse})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	if o.env.JSON {
		if out == nil {
			out = []Override{}
		}
		return writeJSON(o.env.Out, out)
	}
	rows := make([][]string, 0, len(out))
	for _, x := range out {
		rows = append(rows, []string{x.Path, x.Kind, orDash(x.RestartPriority), orDash(x.IsolationResponse)})
	}
	return writeTable(o.env.Out, []string{"Name", "Kind", "Restart priority", "Isolation response"}, rows)
}
