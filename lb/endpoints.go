// Package lb holds the pure parts of podsphere's load balancing: which VMs
// are a Service's endpoints (the pool members of an NSX or F5 virtual
// server). It does no I/O and reads no clock: state in, decision out.
package lb

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/podsphere/podsphere/api"
)

// VM is what endpoint selection needs to know of one VM.
type VM struct {
	Path      string // inventory path
	Namespace string // "" for the default namespace
	Labels    map[string]string
	// Running: powered on and reported running by its host (a VM that
	// finished, or is powered off, is no endpoint at all).
	Running bool
	Ready   bool   // the host's readiness verdict
	IP      string // "" until the host reports one
	Host    string // the host running it (inventory path)
	// Ports are the ports its containers declare (for named target ports).
	Ports []api.Port
}

// Host states that take a host's VMs out of every Service: vcenter no
// longer hears from it (notResponding), or vSphere HA declared it failed
// or isolated; its VMs may be gone or about to restart elsewhere, and a
// client sent to them would hang.
func hostGone(state string) bool {
	switch state {
	case api.HostNotResponding, "failed", "isolated":
		return true
	}
	return false
}

// Endpoints are a Service's members: ns is the Service's namespace ("" for
// default), hostState maps host paths to their state (a host missing from
// it counts as connected). Matching VMs group into subsets by their
// resolved ports; a VM that lacks a named target port is left out of that
// port (Kubernetes does the same), and out of the Service if it resolves
// none. Order is deterministic: subsets by their ports, addresses by IP
// then VM path. A Service without a selector, and an ExternalName
// Service, have no endpoints kept by vcenter (nil).
func Endpoints(ns string, spec api.ServiceSpec, vms []VM, hostState map[string]string) []api.EndpointSubset {
	if len(spec.Selector) == 0 || spec.Type == api.ServiceExternalName {
		return nil
	}
	bySet := map[string]*api.EndpointSubset{}
	for _, vm := range vms {
		if vm.Namespace != ns || !vm.Running || vm.IP == "" || !matches(spec.Selector, vm.Labels) || hostGone(hostState[vm.Host]) {
			continue
		}
		ports := resolve(spec.Ports, vm.Ports)
		if len(spec.Ports) > 0 && len(ports) == 0 {
			continue
		}
		key := portsKey(ports)
		set := bySet[key]
		if set == nil {
			set = &api.EndpointSubset{Ports: ports}
			bySet[key] = set
		}
		a := api.EndpointAddress{IP: vm.IP, VM: vm.Path, Host: vm.Host}
		if vm.Ready {
			set.Addresses = append(set.Addresses, a)
		} else {
			set.NotReadyAddresses = append(set.NotReadyAddresses, a)
		}
	}
	keys := make([]string, 0, len(bySet))
	for k := range bySet {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]api.EndpointSubset, 0, len(keys))
	for _, k := range keys {
		s := bySet[k]
		sortAddresses(s.Addresses)
		sortAddresses(s.NotReadyAddresses)
		out = append(out, *s)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Count is the ready and total addresses of subsets.
func Count(subsets []api.EndpointSubset) (ready, total int) {
	for _, s := range subsets {
		ready += len(s.Addresses)
		total += len(s.Addresses) + len(s.NotReadyAddresses)
	}
	return ready, total
}

func matches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if l, ok := labels[k]; !ok || l != v {
			return false
		}
	}
	return true
}

// resolve turns the Service's ports into this VM's: a number as it is
// (zero: the Service port), a name by the VM's container port of that
// name and protocol.
func resolve(sp []api.ServicePort, vp []api.Port) []api.EndpointPort {
	var out []api.EndpointPort
	for _, p := range sp {
		proto := cmp.Or(p.Protocol, "TCP")
		n := p.TargetPort.IntVal
		switch {
		case p.TargetPort.IsStr:
			n = 0
			for _, c := range vp {
				if c.Name == p.TargetPort.StrVal && cmp.Or(c.Protocol, "TCP") == proto {
					n = c.ContainerPort
					break
				}
			}
			if n == 0 {
				continue
			}
		case n == 0:
			n = p.Port
		}
		out = append(out, api.EndpointPort{Name: p.Name, Port: n, Protocol: proto})
	}
	return out
}

func portsKey(ps []api.EndpointPort) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s=%05d/%s;", p.Name, p.Port, p.Protocol)
	}
	return b.String()
}

func sortAddresses(as []api.EndpointAddress) {
	slices.SortFunc(as, func(a, b api.EndpointAddress) int {
		return cmp.Or(cmp.Compare(a.IP, b.IP), cmp.Compare(a.VM, b.VM))
	})
}
