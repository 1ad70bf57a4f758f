package admission_test

import (
	"errors"
	"maps"
	"math"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/pools"
	"github.com/podsphere/podsphere/quota"
	"github.com/podsphere/podsphere/vcenter/admission"
)

// The snapshots are of cluster /dc1/host/c1, as the server tests' inventory.
const (
	clusterPath = "/dc1/host/c1"
	rootRP      = clusterPath + "/Resources"
	vmDir       = "/dc1/vm/"
)

func alloc(reservation, limit int64, expandable bool) api.Allocation {
	return api.Allocation{Reservation: reservation, Limit: limit, Expandable: expandable, Shares: api.Shares{Level: "normal"}}
}

// connected is a connected host with nothing running.
func connected(cpu, mem int64) admission.Host {
	return admission.Host{Status: api.HostStatus{State: api.HostConnected, CPUCapacity: cpu, MemCapacity: mem}}
}

// running adds powered-on VMs reserving cpu MHz and mem MB to h.
func running(h admission.Host, vms int, cpu, mem int64) admission.Host {
	h.Running += vms
	h.CPUReserved += cpu
	h.MemReserved += mem
	return h
}

// inMaintenance is h after host.maintenance.enter took effect.
func inMaintenance(h admission.Host) admission.Host {
	h.Spec.Maintenance = true
	h.Status.State = api.HostMaintenance
	return h
}

func notResponding(h admission.Host) admission.Host {
	h.Status.State = api.HostNotResponding
	return h
}

func peers(h admission.Host, n int) admission.Host {
	h.Peers = n
	return h
}

// cpuPool is a pool with this CPU allocation and expandable memory.
func cpuPool(cpu api.Allocation) admission.Pool {
	return admission.Pool{Spec: api.PoolSpec{CPU: cpu, Mem: alloc(0, -1, true)}}
}

// withVMs adds powered-on VMs reserving cpu MHz and mem MB directly in p.
func withVMs(p admission.Pool, cpu, mem int64) admission.Pool {
	p.VMCPUReservation += cpu
	p.VMMemReservation += mem
	return p
}

// snapshot is cluster c1 with hosts (by name) and pools (by path below the
// root pool, "" for the root pool itself, which is always there).
func snapshot(hosts map[string]admission.Host, ps map[string]admission.Pool) admission.Cluster {
	c := admission.Cluster{Path: clusterPath,
		Pools: map[string]admission.Pool{rootRP: {Spec: api.PoolSpec{CPU: alloc(0, -1, true), Mem: alloc(0, -1, true)}}},
		Hosts: map[string]admission.Host{}}
	for name, h := range hosts {
		c.Hosts[clusterPath+"/"+name] = h
	}
	for p, e := range ps {
		c.Pools[rootRP+p] = e
	}
	return c
}

// vmIn is a VM of 1 vCPU and 512 MB reserving cpuRes MHz in pool, as the
// server tests' vm helper.
func vmIn(pool string, cpuRes int64) api.VMSpec {
	return api.VMSpec{Pool: pool, NumCPU: 1, MemoryMB: 512, CPU: alloc(cpuRes, -1, false), Mem: alloc(0, -1, false), PowerState: api.PoweredOff}
}

// level is a quota level of pool with limits set by f.
func level(pool string, f func(*quota.Limits), used quota.Usage) quota.Level {
	l := quota.Unlimited()
	if f != nil {
		f(&l)
	}
	return quota.Level{Pool: pool, Limits: l, Used: used}
}

// checkErr fails unless err is nil (want "") or has exactly the message want
// and wraps sentinel.
func checkErr(t *testing.T, what string, err error, want string, sentinel error) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("%s refused: %v, want admitted", what, err)
	case want == "":
	case err == nil:
		t.Fatalf("%s admitted, want refused with\n  %s", what, want)
	case err.Error() != want:
		t.Fatalf("%s refused with\n  got  %s\n  want %s", what, err, want)
	case !errors.Is(err, sentinel):
		t.Fatalf("%s: %v does not wrap %v", what, err, sentinel)
	}
}

// cpuUsage is what pool.info shows of a pool's CPU in the snapshot.
func cpuUsage(t *testing.T, c admission.Cluster, path string) pools.Usage {
	t.Helper()
	tree, err := c.Tree()
	if err != nil {
		t.Fatalf("Tree: %v", err)
	}
	u, err := tree.Usage(path, pools.CPU)
	if err != nil {
		t.Fatalf("Usage(%s): %v", path, err)
	}
	u.Shares = 0 // shares have their own tests in pools/
	return u
}

