package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// Deployments: a replica set whose template changes roll out (deployment.*).
// vcenter's Deployment controller keeps one ReplicaSet per template
// revision (NAME-HASH, labelled pod-template-hash) and moves the VMs from
// the old sets to the new one as the strategy says.

// templateHashLabel is the label the Deployment controller adds to each of
// its replica sets' selector and template (Kubernetes' pod-template-hash);
// a rollback copies a set's template back without it.
const templateHashLabel = "pod-template-hash"

// Deployment conditions that rollout.status reads (Kubernetes' names).
const (
	condProgressing          = "Progressing"
	reasonDeadlineExceeded   = "ProgressDeadlineExceeded"
	defaultRevisionHistory   = 10
	defaultProgressDeadlineS = 600
)

var deploymentKind = registerWorkload(&workloadKind{
	kind: api.KindDeployment, prefix: "deployment", alias: "deploy", noun: "deployments",
	header: []string{"Desired", "Current", "Ready", "Up-to-date", "Available"},
	row: func(o *api.Object, _ time.Time) []string {
		s, st := specOf[api.DeploymentSpec](o), statusOf[api.DeploymentStatus](o)
		return []string{itoa(s.Replicas), itoa(st.Replicas), itoa(st.ReadyReplicas), itoa(st.UpdatedReplicas), itoa(st.AvailableReplicas)}
	},
	info: func(ctx context.Context, c API, o *api.Object, b *block, loc *time.Location) error {
		s, st := specOf[api.DeploymentSpec](o), statusOf[api.DeploymentStatus](o)
		addTemplate(b, s.Pool, s.Selector, s.Template, s.HA)
		b.add("Strategy", "%s", strategyText(s.Strategy))
		if s.MinReadySeconds > 0 {
			b.add("Min ready", "%ds", s.MinReadySeconds)
		}
		b.add("Progress deadline", "%ds", s.ProgressDeadlineSeconds)
		b.add("Paused", "%t", s.Paused)
		b.add("Revision", "%s", revisionText(st.Revision))
		b.add("Replicas", "%d desired, %d current, %d ready, %d up-to-date, %d available, %d unavailable",
			s.Replicas, st.Replicas, st.ReadyReplicas, st.UpdatedReplicas, st.AvailableReplicas, st.UnavailableReplicas)
		addConditions(b, st.Conditions)
		addWaiting(b, st.Waiting, loc)
		sets, err := revisions(ctx, c, o.Path)
		if err != nil {
			return err
		}
		var lines []string
		for _, rs := range slices.Backward(sets) {
			rst := statusOf[api.ReplicaSetStatus](rs.obj)
			lines = append(lines, fmt.Sprintf("%s (revision %d, %d desired, %d current, %d ready)",
				rs.obj.Name(), rs.spec.Revision, rs.spec.Replicas, rst.Replicas, rst.ReadyReplicas))
		}
		b.list("Replica sets", lines)
		return nil
	},
	summary: func(o *api.Object) string {
		s, st := specOf[api.DeploymentSpec](o), statusOf[api.DeploymentStatus](o)
		return fmt.Sprintf("%d desired, %d up-to-date, %d available, revision %s", s.Replicas, st.UpdatedReplicas, st.AvailableReplicas, revisionText(st.Revision))
	},
	state: func(o *api.Object) string {
		s, st := specOf[api.DeploymentSpec](o), statusOf[api.DeploymentStatus](o)
		return fmt.Sprintf("%d/%d ready", st.ReadyReplicas, s.Replicas)
	},
	owns: []string{api.KindReplicaSet, api.KindVirtualMachine},
})

func revisionText(r int64) string {
	if r == 0 {
		return "-"
	}
	return strconv.FormatInt(r, 10)
}

func strategyText(s api.Strategy) string {
	if s.Type == api.Recreate {
		return api.Recreate
	}
	surge, unavail := "25%", "25%"
	if s.MaxSurge != nil {
		surge = s.MaxSurge.String()
	}
	if s.MaxUnavailable != nil {
		unavail = s.MaxUnavailable.String()
	}
	return fmt.Sprintf("%s (max surge %s, max unavailable %s)", api.RollingUpdate, surge, unavail)
}

func newDeploymentCommands(env *Env) []*cobra.Command {
	return []*cobra.Command{
		newDeploymentCreateCommand(env), newScaleCommand(env, deploymentKind),
		deploymentKind.lsCommand(env), deploymentKind.infoCommand(env), deploymentKind.destroyCommand(env),
		newRolloutStatusCommand(env), newRolloutHistoryCommand(env), newRolloutUndoCommand(env),
		newRolloutPauseCommand(env, true), newRolloutPauseCommand(env, false),
		newSetImageCommand(env),
	}
}

