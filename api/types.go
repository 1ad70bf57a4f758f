package api

import (
	"encoding/json"
	"time"
)

// DatacenterSpec is empty today; a datacenter is a folder root.
type DatacenterSpec struct{}

// ClusterSpec carries vSphere's cluster configuration (ClusterConfigInfoEx).
type ClusterSpec struct {
	DRS   DRSConfig     `json:"drs"`
	HA    HAConfig      `json:"ha"`
	Rules []ClusterRule `json:"rules,omitempty"`
	// Groups are the VM and host groups rules refer to.
	Groups []ClusterGroup `json:"groups,omitempty"`
	// PodCIDR is the block from which each host gets its pod /24.
	PodCIDR string `json:"podCIDR,omitempty"`
	// ServiceCIDR is the block Services' cluster IPs come from: virtual
	// addresses that exist only in the hosts' rules. It must not overlap
	// any cluster's pod CIDR ("" = vcenter picks one, as for PodCIDR).
	ServiceCIDR string `json:"serviceCIDR,omitempty"`
	// NodePortRange is "FIRST-LAST", the ports NodePort Services are
	// given on every host's address ("" = Kubernetes' 30000-32767).
	NodePortRange string `json:"nodePortRange,omitempty"`
	// LoadBalancerAddresses are the addresses on the hosts' network that
	// LoadBalancer Services (and the cluster's Ingress) are given, as
	// CIDRs or "FIRST-LAST" ranges; one healthy host answers for each.
	// Empty: LoadBalancer Services get no address (and say so).
	LoadBalancerAddresses []string `json:"loadBalancerAddresses,omitempty"`
	// ClusterDomain is the DNS suffix of Service names
	// (NAME.NAMESPACE.svc.CLUSTER-DOMAIN; "" = cluster.local).
	ClusterDomain string `json:"clusterDomain,omitempty"`
}

// ClusterStatus is what vcenter decided for a cluster.
type ClusterStatus struct {
	// Ingress is the load balancer address kept for the cluster's Ingress
	// proxy (the first free one of spec.loadBalancerAddresses, empty
	// without any) and the host answering for it.
	Ingress LoadBalancerIngress `json:"ingress,omitzero"`
}

type DRSConfig struct {
	Enabled bool   `json:"enabled"`
	Mode    string `json:"mode"` // manual, partiallyAutomated, fullyAutomated
}

type HAConfig struct {
	Enabled                 bool `json:"enabled"`
	AdmissionControlEnabled bool `json:"admissionControlEnabled"`
	// HostFailuresTolerated is vSphere's "host failures cluster tolerates"
	// (at least 1 when admission control is on).
	HostFailuresTolerated int `json:"hostFailuresTolerated,omitempty"`
	// AdmissionPolicy is how admission control keeps failover capacity:
	// percentage (vSphere's cluster resource percentage, the default) or slot.
	AdmissionPolicy string `json:"admissionPolicy,omitempty"`
	// DefaultRestartPriority applies to VMs without an override
	// (disabled, lowest, low, medium, high, highest; "" = medium).
	DefaultRestartPriority string `json:"defaultRestartPriority,omitempty"`
	// IsolationResponse is what an isolated host does with its VMs:
	// disabled (leave them running, vSphere's default), powerOff, shutdown.
	IsolationResponse string `json:"isolationResponse,omitempty"`
	// IsolationAddresses are what a host that lost vcenter and its peers
	// pings before it calls itself isolated ("" = its gateway and vcenter;
	// in the lab, vcenter and the peer hosts).
	IsolationAddresses []string `json:"isolationAddresses,omitempty"`
	// ShutdownTimeoutSeconds bounds the shutdown isolation response before
	// the VM is powered off (vSphere: 300 s; 0 = that default).
	ShutdownTimeoutSeconds int `json:"shutdownTimeoutSeconds,omitempty"`
	// ReadyCondition is when a restarted priority counts as ready and the
	// next starts: none, poweredOn (default), guestHbStatusGreen,
	// appHbStatusGreen (both: the readiness probe passes).
	ReadyCondition string `json:"readyCondition,omitempty"`
	// PostReadyDelaySeconds is waited after a priority is ready.
	PostReadyDelaySeconds int `json:"postReadyDelaySeconds,omitempty"`
	// ReadyTimeoutSeconds bounds the wait for a priority to be ready
	// (0 = ha.DefaultTimings' 60 s).
	ReadyTimeoutSeconds int `json:"readyTimeoutSeconds,omitempty"`
}