// TestWorkedExampleRPMomRPKid is VMware's worked example of expandable
// reservations: RP-MOM has a fixed 6 GHz and runs VM-M1; its child RP-KID
// reserves 2 GHz, expandable, and runs VM-K1 of 2 GHz. Another 2 GHz VM in
// RP-KID borrows from RP-MOM while RP-MOM has it unreserved. The cluster is
// two connected 10 GHz hosts (the root pool holds 20000 MHz); VM-M1 runs on
// esx-01 and VM-K1 on esx-02, where placement put them.
func TestWorkedExampleRPMomRPKid(t *testing.T) {
	const mom, kid = rootRP + "/RP-MOM", rootRP + "/RP-MOM/RP-KID"
	build := func(momOwnVMs int64, kidVMs ...int64) admission.Cluster {
		kidPool := cpuPool(alloc(2000, -1, true))
		hosts := map[string]admission.Host{
			"esx-01": running(connected(10000, 65536), 1, momOwnVMs, 0),
			"esx-02": connected(10000, 65536),
		}
		for i, r := range kidVMs { // VM-K1 on esx-02, then alternating
			kidPool = withVMs(kidPool, r, 0)
			h := []string{"esx-02", "esx-01"}[i%2]
			hosts[h] = running(hosts[h], 1, r, 0)
		}
		return snapshot(hosts, map[string]admission.Pool{
			"/RP-MOM":        withVMs(cpuPool(alloc(6000, -1, false)), momOwnVMs, 0),
			"/RP-MOM/RP-KID": kidPool,
		})
	}
	vmK := func(name string, res int64) (string, api.VMSpec) { return vmDir + name, vmIn(kid, res) }

	t.Run("before VM-K2", func(t *testing.T) {
		c := build(1000, 2000)
		if cpu, mem := c.Capacity(); cpu != 20000 || mem != 131072 {
			t.Fatalf("Capacity = %d MHz, %d MB; want the two hosts' 20000 MHz, 131072 MB", cpu, mem)
		}
		// RP-MOM: 1000 for VM-M1 plus RP-KID's 2000, all within RP-KID's own reservation.
		want := pools.Usage{Reservation: 6000, Limit: -1, ReservationUsed: 3000, ReservationUsedForVm: 3000, UnreservedForPool: 3000, UnreservedForVm: 3000, MaxUsage: 20000}
		if got := cpuUsage(t, c, mom); got != want {
			t.Errorf("RP-MOM CPU\n got  %+v\n want %+v", got, want)
		}
	})

	t.Run("VM-K2 borrows from RP-MOM", func(t *testing.T) {
		c := build(1000, 2000)
		path, spec := vmK("VM-K2", 2000)
		d, err := admission.PowerOn(c, nil, path, nil, spec)
		checkErr(t, "VM-K2", err, "", nil)
		// esx-01 runs VM-M1's 1000 MHz, esx-02 VM-K1's 2000: esx-01 keeps more free.
		if d.Host != "esx-01" {
			t.Errorf("VM-K2 placed on %q, want esx-01\n%s", d.Host, d.Explain())
		}
		if why := admission.ChosenWhy(d); why != "score 0.700 of 2 candidate hosts" {
			t.Errorf("ChosenWhy = %q", why)
		}
	})

	t.Run("after VM-K2", func(t *testing.T) {
		c := build(1000, 2000, 2000)
		for _, w := range []struct {
			path string
			want pools.Usage
		}{
			// RP-MOM: 1000 for VM-M1 plus what RP-KID takes, max(2000, 4000).
			{mom, pools.Usage{Reservation: 6000, Limit: -1, ReservationUsed: 5000, ReservationUsedForVm: 5000, UnreservedForPool: 1000, UnreservedForVm: 1000, MaxUsage: 20000}},
			// RP-KID: 4000 used of its 2000, the 2000 more borrowed; it can still borrow RP-MOM's last 1000.
			{kid, pools.Usage{Reservation: 2000, Limit: -1, Expandable: true, ReservationUsed: 4000, ReservationUsedForVm: 4000, UnreservedForPool: 1000, UnreservedForVm: 1000, MaxUsage: 20000}},
			// The root gave RP-MOM its fixed 6000 whatever it uses.
			{rootRP, pools.Usage{Reservation: 20000, Limit: 20000, ReservationUsed: 6000, ReservationUsedForVm: 5000, UnreservedForPool: 14000, UnreservedForVm: 14000, MaxUsage: 20000}},
		} {
			if got := cpuUsage(t, c, w.path); got != w.want {
				t.Errorf("pool %s CPU:\n got  %+v\n want %+v", api.Base(w.path), got, w.want)
			}
		}
		tests := []struct {
			name string
			res  int64
			want string
		}{
			{"VM-K3 of 2 GHz no longer fits", 2000,
				"cannot power on /dc1/vm/VM-K3: insufficient cpu in " + kid + ": 2000 MHz asked, 1000 MHz unreserved (expandable reservation reached " + mom + ", which is fixed)"},
			{"VM-K3 of RP-MOM's last 1000 MHz fits", 1000, ""},
			{"VM-K3 of 1001 MHz does not", 1001,
				"cannot power on /dc1/vm/VM-K3: insufficient cpu in " + kid + ": 1001 MHz asked, 1000 MHz unreserved (expandable reservation reached " + mom + ", which is fixed)"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				path, spec := vmK("VM-K3", tt.res)
				_, err := admission.PowerOn(c, nil, path, nil, spec)
				checkErr(t, "VM-K3", err, tt.want, api.ErrInsufficientResources)
			})
		}
		// The same 1000 MHz bounds a new pool beside RP-KID.
		err := admission.CreatePool(c, mom+"/RP-SIB", mom, api.PoolSpec{CPU: alloc(1001, -1, false), Mem: alloc(0, -1, true)})
		checkErr(t, "RP-SIB", err, "insufficient cpu in "+mom+" for new pool "+mom+"/RP-SIB: 1001 MHz asked, 1000 MHz unreserved (its reservation of 6000 MHz is fixed)", api.ErrInsufficientResources)
		err = admission.CreatePool(c, mom+"/RP-SIB", mom, api.PoolSpec{CPU: alloc(1000, -1, false), Mem: alloc(0, -1, true)})
		checkErr(t, "RP-SIB", err, "", nil)
	})

	t.Run("RP-MOM running 3 GHz refuses VM-K2", func(t *testing.T) {
		c := build(3000, 2000)
		path, spec := vmK("VM-K2", 2000)
		d, err := admission.PowerOn(c, nil, path, nil, spec)
		checkErr(t, "VM-K2", err, "cannot power on /dc1/vm/VM-K2: insufficient cpu in "+kid+": 2000 MHz asked, 1000 MHz unreserved (expandable reservation reached "+mom+", which is fixed)", api.ErrInsufficientResources)
		if d.Host != "" {
			t.Errorf("refused VM-K2 placed on %s", d.Host)
		}
	})

	t.Run("a fixed RP-KID does not borrow", func(t *testing.T) {
		c := build(1000, 2000)
		e := c.Pools[kid]
		e.Spec.CPU.Expandable = false
		c.Pools[kid] = e
		path, spec := vmK("VM-K2", 2000)
		_, err := admission.PowerOn(c, nil, path, nil, spec)
		checkErr(t, "VM-K2", err, "cannot power on /dc1/vm/VM-K2: insufficient cpu in "+kid+": 2000 MHz asked, 0 MHz unreserved (its reservation of 2000 MHz is fixed)", api.ErrInsufficientResources)
	})
}

