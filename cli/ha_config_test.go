package cli

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

func (l *testLab) clusterSpec() api.ClusterSpec {
	l.t.Helper()
	return specOf[api.ClusterSpec](l.get(labCluster))
}

// offVM creates a powered-off VM in the root pool (no host needed).
func (l *testLab) offVM(name string) {
	l.t.Helper()
	l.create(api.New(api.KindVirtualMachine, "/dc1/vm/"+name, api.VMSpec{Pool: labRoot, NumCPU: 1, MemoryMB: 64,
		CPU: vmAllocation(), Mem: vmAllocation(), Containers: []api.Container{{Name: "main", Image: "busybox"}}}))
}

// fails runs psc, wanting exit code and stderr naming want.
func (l *testLab) fails(code int, want string, args ...string) {
	l.t.Helper()
	_, errOut, got := l.psc("", nil, args...)
	if got != code || !strings.Contains(errOut, want) {
		l.t.Errorf("psc %q: exit %d, stderr %q; want exit %d naming %q", args, got, errOut, code, want)
	}
}

func TestClusterChangeHASettings(t *testing.T) {
	t.Parallel()
	l := labBase(t)
	l.ok("cluster.change", "-ha-enabled", "-ha-admission-control-enabled", "-ha-host-failures", "2", "-ha-admission-policy", "slot",
		"-ha-restart-priority", "high", "-ha-isolation-response", "shutdown", "-ha-isolation-address", "10.0.0.1,10.0.0.2",
		"-ha-shutdown-timeout", "120", "-ha-ready-condition", "guestHbStatusGreen", "-ha-additional-delay", "15", "-ha-ready-timeout", "90", "c1")
	want := api.HAConfig{Enabled: true, AdmissionControlEnabled: true, HostFailuresTolerated: 2, AdmissionPolicy: "slot",
		DefaultRestartPriority: "high", IsolationResponse: "shutdown", IsolationAddresses: []string{"10.0.0.1", "10.0.0.2"},
		ShutdownTimeoutSeconds: 120, ReadyCondition: "guestHbStatusGreen", PostReadyDelaySeconds: 15, ReadyTimeoutSeconds: 90}
	if got := l.clusterSpec().HA; !haEqual(got, want) {
		t.Fatalf("HA = %+v\nwant %+v", got, want)
	}
	// Unset flags stay; set ones change, "" clears the addresses.
	l.ok("cluster.change", "-ha-isolation-response", "powerOff", "-ha-isolation-address", "", "c1")
	want.IsolationResponse, want.IsolationAddresses = "powerOff", nil
	if got := l.clusterSpec().HA; !haEqual(got, want) {
		t.Errorf("after a second change HA = %+v\nwant %+v", got, want)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-ha-restart-priority", "urgent"}, `-ha-restart-priority "urgent": want one of disabled, lowest, low, medium, high, highest`},
		{[]string{"-ha-isolation-response", "none"}, `-ha-isolation-response "none": want one of disabled, powerOff, shutdown`},
		{[]string{"-ha-ready-condition", "ready"}, `-ha-ready-condition "ready": want one of none, poweredOn, guestHbStatusGreen, appHbStatusGreen`},
		{[]string{"-ha-admission-policy", "slots"}, `-ha-admission-policy "slots": want one of percentage, slot`},
		{[]string{"-ha-isolation-address", "gateway"}, `-ha-isolation-address "gateway" is not an IP address`},
		{[]string{"-ha-additional-delay", "-5"}, "-ha-additional-delay -5: want seconds"},
		{[]string{"-ha-ready-timeout", "-1"}, "-ha-ready-timeout -1: want seconds"},
		{[]string{"-ha-shutdown-timeout", "-1"}, "-ha-shutdown-timeout -1: want seconds"},
		{nil, "cluster.change: nothing to change"},
	} {
		l.fails(api.ExitUsage, c.want, append(append([]string{"cluster.change"}, c.args...), "c1")...)
	}
	if got := l.clusterSpec().HA; !haEqual(got, want) {
		t.Errorf("refused changes changed HA to %+v", got)
	}
	// vcenter refuses bad values from any client, naming the allowed ones.
	for _, c := range []struct {
		edit func(*api.HAConfig)
		want string
	}{
		{func(h *api.HAConfig) { h.IsolationResponse = "reboot" }, `spec.ha.isolationResponse "reboot": want one of disabled, powerOff, shutdown`},
		{func(h *api.HAConfig) { h.ReadyCondition = "up" }, `spec.ha.readyCondition "up": want one of none, poweredOn, guestHbStatusGreen, appHbStatusGreen`},
		{func(h *api.HAConfig) { h.DefaultRestartPriority = "top" }, `spec.ha.defaultRestartPriority "top": want one of disabled`},
		{func(h *api.HAConfig) { h.IsolationAddresses = []string{"10.0.0.1", "10.0.0.1"} }, "spec.ha.isolationAddresses[1] 10.0.0.1 is listed twice"},
		{func(h *api.HAConfig) { h.PostReadyDelaySeconds = -1 }, "spec.ha.postReadyDelaySeconds -1 is negative"},
	} {
		o := l.get(labCluster)
		s := specOf[api.ClusterSpec](o)
		c.edit(&s.HA)
		o.SetSpec(s)
		if _, err := l.api.Update(l.ctx(), o); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("update: %v, want ErrInvalid naming %q", err, c.want)
		}
	}
}

