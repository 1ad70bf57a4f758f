// Package announce makes a host answer for the LoadBalancer addresses it
// holds on the hosts' network: it replies to ARP requests for them from the
// agent's own process, on a raw (AF_PACKET) socket, as MetalLB's layer-2
// mode does. The addresses are never put on a kernel interface, so a host
// whose agent died stops answering at once, and clients (after their
// neighbour cache ages, or at the new holder's gratuitous ARP) reach the
// host that took the address over. The packets that then arrive carry this
// host's MAC and a destination the kernel does not own; they still pass
// nat PREROUTING, where the service rules DNAT them to the endpoints.
package announce

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/lb"
	"golang.org/x/sys/unix"
)

// Defaults of Config, with why.
const (
	// DefaultGratuitous: a host taking an address over says so three times,
	// as MetalLB and keepalived do, so one lost frame does not leave
	// clients on the old host until their cache ages (about 30 s on Linux).
	DefaultGratuitous = 3
	// DefaultGratuitousInterval spaces them so a switch or bridge that was
	// still learning the port sees a later one.
	DefaultGratuitousInterval = time.Second
)

// Config says where to answer.
type Config struct {
	// Interface is the interface on the hosts' network ("" = the one that
	// carries Address: mgmt0 in the lab, the host's uplink in production).
	Interface string
	// Address is the host's own address on the hosts' network.
	Address netip.Addr
	// Gratuitous is how many gratuitous ARPs announce a takeover (0 =
	// DefaultGratuitous, -1 = none), GratuitousInterval their spacing.
	Gratuitous         int
	GratuitousInterval time.Duration
	// Logf reports takeovers and releases (nil = silent).
	Logf func(format string, args ...any)
}

// Announcer answers ARP for the addresses it holds. Make it with New (it
// opens the socket), run it with Run, and tell it what to hold with Hold
// or ApplyLB; it holds nothing until told.
type Announcer struct {
	cfg    Config
	ifi    *net.Interface
	client *arp.Client

	mu       sync.Mutex
	held     map[netip.Addr]chan struct{} // closed on release: stops that address's gratuitous ARPs
	closed   chan struct{}
	closeErr error
	once     sync.Once
}

// New opens a raw ARP socket on the hosts' network interface. It must be
// called in the network namespace of that interface (the socket stays
// there).
func New(cfg Config) (*Announcer, error) {
	if cfg.Gratuitous == 0 {
		cfg.Gratuitous = DefaultGratuitous
	}
	if cfg.GratuitousInterval <= 0 {
		cfg.GratuitousInterval = DefaultGratuitousInterval
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	var ifi *net.Interface
	var err error
	switch {
	case cfg.Interface != "":
		if ifi, err = net.InterfaceByName(cfg.Interface); err != nil {
			return nil, fmt.Errorf("announce: interface %q: %v: %w", cfg.Interface, err, api.ErrInvalid)
		}
	case cfg.Address.IsValid():
		if ifi, err = InterfaceOf(cfg.Address); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("announce: give the interface or the host's address on the hosts' network: %w", api.ErrInvalid)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("announce: interface %s has no Ethernet address (%q): ARP cannot answer there: %w", ifi.Name, ifi.HardwareAddr, api.ErrInvalid)
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return nil, fmt.Errorf("announce: open an ARP socket on %s: %w", ifi.Name, err)
	}
	return &Announcer{cfg: cfg, ifi: ifi, client: c, held: map[netip.Addr]chan struct{}{}, closed: make(chan struct{})}, nil
}

// InterfaceOf finds the interface carrying addr.
func InterfaceOf(addr netip.Addr) (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("announce: list interfaces: %w", err)
	}
	for i := range ifs {
		addrs, err := ifs[i].Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == addr {
				return &ifs[i], nil
			}
		}
	}
	return nil, fmt.Errorf("announce: no interface carries %s (the host's address on the hosts' network): %w", addr, api.ErrNotFound)
}

// Interface is the interface answered on.
func (a *Announcer) Interface() *net.Interface { return a.ifi }

// Name is the announcer's name among the agent's load-balancing parts.
func (a *Announcer) Name() string { return "announce" }

