package api

import "time"

// KindHADrill is a failover drill's report, kept at /DC/drill/NAME
// (psc ha.drill.ls, ha.drill.info).
const KindHADrill = "HADrill"

// Drill modes (psc ha.drill -mode).
const (
	DrillCrash       = "crash"       // the host loses power: agent, HA process and VMs die, its link goes down
	DrillIsolate     = "isolate"     // its management link goes down; it and its storage keep running
	DrillPartition   = "partition"   // the named hosts reach each other but not the rest nor vcenter
	DrillMaintenance = "maintenance" // host.maintenance.enter -evacuate
)

// DrillModes lists the modes in the order the CLI documents them.
var DrillModes = []string{DrillCrash, DrillIsolate, DrillPartition, DrillMaintenance}

// HADrillReport is what a drill measured. Times are absolute; the offsets
// people read are relative to Injected.
type HADrillReport struct {
	Name    string   `json:"name"`
	Cluster string   `json:"cluster"`
	Hosts   []string `json:"hosts"` // the hosts the failure hit
	Mode    string   `json:"mode"`
	// IsolationResponse is the cluster's, when the mode isolates.
	IsolationResponse string `json:"isolationResponse,omitempty"`

	Injected time.Time `json:"injected"`
	// Detected is when vcenter first called a failed host notResponding.
	Detected time.Time `json:"detected,omitzero"`
	// Declared is when HA declared it failed or isolated (its event), and
	// Verdict what it concluded.
	Declared time.Time `json:"declared,omitzero"`
	Verdict  string    `json:"verdict,omitempty"`
	// HostResponse is what the host's HA process did, read from its
	// heartbeat on the datastore (isolation response), with its time.
	HostResponse   string    `json:"hostResponse,omitempty"`
	HostResponseAt time.Time `json:"hostResponseAt,omitzero"`
	// Recovered is when every protected VM ran and was ready again on a
	// live host (zero: not within the drill's timeout).
	Recovered time.Time `json:"recovered,omitzero"`
	// RecoverySeconds is Recovered - Injected, the drill's headline figure.
	RecoverySeconds float64   `json:"recoverySeconds,omitempty"`
	Healed          time.Time `json:"healed,omitzero"`
	Ended           time.Time `json:"ended"`

	VMs []HADrillVM `json:"vms"`

	CapacityBefore DrillCapacity `json:"capacityBefore"`
	CapacityAfter  DrillCapacity `json:"capacityAfter"`

	// Samples is how many times the drill read every host's runtime
	// directly, SampleIntervalMs apart; Duplicates are the VMs it saw
	// running in two places at once (any fails the drill).
	Samples          int              `json:"samples"`
	SampleIntervalMs int              `json:"sampleIntervalMs"`
	Duplicates       []DrillDuplicate `json:"duplicates,omitempty"`
	// Requests counts what a client sent through a Service that selects
	// the drill's VMs while it ran (load balancing), when there is one.
	Requests *DrillRequests `json:"requests,omitempty"`
	// ClusterIPRequests is the same stream sent to the Service's
	// clusterIP:port from inside a VM the drill leaves alone, the path
	// other VMs' traffic takes.
	ClusterIPRequests *DrillRequests `json:"clusterIPRequests,omitempty"`
	// RequestsNotSent says why a Service selects the drill's VMs but a
	// stream could not be sent (no address an outside client reaches, no
	// client VM the drill leaves alone, not in a lab).
	RequestsNotSent []string `json:"requestsNotSent,omitempty"`

	Passed   bool     `json:"passed"`
	Failures []string `json:"failures,omitempty"`
}

// HADrillVM is one protected VM's story during a drill.
type HADrillVM struct {
	VM       string `json:"vm"`
	Priority string `json:"priority"`
	From     string `json:"from"`
	To       string `json:"to,omitempty"`
	// Stopped is when the drill first saw it not running where it was.
	Stopped time.Time `json:"stopped,omitzero"`
	// Restarted is when HA registered it on its new host; Running and
	// Ready when its new host reported it so.
	Restarted time.Time `json:"restarted,omitzero"`
	Running   time.Time `json:"running,omitzero"`
	Ready     time.Time `json:"ready,omitzero"`
	// Outcome: restarted, kept running (the host kept it: isolation
	// response disabled, or not failed), not restarted (Reason says why).
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}

// DrillCapacity is the cluster's capacity and HA failover capacity at a moment.
type DrillCapacity struct {
	Hosts    int    `json:"hosts"` // connected hosts
	CPUMHz   int64  `json:"cpuMHz"`
	MemMB    int64  `json:"memMB"`
	Failover string `json:"failover,omitempty"` // as admission control words it
}

// DrillDuplicate is a VM seen running on more than one host at once.
type DrillDuplicate struct {
	VM    string    `json:"vm"`
	Hosts []string  `json:"hosts"`
	At    time.Time `json:"at"`
}

// DrillRequests are the requests a drill sent through a Service.
type DrillRequests struct {
	Service string `json:"service"`
	// Target is where they went (http://ADDRESS:PORT/: the Service's
	// LoadBalancer address or a NodePort on a host the drill does not fail,
	// or its clusterIP), From the namespace or machine they were sent from
	// (for the ClusterIP stream: "VM NAME on HOST").
	Target string `json:"target,omitempty"`
	From   string `json:"from,omitempty"`
	// FromVM and FromHost name the client VM of a ClusterIP stream.
	FromVM   string `json:"fromVM,omitempty"`
	FromHost string `json:"fromHost,omitempty"`
	// IntervalMs is the time between two requests' starts, TimeoutMs how
	// long one may take before it counts as failed.
	IntervalMs int `json:"intervalMs,omitempty"`
	TimeoutMs  int `json:"timeoutMs,omitempty"`
	Sent       int `json:"sent"`
	Failed     int `json:"failed"`
	// LongestGapMs is the longest time no request was answered, from
	// GapFrom to GapTo.
	LongestGapMs int64     `json:"longestGapMs"`
	GapFrom      time.Time `json:"gapFrom,omitzero"`
	GapTo        time.Time `json:"gapTo,omitzero"`
	// Outages are the runs of consecutive failed requests.
	Outages   []DrillOutage `json:"outages,omitempty"`
	LastError string        `json:"lastError,omitempty"`
}

// DrillOutage is a run of consecutive failed requests: from the first
// one's start until the last one was given up on.
type DrillOutage struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Failed int       `json:"failed"`
}