func haEqual(a, b api.HAConfig) bool {
	as, bs := a.IsolationAddresses, b.IsolationAddresses
	a.IsolationAddresses, b.IsolationAddresses = nil, nil
	return reflect.DeepEqual(a, b) && slices.Equal(as, bs)
}

func TestClusterGroupsAndDependencyRules(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01")
	for _, vm := range []string{"db-01", "db-02", "app-01", "web-01"} {
		l.offVM(vm)
	}
	if out := l.ok("cluster.group.create", "-name", "db", "-vm", "db-01", "db-02"); out != "Created vm group db in cluster "+labCluster+"\n" {
		t.Errorf("cluster.group.create = %q", out)
	}
	l.ok("cluster.group.create", "-name", "app", "-vm", "app-01")
	l.ok("cluster.group.create", "-name", "web", "-vm", "web-01")
	l.ok("cluster.group.create", "-name", "rack", "-host", "esx-01")
	l.fails(api.ExitConflict, `already has a group named "db"`, "cluster.group.create", "-name", "db", "-vm", "web-01")
	l.fails(api.ExitUsage, "give exactly one of -vm, -host", "cluster.group.create", "-name", "x", "db-01")
	l.fails(api.ExitUsage, "-name is required", "cluster.group.create", "-vm", "db-01")
	l.fails(api.ExitNotFound, "", "cluster.group.create", "-name", "x", "-vm", "nosuch-01")
	l.fails(api.ExitNotFound, "", "cluster.group.create", "-name", "x", "-host", "esx-09")
	if out := l.ok("cluster.group.ls", "-name", "db"); out != "db-01\ndb-02\n" {
		t.Errorf("cluster.group.ls -name db = %q", out)
	}
	out := l.ok("cluster.group.ls")
	for _, want := range []string{"db     vm     db-01,db-02", "rack   host   esx-01"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster.group.ls lacks %q:\n%s", want, out)
		}
	}

	// app starts after db, web after app.
	if out := l.ok("cluster.rule.create", "-name", "app-after-db", "-depends", "app", "db"); out != "Created rule app-after-db in cluster "+labCluster+"\n" {
		t.Errorf("cluster.rule.create -depends = %q", out)
	}
	l.ok("cluster.rule.create", "-name", "web-after-app", "-depends", "web", "app")
	cs := l.clusterSpec()
	if r := cs.Rules[0]; r.Kind != "depends" || !r.Enabled || r.VMGroup != "app" || r.DependsOnVMGroup != "db" {
		t.Errorf("rule = %+v", r)
	}
	if out := l.ok("cluster.rule.ls"); !strings.Contains(out, "app-after-db    depends   true      false       group app after group db") {
		t.Errorf("cluster.rule.ls:\n%s", out)
	}
	l.fails(api.ExitUsage, "dependency rules form a cycle: app -> db -> app", "cluster.rule.create", "-name", "loop", "-depends", "db", "app")
	l.fails(api.ExitUsage, "dependency rules form a cycle", "cluster.rule.create", "-name", "loop", "-depends", "db", "web")
	l.fails(api.ExitNotFound, `no VM group "cache"`, "cluster.rule.create", "-name", "x", "-depends", "app", "cache")
	l.fails(api.ExitNotFound, `no VM group "rack"`, "cluster.rule.create", "-name", "x", "-depends", "app", "rack")
	l.fails(api.ExitUsage, "-depends takes two VM groups", "cluster.rule.create", "-name", "x", "-depends", "app")

	// Priority inversions: from an override, the cluster default, a group change.
	l.fails(api.ExitUsage, `dependency rule "web-after-app": web-01 (priority high, group web) would depend on app-01 (priority medium, group app)`,
		"cluster.override.change", "-vm", "web-01", "-ha-restart-priority", "high")
	if p := specOf[api.VMSpec](l.get("/dc1/vm/web-01")).HA.RestartPriority; p != "" {
		t.Errorf("refused override left priority %q", p)
	}
	l.ok("cluster.override.change", "-vm", "db-01", "-ha-restart-priority", "highest")
	l.ok("cluster.override.change", "-vm", "web-01", "-ha-restart-priority", "low")
	l.fails(api.ExitUsage, `spec.ha.defaultRestartPriority lowest: dependency rule "web-after-app": web-01 (priority low, group web) would depend on app-01 (priority lowest, group app), which HA starts after it`,
		"cluster.change", "-ha-restart-priority", "lowest", "c1")
	l.ok("cluster.override.change", "-vm", "db-02", "-ha-restart-priority", "high")
	l.ok("cluster.change", "-ha-restart-priority", "low", "c1")
	l.fails(api.ExitUsage, `dependency rule "web-after-app": db-01 (priority highest, group web) would depend on app-01 (priority low, group app)`, "cluster.group.change", "-name", "web", "web-01", "db-01")
	if vms := l.clusterSpec().Groups[2].VMs; !slices.Equal(vms, []string{"web-01"}) {
		t.Errorf("refused group change left web = %v", vms)
	}

	// A group a rule uses stays until the rule goes.
	l.fails(api.ExitConflict, "group app of cluster /dc1/host/c1 is used by rule app-after-db", "cluster.group.remove", "-name", "app")
	if out := l.ok("cluster.rule.remove", "-name", "app-after-db"); out != "Removed rule app-after-db from cluster "+labCluster+"\n" {
		t.Errorf("cluster.rule.remove = %q", out)
	}
	l.fails(api.ExitConflict, "used by rule web-after-app", "cluster.group.remove", "-name", "app")
	l.ok("cluster.rule.remove", "-name", "web-after-app")
	l.ok("cluster.group.remove", "-name", "app")
	l.fails(api.ExitNotFound, `no rule named "web-after-app"`, "cluster.rule.remove", "-name", "web-after-app")
	l.fails(api.ExitNotFound, `no group named "app"`, "cluster.group.remove", "-name", "app")
	if cs := l.clusterSpec(); len(cs.Rules) != 0 || len(cs.Groups) != 3 {
		t.Errorf("after removals: rules %+v groups %+v", cs.Rules, cs.Groups)
	}
	var groups []api.ClusterGroup
	if err := json.Unmarshal([]byte(l.ok("cluster.group.ls", "-json")), &groups); err != nil || len(groups) != 3 || groups[0].Name != "db" {
		t.Errorf("cluster.group.ls -json = %+v (%v)", groups, err)
	}
}

