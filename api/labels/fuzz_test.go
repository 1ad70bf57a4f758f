package labels

import (
	"errors"
	"testing"

	"github.com/podsphere/podsphere/api"
)

// FuzzParse checks that Parse never panics, that rejections wrap
// ErrInvalid, and that accepted selectors round-trip: the canonical text
// parses to the same selector, which selects the same label sets.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "a=b", "a==b", "a!=b", "a", "!a", "a in (x,y)", "a notin (x)", "env in (prod,qa),tier!=db,!canary",
		"example.com/x=y", "a in (x,)", "a=", "a in ((x))", "a>1", "!a=b", " a = b , c ",
	} {
		f.Add(s, "env", "prod")
	}
	f.Fuzz(func(t *testing.T, s, k, v string) {
		sel, err := Parse(s)
		if err != nil {
			if !errors.Is(err, api.ErrInvalid) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		text := sel.String()
		again, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", s, text, err)
		}
		if again.String() != text {
			t.Fatalf("Parse(%q) = %q, which parses to %q", s, text, again.String())
		}
		if sel.Empty() != (text == "") {
			t.Fatalf("Parse(%q): Empty() = %t with text %q", s, sel.Empty(), text)
		}
		for _, labels := range []map[string]string{nil, {k: v}, {k: ""}, {"env": "prod", k: v}} {
			if sel.Matches(labels) != again.Matches(labels) {
				t.Fatalf("Parse(%q) and Parse(%q) disagree on %v", s, text, labels)
			}
		}
		// Every requirement's key and values are valid labels.
		for _, r := range sel.Requirements() {
			vals := r.Values()
			if len(vals) == 0 {
				vals = []string{""}
			}
			for _, val := range vals {
				if err := Validate(r.Key(), val); err != nil {
					t.Fatalf("Parse(%q) accepted requirement %s with an invalid label: %v", s, r, err)
				}
			}
		}
	})
}
