package gossip

import (
	"fmt"
	"math"
	"time"

	"github.com/podsphere/podsphere/api"
)

// Timings holds every timing knob of host membership, for vcenter and host
// agents alike: both sides of the gossip must agree on them, or one side
// suspects the other too early. Defaults live in DefaultTimings with the
// reason beside each value.
type Timings struct {
	// ProbeInterval is how often each member probes one random peer.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a direct probe waits for its ack before
	// indirect probes through other members are tried; the 99th percentile
	// of the network's round trip.
	ProbeTimeout time.Duration
	// GossipInterval is how often queued state changes are sent to a few
	// random peers outside the probe messages they piggyback on.
	GossipInterval time.Duration
	// SuspicionMult scales how long a member that missed its probe stays
	// suspect before it is declared failed:
	// SuspicionMult * max(1, log10(N)) * ProbeInterval.
	SuspicionMult int
	// SuspicionMaxTimeoutMult bounds the suspicion time when peers do not
	// confirm it: at most this many times the base suspicion time.
	SuspicionMaxTimeoutMult int
	// PushPullInterval is how often a member swaps its full state with one
	// random peer over TCP; the backstop that heals anything gossip missed.
	PushPullInterval time.Duration
	// GossipToTheDeadTime is how long failed members are still gossiped to
	// (so they can rejoin quickly) before they are forgotten.
	GossipToTheDeadTime time.Duration
	// DeadNodeReclaimTime is how long a failed host's name stays bound to
	// its old address. After it, the name may come back from a new address
	// (a restarted agent on a new port). Zero would pin the name until the
	// failed member is forgotten (GossipToTheDeadTime), so a restarted host
	// on a new port would be refused for that long.
	DeadNodeReclaimTime time.Duration
	// TCPTimeout bounds one push/pull exchange or TCP fallback probe.
	TCPTimeout time.Duration
	// LeaveTimeout is how long a leave waits for its message to go out: memberlist
	// waits until it was sent RetransmitMult(4)*ceil(log10(N+1)) times, to up to
	// 3 peers per gossip round.
	LeaveTimeout time.Duration
	// LastSeenInterval is how often vcenter re-reports every live host to its
	// Handler (HostAlive), so the inventory's lastSeen stays fresh. Zero turns
	// the refresh off.
	LastSeenInterval time.Duration

	// Host agent side.

	// StatusInterval is how often an agent re-checks its VMs against the
	// runtime and reports their status, when it changed.
	StatusInterval time.Duration
	// RejoinInterval is how often an agent checks that it still gossips with
	// vcenter, and joins the seeds again when it does not.
	RejoinInterval time.Duration
	// RetryMin and RetryMax bound the exponential backoff of an agent's
	// retries (join, re-list after a broken watch).
	RetryMin, RetryMax time.Duration
	// StopTimeout is how long an agent lets a VM's containers stop before
	// the runtime kills them (power off, reset, delete).
	StopTimeout time.Duration
}

// DefaultTimings are tuned for a LAN: a host that stops gossiping is declared
// failed in about 3 s in a cluster of fewer than 10 members (vcenter counts),
// 4 s at worst with 3 members; see DetectionBound and docs/membership.md.
// vSphere HA takes about 15 s.
func DefaultTimings() Timings {
	return Timings{
		ProbeInterval:           500 * time.Millisecond, // each member probes one peer twice a second
		ProbeTimeout:            250 * time.Millisecond, // LAN round trips are well under 1 ms; leaves room for a busy or -race process
		GossipInterval:          200 * time.Millisecond, // memberlist's LAN default: news reaches everyone in a few rounds
		SuspicionMult:           4,                      // suspect for 4 * max(1, log10 N) * 0.5 s = 2 s below 10 members before failing
		SuspicionMaxTimeoutMult: 3,                      // without peer confirmations, at most 6 s (memberlist default is 6x)
		PushPullInterval:        15 * time.Second,       // full-state sync; memberlist scales it up beyond 32 members
		GossipToTheDeadTime:     30 * time.Second,       // keep talking to a failed host for 30 s so it rejoins on its own
		DeadNodeReclaimTime:     3 * time.Second,        // stale "dead" rumours of the old address drain in 4*ceil(log10(N+1)) gossip rounds (2.4 s up to 999 members)
		TCPTimeout:              5 * time.Second,        // a LAN push/pull of a few thousand members takes milliseconds
		LeaveTimeout:            2 * time.Second,        // 4 rounds (0.8 s) for a lone peer; then peers find the host failed instead
		LastSeenInterval:        10 * time.Second,       // lastSeen to 10 s; each refresh is one store write per host
		StatusInterval:          10 * time.Second,       // periodic VM status check; writes only on change
		RejoinInterval:          5 * time.Second,        // an agent cut off from vcenter's gossip rejoins within 5 s
		RetryMin:                250 * time.Millisecond, // first retry quickly
		RetryMax:                10 * time.Second,       // but never hammer a vcenter that is down
		StopTimeout:             10 * time.Second,       // containers get 10 s after SIGTERM, as docker stop
	}
}

