package lab

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"

	"github.com/podsphere/podsphere/internal/testenv"
)

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		ok   bool
	}{
		{"defaults", Options{Binary: "/x"}, true},
		{"prefix with dash", Options{Prefix: "ps-l", Binary: "/x"}, false},
		{"prefix too long", Options{Prefix: "abcdefghi", Binary: "/x"}, false},
		{"prefix upper", Options{Prefix: "PSL", Binary: "/x"}, false},
		{"hosts 100", Options{Hosts: MaxHosts + 1, Binary: "/x"}, false},
		{"hosts -1", Options{Hosts: -1, Binary: "/x"}, false},
		{"runtime sim", Options{Runtime: "sim", Binary: "/x"}, true},
		{"runtime kvm", Options{Runtime: "kvm", Binary: "/x"}, false},
	} {
		err := tc.opts.complete()
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestNames(t *testing.T) {
	if got := hostAddr(1); got != "10.99.0.11" {
		t.Errorf("hostAddr(1) = %s", got)
	}
	if got := hostAddr(MaxHosts); got != "10.99.0.109" {
		t.Errorf("hostAddr(%d) = %s", MaxHosts, got)
	}
	// Interface names are at most 15 bytes: the longest prefix and host name must fit.
	if n := "v-" + hostName(MaxHosts); len(n) > 15 {
		t.Errorf("veth name %q too long", n)
	}
	if n := hostNS("abcdefgh", MaxHosts); n != "abcdefgh-esx-99" {
		t.Errorf("hostNS = %q", n)
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := &State{Prefix: "psl", Dir: dir, Runtime: "sim"}
	if err := s.addNetNS("psl-mgmt"); err != nil {
		t.Fatal(err)
	}
	if err := s.addNetNS("psl-mgmt"); err != nil { // recorded once
		t.Fatal(err)
	}
	start, ok := procStart(os.Getpid())
	if !ok {
		t.Fatal("procStart(self) failed")
	}
	if err := s.addProcess(Process{Name: "self", PID: os.Getpid(), Start: start}); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(dir)
	if err != nil || got == nil {
		t.Fatalf("LoadState: %v, %v", got, err)
	}
	if !slices.Equal(got.NetNS, []string{"psl-mgmt"}) || len(got.Processes) != 1 || !got.Processes[0].Alive() {
		t.Fatalf("state %+v", got)
	}
	if (Process{PID: os.Getpid(), Start: start + 1}).Alive() {
		t.Error("a PID with another start time counts as alive")
	}
	if s, err := LoadState(filepath.Join(dir, "nope")); s != nil || err != nil {
		t.Errorf("missing state: %v, %v", s, err)
	}
}

func TestProxyForwards(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello "+r.URL.Path) }))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	addrFile := filepath.Join(t.TempDir(), "addr")
	done := make(chan error, 1)
	go func() {
		done <- Proxy(ctx, "127.0.0.1:0", "", strings.TrimPrefix(srv.URL, "http://"), addrFile, log.New(io.Discard, "", 0))
	}()
	addr, err := waitFiles(ctx, 5*time.Second, addrFile)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		resp, err := http.Get("http://" + addr[0] + "/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "hello /x" {
			t.Fatalf("got %q", b)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// ---- end to end, as root ----

// requireLab skips unless the lab can run here: root and the Debian packages.
func requireLab(t *testing.T) {
	t.Helper()
	requireLabRuntime(t, "containerd")
}

// requireLabRuntime skips unless a lab of hosts with runtime rt can run
// here: root, and the Debian packages that runtime needs.
func requireLabRuntime(t *testing.T, rt string) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping lab end-to-end test in -short mode")
	}
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "skipping lab end-to-end test: needs root (creates network namespaces, veths, bridges, cgroups; starts containerd)")
	}
	if err := preflight(Options{Runtime: rt}); err != nil {
		testenv.Unavailable(t, "skipping lab end-to-end test: %v", err)
	}
}