// ApplyLB holds what vcenter gave this host in st.
func (a *Announcer) ApplyLB(_ context.Context, st *lb.State) error {
	a.Hold(lb.Announced(st))
	return nil
}

// Held is the addresses answered for now, sorted.
func (a *Announcer) Held() []netip.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]netip.Addr, 0, len(a.held))
	for ip := range a.held {
		out = append(out, ip)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// Hold makes addrs the set answered for: an address no longer in it is
// released at once (its next request goes unanswered), a new one is taken
// over with gratuitous ARPs.
func (a *Announcer) Hold(addrs []netip.Addr) {
	want := map[netip.Addr]bool{}
	for _, ip := range addrs {
		if ip.Is4() {
			want[ip] = true
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for ip, stop := range a.held {
		if !want[ip] {
			close(stop)
			delete(a.held, ip)
			a.cfg.Logf("announce: released %s on %s", ip, a.ifi.Name)
		}
	}
	for ip := range want {
		if _, ok := a.held[ip]; ok {
			continue
		}
		stop := make(chan struct{})
		a.held[ip] = stop
		a.cfg.Logf("announce: answering for %s on %s (%s)", ip, a.ifi.Name, a.ifi.HardwareAddr)
		if a.cfg.Gratuitous > 0 {
			go a.gratuitous(ip, stop)
		}
	}
}

func (a *Announcer) holds(ip netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.held[ip]
	return ok
}

// gratuitous tells the network that ip is at this host now: an unsolicited
// reply and a request with sender = target = ip, both broadcast (Linux
// updates an existing neighbour entry on either; some stacks heed only one).
func (a *Announcer) gratuitous(ip netip.Addr, stop chan struct{}) {
	t := time.NewTicker(a.cfg.GratuitousInterval)
	defer t.Stop()
	for i := 0; i < a.cfg.Gratuitous; i++ {
		if i > 0 {
			select {
			case <-stop:
				return
			case <-a.closed:
				return
			case <-t.C:
			}
		}
		for _, op := range []arp.Operation{arp.OperationReply, arp.OperationRequest} {
			p, err := arp.NewPacket(op, a.ifi.HardwareAddr, ip, ethernet.Broadcast, ip)
			if err == nil {
				err = a.client.WriteTo(p, ethernet.Broadcast)
			}
			if err != nil && !a.isClosed() {
				a.cfg.Logf("announce: gratuitous ARP for %s on %s: %v", ip, a.ifi.Name, err)
			}
		}
	}
}

func (a *Announcer) isClosed() bool {
	select {
	case <-a.closed:
		return true
	default:
		return false
	}
}

// Run answers requests until ctx ends or Close; it closes the socket on
// its way out, so nothing answers after it returns.
func (a *Announcer) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = a.Close() })
	defer stop()
	defer a.Close()
	for {
		p, _, err := a.client.Read()
		if err != nil {
			if a.isClosed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// The link went down (a cable pulled, the lab isolating the
			// host): the socket stays bound and hears again once it is up.
			if errors.Is(err, unix.ENETDOWN) {
				a.cfg.Logf("announce: %s is down; answering again when it is up", a.ifi.Name)
				continue
			}
			return fmt.Errorf("announce: read ARP on %s: %w", a.ifi.Name, err)
		}
		if p.Operation != arp.OperationRequest || slices.Equal(p.SenderHardwareAddr, a.ifi.HardwareAddr) || !a.holds(p.TargetIP) {
			continue
		}
		if err := a.client.Reply(p, a.ifi.HardwareAddr, p.TargetIP); err != nil && !a.isClosed() {
			a.cfg.Logf("announce: reply to %s for %s: %v", p.SenderIP, p.TargetIP, err)
		}
	}
}

// Close stops answering for every address and closes the socket.
func (a *Announcer) Close() error {
	a.once.Do(func() {
		a.mu.Lock()
		for ip, stop := range a.held {
			close(stop)
			delete(a.held, ip)
		}
		close(a.closed)
		a.mu.Unlock()
		a.closeErr = a.client.Close()
	})
	return a.closeErr
}
