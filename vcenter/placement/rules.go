package placement

import (
	"fmt"
	"strconv"
	"strings"
)

// A constraint is one enabled rule naming the VM being placed, resolved once
// per Place call to the set of hosts it talks about, so each host is then
// checked with one set lookup per rule instead of a walk over the rule.
type constraint struct {
	rule *Rule
	kind constraintKind
	// hosts: for VM-VM rules, the distinct hosts running other members of the
	// rule, and members[i] the first such member found on hosts[i]; for
	// vm-host rules, the rule's host group (members unused).
	hosts   []string
	members []string
	set     map[string]int // host -> index in hosts, once hosts outgrows smallSet
	text    string         // reason, built on first use
}

type constraintKind uint8

const (
	mustRunOn      constraintKind = iota // VM-VM affinity, vm-host must run on
	mustNotRunOn                         // VM-VM anti-affinity, vm-host must not run on
	shouldRunOn                          // vm-host should run on
	shouldNotRunOn                       // vm-host should not run on
)

// smallSet is how many hosts a constraint keeps before indexing them in a
// map: a linear scan of a few strings beats hashing, a long one does not.
const smallSet = 8

// constraintsFor resolves the enabled rules naming vm. Cost is the total
// number of rule members plus, per VM-VM rule naming vm, one Running lookup
// per other member.
func constraintsFor(st *State, vm string) ([]constraint, error) {
	var cons []constraint
	for ri := range st.Rules {
		r := &st.Rules[ri]
		if !r.Enabled || !names(r.VMs, vm) {
			continue
		}
		if err := ValidateRule(*r); err != nil {
			return nil, fmt.Errorf("placing %s: %w", vm, err)
		}
		c := constraint{rule: r}
		switch r.Kind {
		case RuleAffinity, RuleAntiAffinity:
			// A mandatory VM-VM rule is a must; one that is not is vSphere's
			// "should": a preference DRS honours when it can, which never
			// blocks a power-on.
			switch {
			case r.Kind == RuleAffinity && r.Mandatory:
				c.kind = mustRunOn
			case r.Kind == RuleAffinity:
				c.kind = shouldRunOn
			case r.Mandatory:
				c.kind = mustNotRunOn
			default:
				c.kind = shouldNotRunOn
			}
			for _, m := range r.VMs {
				if m == vm {
					continue
				}
				if h, ok := st.Running[m]; ok {
					c.addRunning(h, m)
				}
			}
			if len(c.hosts) == 0 {
				continue // no other member is powered on: nothing to keep with or away from
			}
		case RuleVMHost:
			switch {
			case r.Mandatory && r.Affine:
				c.kind = mustRunOn
			case r.Mandatory:
				c.kind = mustNotRunOn
			case r.Affine:
				c.kind = shouldRunOn
			default:
				c.kind = shouldNotRunOn
			}
			c.hosts = r.Hosts
			if len(c.hosts) > smallSet {
				c.set = make(map[string]int, len(c.hosts))
				for i, h := range c.hosts {
					if _, dup := c.set[h]; !dup {
						c.set[h] = i
					}
				}
			}
		}
		cons = append(cons, c)
	}
	return cons, nil
}

func names(list []string, name string) bool {
	for _, n := range list {
		if n == name {
			return true
		}
	}
	return false
}

// addRunning records that member runs on host, keeping hosts distinct.
func (c *constraint) addRunning(host, member string) {
	if c.index(host) >= 0 {
		return
	}
	c.hosts = append(c.hosts, host)
	c.members = append(c.members, member)
	switch {
	case c.set != nil:
		c.set[host] = len(c.hosts) - 1
	case len(c.hosts) > smallSet:
		c.set = make(map[string]int, 2*len(c.hosts))
		for i, h := range c.hosts {
			c.set[h] = i
		}
	}
}

// index is host's position in c.hosts, or -1.
func (c *constraint) index(host string) int {
	if c.set != nil {
		if i, ok := c.set[host]; ok {
			return i
		}
		return -1
	}
	for i, h := range c.hosts {
		if h == host {
			return i
		}
	}
	return -1
}

// breaksMust returns why placing on host breaks this mandatory constraint,
// or "" if it does not (or the constraint is only a preference).
func (c *constraint) breaksMust(host string) string {
	switch c.kind {
	case mustRunOn:
		if c.index(host) < 0 {
			return c.reason()
		}
	case mustNotRunOn:
		i := c.index(host)
		if i < 0 {
			return ""
		}
		if c.rule.Kind == RuleAntiAffinity {
			return "anti-affinity rule " + strconv.Quote(c.rule.Name) + " (" + c.members[i] + " runs there)"
		}
		return c.reason()
	}
	return ""
}

// breaksShould reports whether host goes against this preference.
func (c *constraint) breaksShould(host string) bool {
	switch c.kind {
	case shouldRunOn:
		return c.index(host) < 0
	case shouldNotRunOn:
		return c.index(host) >= 0
	}
	return false
}

// maxListed caps how many member placements an affinity reason lists.
const maxListed = 3

// reason is the rule's text for hosts it turns away, built once per call.
func (c *constraint) reason() string {
	if c.text != "" {
		return c.text
	}
	name := strconv.Quote(c.rule.Name)
	switch {
	case c.rule.Kind == RuleAffinity:
		var b strings.Builder
		b.WriteString("affinity rule " + name + " (")
		for i := range c.hosts {
			if i == maxListed {
				fmt.Fprintf(&b, " and %d more hosts", len(c.hosts)-maxListed)
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(c.members[i])
			if i == 0 {
				b.WriteString(" runs on ")
			} else {
				b.WriteString(" on ")
			}
			b.WriteString(c.hosts[i])
		}
		b.WriteString(")")
		c.text = b.String()
	case c.rule.Kind == RuleAntiAffinity:
		c.text = "anti-affinity rule " + name + " (" + strings.Join(c.members, ", ") + " run on " + strings.Join(c.hosts, ", ") + ")"
	case c.kind == mustRunOn:
		c.text = "vm-host rule " + name + " (must run on hosts in its group)"
	case c.kind == mustNotRunOn:
		c.text = "vm-host rule " + name + " (must not run on hosts in its group)"
	case c.kind == shouldRunOn:
		c.text = "vm-host rule " + name + " (should run on hosts in its group)"
	default:
		c.text = "vm-host rule " + name + " (should not run on hosts in its group)"
	}
	return c.text
}
