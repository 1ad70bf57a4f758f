package lab

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// TestHA drills vSphere HA on a real 3-host lab (its hosts run their HA
// process and a heartbeat datastore on DIR/shared), as an admin would with
// psc ha.drill: a crashed host's protected VMs and replica-set members run
// elsewhere; killing only a host's agent moves nothing and runs nothing
// twice; an isolated host with response powerOff stops its VMs, which run
// elsewhere, never twice; with response disabled they stay; and HA
// admission control refuses a power-on that would eat the failover
// capacity, naming the policy.
func TestHA(t *testing.T) {
	requireLab(t)
	podsphere, psc := buildBinaries(t)
	before := snapshot(t)
	l := newLabRun(t, podsphere, psc)
	l.up(3)
	l.env = append(l.env, "PSC_LAB="+l.dir)
	s, err := LoadState(l.dir)
	if err != nil || s == nil {
		t.Fatalf("state: %v", err)
	}
	c, err := client.New(s.LocalURL, readToken(l.dir))
	if err != nil {
		t.Fatal(err)
	}
	sm, err := NewSampler(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()

	l.must(psc, "cluster.change", "-ha-enabled", "-ha-isolation-response", "powerOff", "c1")
	files := t.TempDir() // not the lab's dir: lab down must leave nothing of it
	manifest := filepath.Join(files, "web.yaml")
	if err := os.WriteFile(manifest, []byte(haDeployment), 0o644); err != nil {
		t.Fatal(err)
	}
	l.must(psc, "apply", "-f", manifest)
	l.must(psc, "vm.create", "-m", "64", "-cmd", "httpd -f -p 80", "db") // placed by DRS: HA may move it
	l.waitReady(c, 4)

	// 1. Crash the host of db: every protected VM on it runs and is ready elsewhere.
	victim := l.hostOf(c, "/dc1/vm/db")
	svg := filepath.Join(files, "crash.svg")
	rep := l.drill("-mode", "crash", "-svg", svg, victim)
	if len(rep.VMs) == 0 {
		t.Fatal("the crash drill protected no VM")
	}
	for _, v := range rep.VMs {
		if v.Outcome != "restarted" || v.To == victim || v.To == "" {
			t.Errorf("crash: %s: %s to %q, want restarted on another host", v.VM, v.Outcome, v.To)
		}
	}
	t.Logf("crash of %s: every protected VM back in %.2f s, %d samples, %d duplicates", victim, rep.RecoverySeconds, rep.Samples, len(rep.Duplicates))
	checkSVG(t, svg)
	if out := l.must(psc, "ha.drill.ls"); !strings.Contains(out, rep.Name) || !strings.Contains(out, "passed") {
		t.Errorf("ha.drill.ls does not list %s as passed:\n%s", rep.Name, out)
	}
	if out := l.must(psc, "ha.drill.info", rep.Name); !strings.Contains(out, "restarted") {
		t.Errorf("ha.drill.info %s:\n%s", rep.Name, out)
	}
	l.waitReady(c, 4)

	// 1b. vcenter killed (-9) in the middle of a failover: once restarted
	// it finishes it, with no VM run twice and none forgotten.
	victim = l.hostOf(c, "/dc1/vm/db")
	protected := l.vmsOn(c, victim)
	stop := make(chan struct{})
	dupes := make(chan string, 1)
	var sampled int
	go func() {
		defer close(dupes)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if smp, err := sm.Sample(context.Background()); err == nil {
				sampled++
				if d := smp.Duplicates(); len(d) > 0 {
					dupes <- fmt.Sprint(d)
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	if err := CrashHost(context.Background(), Options{Dir: l.dir, Out: io.Discard}, victim); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // about when HA declares the host failed and starts restarting
	vc := l.process("vcenter")
	if err := syscall.Kill(vc.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	l.restartProcess(vc)
	var last string
	if err := waitUntil(context.Background(), 60*time.Second, "the crashed host's VMs running elsewhere after a vcenter restart", func() (bool, error) {
		for _, vm := range protected {
			o, err := c.Get(context.Background(), vm)
			if err != nil {
				last = fmt.Sprintf("%s: %v", vm, err)
				return false, nil
			}
			var s api.VMSpec
			var st api.VMStatus
			_ = o.DecodeSpec(&s)
			_ = o.DecodeStatus(&st)
			if api.Base(s.Host) == victim || st.Host != s.Host || !st.Ready {
				last = fmt.Sprintf("%s: registered on %s, status %s on %s, ready %v, HA %+v", vm, s.Host, st.PowerState, st.Host, st.Ready, st.HA)
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		log, _ := os.ReadFile(vc.Log)
		if len(log) > 4000 {
			log = log[len(log)-4000:]
		}
		t.Fatalf("%v; last: %s\nvcenter log:\n%s", err, last, log)
	}
	if err := RestartHost(context.Background(), Options{Dir: l.dir, Out: io.Discard}, victim); err != nil {
		t.Fatal(err)
	}
	l.waitHosts(c, 60*time.Second, map[string]string{victim: api.HostConnected})
	l.waitReady(c, 4)
	close(stop)
	if d, ok := <-dupes; ok {
		t.Fatalf("vcenter killed mid-failover: VMs ran twice: %s", d)
	}
	if sampled < 20 {
		t.Fatalf("only %d samples during the vcenter restart: the duplicate check proves nothing", sampled)
	}

	// 2. Kill only the agent of db's host: its HA process keeps renewing the
	// locks, so vcenter restarts nothing and nothing runs twice; the
	// restarted agent adopts db.
	host := l.hostOf(c, "/dc1/vm/db")
	uid := l.uidOf(c, "/dc1/vm/db")
	agent := l.process(host)
	if err := syscall.Kill(agent.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	samples := 0
	// Past gossip's detection, the datastore timeout and the lock lease
	// with its margin: long enough for a wrong restart to show.
	for time.Since(killed) < 8*time.Second {
		smp, err := sm.Sample(context.Background())
		if err != nil {
			continue
		}
		samples++
		if d := smp.Duplicates(); len(d) > 0 {
			t.Fatalf("with only %s's agent dead, VMs ran twice: %v", host, d)
		}
		if !slices.Contains(smp.Running[host], uid) {
			t.Fatalf("db stopped on %s %v after its agent was killed, with its HA process alive", host, time.Since(killed).Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if samples < 40 {
		t.Fatalf("only %d samples in 8 s: the check above proves nothing", samples)
	}
	if h := l.hostOf(c, "/dc1/vm/db"); h != host {
		t.Errorf("db was moved to %s while only %s's agent was dead", h, host)
	}
	l.restartProcess(agent)
	l.waitHosts(c, 30*time.Second, map[string]string{host: api.HostConnected})
	l.waitReady(c, 4)

	// 3. Isolate a host with response powerOff: its VMs stop there, run
	// elsewhere, never twice.
	rep = l.drill("-mode", "isolate", host)
	if !strings.Contains(rep.HostResponse, "response powerOff") {
		t.Errorf("isolate: the host's response is %q, want powerOff", rep.HostResponse)
	}
	for _, v := range rep.VMs {
		if v.Outcome != "restarted" || v.Stopped.IsZero() {
			t.Errorf("isolate powerOff: %s: %s (stopped %v), want stopped on %s and restarted", v.VM, v.Outcome, v.Stopped, host)
		}
	}
	l.waitReady(c, 4)

	// 4. Isolate with response disabled: the VMs keep running where they are.
	l.must(psc, "cluster.change", "-ha-isolation-response", "disabled", "c1")
	host = l.hostOf(c, "/dc1/vm/db")
	rep = l.drill("-mode", "isolate", "-duration", "8s", host)
	for _, v := range rep.VMs {
		if v.Outcome != "kept running" {
			t.Errorf("isolate disabled: %s: %s, want kept running on %s", v.VM, v.Outcome, host)
		}
	}
	l.waitReady(c, 4)

	// 4b. An agent restarted while its host is isolated (response
	// disabled) adopts what still runs: db never stops, never runs twice,
	// and is still on its host once the isolation ends.
	host = l.hostOf(c, "/dc1/vm/db")
	uid = l.uidOf(c, "/dc1/vm/db")
	if err := IsolateHost(context.Background(), Options{Dir: l.dir, Out: io.Discard}, host); err != nil {
		t.Fatal(err)
	}
	agent = l.process(host)
	if err := syscall.Kill(agent.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	l.restartProcess(agent)
	isolated := time.Now()
	samples = 0
	for time.Since(isolated) < 8*time.Second { // past isolation detection and the lock lease
		smp, err := sm.Sample(context.Background())
		if err != nil {
			continue
		}
		samples++
		if d := smp.Duplicates(); len(d) > 0 {
			t.Fatalf("isolated %s with a restarted agent: VMs ran twice: %v", host, d)
		}
		if !slices.Contains(smp.Running[host], uid) {
			t.Fatalf("db stopped on isolated %s %v after its agent restarted (response disabled)", host, time.Since(isolated).Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if samples < 40 {
		t.Fatalf("only %d samples in 8 s", samples)
	}
	if err := HealHost(context.Background(), Options{Dir: l.dir, Out: io.Discard}, host); err != nil {
		t.Fatal(err)
	}
	l.waitHosts(c, 30*time.Second, map[string]string{host: api.HostConnected})
	l.waitReady(c, 4)
	if h := l.hostOf(c, "/dc1/vm/db"); h != host {
		t.Errorf("db moved to %s although its isolated host kept it (response disabled)", h)
	}
	if smp, err := sm.Sample(context.Background()); err != nil || !slices.Contains(smp.Running[host], uid) || len(smp.Duplicates()) > 0 {
		t.Errorf("after the isolation of %s: %v %v", host, smp, err)
	}

	// 5. Admission control: a reservation that would eat the failover
	// capacity is refused, and the message names the policy.
	l.must(psc, "cluster.change", "-ha-admission-control-enabled", "-ha-host-failures", "1", "c1")
	out, err := l.run(psc, "vm.create", "-m", "64", "-cpu.reservation", "12000", "-cmd", "httpd -f -p 80", "big")
	if err == nil || !strings.Contains(out, "percentage") {
		t.Errorf("a 12000 MHz reservation in a 3-host cluster tolerating 1 failure: err %v\n%s", err, out)
	}

	l.must(podsphere, "lab", "down", "--dir", l.dir, "--prefix", l.prefix)
	l.checkGone(before)
}

const haDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: httpd
        image: busybox
        command: ["httpd", "-f", "-p", "80"]
        resources:
          requests: {cpu: 100m, memory: 32Mi}
`

// drill runs psc ha.drill with args, requires it to pass and returns its report.
func (l *labRun) drill(args ...string) api.HADrillReport {
	l.t.Helper()
	start := time.Now()
	cmd := exec.Command(l.psc, append([]string{"ha.drill", "-json"}, args...)...)
	cmd.Env = append(os.Environ(), l.env...)
	out, err := cmd.Output()
	var rep api.HADrillReport
	if jerr := json.Unmarshal(out, &rep); jerr != nil {
		l.t.Fatalf("ha.drill %v: %v (exit %v)\n%s", args, jerr, err, out)
	}
	l.t.Logf("ha.drill %v: %s, passed=%v, recovery %.2fs, %d samples, failures %v", args, time.Since(start).Round(time.Millisecond),
		rep.Passed, rep.RecoverySeconds, rep.Samples, rep.Failures)
	if err != nil || !rep.Passed || len(rep.Duplicates) > 0 || rep.Samples < 10 {
		l.t.Fatalf("ha.drill %v: exit %v, passed %v, duplicates %v, samples %d: %v", args, err, rep.Passed, rep.Duplicates, rep.Samples, rep.Failures)
	}
	return rep
}

// waitReady waits until n VMs are powered on, running and ready where they are registered.
func (l *labRun) waitReady(c *client.Client, n int) {
	l.t.Helper()
	if err := waitUntil(context.Background(), 60*time.Second, "VMs ready", func() (bool, error) {
		vms, err := c.List(context.Background(), client.ListOptions{Kind: api.KindVirtualMachine, Prefix: "/dc1/vm"})
		if err != nil {
			return false, nil
		}
		ready := 0
		for _, v := range vms.Items {
			var s api.VMSpec
			var st api.VMStatus
			_ = v.DecodeSpec(&s)
			_ = v.DecodeStatus(&st)
			if s.PowerState == api.PoweredOn && !s.Removing && st.Host == s.Host && st.Ready {
				ready++
			}
		}
		return ready == n, nil
	}); err != nil {
		l.t.Fatal(err)
	}
}

func (l *labRun) hostOf(c *client.Client, vm string) string {
	l.t.Helper()
	o, err := c.Get(context.Background(), vm)
	if err != nil {
		l.t.Fatal(err)
	}
	var s api.VMSpec
	_ = o.DecodeSpec(&s)
	return api.Base(s.Host)
}

// vmsOn lists the powered-on VMs registered on host.
func (l *labRun) vmsOn(c *client.Client, host string) []string {
	l.t.Helper()
	vms, err := c.List(context.Background(), client.ListOptions{Kind: api.KindVirtualMachine, Prefix: "/dc1/vm"})
	if err != nil {
		l.t.Fatal(err)
	}
	var out []string
	for _, v := range vms.Items {
		var s api.VMSpec
		_ = v.DecodeSpec(&s)
		if s.PowerState == api.PoweredOn && !s.Removing && api.Base(s.Host) == host {
			out = append(out, v.Path)
		}
	}
	if len(out) == 0 {
		l.t.Fatalf("no VM runs on %s", host)
	}
	return out
}

func (l *labRun) uidOf(c *client.Client, vm string) string {
	l.t.Helper()
	o, err := c.Get(context.Background(), vm)
	if err != nil {
		l.t.Fatal(err)
	}
	return o.UID
}

// process is the lab's record of the daemon named name.
func (l *labRun) process(name string) Process {
	l.t.Helper()
	s, err := LoadState(l.dir)
	if err != nil || s == nil {
		l.t.Fatalf("state: %v", err)
	}
	for _, p := range s.Processes {
		if p.Name == name {
			return p
		}
	}
	l.t.Fatalf("no daemon %s in the lab", name)
	return Process{}
}

// restartProcess starts a killed daemon again with its recorded args and
// records it, as a supervisor (systemd) would.
func (l *labRun) restartProcess(p Process) {
	l.t.Helper()
	// A killed process holds its files (vcenter's database lock) until it
	// is gone: wait for that, as a supervisor does.
	// A Go process's main thread can be a zombie while its other threads
	// still hold the open files: gone means no open descriptor left.
	if err := waitUntil(context.Background(), 10*time.Second, p.Name+" gone", func() (bool, error) {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.PID))
		return !p.Alive() && (err != nil || len(fds) == 0), nil
	}); err != nil {
		l.t.Fatal(err)
	}
	np, err := startDaemon(p.Name, p.NetNS, p.Args, p.Log)
	if err != nil {
		l.t.Fatal(err)
	}
	np.Host = p.Host
	s, err := LoadState(l.dir)
	if err != nil || s == nil {
		l.t.Fatalf("state: %v", err)
	}
	for i := range s.Processes {
		if s.Processes[i].Name == p.Name {
			s.Processes[i] = np
		}
	}
	if err := s.save(); err != nil {
		l.t.Fatal(err)
	}
}

func checkSVG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("ha.drill -svg wrote no picture: %v", err)
	}
	d := xml.NewDecoder(strings.NewReader(string(b)))
	for {
		_, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Errorf("%s is not well-formed SVG: %v", path, err)
			}
			return
		}
	}
}
