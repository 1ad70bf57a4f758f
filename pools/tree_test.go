package pools

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

const rootPath = "/dc1/host/c1/Resources"

func fixed(res int64) Allocation {
	return Allocation{Reservation: res, Limit: -1, Expandable: false, Shares: Shares{Level: "normal"}}
}

func expandable(res int64) Allocation {
	return Allocation{Reservation: res, Limit: -1, Expandable: true, Shares: Shares{Level: "normal"}}
}

func withLimit(a Allocation, limit int64) Allocation {
	a.Limit = limit
	return a
}

// cpuPool is a pool that only matters for CPU; memory keeps govc defaults.
func cpuPool(name, parent string, cpu Allocation, vmCPU int64) Pool {
	p := Pool{Path: rootPath + name, Parent: rootPath + parent, CPU: cpu, Mem: DefaultAllocation(), VMCPUReservation: vmCPU}
	if parent == "" {
		p.Parent = rootPath
	}
	return p
}

func mustTree(t testing.TB, capCPU, capMem int64, pools ...Pool) *Tree {
	t.Helper()
	tr, err := NewTree(rootPath, capCPU, capMem, pools)
	if err != nil {
		t.Fatalf("NewTree: %v", err)
	}
	return tr
}

func mustUsage(t testing.TB, tr *Tree, path string, r Resource) Usage {
	t.Helper()
	u, err := tr.Usage(path, r)
	if err != nil {
		t.Fatalf("Usage(%s, %s): %v", path, r, err)
	}
	return u
}

// VMware's worked example (vSphere Resource Management, "Expandable
// Reservations Example 1"). RP-MOM must be fixed for the second case to be
// refused as documented: were it expandable, RP-KID's shortfall would carry on
// borrowing from the root, which has plenty of capacity.
func TestVMwareExpandableReservationExample(t *testing.T) {
	const (
		mom = rootPath + "/RP-MOM"
		kid = mom + "/RP-KID"
	)
	build := func(momExpandable bool, momVMs int64) *Tree {
		momAlloc := fixed(6000)
		momAlloc.Expandable = momExpandable
		return mustTree(t, 100000, 100000,
			Pool{Path: mom, Parent: rootPath, CPU: momAlloc, Mem: DefaultAllocation(), VMCPUReservation: momVMs},
			Pool{Path: kid, Parent: mom, CPU: expandable(2000), Mem: DefaultAllocation(), VMCPUReservation: 2000}, // VM-K1
		)
	}

	t.Run("VM-K2 borrows from RP-MOM", func(t *testing.T) {
		tr := build(false, 1000) // VM-M1
		if u := mustUsage(t, tr, mom, CPU); u.ReservationUsed != 3000 || u.UnreservedForVm != 3000 {
			t.Fatalf("RP-MOM before: used %d unreserved %d, want 3000 and 6000-1000-2000=3000", u.ReservationUsed, u.UnreservedForVm)
		}
		if u := mustUsage(t, tr, kid, CPU); u.UnreservedForVm != 3000 {
			t.Fatalf("RP-KID can reserve %d, want 0 own + 3000 borrowable", u.UnreservedForVm)
		}
		if err := tr.PowerOnVM(kid, 2000, 0); err != nil { // VM-K2
			t.Fatalf("VM-K2 power-on refused: %v", err)
		}
		kidU, momU := mustUsage(t, tr, kid, CPU), mustUsage(t, tr, mom, CPU)
		if kidU.Reservation != 2000 || kidU.ReservationUsed != 4000 {
			t.Fatalf("RP-KID after: reservation %d used %d, want 2000 and 4000", kidU.Reservation, kidU.ReservationUsed)
		}
		// RP-MOM counts what RP-KID really takes (4000), not its 2000 reservation.
		if momU.ReservationUsed != 5000 || momU.UnreservedForVm != 1000 {
			t.Fatalf("RP-MOM after: used %d unreserved %d, want 5000 and 1000", momU.ReservationUsed, momU.UnreservedForVm)
		}
	})

	t.Run("RP-MOM runs 3 GHz of its own VMs: VM-K2 refused", func(t *testing.T) {
		tr := build(false, 3000)
		err := tr.AdmitVM(kid, 2000, 0)
		want := "insufficient cpu in " + kid + ": 2000 MHz asked, 1000 MHz unreserved " +
			"(expandable reservation reached " + mom + ", which is fixed)"
		if err == nil || err.Error() != want {
			t.Fatalf("AdmitVM = %v\nwant %s", err, want)
		}
		if !errors.Is(err, api.ErrInsufficientResources) {
			t.Fatalf("error does not wrap api.ErrInsufficientResources")
		}
		if err := tr.PowerOnVM(kid, 2000, 0); err == nil {
			t.Fatalf("PowerOnVM admitted what AdmitVM refused")
		}
		if u := mustUsage(t, tr, kid, CPU); u.ReservationUsed != 2000 {
			t.Fatalf("refused power-on changed the tree: RP-KID used %d", u.ReservationUsed)
		}
	})

	t.Run("an expandable RP-MOM would borrow on from the root", func(t *testing.T) {
		if err := build(true, 3000).AdmitVM(kid, 2000, 0); err != nil {
			t.Fatalf("AdmitVM = %v, want admitted through an expandable RP-MOM", err)
		}
	})
}

