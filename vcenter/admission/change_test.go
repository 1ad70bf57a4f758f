package admission_test

import (
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/quota"
	"github.com/podsphere/podsphere/vcenter/admission"
)

// TestChangeQuota: the levels are those of the VM's new pool. Pools that
// hold the VM before and after (common ancestors) see only its growth;
// pools it enters see all of it: one more VM and, when it runs, its whole
// footprint.
func TestChangeQuota(t *testing.T) {
	const (
		a, b, q = rootRP + "/a", rootRP + "/b", rootRP + "/q"
		team    = rootRP + "/team"
	)
	cpuQ := func(n int64) func(*quota.Limits) { return func(l *quota.Limits) { l.CPUMHz = n } }
	vmsQ := func(n int64) func(*quota.Limits) { return func(l *quota.Limits) { l.VMs = n } }
	// limited is a 1-vCPU VM in pool whose CPU limit is its footprint.
	limited := func(pool string, cpuLimit int64) api.VMSpec {
		s := vmIn(pool, 0)
		s.CPU.Limit = cpuLimit
		return s
	}
	tests := []struct {
		name      string
		levels    []quota.Level
		old, spec api.VMSpec
		on        bool
		want      string
	}{
		// TestMovingRunningVMsRespectsQuotaAndCountsOnce.
		{"a running VM moves into a quota with room", []quota.Level{level(q, cpuQ(1000), quota.Usage{})},
			limited(a, 1000), limited(q, 1000), true, ""},
		{"a second one does not fit", []quota.Level{level(q, cpuQ(1000), quota.Usage{VMs: 1, CPUMHz: 1000})},
			limited(a, 1000), limited(q, 1000), true, "quota exceeded in " + q + ": cpu 1000 + 1000 > 1000 MHz"},
		{"a powered-off VM brings no footprint", []quota.Level{level(q, cpuQ(1000), quota.Usage{VMs: 1, CPUMHz: 1000})},
			limited(a, 1000), limited(q, 1000), false, ""},
		{"but counts as a VM", []quota.Level{level(q, vmsQ(1), quota.Usage{VMs: 1})},
			limited(a, 1000), limited(q, 1000), false, "quota exceeded in " + q + ": vms 1 + 1 > 1"},
		{"an entered pool sees the whole new footprint, not the change", []quota.Level{level(q, cpuQ(1000), quota.Usage{VMs: 1, CPUMHz: 500})},
			limited(a, 2000), limited(q, 1000), true, "quota exceeded in " + q + ": cpu 500 + 1000 > 1000 MHz"},
		{"an unlimited VM enters with its vCPUs", []quota.Level{level(q, cpuQ(2500), quota.Usage{CPUMHz: 1000})},
			limited(a, -1), func() api.VMSpec { s := limited(q, -1); s.NumCPU = 2; return s }(), true, "quota exceeded in " + q + ": cpu 1000 + 2000 > 2500 MHz"},
		// Common ancestors see only growth.
		{"moving inside a full team", []quota.Level{
			level(team+"/b", nil, quota.Usage{}),
			level(team, func(l *quota.Limits) { l.VMs, l.CPUMHz = 3, 3000 }, quota.Usage{VMs: 3, CPUMHz: 3000})},
			limited(team+"/a", 1000), limited(team+"/b", 1000), true, ""},
		{"moving inside a team and growing within its room", []quota.Level{
			level(team+"/b", nil, quota.Usage{}),
			level(team, cpuQ(3000), quota.Usage{VMs: 3, CPUMHz: 2500})},
			limited(team+"/a", 1000), limited(team+"/b", 1500), true, ""},
		{"moving inside a team and growing beyond its room", []quota.Level{
			level(team+"/b", nil, quota.Usage{}),
			level(team, cpuQ(3000), quota.Usage{VMs: 3, CPUMHz: 2500})},
			limited(team+"/a", 1000), limited(team+"/b", 2000), true, "quota exceeded in " + team + ": cpu 2500 + 1000 > 3000 MHz"},
		{"the entered child is checked before the shared team", []quota.Level{
			level(team+"/b", cpuQ(1000), quota.Usage{CPUMHz: 500}),
			level(team, cpuQ(3000), quota.Usage{CPUMHz: 3000})},
			limited(team+"/a", 1000), limited(team+"/b", 1000), true, "quota exceeded in " + team + "/b: cpu 500 + 1000 > 1000 MHz"},
		{"moving up into a shared ancestor adds nothing", []quota.Level{
			level(team, func(l *quota.Limits) { l.VMs, l.CPUMHz = 3, 3000 }, quota.Usage{VMs: 3, CPUMHz: 3000})},
			limited(team+"/a", 1000), limited(team, 1000), true, ""},
		{"moving down enters the child", []quota.Level{
			level(team+"/a", vmsQ(0), quota.Usage{}),
			level(team, vmsQ(3), quota.Usage{VMs: 3})},
			limited(team, 1000), limited(team+"/a", 1000), true, "quota exceeded in " + team + "/a: vms 0 + 1 > 0"},
		// TestQuotaThroughAPI "ancestor quota": into a full subtree from outside.
		{"moving into a full subtree", []quota.Level{
			level(team+"/a", nil, quota.Usage{VMs: 2}),
			level(team, vmsQ(3), quota.Usage{VMs: 3})},
			limited(rootRP, -1), limited(team+"/a", -1), false, "quota exceeded in " + team + ": vms 3 + 1 > 3"},
		{"the root level is shared by any move in the cluster", []quota.Level{
			level(b, nil, quota.Usage{}),
			level(rootRP, func(l *quota.Limits) { l.VMs, l.CPUMHz = 1, 1000 }, quota.Usage{VMs: 1, CPUMHz: 1000})},
			limited(a, 1000), limited(b, 1000), true, ""},
		// Staying in the pool: growth only, never one more VM.
		{"a reconfigure in a full pool", []quota.Level{level(q, vmsQ(1), quota.Usage{VMs: 1, CPUMHz: 1000})},
			limited(q, 1000), func() api.VMSpec { s := limited(q, 1000); s.MemoryMB = 1024; return s }(), true, ""},
		{"growing in a full pool", []quota.Level{level(q, cpuQ(1000), quota.Usage{VMs: 1, CPUMHz: 1000})},
			limited(q, 1000), limited(q, 1500), true, "quota exceeded in " + q + ": cpu 1000 + 500 > 1000 MHz"},
		{"growing memory in a full pool", []quota.Level{level(q, func(l *quota.Limits) { l.MemMB = 512 }, quota.Usage{VMs: 1, MemMB: 512})},
			limited(q, 1000), func() api.VMSpec { s := limited(q, 1000); s.MemoryMB = 1024; return s }(), true, "quota exceeded in " + q + ": memory 512 + 512 > 512 MB"},
		{"growing while powered off", []quota.Level{level(q, cpuQ(1000), quota.Usage{VMs: 1, CPUMHz: 1000})},
			limited(q, 1000), limited(q, 4000), false, ""},
		{"shrinking in a pool over its lowered quota", []quota.Level{level(q, cpuQ(500), quota.Usage{VMs: 1, CPUMHz: 1000})},
			limited(q, 1000), limited(q, 400), true, ""},
		{"a limit replacing the size counts as growth", []quota.Level{level(q, cpuQ(1000), quota.Usage{VMs: 1, CPUMHz: 1000})},
			limited(q, -1), limited(q, 1200), true, "quota exceeded in " + q + ": cpu 1000 + 200 > 1000 MHz"},
		{"no quota", nil, limited(a, 1000), limited(b, 9000), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := admission.ChangeQuota(tt.levels, tt.old, tt.spec, tt.on)
			checkErr(t, "ChangeQuota", err, tt.want, api.ErrQuotaExceeded)
		})
	}
}

