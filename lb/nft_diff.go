package lb

import "slices"

// NftChanges is what moves podsphere's table from one NftRuleset to
// another: the netlink backend sends it as one batch, which the kernel
// applies as one transaction (all of it or, if the agent dies or the
// kernel refuses a part, none), so no packet sees half of it.
type NftChanges struct {
	AddSets   []NftSet
	Write     []NftChain // new or changed: created if need be, flushed and refilled
	DelElems  []NftElem  // before AddElems: an element whose verdict changed is both
	AddElems  []NftElem
	DelChains []string // flushed, then deleted once nothing jumps to them
	DelSets   []string // after the chains using them
}

// Empty says whether c changes nothing.
func (c *NftChanges) Empty() bool {
	return len(c.AddSets)+len(c.Write)+len(c.DelElems)+len(c.AddElems)+len(c.DelChains)+len(c.DelSets) == 0
}

// NftDiff is what turns was (what the last successful sync left) into
// want, touching only the Services that changed: a Service the Generator
// reused is skipped unread. was nil is everything of want.
func NftDiff(was, want *NftRuleset) *NftChanges {
	c := &NftChanges{}
	if was == nil {
		c.Write = slices.Clone(want.Fixed)
		for _, ns := range want.Services {
			c.AddSets = append(c.AddSets, ns.Sets...)
			c.Write = append(c.Write, ns.Chains...)
			c.AddElems = append(c.AddElems, ns.Elems...)
		}
		return c
	}
	// The fixed chains change with the cluster's Ingress address.
	for k, f := range want.Fixed {
		if k >= len(was.Fixed) || !slices.EqualFunc(was.Fixed[k].Rules, f.Rules, func(x, y NftRule) bool { return x.String() == y.String() }) {
			c.Write = append(c.Write, f)
		}
	}
	i, j := 0, 0
	for i < len(was.Services) || j < len(want.Services) {
		switch {
		case j == len(want.Services) || (i < len(was.Services) && was.Services[i].Path < want.Services[j].Path):
			c.service(was.Services[i], nil)
			i++
		case i == len(was.Services) || want.Services[j].Path < was.Services[i].Path:
			c.service(nil, want.Services[j])
			j++
		default:
			if was.Services[i] != want.Services[j] {
				c.service(was.Services[i], want.Services[j])
			}
			i++
			j++
		}
	}
	return c
}

// service adds what turns one Service's part a into b (either nil).
func (c *NftChanges) service(a, b *NftService) {
	if a == nil {
		a = &NftService{}
	}
	if b == nil {
		b = &NftService{}
	}
	had := map[string]NftElem{}
	for _, e := range a.Elems {
		had[e.Key()] = e
	}
	for _, e := range b.Elems {
		old, ok := had[e.Key()]
		if !ok || old != e {
			if ok {
				c.DelElems = append(c.DelElems, old)
			}
			c.AddElems = append(c.AddElems, e)
		}
		delete(had, e.Key())
	}
	for _, e := range a.Elems {
		if _, gone := had[e.Key()]; gone {
			c.DelElems = append(c.DelElems, e)
		}
	}
	chains := map[string][]NftRule{}
	for _, ch := range a.Chains {
		chains[ch.Name] = ch.Rules
	}
	for _, ch := range b.Chains {
		r, ok := chains[ch.Name]
		if !ok || !slices.EqualFunc(r, ch.Rules, func(x, y NftRule) bool { return x.String() == y.String() }) {
			c.Write = append(c.Write, ch)
		}
		delete(chains, ch.Name)
	}
	for _, ch := range a.Chains {
		if _, gone := chains[ch.Name]; gone {
			c.DelChains = append(c.DelChains, ch.Name)
		}
	}
	sets := map[string]NftSet{}
	for _, s := range a.Sets {
		sets[s.Name] = s
	}
	for _, s := range b.Sets {
		if _, ok := sets[s.Name]; !ok { // the name holds the timeout
			c.AddSets = append(c.AddSets, s)
		}
		delete(sets, s.Name)
	}
	for _, s := range a.Sets {
		if _, gone := sets[s.Name]; gone {
			c.DelSets = append(c.DelSets, s.Name)
		}
	}
}