// TestCreatePool is TestPoolAdmissionThroughAPI over snapshots: a pool's
// reservation is admitted against its parent, and the cluster capacity bounds
// the root.
func TestCreatePool(t *testing.T) {
	const fixed, small = rootRP + "/fixed", rootRP + "/fixed/small"
	c := snapshot(map[string]admission.Host{"esx-01": connected(10000, 65536), "esx-02": connected(10000, 65536)},
		map[string]admission.Pool{
			"/fixed":       cpuPool(alloc(3000, -1, false)),
			"/fixed/small": cpuPool(alloc(1000, -1, false)),
		})
	spec := func(cpu api.Allocation) api.PoolSpec { return api.PoolSpec{CPU: cpu, Mem: alloc(0, -1, true)} }
	tests := []struct {
		name, path, parent string
		spec               api.PoolSpec
		want               string
		sentinel           error
	}{
		{"child within a fixed parent", fixed + "/ok", fixed, spec(alloc(2000, -1, false)), "", nil},
		{"child above a fixed parent", fixed + "/big", fixed, spec(alloc(4000, -1, false)),
			"insufficient cpu in " + fixed + " for new pool " + fixed + "/big: 4000 MHz asked, 2000 MHz unreserved (its reservation of 3000 MHz is fixed)", api.ErrInsufficientResources},
		{"growing a child beyond its parent", small, fixed, spec(alloc(5000, -1, false)),
			"insufficient cpu in " + fixed + " to grow pool " + small + " from 1000 to 5000 MHz: 4000 MHz more asked, 2000 MHz unreserved (its reservation of 3000 MHz is fixed)", api.ErrInsufficientResources},
		{"pool above the cluster capacity", rootRP + "/huge", rootRP, spec(alloc(25000, -1, false)),
			"insufficient cpu in " + rootRP + " for new pool " + rootRP + "/huge: 25000 MHz asked, 17000 MHz unreserved (the root pool holds the cluster capacity, 20000 MHz)", api.ErrInsufficientResources},
		{"the rest of the cluster", rootRP + "/rest", rootRP, spec(alloc(17000, -1, false)), "", nil},
		{"memory as well", rootRP + "/mem", rootRP, api.PoolSpec{CPU: alloc(0, -1, true), Mem: alloc(131073, -1, false)},
			"insufficient memory in " + rootRP + " for new pool " + rootRP + "/mem: 131073 MB asked, 131072 MB unreserved (the root pool holds the cluster capacity, 131072 MB)", api.ErrInsufficientResources},
		{"invalid allocation", rootRP + "/bad", rootRP, spec(alloc(2000, 1000, false)),
			"cpu.limit 1000 is below cpu.reservation 2000", api.ErrInvalid},
		{"unknown parent", rootRP + "/x/y", rootRP + "/x", spec(alloc(0, -1, true)),
			"pool " + rootRP + "/x is not in the pool tree of " + rootRP, api.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, "CreatePool", admission.CreatePool(c, tt.path, tt.parent, tt.spec), tt.want, tt.sentinel)
		})
	}
}

// TestPoolLimitCapsVMs: a limit caps the reservations beneath the pool.
func TestPoolLimitCapsVMs(t *testing.T) {
	const capped = rootRP + "/capped"
	c := snapshot(map[string]admission.Host{"esx-01": running(connected(10000, 65536), 1, 1000, 0)},
		map[string]admission.Pool{"/capped": withVMs(cpuPool(alloc(0, 1500, true)), 1000, 0)})
	_, err := admission.PowerOn(c, nil, vmDir+"c2", nil, vmIn(capped, 1000))
	checkErr(t, "c2", err, "cannot power on /dc1/vm/c2: insufficient cpu in "+capped+": 1000 MHz asked, 500 MHz unreserved (its limit is 1500 MHz and 1000 MHz is already reserved)", api.ErrInsufficientResources)
	_, err = admission.PowerOn(c, nil, vmDir+"c2", nil, vmIn(capped, 500))
	checkErr(t, "c2 of 500 MHz", err, "", nil)
}

func TestFootprint(t *testing.T) {
	tests := []struct {
		name     string
		spec     api.VMSpec
		cpu, mem int64
	}{
		{"size when unlimited: 1000 MHz per vCPU", api.VMSpec{NumCPU: 2, MemoryMB: 1024, CPU: alloc(0, -1, true), Mem: alloc(0, -1, true)}, 2000, 1024},
		{"limits when set", api.VMSpec{NumCPU: 4, MemoryMB: 4096, CPU: alloc(0, 1000, false), Mem: alloc(0, 512, false)}, 1000, 512},
		{"a limit above the size counts in full", api.VMSpec{NumCPU: 1, MemoryMB: 512, CPU: alloc(0, 3000, false), Mem: alloc(0, 2048, false)}, 3000, 2048},
		{"a zero limit counts nothing", api.VMSpec{NumCPU: 2, MemoryMB: 512, CPU: alloc(0, 0, false), Mem: alloc(0, 0, false)}, 0, 0},
		{"no vCPU counts as one", api.VMSpec{MemoryMB: 256, CPU: alloc(0, -1, true), Mem: alloc(0, -1, true)}, 1000, 256},
		{"the reservation does not count", api.VMSpec{NumCPU: 1, MemoryMB: 512, CPU: alloc(800, -1, false), Mem: alloc(256, -1, false)}, 1000, 512},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if cpu, mem := admission.Footprint(tt.spec); cpu != tt.cpu || mem != tt.mem {
				t.Fatalf("Footprint = %d MHz, %d MB; want %d, %d", cpu, mem, tt.cpu, tt.mem)
			}
		})
	}
}

// TestCreateVM: one more VM counts against the vms quota of its pool and of
// every ancestor, nearest first.
func TestCreateVM(t *testing.T) {
	const dev, team = rootRP + "/dev", rootRP + "/team"
	vms := func(n int64) func(*quota.Limits) { return func(l *quota.Limits) { l.VMs = n } }
	tests := []struct {
		name   string
		levels []quota.Level
		want   string
	}{
		{"no quota", nil, ""},
		{"room for one more", []quota.Level{level(dev, vms(10), quota.Usage{VMs: 9})}, ""},
		{"pool full", []quota.Level{level(dev, vms(10), quota.Usage{VMs: 10})},
			"quota exceeded in " + dev + ": vms 10 + 1 > 10"},
		{"zero allows none", []quota.Level{level(dev, vms(0), quota.Usage{})},
			"quota exceeded in " + dev + ": vms 0 + 1 > 0"},
		{"ancestor full", []quota.Level{
			level(team+"/b", nil, quota.Usage{VMs: 1}),
			level(team, vms(3), quota.Usage{VMs: 3})},
			"quota exceeded in " + team + ": vms 3 + 1 > 3"},
		{"nearest full pool is named", []quota.Level{
			level(team+"/b", vms(1), quota.Usage{VMs: 1}),
			level(team, vms(3), quota.Usage{VMs: 3})},
			"quota exceeded in " + team + "/b: vms 1 + 1 > 1"},
		{"cpu and memory totals do not count at create", []quota.Level{
			level(dev, func(l *quota.Limits) { l.CPUMHz, l.MemMB = 0, 0 }, quota.Usage{})}, ""},
		{"a pool over its other limits still takes a VM", []quota.Level{
			level(dev, func(l *quota.Limits) { l.VMs, l.CPUMHz = 5, 1000 }, quota.Usage{VMs: 1, CPUMHz: 4000})}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, "CreateVM", admission.CreateVM(tt.levels), tt.want, api.ErrQuotaExceeded)
		})
	}
}

