package manifest

import (
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/lb"
)

// Defaults for VirtualMachine and Pod sizing when the manifest gives none.
const (
	DefaultNumCPU   = 1
	DefaultMemoryMB = 512 // a container VM, not a guest OS: smaller than govc's 1024
)

// podsphereMeta is metadata of podsphere.io/v1 kinds: the inventory path,
// or a name resolved against the Context, and labels.
type podsphereMeta struct {
	Path   string            `json:"path"`
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	ignoredMeta
}

// podsphereDoc is a podsphere.io/v1 document; S is the kind's api spec type,
// so manifest fields are exactly the stored ones.
type podsphereDoc[S any] struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   podsphereMeta   `json:"metadata"`
	Spec       S               `json:"spec"`
	Status     json.RawMessage `json:"status"` // observed state: apply never writes it
}

func (d *document) datacenter() ([]Item, *fieldError) {
	var doc podsphereDoc[api.DatacenterSpec]
	if err := d.decodeInto(&doc); err != nil {
		return nil, err
	}
	return d.podsphereItem(doc.Metadata, api.KindDatacenter, doc.Spec)
}

func (d *document) cluster() ([]Item, *fieldError) {
	var doc podsphereDoc[api.ClusterSpec]
	if err := d.decodeInto(&doc); err != nil {
		return nil, err
	}
	s := doc.Spec
	switch s.DRS.Mode {
	case "", "manual", "partiallyAutomated", "fullyAutomated":
	default:
		return nil, fieldErr("spec.drs.mode", "%q is not manual, partiallyAutomated or fullyAutomated", s.DRS.Mode)
	}
	if s.HA.HostFailuresTolerated < 0 {
		return nil, fieldErr("spec.ha.hostFailuresTolerated", "%d is negative", s.HA.HostFailuresTolerated)
	}
	for i, r := range s.Rules {
		f := fmt.Sprintf("spec.rules[%d]", i)
		if r.Name == "" {
			return nil, fieldErr(f+".name", "is required")
		}
		switch r.Kind {
		case "affinity", "anti-affinity", "vm-host":
		default:
			return nil, fieldErr(f+".kind", "%q is not affinity, anti-affinity or vm-host", r.Kind)
		}
	}
	if s.PodCIDR != "" {
		if _, _, err := net.ParseCIDR(s.PodCIDR); err != nil {
			return nil, fieldErr("spec.podCIDR", "%q is not a CIDR block such as 10.244.0.0/16", s.PodCIDR)
		}
	}
	if err := lb.CheckServiceNetwork(s); err != nil {
		field, msg, _ := strings.Cut(apiMessage(err), " ")
		return nil, &fieldError{field: strings.TrimSuffix(field, ":"), msg: msg}
	}
	items, ferr := d.podsphereItem(doc.Metadata, api.KindCluster, s)
	if ferr == nil {
		items[0].Keep = omitted[api.ClusterSpec](d)
	}
	return items, ferr
}

// omitted lists the top-level spec fields of S the document leaves out.
// apply keeps them from the existing object, as kubectl apply does, so a
// minimal manifest changes only what it gives: a Cluster document without
// rules leaves the DRS rules alone, while an explicit "rules: []" (or psc
// apply --prune) removes them.
func omitted[S any](d *document) []string {
	var keys []string
	t := reflect.TypeFor[S]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" && !d.has("spec", name) {
			keys = append(keys, name)
		}
	}
	return keys
}

func (d *document) pool() ([]Item, *fieldError) {
	doc := podsphereDoc[api.PoolSpec]{Spec: api.PoolSpec{CPU: defaultAllocation(), Mem: defaultAllocation(), Quota: noQuota()}}
	if err := d.decodeInto(&doc); err != nil {
		return nil, err
	}
	if !d.has("spec", "quota") {
		doc.Spec.Quota = nil
	}
	if err := checkAllocation("spec.cpu", doc.Spec.CPU); err != nil {
		return nil, err
	}
	if err := checkAllocation("spec.mem", doc.Spec.Mem); err != nil {
		return nil, err
	}
	if err := checkQuota("spec.quota", doc.Spec.Quota); err != nil {
		return nil, err
	}
	items, err := d.podsphereItem(doc.Metadata, api.KindResourcePool, doc.Spec)
	if err != nil {
		return nil, err
	}
	// The root pool comes with its cluster and is sized by the cluster's
	// hosts; replacing its allocations from a manifest would be meaningless.
	if ref, _ := api.ParsePath(items[0].Object.Path); len(ref.Pools) == 0 {
		return nil, fieldErr("metadata", "%s is the cluster's root pool, which is made with the cluster and sized by its hosts", ref.Path)
	}
	return items, nil
}

