package svcproxy

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/lb"
)

// A LoadBalancer address across two real hosts: each host in its own
// netns with its VM bridge and one VM, the hosts and an outside client on
// one management segment (a bridge in a netns of its own), pod subnets
// routed between the hosts. The address is routed by the client to its
// holder (answering ARP for it is host/announce's part, tested there).

type twoHosts struct {
	name    string
	client  string // netns name
	hostNS  [2]string
	vmNS    [2]string
	vmIP    [2]string
	proxies [2]*Proxy
}

var twoHostPaths = [2]string{"/dc1/host/c1/esx-01", "/dc1/host/c1/esx-02"}

func newTwoHosts(t *testing.T, backend string) *twoHosts {
	t.Helper()
	requireRoot(t)
	ctx := context.Background()
	name := fmt.Sprintf("psm%04x", rand.IntN(0xffff))
	h := &twoHosts{name: name, client: name + "-c"}
	mgmt := name + "-m"
	netns(t, mgmt)
	netns(t, h.client)
	run(t, "ip", "-n", mgmt, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", mgmt, "link", "set", "br0", "up")
	attach := func(ns, dev, addr, port string) {
		run(t, "ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", port, "netns", mgmt)
		run(t, "ip", "-n", ns, "addr", "add", addr+"/24", "dev", dev)
		run(t, "ip", "-n", ns, "link", "set", dev, "up")
		run(t, "ip", "-n", mgmt, "link", "set", port, "master", "br0")
		run(t, "ip", "-n", mgmt, "link", "set", port, "up")
	}
	attach(h.client, "eth0", clientIP, "c")
	web := t.TempDir()
	for i := range 2 {
		hn := fmt.Sprintf("%s-h%d", name, i+1)
		h.hostNS[i] = netns(t, hn)
		addr := fmt.Sprintf("10.99.0.%d", 11+i)
		attach(hn, "eth1", addr, fmt.Sprintf("h%d", i+1))
		run(t, "ip", "netns", "exec", hn, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		peer := fmt.Sprintf("10.99.0.%d", 12-i)
		run(t, "ip", "-n", hn, "route", "add", fmt.Sprintf("10.244.%d.0/24", 2-i), "via", peer)
		n, err := network.New(network.Config{Subnet: fmt.Sprintf("10.244.%d.0/24", i+1), ClusterCIDR: "10.244.0.0/16", StateDir: t.TempDir(),
			HostNetNS: h.hostNS[i], NetNSPrefix: fmt.Sprintf("%s-%d-", name, i+1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.RemoveHostRules() })
		vm := fmt.Sprintf("vm%d", i+1)
		ns, err := n.CreateNetNS(vm)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Teardown(ctx, vm, ns); _ = n.DeleteNetNS(vm) })
		if h.vmIP[i], err = n.Setup(ctx, vm, ns); err != nil {
			t.Fatal(err)
		}
		h.vmNS[i] = filepath.Base(ns)
		dir := filepath.Join(web, vm)
		if err := os.MkdirAll(filepath.Join(dir, "cgi-bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		script := "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"" + vm + " $REMOTE_ADDR\"\n"
		if err := os.WriteFile(filepath.Join(dir, "cgi-bin", "who"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		srv := exec.Command("ip", "netns", "exec", h.vmNS[i], "busybox", "httpd", "-f", "-p", "8080", "-h", dir)
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
		be := (&testbed{t: t, hostNS: h.hostNS[i], backend: backend}).newBackend()
		p, err := New(Config{Backend: be, NetNS: h.hostNS[i], ServiceRouteDev: ServiceDummy, Logger: log.New(io.Discard, "", 0)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		h.proxies[i] = p
	}
	return h
}

// apply programs both hosts with the same cluster, each as itself.
func (h *twoHosts) apply(t *testing.T, services ...lb.Service) {
	t.Helper()
	for i, p := range h.proxies {
		st := &lb.State{Cluster: "/dc1/host/c1", Self: twoHostPaths[i], Spec: api.ClusterSpec{PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/16"},
			Hosts: map[string]lb.Host{}, Services: map[string]lb.Service{}}
		for j, hp := range twoHostPaths {
			st.Hosts[hp] = lb.Host{Path: hp, Address: fmt.Sprintf("10.99.0.%d", 11+j), State: api.HostConnected, PodSubnet: fmt.Sprintf("10.244.%d.0/24", j+1)}
		}
		for _, s := range services {
			st.Services[s.Path] = s
		}
		if err := p.ApplyLB(context.Background(), st); err != nil {
			t.Fatal(err)
		}
	}
}

// via routes the load balancer address from the client to host i, as the
// client's ARP entry does once host i answers for it.
func (h *twoHosts) via(t *testing.T, i int) {
	t.Helper()
	run(t, "ip", "-n", h.client, "route", "replace", lbIP+"/32", "via", fmt.Sprintf("10.99.0.%d", 11+i))
}

func TestLoadBalancerAddressAcrossTwoHosts(t *testing.T) {
	for _, backend := range []string{"iptables", "nftables"} {
		t.Run(backend, func(t *testing.T) { loadBalancerAddressAcrossTwoHosts(t, backend) })
	}
}

func loadBalancerAddressAcrossTwoHosts(t *testing.T, backend string) {
	h := newTwoHosts(t, backend)
	b := &testbed{t: t}
	eps := []api.EndpointAddress{{IP: h.vmIP[0], VM: "/dc1/vm/vm1", Host: twoHostPaths[0]}, {IP: h.vmIP[1], VM: "/dc1/vm/vm2", Host: twoHostPaths[1]}}
	mk := func(policy, holder string) lb.Service {
		s := service("web", "10.96.0.10", api.ServiceLoadBalancer, eps, api.ServicePort{Port: 80, TargetPort: api.IntOrString{IntVal: 8080}, NodePort: 30081})
		s.Spec.ExternalTrafficPolicy = policy
		s.Status.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: lbIP, Host: holder}}
		return s
	}
	for i := range 2 {
		b.waitHTTP(h.vmNS[i], h.vmIP[i]+":8080", fmt.Sprintf("vm%d", i+1))
	}

	h.apply(t, mk("Cluster", twoHostPaths[0]))
	for i := range 2 {
		h.via(t, i)
		vms, clients := b.who(h.client, "http://"+lbIP, 20)
		if !slices.Equal(vms, []string{"vm1", "vm2"}) || slices.Contains(clients, clientIP) {
			t.Errorf("Cluster policy through esx-0%d: reached %v seeing %v, want vm1 and vm2 (one across the hosts), never the client's own address", i+1, vms, clients)
		}
	}
	// Local: each host sends the address's traffic to its own member only,
	// the client's address kept; so does the holder after a move.
	h.apply(t, mk("Local", twoHostPaths[0]))
	for i := range 2 {
		h.via(t, i)
		want := fmt.Sprintf("vm%d", i+1)
		vms, clients := b.who(h.client, "http://"+lbIP, 6)
		if !slices.Equal(vms, []string{want}) || !slices.Equal(clients, []string{clientIP}) {
			t.Errorf("Local policy through esx-0%d: reached %v seeing %v, want only %s seeing %s", i+1, vms, clients, want, clientIP)
		}
	}
}
