package cli

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

// A tutorial's Deployment and a Service in front of it, applied with psc:
// svc.ls shows the Service with 3 of 3 endpoints ready once the VMs are,
// svc.info lists each member with its VM, address and host, and delete -f
// removes the Service.
func TestApplyServiceAndSvcVerbs(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01", "esx-02", "esx-03")
	k8s := func(name string) string { return filepath.Join("..", "api", "manifest", "testdata", "k8s", name) }
	if _, errOut, code := l.psc("apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n", nil, "apply", "-f", "-"); code != 0 {
		t.Fatalf("namespace: exit %d: %s", code, errOut)
	}
	if out, errOut, code := l.psc("", nil, "apply", "-f", k8s("deployment.yaml")); code != 0 {
		t.Fatalf("deployment: exit %d: %s%s", code, out, errOut)
	}
	const svc = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: team-a}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 8080, targetPort: http, nodePort: 30080}
`
	out, errOut, code := l.psc(svc, nil, "apply", "-f", "-")
	if code != 0 {
		t.Fatalf("apply Service: exit %d: %s%s", code, out, errOut)
	}
	if !strings.Contains(out, "web") {
		t.Errorf("apply says %q, want the Service named", out)
	}
	if out, _, code := l.psc(svc, nil, "apply", "-f", "-"); code != 0 || !strings.Contains(out, "unchanged") {
		t.Errorf("applying the same Service again: exit %d: %q, want unchanged", code, out)
	}
	l.eventually("3 of 3 endpoints ready", func() bool {
		var st api.ServiceStatus
		_ = l.get("/dc1/service/team-a/web").DecodeStatus(&st)
		return st.Ready == 3 && st.Total == 3
	})
	out, errOut, code = l.psc("", nil, "svc.ls", "-namespace", "team-a")
	if code != 0 {
		t.Fatalf("svc.ls: exit %d: %s", code, errOut)
	}
	t.Logf("psc svc.ls -namespace team-a:\n%s", out)
	row := regexp.MustCompile(`(?m)^web\s+NodePort\s+10\.96\.0\.\d+\s+<none>\s+8080:30080/TCP\s+3/3\s+-\s+\S+\s*$`)
	header := regexp.MustCompile(`^Name\s+Type\s+Cluster-IP\s+External-IP\s+Port\(s\)\s+Endpoints\s+Host\s+Age\n`)
	if !header.MatchString(out) || !row.MatchString(out) {
		t.Errorf("svc.ls:\n%s\nwant a header and the row web NodePort 10.96.0.x <none> 8080:30080/TCP 3/3 - AGE", out)
	}
	if out, _, _ := l.psc("", nil, "svc.ls"); strings.Contains(out, "web") {
		t.Errorf("svc.ls of the default namespace shows team-a's Service:\n%s", out)
	}
	out, _, code = l.psc("", nil, "svc.ls", "-namespace", "team-a", "-json")
	var objs []*api.Object
	if err := json.Unmarshal([]byte(out), &objs); code != 0 || err != nil || len(objs) != 1 || objs[0].Path != "/dc1/service/team-a/web" {
		t.Errorf("svc.ls -json: exit %d, %v: %s", code, err, out)
	}
	out, errOut, code = l.psc("", nil, "svc.info", "-namespace", "team-a", "web")
	if code != 0 {
		t.Fatalf("svc.info: exit %d: %s", code, errOut)
	}
	t.Logf("psc svc.info -namespace team-a web:\n%s", out)
	member := regexp.MustCompile(`team-a/web-\S+ \d+\.\d+\.\d+\.\d+ on esx-0[123], ready \(http 80/TCP\)`)
	if n := len(member.FindAllString(out, -1)); n != 3 || !strings.Contains(out, "http 8080/TCP -> http (node port 30080)") {
		t.Errorf("svc.info shows %d ready members, want 3 with the named port resolved to nginx's 80:\n%s", n, out)
	}
	if _, errOut, code := l.psc(svc, nil, "delete", "-f", "-"); code != 0 {
		t.Fatalf("delete -f: exit %d: %s", code, errOut)
	}
	if l.exists("/dc1/service/team-a/web") {
		t.Error("the Service is still there after delete -f")
	}
}

// A LoadBalancer Service in a cluster given load balancer addresses with
// cluster.change: svc.ls shows its address and the host answering for it,
// svc.info the same, cluster.info the service network and the Ingress
// address.
func TestSvcLoadBalancerColumns(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01", "esx-02")
	l.fails(api.ExitUsage, "spec.loadBalancerAddresses[0]", "cluster.change", "-lb-addresses", "10.99.0.239-10.99.0.200", "c1")
	l.ok("cluster.change", "-lb-addresses", "10.99.0.200-10.99.0.239", "c1")
	const svc = `apiVersion: v1
