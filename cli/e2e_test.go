package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

// binDir holds podsphere and psc, built once by TestMain; buildErr says why
// the end-to-end tests skip when they could not be built.
var (
	binDir   string
	buildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "psc-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	if os.Getenv("PSC_E2E") != "off" {
		cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/podsphere", "./cmd/psc")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/podsphere ./cmd/psc: %v\n%s", err, out)
		}
	} else {
		buildErr = errors.New("PSC_E2E=off")
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lab is a running vcenter with sim hosts and the psc environment to reach it.
type lab struct {
	t       *testing.T
	dataDir string
	url     string
	gossip  string
	token   string
}

// start runs a daemon in the background, logging to DIR/name.log, and kills it at cleanup.
func (l *lab) start(name string, args ...string) {
	l.t.Helper()
	logf, err := os.Create(filepath.Join(l.dataDir, "..", name+".log"))
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "podsphere"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if l.t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			l.t.Logf("--- %s log (tail)\n%s", name, tail(string(b), 40))
		}
	})
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// psc runs the psc binary and returns stdout, stderr and the exit code.
func (l *lab) psc(args ...string) (string, string, int) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "psc"), args...)
	cmd.Env = append(os.Environ(), "PSC_URL="+l.url, "PSC_TOKEN="+l.token, "PSC_DATACENTER=dc1", "PSC_CLUSTER=c1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		l.t.Fatalf("psc %q: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// ok runs psc and fails the test unless it exits 0.
func (l *lab) ok(args ...string) string {
	l.t.Helper()
	out, errOut, code := l.psc(args...)
	if code != 0 {
		l.t.Fatalf("psc %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// json runs psc with -json and decodes its output into v.
func (l *lab) json(v any, args ...string) {
	l.t.Helper()
	out := l.ok(append([]string{"-json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		l.t.Fatalf("psc -json %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func contains(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s: missing %q in:\n%s", what, w, out)
		}
	}
}

func startLab(t *testing.T) *lab {
	if os.Getenv("PSC_E2E") == "off" {
		t.Skip("end-to-end test skipped: PSC_E2E=off")
	}
	if buildErr != nil {
		t.Fatalf("end-to-end test needs the binaries: %v", buildErr)
	}
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	root := t.TempDir()
	l := &lab{t: t, dataDir: filepath.Join(root, "vcenter")}
	if err := os.MkdirAll(l.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	l.gossip = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	l.url = "http://" + listen
	l.start("vcenter", "vcenter", "--data-dir", l.dataDir, "--listen", listen, "--gossip", l.gossip)
	waitFor(t, 15*time.Second, "vcenter to serve", func() bool {
		b, err := os.ReadFile(filepath.Join(l.dataDir, "admin.token"))
		if err != nil {
			return false
		}
		l.token = strings.TrimSpace(string(b))
		resp, err := http.Get(l.url + "/api/v1/about")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return l
}

func (l *lab) startHosts(n int) {
	joinToken, err := os.ReadFile(filepath.Join(l.dataDir, "join.token"))
	if err != nil {
		l.t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("esx-%02d", i)
		l.start(name, "host", "--name", name, "--cluster", "/dc1/host/c1", "--vcenter", l.url,
			"--join", l.gossip, "--join-token", strings.TrimSpace(string(joinToken)), "--gossip-bind", "127.0.0.1:0",
			"--runtime", "sim", "--cpu", "20000", "--mem", "65536")
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hostInfo mirrors host.info -json.
type hostInfo struct {
	Name   string         `json:"name"`
	Path   string         `json:"path"`
	Status api.HostStatus `json:"status"`
	VMs    int            `json:"vms"`
}

// TestAdminSession drives a real vcenter and three sim hosts through the
// session an admin would type: build the inventory, carve a pool with
// reservations and a quota, power VMs on, look around, and see power-ons
// refused by the quota and by the reservation with vcenter's reasons.
func TestAdminSession(t *testing.T) {
	l := startLab(t)

	var about api.About
	l.json(&about, "about")
	if about.Name == "" || about.APIVersion == "" {
		t.Errorf("about -json = %+v", about)
	}

	contains(t, "datacenter.create", l.ok("datacenter.create", "dc1"), "Created datacenter /dc1")
	contains(t, "cluster.create", l.ok("cluster.create", "c1"), "Created cluster /dc1/host/c1")
	l.startHosts(3)
	waitFor(t, 30*time.Second, "three connected hosts", func() bool {
		var hs []hostInfo
		l.json(&hs, "host.info")
		n := 0
		for _, h := range hs {
			if h.Status.State == api.HostConnected {
				n++
			}
		}
		return n == 3
	})

	// A pool with fixed reservations (6 GHz, 8 GB) and a quota: 5 VMs, 4 GB of VM memory.
	contains(t, "pool.create", l.ok("pool.create", "-cpu.reservation=6000", "-cpu.expandable=false",
		"-mem.reservation", "8192", "-mem.expandable=false", "dev"), "Created pool /dc1/host/c1/Resources/dev")
	contains(t, "quota.set", l.ok("quota.set", "dev", "-vms", "5", "-mem", "4096"), "Set quota of pool /dc1/host/c1/Resources/dev")
	for i := 1; i <= 3; i++ {
		out := l.ok("vm.create", "-pool", "dev", "-m", "1024", "-cpu.reservation", "1000", fmt.Sprintf("web-%02d", i))
		contains(t, "vm.create", out, fmt.Sprintf("Created VM /dc1/vm/web-%02d in pool /dc1/host/c1/Resources/dev", i), "OK (host esx-")
	}

	tree := l.ok("tree")
	contains(t, "tree", tree, "dc1 [datacenter]", "c1 [cluster]", "esx-01 [host connected]", "Resources [pool]", "dev [pool]")
	if n := len(regexp.MustCompile(`web-0\d \[vm poweredOn on esx-0\d\]`).FindAllString(tree, -1)); n != 3 {
		t.Errorf("tree shows %d powered-on VMs, want 3:\n%s", n, tree)
	}

	lsl := l.ok("ls", "-l", "/dc1/host/c1")
	contains(t, "ls -l", lsl, "Path", "Type", "/dc1/host/c1/Resources   ResourcePool", "/dc1/host/c1/esx-02", "HostSystem", "connected, CPU 20000MHz, Mem 65536MB")
	var vms []api.Object
	l.json(&vms, "ls", "/dc1/vm")
	if len(vms) != 3 || vms[0].Kind != api.KindVirtualMachine {
		t.Errorf("ls -json /dc1/vm = %d objects", len(vms))
	}

	info := l.ok("pool.info", "dev")
	contains(t, "pool.info", info, "Name:               dev\n", "  Path:             /dc1/host/c1/Resources/dev\n",
		"  CPU Reservation:  6000MHz (expandable=false)\n", "  CPU Limit:        unlimited\n",
		"  CPU Unreserved:   3000MHz for pools, 3000MHz for VMs\n", "  Mem Reservation:  8192MB (expandable=false)\n")
	var pis []api.PoolInfo
	l.json(&pis, "pool.info", "c1/Resources/dev")
	if len(pis) != 1 || pis[0].CPU.ReservationUsed != 3000 || pis[0].CPU.UnreservedForVm != 3000 {
		t.Errorf("pool.info -json = %+v", pis)
	}

	qi := l.ok("quota.info", "dev")
	contains(t, "quota.info", qi, "Resource", "Used / Limit", "vms            3 / 5\n", "mem            3072MB / 4096MB\n", "cpu            ", "unlimited")
	var q api.QuotaInfo
	l.json(&q, "quota.info", "dev")
	if q.Used.VMs != 3 || q.Limits.VMs != 5 || q.Limits.CPUMHz != -1 {
		t.Errorf("quota.info -json = %+v", q)
	}

	hi := l.ok("host.info", "esx-01", "esx-02", "esx-03")
	contains(t, "host.info", hi, "Name:               esx-01\n", "  State:            connected\n", "  CPU capacity:     20000MHz\n", "  Memory capacity:  65536MB\n", "  Last seen:")
	var hs []hostInfo
	l.json(&hs, "host.info")
	total := 0
	for _, h := range hs {
		total += h.VMs
	}
	if len(hs) != 3 || total != 3 {
		t.Errorf("host.info -json: %d hosts with %d VMs, want 3 and 3", len(hs), total)
	}

	// Refused by the quota: 3 GB + 2 GB of VM memory > 4 GB. The VM stays, powered off.
	out, errOut, code := l.psc("vm.create", "-pool", "dev", "-m", "2048", "web-04")
	if code != 5 || !strings.HasPrefix(errOut, "psc: ") || !strings.Contains(errOut, "quota") {
		t.Errorf("power-on over quota: exit %d, stderr %q (want 5 and the quota reason)", code, errOut)
	}
	contains(t, "vm.create over quota", out, "Created VM /dc1/vm/web-04", "Powering on /dc1/vm/web-04... failed")
	contains(t, "vm.info web-04", l.ok("vm.info", "web-04"), "Power state:      poweredOff")
	t.Logf("quota refusal: %s", strings.TrimSpace(errOut))

	// Refused by the reservation: dev is fixed and has 3000 MHz left, web-05 wants 4000.
	_, errOut, code = l.psc("vm.create", "-pool", "dev", "-m", "512", "-cpu.reservation", "4000", "web-05")
	if code != 5 || !strings.Contains(errOut, "cannot power on /dc1/vm/web-05") {
		t.Errorf("power-on over reservation: exit %d, stderr %q (want 5 and the reason)", code, errOut)
	}
	t.Logf("reservation refusal: %s", strings.TrimSpace(errOut))
	// Quota on the VM count is checked when a VM is created.
	_, errOut, code = l.psc("vm.create", "-pool", "dev", "-on=false", "web-06")
	if code != 5 {
		t.Errorf("6th VM in a 5-VM quota: exit %d, stderr %q", code, errOut)
	}

	ev := l.ok("events", "-n", "100")
	line := regexp.MustCompile(`(?m)^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[\w+\] \[\d+\] \[\w+\] .+$`)
	if n := len(line.FindAllString(ev, -1)); n == 0 || n != strings.Count(ev, "\n") {
		t.Errorf("events: %d of %d lines have the [time] [category] [key] [type] message form:\n%s", n, strings.Count(ev, "\n"), ev)
	}
	contains(t, "events", ev, "web-01")
	var evs []api.EventSpec
	l.json(&evs, "events", "/dc1/vm/web-05")
	for i, e := range evs {
		if !strings.HasPrefix(e.Target, "/dc1/vm/web-05") || i > 0 && e.Key <= evs[i-1].Key {
			t.Errorf("events -json /dc1/vm/web-05: %+v", evs)
			break
		}
	}
	if !slices.ContainsFunc(evs, func(e api.EventSpec) bool { return e.Type == "VmFailedToPowerOnEvent" }) {
		t.Errorf("no VmFailedToPowerOnEvent about web-05's refused power-on: %+v", evs)
	}

	// Change, power and clean up.
	contains(t, "vm.power -off", l.ok("vm.power", "-off", "web-01"), "Powering off /dc1/vm/web-01... OK")
	contains(t, "vm.destroy", l.ok("vm.destroy", "web-04", "web-05"), "Destroyed VM /dc1/vm/web-04", "Destroyed VM /dc1/vm/web-05")
	contains(t, "pool.change", l.ok("pool.change", "-cpu.reservation", "7000", "dev"), "Reconfigured pool")
	contains(t, "pool.info after change", l.ok("pool.info", "dev"), "5000MHz for VMs")

	ip := strings.TrimSpace(l.ok("vm.ip", "-wait", "20s", "web-02"))
	if net.ParseIP(ip) == nil {
		t.Errorf("vm.ip web-02 = %q, want an IP address", ip)
	}

	// A manifest: create, then the same again changes nothing.
	manifest := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n---\n" +
		"apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: q\n  namespace: team\nspec:\n  hard:\n    pods: \"2\"\n"
	file := filepath.Join(t.TempDir(), "team.yaml")
	if err := os.WriteFile(file, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	contains(t, "apply", l.ok("apply", "-f", file), "Namespace team -> /dc1/host/c1/Resources/team created\n", "ResourceQuota q -> /dc1/host/c1/Resources/team configured\n")
	contains(t, "apply again", l.ok("apply", "-f", file), "Namespace team -> /dc1/host/c1/Resources/team unchanged\n", "ResourceQuota q -> /dc1/host/c1/Resources/team unchanged\n")
	contains(t, "delete", l.ok("delete", "-f", file), "ResourceQuota q -> /dc1/host/c1/Resources/team deleted\nNamespace team -> /dc1/host/c1/Resources/team deleted\n")

	if _, errOut, code := l.psc("pool.info", "nope"); code != 3 {
		t.Errorf("pool.info nope: exit %d %q, want 3", code, errOut)
	}
	tk := l.ok("tasks")
	contains(t, "tasks", tk, "Task", "Target", "Initiator", "Queued", "Started", "Completed", "Result")
}
