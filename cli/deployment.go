package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

// revisionSet is one of a Deployment's replica sets.
type revisionSet struct {
	obj  *api.Object
	spec api.ReplicaSetSpec
}

// revisions are the replica sets a Deployment owns, oldest revision first.
func revisions(ctx context.Context, c API, deployment string) ([]revisionSet, error) {
	sets, err := owned(ctx, c, api.KindReplicaSet, deployment)
	if err != nil {
		return nil, err
	}
	out := make([]revisionSet, 0, len(sets))
	for _, rs := range sets {
		out = append(out, revisionSet{obj: rs, spec: specOf[api.ReplicaSetSpec](rs)})
	}
	slices.SortStableFunc(out, func(a, b revisionSet) int { return int(a.spec.Revision - b.spec.Revision) })
	return out, nil
}

// rolloutState is where a Deployment's rollout stands (rollout.status, and its -json).
type rolloutState struct {
	Path      string `json:"path"`
	Revision  int64  `json:"revision"`
	Desired   int    `json:"desired"`
	Current   int    `json:"current"`
	Updated   int    `json:"updated"`
	Ready     int    `json:"ready"`
	Available int    `json:"available"`
	// Observed: the status describes the latest spec (observedGeneration).
	Observed bool   `json:"observed"`
	Paused   bool   `json:"paused"`
	Complete bool   `json:"complete"`
	Stuck    bool   `json:"stuck"`
	Message  string `json:"message"`
}

// rolloutOf judges a Deployment's rollout as kubectl rollout status does:
// stuck when the Progressing condition says the progress deadline passed;
// complete when every desired VM is updated and available and no old one is left.
func rolloutOf(o *api.Object) rolloutState {
	s, st := specOf[api.DeploymentSpec](o), statusOf[api.DeploymentStatus](o)
	r := rolloutState{Path: o.Path, Revision: st.Revision, Desired: s.Replicas, Current: st.Replicas, Updated: st.UpdatedReplicas,
		Ready: st.ReadyReplicas, Available: st.AvailableReplicas, Paused: s.Paused,
		Observed: o.Generation == 0 || st.ObservedGeneration >= o.Generation}
	figures := fmt.Sprintf("%d of %d updated, %d ready, %d available", r.Updated, r.Desired, r.Ready, r.Available)
	waiting := "Waiting for rollout of " + o.Path
	if r.Revision > 0 {
		waiting += fmt.Sprintf(" (revision %d)", r.Revision)
	}
	var prog *api.Condition
	for i := range st.Conditions {
		if st.Conditions[i].Type == condProgressing {
			prog = &st.Conditions[i]
		}
	}
	switch {
	case !r.Observed:
		r.Message = fmt.Sprintf("Waiting for the Deployment controller to see the change of %s (generation %d, observed %d)",
			o.Path, o.Generation, st.ObservedGeneration)
	case prog != nil && prog.Reason == reasonDeadlineExceeded:
		r.Stuck = true
		r.Message = fmt.Sprintf("Rollout of %s is stuck: %s", o.Path, figures)
		if prog.Message != "" {
			r.Message += " (" + prog.Message + ")"
		}
	case r.Paused:
		r.Message = fmt.Sprintf("Rollout of %s is paused: %s (psc deployment.rollout.resume %s continues it)", o.Path, figures, dcRelative(o.Path))
	case r.Updated < r.Desired:
		r.Message = waiting + ": " + figures
	case r.Current > r.Updated:
		r.Message = fmt.Sprintf("%s: %s, %d old VM(s) pending removal", waiting, figures, r.Current-r.Updated)
	case r.Available < r.Updated:
		r.Message = waiting + ": " + figures
	default:
		r.Complete = true
		r.Message = fmt.Sprintf("Rollout of %s complete: %s", o.Path, figures)
		if r.Revision > 0 {
			r.Message = fmt.Sprintf("Rollout of %s complete: revision %d, %s", o.Path, r.Revision, figures)
		}
	}
	return r
}

// rolloutStatusOptions runs `psc deployment.rollout.status [-w] [-timeout D] NAME`.
type rolloutStatusOptions struct {
	env     *Env
	watch   bool
	timeout time.Duration
	name    string
}

func newRolloutStatusCommand(env *Env) *cobra.Command {
	o := &rolloutStatusOptions{env: env}
	cmd := &cobra.Command{
		Use:   "deployment.rollout.status [-w] [-timeout 0] NAME",
		Short: "Show a deployment's rollout: updated, ready and available VMs of the desired; -w waits until it completes",
		Long: "Show where a deployment's rollout stands: how many of the desired VMs run the\n" +
			"current template (updated), are ready and are available. With -w, print each change\n" +
			"until the rollout completes, or fail (exit 1) when the Deployment controller finds it\n" +
			"stuck: no progress within the progress deadline. A stuck rollout exits 1 without -w too.",
		Example: `  psc deployment.rollout.status web
  psc deployment.rollout.status -w -timeout 5m web`,
		Args: exactArgs(1, "one NAME"),
		RunE: runE(o),
	}
	cmd.Flags().BoolVarP(&o.watch, "w", "w", false, "wait until the rollout completes or is stuck")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 0, "with -w, give up after this long (0: no limit)")
	return deploymentKind.verb(cmd, "rollout.status")
}