// ClusterGroup is a DRS/HA group (ClusterVmGroup, ClusterHostGroup):
// rules name groups rather than listing members.
type ClusterGroup struct {
	Name  string   `json:"name"`
	Kind  string   `json:"kind"` // vm or host
	VMs   []string `json:"vms,omitempty"`
	Hosts []string `json:"hosts,omitempty"`
}

// ClusterRule is a DRS rule (ClusterAffinityRuleSpec, ClusterAntiAffinityRuleSpec, ClusterVmHostRuleInfo).
type ClusterRule struct {
	Name      string   `json:"name"`
	Enabled   bool     `json:"enabled"`
	Kind      string   `json:"kind"`                // affinity, anti-affinity, vm-host, depends
	Mandatory bool     `json:"mandatory,omitempty"` // vm-host: must (true) or should (false)
	Affine    bool     `json:"affine,omitempty"`    // vm-host: run on (true) or not run on (false)
	VMs       []string `json:"vms"`
	Hosts     []string `json:"hosts,omitempty"`
	// Depends rules (ClusterDependencyRuleInfo): HA starts the VMs of
	// VMGroup only once those of DependsOnVMGroup are ready.
	VMGroup          string `json:"vmGroup,omitempty"`
	DependsOnVMGroup string `json:"dependsOnVmGroup,omitempty"`
}

// HostSpec is what vcenter knows of a host before it reports in.
type HostSpec struct {
	// Maintenance is the admin's wish; the status says whether it has taken
	// effect: the host is "entering maintenance" (state connected,
	// status.maintenanceProgress set) until every powered-on VM has left it.
	Maintenance bool `json:"maintenance"`
	// EvacuatePoweredOff (govc host.maintenance.enter -evacuate) also moves
	// the host's powered-off VMs away before it reaches maintenance.
	EvacuatePoweredOff bool `json:"evacuatePoweredOff,omitempty"`
	// MaintenanceTimeoutSeconds (govc -timeout) bounds entering maintenance:
	// when it expires with VMs left, the host goes back to connected and
	// the progress says why. 0 waits for as long as it takes.
	MaintenanceTimeoutSeconds int `json:"maintenanceTimeoutSeconds,omitempty"`
}

// MaintenanceProgress is how far a host entering maintenance mode is: set
// when maintenance is asked for, kept by the evacuation controller, and
// kept after a timeout so the admin can read why it failed.
type MaintenanceProgress struct {
	Since    time.Time `json:"since"`
	Deadline time.Time `json:"deadline,omitzero"` // zero: no timeout
	// VMs counts the VMs that had to leave when entering began; VMsLeft
	// those that must still leave (powered-on ones, and powered-off ones
	// with evacuatePoweredOff).
	VMs     int `json:"vms"`
	VMsLeft int `json:"vmsLeft"`
	// Moved counts the VMs moved (or stopped) so far.
	Moved int `json:"moved,omitempty"`
	// Step is what the evacuation does now, as a sentence.
	Step string `json:"step,omitempty"`
	// Waiting is why the evacuation cannot go on now (HA admission
	// control, a refused migration, a pinned VM); "" when it is moving.
	Waiting string `json:"waiting,omitempty"`
	// Done is set once the host reached maintenance.
	Done bool `json:"done,omitempty"`
	// Error is why entering maintenance failed (its timeout expired): the
	// host went back to connected.
	Error string `json:"error,omitempty"`
}

// Host connection states, as vSphere's HostSystemConnectionState plus maintenance.
const (
	HostConnected     = "connected"
	HostNotResponding = "notResponding"
	HostMaintenance   = "maintenance"
)

