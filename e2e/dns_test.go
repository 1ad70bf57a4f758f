package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/internal/testenv"
)

// dnsManifest: a web VM on h1 behind a ClusterIP Service and a headless
// one, and a client VM on h2, all in namespace datagrand.
const dnsManifest = `apiVersion: v1
kind: Namespace
metadata: {name: datagrand}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: datagrand, labels: {run: my-nginx}}
spec:
  nodeName: h1
  containers:
  - {name: httpd, image: busybox, command: [httpd, -f, -p, "80"], ports: [{name: http, containerPort: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: my-nginx, namespace: datagrand}
spec:
  selector: {run: my-nginx}
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 8080, targetPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: datagrand}
spec:
  selector: {run: my-nginx}
  clusterIP: None
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: datagrand}
spec:
  nodeName: h2
  containers:
  - {name: sh, image: busybox, command: [sleep, "3600"]}
`

// TestDNS: a VM resolves Services by their short, namespaced and full
// names through its host's resolver; a headless Service gives its member's
// address, reached by name from another host; a removed Service is gone
// from DNS by the next lookup.
func TestDNS(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping end-to-end test in -short mode")
	}
	start := time.Now()
	l := newLab(t, 2)
	for _, h := range l.hosts {
		l.startAgent(h)
	}
	for _, h := range l.hosts {
		l.waitHost(h, start)
	}
	l.importBusybox(t)
	file := filepath.Join(l.dir, "dns.yaml")
	if err := os.WriteFile(file, []byte(dnsManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	l.psc("apply", "-f", file)
	webObj, web := l.waitRunning("datagrand/web")
	clientObj, _ := l.waitRunning("datagrand/client")

	lookup := func(name string) string {
		out, errOut, _ := l.pscCode("guest.run", "datagrand/client", "--", "timeout", "5", "nslookup", name)
		return out + errOut
	}
	// The endpoints controller and the host's watch need a moment for
	// the headless Service's member.
	testenv.WaitFor(t, "db.datagrand to give web's address", 30*time.Second, func() bool {
		return strings.Contains(lookup("db.datagrand"), "Address: "+web.IP)
	})
	for _, name := range []string{"my-nginx", "my-nginx.datagrand", "my-nginx.datagrand.svc.cluster.local"} {
		if out := lookup(name); !strings.Contains(out, "Address: 10.96.0.10") {
			t.Errorf("nslookup %s in a VM:\n%s", name, out)
		}
	}
	if out := lookup("web.db.datagrand.svc.cluster.local"); !strings.Contains(out, "Address: "+web.IP) {
		t.Errorf("the headless member's own name:\n%s", out)
	}
	// Through the C library (search path, ndots), across hosts, to the member.
	page, errOut, code := l.pscCode("guest.run", "datagrand/client", "--", "timeout", "5", "wget", "-qO-", "http://db/")
	if code != 0 || !strings.Contains(page, "podsphere busybox") {
		t.Errorf("wget http://db/ from h2 to web on h1: exit %d\n%s%s", code, page, errOut)
	}
	resolv := l.psc("guest.run", "datagrand/client", "--", "cat", "/etc/resolv.conf")
	if !strings.Contains(resolv, "search datagrand.svc.cluster.local svc.cluster.local cluster.local\n") {
		t.Errorf("client's resolv.conf:\n%s", resolv)
	}
	hosts := l.psc("guest.run", "datagrand/web", "--", "cat", "/etc/hosts")
	if !strings.Contains(hosts, web.IP+"\tweb\n") {
		t.Errorf("web's /etc/hosts:\n%s", hosts)
	}

	l.psc("svc.destroy", "-namespace", "datagrand", "my-nginx")
	testenv.WaitFor(t, "my-nginx to leave DNS", 5*time.Second, func() bool {
		return strings.Contains(lookup("my-nginx.datagrand.svc.cluster.local"), "NXDOMAIN")
	})

	// The lab's cleanup wants no VM left behind.
	l.psc("vm.destroy", "datagrand/web", "datagrand/client")
	testenv.WaitFor(t, "no container of web and client left", 60*time.Second, func() bool {
		return len(l.host("h1").containersOf(webObj.UID)) == 0 && len(l.host("h2").containersOf(clientObj.UID)) == 0
	})
}
