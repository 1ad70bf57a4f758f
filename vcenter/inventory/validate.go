package inventory

import (
	"encoding/json"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/labels"
	"github.com/podsphere/podsphere/pools"
)

func decodeStrict(raw json.RawMessage, v any, what string) error {
	return api.DecodeStrict(raw, v, what)
}

func validLabel(k, v string) error { return labels.Validate(k, v) }

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
