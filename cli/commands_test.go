package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

func TestPoolCreateGovcFlags(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	out, errOut, code := l.psc("", nil, "pool.create", "-cpu.reservation=1000", "-cpu.expandable=false",
		"-mem.limit", "-1", "-mem.reservation", "512", "-cpu.shares", "high", "-mem.shares=3000", "qa", "c1/Resources/qa2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := "Created pool /dc1/host/c1/Resources/qa\nCreated pool /dc1/host/c1/Resources/qa2\n"; out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	want := api.PoolSpec{
		CPU: api.Allocation{Reservation: 1000, Limit: -1, Expandable: false, Shares: api.Shares{Level: "high"}},
		Mem: api.Allocation{Reservation: 512, Limit: -1, Expandable: true, Shares: api.Shares{Level: "custom", Value: 3000}},
	}
	for _, p := range []string{labRoot + "/qa", labRoot + "/qa2"} {
		if got := l.poolSpec(p); !reflect.DeepEqual(got, want) {
			t.Errorf("%s spec = %+v\nwant %+v", p, got, want)
		}
	}
	// vcenter's pool math saw the reservations: 6000 (dev) + 2 x 1000 MHz of
	// the root pool's 40000 MHz (two connected hosts) are taken.
	pi, err := l.api.Pool(l.ctx(), labRoot)
	if err != nil {
		t.Fatal(err)
	}
	if pi.CPU.Reservation != 40000 || pi.CPU.ReservationUsed != 8000 || pi.CPU.UnreservedForPool != 32000 {
		t.Errorf("root pool CPU = %+v, want 40000 MHz with 8000 reserved by dev, qa and qa2", pi.CPU)
	}
	// A reservation beyond what is left is refused by vcenter's admission.
	_, errOut, code = l.psc("", nil, "pool.create", "-cpu.reservation", "33000", "big")
	if code != api.ExitInsufficient || !strings.Contains(errOut, "big") || l.exists(labRoot+"/big") {
		t.Errorf("pool.create over the cluster's capacity: exit %d, %q, want %d and no pool", code, errOut, api.ExitInsufficient)
	}
}

func TestPoolChangeOnlySetFlags(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	before := l.poolSpec(labDev)
	out, errOut, code := l.psc("", nil, "pool.change", "-mem.shares", "low", "dev")
	if code != 0 || out != "Reconfigured pool "+labDev+"\n" {
		t.Fatalf("exit %d: %q %s", code, out, errOut)
	}
	got := l.poolSpec(labDev)
	before.Mem.Shares = api.Shares{Level: "low"}
	if !reflect.DeepEqual(got, before) {
		t.Errorf("spec = %+v\nwant %+v", got, before)
	}
	if _, errOut, code = l.psc("", nil, "pool.change", "-name", "prod", "dev"); code != api.ExitUsage || !strings.Contains(errOut, "not supported yet") {
		t.Errorf("pool.change -name: exit %d, %q", code, errOut)
	}
	// dev is fixed at 6000 MHz: below what its child and VMs hold is fine
	// (they hold none), above the root's 40000 MHz is refused and changes nothing.
	if _, errOut, code = l.psc("", nil, "pool.change", "-cpu.reservation", "50000", "dev"); code != api.ExitInsufficient {
		t.Errorf("pool.change over capacity: exit %d, %q, want %d", code, errOut, api.ExitInsufficient)
	}
	if got := l.poolSpec(labDev); !reflect.DeepEqual(got, before) {
		t.Errorf("a refused change changed the pool: %+v", got)
	}
}

func TestQuotaSet(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	out, errOut, code := l.psc("", nil, "quota.set", "dev", "-vms", "3", "-cpu=8000")
	if code != 0 || out != "Set quota of pool "+labDev+"\n" {
		t.Fatalf("exit %d: %q %s", code, out, errOut)
	}
	q := l.poolSpec(labDev).Quota
	want := noQuota()
	want.VMs, want.CPUMHz = 3, 8000
	if !reflect.DeepEqual(q, want) {
		t.Fatalf("quota = %+v, want %+v", q, want)
	}
	l.ok("quota.set", "dev", "-cpu", "-1", "-mem", "4096")
	want.CPUMHz, want.MemMB = -1, 4096
	if q := l.poolSpec(labDev).Quota; !reflect.DeepEqual(q, want) {
		t.Fatalf("quota = %+v, want %+v", q, want)
	}
	if _, _, code := l.psc("", nil, "quota.set", "dev"); code != api.ExitUsage {
		t.Errorf("quota.set without limits: exit %d, want %d", code, api.ExitUsage)
	}
	// The quota counts dev's subtree: web-01 in dev and web-02 in dev/web.
	qi, err := l.api.Quota(l.ctx(), labDev)
	if err != nil {
		t.Fatal(err)
	}
	if qi.Used.VMs != 2 || qi.Used.MemMB != 2048 || qi.Limits.VMs != 3 || qi.Limits.MemMB != 4096 {
		t.Errorf("quota info = %+v", qi)
	}
	// The third VM fits the quota of 3, the fourth is refused when created.
	l.ok("vm.create", "-pool", "dev", "-on=false", "web-03")
	_, errOut, code = l.psc("", nil, "vm.create", "-pool", "dev/web", "-on=false", "web-04")
	if code != api.ExitInsufficient || !strings.Contains(errOut, "vms 3 + 1 > 3") || l.exists("/dc1/vm/web-04") {
		t.Errorf("4th VM in a 3-VM quota: exit %d, %q", code, errOut)
	}
}