func TestClusterOverrides(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01")
	l.offVM("db-01")
	l.offVM("web-01")
	if out := l.ok("cluster.override.change", "-vm", "db-01", "-ha-restart-priority", "high", "-ha-isolation-response", "shutdown"); out != "Changed HA override of /dc1/vm/db-01\n" {
		t.Errorf("cluster.override.change = %q", out)
	}
	l.ok("cluster.override.change", "-vm", "web-01", "-ha-isolation-response", "none")
	l.ok("cluster.override.change", "-vm", "db-01", "-ha-isolation-response", "powerOff") // the priority stays
	if h := specOf[api.VMSpec](l.get("/dc1/vm/db-01")).HA; h != (api.HAPolicy{RestartPriority: "high", IsolationResponse: "powerOff"}) {
		t.Errorf("db-01 HA = %+v", h)
	}
	out := l.ok("cluster.override.info")
	for _, want := range []string{"/dc1/vm/db-01    VirtualMachine   high               powerOff", "/dc1/vm/web-01   VirtualMachine   -                  none"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster.override.info lacks %q:\n%s", want, out)
		}
	}
	var rows []Override
	if err := json.Unmarshal([]byte(l.ok("cluster.override.info", "-json")), &rows); err != nil || len(rows) != 2 || rows[0].RestartPriority != "high" {
		t.Errorf("cluster.override.info -json = %+v (%v)", rows, err)
	}
	if out := l.ok("cluster.override.remove", "-vm", "web-01"); out != "Removed HA override of /dc1/vm/web-01\n" {
		t.Errorf("cluster.override.remove = %q", out)
	}
	if h := specOf[api.VMSpec](l.get("/dc1/vm/web-01")).HA; h != (api.HAPolicy{}) {
		t.Errorf("web-01 HA after remove = %+v", h)
	}
	l.fails(api.ExitUsage, `-ha-restart-priority "urgent": want one of disabled, lowest, low, medium, high, highest`, "cluster.override.change", "-vm", "db-01", "-ha-restart-priority", "urgent")
	l.fails(api.ExitUsage, `-ha-isolation-response "disabled": want one of none, powerOff, shutdown`, "cluster.override.change", "-vm", "db-01", "-ha-isolation-response", "disabled")
	l.fails(api.ExitUsage, "give exactly one of -vm, -rs, -deployment", "cluster.override.change", "-ha-restart-priority", "low")
	l.fails(api.ExitUsage, "nothing to change", "cluster.override.change", "-vm", "db-01")
	l.fails(api.ExitNotFound, "", "cluster.override.change", "-vm", "nosuch", "-ha-restart-priority", "low")
}