type HostStatus struct {
	State       string `json:"state"`
	Address     string `json:"address,omitempty"` // gossip / data address
	Runtime     string `json:"runtime,omitempty"` // sim, containerd
	CPUCapacity int64  `json:"cpuCapacityMHz"`
	MemCapacity int64  `json:"memCapacityMB"`
	CPUUsage    int64  `json:"cpuUsageMHz,omitempty"`
	MemUsage    int64  `json:"memUsageMB,omitempty"`
	PodSubnet   string `json:"podSubnet,omitempty"`
	// AgentAddress is the host agent's own API (logs, exec, metrics), host:port.
	AgentAddress string    `json:"agentAddress,omitempty"`
	LastSeen     time.Time `json:"lastSeen,omitzero"`
	Joined       time.Time `json:"joined,omitzero"`
	// Maintenance is vcenter's progress of entering maintenance mode.
	Maintenance *MaintenanceProgress `json:"maintenanceProgress,omitempty"`
}

// Shares are vSphere SharesInfo: a level or a custom number.
type Shares struct {
	Level string `json:"level"` // low, normal, high, custom
	Value int64  `json:"value,omitempty"`
}

// Allocation is vSphere's ResourceAllocationInfo for one resource (MHz or MB).
type Allocation struct {
	Reservation int64  `json:"reservation"`
	Limit       int64  `json:"limit"` // -1 unlimited
	Expandable  bool   `json:"expandable"`
	Shares      Shares `json:"shares"`
}

// PoolSpec is a resource pool's configuration; Quota is nil when the pool has none.
type PoolSpec struct {
	CPU   Allocation   `json:"cpu"`
	Mem   Allocation   `json:"mem"`
	Quota *QuotaLimits `json:"quota,omitempty"`
}

// QuotaLimits caps what a pool's subtree may hold. -1 (or absent) means no limit.
type QuotaLimits struct {
	VMs          int64 `json:"vms"`
	ReplicaSets  int64 `json:"replicasets"`
	Services     int64 `json:"services"`
	VolumeClaims int64 `json:"volumeclaims"`
	ConfigMaps   int64 `json:"configmaps"`
	Secrets      int64 `json:"secrets"`
	StorageGB    int64 `json:"storageGB"`
	CPUMHz       int64 `json:"cpuMHz"`
	MemMB        int64 `json:"memMB"`
}

// PoolUsage is the pool's ResourcePoolRuntimeInfo, one per resource.
type PoolUsage struct {
	Reservation          int64 `json:"reservation"`
	Limit                int64 `json:"limit"`
	Expandable           bool  `json:"expandable"`
	Shares               int64 `json:"shares"`
	ReservationUsed      int64 `json:"reservationUsed"`
	ReservationUsedForVm int64 `json:"reservationUsedForVm"`
	UnreservedForPool    int64 `json:"unreservedForPool"`
	UnreservedForVm      int64 `json:"unreservedForVm"`
	MaxUsage             int64 `json:"maxUsage"`
	OverallUsage         int64 `json:"overallUsage"`
}

// Power states, as vSphere's VirtualMachinePowerState.
const (
	PoweredOn  = "poweredOn"
	PoweredOff = "poweredOff"
	Suspended  = "suspended"
)

// Restart priorities, as vSphere HA's.
var RestartPriorities = []string{"disabled", "lowest", "low", "medium", "high", "highest"}

