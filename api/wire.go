package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Wire types of the HTTP API (see docs/api.md) beyond plain objects.

// ErrorBody is every non-2xx answer. Reason names the sentinel so clients
// can map it back with errors.Is.
type ErrorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason"` // NotFound, Conflict, Invalid, QuotaExceeded, InsufficientResources, Unavailable, Unauthorized, Gone
}

// About answers GET /api/v1/about.
type About struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	APIVersion string `json:"apiVersion"`
	Revision   uint64 `json:"revision"`
	Members    int    `json:"members"`
}

// PowerRequest asks for a power operation (vm.power).
type PowerRequest struct {
	Path   string `json:"path"`
	Action string `json:"action"` // on, off, reset, suspend
}

// MigrateRequest asks for a cold migration (vm.migrate): Host is the
// destination host's path, "" to let DRS choose.
type MigrateRequest struct {
	Path string `json:"path"`
	Host string `json:"host,omitempty"`
}

// PoolInfo answers GET /api/v1/pool?path=: the pool, its usage figures and quota.
type PoolInfo struct {
	Pool *Object   `json:"pool"`
	CPU  PoolUsage `json:"cpu"`
	Mem  PoolUsage `json:"mem"`
}

// QuotaInfo answers GET /api/v1/quota?path=: limits (-1 unlimited) and what the subtree uses.
type QuotaInfo struct {
	Path   string      `json:"path"`
	Limits QuotaLimits `json:"limits"`
	Used   QuotaLimits `json:"used"`
}

// JoinRequest is sent by a host agent with the join token (POST /api/v1/hosts/join).
type JoinRequest struct {
	Name        string `json:"name"`
	Cluster     string `json:"cluster"` // /DC/host/CLUSTER
	Address     string `json:"address"` // gossip address host:port
	Runtime     string `json:"runtime"`
	CPUCapacity int64  `json:"cpuCapacityMHz"`
	MemCapacity int64  `json:"memCapacityMB"`
	// AgentAddress is the agent's own API (logs, exec, metrics), host:port.
	AgentAddress string `json:"agentAddress,omitempty"`
}

// JoinReply tells the host who it is in the inventory and how to gossip.
type JoinReply struct {
	Host       *Object   `json:"host"`
	GossipSeed []string  `json:"gossipSeed"`
	PodSubnet  string    `json:"podSubnet,omitempty"`
	Joined     time.Time `json:"joined"`
}

// ExecRequest runs a command in a VM's container (guest.run, POST /api/v1/vm/exec).
// Container "" is the VM's first container.
type ExecRequest struct {
	Path      string   `json:"path"`
	Container string   `json:"container,omitempty"`
	Command   []string `json:"command"`
}

// HostExecRequest is ExecRequest as vcenter forwards it to the VM's host
// agent (POST /exec on the agent's API): the VM by its runtime ID (UID).
type HostExecRequest struct {
	VM        string   `json:"vm"`
	Container string   `json:"container,omitempty"`
	Command   []string `json:"command"`
}

// HostVMList answers GET /vms on a host agent's API: what its runtime runs
// at this moment (runtime.List), straight from the host and not from
// vcenter's inventory. Lab drills on simulated hosts sample it.
type HostVMList struct {
	Host string   `json:"host"` // the agent's host name, esx-01
	VMs  []HostVM `json:"vms"`  // sorted by ID; empty, not null, when nothing runs
}

// HostStopRequest asks a host agent to stop one VM in its runtime (POST
// /stop on the agent's API), killing it after TimeoutSeconds. The host's HA
// process uses it on simulated hosts, whose VMs it cannot reach otherwise,
// to apply the isolation response.
type HostStopRequest struct {
	VM             string `json:"vm"` // the VM's UID
	TimeoutSeconds int64  `json:"timeoutSeconds,omitempty"`
}

// HostVM is one VM a host's runtime knows.
type HostVM struct {
	ID         string `json:"id"` // the VM's UID
	Path       string `json:"path"`
	PowerState string `json:"powerState"` // poweredOn, poweredOff, suspended
}

// ExecResult is a finished guest command: its output and exit code.
type ExecResult struct {
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	ExitCode int    `json:"exitCode"`
}