func (d *document) vm() ([]Item, *fieldError) {
	doc := podsphereDoc[api.VMSpec]{Spec: api.VMSpec{
		NumCPU: DefaultNumCPU, MemoryMB: DefaultMemoryMB,
		CPU: defaultAllocation(), Mem: defaultAllocation(),
		PowerState: api.PoweredOn, // as govc's vm.create -on=true
	}}
	if err := d.decodeInto(&doc); err != nil {
		return nil, err
	}
	items, err := d.podsphereItem(doc.Metadata, api.KindVirtualMachine, nil)
	if err != nil {
		return nil, err
	}
	s := &doc.Spec
	ref, _ := api.ParsePath(items[0].Object.Path) // podsphereItem checked it
	if s.Pool, err = d.resolvePool(ref.Datacenter, s.Pool); err != nil {
		return nil, err
	}
	if s.Host != "" {
		if !strings.HasPrefix(s.Host, "/") && d.ctx.Cluster != "" {
			s.Host = "/" + ref.Datacenter + "/host/" + d.ctx.Cluster + "/" + s.Host
		}
		if err := checkPath("spec.host", s.Host, api.KindHost); err != nil {
			return nil, err
		}
		// A host written in a manifest is the admin's choice: it pins the VM.
		s.Pinned = true
	}
	if err := checkVMSpec(s); err != nil {
		return nil, err
	}
	items[0].Object.SetSpec(s)
	return items, nil
}

// resolvePool turns spec.pool into an absolute pool path: empty means the
// cluster's root pool, a relative path ("dev/web") hangs off it.
func (d *document) resolvePool(dc, pool string) (string, *fieldError) {
	if !strings.HasPrefix(pool, "/") {
		if d.ctx.Cluster == "" {
			return "", fieldErr("spec.pool", "PSC_CLUSTER is not set: give an absolute pool path (/DC/host/CLUSTER/Resources/...) or set PSC_CLUSTER")
		}
		if err := api.ValidName(d.ctx.Cluster); err != nil {
			return "", &fieldError{msg: "PSC_CLUSTER: " + apiMessage(err)}
		}
		root := "/" + dc + "/host/" + d.ctx.Cluster + "/" + api.RootPoolName
		if pool == "" {
			pool = root
		} else {
			pool = root + "/" + pool
		}
	}
	if err := checkPath("spec.pool", pool, api.KindResourcePool); err != nil {
		return "", err
	}
	if ref, _ := api.ParsePath(pool); ref.Datacenter != dc {
		return "", fieldErr("spec.pool", "%s is in datacenter %s, but the VM is in %s", pool, ref.Datacenter, dc)
	}
	return pool, nil
}

