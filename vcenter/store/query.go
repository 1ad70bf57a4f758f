package store

import (
	"fmt"
	"sort"
	"strings"

	"github.com/google/btree"

	"github.com/podsphere/podsphere/api"
)

// Query selects objects. The zero Query selects everything.
type Query struct {
	Kind string // "" = any
	// Prefix is an inventory path: it matches itself and everything below it,
	// element-wise (/dc1/host/c1 matches /dc1/host/c1/h1, not /dc1/host/c10).
	Prefix string
	Labels map[string]string // equality selector; all must match
	// Filter is an optional extra predicate. It sees the cached object itself
	// (copying 100k objects to test them would make List slow): it must not
	// modify or keep it, and must not call the Store.
	Filter func(*api.Object) bool
}

// normalized drops a trailing slash so "/dc1/" and "/dc1" mean the same.
func (q Query) normalized() Query {
	if len(q.Prefix) > 1 {
		q.Prefix = strings.TrimRight(q.Prefix, "/")
		if q.Prefix == "" {
			q.Prefix = "/"
		}
	}
	return q
}

// Matches reports whether o is selected by q.
func (q Query) Matches(o *api.Object) bool {
	if o == nil {
		return false
	}
	return q.normalized().matches(o)
}

func (q Query) matches(o *api.Object) bool {
	if q.Kind != "" && o.Kind != q.Kind {
		return false
	}
	if !underPrefix(o.Path, q.Prefix) {
		return false
	}
	for k, v := range q.Labels {
		if got, ok := o.Labels[k]; !ok || got != v {
			return false
		}
	}
	return q.Filter == nil || q.Filter(o)
}

// underPrefix is element-wise: p is prefix itself or below it.
func underPrefix(p, prefix string) bool {
	switch {
	case prefix == "" || prefix == "/":
		return true
	case len(p) == len(prefix):
		return p == prefix
	default:
		return len(p) > len(prefix) && p[len(prefix)] == '/' && p[:len(prefix)] == prefix
	}
}

// eachInRange calls fn, in path order, for the objects that may be under
// prefix: the prefix itself and then the range [prefix+"/", prefix+"0"), '0'
// being the byte after '/'. Siblings such as prefix+"-x" sort between the two
// and are skipped without being visited.
func eachInRange(t *btree.BTreeG[*api.Object], prefix string, fn func(*api.Object)) {
	visit := func(o *api.Object) bool { fn(o); return true }
	if prefix == "" || prefix == "/" {
		t.Ascend(visit)
		return
	}
	if o, ok := t.Get(&api.Object{Meta: api.Meta{Path: prefix}}); ok {
		fn(o)
	}
	t.AscendRange(&api.Object{Meta: api.Meta{Path: prefix + "/"}}, &api.Object{Meta: api.Meta{Path: prefix + "0"}}, visit)
}

// ParseSelector parses "app=web,tier=db" into an equality selector. The empty
// string selects everything (nil map).
func ParseSelector(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	sel := map[string]string{}
	for term := range strings.SplitSeq(s, ",") {
		term = strings.TrimSpace(term)
		bad := func(why string) error {
			return fmt.Errorf("label selector %q: term %q: %s: %w", s, term, why, api.ErrInvalid)
		}
		if term == "" {
			return nil, bad("empty term")
		}
		if strings.Contains(term, "!=") {
			return nil, bad("only key=value equality is supported")
		}
		k, v, ok := strings.Cut(term, "=")
		if !ok {
			return nil, bad("want key=value")
		}
		v = strings.TrimPrefix(v, "=") // accept "==" as kubectl does
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if err := validLabel(k, true); err != nil {
			return nil, bad("key " + err.Error())
		}
		if err := validLabel(v, false); err != nil {
			return nil, bad("value " + err.Error())
		}
		if old, dup := sel[k]; dup && old != v {
			return nil, bad(fmt.Sprintf("key %q is already required to be %q", k, old))
		}
		sel[k] = v
	}
	return sel, nil
}

// validLabel allows Kubernetes-style label keys (with an optional prefix/)
// and values (which may be empty).
func validLabel(s string, key bool) error {
	if s == "" {
		if key {
			return fmt.Errorf("is empty")
		}
		return nil
	}
	if len(s) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", s)
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || key && c == '/'
		if !ok {
			return fmt.Errorf("%q: character %q at %d is not allowed", s, c, i)
		}
	}
	return nil
}

func sortByPath(items []*api.Object) {
	sort.Slice(items, func(i, j int) bool { return items[i].Path < items[j].Path })
}
