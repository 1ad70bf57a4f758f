package lb

import (
	"fmt"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

// svcWith is a Service at /dc1/service/NAME with port 80 ("http") whose
// endpoints are ips on port 8080.
func svcWith(name string, ips ...string) Service {
	s := Service{Path: "/dc1/service/" + name, Name: name,
		Spec: api.ServiceSpec{Type: api.ServiceClusterIP, Ports: []api.ServicePort{{Name: "http", Port: 80, Protocol: "TCP", TargetPort: api.Int(8080)}}}}
	sub := api.EndpointSubset{Ports: []api.EndpointPort{{Name: "http", Port: 8080, Protocol: "TCP"}}}
	for _, ip := range ips {
		sub.Addresses = append(sub.Addresses, api.EndpointAddress{IP: ip})
	}
	s.Status.Subsets = []api.EndpointSubset{sub}
	return s
}

func backend(svc string) api.IngressBackend {
	return api.IngressBackend{Service: &api.IngressServiceBackend{Name: svc, Port: api.ServiceBackendPort{Number: 80}}}
}

func paths(ps ...string) []api.HTTPIngressPath {
	var out []api.HTTPIngressPath
	for i := 0; i+2 < len(ps)+1; i += 3 {
		out = append(out, api.HTTPIngressPath{PathType: ps[i], Path: ps[i+1], Backend: backend(ps[i+2])})
	}
	return out
}

func ing(name string, age int, rules ...api.IngressRule) Ingress {
	return Ingress{Path: "/dc1/ingress/" + name, Name: name, Created: time.Unix(int64(1000+age), 0), Spec: api.IngressSpec{Rules: rules}}
}

func rule(host string, ps ...string) api.IngressRule {
	return api.IngressRule{Host: host, HTTP: &api.HTTPIngressRuleValue{Paths: paths(ps...)}}
}

func services(names ...string) map[string]Service {
	m := map[string]Service{}
	for i, n := range names {
		m["/dc1/service/"+n] = svcWith(n, fmt.Sprintf("10.1.0.%d", i+1))
	}
	return m
}

// served names the Service a request reaches ("" for no route).
func served(t *RouteTable, host, path string) string {
	r := t.Match(host, path)
	if r == nil {
		return ""
	}
	return api.Base(r.Backend.Service)
}

// The path cases of Kubernetes' Ingress documentation ("Examples" of path
// types), which the ingress conformance suite's path_rules feature checks.
func TestRoutesKubernetesPathCases(t *testing.T) {
	const P, E = api.PathTypePrefix, api.PathTypeExact
	for _, c := range []struct {
		name  string
		paths []string
		req   string
		want  string // matching Service, "" none (default backend)
	}{
		{"prefix / matches all", []string{P, "/", "a"}, "/anything/at/all", "a"},
		{"exact /foo matches /foo", []string{E, "/foo", "a"}, "/foo", "a"},
		{"exact /foo not /bar", []string{E, "/foo", "a"}, "/bar", ""},
		{"exact /foo not /foo/", []string{E, "/foo", "a"}, "/foo/", ""},
		{"exact /foo/ not /foo", []string{E, "/foo/", "a"}, "/foo", ""},
		{"prefix /foo matches /foo", []string{P, "/foo", "a"}, "/foo", "a"},
		{"prefix /foo matches /foo/", []string{P, "/foo", "a"}, "/foo/", "a"},
		{"prefix /foo/ matches /foo", []string{P, "/foo/", "a"}, "/foo", "a"},
		{"prefix /foo/ matches /foo/", []string{P, "/foo/", "a"}, "/foo/", "a"},
		{"prefix /aaa/bb not /aaa/bbb", []string{P, "/aaa/bb", "a"}, "/aaa/bbb", ""},
		{"prefix /aaa/bbb matches /aaa/bbb", []string{P, "/aaa/bbb", "a"}, "/aaa/bbb", "a"},
		{"prefix /aaa/bbb/ ignores trailing slash", []string{P, "/aaa/bbb/", "a"}, "/aaa/bbb", "a"},
		{"prefix /aaa/bbb matches trailing slash", []string{P, "/aaa/bbb", "a"}, "/aaa/bbb/", "a"},
		{"prefix /aaa/bbb matches subpath", []string{P, "/aaa/bbb", "a"}, "/aaa/bbb/ccc", "a"},
		{"prefix /aaa/bbb not string prefix", []string{P, "/aaa/bbb", "a"}, "/aaa/bbbxyz", ""},
		{"/ and /aaa: /aaa/ccc", []string{P, "/", "a", P, "/aaa", "b"}, "/aaa/ccc", "b"},
		{"/, /aaa, /aaa/bbb: /aaa/bbb", []string{P, "/", "a", P, "/aaa", "b", P, "/aaa/bbb", "c"}, "/aaa/bbb", "c"},
		{"/, /aaa, /aaa/bbb: /ccc", []string{P, "/", "a", P, "/aaa", "b", P, "/aaa/bbb", "c"}, "/ccc", "a"},
		{"/aaa: /ccc uses default", []string{P, "/aaa", "a"}, "/ccc", ""},
		{"mixed prefers exact", []string{P, "/foo", "a", E, "/foo", "b"}, "/foo", "b"},
		{"mixed: exact written first", []string{E, "/foo", "b", P, "/foo", "a"}, "/foo", "b"},
		{"mixed: prefix serves subpaths", []string{P, "/foo", "a", E, "/foo", "b"}, "/foo/x", "a"},
		{"longest wins over exact shorter", []string{E, "/foo", "a", P, "/foo/bar", "b"}, "/foo/bar", "b"},
		{"exact /foo/ beats prefix /foo at /foo/", []string{P, "/foo", "a", E, "/foo/", "b"}, "/foo/", "b"},
		{"exact /foo beats prefix /foo/ at /foo", []string{P, "/foo/", "a", E, "/foo", "b"}, "/foo", "b"},
		{"implementation specific is a prefix", []string{api.PathTypeImplementationSpecific, "/img", "a"}, "/img/1.png", "a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := Routes(map[string]Ingress{"/dc1/ingress/x": ing("x", 0, rule("", c.paths...))}, services("a", "b", "c"))
			if got := served(tb, "example.com", c.req); got != c.want {
				t.Errorf("%s with rules %v: got %q, want %q", c.req, c.paths, got, c.want)
			}
		})
	}
}

