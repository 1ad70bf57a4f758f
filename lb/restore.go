package lb

import (
	"bytes"
	"slices"
)

// Diff is what turns the rules in place (was) into want: the chains of
// want that are new or differ, and the chains of was that want lacks. A
// chain is only ever referenced by chains of the same Service port or by
// the fixed chains, and those change with it, so writing the first and
// deleting the second in one transaction never leaves a dangling jump.
func Diff(was, want *Ruleset) (write []Chain, remove []ID) {
	old := map[ID][]string{}
	if was != nil {
		for _, c := range was.Chains {
			old[c.ID()] = c.Rules
		}
	}
	keep := map[ID]bool{}
	for _, c := range want.Chains {
		keep[c.ID()] = true
		if r, ok := old[c.ID()]; !ok || !slices.Equal(r, c.Rules) {
			write = append(write, c)
		}
	}
	if was != nil {
		for _, c := range was.Chains {
			if !keep[c.ID()] {
				remove = append(remove, c.ID())
			}
		}
	}
	return write, remove
}

// Restore is the input of one `iptables-restore --noflush`: per table, in
// one transaction, every chain of write declared (which empties it, or
// creates it) and refilled, and every chain of remove emptied and
// deleted. Nothing else of the table is touched; since the kernel swaps a
// table's rules at COMMIT, no packet ever sees a chain half written,
// whether or not the process lives to the end.
func Restore(write []Chain, remove []ID) []byte {
	var b bytes.Buffer
	for _, table := range []string{"nat", "filter"} {
		var w []Chain
		var r []ID
		for _, c := range write {
			if c.Table == table {
				w = append(w, c)
			}
		}
		for _, id := range remove {
			if id.Table == table {
				r = append(r, id)
			}
		}
		if len(w) == 0 && len(r) == 0 {
			continue
		}
		b.WriteString("*" + table + "\n")
		for _, c := range w {
			b.WriteString(":" + c.Name + " - [0:0]\n")
		}
		for _, id := range r {
			b.WriteString(":" + id.Name + " - [0:0]\n")
		}
		for _, c := range w {
			for _, rule := range c.Rules {
				b.WriteString("-A " + c.Name + " " + rule + "\n")
			}
		}
		for _, id := range r {
			b.WriteString("-X " + id.Name + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.Bytes()
}
