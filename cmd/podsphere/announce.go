package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/agent"
	"github.com/podsphere/podsphere/host/announce"
)

var _ agent.LBConsumer = (*announce.Announcer)(nil)

// startAnnouncer answers ARP for the load balancer addresses vcenter gives
// this host, on iface ("" = the interface carrying the gossip address,
// "none" = answer for none), until ctx ends. It returns nil, having said
// why, when the host has no interface ARP can answer on (a host gossiping
// on loopback, as simulated hosts in tests do): such a host cannot hold an
// address, and an explicit iface that fails is an error instead.
func startAnnouncer(ctx context.Context, logger *log.Logger, iface, gossipBind string) (*announce.Announcer, error) {
	if iface == "none" {
		return nil, nil
	}
	cfg := announce.Config{Interface: iface, Logf: logger.Printf}
	if iface == "" {
		host, _, err := net.SplitHostPort(gossipBind)
		if err != nil {
			return nil, fmt.Errorf("--gossip-bind %q: %v: %w", gossipBind, err, api.ErrInvalid)
		}
		addr, err := netip.ParseAddr(host)
		if err != nil || addr.IsUnspecified() || addr.IsLoopback() {
			logger.Printf("not answering for load balancer addresses: --gossip-bind %s names no interface on the hosts' network (give --announce-interface)", gossipBind)
			return nil, nil
		}
		cfg.Address = addr
	}
	a, err := announce.New(cfg)
	if err != nil {
		if iface != "" {
			return nil, err
		}
		logger.Printf("not answering for load balancer addresses: %v", err)
		return nil, nil
	}
	go func() {
		if err := a.Run(ctx); err != nil {
			// The holder cannot answer any more; its addresses are
			// unreachable until vcenter moves them or the agent restarts.
			logger.Printf("load balancer addresses: %v", err)
		}
	}()
	logger.Printf("answering ARP for this host's load balancer addresses on %s (%s)", a.Interface().Name, a.Interface().HardwareAddr)
	return a, nil
}
