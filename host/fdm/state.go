package fdm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/podsphere/podsphere/api"
)

// Files in the FDM's state directory.
const (
	LockFileName  = "fdm.lock"       // flock: one FDM per host
	PidFileName   = "fdm.pid"        // the running FDM's pid
	CacheFileName = "fdm-state.json" // cluster settings, peers, isolation verdict
)

// cache is what the FDM learned from vcenter, and its isolation verdict,
// kept in the state directory so an FDM restarted during isolation, with
// vcenter out of reach, still knows the isolation response and its peers.
type cache struct {
	Fetched time.Time    `json:"fetched,omitzero"`
	HA      api.HAConfig `json:"ha"`
	// Responses are the VMs' isolation response overrides, by UID.
	Responses map[string]string `json:"responses,omitempty"`
	// Peers are the other hosts' gossip addresses (host:port), by path.
	Peers map[string]string `json:"peers,omitempty"`
	// HostState is vcenter's last word on this host (connected, notResponding, ...).
	HostState string `json:"hostState,omitempty"`
	// Confirmed is when vcenter last said the host is connected (any state
	// but notResponding).
	Confirmed     time.Time `json:"confirmed,omitzero"`
	IsolatedSince time.Time `json:"isolatedSince,omitzero"`
}

func readCache(dir string) cache {
	var c cache
	if b, err := os.ReadFile(filepath.Join(dir, CacheFileName)); err == nil {
		_ = json.Unmarshal(b, &c)
	}
	return c
}

func writeCache(dir string, c cache) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(dir, CacheFileName)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// singleInstance takes STATE/fdm.lock (held until the process exits, or
// release) and writes STATE/fdm.pid. A second FDM for the same host fails
// with api.ErrConflict naming the first one's pid.
func singleInstance(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("fdm: state directory %s: %v: %w", dir, err, api.ErrInvalid)
	}
	f, err := os.OpenFile(filepath.Join(dir, LockFileName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("fdm: %v: %w", err, api.ErrUnavailable)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		pid, _ := os.ReadFile(filepath.Join(dir, PidFileName))
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("fdm: another FDM (pid %s) already runs for state directory %s: %w", string(pid), dir, api.ErrConflict)
		}
		return nil, fmt.Errorf("fdm: lock %s: %v: %w", f.Name(), err, api.ErrUnavailable)
	}
	pidFile := filepath.Join(dir, PidFileName)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		f.Close()
		return nil, fmt.Errorf("fdm: %v: %w", err, api.ErrUnavailable)
	}
	return func() {
		os.Remove(pidFile)
		f.Close()
	}, nil
}