// TestPowerOnQuota: a powering-on VM's footprint (its limits, or its size
// when unlimited) counts against the cpu and memory totals of its pool and
// every ancestor, before any reservation is looked at.
func TestPowerOnQuota(t *testing.T) {
	const q1, team = rootRP + "/q1", rootRP + "/team"
	c := snapshot(map[string]admission.Host{"esx-01": connected(10000, 65536), "esx-02": connected(10000, 65536)},
		map[string]admission.Pool{
			"/q1":     cpuPool(alloc(0, -1, true)),
			"/team":   cpuPool(alloc(0, -1, true)),
			"/team/a": cpuPool(alloc(0, -1, true)),
		})
	totals := func(cpu, mem int64) func(*quota.Limits) {
		return func(l *quota.Limits) { l.CPUMHz, l.MemMB = cpu, mem }
	}
	sized := func(pool string, cpus int, mem, cpuLimit, memLimit int64) api.VMSpec {
		return api.VMSpec{Pool: pool, NumCPU: cpus, MemoryMB: mem, CPU: alloc(0, cpuLimit, true), Mem: alloc(0, memLimit, true)}
	}
	// q1 allows 3000 MHz and 2048 MB; q-a (2 vCPUs, 1024 MB) already runs.
	q1Level := level(q1, totals(3000, 2048), quota.Usage{VMs: 2, CPUMHz: 2000, MemMB: 1024})
	tests := []struct {
		name   string
		levels []quota.Level
		spec   api.VMSpec
		want   string
	}{
		{"2 vCPUs count 2000 MHz", []quota.Level{q1Level}, sized(q1, 2, 512, -1, -1),
			"cannot power on /dc1/vm/x: quota exceeded in " + q1 + ": cpu 2000 + 2000 > 3000 MHz"},
		{"1 vCPU fits", []quota.Level{q1Level}, sized(q1, 1, 512, -1, -1), ""},
		{"q-b fits once q-a is off and q-d's 1000 MHz limit is all that counts", []quota.Level{
			level(q1, totals(3000, 2048), quota.Usage{VMs: 4, CPUMHz: 1000, MemMB: 1024})}, sized(q1, 2, 512, -1, -1), ""},
		{"memory size counts", []quota.Level{q1Level}, sized(q1, 1, 1536, -1, -1),
			"cannot power on /dc1/vm/x: quota exceeded in " + q1 + ": memory 1024 + 1536 > 2048 MB"},
		{"the last MB fits", []quota.Level{q1Level}, sized(q1, 1, 1024, -1, -1), ""},
		{"a cpu limit counts instead of the vCPUs", []quota.Level{q1Level}, sized(q1, 4, 1024, 1000, -1), ""},
		{"a cpu limit above the room", []quota.Level{q1Level}, sized(q1, 1, 512, 1001, -1),
			"cannot power on /dc1/vm/x: quota exceeded in " + q1 + ": cpu 2000 + 1001 > 3000 MHz"},
		{"a memory limit counts instead of the size", []quota.Level{q1Level}, sized(q1, 1, 8192, -1, 1024), ""},
		{"cpu is checked before memory", []quota.Level{q1Level}, sized(q1, 2, 4096, -1, -1),
			"cannot power on /dc1/vm/x: quota exceeded in " + q1 + ": cpu 2000 + 2000 > 3000 MHz"},
		{"the vms count does not count again", []quota.Level{
			level(q1, func(l *quota.Limits) { l.VMs = 2 }, quota.Usage{VMs: 2})}, sized(q1, 1, 512, -1, -1), ""},
		{"ancestor cpu total", []quota.Level{
			level(team+"/a", nil, quota.Usage{VMs: 1, CPUMHz: 1000, MemMB: 512}),
			level(team, totals(4000, -1), quota.Usage{VMs: 3, CPUMHz: 3500, MemMB: 1536})},
			sized(team+"/a", 1, 512, -1, -1),
			"cannot power on /dc1/vm/x: quota exceeded in " + team + ": cpu 3500 + 1000 > 4000 MHz"},
		{"ancestor memory total", []quota.Level{
			level(team+"/a", totals(-1, 4096), quota.Usage{MemMB: 512}),
			level(team, totals(-1, 2048), quota.Usage{MemMB: 1536})},
			sized(team+"/a", 1, 1024, -1, -1),
			"cannot power on /dc1/vm/x: quota exceeded in " + team + ": memory 1536 + 1024 > 2048 MB"},
		{"the pool is checked before the ancestor", []quota.Level{
			level(team+"/a", totals(1000, -1), quota.Usage{CPUMHz: 1000}),
			level(team, totals(1000, -1), quota.Usage{CPUMHz: 1000})},
			sized(team+"/a", 1, 512, -1, -1),
			"cannot power on /dc1/vm/x: quota exceeded in " + team + "/a: cpu 1000 + 1000 > 1000 MHz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := admission.PowerOn(c, tt.levels, vmDir+"x", nil, tt.spec)
			checkErr(t, "PowerOn", err, tt.want, api.ErrQuotaExceeded)
			if err == nil && d.Host == "" {
				t.Fatalf("admitted without a host: %+v", d)
			}
		})
	}

	t.Run("quota is checked before reservations", func(t *testing.T) {
		spec := sized(q1, 2, 512, -1, -1)
		spec.CPU.Reservation = 50000 // beyond the cluster too
		_, err := admission.PowerOn(c, []quota.Level{q1Level}, vmDir+"x", nil, spec)
		checkErr(t, "PowerOn", err, "cannot power on /dc1/vm/x: quota exceeded in "+q1+": cpu 2000 + 2000 > 3000 MHz", api.ErrQuotaExceeded)
	})
}