// testTree (CPU MHz; memory is all defaults under an 8192 MB root):
//
//	Resources             capacity 10000
//	├── a   fixed 4000, VMs 1000
//	│   └── b   expandable 1000, VMs 500
//	│       └── c   expandable 0
//	│           └── d   expandable 0, limit 1500
//	└── e   expandable 0, limit 3000
//	    └── f   expandable 1000
func testTree(t testing.TB) *Tree {
	return mustTree(t, 10000, 8192,
		cpuPool("/a/b/c/d", "/a/b/c", withLimit(expandable(0), 1500), 0), // children before parents on purpose
		cpuPool("/a", "", fixed(4000), 1000),
		cpuPool("/a/b", "/a", expandable(1000), 500),
		cpuPool("/a/b/c", "/a/b", expandable(0), 0),
		cpuPool("/e", "", withLimit(expandable(0), 3000), 0),
		cpuPool("/e/f", "/e", expandable(1000), 0),
	)
}

func TestAdmitVM(t *testing.T) {
	tests := []struct {
		name     string
		pool     string
		cpu, mem int64
		wantErr  string // "" admits
		is       error
	}{
		{"fixed pool within its unreserved", "/a", 2000, 0, "", nil},
		{"fixed pool over its unreserved", "/a", 2001, 0,
			"insufficient cpu in " + rootPath + "/a: 2001 MHz asked, 2000 MHz unreserved (its reservation of 4000 MHz is fixed)", api.ErrInsufficientResources},
		{"zero reservation always fits", "/a", 0, 0, "", nil},
		{"expandable within its own reservation", "/a/b", 500, 0, "", nil},
		{"expandable borrows from fixed parent", "/a/b", 2500, 0, "", nil},
		{"borrowing through several levels", "/a/b/c", 2500, 0, "", nil},
		{"borrowing stops at the fixed ancestor", "/a/b/c", 2501, 0,
			"insufficient cpu in " + rootPath + "/a/b/c: 2501 MHz asked, 2500 MHz unreserved (expandable reservation reached " + rootPath + "/a, which is fixed)", api.ErrInsufficientResources},
		{"own limit within", "/a/b/c/d", 1500, 0, "", nil},
		{"own limit", "/a/b/c/d", 1501, 0,
			"insufficient cpu in " + rootPath + "/a/b/c/d: 1501 MHz asked, 1500 MHz unreserved (its limit is 1500 MHz and 0 MHz is already reserved)", api.ErrInsufficientResources},
		{"ancestor limit within", "/e/f", 3000, 0, "", nil},
		{"ancestor limit bounds what is reserved beneath it", "/e/f", 3001, 0,
			"insufficient cpu in " + rootPath + "/e/f: 3001 MHz asked, 3000 MHz unreserved (limit 3000 MHz on " + rootPath + "/e, with 1000 MHz already reserved beneath it)", api.ErrInsufficientResources},
		{"root within capacity", "", 5000, 8192, "", nil},
		{"root over capacity", "", 5001, 0,
			"insufficient cpu in " + rootPath + ": 5001 MHz asked, 5000 MHz unreserved (the root pool holds the cluster capacity, 10000 MHz)", api.ErrInsufficientResources},
		{"memory borrows up to the root", "/a/b/c", 0, 8193,
			"insufficient memory in " + rootPath + "/a/b/c: 8193 MB asked, 8192 MB unreserved (expandable reservation reached " + rootPath + ", which is fixed)", api.ErrInsufficientResources},
		{"both resources short are both reported", "/a", 2001, 9000,
			"insufficient cpu in " + rootPath + "/a: 2001 MHz asked, 2000 MHz unreserved (its reservation of 4000 MHz is fixed)\n" +
				"insufficient memory in " + rootPath + "/a: 9000 MB asked, 8192 MB unreserved (expandable reservation reached " + rootPath + ", which is fixed)", api.ErrInsufficientResources},
		{"unknown pool", "/nope", 1, 1, "pool " + rootPath + "/nope is not in the pool tree of " + rootPath, api.ErrNotFound},
		{"negative reservation", "/a", -1, 0, "VM reservation -1 MHz / 0 MB is negative", api.ErrInvalid},
	}
	tr := testTree(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tr.AdmitVM(rootPath+tt.pool, tt.cpu, tt.mem)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("AdmitVM = %v, want admitted", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("AdmitVM = %v\nwant %s", err, tt.wantErr)
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("AdmitVM error does not wrap %v", tt.is)
			}
		})
	}
}

