package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// Services: load-balanced names for VMs (svc.*), what NSX or an F5 virtual
// server gives a vSphere shop. govc has no balancer verbs, so these follow
// the workload verbs: svc.ls, svc.info, svc.destroy. Services come from
// psc apply -f (Kubernetes v1 Service); vcenter's endpoints controller keeps
// their endpoints (the pool members).

const groupLB = "lb"

var serviceKind = registerWorkload(&workloadKind{
	kind: api.KindService, prefix: "svc", alias: "service", noun: "Services (load balancing)",
	header: []string{"Type", "Cluster-IP", "External-IP", "Port(s)", "Endpoints", "Host"},
	row: func(o *api.Object, _ time.Time) []string {
		s, st := specOf[api.ServiceSpec](o), statusOf[api.ServiceStatus](o)
		return []string{s.Type, clusterIPText(s), externalIPText(s, st), portsText(s), endpointsText(s, st), answeringText(s, st)}
	},
	info: func(_ context.Context, _ API, o *api.Object, b *block, _ *time.Location) error {
		s, st := specOf[api.ServiceSpec](o), statusOf[api.ServiceStatus](o)
		b.add("Type", "%s", s.Type)
		if s.Type == api.ServiceExternalName {
			b.add("External name", "%s", s.ExternalName)
		} else {
			b.add("Cluster IP", "%s", clusterIPText(s))
		}
		if s.Cluster != "" {
			b.add("Cluster", "%s", api.Base(s.Cluster))
		}
		if s.Type == api.ServiceLoadBalancer {
			b.add("External IP", "%s", externalIPText(s, st))
			if s.LoadBalancerIP != "" {
				b.add("Asked address", "%s (spec.loadBalancerIP)", s.LoadBalancerIP)
			}
			if len(st.LoadBalancer.Ingress) > 0 && st.LoadBalancer.Ingress[0].Shared {
				b.add("Shared", "the cluster's Ingress address, with its proxy (80, 443/TCP) and other Services on their own ports")
			}
			b.add("Answered by", "%s", answeringText(s, st))
		}
		b.add("Selector", "%s", labelsText(s.Selector))
		var ports []string
		for _, p := range s.Ports {
			ports = append(ports, portLine(p))
		}
		b.list("Ports", ports)
		affinity := s.SessionAffinity
		if c := s.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			affinity += fmt.Sprintf(" (%ds)", *c.ClientIP.TimeoutSeconds)
		}
		b.add("Session affinity", "%s", orDash(affinity))
		if s.ExternalTrafficPolicy != "" {
			b.add("External traffic", "%s", s.ExternalTrafficPolicy)
		}
		if s.HealthCheckNodePort != 0 {
			b.add("Health check", "node port %d/TCP (200 only on hosts with a local endpoint)", s.HealthCheckNodePort)
		}
		b.add("Endpoints", "%s", endpointsText(s, st))
		var eps []string
		for _, sub := range st.Subsets {
			var ps []string
			for _, p := range sub.Ports {
				ps = append(ps, strings.TrimPrefix(p.Name+" ", " ")+fmt.Sprintf("%d/%s", p.Port, p.Protocol))
			}
			for _, a := range sub.Addresses {
				eps = append(eps, endpointLine(a, "ready", ps))
			}
			for _, a := range sub.NotReadyAddresses {
				eps = append(eps, endpointLine(a, "not ready", ps))
			}
		}
		b.list("Members", eps)
		return nil
	},
	summary: func(o *api.Object) string {
		s, st := specOf[api.ServiceSpec](o), statusOf[api.ServiceStatus](o)
		return fmt.Sprintf("%s %s, %s endpoints", s.Type, portsText(s), endpointsText(s, st))
	},
	state: func(o *api.Object) string {
		s, st := specOf[api.ServiceSpec](o), statusOf[api.ServiceStatus](o)
		return endpointsText(s, st) + " endpoints"
	},
})

