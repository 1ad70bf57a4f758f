package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// lockView is the part of internal/hads.Lock the fence reads. It is copied,
// not imported, so the fence stays a small standard-library binary; a test
// reads locks written by hads to keep the two in step.
type lockView struct {
	UID     string    `json:"uid"`
	VM      string    `json:"vm"`
	Host    string    `json:"host"`
	State   string    `json:"state"`
	Renewed time.Time `json:"renewed"`
	Reason  string    `json:"reason"`
}

const (
	stateHeld     = "held"
	stateReleased = "released"
)

func readLock(file string) (lockView, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return lockView{}, fmt.Errorf("reading the VM's lock: %w", err)
	}
	var l lockView
	if err := json.Unmarshal(b, &l); err != nil {
		return lockView{}, fmt.Errorf("lock file %s: %w", file, err)
	}
	return l, nil
}

// fence is the decision, apart from the process handling: it remembers
// the last renewal it saw that was valid for this host.
type fence struct {
	file  string
	host  string
	lease time.Duration

	renewed time.Time // last valid renewal seen; zero before any
	lost    string    // why the lock is lost for good (another host, released)
}

// observe takes one read of the lock. A lock that names another host or
// was released is lost for good; a renewal for this host moves the lease
// on. A lock file that is missing or unreadable changes nothing: the lease
// then runs out on its own.
func (f *fence) observe(l lockView) {
	switch {
	case l.Host != f.host:
		f.lost = fmt.Sprintf("the VM's lock is held by host %s", l.Host)
	case l.State == stateReleased:
		f.lost = fmt.Sprintf("the VM's lock was released (%s)", l.Reason)
	case l.State != stateHeld:
		f.lost = fmt.Sprintf("the VM's lock is in state %q", l.State)
	case l.Renewed.After(f.renewed):
		f.renewed = l.Renewed
	}
}

// check says whether the VM must die at now, and why. When read is set, l
// is a fresh read to observe first.
func (f *fence) check(l lockView, read bool, now time.Time) (kill bool, why string) {
	if read {
		f.observe(l)
	}
	if f.lost != "" {
		return true, f.lost
	}
	if f.renewed.IsZero() {
		return true, "the VM's lock was never renewed"
	}
	if age := now.Sub(f.renewed); age >= f.lease {
		return true, fmt.Sprintf("the VM's lock was last renewed %s ago, beyond its %s lease", age.Round(time.Millisecond), f.lease)
	}
	return false, ""
}