// TestRoomForOne is the decision each loser of TestConcurrentAdmission gets
// once the winner is in the snapshot: the store serialises admission with
// the write, so every later request sees the first one admitted.
func TestRoomForOne(t *testing.T) {
	const p = rootRP + "/p"
	hosts := map[string]admission.Host{"esx-01": connected(10000, 65536), "esx-02": connected(10000, 65536)}
	cpu1000 := func(l *quota.Limits) { l.CPUMHz = 1000 }

	t.Run("power-on against a cpu quota", func(t *testing.T) {
		c := snapshot(hosts, map[string]admission.Pool{"/p": cpuPool(alloc(0, -1, true))})
		levels := []quota.Level{level(p, cpu1000, quota.Usage{VMs: 32})}
		_, err := admission.PowerOn(c, levels, vmDir+"v00", nil, vmIn(p, 0))
		checkErr(t, "first", err, "", nil)
		levels[0].Used.CPUMHz = 1000
		_, err = admission.PowerOn(c, levels, vmDir+"v01", nil, vmIn(p, 0))
		checkErr(t, "second", err, "cannot power on /dc1/vm/v01: quota exceeded in "+p+": cpu 1000 + 1000 > 1000 MHz", api.ErrQuotaExceeded)
	})

	t.Run("power-on against a fixed pool reservation", func(t *testing.T) {
		c := snapshot(hosts, map[string]admission.Pool{"/p": cpuPool(alloc(1500, -1, false))})
		_, err := admission.PowerOn(c, nil, vmDir+"v00", nil, vmIn(p, 1000))
		checkErr(t, "first", err, "", nil)
		c.Pools[p] = withVMs(c.Pools[p], 1000, 0)
		_, err = admission.PowerOn(c, nil, vmDir+"v01", nil, vmIn(p, 1000))
		checkErr(t, "second", err, "cannot power on /dc1/vm/v01: insufficient cpu in "+p+": 1000 MHz asked, 500 MHz unreserved (its reservation of 1500 MHz is fixed)", api.ErrInsufficientResources)
	})

	t.Run("create against a vms quota", func(t *testing.T) {
		vms1 := func(l *quota.Limits) { l.VMs = 1 }
		checkErr(t, "first", admission.CreateVM([]quota.Level{level(p, vms1, quota.Usage{})}), "", nil)
		checkErr(t, "second", admission.CreateVM([]quota.Level{level(p, vms1, quota.Usage{VMs: 1})}),
			"quota exceeded in "+p+": vms 1 + 1 > 1", api.ErrQuotaExceeded)
	})

	t.Run("create powered on against a cpu quota", func(t *testing.T) {
		// Created (vms counts it), then powered on in the same transaction.
		c := snapshot(hosts, map[string]admission.Pool{"/p": cpuPool(alloc(0, -1, true))})
		levels := []quota.Level{level(p, cpu1000, quota.Usage{VMs: 2, CPUMHz: 1000})}
		checkErr(t, "create", admission.CreateVM(levels), "", nil)
		_, err := admission.PowerOn(c, levels, vmDir+"c01", nil, vmIn(p, 0))
		checkErr(t, "power-on", err, "cannot power on /dc1/vm/c01: quota exceeded in "+p+": cpu 1000 + 1000 > 1000 MHz", api.ErrQuotaExceeded)
	})
}

// TestVMOfDestroyedPoolsInTheRoot is TestDestroyNestedPoolsKeepsAdmissionWorking
// over snapshots: once its nested pools are destroyed, the VM deep (1000
// MHz) runs in the root pool, and the cluster still admits.
func TestVMOfDestroyedPoolsInTheRoot(t *testing.T) {
	const dev = rootRP + "/dev"
	c := snapshot(map[string]admission.Host{"esx-01": running(connected(10000, 16384), 1, 1000, 0)},
		map[string]admission.Pool{"": withVMs(cpuPool(alloc(0, -1, true)), 1000, 0)})
	devSpec := api.PoolSpec{CPU: alloc(2000, -1, true), Mem: alloc(0, -1, true)}
	checkErr(t, "dev", admission.CreatePool(c, dev, rootRP, devSpec), "", nil)
	c.Pools[dev] = admission.Pool{Spec: devSpec}
	d, err := admission.PowerOn(c, nil, vmDir+"next", nil, vmIn(dev, 1000))
	checkErr(t, "next", err, "", nil)
	c.Pools[dev] = withVMs(c.Pools[dev], 1000, 0)
	c.Hosts[clusterPath+"/"+d.Host] = running(c.Hosts[clusterPath+"/"+d.Host], 1, 1000, 0)
	// deep (1000, in the root pool) + dev's 2000 reservation, which covers next.
	if u := cpuUsage(t, c, rootRP); u.ReservationUsed != 3000 || u.ReservationUsedForVm != 2000 || u.UnreservedForVm != 7000 {
		t.Errorf("root pool CPU %+v, want reservationUsed 3000, forVm 2000, unreserved 7000", u)
	}
}

