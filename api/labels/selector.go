package labels

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/podsphere/podsphere/api"
)

// Operator is how a Requirement tests its key.
type Operator string

// The operators, spelled as in the canonical text (Selector.String), except
// Exists and DoesNotExist, which are written key and !key.
const (
	Equals       Operator = "="
	NotEquals    Operator = "!="
	In           Operator = "in"
	NotIn        Operator = "notin"
	Exists       Operator = "exists"
	DoesNotExist Operator = "!"
)

// Requirement is one term of a selector: a key, an operator and the values
// it compares with (one for Equals and NotEquals, one or more for In and
// NotIn, none for Exists and DoesNotExist). Requirements are made only by
// Parse and FromLabelSelector, so they are always valid.
type Requirement struct {
	key    string
	op     Operator
	values []string // sorted, without duplicates
}

// Key is the label key the requirement tests.
func (r Requirement) Key() string { return r.key }

// Operator is how it tests the key.
func (r Requirement) Operator() Operator { return r.op }

// Values are the values it compares with, sorted; the slice is a copy.
func (r Requirement) Values() []string { return slices.Clone(r.values) }

// Matches reports whether the labels satisfy the requirement. As in
// Kubernetes, != and notin hold for labels that lack the key.
func (r Requirement) Matches(labels map[string]string) bool {
	v, has := labels[r.key]
	switch r.op {
	case Equals:
		return has && v == r.values[0]
	case NotEquals:
		return !has || v != r.values[0]
	case In:
		return has && r.has(v)
	case NotIn:
		return !has || !r.has(v)
	case Exists:
		return has
	case DoesNotExist:
		return !has
	}
	return false
}

func (r Requirement) has(v string) bool {
	_, found := slices.BinarySearch(r.values, v)
	return found
}

// String is the requirement in the selector text form: a=b, a!=b,
// a in (x,y), a notin (x,y), a or !a.
func (r Requirement) String() string {
	switch r.op {
	case Equals, NotEquals:
		return r.key + string(r.op) + r.values[0]
	case In, NotIn:
		set := strings.Join(r.values, ",")
		if set == "" {
			set = "," // the set of just the empty value: "()" would be no value at all
		}
		return r.key + " " + string(r.op) + " (" + set + ")"
	case DoesNotExist:
		return "!" + r.key
	}
	return r.key
}

// compare orders requirements for the canonical form: by key, then
// operator, then values.
func compare(a, b Requirement) int {
	return cmp.Or(strings.Compare(a.key, b.key), strings.Compare(string(a.op), string(b.op)),
		slices.Compare(a.values, b.values))
}

// Selector selects objects by their labels: every requirement must hold.
// The zero Selector has none and selects everything. A Selector is
// immutable and safe to share.
type Selector struct {
	reqs []Requirement // sorted by compare, without duplicates
}

// Everything is the selector that selects every object (the zero Selector).
func Everything() Selector { return Selector{} }

func newSelector(reqs []Requirement) Selector {
	slices.SortFunc(reqs, compare)
	reqs = slices.CompactFunc(reqs, func(a, b Requirement) bool { return compare(a, b) == 0 })
	if len(reqs) == 0 {
		return Selector{}
	}
	return Selector{reqs: reqs}
}

// Matches reports whether labels (nil for none) satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s.reqs {
		if !r.Matches(labels) {
			return false
		}
	}
	return true
}

// Empty says whether the selector has no requirements, so selects everything.
func (s Selector) Empty() bool { return len(s.reqs) == 0 }

// Requirements are the selector's terms, sorted by key; the slice is a copy.
func (s Selector) Requirements() []Requirement { return slices.Clone(s.reqs) }