func TestRoutesHosts(t *testing.T) {
	const P = api.PathTypePrefix
	in := ing("web", 0,
		rule("sphinx-v1.esxcloud.net", P, "/", "v1"),
		rule("*.esxcloud.net", P, "/", "wild"),
		rule("", P, "/", "any"),
	)
	tb := Routes(map[string]Ingress{in.Path: in}, services("v1", "wild", "any"))
	for _, c := range []struct{ host, want string }{
		{"sphinx-v1.esxcloud.net", "v1"},
		{"sphinx-v1.esxcloud.net:8080", "v1"},
		{"SPHINX-V1.esxcloud.net", "v1"},
		{"other.esxcloud.net", "wild"}, // wildcard: one label
		{"a.b.esxcloud.net", "any"},    // two labels: not the wildcard
		{"esxcloud.net", "any"},        // no label: not the wildcard
		{"10.99.0.50", "any"},          // by address
		{"[fd00::1]:80", "any"},        // by IPv6 address
		{"sphinx-v1.esxcloud.net.evil", "any"},
	} {
		if got := served(tb, c.host, "/x"); got != c.want {
			t.Errorf("host %s: got %q, want %q", c.host, got, c.want)
		}
	}
}

// A host with rules keeps its requests: a path it does not route goes to
// the default backend, not to the rules without a host (as ingress-nginx).
func TestRoutesHostWithoutMatchingPathUsesDefault(t *testing.T) {
	const P = api.PathTypePrefix
	in := ing("web", 0, rule("a.example.com", P, "/api", "a"), rule("", P, "/", "any"))
	def := backend("fallback")
	in.Spec.DefaultBackend = &def
	tb := Routes(map[string]Ingress{in.Path: in}, services("a", "any", "fallback"))
	if got := served(tb, "a.example.com", "/other"); got != "fallback" {
		t.Errorf("got %q, want the default backend", got)
	}
	if r := tb.Match("a.example.com", "/other"); !r.Default {
		t.Errorf("route %+v is not marked default", r)
	}
	if got := served(tb, "b.example.com", "/other"); got != "any" {
		t.Errorf("got %q, want the rules without a host", got)
	}
	noDef := ing("web", 0, rule("a.example.com", P, "/api", "a"))
	if r := Routes(map[string]Ingress{noDef.Path: noDef}, services("a")).Match("a.example.com", "/"); r != nil {
		t.Errorf("no route and no default backend: got %+v, want nil (404)", r)
	}
}