// machineContainerd is the containerd the lab should find running: the one
// .ci/run starts for the suite (PODSPHERE_CONTAINERD_SOCKET), else the
// machine's. When neither answers, the lab starts its own.
func machineContainerd() string {
	if s := os.Getenv("PODSPHERE_CONTAINERD_SOCKET"); s != "" {
		return s
	}
	return SystemSocket
}

// buildBinaries builds podsphere and psc into a temp dir once per test binary run.
func buildBinaries(t *testing.T) (podsphere, psc string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "../cmd/podsphere", "../cmd/psc")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The HA fence, static, beside podsphere (where the agent looks for it).
	fence := exec.Command("go", "build", "-o", dir+"/", "../cmd/podsphere-fence")
	fence.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := fence.CombinedOutput(); err != nil {
		t.Fatalf("go build podsphere-fence: %v\n%s", err, out)
	}
	return filepath.Join(dir, "podsphere"), filepath.Join(dir, "psc")
}

// machine is what the lab must leave as it found it.
type machine struct {
	netns     []string // ip netns list, names only
	links     []string // ip -o link in the root namespace, stats and link indexes dropped
	iptables  []string // iptables-save of the root namespace, counters and comments dropped
	ctrdNS    []string // the machine's containerd namespaces, if it runs one
	runcState []string // /run/containerd/runc entries (the shim's per-namespace state)
}

func snapshot(t *testing.T) machine {
	t.Helper()
	var m machine
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			m.netns = append(m.netns, f[0])
		}
	}
	out, err := exec.Command("ip", "-o", "link").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		m.links = append(m.links, strings.Join(strings.Fields(l)[1:3], " ")) // "NAME: <FLAGS>"
	}
	out, err = exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, ":") { // ":CHAIN POLICY [pkts:bytes]"
			l = strings.Join(strings.Fields(l)[:2], " ")
		}
		m.iptables = append(m.iptables, l)
	}
	if sock := machineContainerd(); answering(context.Background(), sock) {
		if c, err := containerd.New(sock); err == nil {
			m.ctrdNS, _ = c.NamespaceService().List(context.Background())
			c.Close()
		}
	}
	entries, _ := os.ReadDir("/run/containerd/runc")
	for _, e := range entries {
		m.runcState = append(m.runcState, e.Name())
	}
	for _, l := range [][]string{m.netns, m.links, m.iptables, m.ctrdNS, m.runcState} {
		slices.Sort(l)
	}
	return m
}

// added lists what is in after but not in before and satisfies ours.
func added(before, after []string, ours func(string) bool) []string {
	var out []string
	for _, a := range after {
		if !slices.Contains(before, a) && ours(a) {
			out = append(out, a)
		}
	}
	return out
}

// labRun is one lab under test: its prefix, dir and binaries.
type labRun struct {
	t              *testing.T
	prefix, dir    string
	podsphere, psc string
	env            []string
	vmNetNS        []string // ps-<uid> of the VMs the test made
}

func newLabRun(t *testing.T, podsphere, psc string) *labRun {
	prefix := fmt.Sprintf("t%04x", rand.IntN(0x10000))
	l := &labRun{t: t, prefix: prefix, dir: filepath.Join(t.TempDir(), "lab"), podsphere: podsphere, psc: psc}
	t.Cleanup(func() {
		if _, err := os.Stat(statePath(l.dir)); err == nil || len(labNetNS(prefix)) > 0 {
			t.Logf("cleanup: lab %s still there; tearing it down", prefix)
			if out, err := l.run(l.podsphere, "lab", "down", "--dir", l.dir, "--prefix", prefix); err != nil {
				t.Errorf("cleanup: lab down: %v\n%s", err, out)
			}
		}
	})
	return l
}

