// Package e2e holds podsphere's root-only end-to-end tests: real vcenter,
// host agents and psc binaries, containerd and CNI, on a lab of network
// namespaces. They skip, saying why, when not run as root.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	ctrdriver "github.com/podsphere/podsphere/host/containerd"
	"github.com/podsphere/podsphere/host/containerd/imagebuild"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/host/runtime"
	"github.com/podsphere/podsphere/internal/testenv"
)

const podManifest = `apiVersion: v1
kind: Pod
metadata:
  name: web3
spec:
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c"]
    args: ["echo started-web3 $MODE; exec httpd -f -p 80"]
    env:
    - {name: MODE, value: e2e}
    resources:
      limits: {cpu: 500m, memory: 48Mi}
`

// TestDatacenter runs a 3-host datacenter and walks through issue 3's checks.
func TestDatacenter(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping end-to-end test in -short mode")
	}
	start := time.Now()
	l := newLab(t, 3)
	t.Logf("lab up (build, containerd, netns, vcenter) in %v", time.Since(start).Round(time.Millisecond))
	for _, h := range l.hosts {
		l.startAgent(h)
	}
	hostStatus := map[string]api.HostStatus{}
	for _, h := range l.hosts {
		hostStatus[h.name] = l.waitHost(h, start)
	}

	ok := t.Run("peer routes", func(t *testing.T) {
		for _, h := range l.hosts {
			var want []string
			for _, o := range l.hosts {
				if o != h {
					want = append(want, hostStatus[o.name].PodSubnet+" via "+o.ip)
				}
			}
			slices.Sort(want)
			testenv.WaitFor(t, "peer routes on "+h.name, 20*time.Second, func() bool {
				return slices.Equal(peerRoutes(t, h), want)
			})
		}
	})
	ok = ok && t.Run("library import", func(t *testing.T) {
		l.importBusybox(t)
		if ls := l.psc("library.ls"); !strings.Contains(ls, "busybox") || !strings.Contains(ls, "sha256:") {
			t.Fatalf("library.ls:\n%s", ls)
		}
		notImage := filepath.Join(l.dir, "not-an-image.tar")
		_ = os.WriteFile(notImage, []byte("hello, not a tar"), 0o644)
		if _, errOut, code := l.pscCode("library.import", "junk", notImage); code != 2 || !strings.Contains(errOut, "not an image archive") {
			t.Fatalf("importing junk: exit %d, %s", code, errOut)
		}
	})
	if !ok {
		return
	}

	// web1 and web2 are pinned to h1 and h2; web3 comes from a Kubernetes Pod manifest, placed by DRS.
	l.psc("vm.create", "-host", "h1", "-c", "1", "-m", "96",
		"-cmd", "sh -c 'echo hello-from-web1; dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 2>/dev/null; exec httpd -f -p 80'", "web1")
	l.psc("vm.create", "-host", "h2", "-m", "64", "web2")
	manifest := filepath.Join(l.dir, "web3.yaml")
	_ = os.WriteFile(manifest, []byte(podManifest), 0o644)
	l.psc("apply", "-f", manifest)
	powerOn := time.Now()
	vms := map[string]*api.Object{}
	ips := map[string]string{}
	for _, name := range []string{"web1", "web2", "web3"} {
		o, st := l.waitRunning(name)
		vms[name], ips[name] = o, st.IP
	}
	t.Logf("3 VMs running with IPs %v in %v", ips, time.Since(powerOn).Round(time.Millisecond))
	hostOf := func(name string) *labHost {
		_, spec, _ := l.vm(name)
		return l.host(spec.Host)
	}

	t.Run("containers with cgroup limits", func(t *testing.T) {
		for _, name := range []string{"web1", "web2", "web3"} {
			o, spec, st := l.vm(name)
			h := hostOf(name)
			if !strings.HasPrefix(st.IP, strings.TrimSuffix(hostStatus[h.name].PodSubnet, "0/24")) {
				t.Errorf("%s has IP %s outside %s's pod subnet %s", name, st.IP, h.name, hostStatus[h.name].PodSubnet)
			}
			cs := h.containersOf(o.UID)
			if len(cs) != 1 {
				t.Fatalf("%s: %d containers on %s, want 1", name, len(cs), h.name)
			}
			pid, status := h.task(cs[0].ID)
			if status != "running" {
				t.Fatalf("%s: task %s", name, status)
			}
			mhzPerCore := hostStatus[h.name].CPUCapacity / int64(goruntime.NumCPU())
			want := ctrdriver.LimitsFor(runtime.VMSpec{NumCPU: spec.NumCPU, MemoryMB: spec.MemoryMB, CPU: spec.CPU, Mem: spec.Mem}, mhzPerCore)
			if mem := cgroupValue(t, pid, "memory", "memory.limit_in_bytes", "memory.max"); atoi(mem) != want.MemLimit {
				t.Errorf("%s: memory limit %s, want %d", name, mem, want.MemLimit)
			}
			if ctrdriver.CgroupV2() {
				if got := cgroupValue(t, pid, "cpu", "", "cpu.max"); got != fmt.Sprintf("%d 100000", want.CPUQuota) {
					t.Errorf("%s: cpu.max %q, want %d 100000", name, got, want.CPUQuota)
				}
			} else if got := cgroupValue(t, pid, "cpu", "cpu.cfs_quota_us", ""); atoi(got) != want.CPUQuota {
				t.Errorf("%s: cfs quota %s, want %d", name, got, want.CPUQuota)
			}
		}
		// The Pod manifest's command and args run exactly, with its env.
		if logs := l.psc("vm.logs", "web3"); !strings.Contains(logs, "started-web3 e2e") {
			t.Errorf("web3 logs %q", logs)
		}
	})

	t.Run("VM to VM across hosts", func(t *testing.T) {
		pairs := [][2]string{{"web1", "web2"}, {"web2", "web1"}}
		if hostOf("web3") != hostOf("web1") {
			pairs = append(pairs, [2]string{"web1", "web3"})
		}
		for _, p := range pairs {
			if hostOf(p[0]) == hostOf(p[1]) {
				t.Fatalf("%s and %s share host %s", p[0], p[1], hostOf(p[0]).name)
			}
			page := fetch(t, l, p[0], "http://"+ips[p[1]]+"/")
			if !strings.Contains(page, "podsphere busybox") {
				t.Fatalf("%s -> %s: page %q", p[0], p[1], page)
			}
		}
	})

	t.Run("guest.run", func(t *testing.T) {
		out, errOut, code := l.pscCode("guest.run", "web1", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
		if code != 7 || strings.TrimSpace(out) != "out" || strings.TrimSpace(errOut) != "err" {
			t.Fatalf("guest.run = %q, %q, exit %d", out, errOut, code)
		}
		if out := l.psc("guest.run", "web2", "--", "hostname"); strings.TrimSpace(out) != "web2" {
			t.Fatalf("hostname %q", out)
		}
		// govc's form: the VM as -vm, every argument the command.
		if out := l.psc("guest.run", "-vm", "web2", "hostname"); strings.TrimSpace(out) != "web2" {
			t.Fatalf("guest.run -vm web2 hostname: %q", out)
		}
		if _, errOut, code := l.pscCode("guest.run", "web1", "-c", "nope", "--", "true"); code != 3 || !strings.Contains(errOut, "web1") {
			t.Fatalf("unknown container: exit %d, %s", code, errOut)
		}
	})

	t.Run("vm.logs", func(t *testing.T) {
		if logs := l.psc("vm.logs", "web1"); !strings.Contains(logs, "hello-from-web1") {
			t.Fatalf("logs %q", logs)
		}
		// -f streams: a line the VM writes after the stream opened shows up.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := l.pscCmd(ctx, "vm.logs", "-f", "web2")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		time.Sleep(500 * time.Millisecond)
		l.psc("guest.run", "web2", "--", "sh", "-c", "echo followed-line > /proc/1/fd/1")
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "followed-line") {
				return
			}
		}
		t.Fatalf("vm.logs -f ended without the new line: %v", sc.Err())
	})

	t.Run("usage", func(t *testing.T) {
		_, st := l.waitVM("web1", "memory usage reported", 30*time.Second, func(_ api.VMSpec, st api.VMStatus) bool {
			return st.MemUsageMB >= 20 // it filled 24 MB of /dev/shm
		})
		if info := l.psc("vm.info", "-r", "web1"); !strings.Contains(info, "Mem Usage:") {
			t.Errorf("vm.info -r shows no usage:\n%s", info)
		}
		testenv.WaitFor(t, "h1 memory usage", 30*time.Second, func() bool {
			o, err := l.api.Get(context.Background(), cluster+"/h1")
			var hs api.HostStatus
			return err == nil && o.DecodeStatus(&hs) == nil && hs.MemUsage >= st.MemUsageMB
		})
		if info := l.psc("host.info", "h1"); !strings.Contains(info, "Memory usage") {
			t.Errorf("host.info:\n%s", info)
		}
	})

	// A spec change on a running VM reaches its host: the containers are
	// recreated with the new spec (a new boot, a new task) and the cgroup
	// shows the new limit; the VM keeps its IP.
	// A size change of a running VM happens live (govc users expect
	// vm.change not to reboot the guest): the same task, the same boot,
	// the new limit in its cgroup.
	t.Run("vm.change resizes a running VM live", func(t *testing.T) {
		name := "web2"
		o, _, before := l.vm(name)
		h := hostOf(name)
		cs := h.containersOf(o.UID)
		if len(cs) != 1 || cs[0].Labels[ctrdriver.LabelSpecHash] == "" {
			t.Fatalf("%s: containers %+v, want one carrying a spec hash", name, cs)
		}
		oldPid, _ := h.task(cs[0].ID)
		out := l.psc("vm.change", "-mem.limit", "40", name)
		if !strings.Contains(out, "live") {
			t.Errorf("vm.change of a running VM's memory limit said %q, want it to say it changed live", out)
		}
		_, spec, _ := l.vm(name)
		if spec.Mem.Limit != 40 {
			t.Fatalf("vm.change recorded mem limit %d, want 40", spec.Mem.Limit)
		}
		want := ctrdriver.LimitsFor(runtime.VMSpec{NumCPU: spec.NumCPU, MemoryMB: spec.MemoryMB, CPU: spec.CPU, Mem: spec.Mem}, hostStatus[h.name].CPUCapacity/int64(goruntime.NumCPU()))
		if want.MemLimit != 40<<20 {
			t.Fatalf("expected limit %d, want %d", want.MemLimit, 40<<20)
		}
		var mem string
		_, st := l.waitVM(name, "resized in place to the new memory limit", 60*time.Second, func(_ api.VMSpec, st api.VMStatus) bool {
			cs := h.containersOf(o.UID)
			if len(cs) != 1 {
				return false
			}
			pid, status := h.task(cs[0].ID)
			if status != "running" || pid != oldPid {
				return false
			}
			mem = cgroupValue(t, pid, "memory", "memory.limit_in_bytes", "memory.max")
			return atoi(mem) == want.MemLimit && st.PowerState == api.PoweredOn
		})
		if !st.BootTime.Equal(before.BootTime) {
			t.Errorf("%s: boot time moved across a live resize: %s -> %s", name, before.BootTime, st.BootTime)
		}
		if st.IP != before.IP {
			t.Errorf("%s: IP changed across the resize: %s -> %s", name, before.IP, st.IP)
		}
		fetch(t, l, "web1", "http://"+st.IP+"/")
		ips[name] = st.IP
	})

	// The host agent probes a VM's address from the host's network
	// namespace and reports readiness to vcenter as soon as the verdict
	// changes, not at its next status pass.
	t.Run("readiness probe reaches vcenter", func(t *testing.T) {
		ctx := context.Background()
		// Through the API: the manifest mapping of probes comes with the manifest branch.
		o := api.New(api.KindVirtualMachine, "/"+dc+"/vm/probed", api.VMSpec{
			Pool: cluster + "/Resources", NumCPU: 1, MemoryMB: 64, PowerState: api.PoweredOff,
			CPU: api.Allocation{Limit: -1, Expandable: true, Shares: api.Shares{Level: "normal"}},
			Mem: api.Allocation{Limit: -1, Expandable: true, Shares: api.Shares{Level: "normal"}},
			Containers: []api.Container{{
				Name: "main", Image: "busybox", Command: []string{"httpd", "-f", "-p", "80", "-h", "/www"},
				Ports: []api.Port{{Name: "http", ContainerPort: 80}},
				ReadinessProbe: &api.Probe{HTTPGet: &api.HTTPGetAction{Path: "/index.html", Port: api.Str("http")},
					PeriodSeconds: 1, FailureThreshold: 1},
			}},
		})
		if _, err := l.api.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		if _, err := l.api.Power(ctx, o.Path, "on"); err != nil {
			t.Fatal(err)
		}
		_, st := l.waitVM("probed", "ready", 60*time.Second, func(_ api.VMSpec, st api.VMStatus) bool { return st.Ready })
		if st.ReadySince.IsZero() || len(st.Containers) != 1 || !st.Containers[0].Ready {
			t.Fatalf("ready status %+v", st)
		}
		l.psc("guest.run", "probed", "--", "rm", "/www/index.html")
		removed := time.Now()
		l.waitVM("probed", "not ready", 30*time.Second, func(_ api.VMSpec, st api.VMStatus) bool { return !st.Ready })
		// Period 1 s and threshold 1: the verdict comes within about a
		// second; the report follows at once (the status pass is every 10 s).
		if took := time.Since(removed); took > 4*time.Second {
			t.Errorf("vcenter saw the VM not ready %v after its page went", took.Round(time.Millisecond))
		}
		l.psc("guest.run", "probed", "--", "sh", "-c", "echo back > /www/index.html")
		l.waitVM("probed", "ready again", 30*time.Second, func(_ api.VMSpec, st api.VMStatus) bool { return st.Ready })
		l.psc("vm.destroy", "probed")
	})

	t.Run("power off on reset destroy leave no orphans", func(t *testing.T) {
		name := "web3"
		o, _, st := l.vm(name)
		h := hostOf(name)
		cid := h.containersOf(o.UID)[0].ID
		netns := filepath.Join(network.NetNSDir, network.DefaultNetNSPrefix+o.UID)

		l.psc("vm.power", "-off", name)
		l.waitVM(name, "powered off", 30*time.Second, func(_ api.VMSpec, st api.VMStatus) bool { return st.PowerState == api.PoweredOff })
		if _, status := h.task(cid); status != "" {
			t.Fatalf("after power off the task is %s", status)
		}
		l.psc("vm.power", "-on", name)
		_, on := l.waitRunning(name)
		if on.IP != st.IP {
			t.Errorf("IP changed across power off/on: %s -> %s", st.IP, on.IP)
		}
		pid, _ := h.task(cid)
		l.psc("vm.power", "-reset", name)
		l.waitVM(name, "reset", 30*time.Second, func(spec api.VMSpec, st api.VMStatus) bool {
			p, status := h.task(cid)
			return st.ResetGeneration == spec.ResetGeneration && status == "running" && p != pid
		})
		l.waitRunning(name)
		fetch(t, l, "web1", "http://"+on.IP+"/")

		veths := len(h.veths())
		l.psc("vm.destroy", name)
		testenv.WaitFor(t, name+"'s containers gone", 30*time.Second, func() bool { return len(h.containersOf(o.UID)) == 0 })
		testenv.WaitFor(t, name+"'s netns gone", 10*time.Second, func() bool {
			_, err := os.Stat(netns)
			return os.IsNotExist(err)
		})
		if n := len(h.veths()); n != veths-1 {
			t.Errorf("veths on %s: %d after destroy, want %d", h.name, n, veths-1)
		}
		if slices.Contains(h.leases(), on.IP) {
			t.Errorf("IP lease %s left on %s", on.IP, h.name)
		}
		if _, err := os.Stat(filepath.Join(h.state, "logs", o.UID)); !os.IsNotExist(err) {
			t.Errorf("logs of %s left: %v", name, err)
		}
	})

	t.Run("crash restarts locally", func(t *testing.T) {
		l.psc("vm.create", "-host", "h2", "-m", "32", "-cmd", "sh -c 'echo boom; exit 3'", "crash")
		_, st := l.waitVM("crash", "restarted twice", 60*time.Second, func(_ api.VMSpec, st api.VMStatus) bool { return st.Restarts >= 2 })
		if st.PowerState != api.PoweredOn || st.Host != cluster+"/h2" {
			t.Errorf("crash VM status %+v", st)
		}
		if info := l.psc("vm.info", "crash"); !strings.Contains(info, "Restarts:") {
			t.Errorf("vm.info:\n%s", info)
		}
		before := st.Restarts
		l.waitVM("crash", "restart count rising", 60*time.Second, func(_ api.VMSpec, st api.VMStatus) bool { return st.Restarts > before })
		l.psc("vm.destroy", "crash")
	})

	t.Run("power-on refused by quota starts nothing", func(t *testing.T) {
		l.psc("pool.create", "small")
		l.psc("quota.set", "small", "-cpu", "100")
		l.psc("vm.create", "-pool", "small", "-on=false", "-c", "1", "-m", "32", "-host", "h1", "over")
		_, errOut, code := l.pscCode("vm.power", "-on", "over")
		if code != 5 || !strings.Contains(errOut, "quota") {
			t.Fatalf("power-on over quota: exit %d, %s", code, errOut)
		}
		o, spec, _ := l.vm("over")
		time.Sleep(2 * time.Second) // a few agent passes
		for _, h := range l.hosts {
			if cs := h.containersOf(o.UID); len(cs) != 0 {
				t.Fatalf("refused VM has %d containers on %s", len(cs), h.name)
			}
		}
		if spec.PowerState == api.PoweredOn {
			t.Fatalf("refused VM is powered on")
		}
		l.psc("vm.destroy", "over")
	})

	t.Run("agent restart keeps VMs running", func(t *testing.T) {
		h := l.host("h1")
		o, _, before := l.vm("web1")
		cid := h.containersOf(o.UID)[0].ID
		pid, _ := h.task(cid)
		restart := time.Now()
		h.agent.stop()
		l.startAgent(h)
		l.waitHost(h, restart)
		time.Sleep(3 * time.Second) // several reconcile passes
		_, after := l.waitRunning("web1")
		if p, _ := h.task(cid); p != pid {
			t.Fatalf("web1's task changed across the agent restart: pid %d -> %d", pid, p)
		}
		if !after.Containers[0].StartedAt.Equal(before.Containers[0].StartedAt) || !after.BootTime.Equal(before.BootTime) {
			t.Fatalf("start times changed: %v/%v -> %v/%v", before.BootTime, before.Containers[0].StartedAt, after.BootTime, after.Containers[0].StartedAt)
		}
		if out := l.psc("guest.run", "web1", "--", "echo", "still-here"); strings.TrimSpace(out) != "still-here" {
			t.Fatalf("guest.run after restart: %q", out)
		}
	})

	t.Run("vcenter restart keeps VMs running", func(t *testing.T) {
		pids := map[string]uint32{}
		for _, name := range []string{"web1", "web2"} {
			o, _, _ := l.vm(name)
			h := hostOf(name)
			pids[name], _ = h.task(h.containersOf(o.UID)[0].ID)
		}
		restart := time.Now()
		l.vcenter.stop()
		l.startVCenter()
		for _, h := range l.hosts {
			testenv.WaitFor(t, h.name+" connected after vcenter restart", 60*time.Second, func() bool {
				o, err := l.api.Get(context.Background(), cluster+"/"+h.name)
				var hs api.HostStatus
				return err == nil && o.DecodeStatus(&hs) == nil && hs.State == api.HostConnected && hs.LastSeen.After(restart)
			})
		}
		time.Sleep(3 * time.Second)
		for name, pid := range pids {
			o, _, st := l.vm(name)
			h := hostOf(name)
			if p, _ := h.task(h.containersOf(o.UID)[0].ID); p != pid || st.PowerState != api.PoweredOn {
				t.Fatalf("%s after vcenter restart: pid %d -> %d, %s", name, pid, p, st.PowerState)
			}
		}
		fetch(t, l, "web1", "http://"+ips["web2"]+"/")
	})

	t.Run("destroy everything", func(t *testing.T) {
		uids := map[string]string{}
		for _, name := range []string{"web1", "web2"} {
			o, _, _ := l.vm(name)
			uids[name] = o.UID
		}
		l.psc("vm.destroy", "web1", "web2")
		for _, h := range l.hosts {
			testenv.WaitFor(t, "no containers on "+h.name, 30*time.Second, func() bool {
				cs, err := l.ctr.ContainerService().List(h.ctx())
				return err == nil && len(cs) == 0
			})
		}
		// The driver removes a VM's netns last, after CNI DEL has released
		// its lease and veth: once the netns is gone the removal is complete.
		for name, uid := range uids {
			testenv.WaitFor(t, "netns of "+name+" gone", 10*time.Second, func() bool {
				_, err := os.Stat(filepath.Join(network.NetNSDir, network.DefaultNetNSPrefix+uid))
				return os.IsNotExist(err)
			})
		}
		for _, h := range l.hosts {
			if n := len(h.veths()); n != 0 {
				t.Errorf("veths left on %s: %d", h.name, n)
			}
			if leases := h.leases(); len(leases) != 0 {
				t.Errorf("IP leases left on %s: %v", h.name, leases)
			}
		}
	})
	t.Logf("end-to-end run took %v", time.Since(start).Round(time.Millisecond))
}

