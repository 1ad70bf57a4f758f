package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// deployment.rollout.*: a Deployment's revisions and rollouts.

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
