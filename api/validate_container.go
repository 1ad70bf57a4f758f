package api

import (
	"fmt"
	"regexp"
	"strings"
)

// Image pull policies (Container.ImagePullPolicy); "" means IfNotPresent.
const (
	PullIfNotPresent = "IfNotPresent"
	PullAlways       = "Always"
	PullNever        = "Never"
)

// Kubernetes' probe defaults, which zero timings of a Probe stand for.
const (
	DefaultProbePeriodSeconds    = 10
	DefaultProbeTimeoutSeconds   = 1
	DefaultProbeSuccessThreshold = 1
	DefaultProbeFailureThreshold = 3
)

// WithDefaults returns a copy of p with every zero timing replaced by
// Kubernetes' default (InitialDelaySeconds stays 0: probe at once).
func (p Probe) WithDefaults() Probe {
	if p.PeriodSeconds <= 0 {
		p.PeriodSeconds = DefaultProbePeriodSeconds
	}
	if p.TimeoutSeconds <= 0 {
		p.TimeoutSeconds = DefaultProbeTimeoutSeconds
	}
	if p.SuccessThreshold <= 0 {
		p.SuccessThreshold = DefaultProbeSuccessThreshold
	}
	if p.FailureThreshold <= 0 {
		p.FailureThreshold = DefaultProbeFailureThreshold
	}
	if p.InitialDelaySeconds < 0 {
		p.InitialDelaySeconds = 0
	}
	return p
}

var (
	// dnsLabel is RFC 1123's label, what Kubernetes asks of container names.
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// portName is IANA_SVC_NAME: 1-15 lowercase letters, digits and
	// non-adjacent inner hyphens, with at least one letter.
	portName   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$`)
	hasLetter  = regexp.MustCompile(`[a-z]`)
	headerName = regexp.MustCompile("^[-!#$%&'*+.^_`|~0-9A-Za-z]+$")
)

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), ErrInvalid)
}

// validPortName says whether s is a Kubernetes port name (IANA_SVC_NAME).
func validPortName(s string) bool {
	return portName.MatchString(s) && hasLetter.MatchString(s) && !strings.Contains(s, "--")
}

// ResolvePort turns a probe's port, a number or the name of one of c's
// ports, into a port number.
func ResolvePort(port IntOrString, c Container) (int, error) {
	if !port.IsStr {
		if port.IntVal < 1 || port.IntVal > 65535 {
			return 0, fmt.Errorf("port %d: want 1-65535: %w", port.IntVal, ErrInvalid)
		}
		return port.IntVal, nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return p.ContainerPort, nil
		}
	}
	if !validPortName(port.StrVal) {
		return 0, fmt.Errorf("port %q is neither a number nor a port name (1-15 lowercase letters, digits, '-'): %w", port.StrVal, ErrInvalid)
	}
	return 0, fmt.Errorf("port %q: container %q declares no port of that name: %w", port.StrVal, c.Name, ErrInvalid)
}

// Validate checks a probe of container c; field names it in errors, e.g.
// spec.containers[0].livenessProbe. It checks what every kind of probe
// shares: exactly one action, a port that is a number from 1 to 65535 or
// a port name c declares, a known scheme, header names, timings that are
// not negative. (Zero timings stand for the defaults, so thresholds of 0
// pass: they mean 1 and 3.) What depends on the probe's kind (liveness
// and startup probes need successThreshold 1) is ValidateContainer's.
func (p *Probe) Validate(field string, c Container) error {
	if p == nil {
		return nil
	}
	n := 0
	for _, set := range []bool{p.Exec != nil, p.HTTPGet != nil, p.TCPSocket != nil} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return invalid(field, "must specify one action: exec, httpGet or tcpSocket")
	case n > 1:
		return invalid(field, "may not specify more than one action (exec, httpGet, tcpSocket)")
	}
	switch {
	case p.Exec != nil:
		if len(p.Exec.Command) == 0 {
			return invalid(field+".exec.command", "is required")
		}
	case p.HTTPGet != nil:
		h := p.HTTPGet
		if _, err := ResolvePort(h.Port, c); err != nil {
			return fmt.Errorf("%s.httpGet.port: %w", field, err)
		}
		if h.Scheme != "" && h.Scheme != "HTTP" && h.Scheme != "HTTPS" {
			return invalid(field+".httpGet.scheme", "%q: want HTTP or HTTPS", h.Scheme)
		}
		if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
			return invalid(field+".httpGet.path", "%q must start with /", h.Path)
		}
		for i, hd := range h.HTTPHeaders {
			if !headerName.MatchString(hd.Name) {
				return invalid(fmt.Sprintf("%s.httpGet.httpHeaders[%d].name", field, i), "%q is not an HTTP header name", hd.Name)
			}
		}
	case p.TCPSocket != nil:
		if _, err := ResolvePort(p.TCPSocket.Port, c); err != nil {
			return fmt.Errorf("%s.tcpSocket.port: %w", field, err)
		}
	}
	for _, t := range []struct {
		name string
		v    int
	}{
		{"initialDelaySeconds", p.InitialDelaySeconds},
		{"periodSeconds", p.PeriodSeconds},
		{"timeoutSeconds", p.TimeoutSeconds},
		{"successThreshold", p.SuccessThreshold},
		{"failureThreshold", p.FailureThreshold},
	} {
		if t.v < 0 {
			return invalid(field+"."+t.name, "%d is negative (0 or absent takes the default)", t.v)
		}
	}
	return nil
}

