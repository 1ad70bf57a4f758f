// Package dns is the resolver each host runs for its VMs: it answers the
// cluster's Service names (NAME.NAMESPACE.svc.CLUSTER-DOMAIN, from the
// table lb.DNSRecords builds) with authority, and forwards every other
// name to the host's own resolvers. It listens on UDP and TCP port 53 of
// the VM bridge's gateway, the address every VM's resolv.conf names. It is
// the host agent's DNS consumer of the cluster's load-balancing state: each
// ApplyLB swaps the whole table at once.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/lb"
)

// Defaults, in one place.
const (
	DefaultPort       = 53                 // where resolv.conf's nameserver is asked
	DefaultResolvConf = "/etc/resolv.conf" // the host's own resolvers, forwarded to
	// DefaultForwardTimeout bounds one upstream's answer: short, so a name
	// no upstream answers (a lab without one) fails with SERVFAIL well
	// before a VM's own resolver gives up (glibc waits 5 s).
	DefaultForwardTimeout = 1 * time.Second
	// maxUpstreams is what resolv.conf honours (MAXNS).
	maxUpstreams = 3
)

// Config is one host's resolver.
type Config struct {
	// Listen is IP:PORT to serve on, the VM bridge's gateway and port 53
	// on a host; port 0 picks one (tests).
	Listen string
	// NetNS is the network namespace to listen in ("" = the agent's own).
	NetNS string
	// Upstreams are the resolvers other names go to, IP or IP:PORT; nil
	// reads ResolvConf's nameservers (at New).
	Upstreams  []string
	ResolvConf string        // default DefaultResolvConf
	Timeout    time.Duration // per upstream; default DefaultForwardTimeout
	Logger     *slog.Logger  // nil: slog.Default()
}

// Resolver serves DNS for one host's VMs. Make it with New, then Start.
type Resolver struct {
	cfg       Config
	upstreams []string
	log       *slog.Logger
	// table is the one the next query reads; nil before the first ApplyLB.
	table atomic.Pointer[lb.DNSTable]

	mu      sync.Mutex
	servers []*mdns.Server
	udpAddr net.Addr
	tcpAddr net.Addr
}

// New checks cfg and reads the upstreams; it listens on nothing yet.
func New(cfg Config) (*Resolver, error) {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil || net.ParseIP(host) == nil {
		return nil, fmt.Errorf("dns: listen address %q is not IP:PORT: %w", cfg.Listen, api.ErrInvalid)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return nil, fmt.Errorf("dns: listen port %q: %w", port, api.ErrInvalid)
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = DefaultResolvConf
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultForwardTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Resolver{cfg: cfg, log: cfg.Logger.With("component", "dns")}
	ups := cfg.Upstreams
	if ups == nil {
		ups = ReadUpstreams(cfg.ResolvConf)
	}
	for _, u := range ups {
		addr, err := upstreamAddr(u)
		if err != nil {
			return nil, err
		}
		if addr == cfg.Listen {
			continue // never forward to ourselves
		}
		if len(r.upstreams) < maxUpstreams {
			r.upstreams = append(r.upstreams, addr)
		}
	}
	return r, nil
}

// ReadUpstreams is the nameservers of a resolv.conf; none when it cannot
// be read (the resolver then answers other names with SERVFAIL).
func ReadUpstreams(path string) []string {
	cc, err := mdns.ClientConfigFromFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out
}

func upstreamAddr(u string) (string, error) {
	if ip := net.ParseIP(u); ip != nil {
		return net.JoinHostPort(u, strconv.Itoa(DefaultPort)), nil
	}
	if host, _, err := net.SplitHostPort(u); err == nil && net.ParseIP(host) != nil {
		return u, nil
	}
	return "", fmt.Errorf("dns: upstream %q is not IP or IP:PORT: %w", u, api.ErrInvalid)
}

// Upstreams are the resolvers other names are forwarded to, IP:PORT.
func (r *Resolver) Upstreams() []string { return append([]string(nil), r.upstreams...) }

// Name is the resolver's name among the agent's load-balancing consumers.
func (r *Resolver) Name() string { return "dns" }

// ApplyLB swaps in the records of st: the next query sees them.
func (r *Resolver) ApplyLB(_ context.Context, st *lb.State) error {
	r.table.Store(lb.DNSRecords(st))
	return nil
}

// Start listens on UDP and TCP and serves until Close. The sockets are
// bound with IP_FREEBIND: the gateway address exists only once the CNI
// bridge plugin made the bridge (at the first VM), and VMs must find the
// resolver from their first query on.
func (r *Resolver) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.servers != nil {
		return nil
	}
	lc := net.ListenConfig{Control: freebind}
	var pc net.PacketConn
	var ln net.Listener
	err := network.InNetNS(r.cfg.NetNS, func() error {
		var err error
		if pc, err = lc.ListenPacket(context.Background(), "udp4", r.cfg.Listen); err != nil {
			return err
		}
		// TCP on the port UDP got, so a port-0 test gets one address.
		if ln, err = lc.Listen(context.Background(), "tcp4", pc.LocalAddr().String()); err != nil {
			pc.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dns: listen on %s: %w", r.cfg.Listen, err)
	}
	r.udpAddr, r.tcpAddr = pc.LocalAddr(), ln.Addr()
	udp := &mdns.Server{PacketConn: pc, Handler: r}
	tcp := &mdns.Server{Listener: ln, Handler: r}
	r.servers = []*mdns.Server{udp, tcp}
	for _, s := range r.servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() {
			if err := s.ActivateAndServe(); err != nil {
				r.log.Error("DNS server stopped", "err", err)
			}
		}()
		<-started
	}
	r.log.Info("DNS resolver serving", "udp", r.udpAddr, "tcp", r.tcpAddr, "upstreams", r.upstreams)
	return nil
}

// Addr is where the resolver listens (UDP and TCP share it); nil before Start.
func (r *Resolver) Addr() net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.udpAddr
}

// Close stops serving; queries in flight are answered first.
func (r *Resolver) Close() error {
	r.mu.Lock()
	servers := r.servers
	r.servers = nil
	r.mu.Unlock()
	var errs []error
	for _, s := range servers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		errs = append(errs, s.ShutdownContext(ctx))
		cancel()
	}
	return errors.Join(errs...)
}

func freebind(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
	})
	return errors.Join(err, serr)
}