func TestVMCreate(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	out, errOut, code := l.psc("", nil, "vm.create", "-c", "2", "-m=2048", "-pool", "dev/web", "-host", "esx-02",
		"-cpu.reservation", "1000", "-e", "A=1", "-e", "B=x=y", "-port", "80", "-port", "443", "web-09")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	wantOut := "Created VM /dc1/vm/web-09 in pool /dc1/host/c1/Resources/dev/web\nPowering on /dc1/vm/web-09... OK (host esx-02)\n"
	if out != wantOut {
		t.Errorf("output:\n%s\nwant:\n%s", out, wantOut)
	}
	vm := l.get("/dc1/vm/web-09")
	s := vmSpec(vm)
	c := s.Containers[0]
	if s.NumCPU != 2 || s.MemoryMB != 2048 || s.Host != "/dc1/host/c1/esx-02" || s.CPU.Reservation != 1000 || s.CPU.Limit != -1 ||
		s.PowerState != api.PoweredOn || s.RestartPolicy != "Always" || c.Image != "busybox" ||
		!slices.Equal(c.Command, []string{"httpd", "-f", "-p", "80"}) ||
		len(c.Env) != 2 || c.Env[1].Value != "x=y" || len(c.Ports) != 2 || c.Ports[1].ContainerPort != 443 {
		t.Errorf("spec = %+v", s)
	}
	// Created powered off, then powered on on its pinned host.
	if got, want := eventTypes(l.events("/dc1/vm/web-09")), []string{"VmCreatedEvent", "VmPoweredOnEvent"}; !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
	// The host runs it: its agent reports it on with an address.
	ip := strings.TrimSpace(l.ok("vm.ip", "-wait", "20s", "web-09"))
	if st := vmStatus(l.get("/dc1/vm/web-09")); ip == "" || st.IP != ip || st.Host != "/dc1/host/c1/esx-02" {
		t.Errorf("vm.ip = %q, status = %+v", ip, st)
	}
	// The 1000 MHz reservation is taken from dev/web, which borrows it from dev.
	pi, err := l.api.Pool(l.ctx(), labDev)
	if err != nil {
		t.Fatal(err)
	}
	if pi.CPU.ReservationUsed != 1000 || pi.CPU.UnreservedForVm != 5000 {
		t.Errorf("dev CPU after web-09 = %+v, want 1000 of 6000 MHz used", pi.CPU)
	}
}

func TestVMCreatePowerOnRefusedKeepsVM(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	// dev's quota allows 3 VMs and 2 GB of VM memory; web-01 and web-02 use 2 GB.
	l.ok("quota.set", "dev", "-vms", "3", "-mem", "2048")
	out, errOut, code := l.psc("", nil, "vm.create", "-pool", "dev", "web-04")
	if code != api.ExitInsufficient {
		t.Errorf("exit %d, want %d", code, api.ExitInsufficient)
	}
	reason := "cannot power on /dc1/vm/web-04: quota exceeded in /dc1/host/c1/Resources/dev: memory 2048 + 1024 > 2048 MB"
	if errOut != "psc: "+reason+"\n" {
		t.Errorf("stderr = %q, want %q", errOut, "psc: "+reason+"\n")
	}
	if want := "Created VM /dc1/vm/web-04 in pool " + labDev + "\nPowering on /dc1/vm/web-04... failed\n"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	if s := vmSpec(l.get("/dc1/vm/web-04")); s.PowerState != api.PoweredOff || s.Host != "" {
		t.Errorf("the VM was not kept powered off after the refused power-on: %+v", s)
	}
	evs := l.events("/dc1/vm/web-04")
	if n := len(evs); n != 2 || evs[0].Type != "VmCreatedEvent" || evs[1].Type != "VmFailedToPowerOnEvent" || evs[1].Message != reason {
		t.Errorf("events of web-04 = %+v, want its creation and the refusal", evs)
	}

	// dev reserves 6000 MHz and cannot borrow: a VM reserving 7000 is refused
	// by the pool's reservation, not the quota (which no longer limits anything).
	l.ok("quota.set", "dev", "-vms", "-1", "-mem", "-1")
	_, errOut, code = l.psc("", nil, "vm.create", "-pool", "dev", "-cpu.reservation", "7000", "web-05")
	if code != api.ExitInsufficient || !strings.HasPrefix(errOut, "psc: cannot power on /dc1/vm/web-05: ") || strings.Contains(errOut, "quota") {
		t.Errorf("power-on over dev's reservation: exit %d, stderr %q", code, errOut)
	}
	if vmSpec(l.get("/dc1/vm/web-05")).PowerState != api.PoweredOff {
		t.Error("web-05 was powered on over dev's reservation")
	}
	// The same VM fits once dev may reserve 7000 MHz.
	l.ok("pool.change", "-cpu.reservation", "7000", "dev")
	if out := l.ok("vm.power", "-on", "web-05"); !regexp.MustCompile(`^Powering on /dc1/vm/web-05\.\.\. OK \(host esx-0[12]\)\n$`).MatchString(out) {
		t.Errorf("vm.power -on web-05 = %q", out)
	}
}