kind: Service
metadata: {name: shop}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  ports:
  - {port: 80, nodePort: 30080}
`
	if out, errOut, code := l.psc(svc, nil, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: exit %d: %s%s", code, out, errOut)
	}
	row := regexp.MustCompile(`(?m)^shop\s+LoadBalancer\s+10\.96\.0\.\d+\s+10\.99\.0\.201\s+80:30080/TCP\s+-\s+esx-0[12]\s+\S+\s*$`)
	var out string
	l.eventually("svc.ls shows the address and its host", func() bool {
		out = l.ok("svc.ls")
		return row.MatchString(out)
	})
	t.Logf("psc svc.ls:\n%s", out)
	info := squash(l.ok("svc.info", "shop"))
	for _, want := range []string{" External IP: 10.99.0.201\n", " Cluster: c1\n", " Health check: node port 3"} {
		if !strings.Contains(info, want) {
			t.Errorf("svc.info lacks %q:\n%s", want, info)
		}
	}
	ci := squash(l.ok("cluster.info", "c1"))
	for _, want := range []string{" Service CIDR: 10.96.0.0/16\n", " Node ports: 30000-32767\n", " LB addresses: 10.99.0.200-10.99.0.239\n",
		" Ingress address: 10.99.0.200 answered by esx-0", " Cluster domain: cluster.local\n"} {
		if !strings.Contains(ci, want) {
			t.Errorf("cluster.info lacks %q:\n%s", want, ci)
		}
	}
	// The same address asked for by another Service is refused, naming the owner.
	taken := "apiVersion: v1\nkind: Service\nmetadata: {name: copy}\nspec: {type: LoadBalancer, loadBalancerIP: 10.99.0.201, ports: [{port: 81}]}\n"
	if _, errOut, code := l.psc(taken, nil, "apply", "-f", "-"); code == 0 || !strings.Contains(errOut, "/dc1/service/shop") {
		t.Errorf("a second Service on 10.99.0.201: exit %d: %s, want refused naming /dc1/service/shop", code, errOut)
	}

	// UDP through the Ingress address: shared, shown so, answered by the
	// Ingress address's host; the Ingress's own port is refused.
	dns := "apiVersion: v1\nkind: Service\nmetadata: {name: dns}\nspec: {type: LoadBalancer, loadBalancerIP: 10.99.0.200, ports: [{port: 53, protocol: UDP}]}\n"
	if out, errOut, code := l.psc(dns, nil, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply the sharing Service: exit %d: %s%s", code, out, errOut)
	}
	ingHost := regexp.MustCompile(`Ingress address: 10\.99\.0\.200 answered by (esx-0\d)`).FindStringSubmatch(ci)
	if ingHost == nil {
		t.Fatalf("cluster.info names no Ingress host:\n%s", ci)
	}
	shared := regexp.MustCompile(`(?m)^dns\s+LoadBalancer\s+10\.96\.0\.\d+\s+10\.99\.0\.200 \(ingress\)\s+53:3\d+/UDP\s+-\s+` + ingHost[1] + `\s`)
	l.eventually("svc.ls shows the shared Ingress address", func() bool {
		out = l.ok("svc.ls")
		return shared.MatchString(out)
	})
	if info := squash(l.ok("svc.info", "dns")); !strings.Contains(info, " Shared: the cluster's Ingress address") {
		t.Errorf("svc.info of the sharing Service:\n%s", info)
	}
	web := "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: LoadBalancer, loadBalancerIP: 10.99.0.200, ports: [{port: 80}]}\n"
	if _, errOut, code := l.psc(web, nil, "apply", "-f", "-"); code == 0 || !strings.Contains(errOut, "Ingress proxy's") {
		t.Errorf("80/TCP on the Ingress address: exit %d: %s, want refused as the Ingress proxy's", code, errOut)
	}
}
