package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// StateFile is the lab's record of everything it made, in DIR.
const StateFile = "state.json"

// State is what `up` made, written after every step so `down` can undo a
// lab that never finished or whose processes were killed.
type State struct {
	Prefix  string    `json:"prefix"`
	Dir     string    `json:"dir"`
	Created time.Time `json:"created"`
	Runtime string    `json:"runtime"`

	// NetNS are the named network namespaces the lab created (mgmt, vc, hosts).
	NetNS []string `json:"netns,omitempty"`
	// Containerd is the daemon the hosts use; Private when the lab started it.
	Containerd *Containerd `json:"containerd,omitempty"`
	// CtrdNamespaces are the containerd namespaces the hosts were told to use.
	CtrdNamespaces []string `json:"containerdNamespaces,omitempty"`
	// Processes are the lab's daemons, in start order.
	Processes []Process `json:"processes,omitempty"`
	Hosts     []Host    `json:"hosts,omitempty"`

	VCenterURL string `json:"vcenterURL,omitempty"` // inside the lab: http://10.99.0.2:8989
	LocalURL   string `json:"localURL,omitempty"`   // from the machine's shell: http://127.0.0.1:PORT
	Ready      bool   `json:"ready"`                // up finished
}

// Containerd is the containerd the lab's hosts talk to.
type Containerd struct {
	Socket  string `json:"socket"`
	Private bool   `json:"private"`
	Root    string `json:"root,omitempty"`   // private only: everything it keeps, under DIR
	Config  string `json:"config,omitempty"` // private only
}

// Process is one daemon the lab started.
type Process struct {
	Name string `json:"name"` // containerd, vcenter, proxy, esx-01, esx-01-fdm...
	// Host is the lab host the daemon belongs to ("" for vcenter, proxy,
	// containerd): host.crash kills and host.restart starts every one of them.
	Host  string   `json:"host,omitempty"`
	PID   int      `json:"pid"`
	Start uint64   `json:"start"`           // /proc/PID/stat starttime: a reused PID is not ours
	NetNS string   `json:"netns,omitempty"` // "" = the root namespace
	Args  []string `json:"args"`
	Log   string   `json:"log"`
}

// Host is one host agent of the lab.
type Host struct {
	Name      string `json:"name"`
	NetNS     string `json:"netns"`
	Address   string `json:"address"`
	Namespace string `json:"containerdNamespace,omitempty"`

	// Fault is what the lab last did to the host: "" (healthy), FaultCrashed,
	// FaultIsolated or FaultPartitioned; FaultSince is when.
	Fault      string    `json:"fault,omitempty"`
	FaultSince time.Time `json:"faultSince,omitempty"`
	// Partition is the bridge (in the management namespace) the host's port
	// was moved to by `lab partition`; "" when on the management bridge.
	Partition string `json:"partition,omitempty"`
}

func statePath(dir string) string { return filepath.Join(dir, StateFile) }

// LoadState reads DIR/state.json; a missing file is (nil, nil).
func LoadState(dir string) (*State, error) {
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %v", statePath(dir), err)
	}
	return &s, nil
}

// save writes the state atomically (temp file, fsync, rename).
func (s *State) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(s.Dir) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(s.Dir))
}

func (s *State) addNetNS(name string) error {
	if !slices.Contains(s.NetNS, name) {
		s.NetNS = append(s.NetNS, name)
	}
	return s.save()
}

func (s *State) addProcess(p Process) error {
	s.Processes = append(s.Processes, p)
	return s.save()
}

// host finds a host of the lab by name.
func (s *State) host(name string) *Host {
	for i := range s.Hosts {
		if s.Hosts[i].Name == name {
			return &s.Hosts[i]
		}
	}
	return nil
}

// hostProcesses are the indexes in s.Processes of the host's daemons (its
// agent, its FDM...), in start order. A state written before Process.Host
// existed names the agent after its host.
func (s *State) hostProcesses(host string) []int {
	var idx []int
	for i, p := range s.Processes {
		if p.Host == host || (p.Host == "" && p.Name == host) {
			idx = append(idx, i)
		}
	}
	return idx
}

func (s *State) process(name string) *Process {
	for i := range s.Processes {
		if s.Processes[i].Name == name {
			return &s.Processes[i]
		}
	}
	return nil
}

// procStart is field 22 of /proc/PID/stat (start time in clock ticks), and
// whether the process exists and is not a zombie.
func procStart(pid int) (uint64, bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// comm may hold spaces and parentheses: fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, false
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false
	}
	return start, true
}

// Alive says whether the recorded process is still running (same PID and start time).
func (p Process) Alive() bool {
	start, ok := procStart(p.PID)
	return ok && start == p.Start
}
