package labels

import (
	"errors"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

func TestValidate(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	good := []struct{ k, v string }{
		{"app", "web"},
		{"app", ""},
		{"a", "b"},
		{"A9", "Z"},
		{"app.kubernetes.io/name", "web"},
		{"example.com/tier", "front-end_1.2"},
		{"x-y.z/a_b.c-d", "v"},
		{"a-b/c", "d"},
		{"1/2", "3"},
		{long(63), long(63)},
		{long(253) + "/" + long(63), ""},
		{strings.Repeat("a.", 126) + "a/b", "c"}, // 253-character prefix of many parts
	}
	for _, g := range good {
		if err := Validate(g.k, g.v); err != nil {
			t.Errorf("Validate(%q, %q) = %v, want nil", g.k, g.v, err)
		}
	}
	bad := []struct{ k, v, want string }{
		{"", "x", "the key is empty"},
		{"a", "x/y", `value "x/y" has '/' at 1`},
		{"a", "x/y", "only allowed in keys"},
		{"a", long(64), `is 64 characters, at most 63`},
		{"a", "-x", "must begin and end with a letter or digit"},
		{"a", "x.", "must begin and end with a letter or digit"},
		{"a", "x y", "has ' ' at 1"},
		{"a", "é", "has 'é' at 0"},
		{long(64), "v", "is 64 characters, at most 63"},
		{"_a", "v", "must begin and end"},
		{"a b", "v", "has ' ' at 1"},
		{"a/b/c", "v", "more than one '/'"},
		{"/b", "v", "the prefix before '/' is empty"},
		{"a/", "v", "the name after '/' is empty"},
		{"Example.com/b", "v", `prefix "Example.com" has 'E'`},
		{"a..b/c", "v", "empty dot-separated part"},
		{".a/c", "v", "empty dot-separated part"},
		{"a-/c", "v", `part "a-" beginning or ending with '-'`},
		{"-a/c", "v", `beginning or ending with '-'`},
		{"a_b/c", "v", "has '_'"},
		{long(254) + "/c", "v", "is 254 characters, at most 253"},
		{"a/" + long(64), "v", `name "` + long(64) + `" is 64 characters`},
		{"a/-b", "v", `name "-b" must begin and end`},
	}
	for _, b := range bad {
		err := Validate(b.k, b.v)
		if err == nil || !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Validate(%q, %q) = %v, want ErrInvalid saying %q", b.k, b.v, err, b.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "label ") {
			t.Errorf("Validate(%q, %q) = %v: does not name the label", b.k, b.v, err)
		}
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"   ", ""},
		{"a=b", "a=b"},
		{"a==b", "a=b"},
		{" a = b ", "a=b"},
		{"a=", "a="},
		{"a!=b", "a!=b"},
		{"a != b", "a!=b"},
		{"a!=", "a!="},
		{"a", "a"},
		{" a ", "a"},
		{"!a", "!a"},
		{"! a", "!a"},
		{"a in (x,y)", "a in (x,y)"},
		{"a in(y, x ,x)", "a in (x,y)"},
		{"a\tin\t( x )", "a in (x)"},
		{"a in (x,)", "a in (,x)"}, // kubectl: an empty item is the empty value
		{"a in (,)", "a in (,)"},
		{"a notin ( , )", "a notin (,)"},
		{"a notin (x,y)", "a notin (x,y)"},
		{"a notin(y)", "a notin (y)"},
		{"env in (prod,qa),tier!=db,!canary", "!canary,env in (prod,qa),tier!=db"},
		{"tier!=db, env in (qa, prod) , !canary", "!canary,env in (prod,qa),tier!=db"},
		{"b=1,a=2", "a=2,b=1"},
		{"a=b,a=b", "a=b"},
		{"a=b,a==b", "a=b"},
		{"a=b,a=c", "a=b,a=c"}, // both must hold: selects nothing, as in Kubernetes
		{"app.kubernetes.io/name=web", "app.kubernetes.io/name=web"},
		{"example.com/x in (a),!example.com/y", "example.com/x in (a),!example.com/y"},
		{"in=x", "in=x"},
		{"notin", "notin"},
		{"incoming in (a)", "incoming in (a)"},
		{"a,b,c", "a,b,c"},
	} {
		s, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := s.String(); got != c.want {
			t.Errorf("Parse(%q).String() = %q, want %q", c.in, got, c.want)
		}
		if s.Empty() != (c.want == "") {
			t.Errorf("Parse(%q).Empty() = %t", c.in, s.Empty())
		}
		again, err := Parse(s.String())
		if err != nil || again.String() != s.String() {
			t.Errorf("Parse(%q) of its String: %v, %v", s.String(), again, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ in, term, why string }{
		{",", "", "empty term"},
		{"a=b,", "", "empty term"},
		{"a=b,,c", "", "empty term"},
		{"a=x/y", "a=x/y", "'/' is only allowed in keys"},
		{"a/b/c=x", "a/b/c=x", "more than one '/'"},
		{"=b", "=b", "missing key"},
		{"!=b", "!=b", "missing key"},
		{"!", "!", "the key is empty"},
		{"!a=b", "!a=b", "want !key"},
		{"!a in (x)", "!a in (x)", "want !key"},
		{"a b", "a b", "want =, ==, !=, in (...) or notin (...)"},
		{"a=b c", "a=b c", "has ' '"},
		{"a===b", "a===b", "begins with '='"},
		{"a>1", "a>1", "> and < are not supported"},
		{"a<1", "a<1", "> and < are not supported"},
		{"a in", "a in", "want a in (value, ...)"},
		{"a in x", "a in x", "want a in (value, ...)"},
		{"a notin", "a notin", "want a notin (value, ...)"},
		{"a in ()", "a in ()", "in needs at least one value"},
		{"a notin ( )", "a notin ( )", "notin needs at least one value"},
		{"a in (x", "a in (x", "'(' without ')'"},
		{"a in (x,y", "a in (x,y", "'(' without ')'"},
		{"a in x)", "a in x)", "')' without '('"},
		{"a in ((x))", "a in ((x))", "do not nest"},
		{"a in (x) y", "a in (x) y", "nothing may follow the )"},
		{"a in (x/y)", "a in (x/y)", "'/' is only allowed in keys"},
		{"a in (x y)", "a in (x y)", "has ' '"},
		{"ok=1,Bad.com/x=1", "Bad.com/x=1", "prefix"},
		{"a=(b)", "a=(b)", "has '('"},
		{"é=1", "é=1", "has 'é'"},
	} {
		_, err := Parse(c.in)
		if err == nil || !errors.Is(err, api.ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid", c.in, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "term "+quote(c.term)) || !strings.Contains(msg, c.why) {
			t.Errorf("Parse(%q) = %q, want it to name term %q and say %q", c.in, msg, c.term, c.why)
		}
	}
}

func quote(s string) string { return `"` + s + `"` }

func TestMatches(t *testing.T) {
	objs := map[string]map[string]string{
		"none":        nil,
		"prod-web":    {"env": "prod", "tier": "web"},
		"qa-db":       {"env": "qa", "tier": "db"},
		"dev":         {"env": "dev"},
		"canary-prod": {"env": "prod", "canary": ""},
		"empty-env":   {"env": ""},
	}
	for _, c := range []struct {
		sel  string
		want string // the objects selected, in the order of names
	}{
		{"", "none prod-web qa-db dev canary-prod empty-env"},
		{"env=prod", "prod-web canary-prod"},
		{"env==prod", "prod-web canary-prod"},
		{"env!=prod", "none qa-db dev empty-env"}, // != matches objects without the key
		{"env=", "empty-env"},
		{"env!=", "prod-web qa-db dev canary-prod none"},
		{"env", "prod-web qa-db dev canary-prod empty-env"},
		{"!env", "none"},
		{"canary", "canary-prod"}, // an empty value exists
		{"!canary", "none prod-web qa-db dev empty-env"},
		{"env in (prod,qa)", "prod-web qa-db canary-prod"},
		{"env notin (prod,qa)", "none dev empty-env"}, // notin matches objects without the key
		{"env in (prod,qa),tier!=db,!canary", "prod-web"},
		{"env in (,dev)", "dev empty-env"},
		{"tier=web,tier=db", ""},
		{"env,!env", ""},
	} {
		s := MustParse(c.sel)
		for _, name := range []string{"none", "prod-web", "qa-db", "dev", "canary-prod", "empty-env"} {
			want := strings.Contains(" "+c.want+" ", " "+name+" ")
			if got := s.Matches(objs[name]); got != want {
				t.Errorf("%q matches %s %v: %t, want %t", c.sel, name, objs[name], got, want)
			}
		}
	}
	var zero Selector
	if !zero.Empty() || !zero.Matches(nil) || zero.String() != "" || !Everything().Matches(map[string]string{"a": "b"}) {
		t.Error("the zero Selector must be empty and select everything")
	}
}

func TestRequirements(t *testing.T) {
	s := MustParse("tier!=db,env in (qa,prod),!canary")
	rs := s.Requirements()
	type req struct {
		key    string
		op     Operator
		values string
	}
	want := []req{{"canary", DoesNotExist, ""}, {"env", In, "prod,qa"}, {"tier", NotEquals, "db"}}
	if len(rs) != len(want) {
		t.Fatalf("Requirements() = %v, want %v", rs, want)
	}
	for i, r := range rs {
		if got := (req{r.Key(), r.Operator(), strings.Join(r.Values(), ",")}); got != want[i] {
			t.Errorf("requirement %d = %+v, want %+v", i, got, want[i])
		}
	}
	// Neither slice is shared with the selector.
	rs[0] = rs[1]
	rs[1].Values()[0] = "changed"
	if s.String() != "!canary,env in (prod,qa),tier!=db" {
		t.Errorf("changing what Requirements returned changed the selector: %s", s)
	}
}

func TestFromLabelSelector(t *testing.T) {
	for _, c := range []struct {
		name string
		in   api.LabelSelector
		want string
	}{
		{"empty selects everything", api.LabelSelector{}, ""},
		{"empty maps", api.LabelSelector{MatchLabels: map[string]string{}, MatchExpressions: []api.LabelSelectorRequirement{}}, ""},
		{"matchLabels", api.LabelSelector{MatchLabels: map[string]string{"tier": "web", "app": "shop"}}, "app=shop,tier=web"},
		{"expressions", api.LabelSelector{MatchExpressions: []api.LabelSelectorRequirement{
			{Key: "env", Operator: "In", Values: []string{"qa", "prod"}},
			{Key: "tier", Operator: "NotIn", Values: []string{"db"}},
			{Key: "canary", Operator: "DoesNotExist"},
			{Key: "app", Operator: "Exists"},
		}}, "app,!canary,env in (prod,qa),tier notin (db)"},
		{"both", api.LabelSelector{MatchLabels: map[string]string{"app": "shop"},
			MatchExpressions: []api.LabelSelectorRequirement{{Key: "env", Operator: "In", Values: []string{"prod"}}}},
			"app=shop,env in (prod)"},
	} {
		s, err := FromLabelSelector(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if s.String() != c.want {
			t.Errorf("%s: String() = %q, want %q", c.name, s.String(), c.want)
		}
		if again := MustParse(s.String()); again.String() != s.String() {
			t.Errorf("%s: Parse(String()) = %q", c.name, again.String())
		}
	}
	s, _ := FromLabelSelector(api.LabelSelector{MatchLabels: map[string]string{"app": "shop"},
		MatchExpressions: []api.LabelSelectorRequirement{{Key: "env", Operator: "NotIn", Values: []string{"dev"}}}})
	if !s.Matches(map[string]string{"app": "shop"}) || !s.Matches(map[string]string{"app": "shop", "env": "prod"}) ||
		s.Matches(map[string]string{"app": "shop", "env": "dev"}) || s.Matches(map[string]string{"env": "prod"}) {
		t.Errorf("%s matches the wrong objects", s)
	}

	expr := func(rs ...api.LabelSelectorRequirement) api.LabelSelector {
		return api.LabelSelector{MatchExpressions: rs}
	}
	for _, c := range []struct {
		name  string
		in    api.LabelSelector
		field string
		why   string
	}{
		{"bad matchLabels key", api.LabelSelector{MatchLabels: map[string]string{"a b": "x"}}, `selector.matchLabels["a b"]`, "has ' '"},
		{"bad matchLabels value", api.LabelSelector{MatchLabels: map[string]string{"ok": "x/y"}}, `selector.matchLabels["ok"]`, "'/'"},
		{"unknown operator", expr(api.LabelSelectorRequirement{Key: "a", Operator: "Exists"}, api.LabelSelectorRequirement{Key: "a", Operator: "in", Values: []string{"x"}}),
			"selector.matchExpressions[1].operator", `"in": want In, NotIn, Exists or DoesNotExist`},
		{"missing operator", expr(api.LabelSelectorRequirement{Key: "a"}), "selector.matchExpressions[0].operator", `""`},
		{"Gt", expr(api.LabelSelectorRequirement{Key: "a", Operator: "Gt", Values: []string{"1"}}), "selector.matchExpressions[0].operator", "want In"},
		{"empty key", expr(api.LabelSelectorRequirement{Operator: "Exists"}), "selector.matchExpressions[0].key", "the key is empty"},
		{"bad key", expr(api.LabelSelectorRequirement{Key: "a/b/c", Operator: "Exists"}), "selector.matchExpressions[0].key", "more than one '/'"},
		{"In without values", expr(api.LabelSelectorRequirement{Key: "a", Operator: "In"}), "selector.matchExpressions[0].values", "In needs at least one value"},
		{"NotIn without values", expr(api.LabelSelectorRequirement{Key: "a", Operator: "NotIn", Values: []string{}}), "selector.matchExpressions[0].values", "NotIn needs at least one value"},
		{"Exists with values", expr(api.LabelSelectorRequirement{Key: "a", Operator: "Exists", Values: []string{"x"}}), "selector.matchExpressions[0].values", "Exists takes no values"},
		{"DoesNotExist with values", expr(api.LabelSelectorRequirement{Key: "a", Operator: "DoesNotExist", Values: []string{"x"}}), "selector.matchExpressions[0].values", "DoesNotExist takes no values"},
		{"bad value", expr(api.LabelSelectorRequirement{Key: "a", Operator: "In", Values: []string{"ok", "-no"}}), "selector.matchExpressions[0].values[1]", "must begin and end"},
	} {
		_, err := FromLabelSelector(c.in)
		if err == nil || !errors.Is(err, api.ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", c.name, err)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, c.field+": ") || !strings.Contains(msg, c.why) {
			t.Errorf("%s: error %q, want it to begin with %s and say %q", c.name, msg, c.field, c.why)
		}
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse of a bad selector did not panic")
		}
	}()
	MustParse("a in (")
}