// MaxExecOutput bounds each of stdout and stderr kept from a guest command.
const MaxExecOutput = 4 << 20

// ReadErrorBody reads a non-2xx answer of vcenter or of a host agent (at
// most 1 MiB). When the body is not an ErrorBody, Error carries the HTTP
// status and the body's text instead, and ok is false.
func ReadErrorBody(resp *http.Response) (eb ErrorBody, ok bool) {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(raw, &eb) == nil && eb.Error != "" {
		return eb, true
	}
	eb.Error = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(raw)))
	return eb, false
}

// HAPlan answers GET /api/v1/ha/plan?cluster=C&fail=H1,H2 (psc ha.plan):
// what HA would do if those hosts failed now, without touching anything.
type HAPlan struct {
	Cluster string       `json:"cluster"`
	Failed  []string     `json:"failed"`
	Steps   []HAPlanStep `json:"steps"`
	// NotRestarted are the protected VMs HA could not restart, and why.
	NotRestarted []HAPlanWait `json:"notRestarted,omitempty"`
	// Unprotected are the powered-on VMs of the failed hosts HA leaves
	// down (restart priority disabled).
	Unprotected []string `json:"unprotected,omitempty"`
}

// HAPlanStep is one restart: Round 1 starts first; a round starts once the
// VMs of the previous one are ready (restart priorities, dependencies).
type HAPlanStep struct {
	Round    int    `json:"round"`
	VM       string `json:"vm"`
	Priority string `json:"priority"`
	From     string `json:"from"`
	To       string `json:"to"`
}

// HAPlanWait is a VM HA would not restart, and why.
type HAPlanWait struct {
	VM     string `json:"vm"`
	Reason string `json:"reason"`
}

// HACapacity answers GET /api/v1/ha/capacity?cluster=C (psc cluster.info):
// the cluster's HA admission control settings and its current failover
// capacity, as vSphere's cluster summary shows them. It is computed under
// the cluster's policy even while admission control is off, so an admin
// sees what turning it on would leave.
type HACapacity struct {
	Cluster                 string `json:"cluster"`
	HAEnabled               bool   `json:"haEnabled"`
	AdmissionControlEnabled bool   `json:"admissionControlEnabled"`
	// Policy is percentage or slot; HostFailuresTolerated the failures it
	// keeps capacity for.
	Policy                string `json:"policy"`
	HostFailuresTolerated int    `json:"hostFailuresTolerated"`
	// Hosts counts the hosts that give capacity (connected, not in
	// maintenance); VMs the powered-on VMs on the cluster's hosts.
	Hosts int `json:"hosts"`
	VMs   int `json:"vms"`
	// Percentage policy: capacity of the hosts, the share kept for
	// failover (the largest HostFailuresTolerated hosts), what powered-on
	// VMs reserve, and what may still be reserved.
	CPU HACapacityResource `json:"cpu"`
	Mem HACapacityResource `json:"mem"`
	// Slot policy (filled under either policy): the slot size (the largest
	// reservations), the slots of all hosts, those left once the largest
	// hosts fail (UsableSlots), the slots the powered-on VMs take, and
	// the slots still free for power-ons (UsableSlots-UsedSlots).
	SlotCPUMHz  int64 `json:"slotCpuMHz"`
	SlotMemMB   int64 `json:"slotMemMB"`
	TotalSlots  int   `json:"totalSlots"`
	UsableSlots int   `json:"usableSlots"`
	UsedSlots   int   `json:"usedSlots"`
	FreeSlots   int   `json:"freeSlots"`
}

// HACapacityResource is one resource's failover capacity (MHz or MB).
// FailoverPercent is the share of Total kept for failover (vSphere's
// configured failover capacity); CurrentPercent the unreserved share
// (vSphere's current failover capacity); Free what powered-on VMs may
// still reserve without eating into the failover share.
type HACapacityResource struct {
	Total           int64   `json:"total"`
	Failover        int64   `json:"failover"`
	Reserved        int64   `json:"reserved"`
	Free            int64   `json:"free"`
	FailoverPercent float64 `json:"failoverPercent"`
	CurrentPercent  float64 `json:"currentPercent"`
}
