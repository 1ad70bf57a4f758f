package manifest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/podsphere/podsphere/api"
)

// Kubernetes workload kinds and where they land (N is the namespace; the
// default namespace is the top of each folder):
//
//	Deployment D (apps/v1)              Deployment /DC/deployment/N/D in N's pool
//	ReplicaSet R (apps/v1)              ReplicaSet /DC/replicaset/N/R in N's pool
//	DaemonSet S (apps/v1)               DaemonSet /DC/daemonset/N/S in N's pool
//	Job J (batch/v1)                    Job /DC/job/N/J in N's pool
//	HorizontalPodAutoscaler H           HorizontalPodAutoscaler /DC/hpa/N/H, its
//	  (autoscaling/v2, autoscaling/v1)  target /DC/deployment/N/T or /DC/replicaset/N/T
//
// The Pod template (spec.template) maps through the same code as a Pod
// (document.vmSpec) into an api.VMTemplate; its pool, host placement and
// power state are the workload controller's.

// Kubernetes' defaults that manifests fill in.
const (
	DefaultReplicas                = 1
	DefaultMaxSurge                = "25%"
	DefaultMaxUnavailable          = "25%"
	DefaultRevisionHistoryLimit    = 10
	DefaultProgressDeadlineSeconds = 600
	DefaultCompletions             = 1
	DefaultParallelism             = 1
	DefaultBackoffLimit            = 6
	DefaultMinReplicas             = 1
	// DefaultTargetCPUUtilization is the autoscaler's target when the
	// manifest gives no metric, as Kubernetes' 80% average CPU utilization.
	DefaultTargetCPUUtilization = 80
	// MaxStabilizationWindowSeconds is Kubernetes' limit (one hour).
	MaxStabilizationWindowSeconds = 3600
)

// Labels the Job controller of Kubernetes puts on a Job's Pods, which
// tutorials select them by (kubectl get pods -l job-name=pi).
const (
	JobNameLabel       = "batch.kubernetes.io/job-name"
	LegacyJobNameLabel = "job-name"
)

// kubeTemplate is a PodTemplateSpec.
type kubeTemplate struct {
	Metadata templateMeta `json:"metadata"`
	Spec     podSpec      `json:"spec"`
}

// templateMeta is a Pod template's metadata: only labels mean anything
// (the members' names come from the workload).
type templateMeta struct {
	Labels map[string]string `json:"labels"`
	ignoredMeta
}

type deploymentSpec struct {
	Replicas                *int               `json:"replicas"`
	Selector                *api.LabelSelector `json:"selector"`
	Template                kubeTemplate       `json:"template"`
	MinReadySeconds         int                `json:"minReadySeconds"`
	Strategy                kubeStrategy       `json:"strategy"`
	RevisionHistoryLimit    *int               `json:"revisionHistoryLimit"`
	Paused                  bool               `json:"paused"`
	ProgressDeadlineSeconds *int               `json:"progressDeadlineSeconds"`
}

type kubeStrategy struct {
	Type          string             `json:"type"`
	RollingUpdate *kubeRollingUpdate `json:"rollingUpdate"`
}

type kubeRollingUpdate struct {
	MaxSurge       *api.IntOrString `json:"maxSurge"`
	MaxUnavailable *api.IntOrString `json:"maxUnavailable"`
}

type replicaSetSpec struct {
	Replicas        *int               `json:"replicas"`
	Selector        *api.LabelSelector `json:"selector"`
	Template        kubeTemplate       `json:"template"`
	MinReadySeconds int                `json:"minReadySeconds"`
}

type daemonSetSpec struct {
	Selector *api.LabelSelector `json:"selector"`
	Template kubeTemplate       `json:"template"`
}

type jobSpec struct {
	Completions           *int               `json:"completions"`
	Parallelism           *int               `json:"parallelism"`
	BackoffLimit          *int               `json:"backoffLimit"`
	ActiveDeadlineSeconds *int               `json:"activeDeadlineSeconds"`
	Selector              *api.LabelSelector `json:"selector"`
	ManualSelector        bool               `json:"manualSelector"`
	Template              kubeTemplate       `json:"template"`
}

// kubeScaleTarget is an autoscaler's scaleTargetRef.
type kubeScaleTarget struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
}

