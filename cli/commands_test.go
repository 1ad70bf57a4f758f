package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

func poolSpecOf(t *testing.T, f *fakeAPI, p string) api.PoolSpec {
	t.Helper()
	o, ok := f.objs[p]
	if !ok {
		t.Fatalf("%s does not exist", p)
	}
	var s api.PoolSpec
	if err := o.DecodeSpec(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPoolCreateGovcFlags(t *testing.T) {
	f := labInventory()
	out, errOut, code := runPsc(t, f, "", nil, "pool.create", "-cpu.reservation=1000", "-cpu.expandable=false",
		"-mem.limit", "-1", "-mem.reservation", "512", "-cpu.shares", "high", "-mem.shares=3000", "qa", "c1/Resources/qa2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "Created pool /dc1/host/c1/Resources/qa\n") || !strings.Contains(out, "/dc1/host/c1/Resources/qa2") {
		t.Errorf("output:\n%s", out)
	}
	want := api.PoolSpec{
		CPU: api.Allocation{Reservation: 1000, Limit: -1, Expandable: false, Shares: api.Shares{Level: "high"}},
		Mem: api.Allocation{Reservation: 512, Limit: -1, Expandable: true, Shares: api.Shares{Level: "custom", Value: 3000}},
	}
	if got := poolSpecOf(t, f, "/dc1/host/c1/Resources/qa"); !reflect.DeepEqual(got, want) {
		t.Errorf("spec = %+v\nwant %+v", got, want)
	}
}

func TestPoolChangeOnlySetFlags(t *testing.T) {
	f := labInventory()
	before := poolSpecOf(t, f, "/dc1/host/c1/Resources/dev")
	_, errOut, code := runPsc(t, f, "", nil, "pool.change", "-mem.shares", "low", "dev")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := poolSpecOf(t, f, "/dc1/host/c1/Resources/dev")
	before.Mem.Shares = api.Shares{Level: "low"}
	if !reflect.DeepEqual(got, before) {
		t.Errorf("spec = %+v\nwant %+v", got, before)
	}
	if _, errOut, code = runPsc(t, f, "", nil, "pool.change", "-name", "prod", "dev"); code != ExitUsage || !strings.Contains(errOut, "not supported yet") {
		t.Errorf("pool.change -name: exit %d, %q", code, errOut)
	}
}

func TestQuotaSet(t *testing.T) {
	f := labInventory()
	_, errOut, code := runPsc(t, f, "", nil, "quota.set", "dev", "-vms", "3", "-cpu=8000")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	q := poolSpecOf(t, f, "/dc1/host/c1/Resources/dev").Quota
	want := noQuota()
	want.VMs, want.CPUMHz = 3, 8000
	if !reflect.DeepEqual(q, want) {
		t.Fatalf("quota = %+v, want %+v", q, want)
	}
	runPsc(t, f, "", nil, "quota.set", "dev", "-cpu", "-1", "-mem", "4096")
	want.CPUMHz, want.MemMB = -1, 4096
	if q := poolSpecOf(t, f, "/dc1/host/c1/Resources/dev").Quota; !reflect.DeepEqual(q, want) {
		t.Fatalf("quota = %+v, want %+v", q, want)
	}
	if _, _, code := runPsc(t, f, "", nil, "quota.set", "dev"); code != ExitUsage {
		t.Errorf("quota.set without limits: exit %d, want %d", code, ExitUsage)
	}
}

func TestVMCreate(t *testing.T) {
	f := labInventory()
	out, errOut, code := runPsc(t, f, "", nil, "vm.create", "-c", "2", "-m=2048", "-pool", "dev/web", "-host", "esx-02",
		"-cpu.reservation", "1000", "-e", "A=1", "-e", "B=x=y", "-port", "80", "-port", "443", "web-09")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	wantOut := "Created VM /dc1/vm/web-09 in pool /dc1/host/c1/Resources/dev/web\nPowering on /dc1/vm/web-09... OK (host esx-02)\n"
	if out != wantOut {
		t.Errorf("output:\n%s\nwant:\n%s", out, wantOut)
	}
	if want := []string{"create VirtualMachine /dc1/vm/web-09", "power /dc1/vm/web-09 on"}; !slices.Equal(f.calls, want) {
		t.Errorf("calls = %q, want %q", f.calls, want)
	}
	s := vmSpec(f.objs["/dc1/vm/web-09"])
	c := s.Containers[0]
	if s.NumCPU != 2 || s.MemoryMB != 2048 || s.Host != "/dc1/host/c1/esx-02" || s.CPU.Reservation != 1000 || s.CPU.Limit != -1 ||
		s.RestartPolicy != "Always" || c.Image != "busybox" || !slices.Equal(c.Command, []string{"httpd", "-f", "-p", "80"}) ||
		len(c.Env) != 2 || c.Env[1].Value != "x=y" || len(c.Ports) != 2 || c.Ports[1].ContainerPort != 443 {
		t.Errorf("spec = %+v", s)
	}
}

func TestVMCreatePowerOnRefusedKeepsVM(t *testing.T) {
	f := labInventory()
	reason := "cannot power on /dc1/vm/web-04: pool /dc1/host/c1/Resources/dev: vms 3 of 3 used"
	f.powerErr["/dc1/vm/web-04"] = &cliError{msg: reason, sentinel: api.ErrQuotaExceeded}
	out, errOut, code := runPsc(t, f, "", nil, "vm.create", "-pool", "dev", "web-04")
	if code != ExitInsufficient {
		t.Errorf("exit %d, want %d", code, ExitInsufficient)
	}
	if errOut != "psc: "+reason+"\n" {
		t.Errorf("stderr = %q", errOut)
	}
	if !strings.Contains(out, "Created VM /dc1/vm/web-04") || !strings.Contains(out, "failed") {
		t.Errorf("stdout = %q", out)
	}
	if _, ok := f.objs["/dc1/vm/web-04"]; !ok {
		t.Error("the VM was not kept after the refused power-on")
	}
}

func TestVMPower(t *testing.T) {
	f := labInventory()
	if _, errOut, code := runPsc(t, f, "", nil, "vm.power", "-on", "-off", "db-01"); code != ExitUsage {
		t.Errorf("two actions: exit %d (%s)", code, errOut)
	}
	if _, _, code := runPsc(t, f, "", nil, "vm.power", "db-01"); code != ExitUsage {
		t.Errorf("no action: exit %d", code)
	}
	out, errOut, code := runPsc(t, f, "", nil, "vm.power", "-s", "web-*")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := "Shutting down guest /dc1/vm/web-01... OK\nShutting down guest /dc1/vm/web-02... OK\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	f.calls = nil
	runPsc(t, f, "", nil, "vm.power", "-r", "web-01")
	runPsc(t, f, "", nil, "vm.power", "-suspend", "web-01")
	if want := []string{"power /dc1/vm/web-01 reboot", "power /dc1/vm/web-01 suspend"}; !slices.Equal(f.calls, want) {
		t.Errorf("calls %q, want %q", f.calls, want)
	}
	if _, _, code := runPsc(t, f, "", nil, "vm.power", "-on", "nope"); code != ExitNotFound {
		t.Errorf("missing VM: exit %d, want %d", code, ExitNotFound)
	}
}

func TestVMChangeAndDestroy(t *testing.T) {
	f := labInventory()
	if _, errOut, code := runPsc(t, f, "", nil, "vm.change", "-m", "4096", "-mem.reservation", "1024", "web-01"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	s := vmSpec(f.objs["/dc1/vm/web-01"])
	if s.MemoryMB != 4096 || s.Mem.Reservation != 1024 || s.NumCPU != 1 || s.PowerState != api.PoweredOn {
		t.Errorf("spec = %+v", s)
	}
	f.calls = nil
	out, _, code := runPsc(t, f, "", nil, "vm.destroy", "web-01", "db-01")
	if code != 0 {
		t.Fatal(out)
	}
	want := []string{"update /dc1/vm/web-01", "power /dc1/vm/web-01 off", "delete /dc1/vm/web-01 children=false", "delete /dc1/vm/db-01 children=false"}
	if !slices.Equal(f.calls[len(f.calls)-3:], want[1:]) {
		t.Errorf("calls %q, want %q", f.calls, want)
	}
}

func TestClusterAndHostVerbs(t *testing.T) {
	f := labInventory()
	if _, errOut, code := runPsc(t, f, "", nil, "cluster.change", "-drs-mode", "manual", "-ha-enabled", "c1"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var cs api.ClusterSpec
	_ = f.objs["/dc1/host/c1"].DecodeSpec(&cs)
	if !cs.DRS.Enabled || cs.DRS.Mode != "manual" || !cs.HA.Enabled || cs.HA.AdmissionControlEnabled {
		t.Errorf("cluster spec = %+v", cs)
	}
	if _, _, code := runPsc(t, f, "", nil, "cluster.change", "-drs-mode", "auto", "c1"); code != ExitUsage {
		t.Errorf("bad -drs-mode: exit %d", code)
	}
	_, errOut, code := runPsc(t, f, "", nil, "cluster.rule.create", "-name", "pin", "-enable", "-mandatory", "-vm-host", "-host", "esx-01,esx-02", "-affine=false", "db-01")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	_ = f.objs["/dc1/host/c1"].DecodeSpec(&cs)
	want := api.ClusterRule{Name: "pin", Enabled: true, Kind: ruleVMHost, Mandatory: true, Affine: false,
		VMs: []string{"/dc1/vm/db-01"}, Hosts: []string{"/dc1/host/c1/esx-01", "/dc1/host/c1/esx-02"}}
	if len(cs.Rules) != 1 || !reflect.DeepEqual(cs.Rules[0], want) {
		t.Errorf("rules = %+v", cs.Rules)
	}
	if _, _, code := runPsc(t, f, "", nil, "cluster.rule.create", "-name", "pin", "-vm-host", "-host", "esx-01", "db-01"); code != ExitConflict {
		t.Errorf("duplicate rule: exit %d, want %d", code, ExitConflict)
	}
	if _, _, code := runPsc(t, f, "", nil, "cluster.rule.create", "-name", "x", "-affinity", "-anti-affinity", "web-01", "web-02"); code != ExitUsage {
		t.Errorf("two rule kinds: exit %d", code)
	}
	out, errOut, code := runPsc(t, f, "", nil, "host.maintenance.enter", "esx-01")
	if code != 0 || out != "Entering maintenance mode on /dc1/host/c1/esx-01... OK\n" {
		t.Fatalf("exit %d: %q %s", code, out, errOut)
	}
	var hs api.HostSpec
	_ = f.objs["/dc1/host/c1/esx-01"].DecodeSpec(&hs)
	if !hs.Maintenance {
		t.Error("maintenance not set")
	}
}

func TestExitCodes(t *testing.T) {
	f := labInventory()
	tests := []struct {
		args []string
		env  map[string]string
		code int
		msg  string
	}{
		{[]string{"ls"}, map[string]string{"PSC_TOKEN": ""}, ExitUnauthorized, "DIR/admin.token"},
		{[]string{"nosuchverb"}, nil, ExitUsage, `unknown command "nosuchverb"`},
		{[]string{"ls", "-bogus"}, nil, ExitUsage, "unknown flag: --bogus"},
		{[]string{"pool.info"}, nil, ExitUsage, "at least one POOL"},
		{[]string{"pool.info", "nope"}, nil, ExitNotFound, "not found"},
		{[]string{"pool.create", "dev"}, nil, ExitConflict, "already exists"},
		{[]string{"pool.create", "-cpu.limit", "5", "-cpu.reservation", "10", "x"}, nil, ExitUsage, "cpu.limit 5 is below cpu.reservation 10"},
		{[]string{"pool.create", "-cpu.shares", "lots", "x"}, nil, ExitUsage, "-cpu.shares"},
		{[]string{"pool.destroy", "Resources"}, nil, ExitUsage, "root pool"},
		{[]string{"ls", "-t", "zz"}, nil, ExitUsage, "unknown type"},
	}
	for _, tt := range tests {
		_, errOut, code := runPsc(t, f, "", tt.env, tt.args...)
		if code != tt.code || !strings.HasPrefix(errOut, "psc: ") || !strings.Contains(errOut, tt.msg) {
			t.Errorf("psc %q: exit %d, stderr %q; want exit %d and %q", tt.args, code, errOut, tt.code, tt.msg)
		}
	}
	for err, code := range map[error]int{
		api.ErrInvalid: 2, api.ErrNotFound: 3, api.ErrConflict: 4, api.ErrQuotaExceeded: 5,
		api.ErrInsufficientResources: 5, api.ErrUnavailable: 6, api.ErrUnauthorized: 7, errors.New("x"): 1,
	} {
		if got := ExitCode(fmt.Errorf("wrapped: %w", err)); got != code {
			t.Errorf("ExitCode(%v) = %d, want %d", err, got, code)
		}
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
	f := labInventory()
	file := filepath.Join(t.TempDir(), "team.yaml")
	if err := os.WriteFile(file, []byte(devManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runPsc(t, f, "", nil, "apply", "-f", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "namespace /dc1/host/c1/Resources/team created\n" +
		"resourcequota /dc1/host/c1/Resources/team configured\n" +
		"virtualmachine /dc1/vm/api-01 created\n"
	if out != want {
		t.Errorf("first apply:\n%s\nwant:\n%s", out, want)
	}
	if s := vmSpec(f.objs["/dc1/vm/api-01"]); s.PowerState != api.PoweredOn || s.Pool != "/dc1/host/c1/Resources/team" {
		t.Errorf("VM spec = %+v", s)
	}
	if q := poolSpecOf(t, f, "/dc1/host/c1/Resources/team").Quota; q == nil || q.VMs != 4 || q.CPUMHz != 8000 {
		t.Errorf("quota = %+v", q)
	}
	// Again from stdin: nothing to do.
	out, errOut, code = runPsc(t, f, devManifest, nil, "apply", "-f", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := strings.ReplaceAll(strings.ReplaceAll(want, "created", "unchanged"), "configured", "unchanged"); out != want {
		t.Errorf("second apply:\n%s\nwant:\n%s", out, want)
	}
	// A changed quota is configured, the rest stays.
	out, _, _ = runPsc(t, f, strings.Replace(devManifest, `pods: "4"`, `pods: "5"`, 1), nil, "apply", "-f", "-")
	if !strings.Contains(out, "resourcequota /dc1/host/c1/Resources/team configured\n") || !strings.Contains(out, "api-01 unchanged") {
		t.Errorf("third apply:\n%s", out)
	}
	out, errOut, code = runPsc(t, f, devManifest, nil, "delete", "-f", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want = "virtualmachine /dc1/vm/api-01 deleted\n" +
		"resourcequota /dc1/host/c1/Resources/team deleted\n" +
		"namespace /dc1/host/c1/Resources/team deleted\n"
	if out != want {
		t.Errorf("delete:\n%s\nwant:\n%s", out, want)
	}
	if _, ok := f.objs["/dc1/host/c1/Resources/team"]; ok {
		t.Error("pool still there")
	}
	if _, errOut, code := runPsc(t, f, "kind: Bogus\n", nil, "apply", "-f", "-"); code != ExitUsage {
		t.Errorf("bad manifest: exit %d: %s", code, errOut)
	}
}