// String is the canonical text of the selector: its requirements sorted by
// key and joined by commas, "" for the empty selector. Parse reads it back
// to an equal selector.
func (s Selector) String() string {
	parts := make([]string, len(s.reqs))
	for i, r := range s.reqs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// newRequirement checks a requirement's key and values; why is "" when it is
// valid. values are copied, sorted and deduplicated.
func newRequirement(key string, op Operator, values []string) (Requirement, string) {
	if why := checkKey(key); why != "" {
		return Requirement{}, why
	}
	switch op {
	case Equals, NotEquals:
		if len(values) != 1 {
			return Requirement{}, fmt.Sprintf("%s takes exactly one value", op)
		}
	case In, NotIn:
		if len(values) == 0 {
			return Requirement{}, fmt.Sprintf("%s needs at least one value", op)
		}
	case Exists, DoesNotExist:
		if len(values) != 0 {
			return Requirement{}, fmt.Sprintf("%s takes no values", op)
		}
	default:
		return Requirement{}, fmt.Sprintf("unknown operator %q", op)
	}
	for _, v := range values {
		if why := checkValue(v); why != "" {
			return Requirement{}, why
		}
	}
	vs := slices.Clone(values)
	slices.Sort(vs)
	return Requirement{key: key, op: op, values: slices.Compact(vs)}, ""
}

// MustParse is Parse for selectors written in code (and tests): it panics
// if s is not a valid selector.
func MustParse(s string) Selector {
	sel, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return sel
}

// Parse reads a selector in kubectl's text form (see the package comment):
// "env in (prod,qa),tier!=db,!canary". The empty string, or one of only
// spaces, selects everything. Errors wrap api.ErrInvalid and name the term
// that is wrong.
func Parse(s string) (Selector, error) {
	if strings.TrimSpace(s) == "" {
		return Selector{}, nil
	}
	terms, err := splitTerms(s)
	if err != nil {
		return Selector{}, err
	}
	reqs := make([]Requirement, 0, len(terms))
	for _, t := range terms {
		r, why := parseTerm(t)
		if why != "" {
			return Selector{}, fmt.Errorf("label selector %q: term %q: %s: %w", s, strings.TrimSpace(t), why, api.ErrInvalid)
		}
		reqs = append(reqs, r)
	}
	return newSelector(reqs), nil
}

// splitTerms cuts s at the commas outside parentheses.
func splitTerms(s string) ([]string, error) {
	var terms []string
	depth, start := 0, 0
	bad := func(term, why string) error {
		return fmt.Errorf("label selector %q: term %q: %s: %w", s, strings.TrimSpace(term), why, api.ErrInvalid)
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			if depth > 0 {
				return nil, bad(s[start:], "sets do not nest: '(' inside ( )")
			}
			depth++
		case ')':
			if depth == 0 {
				return nil, bad(s[start:i+1], "')' without '('")
			}
			depth--
		case ',':
			if depth == 0 {
				terms = append(terms, s[start:i])
				start = i + 1
			}
		}
	}
	if depth > 0 {
		return nil, bad(s[start:], "'(' without ')'")
	}
	return append(terms, s[start:]), nil
}

const space = " \t\r\n\v\f"

// isKeyChar says whether c may be part of the key token: anything but
// space and the selector's punctuation (the key itself is then checked).
func isKeyChar(c byte) bool {
	return !strings.ContainsRune(space, rune(c)) && !strings.ContainsRune("=!(),<>", rune(c))
}

// parseTerm parses one requirement; why is "" when it is valid.
func parseTerm(t string) (Requirement, string) {
	t = strings.Trim(t, space)
	if t == "" {
		return Requirement{}, "empty term (a stray comma?)"
	}
	if rest, ok := strings.CutPrefix(t, "!"); ok && !strings.HasPrefix(rest, "=") {
		key := strings.Trim(rest, space)
		if strings.ContainsFunc(key, func(r rune) bool { return r < 0x80 && !isKeyChar(byte(r)) }) {
			return Requirement{}, "want !key (the key has no label, so no operator or value follows it)"
		}
		return newRequirement(key, DoesNotExist, nil)
	}
	i := 0
	for i < len(t) && isKeyChar(t[i]) {
		i++
	}
	key, rest := t[:i], strings.TrimLeft(t[i:], space)
	if key == "" {
		return Requirement{}, "missing key before the operator"
	}
	switch {
	case rest == "":
		return newRequirement(key, Exists, nil)
	case strings.HasPrefix(rest, "=="):
		return equality(key, Equals, rest[2:])
	case strings.HasPrefix(rest, "="):
		return equality(key, Equals, rest[1:])
	case strings.HasPrefix(rest, "!="):
		return equality(key, NotEquals, rest[2:])
	}
	for _, op := range []Operator{In, NotIn} {
		set, ok := strings.CutPrefix(rest, string(op))
		if !ok || set != "" && isKeyChar(set[0]) {
			continue // "incoming" is not the operator in
		}
		set = strings.Trim(set, space)
		inner, ok := strings.CutPrefix(set, "(")
		if !ok {
			return Requirement{}, fmt.Sprintf("want %s %s (value, ...)", key, op)
		}
		inner, ok = strings.CutSuffix(inner, ")")
		if !ok {
			return Requirement{}, fmt.Sprintf("nothing may follow the ) of %s", op)
		}
		var values []string
		if strings.Trim(inner, space) != "" {
			for v := range strings.SplitSeq(inner, ",") {
				values = append(values, strings.Trim(v, space))
			}
		}
		return newRequirement(key, op, values)
	}
	if strings.HasPrefix(rest, ">") || strings.HasPrefix(rest, "<") {
		return Requirement{}, "the operators > and < are not supported (want =, ==, !=, in, notin)"
	}
	return Requirement{}, fmt.Sprintf("want =, ==, !=, in (...) or notin (...) after the key %q", key)
}

