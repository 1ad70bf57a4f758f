package manifest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/podsphere/podsphere/api"
)

// APIVersion is the apiVersion of podsphere's own kinds.
const APIVersion = "podsphere.io/v1"

// podsphereKinds are the podsphere.io/v1 kinds apply accepts.
var podsphereKinds = []string{api.KindDatacenter, api.KindCluster, api.KindResourcePool, api.KindVirtualMachine}

// notApplyable says why the other api kinds cannot come from a manifest.
var notApplyable = map[string]string{
	api.KindHost:  "HostSystem objects are created by hosts joining, not by apply",
	api.KindEvent: "Event objects are recorded by vcenter, not applied",
	api.KindTask:  "Task objects are recorded by vcenter, not applied",
	api.KindImage: "Image objects are added to the Content Library with library.import, not by apply",
}

// kubeKinds are the Kubernetes kinds podsphere maps onto its inventory,
// by apiVersion, in the order messages list them.
var kubeKinds = []struct {
	apiVersion string
	kinds      []string
}{
	{"v1", []string{"Namespace", "ResourceQuota", "Pod", api.KindService}},
	{"apps/v1", []string{api.KindDeployment, api.KindReplicaSet, api.KindDaemonSet}},
	{"batch/v1", []string{api.KindJob}},
	{"autoscaling/v2", []string{api.KindAutoscaler}},
	{"autoscaling/v1", []string{api.KindAutoscaler}},
	{"networking.k8s.io/v1", []string{api.KindIngress}},
}

// kubeAPIVersions are the apiVersions of a mapped Kubernetes kind ("" if
// podsphere does not map it), newest first.
func kubeAPIVersions(kind string) []string {
	var vs []string
	for _, g := range kubeKinds {
		if slices.Contains(g.kinds, kind) {
			vs = append(vs, g.apiVersion)
		}
	}
	return vs
}

// kubeKindList is "v1 Namespace, ResourceQuota, Pod; apps/v1 Deployment, ...;
// autoscaling/v2 or autoscaling/v1 HorizontalPodAutoscaler".
func kubeKindList() string {
	var groups []string
	for i := 0; i < len(kubeKinds); i++ {
		g := kubeKinds[i]
		versions := g.apiVersion
		for i+1 < len(kubeKinds) && slices.Equal(kubeKinds[i+1].kinds, g.kinds) {
			i++
			versions += " or " + kubeKinds[i].apiVersion
		}
		groups = append(groups, versions+" "+strings.Join(g.kinds, ", "))
	}
	return strings.Join(groups, "; ")
}

// notYetSupported are Kubernetes kinds users will hand us that have a
// podsphere meaning on the roadmap (load balancing, storage, schedules),
// so they get "not supported yet" and why rather than "unknown".
var notYetSupported = map[string]string{
	"StatefulSet": "a StatefulSet's members keep stable names and storage, and stable storage arrives with podsphere's storage work (a Deployment runs stateless members)",
	"CronJob":     "podsphere has no schedules yet (apply the jobTemplate as a Job)",
	"ConfigMap":   "", "Secret": "", "PersistentVolumeClaim": "", "List": "",
}

// ignoredMeta lists the Kubernetes metadata fields users commonly carry
// (from `kubectl get -o yaml`, Helm output or templates) that we accept and
// drop, because dropping them cannot change what the object means: free-form
// annotations, and identity and bookkeeping the Kubernetes API server assigns.
// Fields that do change meaning (generateName, ownerReferences, finalizers,
// deletionTimestamp) are not listed, so they stay errors.
type ignoredMeta struct {
	Annotations       json.RawMessage `json:"annotations"`
	UID               json.RawMessage `json:"uid"`
	ResourceVersion   json.RawMessage `json:"resourceVersion"`
	Generation        json.RawMessage `json:"generation"`
	CreationTimestamp json.RawMessage `json:"creationTimestamp"`
	ManagedFields     json.RawMessage `json:"managedFields"`
	SelfLink          json.RawMessage `json:"selfLink"`
}

