package api

import (
	"fmt"
	"strings"
	"time"
)

// KindIngress routes HTTP by host name and path to Services, at
// /DC/ingress/[NS/]NAME: what NSX Advanced Load Balancer (Avi) virtual
// services do for a vSphere shop. Its spec has Kubernetes'
// networking.k8s.io/v1 IngressSpec fields plus the cluster whose hosts
// serve it; its status holds the address it answers on, written by vcenter.
const KindIngress = "Ingress"

// Ingress path types, as Kubernetes names them.
const (
	PathTypeExact                  = "Exact"
	PathTypePrefix                 = "Prefix"
	PathTypeImplementationSpecific = "ImplementationSpecific"
)

// PathTypes lists the path types in the order messages name them.
var PathTypes = []string{PathTypeExact, PathTypePrefix, PathTypeImplementationSpecific}

// IngressSpec is Kubernetes' v1 IngressSpec plus the cluster.
type IngressSpec struct {
	// Cluster is the inventory path of the cluster whose hosts' proxies
	// serve the Ingress ("" is the datacenter's only cluster), as a
	// Service's spec.cluster.
	Cluster string `json:"cluster,omitempty"`
	// IngressClassName picks the controller; podsphere has one built in
	// and serves every class, so it is kept for the tables only.
	IngressClassName string          `json:"ingressClassName,omitempty"`
	DefaultBackend   *IngressBackend `json:"defaultBackend,omitempty"`
	TLS              []IngressTLS    `json:"tls,omitempty"`
	Rules            []IngressRule   `json:"rules,omitempty"`
}

// IngressTLS names the hosts served over TLS and where their certificate is.
type IngressTLS struct {
	Hosts      []string `json:"hosts,omitempty"`
	SecretName string   `json:"secretName,omitempty"`
}

// IngressRule routes requests for Host ("" for every host) by path.
type IngressRule struct {
	Host string                `json:"host,omitempty"`
	HTTP *HTTPIngressRuleValue `json:"http,omitempty"`
}

// HTTPIngressRuleValue is a rule's list of paths.
type HTTPIngressRuleValue struct {
	Paths []HTTPIngressPath `json:"paths"`
}

// HTTPIngressPath sends requests whose path matches to Backend.
type HTTPIngressPath struct {
	Path     string         `json:"path,omitempty"`
	PathType string         `json:"pathType"`
	Backend  IngressBackend `json:"backend"`
}

// IngressBackend is a Service port. Kubernetes' resource backends
// (backend.resource) are not served: podsphere routes to Services only.
type IngressBackend struct {
	Service *IngressServiceBackend `json:"service,omitempty"`
}

// IngressServiceBackend is a Service of the Ingress's namespace and one of its ports.
type IngressServiceBackend struct {
	Name string             `json:"name"`
	Port ServiceBackendPort `json:"port"`
}

// ServiceBackendPort is a Service port by number or by name (one of them).
type ServiceBackendPort struct {
	Name   string `json:"name,omitempty"`
	Number int    `json:"number,omitempty"`
}

// String is how tables name the port: 80 or http.
func (p ServiceBackendPort) String() string {
	if p.Name != "" {
		return p.Name
	}
	return fmt.Sprint(p.Number)
}

// IngressStatus is Kubernetes' status.loadBalancer: the address the
// cluster's Ingress proxies answer on (and the host answering for it).
type IngressStatus struct {
	LoadBalancer LoadBalancerStatus `json:"loadBalancer,omitzero"`
}