// TestChangeRunning: a running VM's new reservation (or pool) must fit the
// pool tree, with its current reservation taken out first so a move is not
// counted twice, and its growth must fit its host.
func TestChangeRunning(t *testing.T) {
	const a, b, r = rootRP + "/a", rootRP + "/b", rootRP + "/r"
	const esx1 = clusterPath + "/esx-01"
	on := func(pool string, cpu, mem int64) api.VMSpec {
		s := vmIn(pool, cpu)
		s.Mem.Reservation = mem
		s.Host, s.PowerState = esx1, api.PoweredOn
		return s
	}
	// One 10 GHz host running big (6000 MHz, in a) and, in r (fixed 1500
	// MHz), a 1000 MHz VM.
	one := snapshot(map[string]admission.Host{"esx-01": running(connected(10000, 16384), 2, 7000, 0)},
		map[string]admission.Pool{
			"/a": withVMs(cpuPool(alloc(0, -1, true)), 6000, 0),
			"/b": cpuPool(alloc(0, -1, true)),
			"/r": withVMs(cpuPool(alloc(1500, -1, false)), 1000, 0),
		})
	// esx-01 is nearly full (9000 of 10000 MHz, 15360 of 16384 MB) while
	// esx-02 leaves the pool tree plenty of room.
	full := snapshot(map[string]admission.Host{
		"esx-01": running(connected(10000, 16384), 3, 9000, 15360),
		"esx-02": connected(10000, 16384),
	}, map[string]admission.Pool{
		"/a": withVMs(cpuPool(alloc(0, -1, true)), 9000, 15360),
		"/b": cpuPool(alloc(0, -1, true)),
	})
	tests := []struct {
		name      string
		c         admission.Cluster
		old, spec api.VMSpec
		want      string
	}{
		{"a 6000 MHz VM moves between pools of a 10000 MHz host", one, on(a, 6000, 0), on(b, 6000, 0), ""},
		{"and may grow as it moves", one, on(a, 6000, 0), on(b, 8500, 0), ""},
		{"but not beyond what r's fixed 1500 leaves", one, on(a, 6000, 0), on(b, 8501, 0),
			"insufficient cpu in " + b + ": 8501 MHz asked, 8500 MHz unreserved (expandable reservation reached " + rootRP + ", which is fixed)"},
		{"growing within a fixed pool counts the VM once", one, on(r, 1000, 0), on(r, 1500, 0), ""},
		{"growing beyond a fixed pool", one, on(r, 1000, 0), on(r, 1501, 0),
			"insufficient cpu in " + r + ": 1501 MHz asked, 1500 MHz unreserved (its reservation of 1500 MHz is fixed)"},
		{"moving into a fixed pool without room", one, on(a, 1000, 0), on(r, 1000, 0),
			"insufficient cpu in " + r + ": 1000 MHz asked, 500 MHz unreserved (its reservation of 1500 MHz is fixed)"},
		{"moving out of a fixed pool", one, on(r, 1000, 0), on(a, 1000, 0), ""},
		{"growing CPU within the host", full, on(a, 1000, 0), on(a, 2000, 0), ""},
		{"growing CPU beyond the host", full, on(a, 1000, 0), on(a, 2001, 0),
			"host esx-01 has 1000 MHz unreserved CPU, the new reservation needs 1001 MHz more: insufficient resources"},
		{"growing memory beyond the host", full, on(a, 1000, 1024), on(a, 1000, 2049),
			"host esx-01 has 1024 MB unreserved memory, the new reservation needs 1025 MB more: insufficient resources"},
		{"growing memory while moving", full, on(a, 1000, 1024), on(b, 1000, 2048), ""},
		{"the tree refuses before the host", full, on(a, 1000, 0), on(a, 12001, 0),
			"insufficient cpu in " + a + ": 12001 MHz asked, 12000 MHz unreserved (expandable reservation reached " + rootRP + ", which is fixed)"},
		{"shrinking", full, on(a, 1000, 1024), on(a, 0, 0), ""},
	}
	t.Run("a negative reservation", func(t *testing.T) {
		err := admission.ChangeRunning(full, on(a, 1000, 0), on(a, -1, 0))
		checkErr(t, "ChangeRunning", err, "VM reservation -1 MHz / 0 MB is negative", api.ErrInvalid)
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, "ChangeRunning", admission.ChangeRunning(tt.c, tt.old, tt.spec), tt.want, api.ErrInsufficientResources)
		})
	}
}