// decodeDoc turns one non-empty document into items.
func decodeDoc(doc int, v any, ctx Context) ([]Item, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &Error{Doc: doc, Msg: "want a mapping with apiVersion and kind, got " + describe(v)}
	}
	d := &document{doc: doc, ctx: ctx, m: m}
	apiVersion, err := d.header("apiVersion")
	if err != nil {
		return nil, err
	}
	kind, err := d.header("kind")
	if err != nil {
		return nil, err
	}
	d.apiVersion, d.kind = apiVersion, kind
	if md, ok := m["metadata"].(map[string]any); ok {
		if s, ok := md["name"].(string); ok && s != "" {
			d.name = s
		} else if s, ok := md["path"].(string); ok {
			d.name = s
		}
	}

	var items []Item
	var ferr *fieldError
	switch {
	case apiVersion == APIVersion:
		if why, ok := notApplyable[kind]; ok {
			return nil, d.fail(&fieldError{msg: why})
		}
		switch kind {
		case api.KindDatacenter:
			items, ferr = d.datacenter()
		case api.KindCluster:
			items, ferr = d.cluster()
		case api.KindResourcePool:
			items, ferr = d.pool()
		case api.KindVirtualMachine:
			items, ferr = d.vm()
		default:
			hint := "Kubernetes kinds use their own apiVersions"
			if vs := kubeAPIVersions(kind); len(vs) > 0 {
				hint = "Kubernetes' " + kind + " uses apiVersion " + strings.Join(vs, " or ")
			}
			return nil, d.fail(&fieldError{msg: fmt.Sprintf("unknown kind %q for apiVersion %s (its kinds: %s; %s)",
				kind, APIVersion, strings.Join(podsphereKinds, ", "), hint)})
		}
	case apiVersion == "v1" && kind == "Namespace":
		items, ferr = d.namespace()
	case apiVersion == "v1" && kind == "ResourceQuota":
		items, ferr = d.resourceQuota()
	case apiVersion == "v1" && kind == "Pod":
		items, ferr = d.pod()
	case apiVersion == "v1" && kind == api.KindService:
		items, ferr = d.service()
	case kubeEndpointsKinds[kind] == apiVersion:
		return nil, &Error{Doc: doc, Kind: kind, Msg: fmt.Sprintf("%s objects are kept by vcenter from each Service's selector, not applied: read them with psc svc.info (a Service without a selector has no endpoints in podsphere yet)", kind)}
	case apiVersion == "networking.k8s.io/v1" && kind == api.KindIngress:
		items, ferr = d.ingress()
	case kind == api.KindIngress && goneIngressVersions[apiVersion] != "":
		return nil, &Error{Doc: doc, Msg: fmt.Sprintf("Ingress apiVersion %s is gone since Kubernetes %s: use networking.k8s.io/v1 (backend.serviceName/servicePort become backend.service.name/port.number, and every path needs a pathType)", apiVersion, goneIngressVersions[apiVersion])}
	case apiVersion == "apps/v1" && kind == api.KindDeployment:
		items, ferr = d.deployment()
	case apiVersion == "apps/v1" && kind == api.KindReplicaSet:
		items, ferr = d.replicaSet()
	case apiVersion == "apps/v1" && kind == api.KindDaemonSet:
		items, ferr = d.daemonSet()
	case apiVersion == "batch/v1" && kind == api.KindJob:
		items, ferr = d.job()
	case apiVersion == "autoscaling/v2" && kind == api.KindAutoscaler:
		items, ferr = d.autoscalerV2()
	case apiVersion == "autoscaling/v1" && kind == api.KindAutoscaler:
		items, ferr = d.autoscalerV1()
	case notYetSupported[kind] != "" && !strings.HasPrefix(apiVersion, "podsphere.io/"):
		return nil, &Error{Doc: doc, Msg: fmt.Sprintf("kind %s (%s) is recognised but not supported yet: %s", kind, apiVersion, notYetSupported[kind])}
	case hasKey(notYetSupported, kind) && !strings.HasPrefix(apiVersion, "podsphere.io/"):
		return nil, &Error{Doc: doc, Msg: fmt.Sprintf("kind %s (%s) is recognised but not supported yet", kind, apiVersion)}
	case len(kubeAPIVersions(kind)) > 0:
		return nil, &Error{Doc: doc, Msg: fmt.Sprintf("kind %s takes apiVersion %s, not %q",
			kind, strings.Join(kubeAPIVersions(kind), " or "), apiVersion)}
	default:
		return nil, &Error{Doc: doc, Msg: fmt.Sprintf("unknown kind %q with apiVersion %q: apply takes %s kinds %s, and Kubernetes kinds %s",
			kind, apiVersion, APIVersion, strings.Join(podsphereKinds, ", "), kubeKindList())}
	}
	if ferr != nil {
		return nil, d.fail(ferr)
	}
	for i := range items {
		items[i].Doc, items[i].APIVersion, items[i].Kind, items[i].Name = doc, apiVersion, kind, d.name
	}
	return items, nil
}

// document is one document being decoded, with what errors need to name it.
type document struct {
	doc              int
	ctx              Context
	m                map[string]any
	apiVersion, kind string
	name             string
}

func (d *document) fail(err *fieldError) error {
	return &Error{Doc: d.doc, Kind: d.kind, Name: d.name, Field: err.field, Msg: err.msg}
}

