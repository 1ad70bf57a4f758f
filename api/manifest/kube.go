package manifest

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/podsphere/podsphere/api"
)

// Kubernetes kinds and where they land:
//
//	Namespace N       ResourcePool /DC/host/CLUSTER/Resources/N, govc's default allocations
//	ResourceQuota     the quota of its namespace's pool (MergeQuota)
//	Pod P in N        VirtualMachine /DC/vm/N/P in N's pool, powered on
//
// The namespace "default" is the cluster's root pool /DC/host/CLUSTER/Resources,
// and its objects sit at the top of their folder (/DC/vm/P).

// DefaultNamespace is the namespace of objects that name none; it maps to
// the cluster's root pool.
const DefaultNamespace = api.DefaultNamespace

// kubeMeta is Kubernetes ObjectMeta, as far as podsphere reads it.
type kubeMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels"`
	ignoredMeta
}

type kubeDoc[S any] struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   kubeMeta        `json:"metadata"`
	Spec       S               `json:"spec"`
	Status     json.RawMessage `json:"status"` // observed state: apply never writes it
}

type namespaceSpec struct {
	// Finalizers is filled in by the Kubernetes API server and appears in
	// every exported Namespace; pools have no finalizers, so it is dropped.
	Finalizers json.RawMessage `json:"finalizers"`
}

type resourceQuotaSpec struct {
	Hard map[string]quantityText `json:"hard"`
}

// namespacePool is the pool path of a Kubernetes namespace in the context's cluster.
func (d *document) namespacePool(ns string) (string, *fieldError) {
	if ns != "" && ns != DefaultNamespace {
		if err := api.ValidName(ns); err != nil {
			return "", &fieldError{field: "metadata.namespace", msg: apiMessage(err)}
		}
	}
	return api.NamespacePool(d.ctx.clusterPath(), ns), nil
}

func (d *document) kubeContext() *fieldError {
	return d.needContext(true, fmt.Sprintf("a Kubernetes %s is placed in PSC_CLUSTER of PSC_DATACENTER", d.kind))
}

func (d *document) namespace() ([]Item, *fieldError) {
	var doc kubeDoc[namespaceSpec]
	if err := d.decodeInto(&doc); err != nil {
		return nil, err
	}
	md := doc.Metadata
	if md.Name == "" {
		return nil, fieldErr("metadata.name", "is required")
	}
	if md.Namespace != "" {
		return nil, fieldErr("metadata.namespace", "a Namespace is not itself in a namespace")
	}
	if err := d.kubeContext(); err != nil {
		return nil, err
	}
	if md.Name == DefaultNamespace {
		return nil, fieldErr("metadata.name", "namespace %q is the cluster's root pool %s, which is made with the cluster; leave this document out",
			DefaultNamespace, d.ctx.rootPool())
	}
	if err := api.ValidName(md.Name); err != nil {
		return nil, &fieldError{field: "metadata.name", msg: apiMessage(err)}
	}
	o := api.New(api.KindResourcePool, d.ctx.rootPool()+"/"+md.Name,
		api.PoolSpec{CPU: defaultAllocation(), Mem: defaultAllocation()})
	o.Labels = md.Labels
	return []Item{{Object: o}}, nil
}

// quotaKeys maps ResourceQuota spec.hard keys onto pool quota fields. Keys
// in one group are spellings of the same limit (Kubernetes' "pods" and
// "count/pods"); a quota may use only one of them.
var quotaKeys = []struct {
	keys []string
	set  func(q *api.QuotaLimits, v Quantity) (int64, error)
}{
	{[]string{"pods", "count/pods"}, func(q *api.QuotaLimits, v Quantity) (n int64, err error) { n, err = v.Count(); q.VMs = n; return }},
	{[]string{"count/replicasets.apps"}, func(q *api.QuotaLimits, v Quantity) (n int64, err error) {
		n, err = v.Count()
		q.ReplicaSets = n
		return
	}},
	{[]string{"services", "count/services"}, func(q *api.QuotaLimits, v Quantity) (n int64, err error) { n, err = v.Count(); q.Services = n; return }},
	{[]string{"persistentvolumeclaims", "count/persistentvolumeclaims"}, func(q *api.QuotaLimits, v Quantity) (n int64, err error) {
		n, err = v.Count()
		q.VolumeClaims = n
		return
	}},
	{[]string{"configmaps", "count/configmaps"}, func(q *api.QuotaLimits, v Quantity) (n int64, err error) {
		n, err = v.Count()
		q.ConfigMaps = n
		return
	}},
	{[]string{"secrets", "count/secrets"}, func(q *api.QuotaLimits, v Quantity) (n int64, err error) { n, err = v.Count(); q.Secrets = n; return }},
	{[]string{"requests.storage"}, func(q *api.QuotaLimits, v Quantity) (n int64, err error) { n, err = v.GB(); q.StorageGB = n; return }},
	{[]string{"limits.cpu", "cpu"}, func(q *api.QuotaLimits, v Quantity) (n int64, err error) { n, err = v.MHz(); q.CPUMHz = n; return }},
	{[]string{"limits.memory", "memory"}, func(q *api.QuotaLimits, v Quantity) (n int64, err error) { n, err = v.MB(); q.MemMB = n; return }},
}

