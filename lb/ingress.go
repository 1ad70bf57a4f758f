package lb

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/podsphere/podsphere/api"
)

// Ingress is one Ingress as a host sees it. Created orders conflicting
// rules: the oldest Ingress wins, as in ingress-nginx.
type Ingress struct {
	Path      string
	Namespace string // "" for the default namespace
	Name      string
	Created   time.Time
	Spec      api.IngressSpec
	Status    api.IngressStatus
}

// IngressOf decodes an Ingress object; nil when its spec does not decode
// (vcenter validated it, so that is a newer vcenter's shape).
func IngressOf(o *api.Object) *Ingress {
	in := &Ingress{Path: o.Path, Created: o.Created}
	if err := o.DecodeSpec(&in.Spec); err != nil {
		return nil
	}
	_ = o.DecodeStatus(&in.Status)
	if ref, err := api.ParsePath(o.Path); err == nil {
		in.Namespace, in.Name = ref.Namespace, ref.Name
	}
	return in
}

// Backend is where a route sends requests: a Service port, resolved to the
// ready endpoints' addresses. A Backend with no Endpoints answers 503 with
// Reason.
type Backend struct {
	Service string // the Service's inventory path
	Port    string // as the Ingress names it: 80 or http
	// Endpoints are "IP:port" of the Service's ready endpoints for that
	// port, in the order lb.Endpoints keeps them; an ExternalName Service
	// has one, its DNS name and the port.
	Endpoints []string
	Ready     int // ready addresses (len(Endpoints))
	Total     int // ready + not ready addresses
	Reason    string
}

// Route is one path rule of the table.
type Route struct {
	Ingress  string // inventory path of the Ingress it comes from
	Host     string // "" (every host), a name, or *.suffix
	Path     string // as written ("/" for the default backend)
	PathType string
	Backend  *Backend
	// Default: the cluster's default backend (no host and no path matched).
	Default bool
	// key is Path without its trailing slash, what Prefix compares.
	key string
}

// Conflict is a rule that lost to an older Ingress's rule for the same
// host, path and type: the proxy serves the winner only.
type Conflict struct {
	Ingress, Host, Path, PathType string
	Winner                        string // the Ingress whose rule is served
}

// RouteTable is what the Ingress proxies of a cluster serve, built by
// Routes. It is read-only once built, so a proxy swaps whole tables and a
// request in flight keeps the table it started with. Matching allocates
// nothing.
type RouteTable struct {
	exact    map[string]*hostRoutes // by host name
	wildcard map[string]*hostRoutes // by the suffix after "*."
	anyHost  *hostRoutes            // rules without a host
	def      *Route
	routes   []*Route
	// TLS maps host names (and *.suffix wildcards) to the certificate
	// name (tls[].secretName) that serves them.
	TLS       map[string]string
	Conflicts []Conflict
}

type hostRoutes struct {
	exact    map[string]*Route
	prefixes []*Route // longest key first
}

// Routes builds the route table of ingresses over services (both by
// inventory path). Backends naming a Service that does not exist, a port
// it does not have, or a Service without ready endpoints get a Reason and
// no endpoints: the proxy answers 503 for those routes only.
func Routes(ingresses map[string]Ingress, services map[string]Service) *RouteTable {
	t := &RouteTable{exact: map[string]*hostRoutes{}, wildcard: map[string]*hostRoutes{}, TLS: map[string]string{}}
	order := make([]*Ingress, 0, len(ingresses))
	for _, in := range ingresses {
		order = append(order, &in)
	}
	slices.SortFunc(order, func(a, b *Ingress) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Path, b.Path))
	})
	type ruleKey struct{ host, key, pathType string }
	seen := map[ruleKey]string{}
	for _, in := range order {
		dc := ""
		if ref, err := api.ParsePath(in.Path); err == nil {
			dc = ref.Datacenter
		}
		resolve := func(b *api.IngressBackend) *Backend { return resolveBackend(dc, in.Namespace, b, services) }
		var def *Backend
		if in.Spec.DefaultBackend != nil {
			def = resolve(in.Spec.DefaultBackend)
			if t.def == nil {
				t.def = &Route{Ingress: in.Path, Path: "/", PathType: api.PathTypePrefix, Backend: def, Default: true}
			}
		}
		for _, tls := range in.Spec.TLS {
			for _, h := range tls.Hosts {
				if _, ok := t.TLS[h]; !ok && tls.SecretName != "" {
					t.TLS[h] = tls.SecretName
				}
			}
		}
		for _, rule := range in.Spec.Rules {
			paths := []api.HTTPIngressPath{}
			if rule.HTTP != nil {
				paths = rule.HTTP.Paths
			} else if in.Spec.DefaultBackend != nil {
				// A host without paths is routed whole to its Ingress's default backend.
				paths = []api.HTTPIngressPath{{Path: "/", PathType: api.PathTypePrefix, Backend: *in.Spec.DefaultBackend}}
			}
			host := strings.ToLower(rule.Host)
			for _, p := range paths {
				pt := p.PathType
				if pt == api.PathTypeImplementationSpecific {
					// As ingress-nginx without regular-expression annotations: a prefix.
					pt = api.PathTypePrefix
				}
				path := cmp.Or(p.Path, "/")
				r := &Route{Ingress: in.Path, Host: host, Path: path, PathType: p.PathType, key: path}
				if pt == api.PathTypePrefix {
					r.key = strings.TrimRight(path, "/")
				}
				k := ruleKey{host, r.key, pt}
				if w, dup := seen[k]; dup {
					t.Conflicts = append(t.Conflicts, Conflict{Ingress: in.Path, Host: host, Path: path, PathType: p.PathType, Winner: w})
					continue
				}
				seen[k] = in.Path
				if def != nil && p.Backend == *in.Spec.DefaultBackend {
					r.Backend = def
				} else {
					r.Backend = resolve(&p.Backend)
				}
				t.add(r, pt)
			}
		}
	}
	for _, hs := range t.all() {
		slices.SortStableFunc(hs.prefixes, func(a, b *Route) int { return cmp.Compare(len(b.key), len(a.key)) })
	}
	return t
}

