package fdm

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProbePort is the TCP port an isolation address given without one is
// probed on: echo, closed almost everywhere, so a live machine answers
// with a refusal at once. Give ADDR:PORT for a machine whose firewall
// drops, rather than refuses, what it does not serve.
const ProbePort = "7"

// Prober says whether addr (host:port) answers within timeout.
type Prober func(ctx context.Context, addr string, timeout time.Duration) bool

// TCPProbe connects to addr. A connection made or refused proves the
// address reachable (something answered); silence until the timeout, or a
// network or host the kernel cannot reach, does not.
func TCPProbe(ctx context.Context, addr string, timeout time.Duration) bool {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		c.Close()
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// probeAll probes the first target (vcenter) and, only if it is silent,
// all the others at once, each bounded by timeout: one answer is enough to
// rule isolation out, and a cluster of many hosts should not connect to
// every peer twice a second while vcenter answers.
func probeAll(ctx context.Context, probe Prober, targets []Probe, timeout time.Duration) []Probe {
	if len(targets) == 0 {
		return nil
	}
	first := targets[0]
	if first.Reachable = probe(ctx, first.Addr, timeout); first.Reachable {
		return []Probe{first}
	}
	return append([]Probe{first}, probeEach(ctx, probe, targets[1:], timeout)...)
}

// probeEach runs every probe at once, each bounded by timeout.
func probeEach(ctx context.Context, probe Prober, targets []Probe, timeout time.Duration) []Probe {
	out := append([]Probe(nil), targets...)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].Reachable = probe(ctx, out[i].Addr, timeout)
		}()
	}
	wg.Wait()
	return out
}

// withPort gives addr ProbePort unless it has a port.
func withPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), ProbePort)
}

// vcenterAddr is the host:port of vcenter's API URL.
func vcenterAddr(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", errors.New("want http://HOST:PORT")
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// localAddressTo is the local IP the kernel would send from to reach addr
// (host:port): the host's management address, when not given. No packet
// is sent (a UDP "connection" only picks the route).
func localAddressTo(addr string) string {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return ""
	}
	defer c.Close()
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		return a.IP.String()
	}
	return ""
}

// localIPs are this host's own addresses (loopback included), which
// prove nothing about its network: never probed.
func localIPs() map[string]bool {
	out := map[string]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out[n.IP.String()] = true
		}
	}
	return out
}

// DefaultGateway is the IPv4 default route's gateway from /proc/net/route
// ("" without one, as in the lab's host namespaces).
func DefaultGateway() string {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[1] != "00000000" {
			continue
		}
		b, err := hex.DecodeString(fields[2])
		if err != nil || len(b) != 4 || (b[0]|b[1]|b[2]|b[3]) == 0 {
			continue
		}
		// Little-endian, as the kernel prints it.
		return net.IPv4(b[3], b[2], b[1], b[0]).String()
	}
	return ""
}