// TestPowerOnPlacement: where an admitted VM lands, and the refusals of
// placement, with the pool tree and the hosts agreeing.
func TestPowerOnPlacement(t *testing.T) {
	pinnedTo := func(s api.VMSpec, host string) api.VMSpec { s.Host, s.Pinned = host, true; return s }
	tests := []struct {
		name  string
		c     admission.Cluster
		spec  api.VMSpec
		host  string // chosen host
		want  string // refusal
		is    error
		hosts int // verdicts when placement ran, if not one per host
	}{
		{
			name: "most free after placement wins",
			c: snapshot(map[string]admission.Host{
				"esx-01": running(connected(8000, 16384), 2, 2000, 0),
				"esx-02": running(connected(8000, 16384), 1, 1000, 0),
				"esx-03": running(connected(8000, 16384), 2, 2000, 0),
			}, map[string]admission.Pool{"": withVMs(cpuPool(alloc(0, -1, true)), 5000, 0)}),
			spec: vmIn(rootRP, 1000), host: "esx-02",
		},
		{
			name: "maintenance and not responding hosts get nothing",
			c: snapshot(map[string]admission.Host{
				"esx-01": running(connected(8000, 16384), 2, 7000, 0),
				"esx-02": inMaintenance(connected(8000, 16384)),
				"esx-03": notResponding(connected(8000, 16384)),
			}, map[string]admission.Pool{"": withVMs(cpuPool(alloc(0, -1, true)), 7000, 0)}),
			spec: vmIn(rootRP, 500), host: "esx-01",
		},
		{
			// TestPlacementNothingFitsGivesReasonPerHost: 8000 MHz of
			// connected capacity admits 5000 in the pool tree, but no single
			// host has it.
			name: "nothing fits gives a reason per host",
			c: snapshot(map[string]admission.Host{
				"esx-01": connected(4000, 8192),
				"esx-02": connected(4000, 8192),
				"esx-03": inMaintenance(running(connected(6000, 8192), 1, 2000, 0)),
			}, map[string]admission.Pool{"": withVMs(cpuPool(alloc(0, -1, true)), 2000, 0)}),
			spec: api.VMSpec{Pool: rootRP, NumCPU: 2, MemoryMB: 4096, CPU: alloc(5000, -1, false), Mem: alloc(1024, -1, false)},
			want: "no host can run big: esx-01: not enough unreserved CPU (4000 MHz free, 5000 MHz asked); esx-02: not enough unreserved CPU (4000 MHz free, 5000 MHz asked); esx-03: in maintenance mode: insufficient resources",
			is:   api.ErrInsufficientResources,
		},
		{
			name: "not responding is a reason",
			c: snapshot(map[string]admission.Host{
				"esx-01": notResponding(connected(4000, 8192)),
				"esx-02": running(connected(4000, 8192), 1, 3000, 0),
				"esx-03": running(connected(4000, 8192), 1, 3000, 0),
			}, map[string]admission.Pool{"": withVMs(cpuPool(alloc(0, -1, true)), 6000, 0)}),
			spec: vmIn(rootRP, 1500),
			want: "no host can run big: esx-01: not responding; esx-02: not enough unreserved CPU (1000 MHz free, 1500 MHz asked); esx-03: not enough unreserved CPU (1000 MHz free, 1500 MHz asked): insufficient resources",
			is:   api.ErrInsufficientResources,
		},
		{
			name: "the pool tree refuses before placement",
			c:    snapshot(map[string]admission.Host{"esx-01": connected(4000, 8192)}, nil),
			spec: vmIn(rootRP, 4001),
			want: "cannot power on /dc1/vm/big: insufficient cpu in " + rootRP + ": 4001 MHz asked, 4000 MHz unreserved (the root pool holds the cluster capacity, 4000 MHz)",
			is:   api.ErrInsufficientResources,
		},
		{
			name: "a cluster without hosts",
			c:    snapshot(nil, nil),
			spec: vmIn(rootRP, 0),
			want: "no host can run big: cluster has no hosts: insufficient resources",
			is:   api.ErrInsufficientResources,
		},
		{
			name: "a pool not in the cluster",
			c:    snapshot(map[string]admission.Host{"esx-01": connected(4000, 8192)}, nil),
			spec: vmIn(rootRP+"/gone", 0),
			want: "cannot power on /dc1/vm/big: pool " + rootRP + "/gone is not in the pool tree of " + rootRP,
			is:   api.ErrNotFound,
		},
		{
			name: "pinned to the fuller host",
			c: snapshot(map[string]admission.Host{
				"esx-01": running(connected(10000, 16384), 3, 6000, 0),
				"esx-02": connected(10000, 16384),
			}, nil),
			spec: pinnedTo(vmIn(rootRP, 1000), clusterPath+"/esx-01"), host: "esx-01", hosts: 1,
		},
		{
			// TestDRSPlacesUnpinnedVMAgainAtPowerOn: only its pinned host
			// is considered, and its reason given.
			name: "pinned to a host in maintenance",
			c: snapshot(map[string]admission.Host{
				"esx-01": inMaintenance(connected(10000, 16384)),
				"esx-02": connected(10000, 16384),
			}, nil),
			spec:  pinnedTo(vmIn(rootRP, 1000), clusterPath+"/esx-01"),
			want:  "no host can run big: esx-01: in maintenance mode: insufficient resources",
			is:    api.ErrInsufficientResources,
			hosts: 1,
		},
		{
			name: "pinned to a host not in the cluster",
			c:    snapshot(map[string]admission.Host{"esx-01": connected(10000, 16384)}, nil),
			spec: pinnedTo(vmIn(rootRP, 1000), "/dc1/host/c2/esx-09"),
			want: "cannot power on /dc1/vm/big: it is pinned to host /dc1/host/c2/esx-09, which is not in cluster " + clusterPath + ": insufficient resources",
			is:   api.ErrInsufficientResources,
		},
		{
			name: "an unpinned VM is placed again, away from its last host",
			c: snapshot(map[string]admission.Host{
				"esx-01": inMaintenance(running(connected(10000, 16384), 1, 1000, 0)),
				"esx-02": connected(10000, 16384),
			}, map[string]admission.Pool{"": withVMs(cpuPool(alloc(0, -1, true)), 1000, 0)}),
			spec: func() api.VMSpec { s := vmIn(rootRP, 1000); s.Host = clusterPath + "/esx-01"; return s }(),
			host: "esx-02",
		},
		{
			name: "memory reservations are placed too",
			c: snapshot(map[string]admission.Host{
				"esx-01": running(connected(10000, 16384), 1, 0, 12288),
				"esx-02": running(connected(10000, 16384), 1, 0, 4096),
			}, map[string]admission.Pool{"": withVMs(cpuPool(alloc(0, -1, true)), 0, 16384)}),
			spec: api.VMSpec{Pool: rootRP, NumCPU: 1, MemoryMB: 8192, CPU: alloc(0, -1, false), Mem: alloc(8192, -1, false)},
			host: "esx-02",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := admission.PowerOn(tt.c, nil, vmDir+"big", nil, tt.spec)
			checkErr(t, "PowerOn", err, tt.want, tt.is)
			if d.Host != tt.host {
				t.Errorf("placed on %q, want %q\n%s", d.Host, tt.host, d.Explain())
			}
			n := tt.hosts
			if n == 0 {
				n = len(tt.c.Hosts)
			}
			if d.Verdicts != nil && len(d.Verdicts) != n {
				t.Errorf("%d verdicts, want %d: %+v", len(d.Verdicts), n, d.Verdicts)
			}
		})
	}
}

