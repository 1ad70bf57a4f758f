package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// Replica sets: "keep N VMs of this template running" (rs.*). vcenter's
// replica-set controller creates the VMs (NAME-xxxxx), spreads them over
// hosts and replaces those that fail.

var rsKind = registerWorkload(&workloadKind{
	kind: api.KindReplicaSet, prefix: "rs", alias: "replicaset", noun: "replica sets",
	header: []string{"Desired", "Current", "Ready", "Available"},
	row: func(o *api.Object, _ time.Time) []string {
		s, st := specOf[api.ReplicaSetSpec](o), statusOf[api.ReplicaSetStatus](o)
		return []string{itoa(s.Replicas), itoa(st.Replicas), itoa(st.ReadyReplicas), itoa(st.AvailableReplicas)}
	},
	info: func(ctx context.Context, c API, o *api.Object, b *block, loc *time.Location) error {
		s, st := specOf[api.ReplicaSetSpec](o), statusOf[api.ReplicaSetStatus](o)
		if s.Revision > 0 {
			b.add("Revision", "%d", s.Revision)
		}
		addTemplate(b, s.Pool, s.Selector, s.Template, s.HA)
		if s.MinReadySeconds > 0 {
			b.add("Min ready", "%ds", s.MinReadySeconds)
		}
		b.add("Replicas", "%d desired, %d current, %d running, %d ready, %d available",
			s.Replicas, st.Replicas, st.Running, st.ReadyReplicas, st.AvailableReplicas)
		addConditions(b, st.Conditions)
		addWaiting(b, st.Waiting, loc)
		return addMembers(ctx, c, b, o.Path)
	},
	summary: func(o *api.Object) string {
		s, st := specOf[api.ReplicaSetSpec](o), statusOf[api.ReplicaSetStatus](o)
		return fmt.Sprintf("%d desired, %d current, %d ready, %d available", s.Replicas, st.Replicas, st.ReadyReplicas, st.AvailableReplicas)
	},
	state: func(o *api.Object) string {
		s, st := specOf[api.ReplicaSetSpec](o), statusOf[api.ReplicaSetStatus](o)
		return fmt.Sprintf("%d/%d ready", st.ReadyReplicas, s.Replicas)
	},
	owns: []string{api.KindVirtualMachine},
})

func newRSCommands(env *Env) []*cobra.Command {
	return []*cobra.Command{
		newRSCreateCommand(env), newRSScaleCommand(env),
		rsKind.lsCommand(env), rsKind.infoCommand(env), rsKind.destroyCommand(env),
	}
}

// rsCreateOptions runs `psc rs.create NAME`.
type rsCreateOptions struct {
	env  *Env
	w    workloadFlags
	name string

	spec   api.ReplicaSetSpec
	labels map[string]string
}

func newRSCreateCommand(env *Env) *cobra.Command {
	o := &rsCreateOptions{env: env}
	cmd := &cobra.Command{
		Use:   "rs.create [-replicas 1] [-pool POOL] [-l KEY=VAL] [vm.create's flags] NAME",
		Short: "Create a replica set: keep -replicas VMs of one template running in a pool",
		Long: "Create a replica set: vcenter keeps -replicas VMs made from the template that the\n" +
			"vm.create flags describe (-c, -m, -image, -cmd, -e, -port, -cpu.*, -mem.*) powered on\n" +
			"in -pool, named NAME-xxxxx and spread over the hosts. The VMs carry the -l labels\n" +
			"(default app=NAME), which are also the set's selector.",
		Example: `  psc rs.create -replicas 3 -pool dev web
  psc rs.create -replicas 2 -image nginx -cmd '' -port 80 -m 512 -cpu.reservation 500 -l app=web,tier=fe web
  psc rs.create -namespace team -replicas 2 api   # /dc1/replicaset/team/api in pool Resources/team`,
		Args: exactArgs(1, "one NAME"),
		RunE: runE(o),
	}
	o.w.register(cmd.Flags())
	return rsKind.verb(cmd, "create")
}

func (o *rsCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.name = args[0]
	return nil
}

