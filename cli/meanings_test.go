package cli

import (
	"slices"
	"testing"

	"github.com/podsphere/podsphere/api"
)

// TestPowerCycleIsNoRestart: an admin's power-off then power-on is a new
// boot, not a restart: the restart count stays 0 and no VmRestartedEvent
// warns about it.
func TestPowerCycleIsNoRestart(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	l.ok("vm.power", "-off", "web-01")
	l.eventually("web-01 reported off", func() bool { return vmStatus(l.get("/dc1/vm/web-01")).PowerState == api.PoweredOff })
	l.ok("vm.power", "-on", "web-01")
	l.eventually("web-01 reported on", func() bool { return vmStatus(l.get("/dc1/vm/web-01")).PowerState == api.PoweredOn })
	if st := vmStatus(l.get("/dc1/vm/web-01")); st.Restarts != 0 {
		t.Errorf("restarts after a power cycle = %d, want 0", st.Restarts)
	}
	if got := eventTypes(l.events("/dc1/vm/web-01")); slices.Contains(got, "VmRestartedEvent") {
		t.Errorf("a power cycle raised a VmRestartedEvent: %q", got)
	}
}
