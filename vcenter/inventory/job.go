package inventory

import (
	"fmt"
	"reflect"

	"github.com/podsphere/podsphere/api"
)

// job runs VMs of a template to completion: completions successes, at
// most parallelism at once, failed once more than backoffLimit VMs failed.
type job struct{ base }

func init() { register(api.KindJob, job{}) }

func (job) names() kindNames {
	return kindNames{word: "Job", createTask: "CreateJob", changeTask: "ReconfigureJob", removeTask: "Destroy_Task",
		createdEvent: "JobCreatedEvent", changedEvent: "JobReconfiguredEvent", goneEvent: "JobRemovedEvent"}
}

func (job) prepare(ref api.Ref, o *api.Object) error {
	s := api.JobSpec{Template: defaultTemplate(), Completions: 1, Parallelism: 1, BackoffLimit: 6}
	if err := decodeStrict(o.Spec, &s, "spec"); err != nil {
		return err
	}
	switch {
	case s.Completions < 1:
		return fmt.Errorf("spec.completions %d: want at least 1: %w", s.Completions, api.ErrInvalid)
	case s.Parallelism < 0:
		return fmt.Errorf("spec.parallelism %d is negative: %w", s.Parallelism, api.ErrInvalid)
	case s.BackoffLimit < 0:
		return fmt.Errorf("spec.backoffLimit %d is negative: %w", s.BackoffLimit, api.ErrInvalid)
	case s.ActiveDeadlineSeconds < 0:
		return fmt.Errorf("spec.activeDeadlineSeconds %d is negative: %w", s.ActiveDeadlineSeconds, api.ErrInvalid)
	}
	switch s.Template.Spec.RestartPolicy {
	case "Never", "OnFailure":
	case "":
		return fmt.Errorf("spec.template.spec.restartPolicy is required for a Job: Never or OnFailure (Always would never complete): %w", api.ErrInvalid)
	default:
		return fmt.Errorf("spec.template.spec.restartPolicy %q: a Job's VMs run to completion: want Never or OnFailure: %w", s.Template.Spec.RestartPolicy, api.ErrInvalid)
	}
	if err := validateWorkload(ref, workloadShape{Pool: s.Pool, Selector: s.Selector, Template: &s.Template}); err != nil {
		return err
	}
	o.SetSpec(s)
	return nil
}

func (job) admitCreate(t *Txn, _ api.Ref, o *api.Object) error {
	var s api.JobSpec
	_ = o.DecodeSpec(&s)
	return admitWorkload(t, s.Pool, false)
}

func (job) admitChange(_ *Txn, _ api.Ref, cur, o *api.Object) (string, error) {
	var old, s api.JobSpec
	_ = cur.DecodeSpec(&old)
	_ = o.DecodeSpec(&s)
	if err := immutable(old.Pool, s.Pool, old.Selector, s.Selector); err != nil {
		return "", err
	}
	if !reflect.DeepEqual(old.Template, s.Template) || old.Completions != s.Completions {
		return "", fmt.Errorf("a Job's template and completions cannot change once it runs (as in Kubernetes); delete it and create a new one: %w", api.ErrInvalid)
	}
	return "", nil
}

func (job) admitRemove(t *Txn, _ api.Ref, cur *api.Object, _ RemoveOptions) error {
	return removeOwned(t, cur.Path)
}
