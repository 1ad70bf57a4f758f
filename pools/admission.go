package pools

import (
	"errors"
	"fmt"
)

// boundKind says which rule capped what a pool can still reserve, so a
// refusal can tell the user what to change.
type boundKind int

const (
	boundFixed boundKind = iota // a fixed reservation (the root's is the cluster capacity)
	boundLimit                  // a limit on the pool or on an ancestor it borrows through
)

type bound struct {
	kind boundKind
	pool int
}

// headroom is the largest reservation pool i can still admit for r: its own
// unreserved part, plus, while the reservation is expandable, what its parent
// can admit in turn (the shortfall is borrowed, which grows what i takes from
// its parent). A limit caps the total reserved beneath a pool, so it caps the
// headroom of that pool and of every pool borrowing through it. The root is
// never expandable, which ends every walk.
func (t *Tree) headroom(i int, r Resource) (int64, bound) {
	n := &t.nodes[i]
	avail, b := n.free(r), bound{boundFixed, i}
	if n.alloc[r].Expandable && n.parent >= 0 {
		up, ub := t.headroom(n.parent, r)
		avail, b = avail+up, ub
	}
	if l := n.alloc[r].Limit; l != Unlimited {
		if room := max(0, l-n.used[r]); room < avail {
			avail, b = room, bound{boundLimit, i}
		}
	}
	return avail, b
}

// why explains a bound as seen from pool asked, for refusal messages.
func (t *Tree) why(asked int, r Resource, b bound) string {
	n := &t.nodes[b.pool]
	unit := r.Unit()
	switch {
	case b.kind == boundLimit && b.pool == asked:
		return fmt.Sprintf("its limit is %d %s and %d %s is already reserved", n.alloc[r].Limit, unit, n.used[r], unit)
	case b.kind == boundLimit:
		return fmt.Sprintf("limit %d %s on %s, with %d %s already reserved beneath it", n.alloc[r].Limit, unit, n.path, n.used[r], unit)
	case b.pool == asked && b.pool == root:
		return fmt.Sprintf("the root pool holds the cluster capacity, %d %s", n.alloc[r].Reservation, unit)
	case b.pool == asked:
		return fmt.Sprintf("its reservation of %d %s is fixed", n.alloc[r].Reservation, unit)
	default:
		return fmt.Sprintf("expandable reservation reached %s, which is fixed", n.path)
	}
}

// AdmitVM decides whether a VM with these reservations (MHz, MB) may power
// on in pool, as vSphere admission control does: the pool's unreserved
// capacity must cover it, borrowing up through expandable ancestors, and no
// limit on the way may be exceeded. A refusal names the pool, resource,
// amounts and the rule that stopped it; when both resources fall short both
// are reported.
func (t *Tree) AdmitVM(pool string, cpuReservation, memReservation int64) error {
	i, err := t.lookup(pool)
	if err != nil {
		return err
	}
	if cpuReservation < 0 || memReservation < 0 {
		return invalidf("VM reservation %d MHz / %d MB is negative", cpuReservation, memReservation)
	}
	var errs []error
	for _, r := range resources {
		asked := [2]int64{cpuReservation, memReservation}[r]
		if asked == 0 {
			continue
		}
		if avail, b := t.headroom(i, r); asked > avail {
			errs = append(errs, insufficientf("insufficient %s in %s: %d %s asked, %d %s unreserved (%s)",
				r, t.nodes[i].path, asked, r.Unit(), avail, r.Unit(), t.why(i, r, b)))
		}
	}
	return errors.Join(errs...)
}

// PowerOnVM admits a VM in pool and, if admitted, records its reservations.
func (t *Tree) PowerOnVM(pool string, cpuReservation, memReservation int64) error {
	if err := t.AdmitVM(pool, cpuReservation, memReservation); err != nil {
		return err
	}
	i := t.index[pool]
	for r, v := range [2]int64{cpuReservation, memReservation} {
		t.nodes[i].vm[r] += v
		t.addUsed(i, Resource(r), v)
	}
	return nil
}

// PowerOffVM releases a powered-on VM's reservations from pool.
func (t *Tree) PowerOffVM(pool string, cpuReservation, memReservation int64) error {
	i, err := t.lookup(pool)
	if err != nil {
		return err
	}
	n := &t.nodes[i]
	if cpuReservation < 0 || memReservation < 0 || cpuReservation > n.vm[CPU] || memReservation > n.vm[Memory] {
		return invalidf("cannot release %d MHz / %d MB from %s: its VMs reserve %d MHz / %d MB",
			cpuReservation, memReservation, n.path, n.vm[CPU], n.vm[Memory])
	}
	for r, v := range [2]int64{cpuReservation, memReservation} {
		n.vm[r] -= v
		t.addUsed(i, Resource(r), -v)
	}
	return nil
}

// poolChange is an admitted pool create, change or move, ready to apply.
type poolChange struct {
	child, oldParent, newParent int // child -1 when creating
	alloc                       [2]Allocation
}