// waitBarrier powers on a fresh VM on esx-01 and waits until the host
// reports it running: by then the host has acted on every earlier change
// of its VMs' specs.
func (l *testLab) waitBarrier(name string) {
	l.t.Helper()
	l.create(api.New(api.KindVirtualMachine, "/dc1/vm/"+name, api.VMSpec{Pool: labRoot, Host: labCluster + "/esx-01", Pinned: true,
		NumCPU: 1, MemoryMB: 64, CPU: vmAllocation(), Mem: vmAllocation(), PowerState: api.PoweredOn,
		Containers: []api.Container{{Name: "main", Image: "busybox"}}}))
	l.eventually(name+" running", func() bool { return vmStatus(l.get("/dc1/vm/"+name)).PowerState == api.PoweredOn })
}

func TestOverrideDoesNotRestartVMs(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01")
	l.create(api.New(api.KindVirtualMachine, "/dc1/vm/db-01", api.VMSpec{Pool: labRoot, Host: labCluster + "/esx-01", Pinned: true,
		NumCPU: 1, MemoryMB: 64, CPU: vmAllocation(), Mem: vmAllocation(), PowerState: api.PoweredOn,
		Containers: []api.Container{{Name: "main", Image: "busybox"}}}))
	l.eventually("db-01 running", func() bool { return !vmStatus(l.get("/dc1/vm/db-01")).BootTime.IsZero() })
	boot := vmStatus(l.get("/dc1/vm/db-01")).BootTime
	l.ok("cluster.override.change", "-vm", "db-01", "-ha-restart-priority", "highest", "-ha-isolation-response", "shutdown")
	l.ok("rs.create", "-replicas", "2", "-m", "64", "web")
	const rs = "/dc1/replicaset/web"
	l.eventually("2 members running", func() bool { st := l.rsStatus(rs); return st.Running == 2 })
	boots := map[string]string{}
	for _, m := range l.members(rs) {
		boots[m.Path] = vmStatus(m).BootTime.String()
	}
	if out := l.ok("cluster.override.change", "-rs", "web", "-ha-restart-priority", "low"); out != "Changed HA override of "+rs+"\n" {
		t.Errorf("override -rs = %q", out)
	}
	l.eventually("members take the set's priority", func() bool {
		for _, m := range l.members(rs) {
			if specOf[api.VMSpec](m).HA.RestartPriority != "low" {
				return false
			}
		}
		return true
	})
	member := l.members(rs)[0].Path
	l.fails(api.ExitConflict, "is a member of replica set "+rs, "cluster.override.change", "-vm", member, "-ha-restart-priority", "high")
	// Even written directly, vcenter keeps a member on its set's policy.
	o := l.get(member)
	s := specOf[api.VMSpec](o)
	s.HA.RestartPriority = "high"
	o.SetSpec(s)
	if _, err := l.api.Update(l.ctx(), o); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "its HA settings follow the set's") {
		t.Errorf("direct member override: %v", err)
	}

	l.waitBarrier("barrier-01")
	if st := vmStatus(l.get("/dc1/vm/db-01")); !st.BootTime.Equal(boot) || st.Restarts != 0 {
		t.Errorf("db-01 restarted by an HA override: boot %v -> %v, restarts %d", boot, st.BootTime, st.Restarts)
	}
	members := l.members(rs)
	if len(members) != 2 {
		t.Errorf("%d members after the override", len(members))
	}
	for _, m := range members {
		if b, ok := boots[m.Path]; !ok || b != vmStatus(m).BootTime.String() {
			t.Errorf("member %s replaced or restarted by an HA override (boot %s, before %q)", m.Path, vmStatus(m).BootTime, b)
		}
	}
	var evs []string
	for _, e := range l.events(rs) {
		evs = append(evs, e.Type+" "+e.User+" "+e.Message)
	}
	if !slices.ContainsFunc(evs, func(e string) bool {
		return strings.HasPrefix(e, "ReplicaSetHAReconfiguredEvent controller:replicaset HA settings (restart priority low")
	}) {
		t.Errorf("no event for the members' HA change: %q", evs)
	}
}

