package lb

import (
	"bytes"
	"slices"
)

// Diff is what turns the rules in place (was) into want: the chains of
// want that are new or differ, and the chains of was that want lacks. A
// Service's chains are referenced only by each other and by the fixed
// chains, which change with them, so writing the first and deleting the
// second in one transaction never leaves a dangling jump. A Service whose
// rules the Generator reused is skipped unread.
func Diff(was, want *Ruleset) (write []Chain, remove []ID) {
	if was == nil {
		return want.Chains(), nil
	}
	write, remove = diffChains(was.Fixed, want.Fixed, write, remove)
	i, j := 0, 0
	for i < len(was.Services) || j < len(want.Services) {
		switch {
		case j == len(want.Services) || (i < len(was.Services) && was.Services[i].Path < want.Services[j].Path):
			write, remove = diffChains(was.Services[i].Chains, nil, write, remove)
			i++
		case i == len(was.Services) || want.Services[j].Path < was.Services[i].Path:
			write = append(write, want.Services[j].Chains...)
			j++
		default:
			if was.Services[i] != want.Services[j] {
				write, remove = diffChains(was.Services[i].Chains, want.Services[j].Chains, write, remove)
			}
			i++
			j++
		}
	}
	return write, remove
}

// diffChains adds what turns chains old into new to write and remove.
func diffChains(old, new []Chain, write []Chain, remove []ID) ([]Chain, []ID) {
	had := make(map[ID][]string, len(old))
	for _, c := range old {
		had[c.ID()] = c.Rules
	}
	for _, c := range new {
		r, ok := had[c.ID()]
		if !ok || !slices.Equal(r, c.Rules) {
			write = append(write, c)
		}
		delete(had, c.ID())
	}
	for _, c := range old {
		if _, gone := had[c.ID()]; gone {
			remove = append(remove, c.ID())
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
