// Package hads is the on-disk format of HA's heartbeat datastores, shared
// by the hosts' HA process (fdm), the host agent and vcenter: a directory on
// storage every host of a cluster mounts (the lab's shared directory, an NFS
// export in production), the analog of vSphere HA's .vSphere-HA folder.
//
//	ROOT/.podsphere-ha/hosts/<host path, escaped>.json   one per host, rewritten every heartbeat
//	ROOT/.podsphere-ha/locks/<VM UID>.json               one per running protected VM
//
// Every write is a whole-file replace (temporary file, then rename), so a
// reader sees the old content or the new one, never half of either. Times
// are the writer's clock; readers on other machines allow for skew with
// ha.Timings' margins.
package hads

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/podsphere/podsphere/api"
)

// Dir is the folder inside a heartbeat datastore that HA owns.
const Dir = ".podsphere-ha"

// Heartbeat is what a host's HA process writes about itself.
type Heartbeat struct {
	Host    string    `json:"host"`    // inventory path, /dc1/host/c1/esx-01
	Address string    `json:"address"` // the host's management address (an isolation address for its peers)
	Time    time.Time `json:"time"`    // when this heartbeat was written
	// Isolated: the host lost vcenter, its peers and its isolation
	// addresses; IsolatedSince is when it concluded so.
	Isolated      bool      `json:"isolated,omitempty"`
	IsolatedSince time.Time `json:"isolatedSince,omitzero"`
	// Response is the isolation response it applied ("" when not isolated).
	Response string `json:"response,omitempty"`
	// ConfigRead is when the host's HA process last read the cluster's HA
	// settings from vcenter: a setting changed after it is not known there
	// yet (ha.drill waits for it before injecting a failure).
	ConfigRead time.Time `json:"configRead,omitzero"`
}

// Lock states.
const (
	// Held: the VM runs (or is starting) on Host, which renews the lock.
	Held = "held"
	// Released: Host stopped the VM on its own (the isolation response) and
	// says so; vcenter may restart it elsewhere at once.
	Released = "released"
)

// Lock is a VM's lock file, the analog of a VMFS lock on the VM's files:
// the host running the VM renews it; a host that can no longer renew it
// stops the VM (the fence in the VM's own process tree); another host takes
// it only once it has lapsed or was released.
type Lock struct {
	UID     string    `json:"uid"`
	VM      string    `json:"vm"`   // inventory path, for people reading the directory
	Host    string    `json:"host"` // owner: inventory path of the host
	State   string    `json:"state"`
	Renewed time.Time `json:"renewed"`
	// Reason says why a released lock was released ("isolation response powerOff").
	Reason string `json:"reason,omitempty"`
}

// Age is how long ago the lock was last renewed, seen at now.
func (l Lock) Age(now time.Time) time.Duration { return now.Sub(l.Renewed) }

// HostsDir and LocksDir are the two folders under root.
func HostsDir(root string) string { return filepath.Join(root, Dir, "hosts") }
func LocksDir(root string) string { return filepath.Join(root, Dir, "locks") }

// HeartbeatFile is where host (an inventory path) writes its heartbeat.
func HeartbeatFile(root, host string) string {
	return filepath.Join(HostsDir(root), url.PathEscape(host)+".json")
}

// LockFile is the lock of the VM with this UID.
func LockFile(root, uid string) string {
	return filepath.Join(LocksDir(root), uid+".json")
}

// CheckRoot says whether root can serve as a heartbeat datastore: an
// existing directory this process can write to. It creates HA's folders.
func CheckRoot(root string) error {
	if root == "" || !filepath.IsAbs(root) {
		return fmt.Errorf("heartbeat datastore %q: want an absolute directory path: %w", root, api.ErrInvalid)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("heartbeat datastore %s: %v: %w", root, err, api.ErrInvalid)
	}
	if !fi.IsDir() {
		return fmt.Errorf("heartbeat datastore %s is not a directory: %w", root, api.ErrInvalid)
	}
	for _, d := range []string{HostsDir(root), LocksDir(root)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("heartbeat datastore %s: %v: %w", root, err, api.ErrUnavailable)
		}
	}
	return nil
}

