package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/internal/loadgen"
)

// svcManifest: the tutorial's Deployment of 3 httpd VMs (one per host, each
// serving its own name and, at /cgi-bin/addr, the client address it sees)
// behind a ClusterIP Service, a NodePort Service, a Local LoadBalancer
// Service and a Cluster LoadBalancer Service; a second Deployment behind
// Service other; an Ingress with a host rule for each; a client VM.
const svcManifest = `apiVersion: v1
kind: Namespace
metadata: {name: datagrand}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: my-nginx, namespace: datagrand}
spec:
  replicas: 3
  selector: {matchLabels: {run: my-nginx}}
  template:
    metadata: {labels: {run: my-nginx}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {run: my-nginx}}}
      containers:
      - name: httpd
        image: busybox
        command: [sh, -c, ` + webScript + `]
        ports: [{name: http, containerPort: 80}]
        resources: {requests: {cpu: 100m, memory: 32Mi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: other, namespace: datagrand}
spec:
  replicas: 1
  selector: {matchLabels: {run: other}}
  template:
    metadata: {labels: {run: other}}
    spec:
      containers:
      - name: httpd
        image: busybox
        command: [sh, -c, ` + webScript + `]
        resources: {requests: {cpu: 100m, memory: 32Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: my-nginx, namespace: datagrand}
spec:
  selector: {run: my-nginx}
  ports: [{name: http, port: 8080, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: my-nginx-np, namespace: datagrand}
spec:
  type: NodePort
  selector: {run: my-nginx}
  ports: [{port: 8080, targetPort: 80, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: my-nginx-local, namespace: datagrand}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {run: my-nginx}
  ports: [{port: 80, nodePort: 30081}]
---
apiVersion: v1
kind: Service
metadata: {name: my-nginx-lb, namespace: datagrand}
spec:
  type: LoadBalancer
  selector: {run: my-nginx}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: datagrand}
spec:
  selector: {run: other}
  ports: [{port: 80}]
---
` + ingressV1 + `---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: datagrand}
spec:
  nodeName: esx-01
  containers:
  - {name: sh, image: busybox, command: [sleep, "3600"]}
`

