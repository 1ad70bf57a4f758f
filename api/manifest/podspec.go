package manifest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/podsphere/podsphere/api"
)

// podSpec is Kubernetes' PodSpec as far as podsphere maps it. A Pod's spec
// and a workload's spec.template.spec are both decoded into it and mapped
// by the same code (document.vmSpec), so every field means the same thing
// in both places.
type podSpec struct {
	Containers     []kubeContainer `json:"containers"`
	InitContainers []kubeContainer `json:"initContainers"`
	RestartPolicy  string          `json:"restartPolicy"`
	// NodeName pins the VM to host /DC/host/CLUSTER/NODENAME.
	NodeName                      string              `json:"nodeName"`
	NodeSelector                  map[string]string   `json:"nodeSelector"`
	Affinity                      *kubeAffinity       `json:"affinity"`
	TerminationGracePeriodSeconds *int64              `json:"terminationGracePeriodSeconds"`
	Hostname                      string              `json:"hostname"`
	SecurityContext               *podSecurityContext `json:"securityContext"`
	DNSPolicy                     string              `json:"dnsPolicy"`
	DNSConfig                     *api.PodDNSConfig   `json:"dnsConfig"`
	// Volumes is decoded only to refuse it with a clear message.
	Volumes json.RawMessage `json:"volumes"`
}