// WriteHeartbeat replaces hb's heartbeat file on root.
func WriteHeartbeat(root string, hb Heartbeat) error {
	return writeJSON(HeartbeatFile(root, hb.Host), hb)
}

// ReadHeartbeats returns every host's last heartbeat on root, by host
// path. A file that cannot be parsed (a host writing a newer format, a
// torn copy left by a foreign tool) is skipped, not fatal.
func ReadHeartbeats(root string) (map[string]Heartbeat, error) {
	out := map[string]Heartbeat{}
	err := readDir(HostsDir(root), func(b []byte) {
		var hb Heartbeat
		if json.Unmarshal(b, &hb) == nil && hb.Host != "" {
			out[hb.Host] = hb
		}
	})
	return out, err
}

// ReadLock reads one VM's lock; ok is false when there is none.
func ReadLock(root, uid string) (l Lock, ok bool, err error) {
	b, err := os.ReadFile(LockFile(root, uid))
	if errors.Is(err, os.ErrNotExist) {
		return Lock{}, false, nil
	}
	if err != nil {
		return Lock{}, false, fmt.Errorf("reading the lock of %s: %v: %w", uid, err, api.ErrUnavailable)
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return Lock{}, false, fmt.Errorf("lock file %s: %v: %w", LockFile(root, uid), err, api.ErrInvalid)
	}
	return l, true, nil
}

// ReadLocks returns every lock on root by VM UID.
func ReadLocks(root string) (map[string]Lock, error) {
	out := map[string]Lock{}
	err := readDir(LocksDir(root), func(b []byte) {
		var l Lock
		if json.Unmarshal(b, &l) == nil && l.UID != "" {
			out[l.UID] = l
		}
	})
	return out, err
}

// WriteLock replaces l's lock file. Callers decide whether they may (Take).
func WriteLock(root string, l Lock) error {
	return writeJSON(LockFile(root, l.UID), l)
}

// Take makes host the holder of the VM's lock at now, unless another host
// holds it and renewed it within lapse (ha.Timings' LockLease+LockMargin):
// then it fails with api.ErrConflict naming the holder, and the VM must not
// start. A lock released by its holder may be taken only when
// takeReleased is set: the agent sets it when vcenter placed the VM here
// (it is connected), never on a restart it decided alone, so an isolated
// host does not undo its own isolation response.
func Take(root, uid, vm, host string, now time.Time, lapse time.Duration, takeReleased bool) error {
	l, ok, err := ReadLock(root, uid)
	if err != nil && !errors.Is(err, api.ErrInvalid) {
		return err
	}
	if ok {
		switch {
		case l.State == Released && !takeReleased:
			return fmt.Errorf("%s was stopped by %s (%s): it starts again only when vcenter places it: %w", vm, api.Base(l.Host), l.Reason, api.ErrConflict)
		case l.State == Held && l.Host != host && l.Age(now) < lapse:
			return fmt.Errorf("%s is locked by host %s (renewed %s ago, lapses after %s): it may still run there: %w",
				vm, api.Base(l.Host), l.Age(now).Round(time.Millisecond), lapse, api.ErrConflict)
		}
	}
	return WriteLock(root, Lock{UID: uid, VM: vm, Host: host, State: Held, Renewed: now})
}

// Remove deletes the VM's lock if host holds it (a VM stopped or deleted
// normally); another host's lock is left alone.
func Remove(root, uid, host string) error {
	l, ok, err := ReadLock(root, uid)
	if err != nil || !ok || l.Host != host {
		return err
	}
	if err := os.Remove(LockFile(root, uid)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the lock of %s: %v: %w", l.VM, err, api.ErrUnavailable)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("heartbeat datastore: %v: %w", err, api.ErrUnavailable)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("heartbeat datastore: %v: %w", err, api.ErrUnavailable)
	}
	return nil
}

func readDir(dir string, each func([]byte)) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("heartbeat datastore: %v: %w", err, api.ErrUnavailable)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // replaced or removed while we listed
		}
		each(b)
	}
	return nil
}