// ValidateContainer checks one container of a VM; field names it, e.g.
// spec.containers[0] or spec.initContainers[1], and init says it is an
// init container. It checks the name (a DNS label, as Kubernetes and the
// containerd runtime want), the image, ports, environment names, the
// image pull policy, runAsUser, and the probes: an init container may
// have none, liveness and startup probes need successThreshold 1.
func ValidateContainer(field string, c Container, init bool) error {
	if !dnsLabel.MatchString(c.Name) {
		return invalid(field+".name", "%q: want a DNS label (lowercase letters, digits and '-', at most 63)", c.Name)
	}
	if c.Image == "" {
		return invalid(field+".image", "is required")
	}
	names := map[string]bool{}
	for j, p := range c.Ports {
		pf := fmt.Sprintf("%s.ports[%d]", field, j)
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			return invalid(pf+".containerPort", "%d: want 1-65535", p.ContainerPort)
		}
		if p.Protocol != "" && p.Protocol != "TCP" && p.Protocol != "UDP" {
			return invalid(pf+".protocol", "%q: want TCP or UDP", p.Protocol)
		}
		if p.Name != "" {
			if !validPortName(p.Name) {
				return invalid(pf+".name", "%q: want 1-15 lowercase letters, digits and inner '-', with a letter", p.Name)
			}
			if names[p.Name] {
				return invalid(pf+".name", "%q is used twice", p.Name)
			}
			names[p.Name] = true
		}
	}
	for j, e := range c.Env {
		if e.Name == "" || strings.ContainsAny(e.Name, "= \x00") {
			return invalid(fmt.Sprintf("%s.env[%d].name", field, j), "%q is not a variable name", e.Name)
		}
	}
	switch c.ImagePullPolicy {
	case "", PullIfNotPresent, PullAlways, PullNever:
	default:
		return invalid(field+".imagePullPolicy", "%q: want IfNotPresent, Always or Never", c.ImagePullPolicy)
	}
	if c.RunAsUser != nil && (*c.RunAsUser < 0 || *c.RunAsUser > 2147483647) {
		return invalid(field+".runAsUser", "%d: want 0 to 2147483647", *c.RunAsUser)
	}
	probes := []struct {
		name string
		p    *Probe
	}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}}
	for _, pr := range probes {
		if pr.p == nil {
			continue
		}
		pf := field + "." + pr.name
		if init {
			return invalid(pf, "may not be set for init containers")
		}
		if err := pr.p.Validate(pf, c); err != nil {
			return err
		}
		if pr.name != "readinessProbe" && pr.p.SuccessThreshold > 1 {
			return invalid(pf+".successThreshold", "%d: must be 1 for %s probes", pr.p.SuccessThreshold, strings.TrimSuffix(pr.name, "Probe"))
		}
	}
	return nil
}

// ValidateVMContainers checks what a VM spec says of its containers:
// each container and init container (ValidateContainer), names unique
// across both lists, terminationGracePeriodSeconds not negative, and the
// hostname a DNS label. It does not ask for at least one container.
func ValidateVMContainers(s VMSpec) error {
	seen := map[string]string{}
	for _, list := range []struct {
		field string
		cs    []Container
		init  bool
	}{{"spec.initContainers", s.InitContainers, true}, {"spec.containers", s.Containers, false}} {
		for i, c := range list.cs {
			f := fmt.Sprintf("%s[%d]", list.field, i)
			if err := ValidateContainer(f, c, list.init); err != nil {
				return err
			}
			if prev, ok := seen[c.Name]; ok {
				return invalid(f+".name", "%q is already the name of %s (names are unique across containers and init containers)", c.Name, prev)
			}
			seen[c.Name] = f
		}
	}
	if g := s.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		return invalid("spec.terminationGracePeriodSeconds", "%d is negative", *g)
	}
	if s.Hostname != "" && !dnsLabel.MatchString(s.Hostname) {
		return invalid("spec.hostname", "%q: want a DNS label (lowercase letters, digits and '-', at most 63)", s.Hostname)
	}
	return ValidateDNS("spec", s.DNSPolicy, s.DNSConfig)
}
