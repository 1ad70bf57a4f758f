package cli

import (
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/agent"
	"github.com/podsphere/podsphere/host/ingress"
)

// The Ingress (two host rules, a wildcard, TLS) applied before one
// of its Services exists: ingress.ls shows its class, hosts and ports;
// ingress.info shows each rule with its backend's endpoints, and 503 for
// the missing Service; vcenter left an event saying so.
func TestApplyIngressAndIngressVerbs(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01", "esx-02")
	k8s := func(name string) string { return filepath.Join("..", "api", "manifest", "testdata", "k8s", name) }
	for _, doc := range []string{"apiVersion: v1\nkind: Namespace\nmetadata: {name: datagrand}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: sphinx-svc-1, namespace: datagrand}\nspec: {selector: {app: sphinx}, ports: [{port: 80}]}\n"} {
		if _, errOut, code := l.psc(doc, nil, "apply", "-f", "-"); code != 0 {
			t.Fatalf("apply: exit %d: %s", code, errOut)
		}
	}
	if out, errOut, code := l.psc("", nil, "apply", "-f", k8s("ingress.yaml")); code != 0 || !strings.Contains(out, "sphinx") {
		t.Fatalf("apply ingress.yaml: exit %d: %s%s", code, out, errOut)
	}
	out, errOut, code := l.psc("", nil, "ingress.ls", "-namespace", "datagrand")
	if code != 0 {
		t.Fatalf("ingress.ls: exit %d: %s", code, errOut)
	}
	t.Logf("psc ingress.ls -namespace datagrand:\n%s", out)
	row := regexp.MustCompile(`(?m)^sphinx\s+podsphere\s+sphinx-v1\.esxcloud\.net,\*\.esxcloud\.net\s+<pending>\s+80,443\s+\S+\s*$`)
	if !strings.Contains(out, "Hosts") || !row.MatchString(out) {
		t.Errorf("ingress.ls:\n%s\nwant the row sphinx podsphere sphinx-v1.esxcloud.net,*.esxcloud.net <pending> 80,443 AGE", out)
	}
	out, errOut, code = l.psc("", nil, "ingress.info", "-namespace", "datagrand", "sphinx")
	if code != 0 {
		t.Fatalf("ingress.info: exit %d: %s", code, errOut)
	}
	t.Logf("psc ingress.info -namespace datagrand sphinx:\n%s", out)
	for _, want := range []string{
		"sphinx-v1.esxcloud.net/ (Prefix) -> service/datagrand/sphinx-svc-1:80, 0/0 endpoints ready (503: Service /dc1/service/datagrand/sphinx-svc-1 has no ready endpoints (0/0))",
		"*.esxcloud.net/api (Exact) -> service/datagrand/sphinx-svc-2:http, 0/0 endpoints ready (503: Service /dc1/service/datagrand/sphinx-svc-2 does not exist)",
		"sphinx-v1.esxcloud.net (certificate sphinx-tls)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ingress.info lacks %q:\n%s", want, out)
		}
	}
	out, _, code = l.psc("", nil, "ingress.ls", "-namespace", "datagrand", "-json")
	var objs []*api.Object
	if err := json.Unmarshal([]byte(out), &objs); code != 0 || err != nil || len(objs) != 1 || objs[0].Kind != api.KindIngress {
		t.Errorf("ingress.ls -json: exit %d, %v: %s", code, err, out)
	}
	out, _, _ = l.psc("", nil, "events", "/dc1/ingress/datagrand/sphinx")
	if !strings.Contains(out, "IngressBackendMissingEvent") || !strings.Contains(out, "/dc1/service/datagrand/sphinx-svc-2") {
		t.Errorf("no event about the missing Service:\n%s", out)
	}
	if _, errOut, code := l.psc("", nil, "delete", "-f", k8s("ingress.yaml")); code != 0 {
		t.Fatalf("delete -f: exit %d: %s", code, errOut)
	}
	if l.exists("/dc1/ingress/datagrand/sphinx") {
		t.Error("the Ingress is still there after delete -f")
	}
}

// psc ingress.log shows, relayed by vcenter from the host's agent, the
// requests its Ingress proxy answered: here 503 for a route whose Service
// is missing, and 404 where no rule matches.
func TestIngressLog(t *testing.T) {
	t.Parallel()
	l := labBase(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	l.startHostWith("esx-01", func(c *agent.Config) {
		c.APIListen = "127.0.0.1:0"
		c.Ingress = ingress.New(ingress.Options{})
		c.IngressListen = ingress.Listeners{HTTP: addr}
	})
	const ing = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  rules:
  - host: shop.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: shop, port: {number: 80}}}}]}
`
	if _, errOut, code := l.psc(ing, nil, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: exit %d: %s", code, errOut)
	}
	get := func(host string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/cart", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	l.eventually("the proxy serves the Ingress (503: no Service)", func() bool { return get("shop.example.com") == 503 })
	if code := get("other.example.com"); code != 404 {
		t.Errorf("no rule: %d, want 404", code)
	}
	// The proxy logs a request once it has answered it: the client may
	// read the answer first.
	var out string
	l.eventually("the 404 in the access log", func() bool {
		var code int
		out, _, code = l.psc("", nil, "ingress.log", "-n", "2")
		return code == 0 && strings.Contains(out, " 404")
	})
	t.Logf("psc ingress.log -n 2:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "esx-01") || !strings.Contains(lines[0], "GET shop.example.com/cart 503") ||
		!strings.Contains(lines[0], "ingress/shop") || !strings.Contains(lines[1], "GET other.example.com/cart 404") {
		t.Errorf("ingress.log -n 2:\n%s\nwant the 503 of shop.example.com then the 404, both on esx-01", out)
	}
	out, _, code := l.psc("", nil, "ingress.log", "-json", "esx-01")
	var entries []map[string]any
	if err := json.Unmarshal([]byte(out), &entries); code != 0 || err != nil || len(entries) < 2 || entries[0]["hostSystem"] != "esx-01" || entries[0]["host"] != "shop.example.com" {
		t.Errorf("ingress.log -json esx-01: exit %d %v: %s", code, err, out)
	}
}
