// Package halock is the host side of HA's VM locks (internal/hads): where a
// host keeps them, when it may take one before a VM starts, and what the
// fence inside each protected VM is told. The host agent, its containerd
// driver and the host's HA process (host/fdm) share it so that they agree.
//
// With heartbeat datastores, a VM's lock lives on the first of them (every
// host of the cluster mounts it, so the lock is what keeps two hosts from
// running the VM); the heartbeats go on all of them. Without any, the locks
// live in the host's state directory, where no other host sees them: they
// then only serve self-fencing, the fence killing the VM FenceTime after
// the host's HA process stopped renewing (it stops when the host is
// isolated, or when vcenter reports the host not responding).
package halock

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/internal/hads"
)

// Config names the host and its lock storage.
type Config struct {
	Host       string   // inventory path, /dc1/host/c1/esx-01
	Datastores []string // heartbeat datastores (absolute directories); may be empty
	StateDir   string   // the host's state directory: the lock root without datastores
	Timings    ha.Timings
}

// Locks is one host's view of its VMs' locks.
type Locks struct {
	host        string
	root        string
	selfFencing bool
	lease       time.Duration // what the fence enforces
	lapse       time.Duration // after which another host may take a lock
}

// New checks the lock root (creating HA's folders in it) and returns the
// host's locks.
func New(cfg Config) (*Locks, error) {
	if cfg.Host == "" {
		return nil, fmt.Errorf("HA locks: host is empty: %w", api.ErrInvalid)
	}
	if cfg.Timings.LockLease <= 0 {
		cfg.Timings = ha.DefaultTimings()
	}
	for _, ds := range cfg.Datastores {
		if err := hads.CheckRoot(ds); err != nil {
			return nil, err
		}
	}
	l := &Locks{host: cfg.Host}
	if len(cfg.Datastores) > 0 {
		l.root = cfg.Datastores[0]
		l.lease = cfg.Timings.LockLease
		l.lapse = cfg.Timings.LockLease + cfg.Timings.LockMargin
		return l, nil
	}
	if cfg.StateDir == "" {
		return nil, fmt.Errorf("HA locks: no heartbeat datastore and no state directory: %w", api.ErrInvalid)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("HA locks: state directory: %v: %w", err, api.ErrUnavailable)
	}
	if err := hads.CheckRoot(cfg.StateDir); err != nil {
		return nil, err
	}
	l.root, l.selfFencing = cfg.StateDir, true
	l.lease = cfg.Timings.FenceTime
	l.lapse = cfg.Timings.FenceTime + cfg.Timings.FenceMargin
	return l, nil
}

// Host is the inventory path locks are taken for.
func (l *Locks) Host() string { return l.host }

// Root is the hads root holding the locks.
func (l *Locks) Root() string { return l.root }

// SelfFencing says the locks live in the state directory (no datastore).
func (l *Locks) SelfFencing() bool { return l.selfFencing }

// Lease is how long a VM's fence lets it run after the last renewal:
// LockLease, or FenceTime when self-fencing.
func (l *Locks) Lease() time.Duration { return l.lease }

// Dir is the folder holding every lock file (what the fence mounts).
func (l *Locks) Dir() string { return hads.LocksDir(l.root) }

// File is the VM's lock file.
func (l *Locks) File(uid string) string { return hads.LockFile(l.root, uid) }

// Acquire takes the VM's lock before this host starts it. Alone (confirmed
// false: a restart the host decides by itself, the agent offline) it only
// renews a lock this host holds and renewed within the lease, or makes one
// where there is none; a lock that lapsed or was released here, or that
// another host holds, needs confirmed: the agent has just read from vcenter
// that the VM is placed on this host. Even then a lock another host renewed
// within LockLease+LockMargin is refused. Refusals wrap api.ErrConflict and
// say who holds the lock.
func (l *Locks) Acquire(uid, vm string, now time.Time, confirmed bool) error {
	cur, ok, err := hads.ReadLock(l.root, uid)
	if err != nil && !errors.Is(err, api.ErrInvalid) {
		return err
	}
	if ok && !confirmed {
		switch {
		case cur.State == hads.Released:
			return fmt.Errorf("%s was stopped by %s (%s): it starts again only when vcenter places it: %w", vm, api.Base(cur.Host), cur.Reason, api.ErrConflict)
		case cur.Host != l.host && cur.Age(now) < l.lapse:
			return fmt.Errorf("%s is locked by host %s (renewed %s ago): it may still run there: %w", vm, api.Base(cur.Host), cur.Age(now).Round(time.Millisecond), api.ErrConflict)
		case cur.Host != l.host:
			return fmt.Errorf("%s's lock was last held by host %s: it starts here only when vcenter places it: %w", vm, api.Base(cur.Host), api.ErrConflict)
		case cur.Age(now) >= l.lease:
			return fmt.Errorf("%s's lock lapsed %s ago (its fence stopped it): it starts again only when vcenter places it: %w",
				vm, (cur.Age(now) - l.lease).Round(time.Millisecond), api.ErrConflict)
		}
	}
	return hads.Take(l.root, uid, vm, l.host, now, l.lapse, confirmed)
}

// Release removes the VM's lock after a normal stop or delete; a lock
// another host holds is left alone.
func (l *Locks) Release(uid string) error { return hads.Remove(l.root, uid, l.host) }
