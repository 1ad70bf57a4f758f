package api

import (
	"errors"
	"slices"
	"testing"
)

// FuzzParsePath checks that ParsePath never panics, that rejections wrap
// ErrInvalid, and that accepted paths round-trip: the Ref names the same
// path, a known kind, and the last element as its name.
func FuzzParsePath(f *testing.F) {
	for _, p := range []string{"/dc1", "/dc1/host/c1/Resources/dev", "/dc1/vm/web", "/library/x", "dc1", "/dc1/"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, err := ParsePath(p)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParsePath(%q): error %v does not wrap ErrInvalid", p, err)
			}
			return
		}
		if r.Path != p {
			t.Fatalf("ParsePath(%q).Path = %q", p, r.Path)
		}
		if !slices.Contains(Kinds, r.Kind) {
			t.Fatalf("ParsePath(%q).Kind = %q, not one of %v", p, r.Kind, Kinds)
		}
		if r.Name != Base(p) {
			t.Fatalf("ParsePath(%q).Name = %q, want %q", p, r.Name, Base(p))
		}
		if r.Kind == KindResourcePool {
			if r.RootPool() == "" || (len(r.Pools) > 0) != (r.ParentPool() != "") {
				t.Fatalf("ParsePath(%q): pool ref %+v inconsistent", p, r)
			}
			if _, err := ParsePath(r.RootPool()); err != nil {
				t.Fatalf("ParsePath(%q): root pool %q does not parse: %v", p, r.RootPool(), err)
			}
		}
	})
}
