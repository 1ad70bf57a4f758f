package placement

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/labels"
)

// VMRules are the placement rules a VM brings with it (its spec.hostSelector
// and spec.affinity: Kubernetes' nodeSelector, node affinity and pod
// (anti-)affinity with topologyKey kubernetes.io/hostname). Required terms
// are DRS "must" rules, preferred ones "should" rules. The zero VMRules has
// none. Selectors are parsed by the caller.
type VMRules struct {
	// HostSelector must match the host's labels; the empty selector (no
	// hostSelector) matches every host.
	HostSelector labels.Selector
	// HostRequired: the host's labels must match at least one of these
	// (nodeSelectorTerms are ORed); none means no constraint.
	HostRequired []labels.Selector
	// HostPreferred: a host scores the weights of the terms its labels match.
	HostPreferred []WeightedSelector
	// VMAffinity and VMAntiAffinity select powered-on VMs of the VM's own
	// namespace (State.Neighbours): run on the host of such a VM, or away
	// from it.
	VMAffinity, VMAntiAffinity []VMTerm
}

// WeightedSelector is a preferred host term; Weight is 1 to 100.
type WeightedSelector struct {
	Weight   int
	Selector labels.Selector
}

// VMTerm is one VM-VM term: required (must), or preferred (should) with a
// Weight of 1 to 100.
type VMTerm struct {
	Selector labels.Selector
	Required bool
	Weight   int
}

// RunningVM is a powered-on VM the placed VM's VM-VM terms are weighed
// against, and whose own required anti-affinity may keep it away.
type RunningVM struct {
	Name      string
	Namespace string // VM-VM terms only see VMs of the placed VM's namespace
	Host      string // host name, as Host.Name
	Labels    map[string]string
	// AntiAffinity holds the selectors of its required vmAntiAffinity terms:
	// a VM they select may not join it on its host (Kubernetes checks
	// existing pods' required anti-affinity the same way).
	AntiAffinity []labels.Selector
}

func (r *VMRules) empty() bool {
	return r.HostSelector.Empty() && len(r.HostRequired) == 0 && len(r.HostPreferred) == 0 &&
		len(r.VMAffinity) == 0 && len(r.VMAntiAffinity) == 0
}

// validate checks the weights of preferred terms.
func (r *VMRules) validate() error {
	bad := func(field string, w int) error {
		return fmt.Errorf("%s: weight %d is not from 1 to 100: %w", field, w, api.ErrInvalid)
	}
	for i, t := range r.HostPreferred {
		if t.Weight < 1 || t.Weight > 100 {
			return bad(fmt.Sprintf("hostPreferred[%d]", i), t.Weight)
		}
	}
	for _, list := range []struct {
		name  string
		terms []VMTerm
	}{{"vmAffinity", r.VMAffinity}, {"vmAntiAffinity", r.VMAntiAffinity}} {
		for i, t := range list.terms {
			if !t.Required && (t.Weight < 1 || t.Weight > 100) {
				return bad(fmt.Sprintf("%s[%d]", list.name, i), t.Weight)
			}
		}
	}
	return nil
}

// vmPlan is the VM's own rules and the running VMs they talk about,
// resolved once per Place call: every host is then judged with a few map
// lookups and one label match per host term.
type vmPlan struct {
	rules VMRules
	terms []vmTerm                // VMAffinity then VMAntiAffinity
	at    map[string]*hostMatches // host -> what of its running VMs the terms match
	// Required VM affinity: the hosts running a VM that matches every
	// required affinity term, with the least such VM name; anyHost when no
	// VM matches them all and the VM matches them itself.
	reqAffinity bool
	together    map[string]string
	anyHost     bool
	// kept: hosts whose running VMs' required anti-affinity selects this VM.
	kept map[string]keptBy
	text struct {
		hostSelector, hostRequired, affinity string
		hostPreferred                        []string // per term: why a host not matching it is not preferred
	}
}

type vmTerm struct {
	VMTerm
	anti bool
	sel  string // selector text
	text string // a preferred term's name in reasons: "vmAffinity app=db, weight 10"
	// absent: why a host without a matching VM is not preferred (affinity).
	absent string
}

type hostMatches struct {
	count []int    // per term: matching VMs on the host
	least []string // per term: the least matching VM name, for reasons
}

type keptBy struct{ vm, sel string }

