package controllers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// AutoscalerUser is who the autoscaler's actions are recorded as.
const AutoscalerUser = "controller:autoscaler"

// Autoscaler timings, Kubernetes' defaults: the metrics are looked at every
// 15 s, a ratio within 10% of 1 changes nothing, and a scale-down takes the
// highest recommendation of the last 5 minutes so load that comes and goes
// does not make the target flap.
const (
	AutoscalerSyncPeriod        = 15 * time.Second
	AutoscalerTolerance         = 0.1
	DefaultScaleDownWindow      = 300 // seconds
	DefaultScaleUpWindowSeconds = 0
)

// Autoscalers scale Deployments and ReplicaSets from their members' CPU
// use, which hosts measure in the VMs' cgroups and report (VMStatus.CPUUsageMHz),
// against what the members request (their CPU reservation), as
// HorizontalPodAutoscaler autoscaling/v2 does with a Utilization target.
type Autoscalers struct {
	inv   *inventory.Inventory
	clock Clock

	mu   sync.Mutex
	recs map[string][]recommendation // autoscaler path -> recent recommendations
}

type recommendation struct {
	at       time.Time
	replicas int
}

// NewAutoscalers makes the controller.
func NewAutoscalers(inv *inventory.Inventory, clock Clock) *Autoscalers {
	if clock == nil {
		clock = realClock{}
	}
	return &Autoscalers{inv: inv, clock: clock, recs: map[string][]recommendation{}}
}

func (c *Autoscalers) Name() string { return "autoscaler" }

// Keys: the autoscaler only; it looks at its target's metrics every sync
// period, like Kubernetes' HPA, rather than at every status report.
func (c *Autoscalers) Keys(old, new *api.Object) []string {
	o := new
	if o == nil {
		o = old
	}
	if o.Kind == api.KindAutoscaler {
		if new == nil {
			c.mu.Lock()
			delete(c.recs, o.Path)
			c.mu.Unlock()
		}
		return []string{o.Path}
	}
	return nil
}

func (c *Autoscalers) Resync(inv *inventory.Inventory) []string {
	return pathsOf(inv, api.KindAutoscaler)
}

func (c *Autoscalers) Reconcile(ctx context.Context, key string) (Result, error) {
	obj, spec, err := load[api.AutoscalerSpec](c.inv, key)
	if obj == nil || err != nil {
		return Result{}, err
	}
	now := c.clock.Now()
	var old api.AutoscalerStatus
	_ = obj.DecodeStatus(&old)
	st := api.AutoscalerStatus{LastScaleTime: old.LastScaleTime}
	res := Result{RequeueAfter: AutoscalerSyncPeriod}

	target, err := c.inv.Get(spec.Target)
	if err != nil {
		if !errors.Is(err, api.ErrNotFound) {
			return Result{}, err
		}
		st.Conditions = []api.Condition{setCondition(old.Conditions, api.Condition{Type: "AbleToScale", Status: "False", Reason: "FailedGetScale",
			Message: fmt.Sprintf("the target %s does not exist", spec.Target)}, now)}
		return res, c.write(key, st)
	}
	var ts struct {
		Replicas int            `json:"replicas"`
		Template api.VMTemplate `json:"template"`
	}
	_ = target.DecodeSpec(&ts)
	st.CurrentReplicas = ts.Replicas
	c.seed(key, ts.Replicas, now)
	request := ts.Template.Spec.CPU.Reservation
	usage, running := c.usage(target)

	desired := ts.Replicas
	var cond api.Condition
	switch {
	case request <= 0:
		cond = api.Condition{Type: "ScalingActive", Status: "False", Reason: "FailedGetResourceMetric",
			Message: fmt.Sprintf("the members of %s request no CPU (template cpu reservation 0): utilization is a share of the request", api.Base(spec.Target))}
	case running == 0:
		cond = api.Condition{Type: "ScalingActive", Status: "False", Reason: "FailedGetResourceMetric",
			Message: "no member is running to measure"}
	default:
		util := int(math.Round(float64(usage) / float64(running) / float64(request) * 100))
		st.CurrentCPUUtilization = &util
		ratio := float64(util) / float64(spec.TargetCPUUtilization)
		rec := ts.Replicas
		if math.Abs(ratio-1) > AutoscalerTolerance {
			rec = int(math.Ceil(ratio * float64(running)))
		}
		rec = min(max(rec, spec.MinReplicas), spec.MaxReplicas)
		desired = c.stabilize(key, spec, ts.Replicas, rec, now)
		cond = api.Condition{Type: "ScalingActive", Status: "True", Reason: "ValidMetricFound",
			Message: fmt.Sprintf("CPU utilization %d%% of request (target %d%%) over %d running members", util, spec.TargetCPUUtilization, running)}
	}
	if ts.Replicas < spec.MinReplicas || ts.Replicas > spec.MaxReplicas {
		desired = min(max(ts.Replicas, spec.MinReplicas), spec.MaxReplicas)
	}
	st.DesiredReplicas = desired
	st.Conditions = []api.Condition{setCondition(old.Conditions, cond, now)}
	if desired != ts.Replicas {
		var raw map[string]any
		if err := target.DecodeSpec(&raw); err != nil {
			return Result{}, err
		}
		raw["replicas"] = desired
		target.SetSpec(raw)
		if _, err := c.inv.Change(AutoscalerUser, target); err != nil {
			if errors.Is(err, api.ErrConflict) {
				return Result{RequeueAfter: time.Second}, nil // changed meanwhile: look again soon
			}
			return Result{}, err
		}
		st.LastScaleTime = now.UTC()
		if err := c.inv.Record(AutoscalerUser, "info", "SuccessfulRescaleEvent", key, "scaled %s from %d to %d replicas: %s",
			spec.Target, ts.Replicas, desired, cond.Message); err != nil {
			return Result{}, err
		}
	}
	return res, c.write(key, st)
}