// ingressV1 routes sphinx-v1.esxcloud.net to my-nginx and every other
// name under esxcloud.net to other.
const ingressV1 = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: sphinx, namespace: datagrand}
spec:
  rules:
  - host: sphinx-v1.esxcloud.net
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: my-nginx, port: {number: 8080}}}}
  - host: "*.esxcloud.net"
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: other, port: {number: 80}}}}
`

// webScript makes /www with the VM's name and an addr CGI, then serves it.
const webScript = `'mkdir -p /www/cgi-bin && hostname > /www/index.html && printf "#!/bin/sh\necho Content-Type: text/plain\necho\necho \$REMOTE_ADDR\n" > /www/cgi-bin/addr && chmod +x /www/cgi-bin/addr && exec httpd -f -p 80 -h /www'`

// TestServices runs issue 8's promise on a 3-host lab: a Deployment
// behind a ClusterIP Service is reached by name from a VM, spread over
// its members; a NodePort answers on every host's address from outside the
// hosts; externalTrafficPolicy Local shows the client's own address; a
// LoadBalancer address answers (TestLoadBalancerFailover crashes its
// host); an Ingress routes by host name; and lab down leaves nothing behind.
func TestServices(t *testing.T) {
	requireLab(t)
	podsphere, psc := buildBinaries(t)
	before := snapshot(t)
	l := newLabRun(t, podsphere, psc)
	l.up(3)
	s, err := LoadState(l.dir)
	if err != nil || s == nil {
		t.Fatalf("state: %v", err)
	}
	c, err := client.New(s.LocalURL, readToken(l.dir))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "lb.yaml")
	if err := os.WriteFile(file, []byte(svcManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	l.must(psc, "apply", "-f", file)
	l.waitReady(c, 5)
	l.waitEndpoints(c, "/dc1/service/datagrand/my-nginx", 3)
	l.waitEndpoints(c, "/dc1/service/datagrand/other", 1)

	// 1. ClusterIP by name from a VM on esx-01, spread over the members.
	seen := map[string]int{}
	for i := 0; i < 24; i++ {
		out := l.must(psc, "guest.run", "datagrand/client", "--", "timeout", "5", "wget", "-qO-", "http://my-nginx.datagrand:8080/")
		seen[strings.TrimSpace(out)]++
	}
	if len(seen) < 2 {
		t.Errorf("24 requests to my-nginx.datagrand:8080 from a VM reached %v, want at least 2 members", seen)
	}
	t.Logf("ClusterIP from datagrand/client: %v", seen)

	// 2. NodePort on every host's address, from outside the hosts (vcenter's namespace).
	outside := filepath.Join(network.NetNSDir, l.prefix+"-vc")
	for i := 0; i < 3; i++ {
		addr := fmt.Sprintf("10.99.0.%d:30080", FirstHostOctet+i)
		if body, err := l.get(outside, "http://"+addr+"/", ""); err != nil || !strings.HasPrefix(body, "my-nginx-") {
			t.Errorf("NodePort %s from outside: %q, %v", addr, body, err)
		}
	}

	// 3. externalTrafficPolicy Local: the member sees the client's own address.
	// (busybox httpd writes the address IPv6-mapped: [::ffff:10.99.0.2].)
	body, err := l.get(outside, fmt.Sprintf("http://10.99.0.%d:30081/cgi-bin/addr", FirstHostOctet), "")
	if seen := strings.TrimPrefix(strings.Trim(strings.TrimSpace(body), "[]"), "::ffff:"); err != nil || seen != VCenterAddr {
		t.Errorf("Local NodePort: the member saw %q (%v), want the client's %s", body, err, VCenterAddr)
	}

	// 4. An Ingress routes by host name on the cluster's Ingress address.
	ing := l.clusterIngress(c)
	if ing.IP == "" {
		t.Fatalf("cluster c1 has no Ingress address")
	}
	waitBody := func(what, url, host string, ok func(string) bool) {
		t.Helper()
		var body string
		var err error
		if werr := waitUntil(context.Background(), 20*time.Second, what, func() (bool, error) {
			body, err = l.get(outside, url, host)
			return err == nil && ok(body), nil
		}); werr != nil {
			t.Errorf("%v: last %q, %v", werr, body, err)
		}
	}
	waitBody("sphinx-v1 through the Ingress", "http://"+ing.IP+"/", "sphinx-v1.esxcloud.net", func(b string) bool { return strings.HasPrefix(b, "my-nginx-") })
	waitBody("a wildcard host through the Ingress", "http://"+ing.IP+"/", "docs.esxcloud.net", func(b string) bool { return strings.HasPrefix(b, "other-") })

	// Reconfiguring the Ingress under load (10 changes, a path added and
	// removed each time) loses no request.
	stream, err := loadgen.Start(context.Background(), loadgen.Config{URL: "http://" + ing.IP + "/", Host: "sphinx-v1.esxcloud.net",
		Interval: 20 * time.Millisecond, Timeout: 2 * time.Second,
		Dial: func(ctx context.Context, nw, addr string) (conn net.Conn, err error) {
			err = network.InNetNS(outside, func() error { conn, err = (&net.Dialer{}).DialContext(ctx, nw, addr); return err })
			return conn, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	extra := filepath.Join(t.TempDir(), "ingress.yaml")
	for i := 0; i < 10; i++ {
		doc := ingressV1
		if i%2 == 0 {
			doc = strings.Replace(ingressV1, "      paths:\n", "      paths:\n      - {path: /v2, pathType: Prefix, backend: {service: {name: other, port: {number: 80}}}}\n", 1)
		}
		if err := os.WriteFile(extra, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		l.must(psc, "apply", "-f", extra)
		time.Sleep(100 * time.Millisecond) // the 10 changes a second of the benchmark
	}
	sum := stream.Stop()
	if sum.Sent < 20 || sum.Failed > 0 {
		t.Errorf("Ingress reconfigured 10 times under load: %d sent, %d failed (last error %q), want none failed", sum.Sent, sum.Failed, sum.LastError)
	}
	t.Logf("Ingress reconfigured 10 times under load: %d requests, %d failed, longest gap %s", sum.Sent, sum.Failed, sum.LongestGap)

	// 5. The LoadBalancer address answers through the host answering for it.
	lb := l.serviceLB(c, "/dc1/service/datagrand/my-nginx-lb")
	if lb.IP == "" || lb.Host == "" {
		t.Fatalf("my-nginx-lb has no address or no answering host: %+v", lb)
	}
	waitBody("the LoadBalancer address", "http://"+lb.IP+"/", "", func(b string) bool { return strings.HasPrefix(b, "my-nginx-") })

	l.must(podsphere, "lab", "down", "--dir", l.dir)
	l.checkGone(before)
}

// get fetches url from inside the network namespace at netns (Host header
// host when set). The connection is dialled on the thread switched into the
// namespace (a Transport would dial on another goroutine, outside it); a
// socket stays in its namespace whichever thread then uses it.
func (l *labRun) get(netns, rawURL, host string) (string, error) {
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return "", err
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	var conn net.Conn
	if err := network.InNetNS(netns, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	}); err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return "", err
	}
	if host != "" {
		req.Host = host
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s: %s", rawURL, resp.Status, b)
	}
	return string(b), err
}

// waitEndpoints waits until the Service has n ready endpoints.
func (l *labRun) waitEndpoints(c *client.Client, svc string, n int) {
	l.t.Helper()
	var st api.ServiceStatus
	if err := waitUntil(context.Background(), 30*time.Second, svc+" endpoints", func() (bool, error) {
		o, err := c.Get(context.Background(), svc)
		if err != nil {
			return false, nil
		}
		st = api.ServiceStatus{}
		_ = o.DecodeStatus(&st)
		return st.Ready == n, nil
	}); err != nil {
		b, _ := json.Marshal(st)
		l.t.Fatalf("%v: %s", err, b)
	}
}

// serviceLB is the Service's first outside address and the host answering for it.
func (l *labRun) serviceLB(c *client.Client, svc string) api.LoadBalancerIngress {
	l.t.Helper()
	o, err := c.Get(context.Background(), svc)
	if err != nil {
		l.t.Fatal(err)
	}
	var st api.ServiceStatus
	_ = o.DecodeStatus(&st)
	if len(st.LoadBalancer.Ingress) == 0 {
		return api.LoadBalancerIngress{}
	}
	return st.LoadBalancer.Ingress[0]
}

// clusterIngress is the lab cluster's Ingress address.
func (l *labRun) clusterIngress(c *client.Client) api.LoadBalancerIngress {
	l.t.Helper()
	o, err := c.Get(context.Background(), clusterPath())
	if err != nil {
		l.t.Fatal(err)
	}
	var st api.ClusterStatus
	_ = o.DecodeStatus(&st)
	return st.Ingress
}