// VMSpec is a VM's desired state: its containers, sizing, resource
// allocation, pool, and HA policy. Host is where the VM is registered: set
// by placement (DRS) at every power-on, unless Pinned says the admin chose
// it (vm.create -host), in which case only that host may run the VM.
type VMSpec struct {
	Pool       string      `json:"pool"`
	Host       string      `json:"host,omitempty"`
	Pinned     bool        `json:"pinned,omitempty"`
	NumCPU     int         `json:"numCPU"`
	MemoryMB   int64       `json:"memoryMB"`
	CPU        Allocation  `json:"cpu"`
	Mem        Allocation  `json:"mem"`
	PowerState string      `json:"powerState"`
	Containers []Container `json:"containers,omitempty"`
	// RestartPolicy applies on the host when a container exits: Always, OnFailure, Never.
	RestartPolicy string `json:"restartPolicy,omitempty"`
	// ResetGeneration is bumped by vm.power -reset; the host restarts the containers when it changes.
	ResetGeneration int64    `json:"resetGeneration,omitempty"`
	HA              HAPolicy `json:"ha"`
	Volumes         []Volume `json:"volumes,omitempty"`
	// InitContainers run in order, each to completion, before Containers start.
	InitContainers []Container `json:"initContainers,omitempty"`
	// HostSelector restricts placement to hosts carrying these labels
	// (Kubernetes' nodeSelector).
	HostSelector map[string]string `json:"hostSelector,omitempty"`
	// Affinity is the VM's own placement rules (Kubernetes' node and pod
	// affinity), weighed by DRS beside the cluster's rules.
	Affinity *Affinity `json:"affinity,omitempty"`
	// TerminationGracePeriodSeconds is how long containers get to stop
	// before they are killed (default: the host's stop timeout).
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds,omitempty"`
	// Hostname is the guest's host name (default: the VM's name).
	Hostname string `json:"hostname,omitempty"`
	// DNSPolicy and DNSConfig are Kubernetes' Pod dnsPolicy and dnsConfig:
	// what the VM's resolv.conf says ("" = ClusterFirst, the host's
	// resolver with the cluster's search path; see dns.go).
	DNSPolicy string        `json:"dnsPolicy,omitempty"`
	DNSConfig *PodDNSConfig `json:"dnsConfig,omitempty"`
	// Removing is set by the VM's owner (a replica set scaling down): the
	// VM is powered off and removed once its host reports it off, so it is
	// counted until it has really stopped.
	Removing bool `json:"removing,omitempty"`
	// Migration is a cold migration of the powered-on VM in progress
	// (vm.migrate): the VM stays registered on Host, which stops it; once
	// Host reports it stopped for this migration, vcenter registers it on
	// Migration.Host and powers it on there. Set and cleared by vcenter
	// only, so the VM never runs on two hosts.
	Migration *VMMigration `json:"migration,omitempty"`
}

// VMMigration is a cold migration in progress: admitted on Host (its
// reservations are counted there, as well as on the host the VM is
// registered on, until it completes), waiting for the VM's current host
// to stop it.
type VMMigration struct {
	// ID names this migration; the current host echoes it in
	// status.migrationStopped once it has stopped the VM for it, so a
	// report written before the host saw the migration never completes it.
	ID string `json:"id"`
	// Host is the destination host's path.
	Host string `json:"host"`
	// User asked for the migration (an admin, or controller:evacuation).
	User string `json:"user"`
	// Why the destination was chosen ("chosen by the user", DRS's reason).
	Why     string    `json:"why,omitempty"`
	Started time.Time `json:"started"`
}

// Affinity holds the placement rules a VM brings with it. Required terms
// are DRS "must" rules, preferred ones "should" rules.
type Affinity struct {
	// HostRequired: the VM runs only on a host matching one of these
	// selectors (Kubernetes' requiredDuringScheduling nodeSelectorTerms, ORed).
	HostRequired []LabelSelector `json:"hostRequired,omitempty"`
	// HostPreferred: hosts matching a term score its weight (1-100).
	HostPreferred []WeightedSelector `json:"hostPreferred,omitempty"`
	// VMAffinity and VMAntiAffinity: run on (or away from) the hosts of
	// VMs matching the selector (topologyKey kubernetes.io/hostname).
	VMAffinity     []VMAffinityTerm `json:"vmAffinity,omitempty"`
	VMAntiAffinity []VMAffinityTerm `json:"vmAntiAffinity,omitempty"`
}

// WeightedSelector is a preferred host term.
type WeightedSelector struct {
	Weight   int           `json:"weight"`
	Selector LabelSelector `json:"selector"`
}

// VMAffinityTerm is one VM-to-VM placement rule, within the VM's namespace.
type VMAffinityTerm struct {
	Selector LabelSelector `json:"selector"`
	Required bool          `json:"required,omitempty"` // must; otherwise should, with Weight
	Weight   int           `json:"weight,omitempty"`
}

// HAPolicy is the VM's HA override (cluster.override.change).
type HAPolicy struct {
	RestartPriority   string `json:"restartPriority,omitempty"`   // disabled..highest, default medium
	IsolationResponse string `json:"isolationResponse,omitempty"` // powerOff, shutdown, none
}