func (o *rolloutStatusOptions) Complete(_ *cobra.Command, args []string) error {
	o.name = args[0]
	return nil
}

func (o *rolloutStatusOptions) Validate() error {
	if o.timeout < 0 {
		return usagef("-timeout %s is negative", o.timeout)
	}
	if o.timeout > 0 && !o.watch {
		return usagef("-timeout applies to -w (waiting) only")
	}
	return nil
}

func (o *rolloutStatusOptions) Run(ctx context.Context) error {
	r, p, err := o.env.resolvePath(ctx, api.KindDeployment, o.name)
	if err != nil {
		return err
	}
	var state rolloutState
	last := ""
	report := func(obj *api.Object) bool {
		state = rolloutOf(obj)
		if !o.env.JSON && !state.Stuck && state.Message != last {
			fmt.Fprintln(o.env.Out, state.Message)
			last = state.Message
		}
		return !o.watch || state.Complete || state.Stuck
	}
	if o.watch {
		timeout := o.timeout
		if timeout == 0 {
			timeout = 100 * 365 * 24 * time.Hour // until complete, stuck or interrupted
		}
		if _, err := waitFor(ctx, r.API, p, timeout, report); err != nil {
			return fmt.Errorf("rollout of %s: %w", p, err)
		}
	} else {
		obj, err := r.API.Get(ctx, p)
		if err != nil {
			return err
		}
		report(obj)
	}
	if o.env.JSON {
		if err := writeJSON(o.env.Out, state); err != nil {
			return err
		}
	}
	if state.Stuck {
		return errors.New(state.Message) // exit 1, on stderr
	}
	return nil
}

// rolloutHistoryOptions runs `psc deployment.rollout.history NAME`.
type rolloutHistoryOptions struct {
	env  *Env
	name string
}

// revisionInfo is one row of rollout.history, and its -json element.
type revisionInfo struct {
	Revision   int64    `json:"revision"`
	ReplicaSet string   `json:"replicaSet"`
	Replicas   int      `json:"replicas"`
	Images     []string `json:"images"`
}

func newRolloutHistoryCommand(env *Env) *cobra.Command {
	o := &rolloutHistoryOptions{env: env}
	cmd := &cobra.Command{
		Use:   "deployment.rollout.history NAME",
		Short: "List a deployment's revisions: its replica sets, their VMs and images (the last is current)",
		Example: `  psc deployment.rollout.history web
  psc deployment.rollout.history -json team/web`,
		Args: exactArgs(1, "one NAME"),
		RunE: runE(o),
	}
	return deploymentKind.verb(cmd, "rollout.history")
}

func (o *rolloutHistoryOptions) Complete(_ *cobra.Command, args []string) error {
	o.name = args[0]
	return nil
}

func (o *rolloutHistoryOptions) Validate() error { return nil }

func (o *rolloutHistoryOptions) Run(ctx context.Context) error {
	r, p, err := o.env.resolvePath(ctx, api.KindDeployment, o.name)
	if err != nil {
		return err
	}
	if _, err := r.API.Get(ctx, p); err != nil {
		return err
	}
	sets, err := revisions(ctx, r.API, p)
	if err != nil {
		return err
	}
	infos := []revisionInfo{}
	for _, rs := range sets {
		var images []string
		for _, c := range rs.spec.Template.Spec.Containers {
			images = append(images, c.Image)
		}
		infos = append(infos, revisionInfo{Revision: rs.spec.Revision, ReplicaSet: rs.obj.Path, Replicas: rs.spec.Replicas, Images: images})
	}
	if o.env.JSON {
		return writeJSON(o.env.Out, infos)
	}
	rows := make([][]string, 0, len(sets))
	for _, rs := range sets {
		rows = append(rows, []string{revisionText(rs.spec.Revision), rs.obj.Name(), itoa(rs.spec.Replicas), imagesOf(rs.spec.Template)})
	}
	return writeTable(o.env.Out, []string{"Revision", "ReplicaSet", "Replicas", "Images"}, rows)
}

// rolloutUndoOptions runs `psc deployment.rollout.undo [-to-revision N] NAME`.
type rolloutUndoOptions struct {
	env      *Env
	revision int64
	name     string
}

func newRolloutUndoCommand(env *Env) *cobra.Command {
	o := &rolloutUndoOptions{env: env}
	cmd := &cobra.Command{
		Use:   "deployment.rollout.undo [-to-revision N] NAME",
		Short: "Roll a deployment back: its template becomes that of a revision (default: the previous one)",
		Example: `  psc deployment.rollout.undo web
  psc deployment.rollout.undo -to-revision 2 web`,
		Args: exactArgs(1, "one NAME"),
		RunE: runE(o),
	}
	cmd.Flags().Int64Var(&o.revision, "to-revision", 0, "the revision to go back to (0: the one before the current)")
	return deploymentKind.verb(cmd, "rollout.undo")
}

func (o *rolloutUndoOptions) Complete(_ *cobra.Command, args []string) error {
	o.name = args[0]
	return nil
}