// TestPowerOnSequence is TestPlacementSpreadsAndSkipsMaintenance over
// snapshots: each decision is applied to the snapshot before the next.
func TestPowerOnSequence(t *testing.T) {
	c := snapshot(map[string]admission.Host{
		"esx-01": connected(8000, 16384), "esx-02": connected(8000, 16384), "esx-03": connected(8000, 16384),
	}, nil)
	on := func(name string, res int64) string {
		t.Helper()
		d, err := admission.PowerOn(c, nil, vmDir+name, nil, vmIn(rootRP, res))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		hp := clusterPath + "/" + d.Host
		c.Hosts[hp] = running(c.Hosts[hp], 1, res, 0)
		c.Pools[rootRP] = withVMs(c.Pools[rootRP], res, 0)
		return d.Host
	}
	per := map[string]int{}
	for _, n := range []string{"web0", "web1", "web2", "web3", "web4", "web5"} {
		per[on(n, 1000)]++
	}
	if per["esx-01"] != 2 || per["esx-02"] != 2 || per["esx-03"] != 2 {
		t.Fatalf("6 equal VMs on 3 equal hosts landed %v, want 2 each", per)
	}
	c.Hosts[clusterPath+"/esx-02"] = inMaintenance(c.Hosts[clusterPath+"/esx-02"])
	// The root pool loses esx-02's free capacity; its two VMs' 2000 MHz stay counted.
	if cpu, _ := c.Capacity(); cpu != 16000+2000 {
		t.Fatalf("Capacity = %d MHz with one of three 8 GHz hosts in maintenance", cpu)
	}
	for _, n := range []string{"late0", "late1", "late2", "late3", "late4", "late5"} {
		if h := on(n, 500); h == "esx-02" {
			t.Fatalf("%s placed on esx-02 in maintenance", n)
		}
	}
	h := c.Hosts[clusterPath+"/esx-02"]
	h.Spec.Maintenance, h.Status.State = false, api.HostConnected
	c.Hosts[clusterPath+"/esx-02"] = h
	if got := on("back", 1000); got != "esx-02" {
		t.Errorf("after maintenance.exit the emptiest host esx-02 should win, got %s", got)
	}
}

// TestPowerOnRules: the cluster's DRS rules, with the running members the
// snapshot names (TestPlacementAntiAffinity over snapshots).
func TestPowerOnRules(t *testing.T) {
	c := snapshot(map[string]admission.Host{
		"esx-01": running(connected(100000, 262144), 2, 2000, 0), // web1, web2: the big host wins without the rule
		"esx-02": connected(10000, 32768),
	}, map[string]admission.Pool{"": withVMs(cpuPool(alloc(0, -1, true)), 2000, 0)})
	c.Spec.Rules = []api.ClusterRule{{Name: "db-apart", Enabled: true, Mandatory: true, Kind: "anti-affinity", VMs: []string{"db1", "db2", "db3"}}}
	c.Running = map[string]string{}

	d, err := admission.PowerOn(c, nil, vmDir+"db1", nil, vmIn(rootRP, 1000))
	if err != nil || d.Host != "esx-01" {
		t.Fatalf("db1 on %q (%v), want the big esx-01", d.Host, err)
	}
	c.Running["db1"] = "esx-01"
	d, err = admission.PowerOn(c, nil, vmDir+"db2", nil, vmIn(rootRP, 1000))
	if err != nil || d.Host != "esx-02" {
		t.Fatalf("db2 on %q (%v), want esx-02 away from db1", d.Host, err)
	}
	c.Running["db2"] = "esx-02"
	_, err = admission.PowerOn(c, nil, vmDir+"db3", nil, vmIn(rootRP, 1000))
	checkErr(t, "db3", err, `no host can run db3: esx-01: anti-affinity rule "db-apart" (db1 runs there); esx-02: anti-affinity rule "db-apart" (db2 runs there): insufficient resources`, api.ErrInsufficientResources)
	// A VM the rule does not name goes where it fits best.
	if d, err := admission.PowerOn(c, nil, vmDir+"web3", nil, vmIn(rootRP, 1000)); err != nil || d.Host != "esx-01" {
		t.Fatalf("web3 on %q (%v), want esx-01", d.Host, err)
	}
}

// TestPowerOnPeers: among hosts that fit equally, the one running fewer
// members of the VM's own workload wins, so a set's replicas spread.
func TestPowerOnPeers(t *testing.T) {
	even := func(p1, p2 int) map[string]admission.Host {
		return map[string]admission.Host{
			"esx-01": peers(running(connected(10000, 16384), 2, 2000, 0), p1),
			"esx-02": peers(running(connected(10000, 16384), 2, 2000, 0), p2),
		}
	}
	tests := []struct {
		name  string
		hosts map[string]admission.Host
		rules []api.ClusterRule
		want  string
	}{
		{"no peers: name decides", even(0, 0), nil, "esx-01"},
		{"fewer peers wins", even(1, 0), nil, "esx-02"},
		{"fewer peers wins, whatever the counts", even(2, 3), nil, "esx-01"},
		{"fewer peers beats more free capacity", map[string]admission.Host{
			"esx-01": peers(connected(10000, 16384), 1),
			"esx-02": peers(running(connected(10000, 16384), 4, 6000, 0), 0),
		}, nil, "esx-02"},
		{"fewer peers beats fewer VMs", map[string]admission.Host{
			"esx-01": peers(running(connected(10000, 16384), 1, 0, 0), 1),
			"esx-02": peers(running(connected(10000, 16384), 5, 0, 0), 0),
		}, nil, "esx-02"},
		{"equal peers: score decides", map[string]admission.Host{
			"esx-01": peers(running(connected(10000, 16384), 1, 4000, 0), 1),
			"esx-02": peers(running(connected(10000, 16384), 1, 1000, 0), 1),
		}, nil, "esx-02"},
		{"a should rule beats peers", even(2, 0), []api.ClusterRule{
			{Name: "pref", Enabled: true, Kind: "vm-host", Affine: true, VMs: []string{"web-2"}, Hosts: []string{"esx-01"}},
		}, "esx-01"},
		{"a host without room does not count, however few its peers", map[string]admission.Host{
			"esx-01": peers(running(connected(10000, 16384), 1, 9500, 0), 0),
			"esx-02": peers(connected(10000, 16384), 3),
		}, nil, "esx-02"},
		{"a host in maintenance does not count", map[string]admission.Host{
			"esx-01": inMaintenance(connected(10000, 16384)),
			"esx-02": peers(connected(10000, 16384), 3),
		}, nil, "esx-02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := snapshot(tt.hosts, nil)
			var res int64
			for _, h := range tt.hosts {
				res += h.CPUReserved
			}
			c.Pools[rootRP] = withVMs(c.Pools[rootRP], res, 0)
			c.Spec.Rules = tt.rules
			d, err := admission.PowerOn(c, nil, vmDir+"web-2", nil, vmIn(rootRP, 1000))
			if err != nil {
				t.Fatalf("PowerOn: %v", err)
			}
			if d.Host != tt.want {
				t.Errorf("placed on %s, want %s\n%s", d.Host, tt.want, d.Explain())
			}
		})
	}
}