// Volume is a disk or claim mounted into the VM's containers (acted on by the storage step).
type Volume struct {
	Name      string `json:"name"`
	Claim     string `json:"claim,omitempty"`
	MountPath string `json:"mountPath,omitempty"`
}

// Container is one process tree of a VM; all of a VM's containers share its network namespace.
type Container struct {
	Name       string   `json:"name"`
	Image      string   `json:"image"`
	Command    []string `json:"command,omitempty"`
	Args       []string `json:"args,omitempty"`
	Env        []EnvVar `json:"env,omitempty"`
	Ports      []Port   `json:"ports,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty"`
	// ImagePullPolicy: IfNotPresent (default), Always, Never. Images come
	// from the Content Library; Always re-fetches the item at every start.
	ImagePullPolicy string `json:"imagePullPolicy,omitempty"`
	// Probes run by the host agent (Kubernetes' semantics).
	LivenessProbe  *Probe `json:"livenessProbe,omitempty"`
	ReadinessProbe *Probe `json:"readinessProbe,omitempty"`
	StartupProbe   *Probe `json:"startupProbe,omitempty"`
	// RunAsUser is the uid the container's processes run as.
	RunAsUser *int64 `json:"runAsUser,omitempty"`
	// ReadOnlyRootFilesystem mounts the image read-only.
	ReadOnlyRootFilesystem bool `json:"readOnlyRootFilesystem,omitempty"`
}

// Probe is a health check of a container: exactly one of Exec, HTTPGet and
// TCPSocket. Zero timings take Kubernetes' defaults (period 10 s, timeout
// 1 s, success threshold 1, failure threshold 3).
type Probe struct {
	Exec                *ExecAction      `json:"exec,omitempty"`
	HTTPGet             *HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket           *TCPSocketAction `json:"tcpSocket,omitempty"`
	InitialDelaySeconds int              `json:"initialDelaySeconds,omitempty"`
	PeriodSeconds       int              `json:"periodSeconds,omitempty"`
	TimeoutSeconds      int              `json:"timeoutSeconds,omitempty"`
	SuccessThreshold    int              `json:"successThreshold,omitempty"`
	FailureThreshold    int              `json:"failureThreshold,omitempty"`
}

// ExecAction runs Command in the container; exit 0 is success.
type ExecAction struct {
	Command []string `json:"command"`
}

// HTTPGetAction asks for Path on Port of the VM's address (or Host); a
// status from 200 to 399 is success.
type HTTPGetAction struct {
	Path        string       `json:"path,omitempty"`
	Port        IntOrString  `json:"port"`
	Host        string       `json:"host,omitempty"`
	Scheme      string       `json:"scheme,omitempty"` // HTTP (default), HTTPS
	HTTPHeaders []HTTPHeader `json:"httpHeaders,omitempty"`
}

type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TCPSocketAction succeeds when a TCP connection to Port opens.
type TCPSocketAction struct {
	Port IntOrString `json:"port"`
	Host string      `json:"host,omitempty"`
}

type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type Port struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"` // TCP, UDP
}

// VMStatus is what vcenter and the VM's host observe.
type VMStatus struct {
	PowerState string            `json:"powerState"`
	Host       string            `json:"host,omitempty"`
	BootTime   time.Time         `json:"bootTime,omitzero"`
	IP         string            `json:"ip,omitempty"`
	Restarts   int               `json:"restarts,omitempty"`
	Containers []ContainerStatus `json:"containers,omitempty"`
	Message    string            `json:"message,omitempty"`
	// CPUUsageMHz and MemUsageMB are the VM's measured use (cgroups), reported by its host.
	CPUUsageMHz int64 `json:"cpuUsageMHz,omitempty"`
	MemUsageMB  int64 `json:"memUsageMB,omitempty"`
	// ResetGeneration echoes the spec's once the host has carried out the reset.
	ResetGeneration int64 `json:"resetGeneration,omitempty"`
	// Ready: every container is running and passes its readiness probe
	// (a container without one is ready once started).
	Ready bool `json:"ready,omitempty"`
	// ReadySince is when the VM last became ready (for minReadySeconds).
	ReadySince time.Time `json:"readySince,omitzero"`
	// Phase of a run-to-completion VM (restartPolicy Never or OnFailure):
	// Succeeded once every container exited 0, Failed once one failed for good.
	Phase string `json:"phase,omitempty"`
	// HA is what vSphere HA did about the VM. It is vcenter's, not the
	// host's: a host's status report keeps it as it is.
	HA *VMHAStatus `json:"ha,omitempty"`
	// MigrationStopped is the ID of the cold migration (spec.migration)
	// for which the host stopped the VM: the host's word that it no longer
	// runs it, which vcenter waits for before starting it elsewhere.
	MigrationStopped string `json:"migrationStopped,omitempty"`
	// PowerOnFailed is the host's word that it could not power the VM on
	// ("create: ..." or "start: ...": the step and its error, e.g. an
	// image missing from the content library) while the VM should run. It
	// stays while the host keeps failing and is cleared once the VM runs:
	// vSphere HA counts it as a failed restart of a VM it restarted there
	// and tries another host.
	PowerOnFailed string `json:"powerOnFailed,omitempty"`
}