// deploymentCreateOptions runs `psc deployment.create NAME`.
type deploymentCreateOptions struct {
	env            *Env
	w              workloadFlags
	strategy       string
	maxSurge       string
	maxUnavailable string
	name           string

	spec   api.DeploymentSpec
	labels map[string]string
}

func newDeploymentCreateCommand(env *Env) *cobra.Command {
	o := &deploymentCreateOptions{env: env}
	cmd := &cobra.Command{
		Use:   "deployment.create [rs.create's flags] [-strategy RollingUpdate|Recreate] [-max-surge 25%] [-max-unavailable 25%] NAME",
		Short: "Create a deployment: a replica set whose template changes roll out",
		Long: "Create a deployment: vcenter keeps -replicas VMs of the template (the vm.create flags)\n" +
			"running in -pool through a replica set per template revision. A change of the template\n" +
			"(deployment.set.image) rolls out: RollingUpdate replaces the VMs a few at a time, at most\n" +
			"-max-surge above and -max-unavailable below -replicas (counts or percentages of it);\n" +
			"Recreate removes every old VM before making new ones.",
		Example: `  psc deployment.create -replicas 3 -image nginx:1.27 -cmd '' -port 80 -pool dev web
  psc deployment.create -replicas 4 -strategy RollingUpdate -max-surge 1 -max-unavailable 0 web
  psc deployment.create -strategy Recreate -namespace team db-proxy`,
		Args: exactArgs(1, "one NAME"),
		RunE: runE(o),
	}
	f := cmd.Flags()
	o.w.register(f)
	f.StringVar(&o.strategy, "strategy", api.RollingUpdate, "how template changes replace VMs: RollingUpdate or Recreate")
	f.StringVar(&o.maxSurge, "max-surge", "", "RollingUpdate: VMs above -replicas during a rollout, a count or a percentage (default 25%)")
	f.StringVar(&o.maxUnavailable, "max-unavailable", "", "RollingUpdate: VMs below -replicas during a rollout, a count or a percentage (default 25%)")
	return deploymentKind.verb(cmd, "create")
}

func (o *deploymentCreateOptions) Complete(_ *cobra.Command, args []string) error {
	o.name = args[0]
	return nil
}

func (o *deploymentCreateOptions) Validate() error {
	if err := createName("deployment.create", o.name); err != nil {
		return err
	}
	lbls, tmpl, err := o.w.shape(o.name)
	if err != nil {
		return err
	}
	st, err := parseStrategy(o.strategy, o.maxSurge, o.maxUnavailable)
	if err != nil {
		return err
	}
	o.labels = lbls
	o.spec = api.DeploymentSpec{Replicas: o.w.replicas, Selector: api.LabelSelector{MatchLabels: lbls},
		Template: tmpl, MinReadySeconds: o.w.minReady, Strategy: st,
		RevisionHistoryLimit: defaultRevisionHistory, ProgressDeadlineSeconds: max(defaultProgressDeadlineS, o.w.minReady+1)}
	return nil
}

// parseStrategy reads -strategy, -max-surge and -max-unavailable, with
// Kubernetes' defaults (RollingUpdate, 25% and 25%) and checks.
func parseStrategy(typ, surge, unavail string) (api.Strategy, error) {
	var st api.Strategy
	switch strings.ToLower(typ) {
	case strings.ToLower(api.RollingUpdate):
		st.Type = api.RollingUpdate
	case strings.ToLower(api.Recreate):
		st.Type = api.Recreate
		if surge != "" || unavail != "" {
			return st, usagef("-max-surge and -max-unavailable apply to -strategy RollingUpdate, not Recreate")
		}
		return st, nil
	default:
		return st, usagef("-strategy %q: want RollingUpdate or Recreate", typ)
	}
	var err error
	if st.MaxSurge, err = parseIntOrPercent("max-surge", surge); err != nil {
		return st, err
	}
	if st.MaxUnavailable, err = parseIntOrPercent("max-unavailable", unavail); err != nil {
		return st, err
	}
	zero := func(v *api.IntOrString) bool {
		if v == nil {
			return false // the default, 25%
		}
		n, _ := v.Scaled(100, true)
		return n == 0
	}
	if zero(st.MaxSurge) && zero(st.MaxUnavailable) {
		return st, usagef("-max-surge and -max-unavailable cannot both be 0: the rollout could never replace a VM")
	}
	return st, nil
}