// TestChangeRunningOnOvercommittedHost: a host may report less capacity than
// its running VMs reserve (it rejoined smaller). Changes that ask nothing
// more of it must still go through, and a refusal shows no negative room.
func TestChangeRunningOnOvercommittedHost(t *testing.T) {
	const a, b = rootRP + "/a", rootRP + "/b"
	on := func(pool string, cpu, mem int64) api.VMSpec {
		s := vmIn(pool, cpu)
		s.Mem.Reservation = mem
		s.Host, s.PowerState = clusterPath+"/esx-01", api.PoweredOn
		return s
	}
	// esx-01 runs VMs reserving 9000 MHz and 9000 MB.
	over := func(cpu, mem int64) admission.Cluster {
		return snapshot(map[string]admission.Host{
			"esx-01": running(connected(cpu, mem), 3, 9000, 9000),
			"esx-02": connected(10000, 16384),
		}, map[string]admission.Pool{
			"/a": withVMs(cpuPool(alloc(0, -1, true)), 9000, 9000),
			"/b": cpuPool(alloc(0, -1, true)),
		})
	}
	both, cpuOver, memOver := over(8000, 8192), over(8000, 16384), over(10000, 8192)
	tests := []struct {
		name      string
		c         admission.Cluster
		old, spec api.VMSpec
		want      string
	}{
		{"moving between pools", both, on(a, 3000, 1024), on(b, 3000, 1024), ""},
		{"shrinking", both, on(a, 3000, 1024), on(a, 2000, 512), ""},
		{"growing memory asks no CPU", cpuOver, on(a, 3000, 1024), on(a, 3000, 2048), ""},
		{"growing CPU asks no memory", memOver, on(a, 3000, 1024), on(a, 4000, 1024), ""},
		{"growing CPU", cpuOver, on(a, 3000, 1024), on(a, 3001, 1024),
			"host esx-01 has 0 MHz unreserved CPU, the new reservation needs 1 MHz more: insufficient resources"},
		{"growing memory", memOver, on(a, 3000, 1024), on(a, 3000, 1025),
			"host esx-01 has 0 MB unreserved memory, the new reservation needs 1 MB more: insufficient resources"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, "ChangeRunning", admission.ChangeRunning(tt.c, tt.old, tt.spec), tt.want, api.ErrInsufficientResources)
		})
	}
}