// header reads apiVersion or kind, which every document must carry.
func (d *document) header(key string) (string, error) {
	v, ok := d.m[key]
	if !ok || v == nil {
		return "", &Error{Doc: d.doc, Msg: key + " is missing"}
	}
	s, ok := v.(string)
	if !ok || s == "" {
		return "", &Error{Doc: d.doc, Field: key, Msg: "want a non-empty string, got " + describe(v)}
	}
	return s, nil
}

// decodeInto strictly decodes the document into target, a pointer to a
// struct whose fields may already hold defaults (absent fields keep them).
func (d *document) decodeInto(target any) *fieldError {
	if err := checkShape(d.m, reflect.TypeOf(target).Elem(), ""); err != nil {
		return err
	}
	b, err := json.Marshal(d.m)
	if err != nil {
		return &fieldError{msg: err.Error()}
	}
	if err := json.Unmarshal(b, target); err != nil {
		return &fieldError{msg: err.Error()} // checkShape should have caught it first
	}
	return nil
}

// has reports whether the document sets the field at the dotted path to
// something other than null.
func (d *document) has(path ...string) bool {
	var v any = d.m
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		v = m[k]
	}
	return v != nil
}

// needContext checks that the context names what a kind needs, and that
// what it names is a valid inventory name.
func (d *document) needContext(cluster bool, why string) *fieldError {
	var missing []string
	if d.ctx.Datacenter == "" {
		missing = append(missing, "PSC_DATACENTER")
	}
	if cluster && d.ctx.Cluster == "" {
		missing = append(missing, "PSC_CLUSTER")
	}
	if len(missing) > 0 {
		verb := "is"
		if len(missing) > 1 {
			verb = "are"
		}
		return &fieldError{msg: fmt.Sprintf("%s %s not set: %s", strings.Join(missing, " and "), verb, why)}
	}
	if err := api.ValidName(d.ctx.Datacenter); err != nil {
		return &fieldError{msg: "PSC_DATACENTER: " + apiMessage(err)}
	}
	if cluster {
		if err := api.ValidName(d.ctx.Cluster); err != nil {
			return &fieldError{msg: "PSC_CLUSTER: " + apiMessage(err)}
		}
	}
	return nil
}

func (c Context) clusterPath() string { return "/" + c.Datacenter + "/host/" + c.Cluster }
func (c Context) rootPool() string    { return c.clusterPath() + "/" + api.RootPoolName }

// defaultAllocation is what govc's pool.create uses when no flag is given.
func defaultAllocation() api.Allocation {
	return api.Allocation{Reservation: 0, Limit: -1, Expandable: true, Shares: api.Shares{Level: "normal"}}
}

// noQuota is a quota with every limit off; absent quota fields keep it.
func noQuota() *api.QuotaLimits {
	return &api.QuotaLimits{VMs: -1, ReplicaSets: -1, Services: -1, VolumeClaims: -1,
		ConfigMaps: -1, Secrets: -1, StorageGB: -1, CPUMHz: -1, MemMB: -1}
}

func checkAllocation(field string, a api.Allocation) *fieldError {
	switch {
	case a.Reservation < 0:
		return fieldErr(field+".reservation", "%d is negative", a.Reservation)
	case a.Limit < -1:
		return fieldErr(field+".limit", "%d is invalid: use -1 for unlimited or a value >= 0", a.Limit)
	case a.Limit != -1 && a.Limit < a.Reservation:
		return fieldErr(field+".limit", "%d is below %s.reservation %d", a.Limit, field, a.Reservation)
	}
	switch a.Shares.Level {
	case "low", "normal", "high":
		if a.Shares.Value != 0 {
			return fieldErr(field+".shares.value", "is only for level custom (level is %q)", a.Shares.Level)
		}
	case "custom":
		if a.Shares.Value <= 0 {
			return fieldErr(field+".shares.value", "%d: custom shares must be positive", a.Shares.Value)
		}
	default:
		return fieldErr(field+".shares.level", "%q is not low, normal, high or custom", a.Shares.Level)
	}
	return nil
}

func checkQuota(field string, q *api.QuotaLimits) *fieldError {
	if q == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"vms", q.VMs}, {"replicasets", q.ReplicaSets}, {"services", q.Services}, {"volumeclaims", q.VolumeClaims},
		{"configmaps", q.ConfigMaps}, {"secrets", q.Secrets}, {"storageGB", q.StorageGB}, {"cpuMHz", q.CPUMHz}, {"memMB", q.MemMB}} {
		if f.v < -1 {
			return fieldErr(field+"."+f.name, "%d is invalid: use -1 for no limit or a value >= 0", f.v)
		}
	}
	return nil
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}
