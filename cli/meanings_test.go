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

// TestApplyKeepsOmittedFields: a minimal Cluster manifest changes what it
// gives and leaves the DRS rules alone (kubectl apply's meaning); an explicit
// empty list, or --prune, removes them.
func TestApplyKeepsOmittedFields(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	l.ok("cluster.rule.create", "-name", "apart", "-enable", "-anti-affinity", "web-01", "web-02")
	minimal := "apiVersion: podsphere.io/v1\nkind: Cluster\nmetadata:\n  path: /dc1/host/c1\nspec:\n  drs:\n    enabled: true\n    mode: manual\n"
	if out := l.psc1(minimal, "apply", "-f", "-"); out != "Cluster /dc1/host/c1 configured\n" {
		t.Errorf("apply of a minimal Cluster = %q", out)
	}
	s := l.clusterSpec()
	if s.DRS.Mode != "manual" || len(s.Rules) != 1 || s.Rules[0].Name != "apart" {
		t.Errorf("after a minimal Cluster manifest: drs %+v, rules %+v (want the rule kept)", s.DRS, s.Rules)
	}
	if out := l.psc1(minimal, "apply", "-f", "-"); out != "Cluster /dc1/host/c1 unchanged\n" {
		t.Errorf("re-apply = %q", out)
	}
	l.psc1(minimal+"  rules: []\n", "apply", "-f", "-")
	if s := l.clusterSpec(); len(s.Rules) != 0 {
		t.Errorf("rules: [] kept the rules: %+v", s.Rules)
	}
	l.ok("cluster.rule.create", "-name", "apart", "-enable", "-anti-affinity", "web-01", "web-02")
	l.psc1(minimal, "apply", "--prune", "-f", "-")
	if s := l.clusterSpec(); len(s.Rules) != 0 {
		t.Errorf("apply --prune kept the rules: %+v", s.Rules)
	}
}

// psc1 runs psc with stdin and fails the test on a non-zero exit.
func (l *testLab) psc1(stdin string, args ...string) string {
	l.t.Helper()
	out, errOut, code := l.psc(stdin, nil, args...)
	if code != 0 {
		l.t.Fatalf("psc %q: exit %d: %s", args, code, errOut)
	}
	return out
}