func (l *labRun) run(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), l.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (l *labRun) must(bin string, args ...string) string {
	l.t.Helper()
	out, err := l.run(bin, args...)
	if err != nil {
		l.t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return out
}

func (l *labRun) up(hosts int) {
	l.t.Helper()
	l.upWith(hosts, "--containerd-socket", machineContainerd())
}

// upWith brings the lab up with hosts hosts and the extra lab up flags.
func (l *labRun) upWith(hosts int, extra ...string) {
	l.t.Helper()
	start := time.Now()
	out := l.must(l.podsphere, append([]string{"lab", "up", "--hosts", fmt.Sprint(hosts), "--dir", l.dir, "--prefix", l.prefix}, extra...)...)
	l.t.Logf("lab up --hosts %d %v: %s\n%s", hosts, extra, time.Since(start).Round(time.Millisecond), out)
	env, err := os.ReadFile(filepath.Join(l.dir, "env"))
	if err != nil {
		l.t.Fatal(err)
	}
	for _, f := range strings.Fields(string(env)) {
		if strings.HasPrefix(f, "PSC_") {
			l.env = append(l.env, f)
		}
	}
}

// vm creates a busybox httpd VM pinned to host, records its netns, and returns its IP.
func (l *labRun) vm(name, host string) string {
	l.t.Helper()
	l.must(l.psc, "vm.create", "-m", "64", "-host", host, "-cmd", "httpd -f -p 80 -h /www", name)
	ip := strings.TrimSpace(l.must(l.psc, "vm.ip", name))
	for _, line := range strings.Split(l.must(l.psc, "vm.info", name), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "UUID:" {
			l.vmNetNS = append(l.vmNetNS, "ps-"+f[1])
		}
	}
	return ip
}

// checkGone compares the machine with before and checks the lab's own traces.
func (l *labRun) checkGone(before machine) {
	l.t.Helper()
	after := snapshot(l.t)
	ours := func(s string) bool {
		return strings.HasPrefix(s, l.prefix+"-") || strings.Contains(s, " "+l.prefix+"-") || slices.Contains(l.vmNetNS, s)
	}
	all := func(string) bool { return true }
	for _, c := range []struct {
		what          string
		before, after []string
		filter        func(string) bool
	}{
		// Other packages' tests run in parallel and make netns of their own: only ours count.
		{"network namespaces", before.netns, after.netns, ours},
		{"links in the root namespace", before.links, after.links, all},
		{"iptables rules in the root namespace", before.iptables, after.iptables, all},
		{"containerd namespaces", before.ctrdNS, after.ctrdNS, all},
		{"/run/containerd/runc entries", before.runcState, after.runcState, ours},
	} {
		if extra := added(c.before, c.after, c.filter); len(extra) > 0 {
			l.t.Errorf("after lab down, new %s: %v", c.what, extra)
		}
	}
	if !slices.Equal(before.links, after.links) || !slices.Equal(before.iptables, after.iptables) {
		l.t.Errorf("root namespace changed:\nlinks before %v\nlinks after  %v\niptables before %v\niptables after  %v", before.links, after.links, before.iptables, after.iptables)
	}
	if _, err := os.Stat(l.dir); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(l.dir)
		l.t.Errorf("lab dir %s still there (%v)", l.dir, entries)
	}
	for _, ns := range []string{l.prefix + "-esx-01", l.prefix + "-esx-02", l.prefix + "-esx-03"} {
		for _, root := range []string{"/sys/fs/cgroup/podsphere/" + ns, "/sys/fs/cgroup/memory/podsphere/" + ns, "/sys/fs/cgroup/cpu/podsphere/" + ns} {
			if _, err := os.Stat(root); err == nil {
				l.t.Errorf("cgroup %s left behind", root)
			}
		}
	}
	if shims := shimsOf(filepath.Join(l.dir, "containerd", "containerd.sock")); len(shims) > 0 {
		l.t.Errorf("containerd shims left running: %v", shims)
	}
}