// Validate names the first knob that cannot work.
func (t Timings) Validate() error {
	bad := func(f string, why string) error {
		return fmt.Errorf("timings: %s %s: %w", f, why, api.ErrInvalid)
	}
	switch {
	case t.ProbeInterval <= 0:
		return bad("ProbeInterval", "must be positive")
	case t.ProbeTimeout <= 0 || t.ProbeTimeout >= t.ProbeInterval:
		return bad("ProbeTimeout", "must be positive and shorter than ProbeInterval")
	case t.GossipInterval <= 0:
		return bad("GossipInterval", "must be positive")
	case t.SuspicionMult < 1:
		return bad("SuspicionMult", "must be at least 1")
	case t.SuspicionMaxTimeoutMult < 1:
		return bad("SuspicionMaxTimeoutMult", "must be at least 1")
	case t.PushPullInterval < 0, t.GossipToTheDeadTime < 0, t.DeadNodeReclaimTime < 0, t.LastSeenInterval < 0:
		return bad("intervals", "must not be negative")
	case t.TCPTimeout <= 0:
		return bad("TCPTimeout", "must be positive")
	}
	return nil
}

// ValidateAgent also checks the knobs only host agents use.
func (t Timings) ValidateAgent() error {
	if err := t.Validate(); err != nil {
		return err
	}
	bad := func(f string) error {
		return fmt.Errorf("timings: %s must be positive: %w", f, api.ErrInvalid)
	}
	switch {
	case t.StatusInterval <= 0:
		return bad("StatusInterval")
	case t.RejoinInterval <= 0:
		return bad("RejoinInterval")
	case t.RetryMin <= 0 || t.RetryMax < t.RetryMin:
		return fmt.Errorf("timings: RetryMin must be positive and at most RetryMax: %w", api.ErrInvalid)
	case t.StopTimeout < 0:
		return fmt.Errorf("timings: StopTimeout must not be negative: %w", api.ErrInvalid)
	}
	return nil
}

// Suspicion is memberlist's suspicion timeout for an n-member cluster:
// SuspicionMult * max(1, log10(n)) * ProbeInterval. It is the time from a
// failed probe to "failed" when peers confirm the suspicion, and the floor
// of it otherwise.
func (t Timings) Suspicion(n int) time.Duration {
	scale := math.Max(1, math.Log10(math.Max(1, float64(n))))
	return time.Duration(t.SuspicionMult) * time.Duration(scale*1000) * t.ProbeInterval / 1000
}

// ExpectedDetection is the usual time from a host going silent to vcenter
// declaring it failed in an n-member cluster: about one probe interval until
// some member probes it, one for the failed probe round (direct, indirect
// and TCP probes), then the suspicion time, which peers' confirmations keep
// at its minimum.
func (t Timings) ExpectedDetection(n int) time.Duration {
	return 2*t.ProbeInterval + t.Suspicion(n)
}

// DetectionBound is the worst case of the same, counting on vcenter's own
// probes alone. vcenter probes its n-1 peers round-robin in rounds shuffled
// anew, so a peer probed first in one round and last in the next goes
// 2n-3 intervals unprobed; the failed round adds one more. The suspicion
// time then is the base time when the cluster is too small to expect
// confirmations (memberlist wants SuspicionMult-2 of them, from n-2 possible
// confirmers), else up to SuspicionMaxTimeoutMult times it if none arrive.
// It assumes vcenter itself is healthy (memberlist stretches the probe
// interval of a member that misses its own acks).
func (t Timings) DetectionBound(n int) time.Duration {
	if n < 2 {
		n = 2
	}
	probe := time.Duration(2*n-2) * t.ProbeInterval
	s := t.Suspicion(n)
	if k := t.SuspicionMult - 2; k > 0 && n-2 >= k {
		s *= time.Duration(t.SuspicionMaxTimeoutMult)
	}
	return probe + s
}