// importBusybox builds the busybox OCI image and imports it into the
// content library as item busybox.
func (l *lab) importBusybox(t *testing.T) {
	t.Helper()
	archive := filepath.Join(l.dir, "busybox.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := imagebuild.Build(f, imagebuild.Options{Name: "docker.io/library/busybox:latest"}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := l.psc("library.import", "busybox", archive)
	if !strings.Contains(out, "docker.io/library/busybox:latest") {
		t.Fatalf("library.import said %q", out)
	}
}

// fetch gets url from inside VM vm with busybox wget, retrying while the
// server starts. (No wget -T: busybox 1.35 segfaults with it.)
func fetch(t *testing.T, l *lab, vm, url string) string {
	t.Helper()
	var out, errOut string
	var code int
	for range 40 {
		if out, errOut, code = l.pscCode("guest.run", vm, "--", "wget", "-q", "-O-", url); code == 0 {
			return out
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("wget %s from %s: exit %d: %s", url, vm, code, errOut)
	return ""
}

// peerRoutes lists h's podsphere-owned routes as "SUBNET via IP", sorted.
func peerRoutes(t *testing.T, h *labHost) []string {
	t.Helper()
	b, err := exec.Command("ip", "-n", h.netns, "-j", "-4", "route", "show", "proto", network.RouteProtocol).Output()
	if err != nil {
		t.Fatalf("ip route on %s: %v", h.name, err)
	}
	var routes []struct{ Dst, Gateway string }
	if s := strings.TrimSpace(string(b)); s != "" {
		if err := json.Unmarshal([]byte(s), &routes); err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	for _, r := range routes {
		out = append(out, r.Dst+" via "+r.Gateway)
	}
	slices.Sort(out)
	return out
}
