package svcproxy

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/lb"
)

// DefaultFullSync is how often the proxy rewrites every chain though only
// some changed: a rule someone deleted by hand comes back, a chain someone
// added under podsphere's prefix goes.
const DefaultFullSync = 5 * time.Minute

// Config configures a Proxy.
type Config struct {
	Backend Backend
	// NetNS is where the health-check ports listen ("" = the agent's).
	NetNS string
	// HealthBind is the address health-check node ports listen on ("" = every address).
	HealthBind string
	// ServiceRouteDev, when set, is the device (ServiceDummy) the
	// cluster's service network is routed to when nothing routes it, so
	// the host itself can reach cluster IPs on a host without a default
	// route (the lab's): the kernel picks a route before the rules
	// translate the address. A missing device is made, as an empty
	// bridge (the dummy driver is a kernel module, the bridge is already
	// there for ps0): not the VM bridge itself, because a VM's packet routed back out the bridge it came
	// in makes the kernel send the VM an ICMP redirect first, which uses
	// up the per-client ICMP allowance and so swallows the port
	// unreachable refusing a UDP Service without members.
	ServiceRouteDev string
	FullSync        time.Duration // 0 = DefaultFullSync
	Logger          *log.Logger   // nil = log.Default()
}

// Proxy carries the Services on this host: the host agent's LBConsumer
// for service rules.
type Proxy struct {
	cfg    Config
	mu     sync.Mutex // ApplyLB calls come one at a time; this guards Close
	synced bool       // the last sync succeeded
	full   time.Time  // when the last full sync succeeded
	health health
	routed string // service CIDR routed to ServiceRouteDev
}

// New makes a Proxy on cfg.Backend.
func New(cfg Config) (*Proxy, error) {
	if cfg.Backend == nil {
		return nil, fmt.Errorf("service rules: Backend is nil")
	}
	if cfg.FullSync <= 0 {
		cfg.FullSync = DefaultFullSync
	}
	if cfg.Logger == nil {
		cfg.Logger = log.Default()
	}
	return &Proxy{cfg: cfg, health: health{netns: cfg.NetNS, bind: cfg.HealthBind, servers: map[int]*hcServer{}}}, nil
}

func (p *Proxy) Name() string { return "service rules (" + p.cfg.Backend.Name() + ")" }

// ApplyLB programs st's rules: the first time, after a failure and every
// FullSync a full sync (which adopts what a previous agent left), else
// only the chains that changed since the last sync.
func (p *Proxy) ApplyLB(ctx context.Context, st *lb.State) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	full := !p.synced || time.Since(p.full) >= p.cfg.FullSync
	start := time.Now()
	err := p.cfg.Backend.Sync(ctx, st, full)
	p.synced = err == nil
	if err == nil && full {
		p.full = time.Now()
		p.cfg.Logger.Printf("service rules: full sync of %d services (%s) in %v", len(st.Services), p.cfg.Backend.Name(), time.Since(start).Round(time.Millisecond))
	}
	return errors.Join(err, p.route(st.Spec.ServiceCIDR), p.health.sync(st))
}

// ServiceDummy is the device (an empty bridge) the service network is
// routed to on a host without a default route: packets that no rule
// translated or refused end there.
const ServiceDummy = "ps-svc0"

// ServiceRouteProtocol marks the service network's route (`proto 148`),
// next to the peer routes' 147, so neither removes the other's.
const ServiceRouteProtocol = "148"

// route routes the service network to ServiceRouteDev once per CIDR.
func (p *Proxy) route(cidr string) error {
	if p.cfg.ServiceRouteDev == "" || cidr == "" || cidr == p.routed {
		return nil
	}
	err := network.InNetNS(p.cfg.NetNS, func() error {
		if p.routed != "" {
			_ = exec.Command("ip", "route", "del", p.routed, "proto", ServiceRouteProtocol).Run()
		}
		// A host with a default route (any real one) needs nothing.
		if pfx, err := netip.ParsePrefix(cidr); err == nil {
			if exec.Command("ip", "route", "get", pfx.Addr().Next().String()).Run() == nil {
				return nil
			}
		}
		if exec.Command("ip", "link", "show", p.cfg.ServiceRouteDev).Run() != nil {
			for _, args := range [][]string{{"link", "add", p.cfg.ServiceRouteDev, "type", "bridge"}, {"link", "set", p.cfg.ServiceRouteDev, "up"}} {
				if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
					return fmt.Errorf("service rules: %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
				}
			}
		}
		out, err := exec.Command("ip", "route", "replace", cidr, "dev", p.cfg.ServiceRouteDev, "proto", ServiceRouteProtocol).CombinedOutput()
		if err != nil {
			return fmt.Errorf("service rules: route %s to %s: %v: %s", cidr, p.cfg.ServiceRouteDev, err, strings.TrimSpace(string(out)))
		}
		return nil
	})
	if err == nil {
		p.routed = cidr
	}
	return err
}

// Close stops the health-check ports; the rules stay, so Services keep
// working while the agent restarts.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.health.close()
}
