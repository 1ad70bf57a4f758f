package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/host/network"
)

// fakeBinary writes a shell script standing in for podsphere: `SUB --help`
// prints help[SUB] and succeeds, any other subcommand's --help fails.
func fakeBinary(t *testing.T, help map[string]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("#!/bin/sh\ncase \"$1\" in\n")
	for sub, text := range help {
		fmt.Fprintf(&b, "%s) cat <<'EOF'\n%s\nEOF\nexit 0;;\n", sub, text)
	}
	b.WriteString("*) echo \"unknown command $1\" >&2; exit 1;;\nesac\n")
	p := filepath.Join(t.TempDir(), "podsphere")
	if err := os.WriteFile(p, []byte(b.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHAWiringWithoutHA(t *testing.T) {
	bin := fakeBinary(t, map[string]string{
		"vcenter": "Flags:\n      --data-dir string   where\n      --ha-datastore-x string   not it",
		"host":    "Flags:\n      --name string   host name",
	})
	s := &State{Dir: "/lab", VCenterURL: "http://10.99.0.2:8989"}
	d := s.haWiring(context.Background(), bin, "containerd")
	if d.VCenter != nil || d.Host != nil || d.FDM != nil {
		t.Fatalf("a binary without HA got HA args: vcenter %v, host %v, fdm %v", d.VCenter, d.Host, d.FDM != nil)
	}
	if !strings.Contains(d.Summary, "no HA pieces") {
		t.Errorf("summary %q does not say HA is absent", d.Summary)
	}
}

func TestHAWiringWithHA(t *testing.T) {
	bin := fakeBinary(t, map[string]string{
		"vcenter": "Flags:\n      --ha-datastore string   heartbeat datastore",
		"host":    "Flags:\n      --ha-datastore string   heartbeat datastore\n      --name string",
		"fdm": strings.Join([]string{"Flags:", "      --name string", "      --cluster string", "      --vcenter string",
			"      --ha-datastore string", "      --address string", "      --state-dir string",
			"      --containerd-socket string", "      --containerd-namespace string"}, "\n"),
	})
	s := &State{Dir: "/lab", VCenterURL: "http://10.99.0.2:8989", Containerd: &Containerd{Socket: "/lab/containerd/containerd.sock"}}
	d := s.haWiring(context.Background(), bin, "containerd")
	want := []string{"--ha-datastore", "/lab/shared"}
	if !slices.Equal(d.VCenter, want) || !slices.Equal(d.Host, want) {
		t.Fatalf("vcenter %v, host %v: want %v each", d.VCenter, d.Host, want)
	}
	if d.FDM == nil {
		t.Fatal("fdm --help succeeds but no FDM is started")
	}
	got := d.FDM(Host{Name: "esx-01", Address: "10.99.0.11", Namespace: "psl-esx-01"}, "TOKEN")
	wantFDM := []string{"fdm", "--name", "esx-01", "--cluster", "/dc1/host/c1", "--vcenter", "http://10.99.0.2:8989",
		"--ha-datastore", "/lab/shared", "--address", "10.99.0.11", "--state-dir", "/lab/fdm/esx-01",
		"--containerd-socket", "/lab/containerd/containerd.sock", "--containerd-namespace", "psl-esx-01"}
	// --join-token and --runtime are not in this fdm's help: not passed, or it would refuse to start.
	if !slices.Equal(got, wantFDM) {
		t.Errorf("fdm args\n got %v\nwant %v", got, wantFDM)
	}
	// On simulated hosts an FDM that cannot run on sim is not started.
	if d := s.haWiring(context.Background(), bin, "sim"); d.FDM != nil {
		t.Error("an FDM without --runtime is started on a sim lab")
	}
	// One that can is told where the sim agent's API is: its VMs live there.
	simBin := fakeBinary(t, map[string]string{
		"vcenter": "Flags:\n      --ha-datastore string",
		"host":    "Flags:\n      --ha-datastore string",
		"fdm":     "Flags:\n      --name string\n      --runtime string\n      --agent-api string\n      --join-token string",
	})
	d = s.haWiring(context.Background(), simBin, "sim")
	if d.FDM == nil {
		t.Fatal("an FDM with --runtime is not started on a sim lab")
	}
	got = d.FDM(Host{Name: "esx-01", Address: "10.99.0.11"}, "TOKEN")
	wantFDM = []string{"fdm", "--name", "esx-01", "--join-token", "TOKEN", "--runtime", "sim", "--agent-api", "10.99.0.11:8990"}
	if !slices.Equal(got, wantFDM) {
		t.Errorf("sim fdm args\n got %v\nwant %v", got, wantFDM)
	}
}

func TestSampleDuplicates(t *testing.T) {
	s := Sample{Running: map[string][]string{"esx-01": {"a", "b"}, "esx-02": {"b"}, "esx-03": {"c", "b"}, "esx-04": {}}}
	dup := s.Duplicates()
	if len(dup) != 1 || !slices.Equal(dup["b"], []string{"esx-01", "esx-02", "esx-03"}) {
		t.Errorf("Duplicates = %v, want only b on esx-01..03", dup)
	}
	if got := s.String(); got != "esx-01=[a b] esx-02=[b] esx-03=[c b] esx-04=[]" {
		t.Errorf("String = %q", got)
	}
}

func TestHostProcesses(t *testing.T) {
	s := &State{Processes: []Process{
		{Name: "vcenter"}, {Name: "esx-01"}, // a state from before Process.Host: the agent is named after its host
		{Name: "esx-02", Host: "esx-02"}, {Name: "esx-02-fdm", Host: "esx-02"}, {Name: "esx-01-fdm", Host: "esx-01"},
	}}
	if got := s.hostProcesses("esx-01"); !slices.Equal(got, []int{1, 4}) {
		t.Errorf("esx-01's daemons: %v, want [1 4]", got)
	}
	if got := s.hostProcesses("esx-02"); !slices.Equal(got, []int{2, 3}) {
		t.Errorf("esx-02's daemons: %v, want [2 3]", got)
	}
}

func TestFaultVerbsNeedALab(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the fault verbs check for root first")
	}
	err := CrashHost(context.Background(), Options{Dir: filepath.Join(t.TempDir(), "none"), Binary: "/x"}, "esx-01")
	if err == nil || !strings.Contains(err.Error(), "no lab") {
		t.Errorf("crash without a lab: %v", err)
	}
}

// ---- end to end, as root ----

// linkUp says whether the host's management NIC has carrier (its switch port is up).
func (l *labRun) linkUp(host string) bool {
	l.t.Helper()
	out := l.must("ip", "-n", l.prefix+"-"+host, "-o", "link", "show", HostIfName)
	return strings.Contains(out, "LOWER_UP")
}

// reaches says whether a TCP connection to addr opens from inside the host's network namespace within 1 s.
func (l *labRun) reaches(host, addr string) bool {
	err := network.InNetNS(filepath.Join(network.NetNSDir, l.prefix+"-"+host), func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	return err == nil
}

// waitHosts waits until vcenter reports every host in want in its state.
func (l *labRun) waitHosts(c *client.Client, timeout time.Duration, want map[string]string) {
	l.t.Helper()
	var last map[string]string
	err := waitUntil(context.Background(), timeout, fmt.Sprintf("host states %v", want), func() (bool, error) {
		states, err := hostStates(context.Background(), c)
		if err != nil {
			return false, nil
		}
		last = states
		for h, st := range want {
			if states[h] != st {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		l.t.Fatalf("%v (last seen %v)", err, last)
	}
}

// waitSample waits until a sample satisfies ok and returns it.
func (l *labRun) waitSample(sm *Sampler, timeout time.Duration, what string, ok func(Sample) bool) Sample {
	l.t.Helper()
	var last Sample
	var lastErr error
	err := waitUntil(context.Background(), timeout, what, func() (bool, error) {
		last, lastErr = sm.Sample(context.Background())
		return lastErr == nil && ok(last), nil
	})
	if err != nil {
		l.t.Fatalf("%v (last sample %v, %v)", err, last, lastErr)
	}
	return last
}

func (l *labRun) faultOf(host string) string {
	l.t.Helper()
	s, err := LoadState(l.dir)
	if err != nil || s == nil {
		l.t.Fatalf("state: %v", err)
	}
	return s.host(host).Fault
}

// TestLabFaults drills one 3-host lab through every fault verb: crash and
// restart a host running a VM, isolate and heal another, partition two,
// then crash one again and check that lab down leaves the machine as it was.
func TestLabFaults(t *testing.T) {
	requireLab(t)
	podsphere, psc := buildBinaries(t)
	before := snapshot(t)
	l := newLabRun(t, podsphere, psc)
	l.up(3)
	lab := func(args ...string) string {
		t.Helper()
		start := time.Now()
		out := l.must(podsphere, append(append([]string{"lab"}, args...), "--dir", l.dir)...)
		t.Logf("lab %s (%s): %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
		return out
	}
	s, err := LoadState(l.dir)
	if err != nil || s == nil {
		t.Fatalf("state: %v, %v", s, err)
	}
	c, err := client.New(s.LocalURL, readToken(l.dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(l.dir, SharedDir)); err != nil || !fi.IsDir() {
		t.Errorf("lab up made no shared directory for the heartbeat datastore: %v", err)
	}

	// One more per-host daemon beside the agent and its FDM: crash and
	// restart must cover every daemon recorded for the host.
	daemons := len(s.hostProcesses("esx-01")) + 1
	side, err := startDaemon("esx-01-side", s.Hosts[0].NetNS, []string{"sleep", "3600"}, filepath.Join(l.dir, "logs", "esx-01-side.log"))
	if err != nil {
		t.Fatal(err)
	}
	side.Host = "esx-01"
	if err := s.addProcess(side); err != nil {
		t.Fatal(err)
	}

	sm, err := NewSampler(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	l.vm("ha-01", "esx-01")
	uid := strings.TrimPrefix(l.vmNetNS[0], "ps-")
	l.waitSample(sm, 30*time.Second, "ha-01 running on esx-01", func(s Sample) bool {
		return slices.Equal(s.Running["esx-01"], []string{uid})
	})
	guests := pidsIn(filepath.Join(network.NetNSDir, l.vmNetNS[0]))
	if len(guests) == 0 {
		t.Fatal("ha-01 has no process in its netns: the crash check below would prove nothing")
	}

	// Crash: every daemon of esx-01 and its VM die, its link goes down, vcenter notices.
	lab("host.crash", "esx-01")
	s, _ = LoadState(l.dir)
	for _, i := range s.hostProcesses("esx-01") {
		if p := s.Processes[i]; p.Alive() {
			t.Errorf("after host.crash, %s (pid %d) is alive", p.Name, p.PID)
		}
	}
	if n := len(s.hostProcesses("esx-01")); n != daemons {
		t.Errorf("esx-01 has %d daemons recorded, want %d (agent, FDM and side daemon)", n, daemons)
	}
	if left := pidsIn(filepath.Join(network.NetNSDir, l.vmNetNS[0])); len(left) > 0 {
		t.Errorf("after host.crash, ha-01's processes %v still run", left)
	}
	if smp, err := sm.Sample(context.Background()); err != nil || len(smp.Running["esx-01"]) != 0 {
		t.Errorf("after host.crash the sampler sees on esx-01: %v (%v)", smp.Running["esx-01"], err)
	}
	if l.linkUp("esx-01") {
		t.Error("after host.crash esx-01's management link is up")
	}
	if st := l.must(podsphere, "lab", "status", "--dir", l.dir); !strings.Contains(st, "crashed") {
		t.Errorf("lab status does not show the crash:\n%s", st)
	}
	l.waitHosts(c, 20*time.Second, map[string]string{"esx-01": api.HostNotResponding, "esx-02": api.HostConnected, "esx-03": api.HostConnected})
	if out, err := l.run(podsphere, "lab", "host.heal", "esx-01", "--dir", l.dir); err == nil {
		t.Errorf("host.heal of a crashed host succeeds: %s", out)
	}

	// Restart: link up, both daemons back, the VM (still assigned to esx-01) runs there once.
	lab("host.restart", "esx-01")
	if !l.linkUp("esx-01") {
		t.Error("after host.restart esx-01's management link is down")
	}
	s, _ = LoadState(l.dir)
	for _, i := range s.hostProcesses("esx-01") {
		if p := s.Processes[i]; !p.Alive() {
			t.Errorf("after host.restart, %s is not running", p.Name)
		}
	}
	l.waitHosts(c, 30*time.Second, map[string]string{"esx-01": api.HostConnected})
	smp := l.waitSample(sm, 30*time.Second, "ha-01 running again on esx-01", func(s Sample) bool {
		return slices.Equal(s.Running["esx-01"], []string{uid})
	})
	if once, err := RunningVMs(context.Background(), l.dir); err != nil || !slices.Equal(once["esx-01"], []string{uid}) || len(once) != 3 {
		t.Errorf("RunningVMs after host.restart: %v, %v; want ha-01 on esx-01 and an entry per host", once, err)
	}
	if dup := smp.Duplicates(); len(dup) > 0 {
		t.Errorf("after host.restart VMs run twice: %v", dup)
	}
	if f := l.faultOf("esx-01"); f != "" {
		t.Errorf("after host.restart esx-01's fault is %q", f)
	}

	// Isolate: link down, agent alive; heal: connected again.
	lab("host.isolate", "esx-02")
	if l.linkUp("esx-02") {
		t.Error("after host.isolate esx-02's management link is up")
	}
	s, _ = LoadState(l.dir)
	if p := s.process("esx-02"); p == nil || !p.Alive() {
		t.Error("host.isolate killed esx-02's agent")
	}
	l.waitHosts(c, 20*time.Second, map[string]string{"esx-02": api.HostNotResponding})
	lab("host.heal", "esx-02")
	if !l.linkUp("esx-02") {
		t.Error("after host.heal esx-02's management link is down")
	}
	l.waitHosts(c, 30*time.Second, map[string]string{"esx-02": api.HostConnected})

	// Partition esx-01 and esx-02 away from vcenter and esx-03.
	lab("partition", "esx-01,esx-02")
	s, _ = LoadState(l.dir)
	vcAPI := fmt.Sprintf("%s:%d", VCenterAddr, APIPort)
	agent := func(i int) string { return fmt.Sprintf("%s:%d", hostAddr(i), AgentPort) }
	if !l.reaches("esx-01", agent(2)) {
		t.Error("partitioned esx-01 cannot reach esx-02, in its own partition")
	}
	if l.reaches("esx-01", vcAPI) || l.reaches("esx-02", agent(3)) {
		t.Error("partitioned hosts still reach vcenter or esx-03")
	}
	if !l.reaches("esx-03", vcAPI) {
		t.Error("esx-03, outside the partition, cannot reach vcenter")
	}
	l.waitHosts(c, 20*time.Second, map[string]string{"esx-01": api.HostNotResponding, "esx-02": api.HostNotResponding, "esx-03": api.HostConnected})
	if st := l.must(podsphere, "lab", "status", "--dir", l.dir); !strings.Contains(st, "partitioned (part1 with esx-02)") {
		t.Errorf("lab status does not show the partition:\n%s", st)
	}
	lab("host.heal", "esx-01")
	lab("host.heal", "esx-02")
	// The port goes back on the bridge at once; a first packet may wait
	// for the bridge to learn it again.
	if err := waitUntil(context.Background(), 10*time.Second, "healed hosts reaching vcenter and esx-03", func() (bool, error) {
		return l.reaches("esx-01", vcAPI) && l.reaches("esx-02", agent(3)), nil
	}); err != nil {
		t.Error(err)
	}
	l.waitHosts(c, 30*time.Second, map[string]string{"esx-01": api.HostConnected, "esx-02": api.HostConnected, "esx-03": api.HostConnected})

	// A crash left in place, then down: nothing may remain.
	lab("host.crash", "esx-01")
	lab("partition", "esx-02")
	out := l.must(podsphere, "lab", "down", "--dir", l.dir)
	t.Logf("lab down after faults:\n%s", out)
	l.checkGone(before)
	l.must(podsphere, "lab", "down", "--dir", l.dir, "--prefix", l.prefix)
	l.checkGone(before)
}
