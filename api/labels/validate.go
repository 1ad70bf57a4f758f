// Package labels is podsphere's one implementation of object labels: the
// rules a label key and value follow (Kubernetes' rules), and label
// selectors, in kubectl's text form (Parse) and in Kubernetes'
// matchLabels/matchExpressions form (FromLabelSelector). It does no I/O.
//
// The selector grammar, as kubectl's:
//
//	selector    = "" | requirement { "," requirement }
//	requirement = key "=" value | key "==" value | key "!=" value
//	            | key "in" "(" values ")" | key "notin" "(" values ")"
//	            | key | "!" key
//	values      = value { "," value }
//
// All requirements must hold. key != value and key notin (...) also hold
// for objects that have no label key, as in Kubernetes; key alone means the
// label exists, !key that it does not. Whitespace around keys, values and
// operators is ignored, and the empty selector selects everything. As in
// kubectl, an empty item in a set is the empty value: a in (,x) is a=""
// or a=x, and a in (,) is the set of just the empty value.
package labels

import (
	"fmt"
	"strings"

	"github.com/podsphere/podsphere/api"
)

// Length limits of label keys and values (Kubernetes').
const (
	MaxNameLen   = 63  // the name part of a key, and a value
	MaxPrefixLen = 253 // the optional DNS-subdomain prefix of a key
	MaxValueLen  = 63
)

// Validate checks one label against Kubernetes' rules. The key is an
// optional prefix and a name, prefix/name: the prefix is a DNS subdomain
// (at most 253 characters: lowercase letters, digits, '-' and '.', each
// dot-separated part beginning and ending with a letter or digit); the name
// is at most 63 characters, letters, digits, '-', '_' and '.', beginning and
// ending with a letter or digit. The value follows the rules of the name
// but may be empty; it cannot hold '/', so every valid label can be
// selected. Errors wrap api.ErrInvalid and name the label.
func Validate(key, value string) error {
	if why := checkKey(key); why != "" {
		return fmt.Errorf("label %q=%q: %s: %w", key, value, why, api.ErrInvalid)
	}
	if why := checkValue(value); why != "" {
		return fmt.Errorf("label %q=%q: %s: %w", key, value, why, api.ErrInvalid)
	}
	return nil
}

// checkKey says what is wrong with a label key, "" if nothing.
func checkKey(k string) string {
	if k == "" {
		return "the key is empty"
	}
	prefix, name, hasPrefix := strings.Cut(k, "/")
	if !hasPrefix {
		name = k
	} else {
		if strings.Contains(name, "/") {
			return fmt.Sprintf("key %q has more than one '/' (a key is [prefix/]name)", k)
		}
		if prefix == "" {
			return fmt.Sprintf("key %q: the prefix before '/' is empty", k)
		}
		if why := checkPrefix(prefix); why != "" {
			return fmt.Sprintf("key %q: prefix %q %s", k, prefix, why)
		}
		if name == "" {
			return fmt.Sprintf("key %q: the name after '/' is empty", k)
		}
	}
	if why := checkName(name, MaxNameLen); why != "" {
		if hasPrefix {
			return fmt.Sprintf("key %q: name %q %s", k, name, why)
		}
		return fmt.Sprintf("key %q %s", k, why)
	}
	return ""
}

// checkValue says what is wrong with a label value, "" if nothing.
func checkValue(v string) string {
	if v == "" {
		return ""
	}
	if i := strings.IndexByte(v, '/'); i >= 0 && len(v) <= MaxValueLen {
		return fmt.Sprintf("value %q has '/' at %d: '/' is only allowed in keys, between a prefix and a name", v, i)
	}
	if why := checkName(v, MaxValueLen); why != "" {
		return fmt.Sprintf("value %q %s", v, why)
	}
	return ""
}

// checkName checks a key's name part or a value: 1 to max characters,
// alphanumeric at both ends, '-', '_' and '.' inside.
func checkName(s string, max int) string {
	if len(s) > max {
		return fmt.Sprintf("is %d characters, at most %d are allowed", len(s), max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) {
			continue
		}
		if c != '-' && c != '_' && c != '.' {
			return fmt.Sprintf("has %s at %d (letters, digits, '-', '_' and '.' are allowed)", describe(s, i), i)
		}
		if i == 0 || i == len(s)-1 {
			return fmt.Sprintf("must begin and end with a letter or digit, not %q", c)
		}
	}
	return ""
}

// checkPrefix checks a key's prefix: a DNS subdomain.
func checkPrefix(p string) string {
	if len(p) > MaxPrefixLen {
		return fmt.Sprintf("is %d characters, at most %d are allowed", len(p), MaxPrefixLen)
	}
	const rule = "(a DNS subdomain: lowercase letters, digits, '-' and '.', each dot-separated part beginning and ending with a letter or digit)"
	for part := range strings.SplitSeq(p, ".") {
		if part == "" {
			return "has an empty dot-separated part " + rule
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			switch {
			case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			case c == '-' && i > 0 && i < len(part)-1:
			case c == '-':
				return fmt.Sprintf("has part %q beginning or ending with '-' %s", part, rule)
			default:
				return fmt.Sprintf("has %s %s", describe(part, i), rule)
			}
		}
	}
	return ""
}

// describe names the character at s[i], decoding UTF-8 so that "é" is
// reported as such rather than as its first byte.
func describe(s string, i int) string {
	for _, r := range s[i:] {
		return fmt.Sprintf("%q", r)
	}
	return "nothing"
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
