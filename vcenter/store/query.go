package store

import (
	"sort"
	"strings"

	"github.com/google/btree"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/labels"
)

// Query selects objects. The zero Query selects everything.
type Query struct {
	Kind string // "" = any
	// Prefix is an inventory path: it matches itself and everything below it,
	// element-wise (/dc1/host/c1 matches /dc1/host/c1/h1, not /dc1/host/c10).
	Prefix string
	// Selector selects by label (labels.Parse, labels.FromLabelSelector);
	// the zero Selector selects everything.
	Selector labels.Selector
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
	if !q.Selector.Matches(o.Labels) {
		return false
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

func sortByPath(items []*api.Object) {
	sort.Slice(items, func(i, j int) bool { return items[i].Path < items[j].Path })
}
