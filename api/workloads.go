package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Workload kinds: objects that keep VMs running for the admin. Each lives
// in a namespace folder of its datacenter (see path.go):
//
//	/DC/replicaset/[NS/]NAME   ReplicaSet: keep N VMs of a template running
//	/DC/deployment/[NS/]NAME   Deployment: a ReplicaSet per template revision, rolled
//	/DC/daemonset/[NS/]NAME    DaemonSet: one VM per matching host
//	/DC/job/[NS/]NAME          Job: VMs that run to completion
//	/DC/hpa/[NS/]NAME          HorizontalPodAutoscaler: scales a Deployment or ReplicaSet
//	/DC/service/[NS/]NAME      Service: a load-balanced name for VMs (service.go)
//	/DC/ingress/[NS/]NAME      Ingress: HTTP routes by host and path to Services (ingress.go)
const (
	KindReplicaSet = "ReplicaSet"
	KindDeployment = "Deployment"
	KindDaemonSet  = "DaemonSet"
	KindJob        = "Job"
	KindAutoscaler = "HorizontalPodAutoscaler"
)

// workloadFolders maps the datacenter folder of each workload kind.
var workloadFolders = map[string]string{
	"replicaset": KindReplicaSet,
	"deployment": KindDeployment,
	"daemonset":  KindDaemonSet,
	"job":        KindJob,
	"hpa":        KindAutoscaler,
	"service":    KindService,
	"ingress":    KindIngress,
}

// FolderOf is the datacenter folder that holds objects of a namespaced kind
// ("vm" for VirtualMachine), "" for other kinds.
func FolderOf(kind string) string {
	if kind == KindVirtualMachine {
		return "vm"
	}
	for f, k := range workloadFolders {
		if k == kind {
			return f
		}
	}
	return ""
}

// NamespacedPath is where an object of a namespaced kind named name lives
// in namespace ns of datacenter dc. The default namespace ("" or
// "default") is the folder itself.
func NamespacedPath(kind, dc, ns, name string) string {
	f := FolderOf(kind)
	if ns == "" || ns == DefaultNamespace {
		return "/" + dc + "/" + f + "/" + name
	}
	return "/" + dc + "/" + f + "/" + ns + "/" + name
}

// DefaultNamespace is Kubernetes' namespace of objects that name none: the
// top of each folder, whose VMs may be in any pool of the datacenter.
const DefaultNamespace = "default"

// NamespacePool is the pool that namespace ns is in cluster: the pool
// directly under the cluster's root pool with the namespace's name, or the
// root pool itself for the default namespace.
func NamespacePool(cluster, ns string) string {
	if ns == "" || ns == DefaultNamespace {
		return cluster + "/" + RootPoolName
	}
	return cluster + "/" + RootPoolName + "/" + ns
}

// NamespaceOfPool is the namespace a pool belongs to: the name of its
// first level below the root pool, "" (default) for the root pool.
func NamespaceOfPool(pool string) string {
	r, err := ParsePath(pool)
	if err != nil || r.Kind != KindResourcePool || len(r.Pools) == 0 {
		return ""
	}
	return r.Pools[0]
}

// VMTemplate is what a workload's members are made from: their labels and
// VM spec. Pool, Host and PowerState are the controller's to fill in: the
// pool is the workload's, members are placed by DRS and powered on.
type VMTemplate struct {
	Labels map[string]string `json:"labels,omitempty"`
	Spec   VMSpec            `json:"spec"`
}

// ReplicaSetSpec is "keep Replicas VMs of this template running".
type ReplicaSetSpec struct {
	// Pool is the resource pool the members run in (a namespace's pool for
	// namespaced sets).
	Pool string `json:"pool"`
	// Replicas is the desired number of members; manifests default it to 1.
	Replicas int `json:"replicas"`
	// Selector picks the members among the VMs of the set's namespace; it
	// must match the template's labels.
	Selector LabelSelector `json:"selector"`
	Template VMTemplate    `json:"template"`
	// MinReadySeconds is how long a member must be ready to count as available.
	MinReadySeconds int `json:"minReadySeconds,omitempty"`
	// HA is the restart priority and isolation response of every member
	// (acted on by vSphere HA; a member's own template setting wins).
	HA HAPolicy `json:"ha"`
	// Revision is the Deployment revision this set holds (Deployment-owned sets only).
	Revision int64 `json:"revision,omitempty"`
}