func TestDeploymentOverrideNoRollout(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01")
	l.ok("deployment.create", "-replicas", "2", "-m", "64", "web")
	const d = "/dc1/deployment/web"
	var rs string
	l.eventually("a set with 2 members running", func() bool {
		s := l.ownedSets(d)
		if len(s) != 1 {
			return false
		}
		rs = s[0].Path
		return l.rsStatus(rs).Running == 2
	})
	names := map[string]bool{}
	for _, m := range l.members(rs) {
		names[m.Path] = true
	}
	l.ok("cluster.override.change", "-deployment", "web", "-ha-restart-priority", "lowest", "-ha-isolation-response", "powerOff")
	if h := specOf[api.DeploymentSpec](l.get(d)).HA; h != (api.HAPolicy{RestartPriority: "lowest", IsolationResponse: "powerOff"}) {
		t.Errorf("deployment HA = %+v", h)
	}
	l.eventually("VMs take the Deployment's policy", func() bool {
		ms := l.members(rs)
		for _, m := range ms {
			if specOf[api.VMSpec](m).HA.RestartPriority != "lowest" {
				return false
			}
		}
		return len(ms) > 0
	})
	l.fails(api.ExitConflict, "belongs to Deployment "+d, "cluster.override.change", "-rs", api.Base(rs), "-ha-restart-priority", "high")
	if s := l.ownedSets(d); len(s) != 1 || s[0].Path != rs {
		t.Errorf("the override rolled out: sets %d", len(s))
	}
	for _, m := range l.members(rs) {
		if !names[m.Path] {
			t.Errorf("new member %s after an HA override", m.Path)
		}
	}
	out := l.ok("cluster.override.info")
	if !strings.Contains(out, d+"   Deployment   lowest             powerOff") || strings.Contains(out, "/dc1/vm/") {
		t.Errorf("cluster.override.info lists the Deployment once, not its VMs:\n%s", out)
	}
}

// ownedSets lists the replica sets owner owns.
func (l *testLab) ownedSets(owner string) []*api.Object {
	l.t.Helper()
	var out []*api.Object
	list, err := l.api.List(l.ctx(), client.ListOptions{Kind: api.KindReplicaSet})
	if err != nil {
		l.t.Fatal(err)
	}
	for _, o := range list.Items {
		if o.Owner == owner {
			out = append(out, o)
		}
	}
	return out
}