// TestChangeRunningToAnotherCluster: the snapshot is of the new pool's
// cluster. A running VM whose host is not in it would be counted in that
// cluster's pool tree while its host, and that host's reservations, stay in
// the old one; it must be powered off to move.
func TestChangeRunningToAnotherCluster(t *testing.T) {
	const c2 = "/dc1/host/c2"
	c := snapshot(map[string]admission.Host{"esx-01": running(connected(10000, 16384), 1, 1000, 0)},
		map[string]admission.Pool{"": withVMs(cpuPool(alloc(0, -1, true)), 1000, 0)})
	other := admission.Cluster{Path: c2,
		Pools: map[string]admission.Pool{c2 + "/Resources": cpuPool(alloc(0, -1, true))},
		Hosts: map[string]admission.Host{c2 + "/esx-09": connected(10000, 16384)}}
	old := vmIn(rootRP, 1000)
	old.Host, old.PowerState = clusterPath+"/esx-01", api.PoweredOn
	for _, res := range []int64{0, 1000} {
		spec := old
		spec.Pool, spec.CPU.Reservation = c2+"/Resources", res
		err := admission.ChangeRunning(other, old, spec)
		checkErr(t, "ChangeRunning", err, "cannot move to pool "+c2+"/Resources while powered on: its host "+clusterPath+"/esx-01 is not in cluster "+c2+" (power it off to move it to another cluster): invalid", api.ErrInvalid)
	}
	// Within the host's cluster nothing changes.
	spec := old
	spec.CPU.Reservation = 2000
	checkErr(t, "ChangeRunning", admission.ChangeRunning(c, old, spec), "", nil)
}
