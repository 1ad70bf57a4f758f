package svcproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/lb"
)

// What the rules do with real packets beyond TestServicesOnAHost: ClientIP
// session affinity and its timeout, UDP Services, the cluster's Ingress
// address shared by a Service. Same testbed: one host
// in its own netns, three VMs on its bridge, an outside client.

func (b *testbed) nsPath(vm string) string { return filepath.Join(network.NetNSDir, b.vmNS[vm]) }

// udpEcho answers every datagram to :port in vm's netns with "VM CLIENT",
// the client address it saw, until the test ends.
func (b *testbed) udpEcho(vm string, port int) {
	b.t.Helper()
	var pc net.PacketConn
	err := network.InNetNS(b.nsPath(vm), func() (err error) {
		pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(vm+" "+from.(*net.UDPAddr).IP.String()), from)
		}
	}()
}

// udpAsk sends one datagram to addr from netns nsPath on a fresh socket
// (a new flow) and returns the answer; the socket is connected, so only
// an answer from addr itself (the Service's address, NAT undone) counts.
func udpAsk(nsPath, addr string) (string, error) {
	var answer string
	err := network.InNetNS(nsPath, func() error {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		answer = string(buf[:n])
		return nil
	})
	return answer, err
}

// moreState is b.state() plus the Services these tests use.
func (b *testbed) moreState() *lb.State {
	st := b.state()
	eps := []api.EndpointAddress{b.ep("vm1"), b.ep("vm2"), b.ep("vm3")}
	sticky := func(name, ip string, timeout int) {
		s := service(name, ip, api.ServiceClusterIP, eps, api.ServicePort{Port: 80, TargetPort: api.IntOrString{IntVal: 8080}})
		s.Spec.SessionAffinity = "ClientIP"
		s.Spec.SessionAffinityConfig = &api.SessionAffinityConfig{ClientIP: &api.ClientIPConfig{TimeoutSeconds: &timeout}}
		st.Services[s.Path] = s
	}
	sticky("sticky", "10.96.0.30", 600)
	sticky("brief", "10.96.0.31", 1)
	udp := lb.Service{Path: "/dc1/service/udp", Name: "udp", Spec: api.ServiceSpec{Type: api.ServiceNodePort, ClusterIP: "10.96.0.53",
		Ports: []api.ServicePort{{Port: 53, Protocol: "UDP", TargetPort: api.IntOrString{IntVal: 5353}, NodePort: 30053}}}}
	udp.Status.Subsets = []api.EndpointSubset{{Addresses: []api.EndpointAddress{b.ep("vm1"), b.ep("vm2")}, Ports: []api.EndpointPort{{Port: 5353, Protocol: "UDP"}}}}
	st.Services[udp.Path] = udp
	none := lb.Service{Path: "/dc1/service/udp-none", Name: "udp-none", Spec: api.ServiceSpec{Type: api.ServiceNodePort, ClusterIP: "10.96.0.54",
		Ports: []api.ServicePort{{Port: 53, Protocol: "UDP", NodePort: 30054}}}}
	st.Services[none.Path] = none
	// The cluster's Ingress address, and a Service sharing it on 8080.
	st.Ingress = api.LoadBalancerIngress{IP: ingressIP, Host: self}
	share := service("share", "10.96.0.55", api.ServiceLoadBalancer, []api.EndpointAddress{b.ep("vm1"), b.ep("vm2")},
		api.ServicePort{Port: 8080, TargetPort: api.IntOrString{IntVal: 8080}, NodePort: 30055})
	share.Spec.LoadBalancerIP = ingressIP
	share.Status.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: ingressIP, Host: self, Shared: true}}
	st.Services[share.Path] = share
	return st
}

const ingressIP = "10.99.0.201"

// ingressProxy stands in for the host's Ingress proxy: an HTTP server on
// every address of the host's port 80, answering "proxy CLIENT".
func (b *testbed) ingressProxy() {
	b.t.Helper()
	var l net.Listener
	if err := network.InNetNS(b.hostNS, func() (err error) {
		l, err = net.Listen("tcp4", ":80")
		return err
	}); err != nil {
		b.t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		_, _ = io.WriteString(w, "proxy "+host)
	})}
	go func() { _ = srv.Serve(l) }()
	b.t.Cleanup(func() { _ = srv.Close() })
	run(b.t, "ip", "-n", b.client, "route", "add", ingressIP+"/32", "via", hostIP)
}

func TestAffinityUDPAndTheIngressAddress(t *testing.T) {
	for _, backend := range []string{"iptables", "nftables"} {
		t.Run(backend, func(t *testing.T) { affinityUDPAndTheIngressAddress(t, backend) })
	}
}