// Condition is one Kubernetes-style status condition.
type Condition struct {
	Type           string    `json:"type"`
	Status         string    `json:"status"` // True, False, Unknown
	Reason         string    `json:"reason,omitempty"`
	Message        string    `json:"message,omitempty"`
	LastTransition time.Time `json:"lastTransition,omitzero"`
	// LastUpdate is when the condition was last confirmed with progress
	// (a Deployment's Progressing condition: the last time a rollout moved).
	LastUpdate time.Time `json:"lastUpdate,omitzero"`
}

// MemberWait says why a workload's member does not run: it waits for the
// named pool or host figure (an admission refusal, retried with backoff).
type MemberWait struct {
	VM      string    `json:"vm"`
	Reason  string    `json:"reason"` // QuotaExceeded, InsufficientResources, ...
	Message string    `json:"message"`
	Since   time.Time `json:"since,omitzero"`
	// RetryAt is when the controller tries again.
	RetryAt time.Time `json:"retryAt,omitzero"`
}

// ReplicaSetStatus is what the replica-set controller observed.
type ReplicaSetStatus struct {
	// ObservedGeneration is the generation of the spec this status describes.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Replicas counts members (any power state, not being removed).
	Replicas int `json:"replicas"`
	// Running counts members powered on and reported running by their host.
	Running           int          `json:"running"`
	ReadyReplicas     int          `json:"readyReplicas"`
	AvailableReplicas int          `json:"availableReplicas"`
	Waiting           []MemberWait `json:"waiting,omitempty"`
	Conditions        []Condition  `json:"conditions,omitempty"`
}

// Deployment strategies.
const (
	RollingUpdate = "RollingUpdate"
	Recreate      = "Recreate"
)

// DeploymentSpec is a replica set whose template changes roll out.
type DeploymentSpec struct {
	Pool            string        `json:"pool"`
	Replicas        int           `json:"replicas"`
	Selector        LabelSelector `json:"selector"`
	Template        VMTemplate    `json:"template"`
	MinReadySeconds int           `json:"minReadySeconds,omitempty"`
	HA              HAPolicy      `json:"ha"`
	Strategy        Strategy      `json:"strategy"`
	// RevisionHistoryLimit is how many old replica sets are kept for rollback (default 10).
	RevisionHistoryLimit int  `json:"revisionHistoryLimit"`
	Paused               bool `json:"paused,omitempty"`
	// ProgressDeadlineSeconds marks a rollout stuck when it makes no
	// progress for this long (default 600).
	ProgressDeadlineSeconds int `json:"progressDeadlineSeconds"`
}

// Strategy is how a Deployment replaces its VMs.
type Strategy struct {
	Type string `json:"type"` // RollingUpdate (default), Recreate
	// MaxSurge and MaxUnavailable are counts or percentages of Replicas
	// (defaults 25% and 25%); used with RollingUpdate only.
	MaxSurge       *IntOrString `json:"maxSurge,omitempty"`
	MaxUnavailable *IntOrString `json:"maxUnavailable,omitempty"`
}

// DeploymentStatus is what the Deployment controller observed.
type DeploymentStatus struct {
	ObservedGeneration  int64        `json:"observedGeneration,omitempty"`
	Revision            int64        `json:"revision,omitempty"`
	Replicas            int          `json:"replicas"`
	UpdatedReplicas     int          `json:"updatedReplicas"`
	ReadyReplicas       int          `json:"readyReplicas"`
	AvailableReplicas   int          `json:"availableReplicas"`
	UnavailableReplicas int          `json:"unavailableReplicas"`
	Waiting             []MemberWait `json:"waiting,omitempty"`
	Conditions          []Condition  `json:"conditions,omitempty"`
}

// DaemonSetSpec is "one VM of this template on every matching host".
type DaemonSetSpec struct {
	Pool     string        `json:"pool"`
	Selector LabelSelector `json:"selector"`
	Template VMTemplate    `json:"template"`
	HA       HAPolicy      `json:"ha"`
}

// DaemonSetStatus is what the DaemonSet controller observed.
type DaemonSetStatus struct {
	ObservedGeneration     int64        `json:"observedGeneration,omitempty"`
	DesiredNumberScheduled int          `json:"desiredNumberScheduled"`
	CurrentNumberScheduled int          `json:"currentNumberScheduled"`
	NumberReady            int          `json:"numberReady"`
	Waiting                []MemberWait `json:"waiting,omitempty"`
	Conditions             []Condition  `json:"conditions,omitempty"`
}