func (o *rsCreateOptions) Validate() error {
	if err := createName("rs.create", o.name); err != nil {
		return err
	}
	lbls, tmpl, err := o.w.shape(o.name)
	if err != nil {
		return err
	}
	o.labels = lbls
	o.spec = api.ReplicaSetSpec{Replicas: o.w.replicas, Selector: api.LabelSelector{MatchLabels: lbls},
		Template: tmpl, MinReadySeconds: o.w.minReady}
	return nil
}

func (o *rsCreateOptions) Run(ctx context.Context) error {
	r, p, err := o.env.resolvePath(ctx, api.KindReplicaSet, o.name)
	if err != nil {
		return err
	}
	if o.spec.Pool, err = namespacePool(ctx, r, p, o.w.pool); err != nil {
		return err
	}
	obj := api.New(api.KindReplicaSet, p, o.spec)
	obj.Labels = o.labels
	if _, err := r.API.Create(ctx, obj); err != nil {
		return err
	}
	fmt.Fprintf(o.env.Out, "Created ReplicaSet %s in pool %s (%d replicas)\n", p, o.spec.Pool, o.spec.Replicas)
	return nil
}

// scaleOptions runs `psc rs.scale` and `psc deployment.scale`: -replicas N NAME...
type scaleOptions struct {
	env      *Env
	wk       *workloadKind
	cmd      *cobra.Command
	replicas int
	names    []string
}

func newRSScaleCommand(env *Env) *cobra.Command { return newScaleCommand(env, rsKind) }

func newScaleCommand(env *Env, wk *workloadKind) *cobra.Command {
	o := &scaleOptions{env: env, wk: wk}
	cmd := &cobra.Command{
		Use:   wk.prefix + ".scale -replicas N NAME...",
		Short: "Set the number of VMs " + wk.noun + " keep running",
		Example: fmt.Sprintf(`  psc %[1]s.scale -replicas 5 web
  psc %[1]s.scale -replicas 0 'test-*'`, wk.prefix),
		Args: minArgs(1, "at least one NAME"),
		RunE: runE(o),
	}
	cmd.Flags().IntVar(&o.replicas, "replicas", 0, "the new number of VMs (required)")
	o.cmd = cmd
	return wk.verb(cmd, "scale")
}

func (o *scaleOptions) Complete(_ *cobra.Command, args []string) error {
	o.names = args
	return nil
}

func (o *scaleOptions) Validate() error {
	if !o.cmd.Flags().Changed("replicas") {
		return usagef("%s.scale: -replicas N is required", o.wk.prefix)
	}
	if o.replicas < 0 {
		return usagef("-replicas %d is negative: want 0 or more VMs", o.replicas)
	}
	return nil
}

func (o *scaleOptions) Run(ctx context.Context) error {
	r, paths, err := o.env.resolvePaths(ctx, o.wk.kind, o.names)
	if err != nil {
		return err
	}
	for _, p := range paths {
		from := 0
		_, err := modify(ctx, r.API, p, func(obj *api.Object) error {
			if err := refuseOwned(obj, "scale", "it would scale it back"); err != nil {
				return err
			}
			return setReplicas(obj, o.replicas, &from)
		})
		if err != nil && !errors.Is(err, errUnchanged) {
			return err
		}
		if from == o.replicas {
			fmt.Fprintf(o.env.Out, "%s %s already has %d replicas\n", o.wk.kind, p, from)
			continue
		}
		fmt.Fprintf(o.env.Out, "Scaled %s %s from %d to %d replicas\n", o.wk.kind, p, from, o.replicas)
	}
	return nil
}

// setReplicas sets the replicas of a ReplicaSet or Deployment, leaving the
// rest of its spec as it is; from is what they were.
func setReplicas(obj *api.Object, n int, from *int) error {
	var spec map[string]any
	if err := obj.DecodeSpec(&spec); err != nil {
		return fmt.Errorf("%s: %v: %w", obj.Path, err, api.ErrInvalid)
	}
	if spec == nil {
		spec = map[string]any{}
	}
	if f, ok := spec["replicas"].(float64); ok {
		*from = int(f)
	}
	if *from == n {
		return errUnchanged
	}
	spec["replicas"] = n
	obj.SetSpec(spec)
	return nil
}
