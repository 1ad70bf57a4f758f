package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
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

// TestVMChangeLive: vm.change of a running VM's size and reservations is
// made live by its host (the sim resizes in place): the output says so, and
// the VM keeps its boot and restart count. A powered-off VM's change says
// nothing of live.
func TestVMChangeLive(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	web := l.get("/dc1/vm/web-01")
	boot := vmStatus(web).BootTime
	rt := l.agents["esx-01"].rt
	before, err := rt.Status(context.Background(), web.UID)
	if err != nil {
		t.Fatal(err)
	}
	out := l.ok("vm.change", "-c", "2", "-m", "2048", "-cpu.reservation", "1000", "web-01")
	if want := "Reconfigured VM /dc1/vm/web-01 live: cpu 2, memory 2048MB, cpu reservation 1000MHz\n"; out != want {
		t.Errorf("vm.change = %q, want %q", out, want)
	}
	l.eventually("esx-01 applied web-01's new size", func() bool {
		st, err := rt.Status(context.Background(), web.UID)
		return err == nil && st.SpecHash != before.SpecHash
	})
	st, _ := rt.Status(context.Background(), web.UID)
	if st.PowerState != api.PoweredOn || !st.BootTime.Equal(before.BootTime) || st.Restarts != 0 {
		t.Errorf("vm.change restarted web-01: %+v (boot was %v)", st, before.BootTime)
	}
	if got := vmStatus(l.get("/dc1/vm/web-01")).BootTime; !got.Equal(boot) {
		t.Errorf("web-01's boot time %v after vm.change, was %v", got, boot)
	}
	if out := l.ok("vm.change", "-m", "512", "db-01"); out != "Reconfigured VM /dc1/vm/db-01: cpu 1, memory 512MB\n" {
		t.Errorf("vm.change of a powered-off VM = %q", out)
	}
}

// TestApplyRunningVMSaysWhatHappens: a running VM's new memory is applied
// live; a new image would restart it, so it is refused (nothing changed)
// until --restart allows it, and the output says which happened.
func TestApplyRunningVMSaysWhatHappens(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	doc := func(mem, image string) string {
		return "apiVersion: podsphere.io/v1\nkind: VirtualMachine\nmetadata:\n  name: app\nspec:\n  pool: /dc1/host/c1/Resources\n  memoryMB: " + mem +
			"\n  containers:\n  - name: main\n    image: " + image + "\n"
	}
	if out := l.psc1(doc("256", "busybox"), "apply", "-f", "-"); out != "VirtualMachine app -> /dc1/vm/app created\n" {
		t.Fatalf("first apply = %q", out)
	}
	if out := l.psc1(doc("512", "busybox"), "apply", "-f", "-"); out != "VirtualMachine app -> /dc1/vm/app configured (live)\n" {
		t.Errorf("new memory = %q", out)
	}
	_, errOut, code := l.psc(doc("512", "busybox:1.36"), nil, "apply", "-f", "-")
	if code != api.ExitConflict || !strings.Contains(errOut, "--restart") {
		t.Errorf("new image without --restart: exit %d, %q", code, errOut)
	}
	if s := vmSpec(l.get("/dc1/vm/app")); s.Containers[0].Image != "busybox" || s.MemoryMB != 512 {
		t.Errorf("a refused apply changed the VM: %+v", s)
	}
	if out := l.psc1(doc("512", "busybox:1.36"), "apply", "--restart", "-f", "-"); out != "VirtualMachine app -> /dc1/vm/app configured (restarted)\n" {
		t.Errorf("new image with --restart = %q", out)
	}
}

// TestPoolDestroyChildren: govc's pool.destroy -children destroys only the
// child pools; their VMs move to the pool, which stays.
func TestPoolDestroyChildren(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	if out := l.ok("pool.destroy", "-children", "dev"); out != "Destroyed pool "+labDev+"/web\n" {
		t.Errorf("pool.destroy -children dev = %q", out)
	}
	if !l.exists(labDev) || l.exists(labDev+"/web") {
		t.Errorf("after -children: dev exists %v, dev/web exists %v; want dev kept, dev/web gone", l.exists(labDev), l.exists(labDev+"/web"))
	}
	if p := vmSpec(l.get("/dc1/vm/web-02")).Pool; p != labDev {
		t.Errorf("web-02 in %s, want moved to %s", p, labDev)
	}
}

