package ha

import "time"

// Timings are every figure HA decides with, in one place. vcenter and the
// hosts' HA processes must agree on them: a host fences itself (stops its
// VMs) strictly before vcenter may restart them elsewhere, or two copies
// could run at once.
type Timings struct {
	// DatastoreHeartbeat is how often a host's HA process writes its
	// heartbeat file on each heartbeat datastore and renews the lock file of
	// every VM it runs. vSphere's FDM writes every second; twice as often
	// here buys a shorter lease (below) for two small writes a second.
	DatastoreHeartbeat time.Duration
	// DatastoreTimeout is how long a heartbeat may be stale before vcenter
	// counts the host's HA process as stopped: four missed writes, so one
	// slow write on a busy NFS server is not a failure.
	DatastoreTimeout time.Duration
	// LockLease is how long a VM's lock stays valid without renewal. A host
	// that cannot renew a VM's lock for this long stops the VM (the fence in
	// the VM's own process tree), and vcenter restarts a VM of a silent host
	// only once its lock is older than LockLease + LockMargin.
	LockLease time.Duration
	// LockMargin covers the time a fenced VM takes to die (SIGKILL, well
	// under 100 ms) and clock skew between the host that wrote the lock and
	// vcenter reading it: raise it where hosts are not kept within 500 ms
	// of each other by NTP.
	LockMargin time.Duration
	// FenceTime is, without any heartbeat datastore, how long an isolated
	// host waits before it stops its VMs (self-fencing, as Proxmox's
	// watchdog does); vcenter restarts them only after the host has been
	// silent for FenceTime + FenceMargin.
	FenceTime   time.Duration
	FenceMargin time.Duration
	// SelfFenceGrace is, without any heartbeat datastore, how long after
	// vcenter last said the host is connected the host's HA process still
	// renews its VMs' locks: vcenter is then the quorum, as no shared disk
	// can tell a cut-off host from a dead one. It must stay under
	// FenceMargin (minus clock skew): vcenter restarts a silent host's VMs
	// FenceTime+FenceMargin after it stopped confirming the host, and the
	// fences have stopped them by SelfFenceGrace+FenceTime.
	SelfFenceGrace time.Duration
	// IsolationDetection is how long a host's HA process must find vcenter,
	// every peer and every isolation address unreachable before it calls
	// its host isolated and applies the isolation response: four heartbeat
	// ticks, so one lost probe round is not isolation. vSphere waits about
	// 30 s (das.config.fdm.isolationPolicyDelaySec); containers restart
	// in seconds, so the detection is shorter too.
	IsolationDetection time.Duration
	// ProbeTimeout bounds one reachability probe (a TCP connect) of an
	// isolation address: under a heartbeat tick, so probing never delays
	// the next heartbeat. A refused connection answers at once; only
	// silence waits this long.
	ProbeTimeout time.Duration
	// RestartDelays are the waits before each restart attempt after the
	// first (vSphere: 5 attempts at about 0, 2, 6, 14 and 30 minutes; a
	// container restarts in seconds, so seconds here): a VM that no host
	// can take is tried again as capacity may come back, then given up.
	RestartDelays []time.Duration
	// ReadyTimeout bounds how long a priority's restarted VMs may take to
	// be ready before the next priority starts anyway (vSphere's timeout).
	ReadyTimeout time.Duration
	// PostReadyDelay is waited after a priority is ready, before the next.
	PostReadyDelay time.Duration
	// MaxPowerOnsPerHost bounds concurrent restarts landing on one host
	// (vSphere: 32), so a failover does not flatten the survivors.
	MaxPowerOnsPerHost int
}

// DefaultTimings: a host that stops gossiping is declared failed as soon
// as gossip (≈ 3 s, docs/membership.md) and its datastore heartbeat (2 s
// stale) agree, and its VMs restart once their locks (3 s + 0.75 s since
// the last renewal) lapsed: 3.25-3.75 s after a crash with datastores,
// 10 s without (fence 6 s + 4 s margin). vSphere takes 15-18 s to declare
// a host dead.
func DefaultTimings() Timings {
	return Timings{
		DatastoreHeartbeat: 500 * time.Millisecond,
		DatastoreTimeout:   2 * time.Second,
		LockLease:          3 * time.Second,
		LockMargin:         750 * time.Millisecond,
		FenceTime:          6 * time.Second,
		FenceMargin:        4 * time.Second,
		SelfFenceGrace:     2 * time.Second,
		IsolationDetection: 2 * time.Second,
		ProbeTimeout:       400 * time.Millisecond,
		RestartDelays:      []time.Duration{0, 2 * time.Second, 6 * time.Second, 14 * time.Second, 30 * time.Second},
		ReadyTimeout:       60 * time.Second,
		PostReadyDelay:     0,
		MaxPowerOnsPerHost: 32,
	}
}