// TestLabUpDown builds a 3-host lab, runs a VM on each host, fetches a page
// across hosts, and checks that `lab down` leaves nothing behind, twice.
func TestLabUpDown(t *testing.T) {
	requireLab(t)
	podsphere, psc := buildBinaries(t)
	before := snapshot(t)
	l := newLabRun(t, podsphere, psc)
	l.up(3)

	status := l.must(podsphere, "lab", "status", "--dir", l.dir)
	if n := strings.Count(status, " connected"); n != 3 {
		t.Errorf("lab status shows %d connected hosts, want 3:\n%s", n, status)
	}
	if strings.Contains(status, "dead") {
		t.Errorf("lab status shows a dead process:\n%s", status)
	}
	if !strings.Contains(l.must(psc, "library.ls"), ImageName) {
		t.Errorf("the content library has no %s", ImageName)
	}
	var ips []string
	for i := 1; i <= 3; i++ {
		ips = append(ips, l.vm(fmt.Sprintf("web-%02d", i), hostName(i)))
	}
	for _, ns := range l.vmNetNS {
		if !netNSExists(ns) {
			t.Fatalf("VM netns %s not found: the leftover check below would prove nothing", ns)
		}
	}
	start := time.Now()
	page := l.must(psc, "guest.run", "web-01", "--", "wget", "-qO-", "http://"+ips[2]+"/")
	if !strings.Contains(page, "podsphere busybox") {
		t.Errorf("web-01 fetching web-03's page: %q", page)
	}
	t.Logf("cross-host fetch: %s", time.Since(start).Round(time.Millisecond))
	// The root namespace is untouched while the lab runs, too.
	during := snapshot(t)
	if !slices.Equal(before.links, during.links) || !slices.Equal(before.iptables, during.iptables) {
		t.Errorf("the lab changed the root namespace while up:\nlinks %v -> %v\niptables %v -> %v", before.links, during.links, before.iptables, during.iptables)
	}

	start = time.Now()
	out := l.must(podsphere, "lab", "down", "--dir", l.dir)
	t.Logf("lab down: %s\n%s", time.Since(start).Round(time.Millisecond), out)
	l.checkGone(before)
	out = l.must(podsphere, "lab", "down", "--dir", l.dir, "--prefix", l.prefix)
	if !strings.Contains(out, "is gone") {
		t.Errorf("second lab down: %s", out)
	}
	l.checkGone(before)
}

// TestLabDownAfterCrash kills every lab process with SIGKILL (vcenter,
// hosts, the forwarder, the lab's containerd) while VMs run, then checks
// that `lab down` still removes everything.
func TestLabDownAfterCrash(t *testing.T) {
	requireLab(t)
	podsphere, psc := buildBinaries(t)
	before := snapshot(t)
	l := newLabRun(t, podsphere, psc)
	l.up(2)
	l.vm("crash-01", "esx-01")
	l.vm("crash-02", "esx-02")
	// The VMs' own processes (httpd) must go too, though their parents die first.
	var guests []Process
	for _, ns := range l.vmNetNS {
		for _, pid := range pidsIn(filepath.Join("/run/netns", ns)) {
			if start, ok := procStart(pid); ok {
				guests = append(guests, Process{Name: ns, PID: pid, Start: start})
			}
		}
	}
	if len(l.vmNetNS) != 2 || len(guests) < 2 {
		t.Fatalf("VM netns %v, guest processes %v: want 2 VMs running", l.vmNetNS, guests)
	}

	s, err := LoadState(l.dir)
	if err != nil || s == nil {
		t.Fatalf("state: %v, %v", s, err)
	}
	for _, p := range s.Processes {
		if p.Alive() {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if status := l.must(podsphere, "lab", "status", "--dir", l.dir); !strings.Contains(status, "dead") {
		t.Errorf("lab status after the crash shows no dead process:\n%s", status)
	}
	start := time.Now()
	out := l.must(podsphere, "lab", "down", "--dir", l.dir)
	t.Logf("lab down after crash: %s\n%s", time.Since(start).Round(time.Millisecond), out)
	l.checkGone(before)
	for _, g := range guests {
		if g.Alive() {
			t.Errorf("guest process %d of %s survives lab down", g.PID, g.Name)
		}
	}
	l.must(podsphere, "lab", "down", "--dir", l.dir, "--prefix", l.prefix)
	l.checkGone(before)
}