func TestVMPower(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	if _, errOut, code := l.psc("", nil, "vm.power", "-on", "-off", "db-01"); code != api.ExitUsage {
		t.Errorf("two actions: exit %d (%s)", code, errOut)
	}
	if _, _, code := l.psc("", nil, "vm.power", "db-01"); code != api.ExitUsage {
		t.Errorf("no action: exit %d", code)
	}
	out := l.ok("vm.power", "-s", "web-*")
	if want := "Shutting down guest /dc1/vm/web-01... OK\nShutting down guest /dc1/vm/web-02... OK\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	for _, vm := range []string{"/dc1/vm/web-01", "/dc1/vm/web-02"} {
		l.eventually(vm+" reported off by its host", func() bool {
			o := l.get(vm)
			return vmSpec(o).PowerState == api.PoweredOff && vmStatus(o).PowerState == api.PoweredOff
		})
	}
	// A powered-off VM cannot be rebooted: vcenter says so.
	if _, errOut, code := l.psc("", nil, "vm.power", "-r", "web-01"); code != api.ExitConflict || !strings.Contains(errOut, "poweredOff") {
		t.Errorf("reboot of a powered-off VM: exit %d, %q", code, errOut)
	}
	if out := l.ok("vm.power", "-on", "web-01"); out != "Powering on /dc1/vm/web-01... OK (host esx-01)\n" {
		t.Errorf("vm.power -on web-01 = %q", out)
	}
	gen := vmSpec(l.get("/dc1/vm/web-01")).ResetGeneration
	if out := l.ok("vm.power", "-r", "web-01"); out != "Rebooting guest /dc1/vm/web-01... OK\n" {
		t.Errorf("vm.power -r = %q", out)
	}
	if got := vmSpec(l.get("/dc1/vm/web-01")).ResetGeneration; got != gen+1 {
		t.Errorf("reset generation %d after a reboot, want %d", got, gen+1)
	}
	// podsphere cannot suspend: refused, saying so, and the VM keeps running.
	if _, errOut, code := l.psc("", nil, "vm.power", "-suspend", "web-01"); code != api.ExitUsage || !strings.Contains(errOut, "cannot suspend") {
		t.Errorf("vm.power -suspend: exit %d, %q", code, errOut)
	}
	if s := vmSpec(l.get("/dc1/vm/web-01")); s.PowerState != api.PoweredOn {
		t.Errorf("power state after a refused -suspend = %s", s.PowerState)
	}
	got := eventTypes(l.events("/dc1/vm/web-01"))
	want := []string{"VmCreatedEvent", "VmPoweredOnEvent", "VmPoweredOffEvent", "VmPoweredOnEvent", "VmResettingEvent"}
	if !slices.Equal(got, want) {
		t.Errorf("events of web-01 = %q, want %q", got, want)
	}
	if _, errOut, code := l.psc("", nil, "vm.power", "-on", "nope"); code != api.ExitNotFound {
		t.Errorf("missing VM: exit %d, want %d (%s)", code, api.ExitNotFound, errOut)
	}
}

func TestVMChangeAndDestroy(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	if out := l.ok("vm.change", "-m", "4096", "-mem.reservation", "1024", "web-01"); out != "Reconfigured VM /dc1/vm/web-01 live: cpu 1, memory 4096MB, memory reservation 1024MB\n" {
		t.Errorf("vm.change = %q", out)
	}
	s := vmSpec(l.get("/dc1/vm/web-01"))
	if s.MemoryMB != 4096 || s.Mem.Reservation != 1024 || s.NumCPU != 1 || s.PowerState != api.PoweredOn {
		t.Errorf("spec = %+v", s)
	}
	// The running VM's new reservation counts in dev's pool math.
	pi, err := l.api.Pool(l.ctx(), labDev)
	if err != nil {
		t.Fatal(err)
	}
	if pi.Mem.ReservationUsedForVm != 1024 {
		t.Errorf("dev memory = %+v, want 1024 MB reserved by web-01", pi.Mem)
	}
	// A reservation above the VM's size is a mistake vcenter points out.
	if _, errOut, code := l.psc("", nil, "vm.change", "-mem.reservation", "8192", "web-01"); code != api.ExitUsage || !strings.Contains(errOut, "above the VM's memory size") {
		t.Errorf("reservation above the VM's memory: exit %d, %q", code, errOut)
	}
	// Growing it beyond what its host (64 GB, 1 GB reserved) has left is
	// refused and changes nothing.
	_, errOut, code := l.psc("", nil, "vm.change", "-m", "100000", "-mem.reservation", "66000", "web-01")
	if code != api.ExitInsufficient || !strings.Contains(errOut, "esx-01") {
		t.Errorf("reservation over the host's memory: exit %d, %q", code, errOut)
	}
	if s := vmSpec(l.get("/dc1/vm/web-01")); s.MemoryMB != 4096 || s.Mem.Reservation != 1024 {
		t.Errorf("a refused change changed the VM: %+v", s)
	}
	out := l.ok("vm.destroy", "web-01", "db-01")
	want := "Powering off /dc1/vm/web-01... OK\nDestroyed VM /dc1/vm/web-01\nDestroyed VM /dc1/vm/db-01\n"
	if out != want {
		t.Errorf("vm.destroy:\n%s\nwant:\n%s", out, want)
	}
	for _, p := range []string{"/dc1/vm/web-01", "/dc1/vm/db-01"} {
		if l.exists(p) {
			t.Errorf("%s still exists", p)
		}
	}
	wantEvents := []string{"VmCreatedEvent", "VmPoweredOnEvent", "VmReconfiguredEvent", "AdmissionRefusedEvent", "VmPoweredOffEvent", "VmRemovedEvent"}
	if got := eventTypes(l.events("/dc1/vm/web-01")); !slices.Equal(got, wantEvents) {
		t.Errorf("events of web-01 = %q, want %q", got, wantEvents)
	}
	if _, _, code := l.psc("", nil, "vm.destroy", "web-01"); code != api.ExitNotFound {
		t.Errorf("destroying it again: exit %d", code)
	}
}