// TestCapacity: the root pool holds the connected hosts not in maintenance,
// plus exactly what running VMs still reserve on the others, which lend no
// free capacity.
func TestCapacity(t *testing.T) {
	const maxInt = math.MaxInt64
	tests := []struct {
		name     string
		hosts    map[string]admission.Host
		cpu, mem int64
	}{
		{"no hosts", nil, 0, 0},
		{"connected hosts", map[string]admission.Host{
			"esx-01": running(connected(10000, 65536), 3, 6000, 1024), "esx-02": connected(10000, 65536)}, 20000, 131072},
		{"in maintenance: only what its VMs reserve", map[string]admission.Host{
			"esx-01": inMaintenance(running(connected(10000, 16384), 1, 6000, 2048)), "esx-02": connected(10000, 16384)}, 16000, 18432},
		{"entering maintenance counts as in it", map[string]admission.Host{
			"esx-01": func() admission.Host {
				h := running(connected(10000, 16384), 1, 6000, 2048)
				h.Spec.Maintenance = true
				return h
			}(),
			"esx-02": connected(10000, 16384)}, 16000, 18432},
		{"not responding: only what its VMs reserve", map[string]admission.Host{
			"esx-01": notResponding(running(connected(10000, 16384), 2, 3000, 1024)), "esx-02": connected(10000, 16384)}, 13000, 17408},
		{"an empty host in maintenance counts nothing", map[string]admission.Host{
			"esx-01": inMaintenance(connected(10000, 16384))}, 0, 0},
		{"an excluded host counts at most its capacity", map[string]admission.Host{
			"esx-01": notResponding(running(connected(4000, 8192), 3, 5000, 9000))}, 4000, 8192},
		{"a huge host does not wrap the total", map[string]admission.Host{
			"esx-01": connected(maxInt-10, maxInt-10), "esx-02": connected(10000, 65536)}, maxInt, maxInt},
		{"two huge hosts do not wrap the total", map[string]admission.Host{
			"esx-01": connected(maxInt, maxInt), "esx-02": connected(maxInt, maxInt), "esx-03": connected(1, 1)}, maxInt, maxInt},
		{"a huge reservation on an excluded host does not wrap the total", map[string]admission.Host{
			"esx-01": inMaintenance(running(connected(maxInt, maxInt), 1, maxInt-1, maxInt-1)), "esx-02": connected(10000, 65536)}, maxInt, maxInt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := snapshot(tt.hosts, nil)
			if cpu, mem := c.Capacity(); cpu != tt.cpu || mem != tt.mem {
				t.Fatalf("Capacity = %d MHz, %d MB; want %d, %d", cpu, mem, tt.cpu, tt.mem)
			}
			tree, err := c.Tree()
			if err != nil {
				t.Fatalf("Tree: %v", err)
			}
			if u, _ := tree.Usage(rootRP, pools.CPU); u.Reservation != tt.cpu || u.Limit != tt.cpu {
				t.Fatalf("root pool CPU %+v, want the capacity %d", u, tt.cpu)
			}
		})
	}

	t.Run("a huge host still admits and places", func(t *testing.T) {
		c := snapshot(map[string]admission.Host{"esx-01": connected(maxInt-10, maxInt-10), "esx-02": connected(10000, 65536)}, nil)
		d, err := admission.PowerOn(c, nil, vmDir+"big", nil, vmIn(rootRP, maxInt/2))
		if err != nil || d.Host != "esx-01" {
			t.Fatalf("PowerOn = %q, %v; want esx-01", d.Host, err)
		}
		err = admission.CreatePool(c, rootRP+"/big", rootRP, api.PoolSpec{CPU: alloc(maxInt-1, -1, false), Mem: alloc(0, -1, true)})
		checkErr(t, "CreatePool", err, "", nil)
	})

	t.Run("the maintenance host lends no free capacity", func(t *testing.T) {
		// TestMaintenanceHostKeepsItsVMsReservations: held (6000 MHz) stays
		// on esx-01 in maintenance; esx-02 is empty.
		c := snapshot(map[string]admission.Host{
			"esx-01": inMaintenance(running(connected(10000, 16384), 1, 6000, 0)),
			"esx-02": connected(10000, 16384),
		}, map[string]admission.Pool{"": withVMs(cpuPool(alloc(0, -1, true)), 6000, 0)})
		want := pools.Usage{Reservation: 16000, Limit: 16000, ReservationUsed: 6000, ReservationUsedForVm: 6000, UnreservedForPool: 10000, UnreservedForVm: 10000, MaxUsage: 16000}
		if got := cpuUsage(t, c, rootRP); got != want {
			t.Errorf("root pool CPU\n got  %+v\n want %+v", got, want)
		}
		d, err := admission.PowerOn(c, nil, vmDir+"next", nil, vmIn(rootRP, 5000))
		if err != nil || d.Host != "esx-02" {
			t.Fatalf("next = %q, %v; want esx-02", d.Host, err)
		}
		// esx-01's 4000 MHz free is not the cluster's while it is in maintenance.
		_, err = admission.PowerOn(c, nil, vmDir+"more", nil, vmIn(rootRP, 10001))
		checkErr(t, "more", err, "cannot power on /dc1/vm/more: insufficient cpu in "+rootRP+": 10001 MHz asked, 10000 MHz unreserved (the root pool holds the cluster capacity, 16000 MHz)", api.ErrInsufficientResources)
	})
}

// TestSnapshotIsNotChanged: decisions only read the snapshot.
func TestSnapshotIsNotChanged(t *testing.T) {
	c := snapshot(map[string]admission.Host{"esx-01": running(connected(10000, 16384), 1, 2000, 0)},
		map[string]admission.Pool{"/a": withVMs(cpuPool(alloc(0, -1, true)), 2000, 0), "/b": cpuPool(alloc(0, -1, true))})
	pools0, hosts0 := maps.Clone(c.Pools), maps.Clone(c.Hosts)
	old := vmIn(rootRP+"/a", 2000)
	old.Host, old.PowerState = clusterPath+"/esx-01", api.PoweredOn
	spec := old
	spec.Pool, spec.CPU.Reservation = rootRP+"/b", 3000
	if err := admission.ChangeRunning(c, old, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := admission.PowerOn(c, nil, vmDir+"x", nil, vmIn(rootRP+"/b", 1000)); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(c.Pools, pools0) || !maps.EqualFunc(c.Hosts, hosts0, func(a, b admission.Host) bool {
		return a.Spec == b.Spec && a.Status == b.Status && a.CPUReserved == b.CPUReserved && a.MemReserved == b.MemReserved && a.Running == b.Running && a.Peers == b.Peers
	}) {
		t.Fatalf("decisions changed the snapshot:\n pools %+v\n was   %+v", c.Pools, pools0)
	}
}