func TestClusterInfoFailoverCapacity(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01", "esx-02")
	l.create(api.New(api.KindVirtualMachine, "/dc1/vm/db-01", api.VMSpec{Pool: labRoot, Host: labCluster + "/esx-01", Pinned: true,
		NumCPU: 1, MemoryMB: 1024, CPU: api.Allocation{Reservation: 2000, Limit: -1, Shares: api.Shares{Level: "normal"}},
		Mem: api.Allocation{Reservation: 1024, Limit: -1, Shares: api.Shares{Level: "normal"}}, PowerState: api.PoweredOn,
		Containers: []api.Container{{Name: "main", Image: "busybox"}}}))
	out := squash(l.ok("cluster.info"))
	for _, want := range []string{"Name: c1\n", " HA: disabled\n",
		" Admission control: disabled (figures: what it would keep)\n",
		" Policy: cluster resource percentage, 1 host failure(s) tolerated\n",
		" Hosts, VMs: 2, 1 powered on\n",
		" CPU failover: 20000MHz of 40000MHz kept for failover (50%), current failover capacity 95%\n",
		" CPU free: 2000MHz reserved, 18000MHz free to reserve\n",
		" Memory failover: 65536MB of 131072MB kept for failover (50%), current failover capacity 99%\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster.info lacks %q:\n%s", want, out)
		}
	}
	l.ok("cluster.change", "-ha-enabled", "-ha-admission-control-enabled", "-ha-admission-policy", "slot", "c1")
	out = squash(l.ok("cluster.info", "c1"))
	for _, want := range []string{" Admission control: enabled\n", " Slot size: 2000MHz, 1024MB\n",
		" Slots: 20 total, 10 for failover, 10 usable, 1 used, 9 free\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster.info (slot) lacks %q:\n%s", want, out)
		}
	}
	var infos []clusterInfo
	if err := json.Unmarshal([]byte(l.ok("cluster.info", "-json")), &infos); err != nil || len(infos) != 1 {
		t.Fatalf("cluster.info -json: %v %+v", err, infos)
	}
	c := infos[0].Capacity
	if c == nil || c.Policy != "slot" || c.TotalSlots != 20 || c.UsableSlots != 10 || c.UsedSlots != 1 || c.FreeSlots != 9 || c.CPU.Total != 40000 || !infos[0].HA.Enabled {
		t.Errorf("capacity = %+v", c)
	}
}

// squash collapses runs of spaces, so info blocks compare without their
// column alignment.
func squash(s string) string {
	return regexp.MustCompile(` +`).ReplaceAllString(s, " ")
}

// ha.plan honours the cluster's default priority and its dependency rules.
func TestHAPlanHonoursHASettings(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01", "esx-02")
	l.ok("cluster.change", "-ha-enabled", "-ha-restart-priority", "low", "c1")
	// DRS places them all on esx-02 while esx-01 is in maintenance (a VM
	// pinned there with -host would not be restarted elsewhere).
	l.ok("host.maintenance.enter", "esx-01")
	for _, name := range []string{"app", "db", "cache"} {
		l.create(api.New(api.KindVirtualMachine, "/dc1/vm/"+name, api.VMSpec{Pool: labRoot,
			NumCPU: 1, MemoryMB: 64, PowerState: api.PoweredOn, CPU: vmAllocation(), Mem: vmAllocation(),
			Containers: []api.Container{{Name: "main", Image: "busybox"}}}))
	}
	l.ok("host.maintenance.exit", "esx-01")
	l.ok("cluster.override.change", "-vm", "cache", "-ha-restart-priority", "disabled")
	l.ok("cluster.group.create", "-name", "apps", "-vm", "app")
	l.ok("cluster.group.create", "-name", "dbs", "-vm", "db")
	l.ok("cluster.rule.create", "-name", "app-after-db", "-depends", "apps", "dbs")
	out := squash(l.ok("ha.plan", "-fail", "esx-02"))
	for _, want := range []string{"1 /dc1/vm/db low esx-02 esx-01", "2 /dc1/vm/app low esx-02 esx-01", "Left down (restart priority disabled): /dc1/vm/cache"} {
		if !strings.Contains(out, want) {
			t.Errorf("ha.plan lacks %q:\n%s", want, out)
		}
	}
}
