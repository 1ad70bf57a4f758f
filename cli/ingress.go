package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/lb"
)

// Ingresses: HTTP routes by host name and path onto Services (ingress.*),
// what NSX Advanced Load Balancer virtual services give a vSphere shop.
// They come from psc apply -f (networking.k8s.io/v1 Ingress); every host's
// proxy serves them. ingress.info shows the routes as the proxies build
// them (lb.Routes over the Services vcenter has), with each backend's
// endpoints ready / total.

var ingressKind = registerWorkload(&workloadKind{
	kind: api.KindIngress, prefix: "ingress", alias: "ing", noun: "Ingresses (HTTP routing to Services)",
	header: []string{"Class", "Hosts", "Address", "Ports"},
	row: func(o *api.Object, _ time.Time) []string {
		s, st := specOf[api.IngressSpec](o), statusOf[api.IngressStatus](o)
		return []string{orDash(s.IngressClassName), ingressHostsText(s), ingressAddressText(st), ingressPortsText(s, st)}
	},
	info: func(ctx context.Context, c API, o *api.Object, b *block, _ *time.Location) error {
		s, st := specOf[api.IngressSpec](o), statusOf[api.IngressStatus](o)
		b.add("Class", "%s", orDash(s.IngressClassName))
		b.add("Address", "%s", ingressAddressText(st))
		b.add("Ports", "%s", ingressPortsText(s, st))
		var tls []string
		for _, t := range s.TLS {
			tls = append(tls, fmt.Sprintf("%s (certificate %s)", strings.Join(t.Hosts, ", "), orDash(t.SecretName)))
		}
		b.list("TLS", tls)
		table, err := ingressRoutes(ctx, c, o)
		if err != nil {
			return err
		}
		var rules, lost []string
		for _, r := range table.List() {
			if r.Ingress != o.Path {
				continue
			}
			rules = append(rules, routeLine(r))
		}
		for _, x := range table.Conflicts {
			if x.Ingress == o.Path {
				lost = append(lost, fmt.Sprintf("%s%s (%s): served by the older %s", orDash(x.Host), x.Path, x.PathType, dcRelative(x.Winner)))
			}
		}
		b.list("Rules", rules)
		if len(lost) > 0 {
			b.list("Not served", lost)
		}
		return nil
	},
	summary: func(o *api.Object) string {
		s, st := specOf[api.IngressSpec](o), statusOf[api.IngressStatus](o)
		return fmt.Sprintf("%s at %s", ingressHostsText(s), ingressAddressText(st))
	},
	state: func(o *api.Object) string { return ingressHostsText(specOf[api.IngressSpec](o)) },
})

// ingressRoutes is the route table the proxies build, from every Ingress
// and Service of o's datacenter (older Ingresses win conflicts).
func ingressRoutes(ctx context.Context, c API, o *api.Object) (*lb.RouteTable, error) {
	ref, err := api.ParsePath(o.Path)
	if err != nil {
		return nil, err
	}
	ings, err := c.List(ctx, client.ListOptions{Kind: api.KindIngress, Prefix: "/" + ref.Datacenter + "/ingress"})
	if err != nil {
		return nil, err
	}
	svcs, err := c.List(ctx, client.ListOptions{Kind: api.KindService, Prefix: "/" + ref.Datacenter + "/service"})
	if err != nil {
		return nil, err
	}
	cluster := specOf[api.IngressSpec](o).Cluster
	in := map[string]lb.Ingress{}
	for _, x := range ings.Items {
		if i := lb.IngressOf(x); i != nil && i.Spec.Cluster == cluster {
			in[x.Path] = *i
		}
	}
	sv := map[string]lb.Service{}
	for _, x := range svcs.Items {
		if s := lb.ServiceOf(x); s != nil {
			sv[x.Path] = *s
		}
	}
	return lb.Routes(in, sv), nil
}

// routeLine is one rule: shop.example.com/api (Prefix) -> web:80, 2/3 endpoints ready.
func routeLine(r lb.Route) string {
	where := orDash(r.Host) + r.Path
	if r.Default {
		where = "default backend"
	} else {
		where += " (" + r.PathType + ")"
	}
	be := r.Backend
	if be.Service == "" {
		return fmt.Sprintf("%s -> %s", where, be.Reason)
	}
	line := fmt.Sprintf("%s -> %s:%s, %d/%d endpoints ready", where, dcRelative(be.Service), be.Port, be.Ready, be.Total)
	if be.Reason != "" {
		line += " (503: " + be.Reason + ")"
	} else if len(be.Endpoints) > 0 {
		line += " (" + strings.Join(be.Endpoints, ", ") + ")"
	}
	return line
}

// ingressHostsText is kubectl's HOSTS column: the rules' hosts, * for a
// rule without one.
func ingressHostsText(s api.IngressSpec) string {
	var hosts []string
	for _, r := range s.Rules {
		h := r.Host
		if h == "" {
			h = "*"
		}
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return "*"
	}
	return strings.Join(hosts, ",")
}

// ingressAddressText is where the Ingress answers: "<pending>" until the
// cluster's Ingress address is given.
func ingressAddressText(st api.IngressStatus) string {
	var ips []string
	for _, in := range st.LoadBalancer.Ingress {
		ips = append(ips, in.IP)
	}
	if len(ips) == 0 {
		return "<pending>"
	}
	return strings.Join(ips, ",")
}

// ingressPortsText is kubectl's PORTS: 80, and 443 with TLS, unless the
// status lists others.
func ingressPortsText(s api.IngressSpec, st api.IngressStatus) string {
	var ports []string
	for _, in := range st.LoadBalancer.Ingress {
		for _, p := range in.Ports {
			if t := fmt.Sprint(p.Port); !slices.Contains(ports, t) {
				ports = append(ports, t)
			}
		}
	}
	if len(ports) > 0 {
		return strings.Join(ports, ",")
	}
	if len(s.TLS) > 0 {
		return "80,443"
	}
	return "80"
}