func TestPowerOnVMBorrowsUpTheChain(t *testing.T) {
	tr := testTree(t)
	c := rootPath + "/a/b/c"
	if err := tr.PowerOnVM(c, 2000, 0); err != nil {
		t.Fatal(err)
	}
	// c takes 2000 beyond its 0 reservation; b then uses 500 + 2000, 1500
	// more than its own 1000, which a grants from its 2000 unreserved.
	for _, w := range []struct {
		pool             string
		used, unreserved int64
	}{
		{"/a/b/c", 2000, 500},
		{"/a/b", 2500, 500},
		{"/a", 3500, 500},
		{"", 5000, 5000}, // a is fixed: the root does not see the borrowing
	} {
		u := mustUsage(t, tr, rootPath+w.pool, CPU)
		if u.ReservationUsed != w.used || u.UnreservedForVm != w.unreserved {
			t.Errorf("%s: used %d unreserved %d, want %d and %d", w.pool, u.ReservationUsed, u.UnreservedForVm, w.used, w.unreserved)
		}
	}
	if err := tr.AdmitVM(rootPath+"/a", 501, 0); err == nil {
		t.Errorf("a admitted 501 MHz with 500 unreserved")
	}
	if err := tr.PowerOffVM(c, 2000, 0); err != nil {
		t.Fatal(err)
	}
	assertSameUsage(t, tr, testTree(t))
	if err := tr.PowerOffVM(c, 1, 0); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("PowerOffVM of more than is reserved = %v, want ErrInvalid", err)
	}
}