// AdmitPool decides whether pool path may be created under parent (path not
// in the tree) or changed to these allocations (path in the tree; parent ""
// or its current parent, or another pool to move it there).
//
// What a pool takes from its parent is max(reservation, reserved beneath it);
// only growth of that amount is admitted against the parent, with the same
// borrowing rules as a VM. A fixed reservation must still cover what the
// pool's children and VMs already use, and a limit may not fall below it.
func (t *Tree) AdmitPool(path, parent string, cpu, mem Allocation) error {
	_, err := t.admitPool(path, parent, cpu, mem)
	return err
}

// SetPool admits a pool create, change or move as AdmitPool does and, if
// admitted, applies it.
func (t *Tree) SetPool(path, parent string, cpu, mem Allocation) error {
	c, err := t.admitPool(path, parent, cpu, mem)
	if err != nil {
		return err
	}
	if c.child < 0 {
		c.child = len(t.nodes)
		t.nodes = append(t.nodes, node{path: path, parent: -1})
		t.index[path] = c.child
	}
	n := &t.nodes[c.child]
	for _, r := range resources {
		if c.oldParent >= 0 {
			t.addUsed(c.oldParent, r, -n.taken(r))
		}
		n.alloc[r] = c.alloc[r]
		t.addUsed(c.newParent, r, n.taken(r))
	}
	if c.oldParent != c.newParent {
		if c.oldParent >= 0 {
			siblings := t.nodes[c.oldParent].children
			for k, s := range siblings {
				if s == c.child {
					t.nodes[c.oldParent].children = append(siblings[:k:k], siblings[k+1:]...)
					break
				}
			}
		}
		n.parent = c.newParent
		t.nodes[c.newParent].children = append(t.nodes[c.newParent].children, c.child)
	}
	return nil
}

func (t *Tree) admitPool(path, parent string, cpu, mem Allocation) (poolChange, error) {
	c := poolChange{child: -1, oldParent: -1, alloc: [2]Allocation{cpu, mem}}
	if err := cpu.Validate("cpu"); err != nil {
		return c, err
	}
	if err := mem.Validate("mem"); err != nil {
		return c, err
	}
	if path == "" {
		return c, invalidf("pool path is empty")
	}
	if i, ok := t.index[path]; ok {
		if i == root {
			return c, invalidf("root pool %s always holds the cluster capacity and cannot be changed", path)
		}
		c.child, c.oldParent = i, t.nodes[i].parent
		if parent == "" {
			parent = t.nodes[c.oldParent].path
		}
	} else if parent == "" {
		return c, invalidf("new pool %s needs a parent pool", path)
	}
	p, err := t.lookup(parent)
	if err != nil {
		return c, err
	}
	c.newParent = p
	for a := p; a >= 0 && c.child >= 0; a = t.nodes[a].parent {
		if a == c.child {
			return c, invalidf("cannot move pool %s under %s, which is inside it", path, parent)
		}
	}

	// A move is admitted against the new parent as if the pool were new
	// there, on a copy from which it has been taken out of its old parent.
	moving := c.child >= 0 && c.oldParent != c.newParent
	at := t
	if moving {
		at = t.Clone()
		for _, r := range resources {
			at.addUsed(c.oldParent, r, -t.nodes[c.child].taken(r))
		}
	}

	field := [2]string{"cpu", "mem"}
	var errs []error
	for _, r := range resources {
		a, unit := c.alloc[r], r.Unit()
		var used, oldTaken int64
		if c.child >= 0 {
			used = t.nodes[c.child].used[r]
			if !moving {
				oldTaken = t.nodes[c.child].taken(r)
			}
		}
		if a.Limit != Unlimited && a.Limit < used {
			errs = append(errs, insufficientf("cannot set %s.limit of %s to %d %s: %d %s is already reserved beneath it",
				field[r], path, a.Limit, unit, used, unit))
			continue
		}
		if !a.Expandable && a.Reservation < used {
			errs = append(errs, insufficientf("cannot fix %s.reservation of %s at %d %s: %d %s is already reserved beneath it (reserve at least that or make it expandable)",
				field[r], path, a.Reservation, unit, used, unit))
			continue
		}
		newTaken := max(a.Reservation, used)
		grow := newTaken - oldTaken
		if grow <= 0 {
			continue
		}
		avail, b := at.headroom(p, r)
		if grow <= avail {
			continue
		}
		var what string
		switch {
		case c.child < 0:
			what = fmt.Sprintf("for new pool %s: %d %s asked", path, grow, unit)
		case moving:
			what = fmt.Sprintf("to move pool %s there: %d %s asked", path, grow, unit)
		default:
			what = fmt.Sprintf("to grow pool %s from %d to %d %s: %d %s more asked", path, oldTaken, newTaken, unit, grow, unit)
		}
		errs = append(errs, insufficientf("insufficient %s in %s %s, %d %s unreserved (%s)",
			r, parent, what, avail, unit, at.why(p, r, b)))
	}
	return c, errors.Join(errs...)
}