type kubeContainer struct {
	Name            string                    `json:"name"`
	Image           string                    `json:"image"`
	ImagePullPolicy string                    `json:"imagePullPolicy"`
	Command         []string                  `json:"command"`
	Args            []string                  `json:"args"`
	Env             []kubeEnv                 `json:"env"`
	Ports           []api.Port                `json:"ports"`
	WorkingDir      string                    `json:"workingDir"`
	Resources       kubeResources             `json:"resources"`
	LivenessProbe   *kubeProbe                `json:"livenessProbe"`
	ReadinessProbe  *kubeProbe                `json:"readinessProbe"`
	StartupProbe    *kubeProbe                `json:"startupProbe"`
	SecurityContext *containerSecurityContext `json:"securityContext"`
	// VolumeMounts is decoded only to refuse it with a clear message.
	VolumeMounts json.RawMessage `json:"volumeMounts"`
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

// kubeProbe is Kubernetes' Probe: its exec, httpGet and tcpSocket actions
// and timings are spelled as api.Probe's.
type kubeProbe struct {
	api.Probe
	GRPC json.RawMessage `json:"grpc"` // decoded only to refuse it with a clear message
}

// podSecurityContext is the part of a Pod's securityContext podsphere maps:
// runAsUser applies to every container that sets none.
type podSecurityContext struct {
	RunAsUser *int64 `json:"runAsUser"`
}

type containerSecurityContext struct {
	RunAsUser              *int64 `json:"runAsUser"`
	ReadOnlyRootFilesystem *bool  `json:"readOnlyRootFilesystem"`
}

type kubeAffinity struct {
	NodeAffinity    *kubeNodeAffinity `json:"nodeAffinity"`
	PodAffinity     *kubePodAffinity  `json:"podAffinity"`
	PodAntiAffinity *kubePodAffinity  `json:"podAntiAffinity"`
}

type kubeNodeAffinity struct {
	Required  *kubeNodeSelector        `json:"requiredDuringSchedulingIgnoredDuringExecution"`
	Preferred []kubePreferredSchedTerm `json:"preferredDuringSchedulingIgnoredDuringExecution"`
}

type kubeNodeSelector struct {
	NodeSelectorTerms []kubeNodeSelectorTerm `json:"nodeSelectorTerms"`
}

type kubeNodeSelectorTerm struct {
	MatchExpressions []api.LabelSelectorRequirement `json:"matchExpressions"`
	MatchFields      json.RawMessage                `json:"matchFields"` // decoded only to refuse it
}

type kubePreferredSchedTerm struct {
	Weight     int                  `json:"weight"`
	Preference kubeNodeSelectorTerm `json:"preference"`
}

type kubePodAffinity struct {
	Required  []kubePodAffinityTerm         `json:"requiredDuringSchedulingIgnoredDuringExecution"`
	Preferred []kubeWeightedPodAffinityTerm `json:"preferredDuringSchedulingIgnoredDuringExecution"`
}

type kubePodAffinityTerm struct {
	LabelSelector     *api.LabelSelector `json:"labelSelector"`
	TopologyKey       string             `json:"topologyKey"`
	Namespaces        []string           `json:"namespaces"`
	NamespaceSelector *api.LabelSelector `json:"namespaceSelector"`
}

type kubeWeightedPodAffinityTerm struct {
	Weight          int                 `json:"weight"`
	PodAffinityTerm kubePodAffinityTerm `json:"podAffinityTerm"`
}

// HostnameTopologyKey is the only pod (anti-)affinity topology podsphere
// has: VMs on the same host.
const HostnameTopologyKey = "kubernetes.io/hostname"

// namespaceNameLabel is the label Kubernetes gives every namespace: its name.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// podRestart says which restartPolicy values a kind's Pods may have, and
// the default when none is given ("" means the field is required).
type podRestart struct {
	allowed []string
	dflt    string
	why     string // why others are refused
}

var (
	podRestartAny    = podRestart{allowed: []string{"Always", "OnFailure", "Never"}, dflt: "Always"}
	podRestartAlways = podRestart{allowed: []string{"Always"}, dflt: "Always"}
	podRestartJob    = podRestart{allowed: []string{"OnFailure", "Never"}}
)

// rawSet reports whether a knowingly-decoded field holds anything: null,
// an empty list and an empty mapping say nothing.
func rawSet(r json.RawMessage) bool {
	switch strings.TrimSpace(string(r)) {
	case "", "null", "[]", "{}":
		return false
	}
	return true
}

// vmSpec maps a PodSpec found at field ("spec" for a Pod,
// "spec.template.spec" for a workload's template) in namespace ns onto a
// VM spec: containers, sizing, allocation and placement rules. Pool and
// PowerState are left to the caller.
func (d *document) vmSpec(field string, ps *podSpec, ns string, restart podRestart) (api.VMSpec, *fieldError) {
	s := api.VMSpec{
		CPU:           defaultAllocation(),
		Mem:           defaultAllocation(),
		RestartPolicy: ps.RestartPolicy,
	}
	if len(ps.Containers) == 0 {
		return s, fieldErr(field+".containers", "a Pod needs at least one container")
	}
	if rawSet(ps.Volumes) {
		return s, fieldErr(field+".volumes", "not supported yet: volumes arrive with podsphere's storage work")
	}
	if s.RestartPolicy == "" {
		s.RestartPolicy = restart.dflt
	}
	if err := checkRestartPolicy(field+".restartPolicy", s.RestartPolicy); err != nil {
		return s, err
	}
	if s.RestartPolicy == "" {
		return s, fieldErr(field+".restartPolicy", "is required: %s", restart.why)
	}
	if !slices.Contains(restart.allowed, s.RestartPolicy) {
		return s, fieldErr(field+".restartPolicy", "%q: %s", s.RestartPolicy, restart.why)
	}

	var podUser *int64
	if sc := ps.SecurityContext; sc != nil && sc.RunAsUser != nil {
		if *sc.RunAsUser < 0 {
			return s, fieldErr(field+".securityContext.runAsUser", "%d is negative", *sc.RunAsUser)
		}
		podUser = sc.RunAsUser
	}

	// Sizing follows Kubernetes' effective Pod resources: the sum over the
	// containers, or the largest init container if that is more (they run
	// one at a time, before the others). The Pod has a limit only if every
	// container, init containers included, has one.
	var cpu, mem podTotal
	for i := range ps.Containers {
		f := fmt.Sprintf("%s.containers[%d]", field, i)
		c, err := mapContainer(f, &ps.Containers[i], podUser, false, &cpu, &mem)
		if err != nil {
			return s, err
		}
		s.Containers = append(s.Containers, c)
	}
	for i := range ps.InitContainers {
		f := fmt.Sprintf("%s.initContainers[%d]", field, i)
		var icpu, imem podTotal
		c, err := mapContainer(f, &ps.InitContainers[i], podUser, true, &icpu, &imem)
		if err != nil {
			return s, err
		}
		cpu.atLeast(icpu)
		mem.atLeast(imem)
		s.InitContainers = append(s.InitContainers, c)
	}
	if err := checkAllContainers(field, &s); err != nil {
		return s, err
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

	if ps.NodeName != "" {
		f := field + ".nodeName"
		if err := api.ValidName(ps.NodeName); err != nil {
			return s, &fieldError{field: f, msg: apiMessage(err)}
		}
		// A host written in a manifest is the admin's choice: it pins the VM.
		s.Host, s.Pinned = d.ctx.clusterPath()+"/"+ps.NodeName, true
		if err := checkPath(f, s.Host, api.KindHost); err != nil {
			return s, err
		}
	}
	if len(ps.NodeSelector) > 0 {
		s.HostSelector = ps.NodeSelector
	}
	if ps.Affinity != nil {
		a, err := mapAffinity(field+".affinity", ps.Affinity, ns)
		if err != nil {
			return s, err
		}
		s.Affinity = a
	}
	if g := ps.TerminationGracePeriodSeconds; g != nil {
		if *g < 0 {
			return s, fieldErr(field+".terminationGracePeriodSeconds", "%d is negative", *g)
		}
		s.TerminationGracePeriodSeconds = g
	}
	if ps.Hostname != "" {
		if err := checkDNSLabel(ps.Hostname); err != "" {
			return s, fieldErr(field+".hostname", "%q %s", ps.Hostname, err)
		}
		s.Hostname = ps.Hostname
	}
	// A VM never shares its host's network: ClusterFirstWithHostNet is
	// ClusterFirst here.
	s.DNSPolicy, s.DNSConfig = ps.DNSPolicy, ps.DNSConfig
	if s.DNSPolicy == "ClusterFirstWithHostNet" {
		s.DNSPolicy = api.DNSClusterFirst
	}
	if err := checkDNS(field, s.DNSPolicy, s.DNSConfig); err != nil {
		return s, err
	}
	return s, nil
}

// checkDNS is api.ValidateDNS with the field it names.
func checkDNS(field, policy string, cfg *api.PodDNSConfig) *fieldError {
	if err := api.ValidateDNS(field, policy, cfg); err != nil {
		f, msg, _ := strings.Cut(apiMessage(err), ": ")
		return &fieldError{field: f, msg: msg}
	}
	return nil
}

// mapContainer maps one container (or init container) at field and adds
// its resources to cpu and mem.
func mapContainer(f string, c *kubeContainer, podUser *int64, init bool, cpu, mem *podTotal) (api.Container, *fieldError) {
	vc := api.Container{Name: c.Name, Image: c.Image, ImagePullPolicy: c.ImagePullPolicy,
		Command: c.Command, Args: c.Args, Ports: c.Ports, WorkingDir: c.WorkingDir, RunAsUser: podUser}
	for j, e := range c.Env {
		if e.ValueFrom != nil && string(e.ValueFrom) != "null" {
			return vc, fieldErr(fmt.Sprintf("%s.env[%d].valueFrom", f, j),
				"not supported yet: set value (ConfigMaps and Secrets arrive with storage)")
		}
		vc.Env = append(vc.Env, api.EnvVar{Name: e.Name, Value: e.Value})
	}
	if rawSet(c.VolumeMounts) {
		return vc, fieldErr(f+".volumeMounts", "not supported yet: volumes arrive with podsphere's storage work")
	}
	if err := cpu.add(f+".resources", "cpu", c.Resources, Quantity.MHz); err != nil {
		return vc, err
	}
	if err := mem.add(f+".resources", "memory", c.Resources, Quantity.MB); err != nil {
		return vc, err
	}
	for _, r := range []struct {
		field string
		m     map[string]quantityText
	}{{"requests", c.Resources.Requests}, {"limits", c.Resources.Limits}} {
		for _, k := range sortedKeys(anyMap(r.m)) {
			if k != "cpu" && k != "memory" {
				return vc, fieldErr(join(f+".resources."+r.field, k), "not supported (cpu and memory are)")
			}
		}
	}
	for _, p := range []struct {
		name string
		in   *kubeProbe
		out  **api.Probe
	}{{"livenessProbe", c.LivenessProbe, &vc.LivenessProbe}, {"readinessProbe", c.ReadinessProbe, &vc.ReadinessProbe}, {"startupProbe", c.StartupProbe, &vc.StartupProbe}} {
		if p.in == nil {
			continue
		}
		if init {
			return vc, fieldErr(f+"."+p.name, "init containers run to completion and take no probes (as in Kubernetes)")
		}
		if rawSet(p.in.GRPC) {
			return vc, fieldErr(f+"."+p.name+".grpc", "not supported: use exec, httpGet or tcpSocket")
		}
		probe := p.in.Probe
		*p.out = &probe
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			vc.RunAsUser = sc.RunAsUser
		}
		if sc.ReadOnlyRootFilesystem != nil {
			vc.ReadOnlyRootFilesystem = *sc.ReadOnlyRootFilesystem
		}
	}
	return vc, nil
}

// mapAffinity maps Kubernetes' node and pod (anti-)affinity onto the VM's
// placement rules.
func mapAffinity(field string, ka *kubeAffinity, ns string) (*api.Affinity, *fieldError) {
	a := &api.Affinity{}
	if na := ka.NodeAffinity; na != nil {
		f := field + ".nodeAffinity"
		if na.Required != nil {
			rf := f + ".requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
			if len(na.Required.NodeSelectorTerms) == 0 {
				return nil, fieldErr(rf, "needs at least one term (the terms are ORed)")
			}
			for i, t := range na.Required.NodeSelectorTerms {
				sel, err := nodeSelectorTerm(fmt.Sprintf("%s[%d]", rf, i), t)
				if err != nil {
					return nil, err
				}
				a.HostRequired = append(a.HostRequired, sel)
			}
		}
		for i, t := range na.Preferred {
			pf := fmt.Sprintf("%s.preferredDuringSchedulingIgnoredDuringExecution[%d]", f, i)
			if err := checkWeight(pf+".weight", t.Weight); err != nil {
				return nil, err
			}
			sel, err := nodeSelectorTerm(pf+".preference", t.Preference)
			if err != nil {
				return nil, err
			}
			a.HostPreferred = append(a.HostPreferred, api.WeightedSelector{Weight: t.Weight, Selector: sel})
		}
	}
	for _, pa := range []struct {
		name string
		in   *kubePodAffinity
		out  *[]api.VMAffinityTerm
	}{{"podAffinity", ka.PodAffinity, &a.VMAffinity}, {"podAntiAffinity", ka.PodAntiAffinity, &a.VMAntiAffinity}} {
		if pa.in == nil {
			continue
		}
		f := field + "." + pa.name
		for i, t := range pa.in.Required {
			sel, err := podAffinityTerm(fmt.Sprintf("%s.requiredDuringSchedulingIgnoredDuringExecution[%d]", f, i), t, ns)
			if err != nil {
				return nil, err
			}
			*pa.out = append(*pa.out, api.VMAffinityTerm{Selector: sel, Required: true})
		}
		for i, t := range pa.in.Preferred {
			pf := fmt.Sprintf("%s.preferredDuringSchedulingIgnoredDuringExecution[%d]", f, i)
			if err := checkWeight(pf+".weight", t.Weight); err != nil {
				return nil, err
			}
			sel, err := podAffinityTerm(pf+".podAffinityTerm", t.PodAffinityTerm, ns)
			if err != nil {
				return nil, err
			}
			*pa.out = append(*pa.out, api.VMAffinityTerm{Selector: sel, Weight: t.Weight})
		}
	}
	if a.HostRequired == nil && a.HostPreferred == nil && a.VMAffinity == nil && a.VMAntiAffinity == nil {
		return nil, nil
	}
	return a, nil
}

func checkWeight(field string, w int) *fieldError {
	if w < 1 || w > 100 {
		return fieldErr(field, "%d is not a weight from 1 to 100", w)
	}
	return nil
}

// nodeSelectorTerm maps one nodeSelectorTerm: its matchExpressions, ANDed.
func nodeSelectorTerm(field string, t kubeNodeSelectorTerm) (api.LabelSelector, *fieldError) {
	if rawSet(t.MatchFields) {
		return api.LabelSelector{}, fieldErr(field+".matchFields", "not supported: select hosts by label with matchExpressions")
	}
	if len(t.MatchExpressions) == 0 {
		return api.LabelSelector{}, fieldErr(field+".matchExpressions", "is required: a term without expressions matches no host")
	}
	sel := api.LabelSelector{MatchExpressions: t.MatchExpressions}
	return sel, checkSelector(field, sel)
}

// podAffinityTerm maps one pod (anti-)affinity term: a selector of VMs in
// the Pod's own namespace, on the same host.
func podAffinityTerm(field string, t kubePodAffinityTerm, ns string) (api.LabelSelector, *fieldError) {
	if ns == "" {
		ns = DefaultNamespace
	}
	if t.TopologyKey != HostnameTopologyKey {
		if t.TopologyKey == "" {
			return api.LabelSelector{}, fieldErr(field+".topologyKey", "is required (podsphere takes %s: the same host)", HostnameTopologyKey)
		}
		return api.LabelSelector{}, fieldErr(field+".topologyKey", "%q is not supported: podsphere's only topology is the host (%s)", t.TopologyKey, HostnameTopologyKey)
	}
	for i, n := range t.Namespaces {
		if n != ns {
			return api.LabelSelector{}, fieldErr(fmt.Sprintf("%s.namespaces[%d]", field, i),
				"%q: terms select VMs of the Pod's own namespace (%s) only", n, ns)
		}
	}
	if t.NamespaceSelector != nil && !ownNamespaceSelector(*t.NamespaceSelector, ns) {
		return api.LabelSelector{}, fieldErr(field+".namespaceSelector",
			"terms select VMs of the Pod's own namespace only: leave it out, or give matchLabels {%s: %s}", namespaceNameLabel, ns)
	}
	if t.LabelSelector == nil {
		return api.LabelSelector{}, fieldErr(field+".labelSelector", "is required")
	}
	return *t.LabelSelector, checkSelector(field+".labelSelector", *t.LabelSelector)
}

// ownNamespaceSelector reports whether a namespaceSelector picks exactly
// namespace ns by its kubernetes.io/metadata.name label.
func ownNamespaceSelector(s api.LabelSelector, ns string) bool {
	switch {
	case len(s.MatchLabels) == 1 && len(s.MatchExpressions) == 0:
		return s.MatchLabels[namespaceNameLabel] == ns
	case len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 1:
		r := s.MatchExpressions[0]
		return r.Key == namespaceNameLabel && r.Operator == "In" && len(r.Values) == 1 && r.Values[0] == ns
	}
	return false
}

// checkDNSLabel checks an RFC 1123 label (a Pod's hostname) and says what
// is wrong, "" if nothing.
func checkDNSLabel(s string) string {
	if len(s) > 63 {
		return "is longer than 63 characters"
	}
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return "is not a DNS label (lower-case letters, digits and - inside)"
		}
	}
	return ""
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

// atLeast raises t to an init container's figures, which run alone.
func (t *podTotal) atLeast(init podTotal) {
	t.requests = max(t.requests, init.requests)
	t.limits = max(t.limits, init.limits)
	t.unlimited = t.unlimited || init.unlimited
}