func TestClusterAndHostVerbs(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	if out := l.ok("cluster.change", "-drs-mode", "manual", "-ha-enabled", "c1"); out != "Reconfigured cluster "+labCluster+"\n" {
		t.Errorf("cluster.change = %q", out)
	}
	var cs api.ClusterSpec
	_ = l.get(labCluster).DecodeSpec(&cs)
	if !cs.DRS.Enabled || cs.DRS.Mode != "manual" || !cs.HA.Enabled || cs.HA.AdmissionControlEnabled {
		t.Errorf("cluster spec = %+v", cs)
	}
	if _, _, code := l.psc("", nil, "cluster.change", "-drs-mode", "auto", "c1"); code != api.ExitUsage {
		t.Errorf("bad -drs-mode: exit %d", code)
	}
	out := l.ok("cluster.rule.create", "-name", "pin", "-enable", "-mandatory", "-vm-host", "-host", "esx-01,esx-02", "-affine=false", "db-01")
	if out != "Created rule pin in cluster "+labCluster+"\n" {
		t.Errorf("cluster.rule.create = %q", out)
	}
	_ = l.get(labCluster).DecodeSpec(&cs)
	if len(cs.Rules) != 1 {
		t.Fatalf("rules = %+v", cs.Rules)
	}
	r := cs.Rules[0]
	if r.Name != "pin" || !r.Enabled || r.Kind != ruleVMHost || !r.Mandatory || r.Affine ||
		baseNames(r.VMs) != "db-01" || baseNames(r.Hosts) != "esx-01,esx-02" {
		t.Errorf("rule = %+v", r)
	}
	if out := l.ok("cluster.rule.ls"); !strings.Contains(out, "pin    vm-host (not on)   true      true        db-01   esx-01,esx-02\n") {
		t.Errorf("cluster.rule.ls:\n%s", out)
	}
	if _, _, code := l.psc("", nil, "cluster.rule.create", "-name", "pin", "-vm-host", "-host", "esx-01", "db-01"); code != api.ExitConflict {
		t.Errorf("duplicate rule: exit %d, want %d", code, api.ExitConflict)
	}
	if _, _, code := l.psc("", nil, "cluster.rule.create", "-name", "x", "-affinity", "-anti-affinity", "web-01", "web-02"); code != api.ExitUsage {
		t.Errorf("two rule kinds: exit %d", code)
	}
	// web-01 is pinned to esx-01: evacuation cannot move it, says so
	// while it waits, and gives up at the timeout with the host back in
	// service.
	out, errOut, code := l.psc("", nil, "host.maintenance.enter", "-timeout", "1", "esx-01")
	if code != api.ExitUnavailable || !strings.Contains(out, "esx-01: 1 of 1 VMs left: waiting for the admin; waiting: web-01 is pinned to esx-01") ||
		!strings.Contains(errOut, "/dc1/host/c1/esx-01 did not enter maintenance mode and is back in service: maintenance timeout of 1s expired with 1 of 1 VMs left") {
		t.Fatalf("enter with a pinned VM: exit %d: %q %q", code, out, errOut)
	}
	if st := l.hostStatus(labCluster + "/esx-01"); st.State != api.HostConnected || !strings.Contains(l.ok("host.info", "esx-01"), "  Maintenance:      failed: maintenance timeout") {
		t.Errorf("after the timeout: state %s, host.info:\n%s", st.State, l.ok("host.info", "esx-01"))
	}
	if _, errOut, code := l.psc("", nil, "vm.migrate", "-ds", "datastore1", "web-01"); code != api.ExitUsage || !strings.Contains(errOut, "podsphere has no datastores") {
		t.Errorf("vm.migrate -ds: exit %d, %q", code, errOut)
	}
	// Cold migration of a running VM: psc follows it, stopped on esx-01
	// first, then started on esx-02, and returns once it runs there.
	if out := l.ok("vm.migrate", "-host", "esx-02", "web-01"); out != "Migrating /dc1/vm/web-01... stopping on esx-01... starting on esx-02... OK (host esx-02)\n" {
		t.Errorf("vm.migrate = %q", out)
	}
	if st := vmStatus(l.get("/dc1/vm/web-01")); st.Host != labCluster+"/esx-02" || st.PowerState != api.PoweredOn {
		t.Errorf("web-01 after vm.migrate returned: %s on %s, want running on esx-02", st.PowerState, st.Host)
	}
	out, errOut, code = l.psc("", nil, "host.maintenance.enter", "esx-01")
	if code != 0 || out != "Entering maintenance mode on /dc1/host/c1/esx-01... OK\n" {
		t.Fatalf("exit %d: %q %s", code, out, errOut)
	}
	var hs api.HostSpec
	_ = l.get(labCluster + "/esx-01").DecodeSpec(&hs)
	if !hs.Maintenance || l.hostStatus(labCluster+"/esx-01").State != api.HostMaintenance {
		t.Error("esx-01 is not in maintenance mode")
	}
	if !strings.Contains(l.ok("host.info", "esx-01"), "  State:            maintenance\n") {
		t.Error("host.info does not show esx-01 in maintenance")
	}
	// Nothing new lands on a host in maintenance.
	if _, errOut, code := l.psc("", nil, "vm.create", "-host", "esx-01", "web-07"); code != api.ExitInsufficient {
		t.Errorf("power-on pinned to a host in maintenance: exit %d, %q", code, errOut)
	}
	if out := l.ok("host.maintenance.exit", "esx-01"); out != "Exiting maintenance mode on /dc1/host/c1/esx-01... OK\n" {
		t.Errorf("host.maintenance.exit = %q", out)
	}
	if st := l.hostStatus(labCluster + "/esx-01").State; st != api.HostConnected {
		t.Errorf("esx-01 is %s after leaving maintenance", st)
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	tests := []struct {
		args []string
		env  map[string]string
		code int
		msg  string
	}{
		{[]string{"ls"}, map[string]string{"PSC_TOKEN": ""}, api.ExitUnauthorized, "DIR/admin.token"},
		{[]string{"ls"}, map[string]string{"PSC_TOKEN": "not-the-admin-token-0123456789"}, api.ExitUnauthorized, "bearer token"},
		{[]string{"ls"}, map[string]string{"PSC_URL": "http://127.0.0.1:1"}, api.ExitUnavailable, "cannot reach vcenter"},
		{[]string{"nosuchverb"}, nil, api.ExitUsage, `unknown verb "nosuchverb" (psc has no such verb; nearest: `},
		{[]string{"ls", "-bogus"}, nil, api.ExitUsage, "unknown flag: --bogus"},
		{[]string{"pool.info"}, nil, api.ExitUsage, "at least one POOL"},
		{[]string{"pool.info", "nope"}, nil, api.ExitNotFound, `"/dc1/host/c1/Resources/nope"`},
		{[]string{"pool.create", "dev"}, nil, api.ExitConflict, "already exists"},
		{[]string{"pool.create", "-cpu.limit", "5", "-cpu.reservation", "10", "x"}, nil, api.ExitUsage, "cpu.limit 5 is below cpu.reservation 10"},
		{[]string{"pool.create", "-cpu.shares", "lots", "x"}, nil, api.ExitUsage, "-cpu.shares"},
		{[]string{"pool.create", "nope/x"}, nil, api.ExitUsage, "parent pool"},
		{[]string{"pool.destroy", "Resources"}, nil, api.ExitUsage, "root pool"},
		{[]string{"pool.destroy", "dev"}, nil, api.ExitConflict, "child pool"},
		{[]string{"ls", "-t", "zz"}, nil, api.ExitUsage, "unknown type"},
	}
	for _, tt := range tests {
		_, errOut, code := l.psc("", tt.env, tt.args...)
		if code != tt.code || !strings.HasPrefix(errOut, "psc: ") || !strings.Contains(errOut, tt.msg) {
			t.Errorf("psc %q: exit %d, stderr %q; want exit %d and %q", tt.args, code, errOut, tt.code, tt.msg)
		}
	}
	for err, code := range map[error]int{
		api.ErrInvalid: 2, api.ErrNotFound: 3, api.ErrConflict: 4, api.ErrQuotaExceeded: 5,
		api.ErrInsufficientResources: 5, api.ErrUnavailable: 6, api.ErrGone: 6, api.ErrUnauthorized: 7, errors.New("x"): 1,
	} {
		if got := ExitCode(fmt.Errorf("wrapped: %w", err)); got != code {
			t.Errorf("ExitCode(%v) = %d, want %d", err, got, code)
		}
	}
	if got := ExitCode(nil); got != api.ExitOK {
		t.Errorf("ExitCode(nil) = %d", got)
	}
}

const devManifest = `apiVersion: v1
kind: Namespace
metadata:
  name: team
---
apiVersion: v1
kind: ResourceQuota
metadata:
  name: team-quota
  namespace: team
spec:
  hard:
    pods: "4"
    limits.cpu: "8"
---
apiVersion: podsphere.io/v1
kind: VirtualMachine
metadata:
  name: api-01
spec:
  pool: team
  containers:
  - name: main
    image: busybox
`

func TestApplyAndDelete(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	file := filepath.Join(t.TempDir(), "team.yaml")
	if err := os.WriteFile(file, []byte(devManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := l.psc("", nil, "apply", "-f", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "Namespace team -> /dc1/host/c1/Resources/team created\n" +
		"ResourceQuota team-quota -> /dc1/host/c1/Resources/team configured\n" +
		"VirtualMachine api-01 -> /dc1/vm/api-01 created\n"
	if out != want {
		t.Errorf("first apply:\n%s\nwant:\n%s", out, want)
	}
	if s := vmSpec(l.get("/dc1/vm/api-01")); s.PowerState != api.PoweredOn || s.Pool != labRoot+"/team" || s.Host == "" {
		t.Errorf("VM spec = %+v", s)
	}
	if q := l.poolSpec(labRoot + "/team").Quota; q == nil || q.VMs != 4 || q.CPUMHz != 8000 {
		t.Errorf("quota = %+v", q)
	}
	if qi, err := l.api.Quota(l.ctx(), labRoot+"/team"); err != nil || qi.Used.VMs != 1 {
		t.Errorf("quota info = %+v, %v; want 1 VM used", qi, err)
	}
	// Again from stdin: nothing to do.
	out, errOut, code = l.psc(devManifest, nil, "apply", "-f", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := strings.ReplaceAll(strings.ReplaceAll(want, "created", "unchanged"), "configured", "unchanged"); out != want {
		t.Errorf("second apply:\n%s\nwant:\n%s", out, want)
	}
	// A changed quota is configured, the rest stays.
	out, _, _ = l.psc(strings.Replace(devManifest, `pods: "4"`, `pods: "5"`, 1), nil, "apply", "-f", "-")
	if !strings.Contains(out, "ResourceQuota team-quota -> /dc1/host/c1/Resources/team configured\n") || !strings.Contains(out, "api-01 unchanged") {
		t.Errorf("third apply:\n%s", out)
	}
	if q := l.poolSpec(labRoot + "/team").Quota; q == nil || q.VMs != 5 {
		t.Errorf("quota after the third apply = %+v", q)
	}
	out, errOut, code = l.psc(devManifest, nil, "delete", "-f", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want = "VirtualMachine api-01 -> /dc1/vm/api-01 deleted\n" +
		"ResourceQuota team-quota -> /dc1/host/c1/Resources/team deleted\n" +
		"Namespace team -> /dc1/host/c1/Resources/team deleted\n"
	if out != want {
		t.Errorf("delete:\n%s\nwant:\n%s", out, want)
	}
	if l.exists(labRoot+"/team") || l.exists("/dc1/vm/api-01") {
		t.Error("pool or VM still there")
	}
	if _, errOut, code := l.psc("kind: Bogus\n", nil, "apply", "-f", "-"); code != api.ExitUsage {
		t.Errorf("bad manifest: exit %d: %s", code, errOut)
	}
	// Deleting what is gone says so.
	out, _, code = l.psc(devManifest, nil, "delete", "-f", "-")
	if code != api.ExitNotFound || !strings.Contains(out, "VirtualMachine api-01 -> /dc1/vm/api-01 not found") {
		t.Errorf("second delete: exit %d:\n%s", code, out)
	}
}

// eventLine is govc's event line: [time] [category] [key] [type] message.
var eventLine = regexp.MustCompile(`^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[(\w+)\] \[(\d+)\] \[(\w+)\] (.+)$`)

// TestEventsFollow runs `psc events -f` against vcenter's watch and sees the
// events of objects created while it runs, in order, until it is stopped.
func TestEventsFollow(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01")
	var out, errb syncBuffer
	e := &Env{In: strings.NewReader(""), Out: &out, Err: &errb, Now: time.Now, Location: time.UTC, NewAPI: newClient}
	vars := map[string]string{"PSC_URL": l.url, "PSC_TOKEN": l.token, "PSC_DATACENTER": "dc1", "PSC_CLUSTER": "c1"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, e, func(k string) string { return vars[k] }, []string{"events", "-f", "-n", "1"})
	}()

	lines := func() []string { return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") }
	// The most recent event (esx-01 joining) comes first: then the watch is on.
	l.eventually("the most recent event", func() bool { return strings.Contains(out.String(), "[HostAddedEvent] Host esx-01 joined") })
	if n := len(lines()); n != 1 {
		t.Fatalf("events -f -n 1 printed %d lines first:\n%s", n, out.String())
	}

	l.ok("pool.create", "dev")
	l.ok("vm.create", "-pool", "dev", "web-01")
	l.eventually("the new objects' events", func() bool {
		return strings.Contains(out.String(), "[DrsVmPoweredOnEvent] DRS placed web-01 on esx-01")
	})
	got := lines()
	var types []string
	var last uint64
	for _, line := range got {
		m := eventLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("line %q is not [time] [category] [key] [type] message", line)
			continue
		}
		var key uint64
		fmt.Sscan(m[2], &key)
		if key <= last {
			t.Errorf("event keys out of order: %d after %d", key, last)
		}
		last = key
		types = append(types, m[3])
	}
	want := []string{"HostAddedEvent", "ResourcePoolCreatedEvent", "VmCreatedEvent", "DrsVmPoweredOnEvent"}
	if !slices.Equal(types[:min(len(types), 4)], want) {
		t.Errorf("event types = %q, want %q first\n%s", types, want, out.String())
	}
	if !strings.Contains(out.String(), "Resource pool "+labDev+" created") {
		t.Errorf("missing the pool's event:\n%s", out.String())
	}

	// Ctrl-C: the follow ends cleanly.
	cancel()
	select {
	case code := <-done:
		if code != 0 || errb.String() != "" {
			t.Errorf("events -f after cancel: exit %d, stderr %q", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("events -f did not stop after its context was cancelled")
	}
}

// TestEventsFollowTarget follows only the events about one VM.
func TestEventsFollowTarget(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01")
	l.ok("vm.create", "-on=false", "web-01")
	var out syncBuffer
	e := &Env{In: strings.NewReader(""), Out: &out, Err: &out, Now: time.Now, Location: time.UTC, NewAPI: newClient}
	vars := map[string]string{"PSC_URL": l.url, "PSC_TOKEN": l.token, "PSC_DATACENTER": "dc1", "PSC_CLUSTER": "c1"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, e, func(k string) string { return vars[k] }, []string{"events", "-f", "web-01"})
	}()
	l.eventually("web-01's creation", func() bool { return strings.Contains(out.String(), "[VmCreatedEvent]") })
	l.ok("vm.create", "-on=false", "web-02")
	l.ok("vm.power", "-on", "web-01")
	l.eventually("web-01's power-on", func() bool { return strings.Contains(out.String(), "[DrsVmPoweredOnEvent] DRS placed web-01") })
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d", code)
	}
	if strings.Contains(out.String(), "web-02") {
		t.Errorf("events -f web-01 printed another VM's events:\n%s", out.String())
	}
}

// TestClusterRuleEnforced creates DRS rules with psc and sees vcenter's
// placement keep them on power-on.
func TestClusterRuleEnforced(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	l.ok("cluster.rule.create", "-name", "pin", "-enable", "-mandatory", "-vm-host", "-host", "esx-01,esx-02", "-affine=false", "db-01")
	// The mandatory rule keeps db-01 off esx-01 and esx-02, the only
	// connected hosts: vcenter's placement refuses the power-on, naming the rule.
	_, errOut, code := l.psc("", nil, "vm.power", "-on", "db-01")
	if code != api.ExitInsufficient || !strings.Contains(errOut, "pin") {
		t.Errorf("power-on against a mandatory rule: exit %d, %q", code, errOut)
	}
	if vmSpec(l.get("/dc1/vm/db-01")).PowerState != api.PoweredOff {
		t.Error("db-01 was powered on against the rule")
	}
}

// TestSelectors runs ls and find with set-based label selectors against
// labelled VMs and pools in vcenter, which evaluates them.
func TestSelectors(t *testing.T) {
	t.Parallel()
	l := labBase(t)
	pool := api.New(api.KindResourcePool, labDev, api.PoolSpec{CPU: defaultPoolAlloc(), Mem: defaultPoolAlloc()})
	pool.Labels = map[string]string{"team": "web"}
	l.create(pool)
	for name, lbls := range map[string]map[string]string{
		"a": {"env": "prod", "tier": "web"},
		"b": {"env": "prod", "tier": "db"},
		"c": {"env": "qa", "tier": "web", "canary": ""},
		"d": {"env": "dev", "tier": "web"},
		"e": nil,
	} {
		o := api.New(api.KindVirtualMachine, "/dc1/vm/"+name, api.VMSpec{Pool: labRoot, NumCPU: 1, MemoryMB: 512,
			CPU: vmAllocation(), Mem: vmAllocation(), PowerState: api.PoweredOff, Containers: []api.Container{{Name: "main", Image: "busybox"}}})
		o.Labels = lbls
		l.create(o)
	}
	lines := func(names ...string) string {
		var b strings.Builder
		for _, n := range names {
			b.WriteString(n + "\n")
		}
		return b.String()
	}
	vms := func(names ...string) string {
		for i, n := range names {
			names[i] = "/dc1/vm/" + n
		}
		return lines(names...)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"find", "-type", "m", "-selector", "env in (prod,qa),tier!=db,!canary"}, vms("a")},
		{[]string{"find", "-type", "m", "-selector", "env in (prod,qa)"}, vms("a", "b", "c")},
		{[]string{"find", "-type", "m", "-selector", "!canary"}, vms("a", "b", "d", "e")},
		{[]string{"find", "-type", "m", "-selector=tier!=db"}, vms("a", "c", "d", "e")},
		{[]string{"find", "-type", "m", "-selector", " env notin ( prod , qa ) "}, vms("d", "e")},
		{[]string{"find", "-type", "m", "-selector", "canary"}, vms("c")},
		{[]string{"find", "-selector", "env==prod", "/dc1/vm"}, vms("a", "b")},
		{[]string{"find", "-selector", "team=web"}, lines(labDev)},
		{[]string{"find", "-selector", "env=nope"}, ""},
		{[]string{"ls", "-selector", "env in (prod,qa),tier!=db,!canary", "/dc1/vm"}, vms("a")},
		{[]string{"ls", "-selector", "tier!=db", "/dc1/vm"}, vms("a", "c", "d", "e")},
		// The root pool lists its child pools and its VMs; only dev has a team.
		{[]string{"ls", "-selector", "team", "c1/Resources"}, lines(labDev)},
		{[]string{"ls", "-selector", "!team", "c1/Resources"}, vms("a", "b", "c", "d", "e")},
		// Folders have no labels: !canary selects them, env=prod does not.
		{[]string{"ls", "-selector", "!canary", "/dc1"}, lines("/dc1/host", "/dc1/vm", "/dc1/deployment", "/dc1/replicaset", "/dc1/daemonset", "/dc1/job", "/dc1/hpa", "/dc1/service", "/dc1/ingress")},
		{[]string{"ls", "-selector", "env=prod", "/dc1"}, ""},
	} {
		if got := l.ok(c.args...); got != c.want {
			t.Errorf("psc %q:\n%s\nwant:\n%s", c.args, got, c.want)
		}
	}
	long := l.ok("ls", "-l", "-selector", "env in (prod,qa),!canary", "/dc1/vm")
	if !strings.Contains(long, "/dc1/vm/a ") || !strings.Contains(long, "/dc1/vm/b ") || strings.Contains(long, "/dc1/vm/c") || !strings.Contains(long, "VirtualMachine") {
		t.Errorf("ls -l -selector:\n%s", long)
	}
	var found []string
	if err := json.Unmarshal([]byte(l.ok("find", "-json", "-selector", "env in (prod,qa),tier!=db,!canary")), &found); err != nil ||
		!slices.Equal(found, []string{"/dc1/vm/a"}) {
		t.Errorf("find -json -selector = %q", found)
	}

	// A bad selector is a usage error naming the term, before vcenter is asked.
	for _, args := range [][]string{
		{"find", "-selector", "env in (prod"},
		{"ls", "-selector", "env in (prod,qa),tier=x/y", "/dc1/vm"},
	} {
		_, errOut, code := l.psc("", nil, args...)
		if code != api.ExitUsage || !strings.Contains(errOut, "label selector") || !strings.Contains(errOut, "term ") || strings.HasSuffix(strings.TrimSpace(errOut), ": invalid") {
			t.Errorf("psc %q: exit %d, %q; want a usage error naming the term", args, code, errOut)
		}
	}
	// A label value with '/' could never be selected, so it is refused.
	manifest := "apiVersion: podsphere.io/v1\nkind: VirtualMachine\nmetadata: {name: f, labels: {app: web/x}}\nspec: {pool: Resources}\n"
	if _, errOut, code := l.psc(manifest, nil, "apply", "-f", "-"); code != api.ExitUsage || !strings.Contains(errOut, `label "app"="web/x"`) ||
		!strings.Contains(errOut, "'/' is only allowed in keys") || l.exists("/dc1/vm/f") {
		t.Errorf("apply of a label value with '/': exit %d, %q", code, errOut)
	}
}

// TestVMsOfNamespaces creates VMs of a namespace (-namespace, PSC_NAMESPACE,
// NS/NAME): they live at /DC/vm/NS/NAME in the namespace's pool.
func TestVMsOfNamespaces(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01")
	l.ok("pool.create", "team", "dev")
	if out := l.ok("vm.create", "-namespace", "team", "-on=false", "api-01"); out != "Created VM /dc1/vm/team/api-01 in pool "+labRoot+"/team\n" {
		t.Errorf("vm.create -namespace team = %q", out)
	}
	if out := l.ok("vm.create", "-on=false", "-pool", "team", "team/api-02"); out != "Created VM /dc1/vm/team/api-02 in pool "+labRoot+"/team\n" {
		t.Errorf("vm.create team/api-02 = %q", out)
	}
	if out := l.ok("vm.create", "-on=false", "-pool", "dev", "api-03"); out != "Created VM /dc1/vm/api-03 in pool "+labDev+"\n" {
		t.Errorf("vm.create in the default namespace = %q", out)
	}
	_, errOut, code := l.psc("", nil, "vm.create", "-namespace", "team", "-pool", "dev", "api-04")
	if code != api.ExitUsage || !strings.Contains(errOut, "-pool "+labDev+" is not in namespace team") || l.exists("/dc1/vm/team/api-04") {
		t.Errorf("vm.create in team, pool dev: exit %d, %q", code, errOut)
	}
	if _, errOut, code := l.psc("", nil, "vm.create", "a/b/c"); code != api.ExitUsage || !strings.Contains(errOut, "NAMESPACE/NAME") {
		t.Errorf("vm.create a/b/c: exit %d, %q", code, errOut)
	}
	if _, errOut, code := l.psc("", map[string]string{"PSC_NAMESPACE": "bad name"}, "vm.info", "x"); code != api.ExitUsage || !strings.Contains(errOut, `-namespace "bad name"`) {
		t.Errorf("a bad namespace: exit %d, %q", code, errOut)
	}
	team := map[string]string{"PSC_NAMESPACE": "team"}
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{team, []string{"vm.info", "api-01"}, "  Path:             /dc1/vm/team/api-01\n"},
		{nil, []string{"vm.info", "team/api-02"}, "  Path:             /dc1/vm/team/api-02\n"},
		{team, []string{"vm.info", "default/api-03"}, "  Path:             /dc1/vm/api-03\n"},
		{team, []string{"vm.info", "/dc1/vm/api-03"}, "  Path:             /dc1/vm/api-03\n"},
	} {
		out, errOut, code := l.psc("", c.env, c.args...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("psc %q (env %v): exit %d %s\n%s\nwant %q", c.args, c.env, code, errOut, out, c.want)
		}
	}
	if _, _, code := l.psc("", nil, "vm.info", "api-01"); code != api.ExitNotFound {
		t.Errorf("vm.info api-01 in the default namespace: exit %d, want %d", code, api.ExitNotFound)
	}
	if out, _, _ := l.psc("", team, "vm.destroy", "api-*"); out != "Destroyed VM /dc1/vm/team/api-01\nDestroyed VM /dc1/vm/team/api-02\n" {
		t.Errorf("vm.destroy api-* in team = %q", out)
	}
}
