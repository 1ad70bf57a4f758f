package announce

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/internal/testenv"
)

// requireRoot skips unless the test can make network namespaces, veths and
// nat rules inside them; it touches nothing outside the namespaces it makes.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "skipping: needs root (creates network namespaces, a bridge and veths)")
	}
	for _, bin := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			testenv.Unavailable(t, "skipping: %s not installed (apt-get install iproute2 iptables)", bin)
		}
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

func netNS(t *testing.T, name string) string {
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

// hostsNet is a hosts' network: a bridge in its own netns, and each
// "machine" a netns plugged into it by a veth whose far end is eth0.
type hostsNet struct {
	t      *testing.T
	prefix string
	bridge string
}

func newHostsNet(t *testing.T) *hostsNet {
	n := &hostsNet{t: t, prefix: fmt.Sprintf("psa%04x", rand.IntN(0xffff))}
	n.bridge = n.prefix + "-br"
	netNS(t, n.bridge)
	run(t, "ip", "-n", n.bridge, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", n.bridge, "link", "set", "br0", "up")
	return n
}

// machine makes netns PREFIX-name at addr/24 and returns its path.
func (n *hostsNet) machine(name, addr string) string {
	ns := n.prefix + "-" + name
	path := netNS(n.t, ns)
	port := "p-" + name
	run(n.t, "ip", "-n", n.bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
	run(n.t, "ip", "-n", n.bridge, "link", "set", port, "master", "br0")
	run(n.t, "ip", "-n", n.bridge, "link", "set", port, "up")
	run(n.t, "ip", "-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
	run(n.t, "ip", "-n", ns, "link", "set", "eth0", "up")
	return path
}

// serve answers every TCP connection to addr inside the netns with name.
func serve(t *testing.T, nsPath, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := network.InNetNS(nsPath, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, name+"\n")
			c.Close()
		}
	}()
}

// announcer runs an Announcer in the netns for the host address addr.
func announcer(t *testing.T, nsPath, addr string) *Announcer {
	t.Helper()
	var a *Announcer
	err := network.InNetNS(nsPath, func() (err error) {
		a, err = New(Config{Address: netip.MustParseAddr(addr), Logf: t.Logf})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	t.Cleanup(func() {
		a.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return a
}

// connect opens a TCP connection from the client netns and reads who answered.
func connect(nsPath, addr string) (string, error) {
	var c net.Conn
	if err := network.InNetNS(nsPath, func() (err error) { c, err = net.DialTimeout("tcp", addr, time.Second); return err }); err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	b, err := io.ReadAll(c)
	return strings.TrimSpace(string(b)), err
}

// resolve asks for ip by ARP from the client netns, waiting up to wait.
func resolve(t *testing.T, nsPath string, ip netip.Addr, wait time.Duration) (net.HardwareAddr, error) {
	t.Helper()
	var c *arp.Client
	if err := network.InNetNS(nsPath, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err == nil {
			c, err = arp.Dial(ifi)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	return c.Resolve(ip)
}

func neighbour(t *testing.T, ns, ip string) string {
	return strings.TrimSpace(run(t, "ip", "-n", ns, "neigh", "show", ip))
}

// TestAnnounceMovesTheAddress is a LoadBalancer address's life on a hosts'
// network: host A answers for it (and DNATs it to its own listener), the
// address moves to B (gratuitous ARP moves the client at once), and an
// announcer that died stops answering.
func TestAnnounceMovesTheAddress(t *testing.T) {
	requireRoot(t)
	n := newHostsNet(t)
	const vip, aAddr, bAddr = "10.77.0.200", "10.77.0.11", "10.77.0.12"
	ip := netip.MustParseAddr(vip)
	hostA, hostB := n.machine("a", aAddr), n.machine("b", bAddr)
	client := n.machine("c", "10.77.0.2")
	clientNS := filepath.Base(client)
	for _, h := range []struct{ path, addr, name string }{{hostA, aAddr, "A"}, {hostB, bAddr, "B"}} {
		ns := filepath.Base(h.path)
		// What the service rules do on every host: the address is no
		// kernel address, only a DNAT target.
		run(t, "ip", "netns", "exec", ns, "iptables", "-t", "nat", "-A", "PREROUTING", "-d", vip, "-p", "tcp", "--dport", "80",
			"-j", "DNAT", "--to-destination", h.addr+":8080")
		serve(t, h.path, h.addr+":8080", h.name)
		// The DNATed packet is delivered locally with forwarding off: nat
		// PREROUTING sees every packet addressed to this host's MAC.
		t.Logf("%s: net.ipv4.ip_forward=%s", ns, strings.TrimSpace(run(t, "ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward")))
		if out := run(t, "ip", "-n", ns, "addr", "show"); strings.Contains(out, vip) {
			t.Fatalf("%s carries %s on an interface:\n%s", ns, vip, out)
		}
	}

	a := announcer(t, hostA, aAddr)
	b := announcer(t, hostB, bAddr)
	macA, macB := a.Interface().HardwareAddr, b.Interface().HardwareAddr

	// Nobody holds it yet: no answer.
	if hw, err := resolve(t, client, ip, 500*time.Millisecond); err == nil {
		t.Fatalf("%s resolved to %s before any host held it", vip, hw)
	}

	a.Hold([]netip.Addr{ip})
	if got, err := connect(client, vip+":80"); err != nil || got != "A" {
		t.Fatalf("connect to %s while A holds it: %q, %v", vip, got, err)
	}
	if nb := neighbour(t, clientNS, vip); !strings.Contains(nb, macA.String()) {
		t.Fatalf("client's neighbour entry %q, want A's %s", nb, macA)
	}

	// Released: A stops answering at once, before B takes it.
	a.Hold(nil)
	if hw, err := resolve(t, client, ip, 500*time.Millisecond); err == nil {
		t.Fatalf("%s still resolved (to %s) after A released it", vip, hw)
	}

	// B takes over: its gratuitous ARP moves the client's cached entry,
	// with no request of the client's.
	b.Hold([]netip.Addr{ip})
	moved := time.Now()
	deadline := moved.Add(5 * time.Second)
	for !strings.Contains(neighbour(t, clientNS, vip), macB.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("client's entry %q still not B's %s 5 s after B took %s over", neighbour(t, clientNS, vip), macB, vip)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("client's entry moved to B %s after B took %s over", time.Since(moved).Round(time.Millisecond), vip)
	if got, err := connect(client, vip+":80"); err != nil || got != "B" {
		t.Fatalf("connect after the move: %q, %v; want B", got, err)
	}
	if hw, err := resolve(t, client, ip, time.Second); err != nil || !bytes.Equal(hw, macB) {
		t.Fatalf("resolve after the move: %s, %v; want B's %s", hw, err, macB)
	}

	// B's link goes down and up again (the lab's isolate and heal): B
	// answers again once it is up.
	run(t, "ip", "-n", n.bridge, "link", "set", "p-b", "down")
	run(t, "ip", "-n", filepath.Base(hostB), "link", "set", "eth0", "down")
	run(t, "ip", "-n", filepath.Base(hostB), "link", "set", "eth0", "up")
	run(t, "ip", "-n", n.bridge, "link", "set", "p-b", "up")
	run(t, "ip", "-n", clientNS, "neigh", "flush", "to", vip)
	deadline = time.Now().Add(5 * time.Second)
	for {
		hw, err := resolve(t, client, ip, 500*time.Millisecond)
		if err == nil && bytes.Equal(hw, macB) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B does not answer for %s after its link came back: %s, %v", vip, hw, err)
		}
	}

	// B's announcer dies (as with its agent): nothing answers any more,
	// though B's nat rule and listener are still there.
	b.Close()
	run(t, "ip", "-n", clientNS, "neigh", "flush", "to", vip)
	if hw, err := resolve(t, client, ip, time.Second); err == nil {
		t.Fatalf("%s resolved to %s after B's announcer died", vip, hw)
	}
	if got, err := connect(client, vip+":80"); err == nil {
		t.Fatalf("connected to %s (%q) with no announcer alive", vip, got)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "interface or the host's address") {
		t.Fatalf("New(Config{}) = %v", err)
	}
	if _, err := New(Config{Interface: "no-such-if0"}); err == nil || !strings.Contains(err.Error(), `"no-such-if0"`) {
		t.Fatalf("New(no such interface) = %v", err)
	}
	if _, err := New(Config{Address: netip.MustParseAddr("192.0.2.254")}); err == nil || !strings.Contains(err.Error(), "no interface carries 192.0.2.254") {
		t.Fatalf("New(address nobody has) = %v", err)
	}
}
