package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

func TestIngressFile(t *testing.T) {
	svc := func(name string, port api.ServiceBackendPort) api.IngressBackend {
		return api.IngressBackend{Service: &api.IngressServiceBackend{Name: name, Port: port}}
	}
	checkItems(t, decodeOK(t, readFile(t, "testdata/k8s/ingress.yaml"), ctx), []want{{kind: "Ingress", path: "/dc1/ingress/datagrand/sphinx",
		spec: api.IngressSpec{IngressClassName: "podsphere",
			TLS: []api.IngressTLS{{Hosts: []string{"sphinx-v1.esxcloud.net"}, SecretName: "sphinx-tls"}},
			Rules: []api.IngressRule{
				{Host: "sphinx-v1.esxcloud.net", HTTP: &api.HTTPIngressRuleValue{Paths: []api.HTTPIngressPath{
					{Path: "/", PathType: "Prefix", Backend: svc("sphinx-svc-1", api.ServiceBackendPort{Number: 80})}}}},
				{Host: "*.esxcloud.net", HTTP: &api.HTTPIngressRuleValue{Paths: []api.HTTPIngressPath{
					{Path: "/api", PathType: "Exact", Backend: svc("sphinx-svc-2", api.ServiceBackendPort{Name: "http"})}}}},
			}}}})
}

func TestIngressErrors(t *testing.T) {
	const head = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\n"
	const be = "backend: {service: {name: web, port: {number: 80}}}"
	for _, tt := range []struct{ name, in, want string }{
		{"gone version", "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: web}\nspec: {backend: {serviceName: web, servicePort: 80}}\n",
			`document 1: Ingress apiVersion extensions/v1beta1 is gone since Kubernetes 1.22: use networking.k8s.io/v1 (backend.serviceName/servicePort become backend.service.name/port.number, and every path needs a pathType)`},
		{"no pathType", head + "spec: {rules: [{host: a.example.com, http: {paths: [{path: /, " + be + "}]}}]}\n",
			`document 1 (Ingress "web"): spec.rules[0].http.paths[0].pathType: required: one of Exact, Prefix, ImplementationSpecific`},
		{"relative path", head + "spec: {rules: [{http: {paths: [{path: api, pathType: Prefix, " + be + "}]}}]}\n",
			`document 1 (Ingress "web"): spec.rules[0].http.paths[0].path: "api" must start with /`},
		{"two-label wildcard", head + "spec: {rules: [{host: '*.*.example.com', http: {paths: [{path: /, pathType: Prefix, " + be + "}]}}]}\n",
			`document 1 (Ingress "web"): spec.rules[0].host: "*.*.example.com": a wildcard host is '*.' followed by a DNS name (the '*' stands for exactly one label)`},
		{"address as host", head + "spec: {rules: [{host: 10.0.0.1, http: {paths: [{path: /, pathType: Prefix, " + be + "}]}}]}\n",
			`document 1 (Ingress "web"): spec.rules[0].host: "10.0.0.1" is an IP address, not a host name: a rule without a host matches requests by address`},
		{"port name and number", head + "spec: {defaultBackend: {service: {name: web, port: {number: 80, name: http}}}}\n",
			`document 1 (Ingress "web"): spec.defaultBackend.service.port: give a number or a name, not both (80 and "http")`},
		{"empty", head + "spec: {}\n",
			`document 1 (Ingress "web"): spec: an Ingress needs a defaultBackend or at least one rule`},
		{"typo", head + "spec: {defaultBakend: {service: {name: web, port: {number: 80}}}}\n",
			`document 1 (Ingress "web"): spec.defaultBakend: unknown field`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.in), ctx)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error\n got %q\nwant %q", err.Error(), tt.want)
			}
			if !errors.Is(err, api.ErrInvalid) {
				t.Errorf("%v is not ErrInvalid", err)
			}
		})
	}
}