func (o *rolloutUndoOptions) Validate() error {
	if o.revision < 0 {
		return usagef("-to-revision %d is negative", o.revision)
	}
	return nil
}

func (o *rolloutUndoOptions) Run(ctx context.Context) error {
	r, p, err := o.env.resolvePath(ctx, api.KindDeployment, o.name)
	if err != nil {
		return err
	}
	sets, err := revisions(ctx, r.API, p)
	if err != nil {
		return err
	}
	rev := o.revision
	skipped := false
	_, err = modify(ctx, r.API, p, func(obj *api.Object) error {
		s, st := specOf[api.DeploymentSpec](obj), statusOf[api.DeploymentStatus](obj)
		if s.Paused {
			return &cliError{msg: fmt.Sprintf("%s is paused: a paused deployment cannot be rolled back; resume it first (psc deployment.rollout.resume %s)",
				p, dcRelative(p)), sentinel: api.ErrConflict}
		}
		target, err := undoTarget(p, sets, st.Revision, o.revision)
		if err != nil {
			return err
		}
		rev = target.spec.Revision
		t := target.spec.Template
		t.Labels = maps.Clone(t.Labels)
		delete(t.Labels, templateHashLabel)
		if len(t.Labels) == 0 {
			t.Labels = nil
		}
		if sameJSONValue(t, s.Template) {
			skipped = true
			return errUnchanged
		}
		var spec map[string]any
		if err := obj.DecodeSpec(&spec); err != nil {
			return fmt.Errorf("%s: %v: %w", p, err, api.ErrInvalid)
		}
		spec["template"] = t
		obj.SetSpec(spec)
		return nil
	})
	if skipped {
		fmt.Fprintf(o.env.Out, "Deployment %s already runs the template of revision %d: nothing to roll back\n", p, rev)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(o.env.Out, "Rolled back %s to revision %d\n", p, rev)
	return nil
}

// undoTarget is the set of revision want, or, for 0, of the newest revision
// before the current one.
func undoTarget(p string, sets []revisionSet, current, want int64) (revisionSet, error) {
	if current == 0 && len(sets) > 0 {
		current = sets[len(sets)-1].spec.Revision
	}
	if want > 0 {
		for _, rs := range sets {
			if rs.spec.Revision == want {
				return rs, nil
			}
		}
		return revisionSet{}, fmt.Errorf("revision %d of %s not found (psc deployment.rollout.history %s lists them): %w", want, p, dcRelative(p), api.ErrNotFound)
	}
	for _, rs := range slices.Backward(sets) {
		if rs.spec.Revision < current {
			return rs, nil
		}
	}
	return revisionSet{}, fmt.Errorf("%s has no revision before the current one (%s) to roll back to: %w", p, revisionText(current), api.ErrNotFound)
}

// rolloutPauseOptions runs `psc deployment.rollout.pause NAME...` and `.resume`.
type rolloutPauseOptions struct {
	env   *Env
	pause bool
	names []string
}

func newRolloutPauseCommand(env *Env, pause bool) *cobra.Command {
	o := &rolloutPauseOptions{env: env, pause: pause}
	cmd := &cobra.Command{
		Use:     "deployment.rollout.pause NAME...",
		Short:   "Pause deployments' rollouts: template changes wait until resumed (scaling still works)",
		Example: "  psc deployment.rollout.pause web",
		Args:    minArgs(1, "at least one NAME"),
		RunE:    runE(o),
	}
	verb := "rollout.pause"
	if !pause {
		cmd.Use = "deployment.rollout.resume NAME..."
		cmd.Short = "Resume deployments' rollouts: roll out the template changes made while paused"
		cmd.Example = "  psc deployment.rollout.resume web"
		verb = "rollout.resume"
	}
	return deploymentKind.verb(cmd, verb)
}

func (o *rolloutPauseOptions) Complete(_ *cobra.Command, args []string) error {
	o.names = args
	return nil
}

func (o *rolloutPauseOptions) Validate() error { return nil }

func (o *rolloutPauseOptions) Run(ctx context.Context) error {
	r, paths, err := o.env.resolvePaths(ctx, api.KindDeployment, o.names)
	if err != nil {
		return err
	}
	word, done := "Paused", "paused"
	if !o.pause {
		word, done = "Resumed", "running (not paused)"
	}
	for _, p := range paths {
		_, err := modify(ctx, r.API, p, func(obj *api.Object) error {
			var spec map[string]any
			if err := obj.DecodeSpec(&spec); err != nil {
				return fmt.Errorf("%s: %v: %w", p, err, api.ErrInvalid)
			}
			if paused, _ := spec["paused"].(bool); paused == o.pause {
				return errUnchanged
			}
			spec["paused"] = o.pause
			obj.SetSpec(spec)
			return nil
		})
		switch {
		case errors.Is(err, errUnchanged):
			fmt.Fprintf(o.env.Out, "Rollout of %s is already %s\n", p, done)
		case err != nil:
			return err
		default:
			fmt.Fprintf(o.env.Out, "%s rollout of %s\n", word, p)
		}
	}
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
