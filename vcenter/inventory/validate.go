package inventory

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/pools"
)

func decodeStrict(raw json.RawMessage, v any, what string) error {
	return api.DecodeStrict(raw, v, what)
}

func validLabel(k, v string) error {
	if k == "" || len(k) > 63 || len(v) > 63 {
		return fmt.Errorf("label %q=%q: keys are 1-63 characters, values up to 63: %w", k, v, api.ErrInvalid)
	}
	for _, s := range []string{k, v} {
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./", c)) {
				return fmt.Errorf("label %q=%q: character %q is not allowed: %w", k, v, c, api.ErrInvalid)
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// defaultAlloc is govc's default allocation: no reservation, no limit, expandable, normal shares.
func defaultAlloc() api.Allocation { return api.Allocation(pools.DefaultAllocation()) }