func TestUsage(t *testing.T) {
	tr := testTree(t)
	tests := []struct {
		pool string
		r    Resource
		want Usage
	}{
		{"", CPU, Usage{Reservation: 10000, Limit: 10000, Shares: 4000, ReservationUsed: 5000, ReservationUsedForVm: 1500,
			UnreservedForPool: 5000, UnreservedForVm: 5000, MaxUsage: 10000}},
		{"/a", CPU, Usage{Reservation: 4000, Limit: -1, Shares: 4000, ReservationUsed: 2000, ReservationUsedForVm: 1500,
			UnreservedForPool: 2000, UnreservedForVm: 2000, MaxUsage: 10000}},
		{"/a/b", CPU, Usage{Reservation: 1000, Limit: -1, Expandable: true, Shares: 4000, ReservationUsed: 500, ReservationUsedForVm: 500,
			UnreservedForPool: 2500, UnreservedForVm: 2500, MaxUsage: 10000}},
		{"/a/b/c/d", CPU, Usage{Reservation: 0, Limit: 1500, Expandable: true, Shares: 4000,
			UnreservedForPool: 1500, UnreservedForVm: 1500, MaxUsage: 1500}},
		{"/e", CPU, Usage{Reservation: 0, Limit: 3000, Expandable: true, Shares: 4000, ReservationUsed: 1000,
			UnreservedForPool: 2000, UnreservedForVm: 2000, MaxUsage: 3000}},
		{"/e/f", CPU, Usage{Reservation: 1000, Limit: -1, Expandable: true, Shares: 4000,
			UnreservedForPool: 3000, UnreservedForVm: 3000, MaxUsage: 3000}},
		{"/a/b", Memory, Usage{Reservation: 0, Limit: -1, Expandable: true, Shares: 163840,
			UnreservedForPool: 8192, UnreservedForVm: 8192, MaxUsage: 8192}},
	}
	for _, tt := range tests {
		t.Run(tt.pool+"/"+tt.r.String(), func(t *testing.T) {
			if got := mustUsage(t, tr, rootPath+tt.pool, tt.r); got != tt.want {
				t.Fatalf("Usage =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	if _, err := tr.Usage(rootPath+"/nope", CPU); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("Usage of unknown pool = %v, want ErrNotFound", err)
	}
}

// TestUsageIdentities checks the relations vSphere documents, on every pool
// of a tree in several states.
func TestUsageIdentities(t *testing.T) {
	tr := testTree(t)
	states := []func() error{
		func() error { return nil },
		func() error { return tr.PowerOnVM(rootPath+"/a/b/c", 1200, 4000) },
		func() error { return tr.PowerOnVM(rootPath+"/e/f", 2500, 100) },
		func() error { return tr.SetPool(rootPath+"/a/x", rootPath+"/a", fixed(300), fixed(1000)) },
	}
	for step, apply := range states {
		if err := apply(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		for _, n := range tr.nodes {
			for _, r := range resources {
				u := mustUsage(t, tr, n.path, r)
				if u.UnreservedForPool != u.UnreservedForVm {
					t.Errorf("step %d %s %s: unreservedForPool %d != unreservedForVm %d", step, n.path, r, u.UnreservedForPool, u.UnreservedForVm)
				}
				if !u.Expandable && u.Reservation != u.ReservationUsed+u.UnreservedForVm {
					t.Errorf("step %d %s %s fixed: reservation %d != used %d + unreserved %d", step, n.path, r, u.Reservation, u.ReservationUsed, u.UnreservedForVm)
				}
				if u.Expandable && u.Limit == -1 && u.ReservationUsed <= u.Reservation {
					pu := mustUsage(t, tr, tr.nodes[n.parent].path, r)
					if u.Reservation+pu.UnreservedForVm != u.ReservationUsed+u.UnreservedForVm {
						t.Errorf("step %d %s %s expandable: reservation %d + parent unreserved %d != used %d + unreserved %d",
							step, n.path, r, u.Reservation, pu.UnreservedForVm, u.ReservationUsed, u.UnreservedForVm)
					}
				}
				// Used - ForVm is the idle reservation of the pools beneath.
				var idle int64
				tr.walk(tr.index[n.path], func(d int) {
					if d != tr.index[n.path] {
						idle += tr.nodes[d].free(r)
					}
				})
				if u.ReservationUsed-u.ReservationUsedForVm != idle || u.ReservationUsedForVm > u.ReservationUsed {
					t.Errorf("step %d %s %s: used %d - forVm %d != idle %d", step, n.path, r, u.ReservationUsed, u.ReservationUsedForVm, idle)
				}
			}
		}
	}
}

// walk visits the subtree of i (test helper).
func (t *Tree) walk(i int, visit func(int)) {
	visit(i)
	for _, c := range t.nodes[i].children {
		t.walk(c, visit)
	}
}

func TestNewTree(t *testing.T) {
	ok := DefaultAllocation()
	tests := []struct {
		name    string
		capCPU  int64
		pools   []Pool
		wantErr string
	}{
		{"empty", 1000, nil, ""},
		{"root listed with its VMs", 1000, []Pool{{Path: rootPath, VMCPUReservation: 10}}, ""},
		{"unknown parent", 1000, []Pool{{Path: rootPath + "/a", Parent: rootPath + "/x", CPU: ok, Mem: ok}},
			"pool " + rootPath + "/a has unknown parent " + rootPath + "/x"},
		{"duplicate", 1000, []Pool{
			{Path: rootPath + "/a", Parent: rootPath, CPU: ok, Mem: ok},
			{Path: rootPath + "/a", Parent: rootPath, CPU: ok, Mem: ok}},
			"pool " + rootPath + "/a is listed twice"},
		{"cycle", 1000, []Pool{
			{Path: rootPath + "/a", Parent: rootPath + "/b", CPU: ok, Mem: ok},
			{Path: rootPath + "/b", Parent: rootPath + "/a", CPU: ok, Mem: ok}},
			"pool " + rootPath + "/a is in a parent cycle and does not reach root pool " + rootPath},
		{"self parent", 1000, []Pool{{Path: rootPath + "/a", Parent: rootPath + "/a", CPU: ok, Mem: ok}},
			"pool " + rootPath + "/a is in a parent cycle and does not reach root pool " + rootPath},
		{"second root", 1000, []Pool{{Path: rootPath + "/a", CPU: ok, Mem: ok}},
			"pool " + rootPath + "/a has no parent; only the root pool " + rootPath + " may"},
		{"root with parent", 1000, []Pool{{Path: rootPath, Parent: "/x"}},
			"root pool " + rootPath + " cannot have parent /x"},
		{"invalid allocation", 1000, []Pool{{Path: rootPath + "/a", Parent: rootPath, CPU: Allocation{Reservation: 5, Limit: 1}, Mem: ok}},
			"pool " + rootPath + "/a: cpu.limit 1 is below cpu.reservation 5"},
		{"negative VM reservations", 1000, []Pool{{Path: rootPath + "/a", Parent: rootPath, CPU: ok, Mem: ok, VMMemReservation: -1}},
			"pool " + rootPath + "/a has negative VM reservations"},
		{"negative capacity", -1, nil, "cluster capacity -1 MHz / 0 MB is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTree(rootPath, tt.capCPU, 0, tt.pools)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewTree = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr || !errors.Is(err, api.ErrInvalid) {
				t.Fatalf("NewTree = %v\nwant %s (ErrInvalid)", err, tt.wantErr)
			}
		})
	}
}

func TestRootAllocationIsCapacity(t *testing.T) {
	tr := mustTree(t, 8000, 4096,
		Pool{Path: rootPath, CPU: fixed(1), Mem: fixed(1), VMCPUReservation: 3000},
		cpuPool("/a", "", fixed(1000), 0))
	u := mustUsage(t, tr, rootPath, CPU)
	if u.Reservation != 8000 || u.Limit != 8000 || u.Expandable {
		t.Fatalf("root allocation %+v, want the fixed capacity 8000", u)
	}
	if u.ReservationUsed != 4000 || u.ReservationUsedForVm != 3000 || u.UnreservedForVm != 4000 {
		t.Fatalf("root usage %+v, want used 4000 (VMs 3000 + a 1000), forVm 3000, unreserved 4000", u)
	}
	if got := tr.Root(); got != rootPath {
		t.Fatalf("Root() = %s", got)
	}
	if !tr.Has(rootPath+"/a") || tr.Has(rootPath+"/b") {
		t.Fatalf("Has() wrong")
	}
}

func TestAdmitPool(t *testing.T) {
	a, b, e, f := rootPath+"/a", rootPath+"/a/b", rootPath+"/e", rootPath+"/e/f"
	def := DefaultAllocation()
	tests := []struct {
		name     string
		path     string
		parent   string
		cpu, mem Allocation
		wantErr  string
		is       error
	}{
		{"create fixed within parent's unreserved", a + "/new", a, fixed(2000), def, "", nil},
		{"create beyond a fixed parent", a + "/new", a, fixed(2001), def,
			"insufficient cpu in " + a + " for new pool " + a + "/new: 2001 MHz asked, 2000 MHz unreserved (its reservation of 4000 MHz is fixed)", api.ErrInsufficientResources},
		{"create under an expandable chain borrows", rootPath + "/a/b/c/new", rootPath + "/a/b/c", fixed(1500), def, "", nil},
		{"create borrowing stops at the fixed ancestor", rootPath + "/a/b/new", b, expandable(2501), def,
			"insufficient cpu in " + b + " for new pool " + rootPath + "/a/b/new: 2501 MHz asked, 2500 MHz unreserved (expandable reservation reached " + a + ", which is fixed)", api.ErrInsufficientResources},
		{"create under a parent limit", e + "/new", e, fixed(2001), def,
			"insufficient cpu in " + e + " for new pool " + e + "/new: 2001 MHz asked, 2000 MHz unreserved (its limit is 3000 MHz and 1000 MHz is already reserved)", api.ErrInsufficientResources},
		{"create memory reservation", a + "/new", a, def, fixed(8192), "", nil},
		{"create memory beyond capacity", a + "/new", a, def, fixed(8193),
			"insufficient memory in " + a + " for new pool " + a + "/new: 8193 MB asked, 8192 MB unreserved (expandable reservation reached " + rootPath + ", which is fixed)", api.ErrInsufficientResources},
		{"grow within parent", b, "", expandable(3000), def, "", nil},
		{"grow beyond parent", b, a, expandable(3001), def,
			"insufficient cpu in " + a + " to grow pool " + b + " from 1000 to 3001 MHz: 2001 MHz more asked, 2000 MHz unreserved (its reservation of 4000 MHz is fixed)", api.ErrInsufficientResources},
		{"shrink fixed to what is used", b, "", fixed(500), def, "", nil},
		{"shrink fixed below what is used", b, "", fixed(400), def,
			"cannot fix cpu.reservation of " + b + " at 400 MHz: 500 MHz is already reserved beneath it (reserve at least that or make it expandable)", api.ErrInsufficientResources},
		{"shrink expandable below what is used", b, "", expandable(0), def, "", nil},
		{"limit below what is reserved beneath", b, "", withLimit(expandable(0), 400), def,
			"cannot set cpu.limit of " + b + " to 400 MHz: 500 MHz is already reserved beneath it", api.ErrInsufficientResources},
		{"limit below reservation", b, "", withLimit(expandable(1000), 500), def,
			"cpu.limit 500 is below cpu.reservation 1000", api.ErrInvalid},
		{"bad mem shares", b, "", def, Allocation{Limit: -1, Shares: Shares{Level: "x"}},
			`mem.shares level "x" is not low, normal, high or a number`, api.ErrInvalid},
		{"move into room", f, a, expandable(1000), def, "", nil},
		{"move beyond the new parent's limit", a, e, fixed(4000), def,
			"insufficient cpu in " + e + " to move pool " + a + " there: 4000 MHz asked, 2000 MHz unreserved (its limit is 3000 MHz and 1000 MHz is already reserved)", api.ErrInsufficientResources},
		{"move under itself", a, rootPath + "/a/b/c", fixed(4000), def,
			"cannot move pool " + a + " under " + rootPath + "/a/b/c, which is inside it", api.ErrInvalid},
		{"change the root", rootPath, "", fixed(1), def,
			"root pool " + rootPath + " always holds the cluster capacity and cannot be changed", api.ErrInvalid},
		{"new pool without parent", a + "/new", "", def, def, "new pool " + a + "/new needs a parent pool", api.ErrInvalid},
		{"unknown parent", a + "/new", rootPath + "/zz", def, def, "pool " + rootPath + "/zz is not in the pool tree of " + rootPath, api.ErrNotFound},
	}
	tr := testTree(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tr.AdmitPool(tt.path, tt.parent, tt.cpu, tt.mem)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("AdmitPool = %v, want admitted", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("AdmitPool = %v\nwant %s", err, tt.wantErr)
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("AdmitPool error does not wrap %v", tt.is)
			}
		})
	}
	assertSameUsage(t, tr, testTree(t)) // admission alone changes nothing
}

// TestSetPool checks that applying creates, changes and moves one at a time
// gives the same figures as building the final tree from scratch.
func TestSetPool(t *testing.T) {
	tr := testTree(t)
	def := DefaultAllocation()
	steps := []struct {
		path, parent string
		cpu          Allocation
	}{
		{rootPath + "/a/b/c/d/g", rootPath + "/a/b/c/d", expandable(1200)},       // create, borrows from a
		{rootPath + "/a/b", "", expandable(1500)},                                // grow
		{rootPath + "/e/f", rootPath + "/a/b/c", fixed(300)},                     // move and change
		{rootPath + "/a/b/c/d/g", "", withLimit(expandable(1000), 1200)},         // shrink
		{rootPath + "/x", rootPath, fixed(2000)},                                 // create at the root
		{rootPath + "/a/b/c/d/g", rootPath + "/x", withLimit(fixed(1000), 1000)}, // move to another branch
	}
	for _, s := range steps {
		if err := tr.SetPool(s.path, s.parent, s.cpu, def); err != nil {
			t.Fatalf("SetPool(%s): %v", s.path, err)
		}
	}
	want := mustTree(t, 10000, 8192,
		cpuPool("/a", "", fixed(4000), 1000),
		cpuPool("/a/b", "/a", expandable(1500), 500),
		cpuPool("/a/b/c", "/a/b", expandable(0), 0),
		cpuPool("/a/b/c/d", "/a/b/c", withLimit(expandable(0), 1500), 0),
		cpuPool("/e", "", withLimit(expandable(0), 3000), 0),
		cpuPool("/e/f", "/a/b/c", fixed(300), 0),
		cpuPool("/x", "", fixed(2000), 0),
		cpuPool("/a/b/c/d/g", "/x", withLimit(fixed(1000), 1000), 0),
	)
	assertSameUsage(t, tr, want)
	if err := tr.SetPool(rootPath+"/y", rootPath, fixed(99999), def); err == nil {
		t.Fatal("SetPool admitted a reservation beyond capacity")
	}
	assertSameUsage(t, tr, want) // a refused SetPool changes nothing
}

func TestCloneIsIndependent(t *testing.T) {
	tr := testTree(t)
	c := tr.Clone()
	if err := c.PowerOnVM(rootPath+"/a/b/c", 2000, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.SetPool(rootPath+"/a/new", rootPath+"/a", fixed(100), DefaultAllocation()); err != nil {
		t.Fatal(err)
	}
	assertSameUsage(t, tr, testTree(t))
}

func assertSameUsage(t *testing.T, got, want *Tree) {
	t.Helper()
	if len(got.nodes) != len(want.nodes) {
		t.Fatalf("tree has %d pools, want %d", len(got.nodes), len(want.nodes))
	}
	for _, n := range want.nodes {
		for _, r := range resources {
			w := mustUsage(t, want, n.path, r)
			g, err := got.Usage(n.path, r)
			if err != nil || g != w {
				t.Errorf("%s %s: usage %+v (%v), want %+v", n.path, r, g, err, w)
			}
		}
	}
}

// benchPools is a cluster with 1+10+100+1000 pools, fixed at the top level
// and expandable beneath, with VMs throughout; it returns one leaf pool.
func benchPools() ([]Pool, string) {
	var pools []Pool
	var leaf string
	for i := range 10 {
		l1 := fmt.Sprintf("%s/p%d", rootPath, i)
		pools = append(pools, Pool{Path: l1, Parent: rootPath, CPU: fixed(100000), Mem: fixed(100000), VMCPUReservation: 100})
		for j := range 10 {
			l2 := fmt.Sprintf("%s/q%d", l1, j)
			pools = append(pools, Pool{Path: l2, Parent: l1, CPU: expandable(1000), Mem: expandable(1000), VMCPUReservation: 100})
			for k := range 10 {
				leaf = fmt.Sprintf("%s/r%d", l2, k)
				pools = append(pools, Pool{Path: leaf, Parent: l2, CPU: expandable(0), Mem: expandable(0), VMCPUReservation: 50, VMMemReservation: 50})
			}
		}
	}
	return pools, leaf
}

func BenchmarkAdmitVM(b *testing.B) {
	pools, leaf := benchPools()
	tr := mustTree(b, 10_000_000, 10_000_000, pools...)
	b.ReportAllocs()
	for b.Loop() {
		if err := tr.AdmitVM(leaf, 2000, 2000); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewTree(b *testing.B) {
	pools, _ := benchPools()
	b.ReportAllocs()
	for b.Loop() {
		mustTree(b, 10_000_000, 10_000_000, pools...)
	}
}

func TestErrorsAreSingleLine(t *testing.T) {
	err := testTree(t).AdmitVM(rootPath+"/a", 2001, 0)
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("single refusal spans lines: %q", err)
	}
}