// Two Ingresses claiming the same host and path: the older one is served,
// whichever order the map gives, and the loser is listed as a conflict.
func TestRoutesConflictsOldestWins(t *testing.T) {
	const P = api.PathTypePrefix
	old := ing("old", 0, rule("a.example.com", P, "/", "first"))
	young := ing("young", 5, rule("a.example.com", P, "/", "second"), rule("b.example.com", P, "/", "second"))
	for range 20 {
		tb := Routes(map[string]Ingress{young.Path: young, old.Path: old}, services("first", "second"))
		if got := served(tb, "a.example.com", "/"); got != "first" {
			t.Fatalf("got %q, want the oldest Ingress's Service", got)
		}
		if got := served(tb, "b.example.com", "/"); got != "second" {
			t.Fatalf("the younger Ingress's other rule: got %q", got)
		}
		if len(tb.Conflicts) != 1 || tb.Conflicts[0].Ingress != young.Path || tb.Conflicts[0].Winner != old.Path {
			t.Fatalf("conflicts %+v", tb.Conflicts)
		}
	}
	// /foo and /foo/ are the same Prefix rule.
	a := ing("a", 0, rule("", P, "/foo", "first"))
	b := ing("b", 1, rule("", P, "/foo/", "second"))
	if got := served(Routes(map[string]Ingress{a.Path: a, b.Path: b}, services("first", "second")), "x", "/foo/bar"); got != "first" {
		t.Errorf("/foo vs /foo/: got %q", got)
	}
}

func TestRoutesBackends(t *testing.T) {
	const P = api.PathTypePrefix
	svcs := services("web")
	svcs["/dc1/service/empty"] = svcWith("empty")
	ext := svcWith("ext")
	ext.Spec = api.ServiceSpec{Type: api.ServiceExternalName, ExternalName: "example.org", Ports: []api.ServicePort{{Port: 443}}}
	svcs[ext.Path] = ext
	in := ing("web", 0, rule("", P, "/web", "web", P, "/missing", "nope", P, "/empty", "empty"))
	named := api.HTTPIngressPath{PathType: P, Path: "/named", Backend: api.IngressBackend{Service: &api.IngressServiceBackend{Name: "web", Port: api.ServiceBackendPort{Name: "http"}}}}
	badPort := api.HTTPIngressPath{PathType: P, Path: "/badport", Backend: api.IngressBackend{Service: &api.IngressServiceBackend{Name: "web", Port: api.ServiceBackendPort{Number: 81}}}}
	extPath := api.HTTPIngressPath{PathType: P, Path: "/ext", Backend: api.IngressBackend{Service: &api.IngressServiceBackend{Name: "ext", Port: api.ServiceBackendPort{Number: 443}}}}
	in.Spec.Rules[0].HTTP.Paths = append(in.Spec.Rules[0].HTTP.Paths, named, badPort, extPath)
	tb := Routes(map[string]Ingress{in.Path: in}, svcs)
	for _, c := range []struct {
		path, endpoints, reason string
	}{
		{"/web", "[10.1.0.1:8080]", ""},
		{"/named", "[10.1.0.1:8080]", ""},
		{"/missing", "[]", "Service /dc1/service/nope does not exist"},
		{"/empty", "[]", "Service /dc1/service/empty has no ready endpoints (0/0)"},
		{"/badport", "[]", "Service /dc1/service/web has no port 81"},
		{"/ext", "[example.org:443]", ""},
	} {
		r := tb.Match("h", c.path)
		if r == nil {
			t.Fatalf("%s: no route", c.path)
		}
		if got := fmt.Sprint(r.Backend.Endpoints); got != c.endpoints || r.Backend.Reason != c.reason {
			t.Errorf("%s: endpoints %s reason %q, want %s %q", c.path, got, r.Backend.Reason, c.endpoints, c.reason)
		}
	}
}

func TestRoutesTLSAndList(t *testing.T) {
	const P = api.PathTypePrefix
	in := ing("web", 0, rule("a.example.com", P, "/", "web"))
	in.Spec.TLS = []api.IngressTLS{{Hosts: []string{"a.example.com", "*.example.com"}, SecretName: "example"}}
	tb := Routes(map[string]Ingress{in.Path: in}, services("web"))
	if tb.TLS["a.example.com"] != "example" || tb.TLS["*.example.com"] != "example" {
		t.Errorf("TLS %v", tb.TLS)
	}
	if l := tb.List(); len(l) != 1 || l[0].Host != "a.example.com" || l[0].Ingress != in.Path {
		t.Errorf("List %+v", l)
	}
}

func BenchmarkMatch(b *testing.B) {
	const P, E = api.PathTypePrefix, api.PathTypeExact
	var rules []api.IngressRule
	for i := range 100 {
		rules = append(rules, rule(fmt.Sprintf("app%d.example.com", i), P, "/", "a", P, "/api", "b", E, "/healthz", "c", P, "/api/v2/items", "a"))
	}
	in := ing("many", 0, rules...)
	tb := Routes(map[string]Ingress{in.Path: in}, services("a", "b", "c"))
	b.ReportAllocs()
	for b.Loop() {
		if tb.Match("app57.example.com", "/api/v2/items/42") == nil {
			b.Fatal("no match")
		}
	}
}
