package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/podsphere/podsphere/api"
)

// The kinds that have only ls, info and destroy here.
var (
	daemonSetKind = registerWorkload(&workloadKind{
		kind: api.KindDaemonSet, prefix: "daemonset", alias: "ds", noun: "daemon sets",
		header: []string{"Desired", "Current", "Ready", "Host selector"},
		row: func(o *api.Object, _ time.Time) []string {
			s, st := specOf[api.DaemonSetSpec](o), statusOf[api.DaemonSetStatus](o)
			return []string{itoa(st.DesiredNumberScheduled), itoa(st.CurrentNumberScheduled), itoa(st.NumberReady), labelsText(s.Template.Spec.HostSelector)}
		},
		info: func(ctx context.Context, c API, o *api.Object, b *block, loc *time.Location) error {
			s, st := specOf[api.DaemonSetSpec](o), statusOf[api.DaemonSetStatus](o)
			addTemplate(b, s.Pool, s.Selector, s.Template, s.HA)
			b.add("Host selector", "%s", labelsText(s.Template.Spec.HostSelector))
			b.add("Hosts", "%d desired, %d current, %d ready", st.DesiredNumberScheduled, st.CurrentNumberScheduled, st.NumberReady)
			addConditions(b, st.Conditions)
			addWaiting(b, st.Waiting, loc)
			return addMembers(ctx, c, b, o.Path)
		},
		summary: func(o *api.Object) string {
			st := statusOf[api.DaemonSetStatus](o)
			return fmt.Sprintf("%d desired, %d current, %d ready", st.DesiredNumberScheduled, st.CurrentNumberScheduled, st.NumberReady)
		},
		state: func(o *api.Object) string {
			st := statusOf[api.DaemonSetStatus](o)
			return fmt.Sprintf("%d/%d ready", st.NumberReady, st.DesiredNumberScheduled)
		},
		owns: []string{api.KindVirtualMachine},
	})

	jobKind = registerWorkload(&workloadKind{
		kind: api.KindJob, prefix: "job", noun: "jobs",
		header: []string{"Status", "Completions", "Duration"},
		row: func(o *api.Object, now time.Time) []string {
			s, st := specOf[api.JobSpec](o), statusOf[api.JobStatus](o)
			return []string{jobState(st), fmt.Sprintf("%d/%d", st.Succeeded, s.Completions), jobDuration(st, now)}
		},
		info: func(ctx context.Context, c API, o *api.Object, b *block, loc *time.Location) error {
			s, st := specOf[api.JobSpec](o), statusOf[api.JobStatus](o)
			addTemplate(b, s.Pool, s.Selector, s.Template, api.HAPolicy{})
			b.add("State", "%s", jobState(st))
			b.add("Completions", "%d of %d succeeded (parallelism %d)", st.Succeeded, s.Completions, s.Parallelism)
			b.add("Active", "%d", st.Active)
			b.add("Failed", "%d (backoff limit %d)", st.Failed, s.BackoffLimit)
			if s.ActiveDeadlineSeconds > 0 {
				b.add("Deadline", "%ds", s.ActiveDeadlineSeconds)
			}
			b.add("Start time", "%s", timeString(st.StartTime, loc))
			b.add("Completion time", "%s", timeString(st.CompletionTime, loc))
			addConditions(b, st.Conditions)
			addWaiting(b, st.Waiting, loc)
			return addMembers(ctx, c, b, o.Path)
		},
		summary: func(o *api.Object) string {
			s, st := specOf[api.JobSpec](o), statusOf[api.JobStatus](o)
			return fmt.Sprintf("%s, %d/%d succeeded", jobState(st), st.Succeeded, s.Completions)
		},
		state: func(o *api.Object) string {
			s, st := specOf[api.JobSpec](o), statusOf[api.JobStatus](o)
			return fmt.Sprintf("%s %d/%d", jobState(st), st.Succeeded, s.Completions)
		},
		owns: []string{api.KindVirtualMachine},
	})

	autoscalerKind = registerWorkload(&workloadKind{
		kind: api.KindAutoscaler, prefix: "hpa", noun: "autoscalers (HorizontalPodAutoscaler)",
		header: []string{"Target", "CPU", "Min", "Max", "Replicas"},
		row: func(o *api.Object, _ time.Time) []string {
			s, st := specOf[api.AutoscalerSpec](o), statusOf[api.AutoscalerStatus](o)
			return []string{dcRelative(s.Target), cpuTarget(s, st), itoa(s.MinReplicas), itoa(s.MaxReplicas), itoa(st.CurrentReplicas)}
		},
		info: func(_ context.Context, _ API, o *api.Object, b *block, loc *time.Location) error {
			s, st := specOf[api.AutoscalerSpec](o), statusOf[api.AutoscalerStatus](o)
			b.add("Target", "%s", orDash(s.Target))
			b.add("Replicas", "%d current, %d desired (min %d, max %d)", st.CurrentReplicas, st.DesiredReplicas, s.MinReplicas, s.MaxReplicas)
			if st.CurrentCPUUtilization != nil {
				b.add("CPU", "%d%% of the reservation (target %d%%)", *st.CurrentCPUUtilization, s.TargetCPUUtilization)
			} else {
				b.add("CPU", "not measured yet (target %d%% of the reservation)", s.TargetCPUUtilization)
			}
			up, down := 0, 300
			if s.ScaleUpStabilizationSeconds != nil {
				up = *s.ScaleUpStabilizationSeconds
			}
			if s.ScaleDownStabilizationSeconds != nil {
				down = *s.ScaleDownStabilizationSeconds
			}
			b.add("Stabilization", "up %ds, down %ds", up, down)
			b.add("Last scale", "%s", timeString(st.LastScaleTime, loc))
			addConditions(b, st.Conditions)
			return nil
		},
		summary: func(o *api.Object) string {
			s, st := specOf[api.AutoscalerSpec](o), statusOf[api.AutoscalerStatus](o)
			return fmt.Sprintf("%s, %d replica(s) (%d-%d), CPU %s", dcRelative(s.Target), st.CurrentReplicas, s.MinReplicas, s.MaxReplicas, cpuTarget(s, st))
		},
		state: func(o *api.Object) string {
			s, st := specOf[api.AutoscalerSpec](o), statusOf[api.AutoscalerStatus](o)
			return fmt.Sprintf("%d replica(s) (%d-%d), CPU %s", st.CurrentReplicas, s.MinReplicas, s.MaxReplicas, cpuTarget(s, st))
		},
	})
)

func itoa(i int) string { return strconv.Itoa(i) }

// jobState is Complete or Failed by the Job's conditions, else Running or Pending.
func jobState(st api.JobStatus) string {
	for _, c := range st.Conditions {
		if c.Status == "True" && (c.Type == "Complete" || c.Type == "Failed") {
			return c.Type
		}
	}
	if st.Active > 0 {
		return "Running"
	}
	return "Pending"
}

// jobDuration is how long the Job ran (so far), "-" before it started.
func jobDuration(st api.JobStatus, now time.Time) string {
	if st.StartTime.IsZero() {
		return "-"
	}
	end := st.CompletionTime
	if end.IsZero() {
		end = now
	}
	return shortDuration(end.Sub(st.StartTime))
}

// cpuTarget is kubectl's TARGETS: current/target CPU utilization, -/80% before a measurement.
func cpuTarget(s api.AutoscalerSpec, st api.AutoscalerStatus) string {
	cur := "-"
	if st.CurrentCPUUtilization != nil {
		cur = strconv.Itoa(*st.CurrentCPUUtilization) + "%"
	}
	return fmt.Sprintf("%s/%d%%", cur, s.TargetCPUUtilization)
}
