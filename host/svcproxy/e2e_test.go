package svcproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/internal/testenv"
	"github.com/podsphere/podsphere/lb"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "skipping: needs root (creates network namespaces, veths and iptables rules in them)")
	}
	for _, bin := range []string{"ip", "iptables", "iptables-restore", "timeout"} {
		if _, err := exec.LookPath(bin); err != nil {
			testenv.Unavailable(t, "skipping: %s not installed (apt-get install iproute2 iptables coreutils)", bin)
		}
	}
	if _, err := os.Stat(filepath.Join(network.DefaultBinDir, "bridge")); err != nil {
		testenv.Unavailable(t, "skipping: CNI plugins not in %s (apt-get install containernetworking-plugins)", network.DefaultBinDir)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		testenv.Unavailable(t, "skipping: /bin/busybox missing (apt-get install busybox-static)")
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// netns pins a namespace the test owns, deleted (with all in it) at cleanup.
func netns(t *testing.T, name string) string {
	t.Helper()
	path, err := network.CreateNamedNetNS(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := network.DeleteNamedNetNS(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return path
}

// testbed is one host (its own netns, the VM bridge of host/network, VMs
// with a web server that answers its name and the client address it
// sees) and an outside client on a veth to the host's address.
type testbed struct {
	t            *testing.T
	name         string
	hostNS       string
	client       string // client netns name
	vmNS, vmIP   map[string]string
	hostIP, cIP  string
	podSubnet    string
	proxy        *Proxy
	st           *lb.State
	self         string
	servicesFile string
	backend      string // iptables or nftables
}

const (
	hostIP   = "10.99.0.11"
	clientIP = "10.99.0.50"
	lbIP     = "10.99.0.200"
	self     = "/dc1/host/c1/esx-01"
)

func newTestbed(t *testing.T, vms ...string) *testbed { return newTestbedOn(t, "iptables", vms...) }

func newTestbedOn(t *testing.T, backend string, vms ...string) *testbed {
	t.Helper()
	requireRoot(t)
	ctx := context.Background()
	name := fmt.Sprintf("psr%04x", rand.IntN(0xffff))
	b := &testbed{t: t, name: name, backend: backend, client: name + "-c", vmNS: map[string]string{}, vmIP: map[string]string{}, podSubnet: "10.244.1.0/24"}
	b.hostNS = netns(t, name+"-h")
	netns(t, b.client)
	n, err := network.New(network.Config{Subnet: b.podSubnet, ClusterCIDR: "10.244.0.0/16", StateDir: t.TempDir(), HostNetNS: b.hostNS, NetNSPrefix: name + "-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.RemoveHostRules() })
	web := t.TempDir()
	for _, vm := range vms {
		ns, err := n.CreateNetNS(vm)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Teardown(ctx, vm, ns); _ = n.DeleteNetNS(vm) })
		ip, err := n.Setup(ctx, vm, ns)
		if err != nil {
			t.Fatal(err)
		}
		b.vmNS[vm], b.vmIP[vm] = name+"-"+vm, ip
		dir := filepath.Join(web, vm)
		if err := os.MkdirAll(filepath.Join(dir, "cgi-bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		script := "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"" + vm + " $REMOTE_ADDR\"\n"
		if err := os.WriteFile(filepath.Join(dir, "cgi-bin", "who"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		srv := exec.Command("ip", "netns", "exec", b.vmNS[vm], "busybox", "httpd", "-f", "-p", "8080", "-h", dir)
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	}
	// The client's link, made inside the host's namespace and moved
	// straight into the client's: the root namespace never holds an end.
	h := name + "-h"
	run(t, "ip", "-n", h, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", b.client)
	run(t, "ip", "-n", h, "addr", "add", hostIP+"/24", "dev", "eth1")
	run(t, "ip", "-n", h, "link", "set", "eth1", "up")
	run(t, "ip", "-n", b.client, "addr", "add", clientIP+"/24", "dev", "eth0")
	run(t, "ip", "-n", b.client, "link", "set", "eth0", "up")
	run(t, "ip", "-n", b.client, "link", "set", "lo", "up")
	// The load balancer address is the host's to answer (the announcer's
	// job, another part): the client routes it there.
	run(t, "ip", "-n", b.client, "route", "add", lbIP+"/32", "via", hostIP)
	run(t, "ip", "netns", "exec", h, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	for _, vm := range vms {
		b.waitHTTP(b.vmNS[vm], b.vmIP[vm]+":8080", vm)
	}
	b.proxy = b.newProxy()
	return b
}

func (b *testbed) newBackend() Backend {
	b.t.Helper()
	var be Backend
	var err error
	if b.backend == "nftables" {
		be, err = NewNFTables(NFTablesConfig{NetNS: b.hostNS})
	} else {
		be, err = NewIPTables(IPTablesConfig{NetNS: b.hostNS})
	}
	if err != nil {
		b.t.Fatal(err)
	}
	return be
}

func (b *testbed) newProxy() *Proxy {
	b.t.Helper()
	be := b.newBackend()
	p, err := New(Config{Backend: be, NetNS: b.hostNS, ServiceRouteDev: ServiceDummy, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(p.Close)
	return p
}

// get fetches url from netns ns: the answer, or the error text.
func get(ns, url string) (string, error) {
	out, err := exec.Command("ip", "netns", "exec", ns, "timeout", "3", "busybox", "wget", "-q", "-O", "-", url).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (b *testbed) waitHTTP(ns, addr, want string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := get(ns, "http://"+addr+"/cgi-bin/who")
		if err == nil && strings.HasPrefix(out, want) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s never answered on %s: %v %s", want, addr, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// who asks url from ns n times: the VMs that answered, and the client
// addresses they saw.
func (b *testbed) who(ns, url string, n int) (vms, clients []string) {
	b.t.Helper()
	for range n {
		out, err := get(ns, url+"/cgi-bin/who")
		if err != nil {
			b.t.Fatalf("GET %s from %s: %v: %s", url, ns, err, out)
		}
		vm, client, _ := strings.Cut(out, " ")
		client = strings.TrimPrefix(strings.Trim(client, "[]"), "::ffff:")
		if !slices.Contains(vms, vm) {
			vms = append(vms, vm)
		}
		if !slices.Contains(clients, client) {
			clients = append(clients, client)
		}
	}
	slices.Sort(vms)
	slices.Sort(clients)
	return vms, clients
}

func (b *testbed) ep(vm string) api.EndpointAddress {
	return api.EndpointAddress{IP: b.vmIP[vm], VM: "/dc1/vm/" + vm, Host: self}
}

func service(name, ip string, typ string, eps []api.EndpointAddress, port api.ServicePort) lb.Service {
	s := lb.Service{Path: "/dc1/service/" + name, Name: name, Spec: api.ServiceSpec{Type: typ, ClusterIP: ip, Ports: []api.ServicePort{port}}}
	if len(eps) > 0 {
		s.Status.Subsets = []api.EndpointSubset{{Addresses: eps, Ports: []api.EndpointPort{{Port: 8080, Protocol: "TCP"}}}}
	}
	return s
}

func (b *testbed) state() *lb.State {
	web := service("web", "10.96.0.10", api.ServiceNodePort, []api.EndpointAddress{b.ep("vm1"), b.ep("vm2")},
		api.ServicePort{Port: 80, TargetPort: api.IntOrString{IntVal: 8080}, NodePort: 30081})
	local := service("local", "10.96.0.14", api.ServiceLoadBalancer, []api.EndpointAddress{b.ep("vm1")},
		api.ServicePort{Port: 80, TargetPort: api.IntOrString{IntVal: 8080}, NodePort: 30082})
	local.Spec.ExternalTrafficPolicy, local.Spec.HealthCheckNodePort = "Local", 30090
	local.Status.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: lbIP, Host: self}}
	empty := service("empty", "10.96.0.12", api.ServiceClusterIP, nil, api.ServicePort{Port: 80})
	mirror := service("mirror", "10.96.0.20", api.ServiceClusterIP, []api.EndpointAddress{b.ep("vm3")},
		api.ServicePort{Port: 80, TargetPort: api.IntOrString{IntVal: 8080}})
	return &lb.State{
		Cluster: "/dc1/host/c1", Self: self,
		Spec:     api.ClusterSpec{PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/16"},
		Hosts:    map[string]lb.Host{self: {Path: self, Address: hostIP, State: api.HostConnected, PodSubnet: b.podSubnet}},
		Services: map[string]lb.Service{web.Path: web, local.Path: local, empty.Path: empty, mirror.Path: mirror},
	}
}

func (b *testbed) apply(p *Proxy, st *lb.State) {
	b.t.Helper()
	if err := p.ApplyLB(context.Background(), st); err != nil {
		b.t.Fatal(err)
	}
}

// chains are podsphere's chains in the host's namespace, table/name.
func (b *testbed) chains() []string {
	var out []string
	if b.backend == "nftables" {
		// Every shard table has the fixed chains: the names, once each.
		ours := false
		for _, l := range strings.Split(run(b.t, "ip", "netns", "exec", b.name+"-h", "nft", "list", "ruleset"), "\n") {
			if t, ok := strings.CutPrefix(l, "table "); ok {
				f := strings.Fields(t)
				ours = len(f) > 1 && f[0] == "ip" && isShardTable(f[1])
			}
			if c, ok := strings.CutPrefix(strings.TrimSpace(l), "chain "); ok && ours && !slices.Contains(out, strings.TrimSuffix(c, " {")) {
				out = append(out, strings.TrimSuffix(c, " {"))
			}
		}
		slices.Sort(out)
		return out
	}
	for _, table := range []string{"nat", "filter"} {
		for _, l := range strings.Split(run(b.t, "ip", "netns", "exec", b.name+"-h", "iptables", "-w", "-t", table, "-S"), "\n") {
			if c, ok := strings.CutPrefix(l, "-N "); ok && strings.HasPrefix(c, lb.ChainPrefix) {
				out = append(out, table+"/"+c)
			}
		}
	}
	slices.Sort(out)
	return out
}

// chainsOf are the chains st makes on b's backend.
func (b *testbed) chainsOf(st *lb.State) []string {
	var out []string
	if b.backend == "nftables" {
		rs := lb.NftRules(st)
		for _, c := range lb.NftDiff(nil, rs).Write {
			out = append(out, c.Name)
		}
		slices.Sort(out)
		return out
	}
	rs := lb.Rules(st)
	for _, c := range rs.Chains() {
		out = append(out, c.Table+"/"+c.Name)
	}
	slices.Sort(out)
	return out
}

func TestServicesOnAHost(t *testing.T) {
	for _, backend := range []string{"iptables", "nftables"} {
		t.Run(backend, func(t *testing.T) { servicesOnAHost(t, backend) })
	}
}

func servicesOnAHost(t *testing.T, backend string) {
	b := newTestbedOn(t, backend, "vm1", "vm2", "vm3")
	st := b.state()
	b.apply(b.proxy, st)
	gw := "10.244.1.1"
	vm3 := b.vmNS["vm3"]

	t.Run("cluster IP spreads over its endpoints, hairpin on the bridge", func(t *testing.T) {
		vms, clients := b.who(vm3, "http://10.96.0.10", 30)
		if !slices.Equal(vms, []string{"vm1", "vm2"}) {
			t.Errorf("30 requests reached %v, want both vm1 and vm2", vms)
		}
		if !slices.Equal(clients, []string{gw}) {
			t.Errorf("endpoints saw %v, want the bridge address %s (hairpin masquerade)", clients, gw)
		}
	})
	t.Run("a VM reaches itself through its Service", func(t *testing.T) {
		if vms, _ := b.who(vm3, "http://10.96.0.20", 2); !slices.Equal(vms, []string{"vm3"}) {
			t.Errorf("reached %v, want vm3", vms)
		}
	})
	t.Run("the host itself reaches a cluster IP", func(t *testing.T) {
		if vms, _ := b.who(b.name+"-h", "http://10.96.0.10", 20); len(vms) == 0 {
			t.Error("no answer")
		}
	})
	t.Run("no endpoints: refused at once", func(t *testing.T) {
		start := time.Now()
		out, err := get(vm3, "http://10.96.0.12/")
		if err == nil || !strings.Contains(out, "refused") || time.Since(start) > 2*time.Second {
			t.Errorf("GET of a Service without endpoints: %v %q after %v, want connection refused at once", err, out, time.Since(start))
			if os.Getenv("SVCPROXY_DEBUG") != "" {
				t.Log(run(t, "ip", "netns", "exec", b.name+"-h", "iptables", "-w", "-t", "filter", "-L", "-v", "-n"))
				t.Log(run(t, "ip", "netns", "exec", b.name+"-h", "ip", "route"))
			}
		}
	})
	t.Run("node port, Cluster policy: SNAT to the host", func(t *testing.T) {
		vms, clients := b.who(b.client, "http://"+hostIP+":30081", 20)
		if !slices.Equal(vms, []string{"vm1", "vm2"}) || slices.Contains(clients, clientIP) {
			t.Errorf("node port reached %v seeing clients %v, want vm1 and vm2, never the client's %s", vms, clients, clientIP)
		}
	})
	t.Run("Local policy keeps the client address", func(t *testing.T) {
		for _, url := range []string{"http://" + hostIP + ":30082", "http://" + lbIP} {
			vms, clients := b.who(b.client, url, 5)
			if !slices.Equal(vms, []string{"vm1"}) || !slices.Equal(clients, []string{clientIP}) {
				t.Errorf("%s reached %v seeing %v, want vm1 seeing %s", url, vms, clients, clientIP)
			}
		}
	})
	t.Run("health check node port", func(t *testing.T) {
		out, err := get(b.client, "http://"+hostIP+":30090/healthz")
		var body hcBody
		if err != nil || json.Unmarshal([]byte(out), &body) != nil || body.LocalEndpoints != 1 || body.Service.Name != "local" {
			t.Errorf("health check: %v %q, want 200 with 1 local endpoint", err, out)
		}
	})

	t.Run("a restarted agent adopts the rules without a gap", func(t *testing.T) {
		if backend == "nftables" {
			run(t, "ip", "netns", "exec", b.name+"-h", "nft", "add", "chain", "ip", lb.NftTable, "svc-leftover")
		} else {
			run(t, "ip", "netns", "exec", b.name+"-h", "iptables", "-w", "-t", "nat", "-N", "PS-SVC-LEFTOVER")
		}
		var ok, failed atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := get(b.client, "http://"+hostIP+":30081/cgi-bin/who"); err != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
		b.proxy.Close() // the old agent is gone: its health port closes
		for range 3 {
			p := b.newProxy()
			b.apply(p, st)
			p.Close()
		}
		time.Sleep(200 * time.Millisecond) // a few more requests after the syncs
		close(stop)
		wg.Wait()
		if failed.Load() > 0 || ok.Load() == 0 {
			t.Errorf("during three restarts: %d requests answered, %d failed; want none failed", ok.Load(), failed.Load())
		}
		b.proxy = b.newProxy()
		b.apply(b.proxy, st)
		if got, want := b.chains(), b.chainsOf(st); !slices.Equal(got, want) {
			t.Errorf("chains after adoption:\n%v\nwant\n%v", got, want)
		}
	})

	t.Run("removing a Service removes its chains", func(t *testing.T) {
		st := b.state()
		delete(st.Services, "/dc1/service/web")
		b.apply(b.proxy, st)
		if got, want := b.chains(), b.chainsOf(st); !slices.Equal(got, want) {
			t.Errorf("chains:\n%v\nwant\n%v", got, want)
		}
		if out, err := get(b.client, "http://"+hostIP+":30081/"); err == nil {
			t.Errorf("the removed Service's node port still answers: %s", out)
		}
		if _, err := get(vm3, "http://10.96.0.10/"); err == nil {
			t.Error("the removed Service's cluster IP still answers")
		}
	})

	t.Run("remove leaves nothing", func(t *testing.T) {
		if err := b.newBackend().Remove(context.Background()); err != nil {
			t.Fatal(err)
		}
		if backend == "nftables" {
			if s := run(t, "ip", "netns", "exec", b.name+"-h", "nft", "list", "tables"); strings.Contains(s, lb.NftTable) {
				t.Errorf("the table is still there: %s", s)
			}
			return
		}
		if c := b.chains(); len(c) != 0 {
			t.Errorf("left %v", c)
		}
		for _, table := range []string{"nat", "filter"} {
			if s := run(t, "ip", "netns", "exec", b.name+"-h", "iptables", "-w", "-t", table, "-S"); strings.Contains(s, lb.ChainPrefix) {
				t.Errorf("%s still mentions podsphere's chains:\n%s", table, s)
			}
		}
	})
}
