package announce

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/internal/loadgen"
)

// serveHTTP answers every GET to addr inside the netns with name.
func serveHTTP(t *testing.T, nsPath, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := network.InNetNS(nsPath, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, name) })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
}

// TestRequestsFollowTheAddress streams requests (as ha.drill does) from a
// client to a LoadBalancer address while its holder crashes (announcer
// gone, link down) and another host takes it over a second later: the
// requests fail only in between, and the longest gap is about that second,
// not the half minute a client's neighbour cache would take to age.
func TestRequestsFollowTheAddress(t *testing.T) {
	requireRoot(t)
	n := newHostsNet(t)
	const vip, aAddr, bAddr = "10.77.0.201", "10.77.0.11", "10.77.0.12"
	ip := netip.MustParseAddr(vip)
	hostA, hostB := n.machine("a", aAddr), n.machine("b", bAddr)
	client := n.machine("c", "10.77.0.2")
	for _, h := range []struct{ path, addr, name string }{{hostA, aAddr, "A"}, {hostB, bAddr, "B"}} {
		run(t, "ip", "netns", "exec", filepath.Base(h.path), "iptables", "-t", "nat", "-A", "PREROUTING", "-d", vip, "-p", "tcp", "--dport", "80",
			"-j", "DNAT", "--to-destination", h.addr+":8080")
		serveHTTP(t, h.path, h.addr+":8080", h.name)
	}
	a, b := announcer(t, hostA, aAddr), announcer(t, hostB, bAddr)
	a.Hold([]netip.Addr{ip})

	dial := func(ctx context.Context, nw, addr string) (c net.Conn, err error) {
		err = network.InNetNS(client, func() error { c, err = (&net.Dialer{}).DialContext(ctx, nw, addr); return err })
		return c, err
	}
	s, err := loadgen.Start(context.Background(), loadgen.Config{URL: "http://" + vip + "/", Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	waitAnswered := func(n int) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			done, failed := s.Count()
			if done-failed >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d requests answered in 15 s", done-failed, done)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitAnswered(10)

	// A crashes: its announcer dies with its agent and its link goes down.
	crashed := time.Now()
	a.Close()
	run(t, "ip", "-n", n.bridge, "link", "set", "p-a", "down")
	// vcenter's decision takes a while (HA declaring A failed); a second here.
	time.Sleep(time.Second)
	b.Hold([]netip.Addr{ip})
	took := time.Now()
	done, _ := s.Count()
	waitAnswered(done + 10)
	sum := s.Stop()

	t.Logf("%d sent, %d failed, longest gap %s (A crashed at +0, B took over at +%s), last error %q",
		sum.Sent, sum.Failed, sum.LongestGap.Round(time.Millisecond), took.Sub(crashed).Round(time.Millisecond), sum.LastError)
	if sum.Failed == 0 || len(sum.Outages) != 1 {
		t.Fatalf("the crash lost no request, or the outage came and went: %+v", sum)
	}
	if sum.GapTo.Before(took) {
		t.Fatalf("requests were answered again at %s, before B took the address over at %s", sum.GapTo, took)
	}
	// Without B's gratuitous ARP the client would keep A's MAC until its
	// entry aged: 15 s is far below that and far above the move.
	if sum.LongestGap > 15*time.Second {
		t.Fatalf("longest gap %s: the client did not follow the address to B", sum.LongestGap)
	}
	if got, err := resolveOnce(client, vip); err != nil || !strings.Contains(got, "B") {
		t.Fatalf("after the move the address serves %q, %v; want B", got, err)
	}
}

func resolveOnce(nsPath, vip string) (string, error) {
	var c net.Conn
	if err := network.InNetNS(nsPath, func() (err error) { c, err = net.DialTimeout("tcp", vip+":80", time.Second); return err }); err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	b, err := io.ReadAll(c)
	return string(b), err
}

// TestDNATedToAVM: the address's packets, DNATed on the holder to a VM
// behind it, reach the VM when the holder forwards (as every host does for
// its VMs) and do not with forwarding off: no address on an interface, no
// br_netfilter, nothing else is needed.
func TestDNATedToAVM(t *testing.T) {
	requireRoot(t)
	n := newHostsNet(t)
	const vip, hostAddr, vmAddr = "10.77.0.202", "10.77.0.11", "10.78.0.2"
	host := n.machine("a", hostAddr)
	client := n.machine("c", "10.77.0.2")
	hostNS := filepath.Base(host)
	vmNS := n.prefix + "-vm"
	vm := netNS(t, vmNS)
	run(t, "ip", "-n", hostNS, "link", "add", "vm0", "type", "veth", "peer", "name", "eth0", "netns", vmNS)
	run(t, "ip", "-n", hostNS, "addr", "add", "10.78.0.1/24", "dev", "vm0")
	run(t, "ip", "-n", hostNS, "link", "set", "vm0", "up")
	run(t, "ip", "-n", vmNS, "addr", "add", vmAddr+"/24", "dev", "eth0")
	run(t, "ip", "-n", vmNS, "link", "set", "eth0", "up")
	run(t, "ip", "-n", vmNS, "route", "add", "default", "via", "10.78.0.1")
	run(t, "ip", "netns", "exec", hostNS, "iptables", "-t", "nat", "-A", "PREROUTING", "-d", vip, "-p", "tcp", "--dport", "80",
		"-j", "DNAT", "--to-destination", vmAddr+":8080")
	serveHTTP(t, vm, vmAddr+":8080", "VM")
	a := announcer(t, host, hostAddr)
	a.Hold([]netip.Addr{netip.MustParseAddr(vip)})

	forwarding := func(on string) {
		run(t, "ip", "netns", "exec", hostNS, "sysctl", "-q", "-w", "net.ipv4.ip_forward="+on) // the test's own namespace only
	}
	forwarding("0")
	if got, err := resolveOnce(client, vip); err == nil {
		t.Fatalf("reached the VM (%q) through a holder that does not forward", got)
	}
	forwarding("1")
	if got, err := resolveOnce(client, vip); err != nil || !strings.HasSuffix(got, "VM") {
		t.Fatalf("through a forwarding holder: %q, %v; want the VM's answer", got, err)
	}
}