func affinityUDPAndTheIngressAddress(t *testing.T, backend string) {
	b := newTestbedOn(t, backend, "vm1", "vm2", "vm3")
	b.udpEcho("vm1", 5353)
	b.udpEcho("vm2", 5353)
	b.ingressProxy()
	b.apply(b.proxy, b.moreState())
	vm3 := b.vmNS["vm3"]

	t.Run("ClientIP affinity: one client, one endpoint", func(t *testing.T) {
		if vms, _ := b.who(vm3, "http://10.96.0.30", 30); len(vms) != 1 {
			t.Errorf("30 connections of one client reached %v, want a single endpoint", vms)
		}
		// Another client (the host itself, masqueraded to its own
		// address) has its own affinity, but also only one endpoint.
		if vms, _ := b.who(b.name+"-h", "http://10.96.0.30", 10); len(vms) != 1 {
			t.Errorf("10 connections of the host reached %v, want a single endpoint", vms)
		}
	})
	t.Run("ClientIP affinity ends after its timeout", func(t *testing.T) {
		first, _ := b.who(vm3, "http://10.96.0.31", 5)
		if len(first) != 1 {
			t.Fatalf("within the 1 s timeout: reached %v, want one endpoint", first)
		}
		// After the timeout a new connection is spread again: each try
		// picks one of 3 endpoints, so 10 tries all landing on the same
		// one would happen once in 20,000 runs.
		for try := range 10 {
			time.Sleep(1200 * time.Millisecond)
			if vms, _ := b.who(vm3, "http://10.96.0.31", 1); vms[0] != first[0] {
				t.Logf("after the timeout, try %d reached %s (was %s)", try+1, vms[0], first[0])
				return
			}
		}
		t.Errorf("10 connections, each 1.2 s after the last, all reached %s: the 1 s affinity never ended", first[0])
	})

	t.Run("the Ingress address: HTTP to the host's proxy, a sharing Service's port to its VMs", func(t *testing.T) {
		out, err := get(b.client, "http://"+ingressIP+"/")
		if err != nil || out != "proxy "+clientIP {
			t.Errorf("GET the Ingress address: %v %q, want the host's proxy seeing the client %s", err, out, clientIP)
		}
		if vms, _ := b.who(b.client, "http://"+ingressIP+":8080", 20); !slices.Equal(vms, []string{"vm1", "vm2"}) {
			t.Errorf("port 8080 of the Ingress address reached %v, want the sharing Service's vm1 and vm2", vms)
		}
	})
	t.Run("UDP through a cluster IP: answered, spread", func(t *testing.T) {
		seen := map[string]bool{}
		for range 20 {
			got, err := udpAsk(b.nsPath("vm3"), "10.96.0.53:53")
			if err != nil {
				t.Fatalf("UDP to the cluster IP: %v", err)
			}
			vm, _, _ := strings.Cut(got, " ")
			seen[vm] = true
		}
		if !seen["vm1"] || !seen["vm2"] || len(seen) != 2 {
			t.Errorf("20 UDP flows answered by %v, want vm1 and vm2", seen)
		}
	})
	t.Run("UDP through a node port from outside, SNAT", func(t *testing.T) {
		got, err := udpAsk(filepath.Join(network.NetNSDir, b.client), hostIP+":30053")
		if err != nil {
			t.Fatalf("UDP to the node port: %v", err)
		}
		vm, client, _ := strings.Cut(got, " ")
		if (vm != "vm1" && vm != "vm2") || client == clientIP {
			t.Errorf("answer %q: want vm1 or vm2, seeing the host rather than the client %s", got, clientIP)
		}
	})
	// From a VM (its packet routed back out of the host, where the
	// bridge would have drawn an ICMP redirect first) and from outside.
	t.Run("UDP Service without endpoints: refused", func(t *testing.T) {
		for _, c := range []struct{ from, ns, addr string }{
			{"a VM, to the cluster IP", b.nsPath("vm3"), "10.96.0.54:53"},
			{"outside, to the node port", filepath.Join(network.NetNSDir, b.client), hostIP + ":30054"},
		} {
			start := time.Now()
			_, err := udpAsk(c.ns, c.addr)
			if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > time.Second {
				t.Errorf("UDP from %s without endpoints: %v after %v, want connection refused (ICMP port unreachable) at once", c.from, err, time.Since(start))
			}
		}
	})
}