func (t *RouteTable) add(r *Route, pathType string) {
	var m map[string]*hostRoutes
	name := r.Host
	switch {
	case r.Host == "":
		if t.anyHost == nil {
			t.anyHost = &hostRoutes{exact: map[string]*Route{}}
		}
		t.anyHost.put(r, pathType)
		t.routes = append(t.routes, r)
		return
	case strings.HasPrefix(r.Host, "*."):
		m, name = t.wildcard, r.Host[2:]
	default:
		m = t.exact
	}
	hs := m[name]
	if hs == nil {
		hs = &hostRoutes{exact: map[string]*Route{}}
		m[name] = hs
	}
	hs.put(r, pathType)
	t.routes = append(t.routes, r)
}

func (hs *hostRoutes) put(r *Route, pathType string) {
	if pathType == api.PathTypeExact {
		hs.exact[r.key] = r
		return
	}
	hs.prefixes = append(hs.prefixes, r)
}

func (t *RouteTable) all() []*hostRoutes {
	var out []*hostRoutes
	for _, hs := range t.exact {
		out = append(out, hs)
	}
	for _, hs := range t.wildcard {
		out = append(out, hs)
	}
	if t.anyHost != nil {
		out = append(out, t.anyHost)
	}
	return out
}

// Match is the route serving a request for host (the Host header, with
// or without a port) and path (the URL path), nil when nothing matches
// and there is no default backend (the proxy answers 404). The host picks
// the most specific rules that exist for it (its exact name, else the
// wildcard one label up, else the rules without a host, as ingress-nginx's
// server names); among their paths the longest match wins, Exact before
// Prefix at equal length; with no path match the default backend serves.
func (t *RouteTable) Match(host, path string) *Route {
	if t == nil {
		return nil
	}
	host = hostOnly(host)
	hs := t.exact[host]
	if hs == nil {
		if i := strings.IndexByte(host, '.'); i > 0 {
			hs = t.wildcard[host[i+1:]]
		}
	}
	if hs == nil {
		hs = t.anyHost
	}
	if hs != nil {
		if r := hs.match(path); r != nil {
			return r
		}
	}
	return t.def
}

func (hs *hostRoutes) match(path string) *Route {
	if path == "" {
		path = "/"
	}
	if r, ok := hs.exact[path]; ok {
		return r
	}
	for _, r := range hs.prefixes {
		// Element-wise: /foo matches /foo, /foo/ and /foo/bar, not /foobar.
		if strings.HasPrefix(path, r.key) && (len(path) == len(r.key) || path[len(r.key)] == '/') {
			return r
		}
	}
	return nil
}

// hostOnly drops the port and lowercases, allocating only for a host
// written with capitals (clients send lowercase).
func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// List is every route served, in the order the table was built (oldest
// Ingress first, its rules as written), the default backend last.
func (t *RouteTable) List() []Route {
	out := make([]Route, 0, len(t.routes)+1)
	for _, r := range t.routes {
		out = append(out, *r)
	}
	if t.def != nil {
		out = append(out, *t.def)
	}
	return out
}

// resolveBackend finds the Service port an Ingress backend names and the
// addresses of its ready endpoints for that port.
func resolveBackend(dc, ns string, b *api.IngressBackend, services map[string]Service) *Backend {
	if b == nil || b.Service == nil {
		return &Backend{Reason: "the backend names no Service"}
	}
	path := api.NamespacedPath(api.KindService, dc, ns, b.Service.Name)
	out := &Backend{Service: path, Port: b.Service.Port.String()}
	svc, ok := services[path]
	if !ok {
		out.Reason = fmt.Sprintf("Service %s does not exist", path)
		return out
	}
	var port *api.ServicePort
	for i, p := range svc.Spec.Ports {
		if (b.Service.Port.Name != "" && p.Name == b.Service.Port.Name) || (b.Service.Port.Number != 0 && p.Port == b.Service.Port.Number) {
			port = &svc.Spec.Ports[i]
			break
		}
	}
	if port == nil {
		out.Reason = fmt.Sprintf("Service %s has no port %s", path, out.Port)
		return out
	}
	if svc.Spec.Type == api.ServiceExternalName {
		n := port.TargetPort.IntVal
		if port.TargetPort.IsStr || n == 0 {
			n = port.Port
		}
		out.Endpoints = []string{net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(n))}
		out.Ready, out.Total = 1, 1
		return out
	}
	for _, sub := range svc.Status.Subsets {
		for _, ep := range sub.Ports {
			if ep.Name != port.Name || ep.Protocol != cmp.Or(port.Protocol, "TCP") {
				continue
			}
			for _, a := range sub.Addresses {
				out.Endpoints = append(out.Endpoints, net.JoinHostPort(a.IP, strconv.Itoa(ep.Port)))
			}
			out.Ready += len(sub.Addresses)
			out.Total += len(sub.Addresses) + len(sub.NotReadyAddresses)
		}
	}
	if len(out.Endpoints) == 0 {
		out.Reason = fmt.Sprintf("Service %s has no ready endpoints (%d/%d)", path, out.Ready, out.Total)
	}
	return out
}
