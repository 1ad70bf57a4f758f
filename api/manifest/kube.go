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
//	Pod P in N        VirtualMachine /DC/vm/P in N's pool, powered on
//
// The namespace "default" is the cluster's root pool /DC/host/CLUSTER/Resources.

// DefaultNamespace is the namespace of objects that name none; it maps to
// the cluster's root pool.
const DefaultNamespace = "default"

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

type podSpec struct {
	Containers    []kubeContainer `json:"containers"`
	RestartPolicy string          `json:"restartPolicy"`
}

type kubeContainer struct {
	Name       string        `json:"name"`
	Image      string        `json:"image"`
	Command    []string      `json:"command"`
	Args       []string      `json:"args"`
	Env        []kubeEnv     `json:"env"`
	Ports      []api.Port    `json:"ports"`
	WorkingDir string        `json:"workingDir"`
	Resources  kubeResources `json:"resources"`
}

type kubeEnv struct {
	Name      string          `json:"name"`
	Value     string          `json:"value"`
	ValueFrom json.RawMessage `json:"valueFrom"` // decoded only to refuse it with a clear message
}

type kubeResources struct {
	Requests map[string]quantityText `json:"requests"`
	Limits   map[string]quantityText `json:"limits"`
}

// namespacePool is the pool path of a Kubernetes namespace in the context's cluster.
func (d *document) namespacePool(ns string) (string, *fieldError) {
	if ns == "" || ns == DefaultNamespace {
		return d.ctx.rootPool(), nil
	}
	if err := api.ValidName(ns); err != nil {
		return "", &fieldError{field: "metadata.namespace", msg: apiMessage(err)}
	}
	return d.ctx.rootPool() + "/" + ns, nil
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
	if md.Name == "" {
		return nil, fieldErr("metadata.name", "is required")
	}
	if err := api.ValidName(md.Name); err != nil {
		return nil, &fieldError{field: "metadata.name", msg: apiMessage(err)}
	}
	if err := d.kubeContext(); err != nil {
		return nil, err
	}
	pool, ferr := d.namespacePool(md.Namespace)
	if ferr != nil {
		return nil, ferr
	}
	if len(doc.Spec.Containers) == 0 {
		return nil, fieldErr("spec.containers", "a Pod needs at least one container")
	}
	s := api.VMSpec{
		Pool:          pool,
		CPU:           defaultAllocation(),
		Mem:           defaultAllocation(),
		PowerState:    api.PoweredOn,
		RestartPolicy: doc.Spec.RestartPolicy,
	}
	if s.RestartPolicy == "" {
		s.RestartPolicy = "Always" // Kubernetes' default
	}
	if err := checkRestartPolicy("spec.restartPolicy", s.RestartPolicy); err != nil {
		return nil, err
	}
	var cpu, mem podTotal
	for i, c := range doc.Spec.Containers {
		f := fmt.Sprintf("spec.containers[%d]", i)
		vc := api.Container{Name: c.Name, Image: c.Image, Command: c.Command, Args: c.Args, Ports: c.Ports, WorkingDir: c.WorkingDir}
		for j, e := range c.Env {
			if e.ValueFrom != nil && string(e.ValueFrom) != "null" {
				return nil, fieldErr(fmt.Sprintf("%s.env[%d].valueFrom", f, j),
					"not supported yet: set value (ConfigMaps and Secrets arrive with storage)")
			}
			vc.Env = append(vc.Env, api.EnvVar{Name: e.Name, Value: e.Value})
		}
		if err := cpu.add(f+".resources", "cpu", c.Resources, Quantity.MHz); err != nil {
			return nil, err
		}
		if err := mem.add(f+".resources", "memory", c.Resources, Quantity.MB); err != nil {
			return nil, err
		}
		for _, r := range []struct {
			field string
			m     map[string]quantityText
		}{{"requests", c.Resources.Requests}, {"limits", c.Resources.Limits}} {
			for _, k := range sortedKeys(anyMap(r.m)) {
				if k != "cpu" && k != "memory" {
					return nil, fieldErr(join(f+".resources."+r.field, k), "not supported (cpu and memory are)")
				}
			}
		}
		s.Containers = append(s.Containers, vc)
	}
	if err := checkContainers("spec.containers", s.Containers); err != nil {
		return nil, err
	}
	s.CPU.Reservation, s.CPU.Limit = cpu.requests, cpu.limit()
	s.Mem.Reservation, s.Mem.Limit = mem.requests, mem.limit()

	// Sizing: the limit if every container has one, else the requests.
	cpuMHz := cpu.requests
	if cpu.limit() != -1 {
		cpuMHz = cpu.limits
	}
	cores := cpuMHz / MHzPerCore
	if cpuMHz%MHzPerCore != 0 {
		cores++
	}
	s.NumCPU = int(max(1, cores))
	s.MemoryMB = DefaultMemoryMB
	if mem.limit() != -1 {
		s.MemoryMB = mem.limits
	} else if mem.requests > 0 {
		s.MemoryMB = mem.requests
	}
	if s.MemoryMB < 1 {
		s.MemoryMB = 1 // a limit of 0 would make a VM with no memory
	}

	o := api.New(api.KindVirtualMachine, "/"+d.ctx.Datacenter+"/vm/"+md.Name, s)
	o.Labels = md.Labels
	return []Item{{Object: o}}, nil
}

// podTotal sums one resource over a Pod's containers, in MHz or MB.
type podTotal struct {
	requests, limits int64
	unlimited        bool // some container has no limit, so the Pod has none
}

func (t *podTotal) limit() int64 {
	if t.unlimited {
		return -1
	}
	return t.limits
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