// checkVMSpec checks a VirtualMachine's (or a mapped Pod's) spec shape.
func checkVMSpec(s *api.VMSpec) *fieldError {
	if s.NumCPU < 1 {
		return fieldErr("spec.numCPU", "%d: a VM needs at least 1 vCPU", s.NumCPU)
	}
	if s.MemoryMB < 1 {
		return fieldErr("spec.memoryMB", "%d: a VM needs at least 1 MB", s.MemoryMB)
	}
	if err := checkAllocation("spec.cpu", s.CPU); err != nil {
		return err
	}
	if err := checkAllocation("spec.mem", s.Mem); err != nil {
		return err
	}
	switch s.PowerState {
	case api.PoweredOn, api.PoweredOff:
	case api.Suspended:
		return fieldErr("spec.powerState", "%q: podsphere cannot suspend a VM (its containers have no memory image to resume from): use %s", s.PowerState, api.PoweredOff)
	default:
		return fieldErr("spec.powerState", "%q is not %s or %s", s.PowerState, api.PoweredOn, api.PoweredOff)
	}
	if err := checkRestartPolicy("spec.restartPolicy", s.RestartPolicy); err != nil {
		return err
	}
	if p := s.HA.RestartPriority; p != "" && !slices.Contains(api.RestartPriorities, p) {
		return fieldErr("spec.ha.restartPriority", "%q is not one of %s", p, strings.Join(api.RestartPriorities, ", "))
	}
	switch s.HA.IsolationResponse {
	case "", "powerOff", "shutdown", "none":
	default:
		return fieldErr("spec.ha.isolationResponse", "%q is not powerOff, shutdown or none", s.HA.IsolationResponse)
	}
	if err := checkAllContainers("spec", s); err != nil {
		return err
	}
	if err := checkVMAffinity("spec.affinity", s.Affinity); err != nil {
		return err
	}
	if g := s.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		return fieldErr("spec.terminationGracePeriodSeconds", "%d is negative", *g)
	}
	if s.Hostname != "" {
		if err := checkDNSLabel(s.Hostname); err != "" {
			return fieldErr("spec.hostname", "%q %s", s.Hostname, err)
		}
	}
	if err := checkDNS("spec", s.DNSPolicy, s.DNSConfig); err != nil {
		return err
	}
	for i, v := range s.Volumes {
		if v.Name == "" {
			return fieldErr(fmt.Sprintf("spec.volumes[%d].name", i), "is required")
		}
	}
	return nil
}

func checkRestartPolicy(field, p string) *fieldError {
	switch p {
	case "", "Always", "OnFailure", "Never":
		return nil
	}
	return fieldErr(field, "%q is not Always, OnFailure or Never", p)
}

// checkAllContainers checks the init containers and containers of the
// spec at field ("spec", "spec.template.spec"): names unique across both,
// images, env, ports, pull policy, probes and users.
func checkAllContainers(field string, s *api.VMSpec) *fieldError {
	seen := map[string]bool{}
	if err := checkContainers(field+".initContainers", s.InitContainers, seen); err != nil {
		return err
	}
	for i, c := range s.InitContainers {
		if c.LivenessProbe != nil || c.ReadinessProbe != nil || c.StartupProbe != nil {
			return fieldErr(fmt.Sprintf("%s.initContainers[%d]", field, i), "init containers run to completion and take no probes (as in Kubernetes)")
		}
	}
	return checkContainers(field+".containers", s.Containers, seen)
}

func checkContainers(field string, cs []api.Container, seen map[string]bool) *fieldError {
	for i, c := range cs {
		f := fmt.Sprintf("%s[%d]", field, i)
		if c.Name == "" {
			return fieldErr(f+".name", "is required")
		}
		if seen[c.Name] {
			return fieldErr(f+".name", "%q is used by another container", c.Name)
		}
		seen[c.Name] = true
		if c.Image == "" {
			return fieldErr(f+".image", "is required")
		}
		switch c.ImagePullPolicy {
		case "", "IfNotPresent", "Always", "Never":
		default:
			return fieldErr(f+".imagePullPolicy", "%q is not IfNotPresent, Always or Never", c.ImagePullPolicy)
		}
		for j, e := range c.Env {
			if e.Name == "" {
				return fieldErr(fmt.Sprintf("%s.env[%d].name", f, j), "is required")
			}
		}
		for j, p := range c.Ports {
			pf := fmt.Sprintf("%s.ports[%d]", f, j)
			if p.ContainerPort < 1 || p.ContainerPort > 65535 {
				return fieldErr(pf+".containerPort", "%d is not a port number (1-65535)", p.ContainerPort)
			}
			switch p.Protocol {
			case "", "TCP", "UDP":
			default:
				return fieldErr(pf+".protocol", "%q is not TCP or UDP", p.Protocol)
			}
		}
		for _, p := range []struct {
			name  string
			probe *api.Probe
		}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}} {
			if err := checkProbe(f+"."+p.name, p.probe, p.name != "readinessProbe", c.Ports); err != nil {
				return err
			}
		}
		if c.RunAsUser != nil && *c.RunAsUser < 0 {
			return fieldErr(f+".securityContext.runAsUser", "%d is negative", *c.RunAsUser)
		}
	}
	return nil
}