// VMHAStatus is vSphere HA's record of a VM's failover: the attempts to
// restart it since its host failed (reset once it runs again on a live
// host) and the last restart HA made (kept as history).
type VMHAStatus struct {
	// Attempts HA made since its host failed, the last at LastAttempt;
	// LastError is why the last one did not place it ("" if it did).
	Attempts    int       `json:"attempts,omitempty"`
	LastAttempt time.Time `json:"lastAttempt,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
	// GaveUp: every attempt failed; HA no longer tries (LastError says why).
	GaveUp bool `json:"gaveUp,omitempty"`
	// RestartedAt is when HA last restarted the VM, from host RestartedFrom
	// (an inventory path) because Reason.
	RestartedAt   time.Time `json:"restartedAt,omitzero"`
	RestartedFrom string    `json:"restartedFrom,omitempty"`
	Reason        string    `json:"reason,omitempty"`
}

type ContainerStatus struct {
	Name      string    `json:"name"`
	State     string    `json:"state"` // running, exited, created
	Restarts  int       `json:"restarts"`
	ExitCode  int       `json:"exitCode,omitempty"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	// Ready is the readiness probe's verdict (true once started when there is none).
	Ready bool `json:"ready,omitempty"`
	// Started is false until the startup probe has passed (true when there is none).
	Started bool `json:"started,omitempty"`
	// Init marks an init container's status.
	Init bool `json:"init,omitempty"`
}

// EventSpec is one entry of `psc events`, as vSphere's Event.
type EventSpec struct {
	Time     time.Time `json:"time"`
	Category string    `json:"category"` // info, warning, error, user
	Type     string    `json:"type"`     // VmPoweredOnEvent, DrsVmPoweredOnEvent, ...
	Target   string    `json:"target"`   // inventory path the event is about
	Message  string    `json:"message"`
	User     string    `json:"user,omitempty"`
	Key      uint64    `json:"key"`
}

// TaskSpec is one entry of `psc tasks`.
type TaskSpec struct {
	Name      string    `json:"name"` // PowerOnVM_Task, CreateResourcePool, ...
	Target    string    `json:"target"`
	Initiator string    `json:"initiator"`
	Queued    time.Time `json:"queued"`
	Started   time.Time `json:"started"`
	Completed time.Time `json:"completed,omitzero"`
	Result    string    `json:"result"` // success, error
	Error     string    `json:"error,omitempty"`
}

// ImageSpec describes a Content Library item: an OCI image archive held by vcenter.
type ImageSpec struct {
	Name   string `json:"name"`
	Ref    string `json:"ref"`    // image reference inside the archive, e.g. docker.io/library/busybox:latest
	Digest string `json:"digest"` // sha256 of the archive
	Size   int64  `json:"size"`
}

// UnmarshalJSON treats an absent quota field as "no limit": the zero value
// would mean "none allowed", which nobody means by leaving a field out.
func (l *QuotaLimits) UnmarshalJSON(b []byte) error {
	type plain QuotaLimits // no methods, so no recursion
	v := plain{-1, -1, -1, -1, -1, -1, -1, -1, -1}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*l = QuotaLimits(v)
	return nil
}