// usage sums the measured CPU of the target's running members.
func (c *Autoscalers) usage(target *api.Object) (mhz int64, running int) {
	owners := map[string]bool{target.Path: true}
	if target.Kind == api.KindDeployment {
		for _, rs := range c.inv.List(store.Query{Kind: api.KindReplicaSet, Filter: func(o *api.Object) bool { return o.Owner == target.Path }}).Items {
			owners[rs.Path] = true
		}
	}
	for _, vm := range c.inv.List(store.Query{Kind: api.KindVirtualMachine, Filter: func(o *api.Object) bool { return owners[o.Owner] }}).Items {
		var s api.VMSpec
		var st api.VMStatus
		_ = vm.DecodeSpec(&s)
		_ = vm.DecodeStatus(&st)
		if s.Removing || st.PowerState != api.PoweredOn {
			continue
		}
		running++
		mhz += st.CPUUsageMHz
	}
	return mhz, running
}

// stabilize applies the stabilization windows: a scale-down takes the
// highest recommendation within the scale-down window, a scale-up the
// lowest within the scale-up window (Kubernetes' behavior defaults).
func (c *Autoscalers) stabilize(key string, spec api.AutoscalerSpec, current, rec int, now time.Time) int {
	down, up := DefaultScaleDownWindow, DefaultScaleUpWindowSeconds
	if spec.ScaleDownStabilizationSeconds != nil {
		down = *spec.ScaleDownStabilizationSeconds
	}
	if spec.ScaleUpStabilizationSeconds != nil {
		up = *spec.ScaleUpStabilizationSeconds
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := time.Duration(max(down, up)) * time.Second
	upMin, downMax := rec, rec
	var recs []recommendation
	for _, r := range c.recs[key] {
		age := now.Sub(r.at)
		if age >= keep {
			continue
		}
		recs = append(recs, r)
		if age < time.Duration(up)*time.Second {
			upMin = min(upMin, r.replicas)
		}
		if age < time.Duration(down)*time.Second {
			downMax = max(downMax, r.replicas)
		}
	}
	c.recs[key] = append(recs, recommendation{at: now, replicas: rec})
	out := current
	if out < upMin {
		out = upMin
	}
	if out > downMax {
		out = downMax
	}
	return out
}

// seed records the target's count as the first recommendation of an
// autoscaler it has not seen (a new one, or after a vcenter restart), as
// Kubernetes does: a scale-down then waits a whole stabilization window,
// so a new autoscaler does not shrink its target at once.
func (c *Autoscalers) seed(key string, current int, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.recs[key]; !ok {
		c.recs[key] = []recommendation{{at: now, replicas: current}}
	}
}

func (c *Autoscalers) write(key string, st api.AutoscalerStatus) error {
	_, err := c.inv.WriteStatus(AutoscalerUser, key, func(cur *api.Object) (bool, error) {
		var old api.AutoscalerStatus
		_ = cur.DecodeStatus(&old)
		st.LastScaleTime = st.LastScaleTime.UTC()
		old.LastScaleTime = old.LastScaleTime.UTC()
		for i := range old.Conditions {
			old.Conditions[i].LastTransition = old.Conditions[i].LastTransition.UTC()
		}
		if reflect.DeepEqual(old, st) {
			return false, nil
		}
		cur.SetStatus(st)
		return true, nil
	})
	return err
}