// equality finishes key=value, key==value and key!=value.
func equality(key string, op Operator, value string) (Requirement, string) {
	value = strings.Trim(value, space)
	if strings.HasPrefix(value, "=") {
		return Requirement{}, fmt.Sprintf("the value %q begins with '='", value)
	}
	return newRequirement(key, op, []string{value})
}

// FromLabelSelector turns Kubernetes' matchLabels and matchExpressions into
// a Selector. Operators are In, NotIn (with one or more values), Exists and
// DoesNotExist (with none). Errors wrap api.ErrInvalid and name the field,
// selector.matchLabels["k"] or selector.matchExpressions[1].operator, so a
// caller can prefix its own path ("spec." + the error).
//
// An empty LabelSelector (no matchLabels, no matchExpressions) selects
// everything, as in Kubernetes. Kubernetes refuses an empty selector on a
// ReplicaSet or Deployment, which would otherwise adopt every pod: callers
// for which "everything" makes no sense must check Selector.Empty.
func FromLabelSelector(ls api.LabelSelector) (Selector, error) {
	bad := func(field, why string) error {
		return fmt.Errorf("selector.%s: %s: %w", field, why, api.ErrInvalid)
	}
	reqs := make([]Requirement, 0, len(ls.MatchLabels)+len(ls.MatchExpressions))
	keys := make([]string, 0, len(ls.MatchLabels))
	for k := range ls.MatchLabels {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first bad one is the same every time
	for _, k := range keys {
		r, why := newRequirement(k, Equals, []string{ls.MatchLabels[k]})
		if why != "" {
			return Selector{}, bad(fmt.Sprintf("matchLabels[%q]", k), why)
		}
		reqs = append(reqs, r)
	}
	for i, e := range ls.MatchExpressions {
		f := fmt.Sprintf("matchExpressions[%d]", i)
		var op Operator
		switch e.Operator {
		case "In":
			op = In
		case "NotIn":
			op = NotIn
		case "Exists":
			op = Exists
		case "DoesNotExist":
			op = DoesNotExist
		default:
			return Selector{}, bad(f+".operator", fmt.Sprintf("%q: want In, NotIn, Exists or DoesNotExist", e.Operator))
		}
		if why := checkKey(e.Key); why != "" {
			return Selector{}, bad(f+".key", why)
		}
		switch {
		case (op == In || op == NotIn) && len(e.Values) == 0:
			return Selector{}, bad(f+".values", fmt.Sprintf("operator %s needs at least one value", e.Operator))
		case (op == Exists || op == DoesNotExist) && len(e.Values) != 0:
			return Selector{}, bad(f+".values", fmt.Sprintf("operator %s takes no values", e.Operator))
		}
		for j, v := range e.Values {
			if why := checkValue(v); why != "" {
				return Selector{}, bad(fmt.Sprintf("%s.values[%d]", f, j), why)
			}
		}
		r, why := newRequirement(e.Key, op, e.Values)
		if why != "" { // unreachable: checked above
			return Selector{}, bad(f, why)
		}
		reqs = append(reqs, r)
	}
	return newSelector(reqs), nil
}
