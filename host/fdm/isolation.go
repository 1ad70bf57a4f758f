package fdm

import (
	"time"
)

// Probe is one reachability check of one address at one tick.
type Probe struct {
	Addr      string // host:port
	Kind      string // vcenter, peer or isolation address, for the logs
	Reachable bool
}

// Isolation decides whether the host is isolated from its probes, one
// tick at a time: isolated once vcenter, every peer and every isolation
// address have been unreachable for Detection; no longer isolated at the
// first tick any of them answers. It does no I/O and reads no clock.
type Isolation struct {
	Detection time.Duration

	silentSince time.Time // first tick of the current run of all-unreachable ticks
	isolated    bool
	since       time.Time
}

// Observe takes the probes of the tick at now and says whether the
// verdict changed. A tick with no probe at all (nothing to ask) proves
// nothing either way and changes nothing.
func (s *Isolation) Observe(now time.Time, probes []Probe) (changed bool) {
	if len(probes) == 0 {
		return false
	}
	for _, p := range probes {
		if p.Reachable {
			s.silentSince = time.Time{}
			if s.isolated {
				s.isolated, s.since = false, time.Time{}
				return true
			}
			return false
		}
	}
	if s.silentSince.IsZero() {
		s.silentSince = now
	}
	if !s.isolated && now.Sub(s.silentSince) >= s.Detection {
		s.isolated, s.since = true, now
		return true
	}
	return false
}

// Isolated is the verdict and since when it holds.
func (s *Isolation) Isolated() (bool, time.Time) { return s.isolated, s.since }

// Restore puts back a verdict an earlier FDM process reached (read from its
// state directory), so a restart during isolation does not reset it.
func (s *Isolation) Restore(since time.Time) {
	s.isolated, s.since, s.silentSince = true, since, since
}
