package pools

import (
	"fmt"

	"github.com/podsphere/podsphere/api"
)

// Pool is one resource pool as stored: its configuration and the
// reservations of the powered-on VMs sitting directly in it.
type Pool struct {
	Path   string // full inventory path, e.g. /dc1/host/c1/Resources/dev
	Parent string // "" only for the root pool
	CPU    Allocation
	Mem    Allocation
	// Reservations of powered-on VMs that sit directly in this pool (not in children).
	VMCPUReservation, VMMemReservation int64
}

// Tree is one cluster's pool tree with every pool's reservationUsed worked
// out, so admission only walks the chain from a pool up to the root.
//
// Methods that change the tree (PowerOnVM, PowerOffVM, SetPool) admit first
// and change nothing when they refuse; Clone to try changes on a copy.
type Tree struct {
	nodes []node
	index map[string]int
}

// root is always nodes[0].
const root = 0

type node struct {
	path     string
	parent   int // -1 for the root
	children []int
	alloc    [2]Allocation // by Resource
	vm       [2]int64      // powered-on VMs directly here
	// used is vSphere's reservationUsed: VMs here plus, for each child, what
	// the child takes from this pool, max(child reservation, child used).
	used [2]int64
}

// taken is what this pool takes from its parent: its own reservation, or
// more once it has borrowed beyond it.
func (n *node) taken(r Resource) int64 {
	return max(n.alloc[r].Reservation, n.used[r])
}

// free is the part of the pool's own reservation nothing uses yet.
func (n *node) free(r Resource) int64 {
	return max(0, n.alloc[r].Reservation-n.used[r])
}

// NewTree builds the tree of the cluster whose root pool is rootPath. The
// root's reservation and limit are the cluster capacity (the sum of its
// connected hosts) and are fixed; an entry for the root in pools only
// contributes its VMs. Pools may come in any order.
func NewTree(rootPath string, capacityCPU, capacityMem int64, pools []Pool) (*Tree, error) {
	if rootPath == "" {
		return nil, invalidf("pool tree needs a root pool path")
	}
	if capacityCPU < 0 || capacityMem < 0 {
		return nil, invalidf("cluster capacity %d MHz / %d MB is negative", capacityCPU, capacityMem)
	}
	t := &Tree{index: make(map[string]int, len(pools)+1)}
	rootAlloc := func(c int64) Allocation {
		return Allocation{Reservation: c, Limit: c, Expandable: false, Shares: Shares{Level: SharesNormal}}
	}
	t.nodes = append(t.nodes, node{
		path:   rootPath,
		parent: -1,
		alloc:  [2]Allocation{rootAlloc(capacityCPU), rootAlloc(capacityMem)},
	})
	t.index[rootPath] = root

	seenRoot := false
	for _, p := range pools {
		if p.VMCPUReservation < 0 || p.VMMemReservation < 0 {
			return nil, invalidf("pool %s has negative VM reservations", p.Path)
		}
		if p.Path == rootPath {
			if seenRoot {
				return nil, invalidf("pool %s is listed twice", p.Path)
			}
			if p.Parent != "" {
				return nil, invalidf("root pool %s cannot have parent %s", p.Path, p.Parent)
			}
			seenRoot = true
			t.nodes[root].vm = [2]int64{p.VMCPUReservation, p.VMMemReservation}
			continue
		}
		switch {
		case p.Path == "":
			return nil, invalidf("pool with parent %s has no path", p.Parent)
		case p.Parent == "":
			return nil, invalidf("pool %s has no parent; only the root pool %s may", p.Path, rootPath)
		}
		if _, dup := t.index[p.Path]; dup {
			return nil, invalidf("pool %s is listed twice", p.Path)
		}
		if err := p.CPU.Validate("cpu"); err != nil {
			return nil, invalidf("pool %s: %v", p.Path, err)
		}
		if err := p.Mem.Validate("mem"); err != nil {
			return nil, invalidf("pool %s: %v", p.Path, err)
		}
		t.index[p.Path] = len(t.nodes)
		t.nodes = append(t.nodes, node{
			path:  p.Path,
			alloc: [2]Allocation{p.CPU, p.Mem},
			vm:    [2]int64{p.VMCPUReservation, p.VMMemReservation},
		})
	}
	// Link parents once every path is known, so input order does not matter.
	for _, p := range pools {
		if p.Path == rootPath {
			continue
		}
		child := t.index[p.Path]
		parent, ok := t.index[p.Parent]
		if !ok {
			return nil, invalidf("pool %s has unknown parent %s", p.Path, p.Parent)
		}
		t.nodes[child].parent = parent
		t.nodes[parent].children = append(t.nodes[parent].children, child)
	}
	// Every pool must hang off the root; what the walk misses is in a cycle.
	order := t.preorder()
	if len(order) != len(t.nodes) {
		reached := make([]bool, len(t.nodes))
		for _, i := range order {
			reached[i] = true
		}
		for i, n := range t.nodes {
			if !reached[i] {
				return nil, invalidf("pool %s is in a parent cycle and does not reach root pool %s", n.path, rootPath)
			}
		}
	}
	t.recompute(order)
	return t, nil
}

