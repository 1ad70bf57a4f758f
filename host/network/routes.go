package network

import (
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strings"

	"github.com/coreos/go-iptables/iptables"

	"github.com/podsphere/podsphere/api"
)

// RouteProtocol marks the routes SetPeerRoutes owns (`ip route ... proto 147`),
// so it can remove stale ones without touching anybody else's.
const RouteProtocol = "147"

// Peer is another host: its pod subnet is reached via its address.
type Peer struct {
	Subnet string // e.g. 10.244.2.0/24
	Via    string // the peer host's address on a shared link
}

// SetPeerRoutes makes the host's routes to other hosts' pod subnets exactly
// peers: it adds or replaces what is missing and removes what is stale. It
// also exempts those subnets from masquerade.
func (n *Network) SetPeerRoutes(peers []Peer) error {
	want := map[string]string{}
	for _, p := range peers {
		_, sn, err := net.ParseCIDR(p.Subnet)
		if err != nil {
			return fmt.Errorf("network: peer subnet %q: %w", p.Subnet, api.ErrInvalid)
		}
		if net.ParseIP(p.Via) == nil {
			return fmt.Errorf("network: peer address %q: %w", p.Via, api.ErrInvalid)
		}
		if sn.String() == n.subnet.String() {
			continue // our own subnet is on the bridge
		}
		want[sn.String()] = p.Via
	}
	err := InNetNS(n.cfg.HostNetNS, func() error {
		have, err := ownRoutes()
		if err != nil {
			return err
		}
		for dst, via := range want {
			if have[dst] == via {
				continue
			}
			if err := ip("route", "replace", dst, "via", via, "proto", RouteProtocol); err != nil {
				return err
			}
		}
		for dst := range have {
			if _, ok := want[dst]; !ok {
				if err := ip("route", "del", dst, "proto", RouteProtocol); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("network: peer routes: %w", err)
	}
	n.mu.Lock()
	n.peers = append([]Peer(nil), peers...)
	n.mu.Unlock()
	return n.ensureMasquerade()
}

// PeerRoutes returns the routes SetPeerRoutes owns, destination -> gateway.
func (n *Network) PeerRoutes() (map[string]string, error) {
	var have map[string]string
	err := InNetNS(n.cfg.HostNetNS, func() error {
		var err error
		have, err = ownRoutes()
		return err
	})
	return have, err
}

func ownRoutes() (map[string]string, error) {
	out, err := exec.Command("ip", "-j", "-4", "route", "show", "proto", RouteProtocol).Output()
	if err != nil {
		return nil, fmt.Errorf("ip route show: %w", err)
	}
	var routes []struct {
		Dst     string `json:"dst"`
		Gateway string `json:"gateway"`
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		if err := json.Unmarshal([]byte(s), &routes); err != nil {
			return nil, fmt.Errorf("ip route show: %w", err)
		}
	}
	have := map[string]string{}
	for _, r := range routes {
		have[r.Dst] = r.Gateway
	}
	return have, nil
}

func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ensureMasquerade (re)writes the host's masquerade chain: traffic from the
// pod subnet is NATed unless it goes to the pod subnet, the cluster CIDR or a
// peer's subnet (kubenet: pod IPs are routable across hosts).
func (n *Network) ensureMasquerade() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	exempt := []string{n.subnet.String()}
	if n.cfg.ClusterCIDR != "" {
		exempt = append(exempt, n.cfg.ClusterCIDR)
	}
	var peers []string
	for _, p := range n.peers {
		peers = append(peers, p.Subnet)
	}
	sort.Strings(peers)
	exempt = append(exempt, peers...)
	chain := n.cfg.MasqChain
	comment := "podsphere masquerade for " + n.subnet.String()
	applied := strings.Join(exempt, ",")
	if n.masqApplied == applied {
		return nil
	}
	err := InNetNS(n.cfg.HostNetNS, func() error {
		ipt, err := iptables.New()
		if err != nil {
			return fmt.Errorf("network: iptables: %w", err)
		}
		if err := ipt.ClearChain("nat", chain); err != nil {
			return fmt.Errorf("network: nat chain %s: %w", chain, err)
		}
		for _, dst := range exempt {
			if err := ipt.Append("nat", chain, "-d", dst, "-j", "RETURN"); err != nil {
				return err
			}
		}
		if err := ipt.Append("nat", chain, "!", "-d", "224.0.0.0/4", "-j", "MASQUERADE"); err != nil {
			return err
		}
		return ipt.AppendUnique("nat", "POSTROUTING", "-s", n.subnet.String(), "-m", "comment", "--comment", comment, "-j", chain)
	})
	if err == nil {
		n.masqApplied = applied
	}
	return err
}

// RemoveHostRules deletes what the network added to the host's iptables
// (the masquerade chain and its jump) and its peer routes. The bridge stays.
func (n *Network) RemoveHostRules() error {
	comment := "podsphere masquerade for " + n.subnet.String()
	n.mu.Lock()
	n.masqApplied = ""
	n.mu.Unlock()
	return InNetNS(n.cfg.HostNetNS, func() error {
		if have, err := ownRoutes(); err == nil {
			for dst := range have {
				_ = ip("route", "del", dst, "proto", RouteProtocol)
			}
		}
		ipt, err := iptables.New()
		if err != nil {
			return err
		}
		if ok, err := ipt.ChainExists("nat", n.cfg.MasqChain); err != nil || !ok {
			return err
		}
		if err := ipt.DeleteIfExists("nat", "POSTROUTING", "-s", n.subnet.String(), "-m", "comment", "--comment", comment, "-j", n.cfg.MasqChain); err != nil {
			return err
		}
		return ipt.ClearAndDeleteChain("nat", n.cfg.MasqChain)
	})
}