// planVM resolves the VM's rules against st.Neighbours; nil when neither
// the VM's rules nor its neighbours' anti-affinity can matter. Cost is
// O(neighbours x terms).
func planVM(st *State, vm *VM) (*vmPlan, error) {
	if err := vm.Rules.validate(); err != nil {
		return nil, fmt.Errorf("placing %s: %w", vm.Name, err)
	}
	if vm.Rules.empty() && len(st.Neighbours) == 0 {
		return nil, nil
	}
	p := &vmPlan{rules: vm.Rules}
	for _, t := range vm.Rules.HostPreferred {
		p.text.hostPreferred = append(p.text.hostPreferred,
			"hostPreferred "+selText(t.Selector, "every host")+", weight "+strconv.Itoa(t.Weight)+" (host labels do not match)")
	}
	for _, list := range []struct {
		name  string
		terms []VMTerm
	}{{"vmAffinity", vm.Rules.VMAffinity}, {"vmAntiAffinity", vm.Rules.VMAntiAffinity}} {
		for _, t := range list.terms {
			vt := vmTerm{VMTerm: t, anti: list.name == "vmAntiAffinity", sel: selText(t.Selector, "every VM")}
			if !t.Required {
				vt.text = list.name + " " + vt.sel + ", weight " + strconv.Itoa(t.Weight)
				vt.absent = vt.text + " (no matching VM runs there)"
			}
			p.reqAffinity = p.reqAffinity || t.Required && !vt.anti
			p.terms = append(p.terms, vt)
		}
	}
	matchedAll := false // a running VM matches every required affinity term
	for i := range st.Neighbours {
		n := &st.Neighbours[i]
		if n.Namespace != vm.Namespace || n.Name == vm.Name || n.Host == "" {
			continue
		}
		for _, s := range n.AntiAffinity {
			if s.Matches(vm.Labels) {
				if p.kept == nil {
					p.kept = map[string]keptBy{}
				}
				if k, ok := p.kept[n.Host]; !ok || n.Name < k.vm {
					p.kept[n.Host] = keptBy{vm: n.Name, sel: selText(s, "every VM")}
				}
				break
			}
		}
		if len(p.terms) == 0 {
			continue
		}
		var hm *hostMatches
		all := p.reqAffinity
		for ti := range p.terms {
			t := &p.terms[ti]
			m := t.Selector.Matches(n.Labels)
			if !m {
				if t.Required && !t.anti {
					all = false
				}
				continue
			}
			if hm == nil {
				hm = p.host(n.Host)
			}
			hm.count[ti]++
			if hm.least[ti] == "" || n.Name < hm.least[ti] {
				hm.least[ti] = n.Name
			}
		}
		if all {
			matchedAll = true
			if p.together == nil {
				p.together = map[string]string{}
			}
			if cur, ok := p.together[n.Host]; !ok || n.Name < cur {
				p.together[n.Host] = n.Name
			}
		}
	}
	if p.reqAffinity && !matchedAll {
		// Kubernetes: the first of a series of pods with affinity to each
		// other may go anywhere, if it matches its own terms.
		p.anyHost = true
		for _, t := range p.terms {
			if t.Required && !t.anti && !t.Selector.Matches(vm.Labels) {
				p.anyHost = false
			}
		}
	}
	return p, nil
}

func (p *vmPlan) host(name string) *hostMatches {
	if p.at == nil {
		p.at = map[string]*hostMatches{}
	}
	hm := p.at[name]
	if hm == nil {
		hm = &hostMatches{count: make([]int, len(p.terms)), least: make([]string, len(p.terms))}
		p.at[name] = hm
	}
	return hm
}

// selText is a selector's text for reasons; all names what the empty one selects.
func selText(s labels.Selector, all string) string {
	if s.Empty() {
		return "(" + all + ")"
	}
	return s.String()
}

