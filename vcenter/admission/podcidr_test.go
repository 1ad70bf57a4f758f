package admission_test

import (
	"fmt"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/admission"
)

// TestPodCIDR: VM addresses must be unique across the inventory, so a
// cluster's pod CIDR may not overlap another cluster's; without one, the
// first free /16 of 10.244.0.0 to 10.255.0.0 is picked
// (TestClustersGetDistinctPodCIDRs over snapshots).
func TestPodCIDR(t *testing.T) {
	const c1, c2, c3, me = "/dc1/host/c1", "/dc1/host/c2", "/dc1/host/c3", "/dc1/host/new"
	// all holds every /16 PodCIDR may pick.
	all := map[string]string{}
	for b := 244; b <= 255; b++ {
		all[fmt.Sprintf("/dc1/host/k%d", b)] = fmt.Sprintf("10.%d.0.0/16", b)
	}
	exhausted := "no free pod CIDR between 10.244.0.0/16 and 10.255.0.0/16 for " + me + ": give spec.podCIDR: conflict"
	tests := []struct {
		name   string
		others map[string]string
		want   string // wanted CIDR, "" to pick
		got    string
		err    string
		is     error
	}{
		{"the first cluster gets 10.244", nil, "", "10.244.0.0/16", "", nil},
		{"the second 10.245", map[string]string{c1: "10.244.0.0/16"}, "", "10.245.0.0/16", "", nil},
		{"a hole is filled first", map[string]string{c1: "10.244.0.0/16", c3: "10.246.0.0/16"}, "", "10.245.0.0/16", "", nil},
		{"a smaller block takes its /16", map[string]string{c1: "10.244.128.0/17"}, "", "10.245.0.0/16", "", nil},
		{"a larger block takes every /16 in it", map[string]string{c1: "10.244.0.0/15", c2: "10.246.0.0/16"}, "", "10.247.0.0/16", "", nil},
		{"blocks elsewhere do not matter", map[string]string{c1: "10.0.0.0/16", c2: "192.168.0.0/16"}, "", "10.244.0.0/16", "", nil},
		{"clusters without a CIDR take nothing", map[string]string{c1: "", c2: "junk"}, "", "10.244.0.0/16", "", nil},
		{"the last /16", func() map[string]string {
			m := map[string]string{}
			for p, c := range all {
				if c != "10.255.0.0/16" {
					m[p] = c
				}
			}
			return m
		}(), "", "10.255.0.0/16", "", nil},
		{"all twelve taken", all, "", "", exhausted, api.ErrConflict},
		{"one block over the whole range", map[string]string{c1: "10.240.0.0/12"}, "", "", exhausted, api.ErrConflict},
		{"10/8 takes it all", map[string]string{c1: "10.0.0.0/8"}, "", "", exhausted, api.ErrConflict},

		{"a wanted free CIDR", map[string]string{c1: "10.244.0.0/16"}, "10.200.0.0/16", "10.200.0.0/16", "", nil},
		{"a wanted CIDR outside the picked range", all, "172.16.0.0/12", "172.16.0.0/12", "", nil},
		{"adjacent blocks do not overlap", map[string]string{c1: "10.244.0.0/16"}, "10.245.0.0/16", "10.245.0.0/16", "", nil},
		{"inside another cluster's", map[string]string{c1: "10.244.0.0/16"}, "10.244.128.0/17", "",
			"spec.podCIDR 10.244.128.0/17 overlaps the pod CIDR of cluster " + c1 + ": VM addresses must be unique: conflict", api.ErrConflict},
		{"holding another cluster's", map[string]string{c1: "10.244.0.0/16", c2: "10.245.0.0/16"}, "10.244.0.0/15", "",
			"spec.podCIDR 10.244.0.0/15 overlaps the pod CIDR of cluster " + c1 + ": VM addresses must be unique: conflict", api.ErrConflict},
		{"the same as another cluster's", map[string]string{c1: "10.244.0.0/16", c2: "10.245.0.0/16"}, "10.245.0.0/16", "",
			"spec.podCIDR 10.245.0.0/16 overlaps the pod CIDR of cluster " + c2 + ": VM addresses must be unique: conflict", api.ErrConflict},
		{"overlapping several names the first by path", map[string]string{c3: "10.246.0.0/16", c2: "10.245.0.0/16"}, "10.0.0.0/8", "",
			"spec.podCIDR 10.0.0.0/8 overlaps the pod CIDR of cluster " + c2 + ": VM addresses must be unique: conflict", api.ErrConflict},
		{"not a CIDR", nil, "10.1.2.3", "", `spec.podCIDR "10.1.2.3" is not a CIDR: invalid`, api.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := admission.PodCIDR(tt.others, me, tt.want)
			checkErr(t, "PodCIDR", err, tt.err, tt.is)
			if got != tt.got {
				t.Fatalf("PodCIDR = %q, want %q", got, tt.got)
			}
		})
	}
}