// TestClusterIPOverhead measures what a cluster IP costs a connection
// against the endpoint's own address: a VM opens a new TCP connection and
// sends one small HTTP request (GET, 2-byte answer, connection closed by
// the server), alternately to the endpoint VM's IP and to a cluster IP
// whose only endpoint it is, N times each, on the same host's bridge (so
// the cluster IP path is DNAT plus the hairpin masquerade through the
// host, the direct one plain bridging). Opt-in (PSR_BENCH=1); the figures
// are in docs/benchmarks.md. Then the same with PSR_BENCH_SERVICES (default
// 1,000) other Services in the rules, the measured one's rule last:
//
//	PSR_BENCH=1 go test ./host/svcproxy -run TestClusterIPOverhead -v
func TestClusterIPOverhead(t *testing.T) {
	if os.Getenv("PSR_BENCH") != "1" {
		t.Skip("benchmark: set PSR_BENCH=1 (root)")
	}
	n := 2000
	b := newTestbed(t, "vm1", "vm3")
	// A Go HTTP server in vm1, so the figures are the network's and not
	// busybox httpd's fork per connection.
	var l net.Listener
	if err := network.InNetNS(b.nsPath("vm1"), func() (err error) {
		l, err = net.Listen("tcp4", ":9090")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })}
	srv.SetKeepAlivesEnabled(false)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	// The Service's path sorts after bigState's, so with the others
	// present its cluster IP rule is the last of PS-SERVICES: what a
	// connection to the last of 10,000 Services pays in iptables.
	bench := service("zz-bench", "10.96.200.40", api.ServiceClusterIP, []api.EndpointAddress{b.ep("vm1")}, api.ServicePort{Port: 80, TargetPort: api.IntOrString{IntVal: 9090}})
	bench.Status.Subsets[0].Ports[0].Port = 9090
	st := b.state()
	st.Services = map[string]lb.Service{bench.Path: bench}
	direct, viaIP := b.vmIP["vm1"]+":9090", "10.96.200.40:80"
	measure := func() [2][]time.Duration {
		var times [2][]time.Duration
		err := network.InNetNS(b.nsPath("vm3"), func() error {
			req := []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
			once := func(addr string) (time.Duration, error) {
				start := time.Now()
				c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
				if err != nil {
					return 0, err
				}
				defer c.Close()
				_ = c.SetDeadline(start.Add(2 * time.Second))
				if _, err := c.Write(req); err != nil {
					return 0, err
				}
				body, err := io.ReadAll(c)
				if err != nil || !strings.HasSuffix(string(body), "ok") {
					return 0, fmt.Errorf("answer %q: %v", body, err)
				}
				return time.Since(start), nil
			}
			for i := range n + 100 {
				order := []int{0, 1}
				if i%2 == 1 {
					order = []int{1, 0} // alternate which goes first
				}
				for _, k := range order {
					d, err := once([]string{direct, viaIP}[k])
					if err != nil {
						return err
					}
					if i >= 100 { // the first 100 warm up caches and conntrack
						times[k] = append(times[k], d)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return times
	}
	pct := func(ds []time.Duration, p float64) time.Duration {
		s := slices.Clone(ds)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[int(p*float64(len(s)-1))]
	}
	report := func(what string, times [2][]time.Duration) {
		t.Logf("%s: %d connections each (new TCP connection + GET + answer + close), from a VM to an endpoint on the same bridge:", what, n)
		t.Logf("  %-30s %10s %10s %10s", "target", "p50", "p90", "p99")
		for k, name := range []string{"endpoint IP " + direct, "cluster IP " + viaIP} {
			t.Logf("  %-30s %10v %10v %10v", name, pct(times[k], .5), pct(times[k], .9), pct(times[k], .99))
		}
		t.Logf("  overhead p50 %v, p99 %v", pct(times[1], .5)-pct(times[0], .5), pct(times[1], .99)-pct(times[0], .99))
	}
	b.apply(b.proxy, st)
	if os.Getenv("PSR_BENCH_CONNS") != "" {
		n, _ = strconv.Atoi(os.Getenv("PSR_BENCH_CONNS"))
	}
	report("1 Service", measure())
	// 1,000 by default: nf_tables-backed iptables cannot load 10,000
	// Services in useful time (docs/benchmarks.md, "Service rules").
	others := 1000
	if v, err := strconv.Atoi(os.Getenv("PSR_BENCH_SERVICES")); err == nil && v > 0 {
		others = v
	}
	big := bigState(others, 5)
	big.Services[bench.Path] = bench
	b.apply(b.proxy, big)
	report(fmt.Sprintf("%d other Services (iptables)", others), measure())
}