// breaksMust returns why h cannot run the VM under its own rules (or its
// neighbours' anti-affinity), or "" if it can.
func (p *vmPlan) breaksMust(h *Host) string {
	r := &p.rules
	if !r.HostSelector.Empty() && !r.HostSelector.Matches(h.Labels) {
		if p.text.hostSelector == "" {
			p.text.hostSelector = "host labels do not match hostSelector " + r.HostSelector.String()
		}
		return p.text.hostSelector
	}
	if len(r.HostRequired) > 0 && !slices.ContainsFunc(r.HostRequired, func(s labels.Selector) bool { return s.Matches(h.Labels) }) {
		if p.text.hostRequired == "" {
			if len(r.HostRequired) == 1 {
				p.text.hostRequired = "host labels do not match hostRequired " + selText(r.HostRequired[0], "every host")
			} else {
				texts := make([]string, len(r.HostRequired))
				for i, s := range r.HostRequired {
					texts[i] = selText(s, "every host")
				}
				p.text.hostRequired = "host labels match no hostRequired term (" + strings.Join(texts, " or ") + ")"
			}
		}
		return p.text.hostRequired
	}
	if p.reqAffinity && !p.anyHost {
		if _, ok := p.together[h.Name]; !ok {
			return p.affinityReason()
		}
	}
	if hm := p.at[h.Name]; hm != nil {
		for ti, t := range p.terms {
			if t.anti && t.Required && hm.count[ti] > 0 {
				return "vmAntiAffinity " + t.sel + " (" + runThere(hm, ti) + ")"
			}
		}
	}
	if k, ok := p.kept[h.Name]; ok {
		return k.vm + " runs there and its vmAntiAffinity " + k.sel + " selects this VM"
	}
	return ""
}

// runThere is "db-01 runs there" or "db-01 and 2 more run there".
func runThere(hm *hostMatches, ti int) string {
	if n := hm.count[ti]; n > 1 {
		return hm.least[ti] + " and " + strconv.Itoa(n-1) + " more run there"
	}
	return hm.least[ti] + " runs there"
}

// affinityReason says why a host breaks the required VM affinity, built once.
func (p *vmPlan) affinityReason() string {
	if p.text.affinity != "" {
		return p.text.affinity
	}
	var sels []string
	for _, t := range p.terms {
		if t.Required && !t.anti {
			sels = append(sels, t.sel)
		}
	}
	var b strings.Builder
	b.WriteString("vmAffinity " + strings.Join(sels, " and ") + " (")
	if len(p.together) == 0 {
		b.WriteString("no matching VM runs in the cluster, and this VM does not match it itself")
	} else {
		hosts := make([]string, 0, len(p.together))
		for h := range p.together {
			hosts = append(hosts, h)
		}
		slices.Sort(hosts)
		for i, h := range hosts {
			if i == maxListed {
				fmt.Fprintf(&b, " and %d more hosts", len(hosts)-maxListed)
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(p.together[h])
			if i == 0 {
				b.WriteString(" runs on ")
			} else {
				b.WriteString(" on ")
			}
			b.WriteString(h)
		}
	}
	b.WriteString(")")
	p.text.affinity = b.String()
	return p.text.affinity
}

// prefer weighs h by the VM's preferred terms: hostWeight is the sum of the
// weights of the hostPreferred terms its labels match; vmWeight sums, over
// the preferred VM terms, weight x matching VMs on h (negative for
// anti-affinity). The preferred terms h goes against are added to reason.
func (p *vmPlan) prefer(h *Host, reason string) (hostWeight, vmWeight int, _ string) {
	for i, t := range p.rules.HostPreferred {
		if t.Selector.Matches(h.Labels) {
			hostWeight += t.Weight
		} else {
			reason = addReason(reason, p.text.hostPreferred[i])
		}
	}
	hm := p.at[h.Name]
	for ti, t := range p.terms {
		if t.Required {
			continue
		}
		n := 0
		if hm != nil {
			n = hm.count[ti]
		}
		switch {
		case !t.anti && n == 0:
			reason = addReason(reason, t.absent)
		case !t.anti:
			vmWeight += t.Weight * n
		case n > 0:
			vmWeight -= t.Weight * n
			reason = addReason(reason, t.text+" ("+runThere(hm, ti)+")")
		}
	}
	return hostWeight, vmWeight, reason
}

// addReason appends r to a verdict's reason.
func addReason(reason, r string) string {
	if reason == "" {
		return r
	}
	return reason + "; " + r
}

// hostPreferred and vmPreferred say whether the VM has preferred terms of each kind.
func (p *vmPlan) hostPreferred() bool { return p != nil && len(p.rules.HostPreferred) > 0 }

func (p *vmPlan) vmPreferred() bool {
	if p == nil {
		return false
	}
	for _, t := range p.terms {
		if !t.Required {
			return true
		}
	}
	return false
}
