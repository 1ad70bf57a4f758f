package network

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/internal/testenv"
)

// requireRoot skips data-plane tests unless they can really run: they need
// root, iproute2, iptables and the CNI plugins. They only touch network
// namespaces they create.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "skipping: needs root (creates network namespaces, bridges and veths)")
	}
	for _, bin := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			testenv.Unavailable(t, "skipping: %s not installed (apt-get install iproute2 iptables)", bin)
		}
	}
	if _, err := os.Stat(filepath.Join(DefaultBinDir, "bridge")); err != nil {
		testenv.Unavailable(t, "skipping: CNI plugins not in %s (apt-get install containernetworking-plugins)", DefaultBinDir)
	}
}

// testName is a short unique prefix so parallel runs never share a netns.
func testName() string { return fmt.Sprintf("pst%04x", rand.IntN(0xffff)) }

// testNetNS pins a netns for the test and removes it (with everything in it) at cleanup.
func testNetNS(t *testing.T, name string) string {
	t.Helper()
	path, err := CreateNamedNetNS(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := DeleteNamedNetNS(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return path
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testHost is a "host" netns with a network on it.
func testHost(t *testing.T, name, subnet string) (*Network, string) {
	t.Helper()
	hostNS := testNetNS(t, name)
	n, err := New(Config{Subnet: subnet, ClusterCIDR: "10.244.0.0/16", StateDir: t.TempDir(), HostNetNS: hostNS, NetNSPrefix: name + "-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.RemoveHostRules(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return n, hostNS
}

// testVM gives a VM a netns on host n and detaches it at cleanup.
func testVM(t *testing.T, n *Network, id string) (string, string) {
	t.Helper()
	ctx := context.Background()
	ns, err := n.CreateNetNS(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Teardown(ctx, id, ns); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := n.DeleteNetNS(id); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	ip, err := n.Setup(ctx, id, ns)
	if err != nil {
		t.Fatal(err)
	}
	return ns, ip
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{Subnet: "nonsense"}); err == nil {
		t.Fatal("want an error for a bad subnet")
	}
	n, err := New(Config{Subnet: "10.244.7.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	if gw := n.Gateway().String(); gw != "10.244.7.1" {
		t.Fatalf("gateway %s", gw)
	}
	if p := n.NetNSPath("vm1"); p != "/run/netns/ps-vm1" {
		t.Fatalf("netns path %s", p)
	}
}

func TestSetupTeardown(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	name := testName()
	n, hostNS := testHost(t, name, "10.244.1.0/24")
	vmNS, ip := testVM(t, n, "vm1")

	_, subnet, _ := net.ParseCIDR("10.244.1.0/24")
	if !subnet.Contains(net.ParseIP(ip)) {
		t.Fatalf("VM IP %s outside the host subnet", ip)
	}
	again, err := n.Setup(ctx, "vm1", vmNS)
	if err != nil || again != ip {
		t.Fatalf("second Setup = %s, %v; want %s (idempotent)", again, err, ip)
	}
	if got := n.IP("vm1"); got != ip {
		t.Fatalf("IP() = %q, want %s", got, ip)
	}
	if err := n.Check(ctx, "vm1", vmNS); err != nil {
		t.Fatalf("Check: %v", err)
	}
	run(t, "ip", "netns", "exec", name+"-vm1", "busybox", "ping", "-c1", "-W2", n.Gateway().String())

	// Masquerade spares the pod subnet and the cluster CIDR.
	rules := run(t, "ip", "netns", "exec", name, "iptables", "-t", "nat", "-S", DefaultMasqChain)
	for _, want := range []string{"-d 10.244.1.0/24 -j RETURN", "-d 10.244.0.0/16 -j RETURN", "-j MASQUERADE"} {
		if !strings.Contains(rules, want) {
			t.Errorf("masquerade chain lacks %q:\n%s", want, rules)
		}
	}
	_ = hostNS

	if leases, _ := n.Leases(); len(leases) != 1 || leases[0] != ip {
		t.Fatalf("leases %v, want [%s]", leases, ip)
	}
	if err := n.Teardown(ctx, "vm1", vmNS); err != nil {
		t.Fatal(err)
	}
	if err := n.Teardown(ctx, "vm1", vmNS); err != nil {
		t.Fatalf("second Teardown: %v", err)
	}
	if leases, _ := n.Leases(); len(leases) != 0 {
		t.Fatalf("leases after Teardown: %v", leases)
	}
	if links := run(t, "ip", "-n", name+"-vm1", "-o", "link"); strings.Contains(links, "eth0") {
		t.Fatalf("eth0 still in the VM netns:\n%s", links)
	}
	if err := n.DeleteNetNS("vm1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vmNS); !os.IsNotExist(err) {
		t.Fatalf("VM netns still pinned: %v", err)
	}
	if out := run(t, "ip", "-n", name, "-o", "link", "show", "type", "veth"); strings.TrimSpace(out) != "" {
		t.Fatalf("veths left on the host:\n%s", out)
	}
}

func TestSetPeerRoutes(t *testing.T) {
	requireRoot(t)
	name := testName()
	n, _ := testHost(t, name, "10.244.1.0/24")
	run(t, "ip", "-n", name, "link", "add", "uplink", "type", "veth", "peer", "name", "uplink-peer")
	run(t, "ip", "-n", name, "link", "set", "uplink-peer", "up")
	run(t, "ip", "-n", name, "addr", "add", "192.168.77.1/24", "dev", "uplink")
	run(t, "ip", "-n", name, "link", "set", "uplink", "up")
	// A route nobody gave us must survive.
	run(t, "ip", "-n", name, "route", "add", "172.16.0.0/16", "via", "192.168.77.9")

	steps := []struct {
		peers []Peer
		want  map[string]string
	}{
		{[]Peer{{"10.244.2.0/24", "192.168.77.2"}, {"10.244.3.0/24", "192.168.77.3"}, {"10.244.1.0/24", "192.168.77.1"}},
			map[string]string{"10.244.2.0/24": "192.168.77.2", "10.244.3.0/24": "192.168.77.3"}},
		{[]Peer{{"10.244.3.0/24", "192.168.77.4"}}, map[string]string{"10.244.3.0/24": "192.168.77.4"}},
		{nil, map[string]string{}},
	}
	for i, s := range steps {
		if err := n.SetPeerRoutes(s.peers); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		got, err := n.PeerRoutes()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Fatalf("step %d: routes %v, want %v", i, got, s.want)
		}
	}
	if out := run(t, "ip", "-n", name, "route"); !strings.Contains(out, "172.16.0.0/16") {
		t.Fatalf("SetPeerRoutes removed a route it does not own:\n%s", out)
	}
	if err := n.SetPeerRoutes([]Peer{{"bad", "192.168.77.2"}}); err == nil {
		t.Fatal("want an error for a bad subnet")
	}
}

// TestTwoHostsRouted joins two host netns with a veth pair and checks that a
// VM on A reaches a VM on B by its pod IP, un-NATed (B sees A's VM address).
func TestTwoHostsRouted(t *testing.T) {
	requireRoot(t)
	name := testName()
	a, _ := testHost(t, name+"a", "10.244.1.0/24")
	b, _ := testHost(t, name+"b", "10.244.2.0/24")
	run(t, "ip", "-n", name+"a", "link", "add", "wire", "type", "veth", "peer", "name", "wire", "netns", name+"b")
	run(t, "ip", "-n", name+"a", "addr", "add", "192.168.77.1/24", "dev", "wire")
	run(t, "ip", "-n", name+"b", "addr", "add", "192.168.77.2/24", "dev", "wire")
	run(t, "ip", "-n", name+"a", "link", "set", "wire", "up")
	run(t, "ip", "-n", name+"b", "link", "set", "wire", "up")
	if err := a.SetPeerRoutes([]Peer{{"10.244.2.0/24", "192.168.77.2"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPeerRoutes([]Peer{{"10.244.1.0/24", "192.168.77.1"}}); err != nil {
		t.Fatal(err)
	}
	_, ipA := testVM(t, a, "vma")
	_, ipB := testVM(t, b, "vmb")

	// B's VM serves a CGI that echoes the client's address.
	www := t.TempDir()
	if err := os.MkdirAll(filepath.Join(www, "cgi-bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(www, "cgi-bin", "ip"), []byte("#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho $REMOTE_ADDR\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	httpd := exec.Command("ip", "netns", "exec", name+"b-vmb", "busybox", "httpd", "-f", "-p", "80", "-h", www)
	if err := httpd.Start(); err != nil {
		testenv.Unavailable(t, "skipping: cannot start busybox httpd: %v", err)
	}
	t.Cleanup(func() { httpd.Process.Kill(); httpd.Wait() })

	var out []byte
	var err error
	for i := 0; i < 50; i++ {
		// No -T: busybox 1.35's wget segfaults with it; the context bounds the wait.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		out, err = exec.CommandContext(ctx, "ip", "netns", "exec", name+"a-vma", "busybox", "wget", "-q", "-O-", "http://"+ipB+"/cgi-bin/ip").CombinedOutput()
		cancel()
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("wget from VM on A to VM on B (%s): %v: %s", ipB, err, out)
	}
	got := strings.TrimSpace(string(out))
	got = strings.TrimPrefix(strings.TrimSuffix(strings.TrimPrefix(got, "["), "]"), "::ffff:")
	if got != ipA {
		t.Fatalf("B saw the request from %q, want A's VM %s (no NAT between pods)", got, ipA)
	}
}

// TestVMRestartedOnAnotherHost: hosts that share /run/netns (the lab's) and
// the VM netns prefix: a VM that HA restarts on host B finds host A's netns
// under its name (A crashed, its pin stayed). B attaches it afresh in B's
// subnet instead of failing on A's eth0.
func TestVMRestartedOnAnotherHost(t *testing.T) {
	requireRoot(t)
	name := testName()
	a, _ := testHost(t, name+"a", "10.244.1.0/24")
	hostB := testNetNS(t, name+"b")
	b, err := New(Config{Subnet: "10.244.2.0/24", ClusterCIDR: "10.244.0.0/16", StateDir: t.TempDir(), HostNetNS: hostB, NetNSPrefix: a.cfg.NetNSPrefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.RemoveHostRules() })
	_, ipA := testVM(t, a, "vm1")
	_, ipB := testVM(t, b, "vm1")
	if !strings.HasPrefix(ipB, "10.244.2.") {
		t.Fatalf("restarted on B the VM got %s (on A it had %s), want an address of B's subnet", ipB, ipA)
	}
	// B's attachment is kept as B's on the next start (adoption), not replaced again.
	ns, err := b.CreateNetNS("vm1")
	if err != nil {
		t.Fatal(err)
	}
	if ip, err := b.Setup(context.Background(), "vm1", ns); err != nil || ip != ipB {
		t.Fatalf("B's second attach of its own VM: %s, %v; want %s kept", ip, err, ipB)
	}
	// A comes back and removes its copy of the VM: it releases its lease
	// and leaves B's VM its netns and its address.
	if err := a.Remove(context.Background(), "vm1", a.NetNSPath("vm1")); err != nil {
		t.Fatalf("A removing its stale copy: %v", err)
	}
	if ip := a.IP("vm1"); ip != "" {
		t.Errorf("A still holds %s for the VM after removing it", ip)
	}
	var addrs []net.Addr
	if err := InNetNS(b.NetNSPath("vm1"), func() (err error) { addrs, err = net.InterfaceAddrs(); return err }); err != nil {
		t.Fatalf("B's VM's netns after A's removal: %v", err)
	}
	if !slices.ContainsFunc(addrs, func(a net.Addr) bool { p, ok := a.(*net.IPNet); return ok && p.IP.String() == ipB }) {
		t.Fatalf("after A removed its copy, B's VM has %v, want %s still", addrs, ipB)
	}
}