// JobSpec runs VMs of a template to completion.
type JobSpec struct {
	Pool        string `json:"pool"`
	Completions int    `json:"completions"` // manifests default it to 1
	Parallelism int    `json:"parallelism"` // manifests default it to 1
	// BackoffLimit is how many failed VMs mark the Job failed (manifests default 6).
	BackoffLimit int           `json:"backoffLimit"`
	Selector     LabelSelector `json:"selector"`
	Template     VMTemplate    `json:"template"`
	// ActiveDeadlineSeconds fails the Job once it has run this long (0 = none).
	ActiveDeadlineSeconds int `json:"activeDeadlineSeconds,omitempty"`
}

// JobStatus is what the Job controller observed.
type JobStatus struct {
	Active         int          `json:"active"`
	Succeeded      int          `json:"succeeded"`
	Failed         int          `json:"failed"`
	StartTime      time.Time    `json:"startTime,omitzero"`
	CompletionTime time.Time    `json:"completionTime,omitzero"`
	Waiting        []MemberWait `json:"waiting,omitempty"`
	Conditions     []Condition  `json:"conditions,omitempty"` // Complete, Failed
}

// AutoscalerSpec is autoscaling/v2's HorizontalPodAutoscaler with a CPU
// utilization target.
type AutoscalerSpec struct {
	// Target is the inventory path of the Deployment or ReplicaSet scaled.
	Target      string `json:"target"`
	MinReplicas int    `json:"minReplicas"` // manifests default it to 1
	MaxReplicas int    `json:"maxReplicas"`
	// TargetCPUUtilization is the average CPU use of the members, in percent
	// of what they request (their CPU reservation).
	TargetCPUUtilization int `json:"targetCPUUtilization"`
	// ScaleDownStabilizationSeconds is Kubernetes' scale-down stabilization
	// window (default 300): the highest recommendation of the window wins.
	ScaleDownStabilizationSeconds *int `json:"scaleDownStabilizationSeconds,omitempty"`
	// ScaleUpStabilizationSeconds defaults to 0 (scale up at once).
	ScaleUpStabilizationSeconds *int `json:"scaleUpStabilizationSeconds,omitempty"`
}

// AutoscalerStatus is what the autoscaler observed and decided.
type AutoscalerStatus struct {
	CurrentReplicas       int         `json:"currentReplicas"`
	DesiredReplicas       int         `json:"desiredReplicas"`
	CurrentCPUUtilization *int        `json:"currentCPUUtilization,omitempty"`
	LastScaleTime         time.Time   `json:"lastScaleTime,omitzero"`
	Conditions            []Condition `json:"conditions,omitempty"`
}

// IntOrString is Kubernetes' int-or-string: a count (3) or a percentage
// ("25%"), or a named port ("http").
type IntOrString struct {
	IntVal int
	StrVal string
	IsStr  bool
}

// Int and Str build IntOrString values.
func Int(i int) IntOrString    { return IntOrString{IntVal: i} }
func Str(s string) IntOrString { return IntOrString{StrVal: s, IsStr: true} }

func (v IntOrString) MarshalJSON() ([]byte, error) {
	if v.IsStr {
		return json.Marshal(v.StrVal)
	}
	return json.Marshal(v.IntVal)
}

func (v *IntOrString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		v.IsStr, v.IntVal = true, 0
		return json.Unmarshal(b, &v.StrVal)
	}
	v.IsStr, v.StrVal = false, ""
	return json.Unmarshal(b, &v.IntVal)
}

func (v IntOrString) String() string {
	if v.IsStr {
		return v.StrVal
	}
	return strconv.Itoa(v.IntVal)
}

// Scaled resolves a count or percentage against total, rounding a
// percentage up (maxSurge) or down (maxUnavailable) as Kubernetes does.
func (v IntOrString) Scaled(total int, roundUp bool) (int, error) {
	if !v.IsStr {
		if v.IntVal < 0 {
			return 0, fmt.Errorf("%d is negative: %w", v.IntVal, ErrInvalid)
		}
		return v.IntVal, nil
	}
	p, ok := strings.CutSuffix(v.StrVal, "%")
	n, err := strconv.Atoi(p)
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("%q is neither a count nor a percentage like \"25%%\": %w", v.StrVal, ErrInvalid)
	}
	if roundUp {
		return (n*total + 99) / 100, nil
	}
	return n * total / 100, nil
}

// Phases of a run-to-completion VM (VMStatus.Phase).
const (
	PhaseSucceeded = "Succeeded"
	PhaseFailed    = "Failed"
)