// parseIntOrPercent reads a count (1) or a percentage (25%); "" is nil (the default).
func parseIntOrPercent(flag, s string) (*api.IntOrString, error) {
	if s == "" {
		return nil, nil
	}
	bad := usagef("-%s %q: want a count (1) or a percentage (25%%)", flag, s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, bad
		}
		if flag == "max-unavailable" && n > 100 {
			return nil, usagef("-%s %s is above 100%%", flag, s)
		}
		v := api.Str(s)
		return &v, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return nil, bad
	}
	v := api.Int(n)
	return &v, nil
}

func (o *deploymentCreateOptions) Run(ctx context.Context) error {
	r, p, err := o.env.resolvePath(ctx, api.KindDeployment, o.name)
	if err != nil {
		return err
	}
	if o.spec.Pool, err = namespacePool(ctx, r, p, o.w.pool); err != nil {
		return err
	}
	obj := api.New(api.KindDeployment, p, o.spec)
	obj.Labels = o.labels
	if _, err := r.API.Create(ctx, obj); err != nil {
		return err
	}
	fmt.Fprintf(o.env.Out, "Created Deployment %s in pool %s (%d replicas)\n", p, o.spec.Pool, o.spec.Replicas)
	return nil
}

// setImageOptions runs `psc deployment.set.image NAME CONTAINER=IMAGE...`.
type setImageOptions struct {
	env    *Env
	name   string
	images [][2]string // container (or *), image
}

func newSetImageCommand(env *Env) *cobra.Command {
	o := &setImageOptions{env: env}
	cmd := &cobra.Command{
		Use:   "deployment.set.image NAME CONTAINER=IMAGE...",
		Short: "Set the image of a deployment's containers: a new template, which rolls out",
		Long: "Set the image of containers of a deployment's template (init containers too), as\n" +
			"kubectl set image does; * names every container. The changed template is a new\n" +
			"revision, rolled out as the deployment's strategy says (deployment.rollout.status -w\n" +
			"follows it). psc's VMs have one container, main.",
		Example: `  psc deployment.set.image web main=nginx:1.28
  psc deployment.set.image team/web '*=registry.local/web:2'`,
		Args: minArgs(2, "a NAME and at least one CONTAINER=IMAGE"),
		RunE: runE(o),
	}
	return deploymentKind.verb(cmd, "set.image")
}

func (o *setImageOptions) Complete(_ *cobra.Command, args []string) error {
	o.name = args[0]
	for _, a := range args[1:] {
		c, img, ok := strings.Cut(a, "=")
		if !ok || c == "" || img == "" {
			return usagef("deployment.set.image: %q: want CONTAINER=IMAGE", a)
		}
		o.images = append(o.images, [2]string{c, img})
	}
	return nil
}

func (o *setImageOptions) Validate() error { return nil }

func (o *setImageOptions) Run(ctx context.Context) error {
	r, p, err := o.env.resolvePath(ctx, api.KindDeployment, o.name)
	if err != nil {
		return err
	}
	var changes []string
	_, err = modify(ctx, r.API, p, func(obj *api.Object) error {
		changes = nil
		var spec map[string]any
		if err := obj.DecodeSpec(&spec); err != nil {
			return fmt.Errorf("%s: %v: %w", p, err, api.ErrInvalid)
		}
		s := specOf[api.DeploymentSpec](obj)
		t := s.Template
		var names []string
		for _, set := range o.images {
			found := false
			for _, cs := range [][]api.Container{t.Spec.InitContainers, t.Spec.Containers} {
				for i := range cs {
					if set[0] != "*" && cs[i].Name != set[0] {
						continue
					}
					found = true
					if cs[i].Image != set[1] {
						cs[i].Image = set[1]
						changes = append(changes, cs[i].Name+"="+set[1])
					}
				}
			}
			if !found {
				for _, c := range append(slices.Clone(t.Spec.InitContainers), t.Spec.Containers...) {
					names = append(names, c.Name)
				}
				return usagef("deployment.set.image: %s has no container %q (its containers: %s)", p, set[0], strings.Join(names, ", "))
			}
		}
		if len(changes) == 0 {
			return errUnchanged
		}
		spec["template"] = t
		obj.SetSpec(spec)
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		fmt.Fprintf(o.env.Out, "Deployment %s already runs those images\n", p)
		return nil
	case err != nil:
		return err
	}
	fmt.Fprintf(o.env.Out, "Set image of %s: %s (rolling out; psc deployment.rollout.status -w %s follows it)\n", p, strings.Join(changes, ", "), dcRelative(p))
	return nil
}
