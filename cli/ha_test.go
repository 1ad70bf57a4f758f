package cli

import (
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

func TestHAPlanVerb(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01", "esx-02")
	if _, errOut, code := l.psc("", nil, "ha.plan", "-fail", "esx-02"); code != api.ExitConflict || !strings.Contains(errOut, "HA is not enabled on cluster") {
		t.Errorf("without HA: exit %d: %s", code, errOut)
	}
	l.ok("cluster.change", "-ha-enabled", "c1")
	// Both on esx-02 (a pinned VM would not do: HA never restarts it elsewhere).
	l.ok("host.maintenance.enter", "esx-01")
	for _, vm := range []struct{ name, prio string }{{"db", "high"}, {"web", ""}} {
		o := api.New(api.KindVirtualMachine, "/dc1/vm/"+vm.name, api.VMSpec{Pool: labRoot,
			NumCPU: 1, MemoryMB: 64, PowerState: api.PoweredOn, HA: api.HAPolicy{RestartPriority: vm.prio},
			CPU: defaultPoolAlloc(), Mem: defaultPoolAlloc(), Containers: []api.Container{{Name: "main", Image: "busybox"}}})
		l.create(o)
	}
	l.ok("host.maintenance.exit", "esx-01")
	out := l.ok("ha.plan", "-fail", "esx-02")
	for _, want := range []string{"If esx-02 failed now, HA would restart 2 VM(s):", "1       /dc1/vm/db    high       esx-02   esx-01", "2       /dc1/vm/web   medium     esx-02   esx-01"} {
		if !strings.Contains(out, want) {
			t.Errorf("ha.plan output lacks %q:\n%s", want, out)
		}
	}
	if _, errOut, code := l.psc("", nil, "ha.plan"); code != api.ExitUsage || !strings.Contains(errOut, "-fail HOST") {
		t.Errorf("without -fail: exit %d: %s", code, errOut)
	}
}