// addLBCommands registers the Service verbs under their own help group.
func addLBCommands(env *Env, root *cobra.Command) {
	root.AddGroup(&cobra.Group{ID: groupLB, Title: "Load balancing (Services and their endpoints, Ingresses):"})
	for _, cmd := range []*cobra.Command{serviceKind.lsCommand(env), serviceKind.infoCommand(env), serviceKind.destroyCommand(env),
		ingressKind.lsCommand(env), ingressKind.infoCommand(env), ingressKind.destroyCommand(env), newIngressLogCommand(env)} {
		cmd.GroupID = groupLB
		root.AddCommand(cmd)
	}
}

// clusterIPText is the virtual address: None for headless, "<pending>"
// for a Service written before vcenter allocated cluster IPs.
func clusterIPText(s api.ServiceSpec) string {
	switch {
	case s.Type == api.ServiceExternalName:
		return "-"
	case s.ClusterIP == "":
		return "<pending>"
	}
	return s.ClusterIP
}

// externalIPText is kubectl's EXTERNAL-IP: a LoadBalancer Service's
// address or <pending> (its cluster has none free), an ExternalName
// Service's alias, <none> otherwise.
func externalIPText(s api.ServiceSpec, st api.ServiceStatus) string {
	switch s.Type {
	case api.ServiceLoadBalancer:
		if len(st.LoadBalancer.Ingress) == 0 || st.LoadBalancer.Ingress[0].IP == "" {
			return "<pending>"
		}
		if st.LoadBalancer.Ingress[0].Shared {
			// TCP or UDP through the Ingress's address, on the Service's ports.
			return st.LoadBalancer.Ingress[0].IP + " (ingress)"
		}
		return st.LoadBalancer.Ingress[0].IP
	case api.ServiceExternalName:
		return s.ExternalName
	}
	return "<none>"
}

// answeringText is the host answering for a LoadBalancer Service's
// address (podsphere's column: the one host that takes its traffic in).
func answeringText(s api.ServiceSpec, st api.ServiceStatus) string {
	if s.Type != api.ServiceLoadBalancer || len(st.LoadBalancer.Ingress) == 0 {
		return "-"
	}
	if h := st.LoadBalancer.Ingress[0].Host; h != "" {
		return api.Base(h)
	}
	return "<none healthy>"
}

// portsText is kubectl's PORT(S) column: 80/TCP, 80:30080/TCP, 443->https/TCP.
func portsText(s api.ServiceSpec) string {
	if len(s.Ports) == 0 {
		return "-"
	}
	var out []string
	for _, p := range s.Ports {
		t := fmt.Sprint(p.Port)
		if p.NodePort != 0 {
			t += fmt.Sprintf(":%d", p.NodePort)
		}
		out = append(out, t+"/"+p.Protocol)
	}
	return strings.Join(out, ",")
}

func portLine(p api.ServicePort) string {
	target := p.TargetPort.String()
	if p.TargetPort.IsZero() {
		target = fmt.Sprint(p.Port)
	}
	line := fmt.Sprintf("%d/%s -> %s", p.Port, p.Protocol, target)
	if p.Name != "" {
		line = p.Name + " " + line
	}
	if p.NodePort != 0 {
		line += fmt.Sprintf(" (node port %d)", p.NodePort)
	}
	return line
}

// endpointsText is ready/total, "-" where vcenter keeps none (no
// selector, ExternalName).
func endpointsText(s api.ServiceSpec, st api.ServiceStatus) string {
	if len(s.Selector) == 0 || s.Type == api.ServiceExternalName {
		return "-"
	}
	return fmt.Sprintf("%d/%d", st.Ready, st.Total)
}

func endpointLine(a api.EndpointAddress, state string, ports []string) string {
	return fmt.Sprintf("%s %s on %s, %s (%s)", dcRelative(a.VM), a.IP, api.Base(a.Host), state, strings.Join(ports, ", "))
}
