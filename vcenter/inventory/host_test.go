package inventory

import (
	"fmt"
	"testing"

	"github.com/podsphere/podsphere/api"
)

// TestOnHost: the filter of a host's watch matches a VM placed on the host
// or reported by it, and nothing else, also when many filters look at many
// VM versions in turn (vmHosts remembers the last few it decoded).
func TestOnHost(t *testing.T) {
	hosts := []string{"/dc1/host/c1/esx-1", "/dc1/host/c1/esx-2", "/dc1/host/c1/esx-3"}
	var vms []*api.Object
	for i := range 40 {
		o := api.New(api.KindVirtualMachine, fmt.Sprintf("/dc1/vm/vm%d", i), api.VMSpec{Host: hosts[i%3]})
		if i%4 == 0 {
			o.SetStatus(api.VMStatus{Host: hosts[(i+1)%3]}) // moved: its old host still reports it
		}
		vms = append(vms, o)
	}
	vms = append(vms, api.New(api.KindHost, hosts[0], nil))
	filters := make([]func(*api.Object) bool, len(hosts))
	for i, h := range hosts {
		filters[i] = OnHost(h)
	}
	for round := range 2 {
		for i, o := range vms {
			for j, f := range filters {
				want := o.Kind == api.KindVirtualMachine && (i%3 == j || i%4 == 0 && (i+1)%3 == j)
				if got := f(o); got != want {
					t.Fatalf("round %d: OnHost(%s)(%s) = %v, want %v", round, hosts[j], o.Path, got, want)
				}
			}
		}
	}
}