// TestEventsBareNames: events resolves a bare host or pool name as other
// verbs do; a name nothing has is not found (not an empty list, exit 0).
func TestEventsBareNames(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	if out := l.ok("events", "esx-03"); !strings.Contains(out, "esx-03") {
		t.Errorf("events esx-03 shows nothing of the host:\n%s", out)
	}
	l.ok("pool.change", "-cpu.reservation", "5000", "dev")
	if out := l.ok("events", "dev"); !strings.Contains(out, "dev") {
		t.Errorf("events dev shows nothing of the pool:\n%s", out)
	}
	if out := l.ok("events", "web-01"); !strings.Contains(out, "web-01") {
		t.Errorf("events web-01:\n%s", out)
	}
	if _, errOut, code := l.psc("", nil, "events", "nothing-here"); code != api.ExitNotFound || !strings.Contains(errOut, "nothing-here") {
		t.Errorf("events of an unknown name: exit %d, %q", code, errOut)
	}
}

// TestVMIPTimeoutExitsZero: as govc, vm.ip of a VM that has no address
// within -wait prints no address and exits 0 (stderr says why).
func TestVMIPTimeoutExitsZero(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	out, errOut, code := l.psc("", nil, "vm.ip", "-wait", "100ms", "db-01")
	if code != 0 || out != "" || !strings.Contains(errOut, "no IP address") {
		t.Errorf("vm.ip of a powered-off VM: exit %d, out %q, err %q; want exit 0, no output", code, out, errOut)
	}
	if _, _, code := l.psc("", nil, "vm.ip", "-wait", "100ms", "nope"); code != api.ExitNotFound {
		t.Errorf("vm.ip of a missing VM: exit %d, want %d", code, api.ExitNotFound)
	}
}

// TestPowerOnNamesDRSHost: after DRS places a VM on another host than the
// one it last ran on, vm.power -on names the new host, not the stale one.
func TestPowerOnNamesDRSHost(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	l.ok("vm.power", "-on", "db-01")
	l.eventually("db-01 running", func() bool { return vmStatus(l.get("/dc1/vm/db-01")).PowerState == api.PoweredOn })
	first := vmStatus(l.get("/dc1/vm/db-01")).Host
	l.ok("vm.power", "-off", "db-01")
	l.eventually("db-01 off", func() bool { return vmStatus(l.get("/dc1/vm/db-01")).PowerState == api.PoweredOff })
	// A mandatory rule keeps it off that host now.
	l.ok("cluster.rule.create", "-name", "away", "-enable", "-mandatory", "-vm-host", "-host", api.Base(first), "-affine=false", "db-01")
	other := "esx-01"
	if api.Base(first) == other {
		other = "esx-02"
	}
	out := l.ok("vm.power", "-on", "db-01")
	if want := "Powering on /dc1/vm/db-01... OK (host " + other + ")\n"; out != want {
		t.Errorf("vm.power -on after a re-placement = %q, want %q (it last ran on %s)", out, want, api.Base(first))
	}
}

// TestShouldRuleDoesNotBlockPowerOn: an anti-affinity rule without
// -mandatory is a "should": with a member on every connected host, the VM
// is powered on anyway; the same rule made mandatory refuses it.
func TestShouldRuleDoesNotBlockPowerOn(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	l.ok("cluster.rule.create", "-name", "must-apart", "-enable", "-mandatory", "-anti-affinity", "web-01", "web-02", "db-01")
	if _, errOut, code := l.psc("", nil, "vm.power", "-on", "db-01"); code != api.ExitInsufficient || !strings.Contains(errOut, "must-apart") {
		t.Errorf("power-on against a mandatory rule: exit %d, %q", code, errOut)
	}
	l.ok("cluster.rule.remove", "-name", "must-apart")
	l.ok("cluster.rule.create", "-name", "apart", "-enable", "-anti-affinity", "web-01", "web-02", "db-01")
	if out := l.ok("vm.power", "-on", "db-01"); !strings.HasPrefix(out, "Powering on /dc1/vm/db-01... OK") {
		t.Errorf("power-on with only a should rule against it = %q", out)
	}
}

// TestRootPoolFigures: ls -l and pool.info agree on the root pool (the
// cluster's capacity), and pool.info CLUSTER shows the root pool as govc.
func TestRootPoolFigures(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	byCluster := l.ok("pool.info", "c1")
	if byRoot := l.ok("pool.info", "Resources"); byCluster != byRoot {
		t.Errorf("pool.info c1:\n%s\npool.info Resources:\n%s", byCluster, byRoot)
	}
	pi, err := l.api.Pool(l.ctx(), labRoot)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("CPU %dMHz/%dMHz, Mem %dMB/%dMB", pi.CPU.Reservation, pi.CPU.Limit, pi.Mem.Reservation, pi.Mem.Limit)
	if ls := l.ok("ls", "-l", "host/c1"); !strings.Contains(ls, labRoot+"   ResourcePool   "+want) {
		t.Errorf("ls -l c1 does not show the root pool as pool.info does (%s):\n%s", want, ls)
	}
	if _, _, code := l.psc("", nil, "pool.info", "nope"); code != api.ExitNotFound {
		t.Errorf("pool.info of neither pool nor cluster: exit %d", code)
	}
}