type hpaV2Spec struct {
	ScaleTargetRef kubeScaleTarget `json:"scaleTargetRef"`
	MinReplicas    *int            `json:"minReplicas"`
	MaxReplicas    int             `json:"maxReplicas"`
	Metrics        []hpaMetric     `json:"metrics"`
	Behavior       *hpaBehavior    `json:"behavior"`
}

// hpaMetric is a MetricSpec; of its sources only resource is mapped, the
// others are decoded to be refused by name.
type hpaMetric struct {
	Type              string             `json:"type"`
	Resource          *hpaResourceMetric `json:"resource"`
	Pods              json.RawMessage    `json:"pods"`
	Object            json.RawMessage    `json:"object"`
	External          json.RawMessage    `json:"external"`
	ContainerResource json.RawMessage    `json:"containerResource"`
}

type hpaResourceMetric struct {
	Name   string    `json:"name"`
	Target hpaTarget `json:"target"`
}

type hpaTarget struct {
	Type               string          `json:"type"`
	AverageUtilization *int            `json:"averageUtilization"`
	AverageValue       json.RawMessage `json:"averageValue"` // refused: podsphere scales on utilization
	Value              json.RawMessage `json:"value"`        // refused likewise
}

type hpaBehavior struct {
	ScaleUp   *hpaScalingRules `json:"scaleUp"`
	ScaleDown *hpaScalingRules `json:"scaleDown"`
}

type hpaScalingRules struct {
	StabilizationWindowSeconds *int `json:"stabilizationWindowSeconds"`
}

type hpaV1Spec struct {
	ScaleTargetRef                 kubeScaleTarget `json:"scaleTargetRef"`
	MinReplicas                    *int            `json:"minReplicas"`
	MaxReplicas                    int             `json:"maxReplicas"`
	TargetCPUUtilizationPercentage *int            `json:"targetCPUUtilizationPercentage"`
}

// workloadDoc is what every workload kind starts with: its decoded
// document, its namespace's pool, and where it lands.
type workloadDoc struct {
	md   kubeMeta
	pool string
	path string
}

// decodeWorkload decodes a namespaced Kubernetes document of an api kind
// into doc and places it.
func decodeWorkload[S any](d *document, kind string, doc *kubeDoc[S]) (workloadDoc, *fieldError) {
	if err := d.decodeInto(doc); err != nil {
		return workloadDoc{}, err
	}
	md := doc.Metadata
	if err := d.kubeName(md); err != nil {
		return workloadDoc{}, err
	}
	pool, err := d.namespacePool(md.Namespace)
	if err != nil {
		return workloadDoc{}, err
	}
	return workloadDoc{md: md, pool: pool, path: api.NamespacedPath(kind, d.ctx.Datacenter, md.Namespace, md.Name)}, nil
}

func (w workloadDoc) item(kind string, spec any) Item {
	o := api.New(kind, w.path, spec)
	o.Labels = w.md.Labels
	return Item{Object: o}
}

// restartFor is the restartPolicy rule of the Pods of a workload kind.
func restartFor(kind string) podRestart {
	if kind == api.KindJob {
		r := podRestartJob
		r.why = "a Job's VMs run to completion: use Never or OnFailure (Kubernetes refuses Always)"
		return r
	}
	r := podRestartAlways
	r.why = "a " + kind + "'s VMs run until they are replaced, so only Always is allowed (as in Kubernetes)"
	return r
}

// template maps spec.template of a workload of kind.
func (d *document) template(kind string, t *kubeTemplate, ns string) (api.VMTemplate, *fieldError) {
	s, err := d.vmSpec("spec.template.spec", &t.Spec, ns, restartFor(kind))
	if err != nil {
		return api.VMTemplate{}, err
	}
	return api.VMTemplate{Labels: t.Metadata.Labels, Spec: s}, nil
}

// appsSelector checks the spec.selector apps/v1 requires: present, not
// empty, and matching the template's labels.
func appsSelector(sel *api.LabelSelector, labels map[string]string) (api.LabelSelector, *fieldError) {
	if sel == nil {
		return api.LabelSelector{}, fieldErr("spec.selector", "is required in apps/v1: give matchLabels that the template's labels (spec.template.metadata.labels) carry, such as {app: web}")
	}
	if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		return api.LabelSelector{}, fieldErr("spec.selector", "is empty, which would select every VM of the namespace: give matchLabels or matchExpressions")
	}
	return *sel, matchesTemplate(*sel, labels)
}