// checkProbe checks a probe at field: one action, a port that exists and
// timings Kubernetes would take. Liveness and startup probes succeed once
// (successThreshold 1), as in Kubernetes.
func checkProbe(field string, p *api.Probe, once bool, ports []api.Port) *fieldError {
	if p == nil {
		return nil
	}
	n := 0
	if p.Exec != nil {
		n++
		if len(p.Exec.Command) == 0 {
			return fieldErr(field+".exec.command", "is required")
		}
	}
	if p.HTTPGet != nil {
		n++
		if err := checkProbePort(field+".httpGet.port", p.HTTPGet.Port, ports); err != nil {
			return err
		}
		switch p.HTTPGet.Scheme {
		case "", "HTTP", "HTTPS":
		default:
			return fieldErr(field+".httpGet.scheme", "%q is not HTTP or HTTPS", p.HTTPGet.Scheme)
		}
		for i, h := range p.HTTPGet.HTTPHeaders {
			if h.Name == "" {
				return fieldErr(fmt.Sprintf("%s.httpGet.httpHeaders[%d].name", field, i), "is required")
			}
		}
	}
	if p.TCPSocket != nil {
		n++
		if err := checkProbePort(field+".tcpSocket.port", p.TCPSocket.Port, ports); err != nil {
			return err
		}
	}
	switch n {
	case 0:
		return fieldErr(field, "needs one of exec, httpGet or tcpSocket")
	case 1:
	default:
		return fieldErr(field, "takes only one of exec, httpGet and tcpSocket")
	}
	for _, t := range []struct {
		name string
		v    int
	}{{"initialDelaySeconds", p.InitialDelaySeconds}, {"periodSeconds", p.PeriodSeconds}, {"timeoutSeconds", p.TimeoutSeconds},
		{"successThreshold", p.SuccessThreshold}, {"failureThreshold", p.FailureThreshold}} {
		if t.v < 0 {
			return fieldErr(field+"."+t.name, "%d is negative", t.v)
		}
	}
	if once && p.SuccessThreshold > 1 {
		return fieldErr(field+".successThreshold", "%d: must be 1 for liveness and startup probes", p.SuccessThreshold)
	}
	return nil
}

// checkProbePort checks a probe's port: a number, or the name of one of
// the container's ports.
func checkProbePort(field string, port api.IntOrString, ports []api.Port) *fieldError {
	if !port.IsStr {
		if port.IntVal == 0 {
			return fieldErr(field, "is required")
		}
		if port.IntVal < 1 || port.IntVal > 65535 {
			return fieldErr(field, "%d is not a port number (1-65535)", port.IntVal)
		}
		return nil
	}
	var names []string
	for _, p := range ports {
		if p.Name == port.StrVal {
			return nil
		}
		if p.Name != "" {
			names = append(names, p.Name)
		}
	}
	if len(names) == 0 {
		return fieldErr(field, "%q: the container names no ports; give a number", port.StrVal)
	}
	return fieldErr(field, "%q is not the name of one of the container's ports (%s)", port.StrVal, strings.Join(names, ", "))
}

// selectorOperators are the operators of label selectors, host terms included.
var selectorOperators = []string{"In", "NotIn", "Exists", "DoesNotExist"}

// checkSelector checks a label selector's expressions.
func checkSelector(field string, s api.LabelSelector) *fieldError {
	for i, r := range s.MatchExpressions {
		f := fmt.Sprintf("%s.matchExpressions[%d]", field, i)
		if r.Key == "" {
			return fieldErr(f+".key", "is required")
		}
		switch r.Operator {
		case "In", "NotIn":
			if len(r.Values) == 0 {
				return fieldErr(f+".values", "operator %s needs at least one value", r.Operator)
			}
		case "Exists", "DoesNotExist":
			if len(r.Values) > 0 {
				return fieldErr(f+".values", "operator %s takes no values", r.Operator)
			}
		case "":
			return fieldErr(f+".operator", "is required (%s)", strings.Join(selectorOperators, ", "))
		default:
			return fieldErr(f+".operator", "%q is not supported (%s are)", r.Operator, strings.Join(selectorOperators, ", "))
		}
	}
	return nil
}

