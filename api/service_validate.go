package api

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Normalize fills in Kubernetes' defaults (type ClusterIP, protocol TCP,
// sessionAffinity None, externalTrafficPolicy Cluster for Services that take
// outside traffic, ClientIP's 3 hour timeout) and checks every field,
// naming the first that is wrong. It looks at no other object. The
// selector's keys and values are checked by the caller with api/labels
// (which imports this package).
func (s *ServiceSpec) Normalize() error {
	if s.Type == "" {
		s.Type = ServiceClusterIP
	}
	if !slices.Contains(ServiceTypes, s.Type) {
		return invalid("spec.type", "%q: want one of %s", s.Type, strings.Join(ServiceTypes, ", "))
	}
	external := s.Type == ServiceNodePort || s.Type == ServiceLoadBalancer
	if s.Type == ServiceExternalName {
		if s.ExternalName == "" {
			return invalid("spec.externalName", "an ExternalName Service needs the DNS name it aliases")
		}
		if err := checkDNSName(s.ExternalName); err != nil {
			return invalid("spec.externalName", "%v", err)
		}
		if s.ClusterIP != "" {
			return invalid("spec.clusterIP", "%q: an ExternalName Service is a DNS alias and has no cluster IP", s.ClusterIP)
		}
	} else if s.ExternalName != "" {
		return invalid("spec.externalName", "set only with type ExternalName (type is %s)", s.Type)
	}
	switch s.ClusterIP {
	case "", ClusterIPNone:
		if s.ClusterIP == ClusterIPNone && external {
			return invalid("spec.clusterIP", "a headless Service (None) cannot be of type %s: outside traffic needs a virtual address", s.Type)
		}
	default:
		if _, err := netip.ParseAddr(s.ClusterIP); err != nil {
			return invalid("spec.clusterIP", "%q is neither an IP address, \"None\" (headless) nor empty (allocated)", s.ClusterIP)
		}
	}
	if len(s.Ports) == 0 && s.Type != ServiceExternalName && s.ClusterIP != ClusterIPNone {
		return invalid("spec.ports", "a %s Service needs at least one port (only headless and ExternalName Services may have none)", s.Type)
	}
	if err := s.normalizePorts(external); err != nil {
		return err
	}
	switch s.SessionAffinity {
	case "":
		s.SessionAffinity = "None"
	case "None", "ClientIP":
	default:
		return invalid("spec.sessionAffinity", "%q: want None or ClientIP", s.SessionAffinity)
	}
	if c := s.SessionAffinityConfig; c != nil {
		if s.SessionAffinity != "ClientIP" {
			return invalid("spec.sessionAffinityConfig", "set only with sessionAffinity ClientIP")
		}
		if c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			if t := *c.ClientIP.TimeoutSeconds; t < 1 || t > 86400 {
				return invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "%d: want 1 to 86400", t)
			}
		}
	}
	if s.SessionAffinity == "ClientIP" {
		if s.SessionAffinityConfig == nil {
			s.SessionAffinityConfig = &SessionAffinityConfig{}
		}
		if s.SessionAffinityConfig.ClientIP == nil {
			s.SessionAffinityConfig.ClientIP = &ClientIPConfig{}
		}
		if s.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
			t := DefaultSessionAffinityTimeout
			s.SessionAffinityConfig.ClientIP.TimeoutSeconds = &t
		}
	}
	switch {
	case s.ExternalTrafficPolicy == "" && external:
		s.ExternalTrafficPolicy = "Cluster"
	case s.ExternalTrafficPolicy == "":
	case !external:
		return invalid("spec.externalTrafficPolicy", "set only with type NodePort or LoadBalancer (type is %s)", s.Type)
	case s.ExternalTrafficPolicy != "Cluster" && s.ExternalTrafficPolicy != "Local":
		return invalid("spec.externalTrafficPolicy", "%q: want Cluster or Local", s.ExternalTrafficPolicy)
	}
	return nil
}

func (s *ServiceSpec) normalizePorts(external bool) error {
	names := map[string]int{}
	seen := map[string]int{}
	nodePorts := map[int]int{}
	for i := range s.Ports {
		p := &s.Ports[i]
		f := fmt.Sprintf("spec.ports[%d]", i)
		if p.Name == "" && len(s.Ports) > 1 {
			return invalid(f+".name", "a Service with several ports must name each")
		}
		if p.Name != "" {
			if len(p.Name) > 63 || !dnsLabel.MatchString(p.Name) {
				return invalid(f+".name", "%q: want lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63", p.Name)
			}
			if j, dup := names[p.Name]; dup {
				return invalid(f+".name", "%q is also spec.ports[%d]'s name", p.Name, j)
			}
			names[p.Name] = i
		}
		switch p.Protocol {
		case "":
			p.Protocol = "TCP"
		case "TCP", "UDP":
		default:
			return invalid(f+".protocol", "%q: want TCP or UDP", p.Protocol)
		}
		if p.Port < 1 || p.Port > 65535 {
			return invalid(f+".port", "%d: want 1-65535", p.Port)
		}
		key := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if j, dup := seen[key]; dup {
			return invalid(f+".port", "%s is also spec.ports[%d]", key, j)
		}
		seen[key] = i
		switch {
		case p.TargetPort.IsStr && !validPortName(p.TargetPort.StrVal):
			return invalid(f+".targetPort", "%q is neither a number nor a container port name (1-15 lowercase letters, digits, '-', with a letter)", p.TargetPort.StrVal)
		case !p.TargetPort.IsStr && (p.TargetPort.IntVal < 0 || p.TargetPort.IntVal > 65535):
			return invalid(f+".targetPort", "%d: want 1-65535 or a container port name", p.TargetPort.IntVal)
		}
		if p.NodePort != 0 {
			if !external {
				return invalid(f+".nodePort", "set only with type NodePort or LoadBalancer (type is %s)", s.Type)
			}
			if p.NodePort < 1 || p.NodePort > 65535 {
				return invalid(f+".nodePort", "%d: want 1-65535 (the cluster's node port range is checked when the data plane allocates it)", p.NodePort)
			}
			if j, dup := nodePorts[p.NodePort]; dup {
				return invalid(f+".nodePort", "%d is also spec.ports[%d]'s node port", p.NodePort, j)
			}
			nodePorts[p.NodePort] = i
		}
	}
	return nil
}

// checkDNSName checks an RFC 1123 host name (ExternalName's alias).
func checkDNSName(n string) error {
	n = strings.TrimSuffix(n, ".")
	if len(n) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", n)
	}
	for _, l := range strings.Split(n, ".") {
		if len(l) > 63 || !dnsLabel.MatchString(l) {
			return fmt.Errorf("%q is not a DNS name: element %q wants lowercase letters, digits and '-' (1-63, not starting or ending with '-')", n, l)
		}
	}
	return nil
}

// CheckDNSName checks an RFC 1123 DNS name (a cluster's clusterDomain).
func CheckDNSName(n string) error { return checkDNSName(n) }