// Normalize checks every field of the Ingress, naming the first that is
// wrong. It looks at no other object: a backend naming a missing Service
// is accepted (Kubernetes does too; vcenter leaves an event and the proxy
// answers 503 for that route).
func (s *IngressSpec) Normalize() error {
	if s.IngressClassName != "" && (len(s.IngressClassName) > 253 || checkDNSName(s.IngressClassName) != nil) {
		return invalid("spec.ingressClassName", "%q is not a DNS subdomain name", s.IngressClassName)
	}
	if s.DefaultBackend == nil && len(s.Rules) == 0 {
		return invalid("spec", "an Ingress needs a defaultBackend or at least one rule")
	}
	if s.DefaultBackend != nil {
		if err := s.DefaultBackend.check("spec.defaultBackend"); err != nil {
			return err
		}
	}
	for i, t := range s.TLS {
		for j, h := range t.Hosts {
			if err := checkIngressHost(h); err != nil {
				return invalid(fmt.Sprintf("spec.tls[%d].hosts[%d]", i, j), "%v", err)
			}
		}
		if t.SecretName != "" && (len(t.SecretName) > 253 || checkDNSName(t.SecretName) != nil) {
			return invalid(fmt.Sprintf("spec.tls[%d].secretName", i), "%q is not a DNS subdomain name", t.SecretName)
		}
	}
	for i := range s.Rules {
		r := &s.Rules[i]
		f := fmt.Sprintf("spec.rules[%d]", i)
		if r.Host != "" {
			if err := checkIngressHost(r.Host); err != nil {
				return invalid(f+".host", "%v", err)
			}
		}
		if r.HTTP == nil {
			if s.DefaultBackend == nil {
				return invalid(f+".http", "a rule without paths routes its host to spec.defaultBackend, and there is none")
			}
			continue
		}
		if len(r.HTTP.Paths) == 0 {
			return invalid(f+".http.paths", "want at least one path")
		}
		for j := range r.HTTP.Paths {
			p := &r.HTTP.Paths[j]
			pf := fmt.Sprintf("%s.http.paths[%d]", f, j)
			switch p.PathType {
			case "":
				return invalid(pf+".pathType", "required: one of %s", strings.Join(PathTypes, ", "))
			case PathTypeExact, PathTypePrefix, PathTypeImplementationSpecific:
			default:
				return invalid(pf+".pathType", "%q: want one of %s", p.PathType, strings.Join(PathTypes, ", "))
			}
			if p.Path == "" && p.PathType != PathTypeImplementationSpecific {
				return invalid(pf+".path", "required with pathType %s (it must start with /)", p.PathType)
			}
			if p.Path != "" && !strings.HasPrefix(p.Path, "/") {
				return invalid(pf+".path", "%q must start with /", p.Path)
			}
			if strings.ContainsAny(p.Path, " \t\r\n?#") {
				return invalid(pf+".path", "%q holds a space, '?' or '#': a path rule matches the path only", p.Path)
			}
			if p.PathType == PathTypePrefix && strings.Contains(p.Path, "//") {
				return invalid(pf+".path", "%q has an empty element (//)", p.Path)
			}
			if err := p.Backend.check(pf + ".backend"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *IngressBackend) check(f string) error {
	if b.Service == nil {
		return invalid(f+".service", "required (podsphere routes to Services; backend.resource is not served)")
	}
	sv := b.Service
	if sv.Name == "" {
		return invalid(f+".service.name", "required")
	}
	if len(sv.Name) > 63 || !dnsLabel.MatchString(sv.Name) {
		return invalid(f+".service.name", "%q is not a Service name (lowercase letters, digits and '-', at most 63)", sv.Name)
	}
	p := sv.Port
	switch {
	case p.Name != "" && p.Number != 0:
		return invalid(f+".service.port", "give a number or a name, not both (%d and %q)", p.Number, p.Name)
	case p.Name == "" && p.Number == 0:
		return invalid(f+".service.port", "required: a number or the name of one of the Service's ports")
	case p.Name != "" && (len(p.Name) > 63 || !dnsLabel.MatchString(p.Name)):
		return invalid(f+".service.port.name", "%q is not a port name", p.Name)
	case p.Number < 0 || p.Number > 65535:
		return invalid(f+".service.port.number", "%d: want 1-65535", p.Number)
	}
	return nil
}

// checkIngressHost checks a rule's host: a DNS name, or "*." and a DNS
// name (the wildcard stands for exactly one label). Addresses are not
// hosts (Kubernetes refuses them too: requests by address hit rules
// without a host).
func checkIngressHost(h string) error {
	name := h
	if strings.HasPrefix(h, "*.") {
		name = h[2:]
	}
	if strings.Contains(name, "*") {
		return fmt.Errorf("%q: a wildcard host is '*.' followed by a DNS name (the '*' stands for exactly one label)", h)
	}
	if strings.HasSuffix(name, ".") {
		return fmt.Errorf("%q: drop the trailing dot", h)
	}
	if err := checkDNSName(name); err != nil {
		return err
	}
	last := name[strings.LastIndexByte(name, '.')+1:]
	if strings.Trim(last, "0123456789") == "" {
		return fmt.Errorf("%q is an IP address, not a host name: a rule without a host matches requests by address", h)
	}
	return nil
}

// IngressLog is a host's Ingress access log, as the agent serves it at
// GET /ingress/log and vcenter relays it (GET /api/v1/ingress/log?host=).
type IngressLog struct {
	Host    string                 `json:"host"`
	Total   uint64                 `json:"total"` // requests served since the proxy started
	Entries []IngressLogEntry      `json:"entries"`
	Failing []IngressEndpointState `json:"failingEndpoints,omitempty"`
}

// IngressLogEntry is one request the proxy served.
type IngressLogEntry struct {
	Time     time.Time     `json:"time"`
	Client   string        `json:"client"`
	Method   string        `json:"method"`
	Host     string        `json:"host"`
	Path     string        `json:"path"`
	Proto    string        `json:"proto"`
	Status   int           `json:"status"`
	Bytes    int64         `json:"bytes"`
	Duration time.Duration `json:"durationNs"`
	Ingress  string        `json:"ingress,omitempty"`
	Upstream string        `json:"upstream,omitempty"` // the endpoint that answered (or was tried last)
	Tries    int           `json:"tries,omitempty"`
}

// IngressEndpointState is an endpoint the proxy skips after failures.
type IngressEndpointState struct {
	Endpoint string    `json:"endpoint"`
	Until    time.Time `json:"ejectedUntil"`
	Failures int       `json:"failures"`
}