// matchesTemplate checks that the members a workload makes are ones its
// selector selects.
func matchesTemplate(sel api.LabelSelector, labels map[string]string) *fieldError {
	if err := checkSelector("spec.selector", sel); err != nil {
		return err
	}
	if selectorMatches(sel, labels) {
		return nil
	}
	if len(labels) == 0 {
		return fieldErr("spec.selector", "does not match the template's labels: spec.template.metadata.labels is empty")
	}
	return fieldErr("spec.selector", "does not match the template's labels (spec.template.metadata.labels: %s)", labelList(labels))
}

// selectorMatches reports whether labels satisfy every requirement of s
// (checkSelector has checked its operators).
func selectorMatches(s api.LabelSelector, labels map[string]string) bool {
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, r := range s.MatchExpressions {
		v, ok := labels[r.Key]
		in := false
		for _, w := range r.Values {
			in = in || ok && v == w
		}
		switch r.Operator {
		case "In":
			if !in {
				return false
			}
		case "NotIn":
			if in {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		case "DoesNotExist":
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// labelList is "app=web, tier=front".
func labelList(labels map[string]string) string {
	var l []string
	for k, v := range labels {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return strings.Join(l, ", ")
}

// replicas is spec.replicas, or the default when the document leaves it
// out; keep says to keep the existing object's on apply.
func replicas(n *int) (r int, keep []string, err *fieldError) {
	if n == nil {
		return DefaultReplicas, []string{"replicas"}, nil
	}
	if *n < 0 {
		return 0, nil, fieldErr("spec.replicas", "%d is negative", *n)
	}
	return *n, nil, nil
}

func nonNegative(field string, n int) *fieldError {
	if n < 0 {
		return fieldErr(field, "%d is negative", n)
	}
	return nil
}

func (d *document) deployment() ([]Item, *fieldError) {
	var doc kubeDoc[deploymentSpec]
	w, err := decodeWorkload(d, api.KindDeployment, &doc)
	if err != nil {
		return nil, err
	}
	ks := &doc.Spec
	tmpl, err := d.template(api.KindDeployment, &ks.Template, w.md.Namespace)
	if err != nil {
		return nil, err
	}
	s := api.DeploymentSpec{Pool: w.pool, Template: tmpl, MinReadySeconds: ks.MinReadySeconds, Paused: ks.Paused,
		RevisionHistoryLimit: DefaultRevisionHistoryLimit, ProgressDeadlineSeconds: DefaultProgressDeadlineSeconds}
	var keep []string
	if s.Replicas, keep, err = replicas(ks.Replicas); err != nil {
		return nil, err
	}
	if s.Selector, err = appsSelector(ks.Selector, tmpl.Labels); err != nil {
		return nil, err
	}
	if err := nonNegative("spec.minReadySeconds", s.MinReadySeconds); err != nil {
		return nil, err
	}
	if ks.RevisionHistoryLimit != nil {
		s.RevisionHistoryLimit = *ks.RevisionHistoryLimit
		if err := nonNegative("spec.revisionHistoryLimit", s.RevisionHistoryLimit); err != nil {
			return nil, err
		}
	}
	if ks.ProgressDeadlineSeconds != nil {
		s.ProgressDeadlineSeconds = *ks.ProgressDeadlineSeconds
	}
	if s.ProgressDeadlineSeconds <= s.MinReadySeconds {
		return nil, fieldErr("spec.progressDeadlineSeconds", "%d must be more than spec.minReadySeconds %d", s.ProgressDeadlineSeconds, s.MinReadySeconds)
	}
	if s.Strategy, err = strategy(ks.Strategy); err != nil {
		return nil, err
	}
	it := w.item(api.KindDeployment, s)
	it.Keep = keep
	return []Item{it}, nil
}

// strategy maps a Deployment's strategy, with Kubernetes' defaults: a
// rolling update with 25% surge and 25% unavailable.
func strategy(k kubeStrategy) (api.Strategy, *fieldError) {
	s := api.Strategy{Type: k.Type}
	switch s.Type {
	case "":
		s.Type = api.RollingUpdate
	case api.RollingUpdate:
	case api.Recreate:
		if k.RollingUpdate != nil {
			return s, fieldErr("spec.strategy.rollingUpdate", "is for type RollingUpdate, not Recreate")
		}
		return s, nil
	default:
		return s, fieldErr("spec.strategy.type", "%q is not RollingUpdate or Recreate", s.Type)
	}
	surge, unavailable := api.Str(DefaultMaxSurge), api.Str(DefaultMaxUnavailable)
	if ru := k.RollingUpdate; ru != nil {
		if ru.MaxSurge != nil {
			surge = *ru.MaxSurge
		}
		if ru.MaxUnavailable != nil {
			unavailable = *ru.MaxUnavailable
		}
	}
	// Resolved against 100 replicas, a percentage is its own number.
	nSurge, err := surge.Scaled(100, true)
	if err != nil {
		return s, fieldErr("spec.strategy.rollingUpdate.maxSurge", "%s", apiMessage(err))
	}
	nUnavailable, err := unavailable.Scaled(100, false)
	if err != nil {
		return s, fieldErr("spec.strategy.rollingUpdate.maxUnavailable", "%s", apiMessage(err))
	}
	if unavailable.IsStr && nUnavailable > 100 {
		return s, fieldErr("spec.strategy.rollingUpdate.maxUnavailable", "%s is more than 100%%", unavailable)
	}
	if nSurge == 0 && nUnavailable == 0 {
		return s, fieldErr("spec.strategy.rollingUpdate", "maxSurge and maxUnavailable are both 0, so a rollout could never make progress")
	}
	s.MaxSurge, s.MaxUnavailable = &surge, &unavailable
	return s, nil
}

func (d *document) replicaSet() ([]Item, *fieldError) {
	var doc kubeDoc[replicaSetSpec]
	w, err := decodeWorkload(d, api.KindReplicaSet, &doc)
	if err != nil {
		return nil, err
	}
	ks := &doc.Spec
	tmpl, err := d.template(api.KindReplicaSet, &ks.Template, w.md.Namespace)
	if err != nil {
		return nil, err
	}
	s := api.ReplicaSetSpec{Pool: w.pool, Template: tmpl, MinReadySeconds: ks.MinReadySeconds}
	var keep []string
	if s.Replicas, keep, err = replicas(ks.Replicas); err != nil {
		return nil, err
	}
	if s.Selector, err = appsSelector(ks.Selector, tmpl.Labels); err != nil {
		return nil, err
	}
	if err := nonNegative("spec.minReadySeconds", s.MinReadySeconds); err != nil {
		return nil, err
	}
	it := w.item(api.KindReplicaSet, s)
	it.Keep = keep
	return []Item{it}, nil
}

func (d *document) daemonSet() ([]Item, *fieldError) {
	var doc kubeDoc[daemonSetSpec]
	w, err := decodeWorkload(d, api.KindDaemonSet, &doc)
	if err != nil {
		return nil, err
	}
	ks := &doc.Spec
	tmpl, err := d.template(api.KindDaemonSet, &ks.Template, w.md.Namespace)
	if err != nil {
		return nil, err
	}
	s := api.DaemonSetSpec{Pool: w.pool, Template: tmpl}
	if s.Selector, err = appsSelector(ks.Selector, tmpl.Labels); err != nil {
		return nil, err
	}
	return []Item{w.item(api.KindDaemonSet, s)}, nil
}

func (d *document) job() ([]Item, *fieldError) {
	var doc kubeDoc[jobSpec]
	w, err := decodeWorkload(d, api.KindJob, &doc)
	if err != nil {
		return nil, err
	}
	ks := &doc.Spec
	tmpl, err := d.template(api.KindJob, &ks.Template, w.md.Namespace)
	if err != nil {
		return nil, err
	}
	s := api.JobSpec{Pool: w.pool, Template: tmpl,
		Completions: DefaultCompletions, Parallelism: DefaultParallelism, BackoffLimit: DefaultBackoffLimit}
	for _, f := range []struct {
		name string
		in   *int
		out  *int
	}{{"completions", ks.Completions, &s.Completions}, {"parallelism", ks.Parallelism, &s.Parallelism}, {"backoffLimit", ks.BackoffLimit, &s.BackoffLimit}} {
		if f.in == nil {
			continue
		}
		if err := nonNegative("spec."+f.name, *f.in); err != nil {
			return nil, err
		}
		*f.out = *f.in
	}
	if a := ks.ActiveDeadlineSeconds; a != nil {
		if *a <= 0 {
			return nil, fieldErr("spec.activeDeadlineSeconds", "%d: must be positive (leave it out for no deadline)", *a)
		}
		s.ActiveDeadlineSeconds = *a
	}
	switch {
	case ks.Selector == nil && ks.ManualSelector:
		return nil, fieldErr("spec.selector", "is required with spec.manualSelector: true")
	case ks.Selector != nil && !ks.ManualSelector:
		return nil, fieldErr("spec.selector", "a Job's selector is made from its template's labels: leave it out, or set spec.manualSelector: true (as Kubernetes asks)")
	case ks.Selector != nil:
		if err := matchesTemplate(*ks.Selector, tmpl.Labels); err != nil {
			return nil, err
		}
		s.Selector = *ks.Selector
	default:
		// As Kubernetes, label the members with the Job's name, and select
		// them by every label of the template.
		if len(w.md.Name) > 63 {
			return nil, fieldErr("metadata.name", "a Job's name becomes the %s label of its VMs, which takes at most 63 characters", LegacyJobNameLabel)
		}
		labels := make(map[string]string, len(tmpl.Labels)+2)
		for k, v := range tmpl.Labels {
			labels[k] = v
		}
		labels[JobNameLabel], labels[LegacyJobNameLabel] = w.md.Name, w.md.Name
		s.Template.Labels = labels
		s.Selector = api.LabelSelector{MatchLabels: make(map[string]string, len(labels))}
		for k, v := range labels {
			s.Selector.MatchLabels[k] = v
		}
	}
	return []Item{w.item(api.KindJob, s)}, nil
}

func (d *document) autoscalerV2() ([]Item, *fieldError) {
	var doc kubeDoc[hpaV2Spec]
	w, err := decodeWorkload(d, api.KindAutoscaler, &doc)
	if err != nil {
		return nil, err
	}
	ks := &doc.Spec
	s, err := d.autoscaler(w, ks.ScaleTargetRef, ks.MinReplicas, ks.MaxReplicas)
	if err != nil {
		return nil, err
	}
	s.TargetCPUUtilization = DefaultTargetCPUUtilization
	for i, m := range ks.Metrics {
		f := fmt.Sprintf("spec.metrics[%d]", i)
		if i > 0 {
			return nil, fieldErr(f, "podsphere scales on one metric, the cpu utilization of spec.metrics[0]")
		}
		u, err := cpuMetric(f, m)
		if err != nil {
			return nil, err
		}
		s.TargetCPUUtilization = u
	}
	if b := ks.Behavior; b != nil {
		for _, r := range []struct {
			name string
			in   *hpaScalingRules
			out  **int
		}{{"scaleUp", b.ScaleUp, &s.ScaleUpStabilizationSeconds}, {"scaleDown", b.ScaleDown, &s.ScaleDownStabilizationSeconds}} {
			if r.in == nil || r.in.StabilizationWindowSeconds == nil {
				continue
			}
			v := *r.in.StabilizationWindowSeconds
			if v < 0 || v > MaxStabilizationWindowSeconds {
				return nil, fieldErr("spec.behavior."+r.name+".stabilizationWindowSeconds", "%d is not from 0 to %d", v, MaxStabilizationWindowSeconds)
			}
			*r.out = &v
		}
	}
	return []Item{w.item(api.KindAutoscaler, s)}, nil
}

// cpuMetric reads the one metric podsphere scales on: a Resource metric
// cpu with a Utilization target, and returns its averageUtilization.
func cpuMetric(f string, m hpaMetric) (int, *fieldError) {
	const only = "podsphere scales on cpu utilization only (type Resource, resource.name cpu, target.type Utilization)"
	if m.Type != "Resource" {
		if m.Type == "" {
			return 0, fieldErr(f+".type", "is required: %s", only)
		}
		return 0, fieldErr(f+".type", "%q is not supported: %s", m.Type, only)
	}
	for _, o := range []struct {
		name string
		raw  json.RawMessage
	}{{"pods", m.Pods}, {"object", m.Object}, {"external", m.External}, {"containerResource", m.ContainerResource}} {
		if rawSet(o.raw) {
			return 0, fieldErr(f+"."+o.name, "not supported: %s", only)
		}
	}
	r := m.Resource
	if r == nil {
		return 0, fieldErr(f+".resource", "is required for type Resource")
	}
	if r.Name != "cpu" {
		return 0, fieldErr(f+".resource.name", "%q is not supported: %s", r.Name, only)
	}
	t := r.Target
	if t.Type != "Utilization" {
		return 0, fieldErr(f+".resource.target.type", "%q is not supported: %s", t.Type, only)
	}
	if rawSet(t.AverageValue) {
		return 0, fieldErr(f+".resource.target.averageValue", "not supported: give averageUtilization, a percentage of the VMs' CPU requests")
	}
	if rawSet(t.Value) {
		return 0, fieldErr(f+".resource.target.value", "not supported: give averageUtilization, a percentage of the VMs' CPU requests")
	}
	if t.AverageUtilization == nil {
		return 0, fieldErr(f+".resource.target.averageUtilization", "is required for target type Utilization")
	}
	if *t.AverageUtilization < 1 {
		return 0, fieldErr(f+".resource.target.averageUtilization", "%d: must be at least 1 (percent)", *t.AverageUtilization)
	}
	return *t.AverageUtilization, nil
}

func (d *document) autoscalerV1() ([]Item, *fieldError) {
	var doc kubeDoc[hpaV1Spec]
	w, err := decodeWorkload(d, api.KindAutoscaler, &doc)
	if err != nil {
		return nil, err
	}
	ks := &doc.Spec
	s, err := d.autoscaler(w, ks.ScaleTargetRef, ks.MinReplicas, ks.MaxReplicas)
	if err != nil {
		return nil, err
	}
	s.TargetCPUUtilization = DefaultTargetCPUUtilization
	if u := ks.TargetCPUUtilizationPercentage; u != nil {
		if *u < 1 {
			return nil, fieldErr("spec.targetCPUUtilizationPercentage", "%d: must be at least 1 (percent)", *u)
		}
		s.TargetCPUUtilization = *u
	}
	return []Item{w.item(api.KindAutoscaler, s)}, nil
}

// autoscaler maps what both autoscaling versions share: the target and
// the replica bounds.
func (d *document) autoscaler(w workloadDoc, ref kubeScaleTarget, minReplicas *int, maxReplicas int) (api.AutoscalerSpec, *fieldError) {
	s := api.AutoscalerSpec{MinReplicas: DefaultMinReplicas, MaxReplicas: maxReplicas}
	switch ref.Kind {
	case api.KindDeployment, api.KindReplicaSet:
	case "":
		return s, fieldErr("spec.scaleTargetRef.kind", "is required (Deployment or ReplicaSet)")
	default:
		return s, fieldErr("spec.scaleTargetRef.kind", "%q is not supported: podsphere scales Deployments and ReplicaSets", ref.Kind)
	}
	if ref.APIVersion != "" && ref.APIVersion != "apps/v1" {
		return s, fieldErr("spec.scaleTargetRef.apiVersion", "%q: a %s is apps/v1", ref.APIVersion, ref.Kind)
	}
	if ref.Name == "" {
		return s, fieldErr("spec.scaleTargetRef.name", "is required")
	}
	if err := api.ValidName(ref.Name); err != nil {
		return s, &fieldError{field: "spec.scaleTargetRef.name", msg: apiMessage(err)}
	}
	s.Target = api.NamespacedPath(ref.Kind, d.ctx.Datacenter, w.md.Namespace, ref.Name)
	if minReplicas != nil {
		if *minReplicas < 1 {
			return s, fieldErr("spec.minReplicas", "%d: must be at least 1", *minReplicas)
		}
		s.MinReplicas = *minReplicas
	}
	switch {
	case s.MaxReplicas == 0:
		return s, fieldErr("spec.maxReplicas", "is required")
	case s.MaxReplicas < s.MinReplicas:
		return s, fieldErr("spec.maxReplicas", "%d is below spec.minReplicas %d", s.MaxReplicas, s.MinReplicas)
	}
	return s, nil
}