func (d *document) resourceQuota() ([]Item, *fieldError) {
	var doc kubeDoc[resourceQuotaSpec]
	if err := d.decodeInto(&doc); err != nil {
		return nil, err
	}
	if doc.Metadata.Name == "" {
		return nil, fieldErr("metadata.name", "is required")
	}
	if err := d.kubeContext(); err != nil {
		return nil, err
	}
	pool, err := d.namespacePool(doc.Metadata.Namespace)
	if err != nil {
		return nil, err
	}
	q := noQuota()
	used := map[string]bool{}
	for _, g := range quotaKeys {
		var first string
		for _, k := range g.keys {
			text, ok := doc.Spec.Hard[k]
			if !ok {
				continue
			}
			used[k] = true
			f := join("spec.hard", k)
			if first != "" {
				return nil, fieldErr(f, "sets the same limit as %s; keep one", first)
			}
			first = k
			v, perr := ParseQuantity(string(text))
			if perr != nil {
				return nil, &fieldError{field: f, msg: perr.Error()}
			}
			if _, cerr := g.set(q, v); cerr != nil {
				return nil, &fieldError{field: f, msg: cerr.Error()}
			}
		}
	}
	for _, k := range sortedKeys(anyMap(doc.Spec.Hard)) {
		if !used[k] {
			var known []string
			for _, g := range quotaKeys {
				known = append(known, g.keys...)
			}
			return nil, fieldErr(join("spec.hard", k), "not supported (pool quotas take %s)", strings.Join(known, ", "))
		}
	}
	o := &api.Object{Meta: api.Meta{Kind: api.KindResourcePool, Path: pool}}
	// Only the quota: the applier merges it into the existing pool.
	o.SetSpec(struct {
		Quota *api.QuotaLimits `json:"quota"`
	}{q})
	return []Item{{Object: o, Merge: MergeQuota}}, nil
}

func (d *document) pod() ([]Item, *fieldError) {
	var doc kubeDoc[podSpec]
	if err := d.decodeInto(&doc); err != nil {
		return nil, err
	}
	md := doc.Metadata
	if err := d.kubeName(md); err != nil {
		return nil, err
	}
	pool, ferr := d.namespacePool(md.Namespace)
	if ferr != nil {
		return nil, ferr
	}
	s, ferr := d.vmSpec("spec", &doc.Spec, md.Namespace, podRestartAny)
	if ferr != nil {
		return nil, ferr
	}
	s.Pool, s.PowerState = pool, api.PoweredOn
	o := api.New(api.KindVirtualMachine, api.NamespacedPath(api.KindVirtualMachine, d.ctx.Datacenter, md.Namespace, md.Name), s)
	o.Labels = md.Labels
	return []Item{{Object: o}}, nil
}

// kubeName checks a namespaced object's metadata.name and the context that
// places it.
func (d *document) kubeName(md kubeMeta) *fieldError {
	if md.Name == "" {
		return fieldErr("metadata.name", "is required")
	}
	if err := api.ValidName(md.Name); err != nil {
		return &fieldError{field: "metadata.name", msg: apiMessage(err)}
	}
	return d.kubeContext()
}

// add reads one container's request and limit of resource. As in
// Kubernetes, a container with a limit but no request requests its limit.
func (t *podTotal) add(field, resource string, r kubeResources, conv func(Quantity) (int64, error)) *fieldError {
	read := func(kind string, m map[string]quantityText) (int64, bool, *fieldError) {
		text, ok := m[resource]
		if !ok {
			return 0, false, nil
		}
		f := join(field+"."+kind, resource)
		q, err := ParseQuantity(string(text))
		if err != nil {
			return 0, false, &fieldError{field: f, msg: err.Error()}
		}
		n, err := conv(q)
		if err != nil {
			return 0, false, &fieldError{field: f, msg: err.Error()}
		}
		return n, true, nil
	}
	req, hasReq, err := read("requests", r.Requests)
	if err != nil {
		return err
	}
	lim, hasLim, err := read("limits", r.Limits)
	if err != nil {
		return err
	}
	if hasLim && !hasReq {
		req = lim
	}
	if hasLim && req > lim {
		return fieldErr(join(field+".requests", resource), "%s is above limits.%s %s", r.Requests[resource], resource, r.Limits[resource])
	}
	if t.requests > math.MaxInt64-req || t.limits > math.MaxInt64-lim {
		return fieldErr(join(field+".requests", resource), "the Pod's total %s is too large", resource)
	}
	t.requests += req
	if hasLim {
		t.limits += lim
	} else {
		t.unlimited = true
	}
	return nil
}

func anyMap[V any](m map[string]V) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
