// Package gossip holds the memberlist settings shared by vcenter and host
// agents: the timings both sides of the gossip must agree on, the
// memberlist configuration built from them, the key derived from the join
// token, and the logger adapter. vcenter/membership runs vcenter's member on
// top of it; host agents run a plain memberlist node with the same
// configuration, without importing anything of vcenter.
package gossip

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"

	"github.com/hashicorp/memberlist"

	"github.com/podsphere/podsphere/api"
)

// GossipKey derives the 32-byte AES-256 key that encrypts all gossip from the
// join token. With it, the token that lets a host register over HTTP is also
// what lets it gossip: a host with a wrong token cannot even join, because
// its packets do not decrypt (memberlist drops them, and with incoming
// verification on it refuses plain-text ones too), so it is never reported.
func GossipKey(joinToken string) []byte {
	k := sha256.Sum256([]byte("podsphere gossip key\x00" + joinToken))
	return k[:]
}

// MemberlistConfig builds the memberlist configuration shared by vcenter and
// host agents. bind is host:port ("127.0.0.1:7946", or port 0 to let the
// kernel choose); key is an AES key (GossipKey). The result logs nothing:
// set Logger (see Logger) to see memberlist's warnings.
func MemberlistConfig(name, bind string, key []byte, t Timings) (*memberlist.Config, error) {
	if name == "" {
		return nil, fmt.Errorf("gossip node name is empty: %w", api.ErrInvalid)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("gossip key is %d bytes, want 16, 24 or 32 (AES): %w", len(key), api.ErrInvalid)
	}
	host, portStr, err := net.SplitHostPort(bind)
	if err != nil {
		return nil, fmt.Errorf("gossip bind address %q: want HOST:PORT: %v: %w", bind, err, api.ErrInvalid)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("gossip bind address %q: bad port: %w", bind, api.ErrInvalid)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if net.ParseIP(host) == nil {
		return nil, fmt.Errorf("gossip bind address %q: host must be an IP address: %w", bind, api.ErrInvalid)
	}

	c := memberlist.DefaultLANConfig()
	c.Name = name
	c.BindAddr = host
	c.BindPort = port
	c.AdvertisePort = port // memberlist would advertise 7946 whatever we bind; port 0 is fixed up by Create
	c.SecretKey = append([]byte(nil), key...)
	c.GossipVerifyIncoming = true
	c.GossipVerifyOutgoing = true

	c.ProbeInterval = t.ProbeInterval
	c.ProbeTimeout = t.ProbeTimeout
	c.GossipInterval = t.GossipInterval
	c.SuspicionMult = t.SuspicionMult
	c.SuspicionMaxTimeoutMult = t.SuspicionMaxTimeoutMult
	c.PushPullInterval = t.PushPullInterval
	c.GossipToTheDeadTime = t.GossipToTheDeadTime
	c.DeadNodeReclaimTime = t.DeadNodeReclaimTime
	c.TCPTimeout = t.TCPTimeout

	c.LogOutput = io.Discard
	return c, nil
}

// Logger adapts l for memberlist: memberlist's [DEBUG] lines are dropped,
// warnings and errors pass. A nil l discards everything.
func Logger(l *log.Logger) *log.Logger {
	if l == nil {
		return log.New(io.Discard, "", 0)
	}
	return log.New(debugFilter{l}, "", 0)
}

type debugFilter struct{ l *log.Logger }

func (f debugFilter) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte("[DEBUG]")) {
		f.l.Print(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}