// preorder lists the pools reachable from the root, parents before children.
func (t *Tree) preorder() []int {
	order := make([]int, 0, len(t.nodes))
	stack := []int{root}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		order = append(order, i)
		stack = append(stack, t.nodes[i].children...)
	}
	return order
}

// recompute works out every pool's used from scratch, children first.
func (t *Tree) recompute(order []int) {
	for k := len(order) - 1; k >= 0; k-- {
		n := &t.nodes[order[k]]
		for _, r := range resources {
			n.used[r] = n.vm[r]
			for _, c := range n.children {
				n.used[r] += t.nodes[c].taken(r)
			}
		}
	}
}

// addUsed changes what is reserved directly in pool i by delta and carries
// the change up only as far as it changes what each pool takes from its
// parent: a child that stays within its own reservation costs the parent
// nothing more.
func (t *Tree) addUsed(i int, r Resource, delta int64) {
	for i >= 0 && delta != 0 {
		n := &t.nodes[i]
		before := n.taken(r)
		n.used[r] += delta
		delta = n.taken(r) - before
		i = n.parent
	}
}

// Clone returns an independent copy, for trying changes without keeping them.
func (t *Tree) Clone() *Tree {
	c := &Tree{nodes: make([]node, len(t.nodes)), index: make(map[string]int, len(t.index))}
	copy(c.nodes, t.nodes)
	for i := range c.nodes {
		c.nodes[i].children = append([]int(nil), t.nodes[i].children...)
	}
	for k, v := range t.index {
		c.index[k] = v
	}
	return c
}

// Root is the root pool's path.
func (t *Tree) Root() string { return t.nodes[root].path }

// Has reports whether path is a pool of this tree.
func (t *Tree) Has(path string) bool {
	_, ok := t.index[path]
	return ok
}

func (t *Tree) lookup(path string) (int, error) {
	i, ok := t.index[path]
	if !ok {
		return 0, &sentinelError{
			msg:      fmt.Sprintf("pool %s is not in the pool tree of %s", path, t.nodes[root].path),
			sentinel: api.ErrNotFound,
		}
	}
	return i, nil
}

// Usage is vSphere's ResourcePoolResourceUsage for one resource, plus the
// pool's own allocation so pool.info can print from one value.
//
// ReservationUsedForVm follows the vSphere API definition: the reservations
// of powered-on VMs in this pool or any pool beneath it. It never exceeds
// ReservationUsed, and ReservationUsed - ReservationUsedForVm is exactly the
// idle part of the reservations of the pools beneath (reserved, no VM in it).
//
// UnreservedForPool and UnreservedForVm are equal: vSphere tells them apart
// only through per-VM memory overhead, which containers do not have. Both
// include what an expandable pool can borrow from its ancestors and are
// capped by the limits on the way.
//
// For a fixed pool Reservation = ReservationUsed + UnreservedForVm. For an
// expandable pool that has not borrowed, Reservation + parent's unreserved =
// ReservationUsed + UnreservedForVm (both as vSphere documents), unless a
// limit caps it first.
type Usage struct {
	Reservation int64
	Limit       int64
	Expandable  bool
	Shares      int64
	// ReservationUsed is what this pool has handed out: powered-on VMs in it,
	// plus for each child pool max(child reservation, child ReservationUsed).
	ReservationUsed      int64
	ReservationUsedForVm int64
	UnreservedForPool    int64
	UnreservedForVm      int64
	// MaxUsage is the smallest limit on this pool and its ancestors (-1 if
	// none had one). As in vSphere the root's limit is the cluster capacity,
	// so within a tree it is at most the capacity, never -1.
	MaxUsage int64
}

// Usage reports the usage figures of pool path for resource r.
func (t *Tree) Usage(path string, r Resource) (Usage, error) {
	i, err := t.lookup(path)
	if err != nil {
		return Usage{}, err
	}
	n := &t.nodes[i]
	a := n.alloc[r]
	unreserved, _ := t.headroom(i, r)
	u := Usage{
		Reservation:          a.Reservation,
		Limit:                a.Limit,
		Expandable:           a.Expandable,
		Shares:               SharesValue(a.Shares, r, 0, 0, true),
		ReservationUsed:      n.used[r],
		ReservationUsedForVm: t.vmReservations(i, r),
		UnreservedForPool:    unreserved,
		UnreservedForVm:      unreserved,
		MaxUsage:             Unlimited,
	}
	for j := i; j >= 0; j = t.nodes[j].parent {
		if l := t.nodes[j].alloc[r].Limit; l != Unlimited && (u.MaxUsage == Unlimited || l < u.MaxUsage) {
			u.MaxUsage = l
		}
	}
	return u, nil
}

// vmReservations sums the powered-on VM reservations in the subtree of i.
func (t *Tree) vmReservations(i int, r Resource) int64 {
	sum := t.nodes[i].vm[r]
	for _, c := range t.nodes[i].children {
		sum += t.vmReservations(c, r)
	}
	return sum
}