// checkVMAffinity checks a podsphere VirtualMachine's own placement rules.
func checkVMAffinity(field string, a *api.Affinity) *fieldError {
	if a == nil {
		return nil
	}
	for i, s := range a.HostRequired {
		if err := checkSelector(fmt.Sprintf("%s.hostRequired[%d]", field, i), s); err != nil {
			return err
		}
	}
	for i, w := range a.HostPreferred {
		f := fmt.Sprintf("%s.hostPreferred[%d]", field, i)
		if err := checkWeight(f+".weight", w.Weight); err != nil {
			return err
		}
		if err := checkSelector(f+".selector", w.Selector); err != nil {
			return err
		}
	}
	for _, terms := range []struct {
		name string
		ts   []api.VMAffinityTerm
	}{{"vmAffinity", a.VMAffinity}, {"vmAntiAffinity", a.VMAntiAffinity}} {
		for i, t := range terms.ts {
			f := fmt.Sprintf("%s.%s[%d]", field, terms.name, i)
			if !t.Required {
				if err := checkWeight(f+".weight", t.Weight); err != nil {
					return err
				}
			}
			if err := checkSelector(f+".selector", t.Selector); err != nil {
				return err
			}
		}
	}
	return nil
}

// podsphereItem resolves the object's path from metadata and builds the item.
func (d *document) podsphereItem(md podsphereMeta, kind string, spec any) ([]Item, *fieldError) {
	p, err := d.resolvePath(md, kind)
	if err != nil {
		return nil, err
	}
	o := api.New(kind, p, spec)
	o.Labels = md.Labels
	return []Item{{Object: o}}, nil
}

// resolvePath is metadata.path, checked to be a path of kind, or
// metadata.name placed by the Context:
//
//	Datacenter      /NAME
//	Cluster         /PSC_DATACENTER/host/NAME
//	ResourcePool    /PSC_DATACENTER/host/PSC_CLUSTER/Resources/NAME (NAME may be dev/web)
//	VirtualMachine  /PSC_DATACENTER/vm/NAME
func (d *document) resolvePath(md podsphereMeta, kind string) (string, *fieldError) {
	switch {
	case md.Path != "" && md.Name != "":
		return "", fieldErr("metadata", "set path or name, not both")
	case md.Path != "":
		return md.Path, checkPath("metadata.path", md.Path, kind)
	case md.Name == "":
		return "", fieldErr("metadata", "path or name is required")
	}
	name := md.Name
	if strings.HasPrefix(name, "/") {
		return "", fieldErr("metadata.name", "%q is a path: set it as metadata.path", name)
	}
	elems := []string{name}
	if kind == api.KindResourcePool {
		elems = strings.Split(name, "/") // relative to the cluster's root pool
	}
	for _, e := range elems {
		if err := api.ValidName(e); err != nil {
			return "", &fieldError{field: "metadata.name", msg: apiMessage(err)}
		}
	}
	var p string
	switch kind {
	case api.KindDatacenter:
		p = "/" + name
	case api.KindCluster:
		if err := d.needContext(false, "metadata.name places a Cluster in PSC_DATACENTER (or give metadata.path)"); err != nil {
			return "", err
		}
		p = "/" + d.ctx.Datacenter + "/host/" + name
	case api.KindResourcePool:
		if err := d.needContext(true, "metadata.name places a ResourcePool under PSC_CLUSTER's root pool (or give metadata.path)"); err != nil {
			return "", err
		}
		p = d.ctx.rootPool() + "/" + name
	case api.KindVirtualMachine:
		if err := d.needContext(false, "metadata.name places a VirtualMachine in PSC_DATACENTER (or give metadata.path)"); err != nil {
			return "", err
		}
		p = "/" + d.ctx.Datacenter + "/vm/" + name
	}
	return p, checkPath("metadata.name", p, kind)
}

// checkPath parses an inventory path and checks it names an object of kind.
func checkPath(field, p, kind string) *fieldError {
	ref, err := api.ParsePath(p)
	if err != nil {
		return &fieldError{field: field, msg: apiMessage(err)}
	}
	if ref.Kind != kind {
		return fieldErr(field, "%s is a %s path, not a %s path", p, ref.Kind, kind)
	}
	return nil
}
