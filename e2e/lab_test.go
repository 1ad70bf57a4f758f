package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	ctrdriver "github.com/podsphere/podsphere/host/containerd"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/internal/testenv"
)

// The lab: a management bridge in its own network namespace (vcenter runs
// there, on 192.168.77.1), one namespace per host agent wired to the bridge
// by a veth (192.168.77.1N), one private containerd shared by the agents
// through their own containerd namespaces. The root namespace's addresses,
// routes and iptables are never touched: the test reaches vcenter through
// a loopback listener whose connections are dialled inside the lab.
const (
	mgmtIP      = "192.168.77.1"
	vcenterPort = "8989"
	dc          = "dc1"
	cluster     = "/dc1/host/c1"
)

type lab struct {
	t      *testing.T
	prefix string // short, unique: names netns and containerd namespaces
	dir    string
	bin    string
	sock   string
	mgmt   string // netns name of the management network

	vcenter    *proc
	proxy      string // http://127.0.0.1:PORT, reaching vcenter from the root netns
	adminToken string
	joinToken  string
	api        *client.Client
	ctr        *containerd.Client
	hosts      []*labHost

	mu    sync.Mutex
	procs []*proc
}

type labHost struct {
	name   string // h1
	netns  string // netns name
	ip     string
	ns     string // containerd namespace
	state  string // --state-dir
	agent  *proc
	labRef *lab
}

// proc is a daemon the lab started, inside a network namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// newLab builds the binaries, starts containerd, the networks and vcenter,
// and creates the datacenter and cluster. Cleanup undoes it all, also after
// a failure.
func newLab(t *testing.T, nhosts int) *lab {
	t.Helper()
	testenv.RequireDataPlane(t)
	l := &lab{t: t, prefix: fmt.Sprintf("pse%04x", rand.IntN(0xffff)), dir: t.TempDir()}
	l.bin = filepath.Join(l.dir, "bin")
	build := exec.Command(goTool(), "build", "-o", l.bin+"/", "../cmd/podsphere", "../cmd/psc")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The HA fence, static, beside podsphere (where the agent looks for it).
	fence := exec.Command(goTool(), "build", "-o", l.bin+"/", "../cmd/podsphere-fence")
	fence.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := fence.CombinedOutput(); err != nil {
		t.Fatalf("go build podsphere-fence: %v\n%s", err, out)
	}
	l.sock = testenv.StartContainerd(t)
	ctr, err := containerd.New(l.sock, containerd.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	l.ctr = ctr
	t.Cleanup(func() { ctr.Close() })

	// Registered before the daemons start, so it runs after they stop.
	t.Cleanup(l.removeLeftovers)
	l.mgmt = l.prefix + "-m"
	l.netns(l.mgmt)
	l.ip("-n", l.mgmt, "link", "add", "br0", "type", "bridge")
	l.ip("-n", l.mgmt, "addr", "add", mgmtIP+"/24", "dev", "br0")
	l.ip("-n", l.mgmt, "link", "set", "br0", "up")
	for i := 1; i <= nhosts; i++ {
		h := &labHost{name: fmt.Sprintf("h%d", i), netns: fmt.Sprintf("%s-h%d", l.prefix, i),
			ip: fmt.Sprintf("192.168.77.1%d", i), ns: fmt.Sprintf("%s-h%d", l.prefix, i),
			state: filepath.Join(l.dir, fmt.Sprintf("h%d", i)), labRef: l}
		l.netns(h.netns)
		veth := "v" + h.name
		l.ip("-n", l.mgmt, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.netns)
		l.ip("-n", l.mgmt, "link", "set", veth, "master", "br0", "up")
		l.ip("-n", h.netns, "addr", "add", h.ip+"/24", "dev", "eth0")
		l.ip("-n", h.netns, "link", "set", "eth0", "up")
		l.hosts = append(l.hosts, h)
	}
	t.Cleanup(func() {
		if t.Failed() {
			l.dumpLogs()
		}
		l.mu.Lock()
		procs := append([]*proc(nil), l.procs...)
		l.mu.Unlock()
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop()
		}
	})
	l.startProxy()
	l.startVCenter()
	l.psc("datacenter.create", dc)
	l.psc("cluster.create", "c1")
	return l
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

func (l *lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (l *lab) netns(name string) {
	l.t.Helper()
	if _, err := network.CreateNamedNetNS(name); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		if err := network.DeleteNamedNetNS(name); err != nil {
			l.t.Errorf("cleanup: %v", err)
		}
	})
}

// startProxy listens on the root netns's loopback and relays each
// connection to vcenter, dialled from inside the management netns.
func (l *lab) startProxy() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { ln.Close() })
	nsPath := filepath.Join(network.NetNSDir, l.mgmt)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var up net.Conn
				err := network.InNetNS(nsPath, func() error {
					var err error
					up, err = net.DialTimeout("tcp", net.JoinHostPort(mgmtIP, vcenterPort), 5*time.Second)
					return err
				})
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	l.proxy = "http://" + ln.Addr().String()
}

// start runs the podsphere binary with args inside netns.
func (l *lab) start(name, netns string, env []string, args ...string) *proc {
	l.t.Helper()
	logPath := filepath.Join(l.dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		l.t.Fatal(err)
	}
	// nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup hierarchy from the agent.
	cmd := exec.Command("nsenter", append([]string{"--net=" + filepath.Join(network.NetNSDir, netns), "--", filepath.Join(l.bin, "podsphere")}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p
}

func (l *lab) dumpLogs() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		b, _ := os.ReadFile(p.log)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		l.t.Logf("--- %s log (last 40 lines):\n%s", p.name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
}

func (l *lab) startVCenter() {
	l.t.Helper()
	data := filepath.Join(l.dir, "vcenter")
	l.vcenter = l.start("vcenter", l.mgmt, nil, "vcenter", "--data-dir", data,
		"--listen", net.JoinHostPort(mgmtIP, vcenterPort), "--gossip", mgmtIP+":7946")
	testenv.WaitFor(l.t, "vcenter tokens", 20*time.Second, func() bool {
		a, err1 := os.ReadFile(filepath.Join(data, "admin.token"))
		j, err2 := os.ReadFile(filepath.Join(data, "join.token"))
		l.adminToken, l.joinToken = strings.TrimSpace(string(a)), strings.TrimSpace(string(j))
		return err1 == nil && err2 == nil && l.adminToken != "" && l.joinToken != ""
	})
	c, err := client.New(l.proxy, l.adminToken)
	if err != nil {
		l.t.Fatal(err)
	}
	l.api = c
	testenv.WaitFor(l.t, "vcenter API", 20*time.Second, func() bool {
		_, err := c.About(context.Background())
		return err == nil
	})
}

// startAgent runs host h's agent with the containerd runtime.
func (l *lab) startAgent(h *labHost) {
	l.t.Helper()
	h.agent = l.start("agent-"+h.name, h.netns, []string{"PODSPHERE_JOIN_TOKEN=" + l.joinToken},
		"host", "--name", h.name, "--cluster", cluster,
		"--vcenter", "http://"+net.JoinHostPort(mgmtIP, vcenterPort),
		"--gossip-bind", h.ip+":7946",
		"--runtime", "containerd", "--containerd-socket", l.sock,
		"--containerd-namespace", h.ns, "--state-dir", h.state,
		"--status-interval", "1s")
}

// waitHost waits until vcenter has h connected with its agent API.
func (l *lab) waitHost(h *labHost, since time.Time) api.HostStatus {
	l.t.Helper()
	var st api.HostStatus
	testenv.WaitFor(l.t, "host "+h.name+" connected", 40*time.Second, func() bool {
		o, err := l.api.Get(context.Background(), cluster+"/"+h.name)
		if err != nil {
			return false
		}
		st = api.HostStatus{}
		_ = o.DecodeStatus(&st)
		return st.State == api.HostConnected && st.AgentAddress != "" && !st.Joined.Before(since)
	})
	return st
}

// psc runs the psc binary against the lab's vcenter and fails the test unless it exits 0.
func (l *lab) psc(args ...string) string {
	l.t.Helper()
	out, errOut, code := l.pscCode(args...)
	if code != 0 {
		l.t.Fatalf("psc %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (l *lab) pscCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(l.bin, "psc"), args...)
	cmd.Env = append(os.Environ(), "PSC_URL="+l.proxy, "PSC_TOKEN="+l.adminToken, "PSC_DATACENTER="+dc, "PSC_CLUSTER=c1")
	return cmd
}

func (l *lab) pscCode(args ...string) (stdout, stderr string, code int) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var o, e bytes.Buffer
	cmd := l.pscCmd(ctx, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		l.t.Fatalf("psc %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// vm reads a VM from vcenter.
func (l *lab) vm(name string) (*api.Object, api.VMSpec, api.VMStatus) {
	l.t.Helper()
	o, err := l.api.Get(context.Background(), "/"+dc+"/vm/"+name)
	if err != nil {
		l.t.Fatalf("get VM %s: %v", name, err)
	}
	var spec api.VMSpec
	var st api.VMStatus
	_ = o.DecodeSpec(&spec)
	_ = o.DecodeStatus(&st)
	return o, spec, st
}

func (l *lab) waitVM(name, what string, timeout time.Duration, cond func(api.VMSpec, api.VMStatus) bool) (*api.Object, api.VMStatus) {
	l.t.Helper()
	var o *api.Object
	var st api.VMStatus
	testenv.WaitFor(l.t, "VM "+name+" "+what, timeout, func() bool {
		var spec api.VMSpec
		o, spec, st = l.vm(name)
		return cond(spec, st)
	})
	return o, st
}

func (l *lab) waitRunning(name string) (*api.Object, api.VMStatus) {
	l.t.Helper()
	return l.waitVM(name, "running with an IP", 60*time.Second, func(_ api.VMSpec, st api.VMStatus) bool {
		return st.PowerState == api.PoweredOn && st.IP != "" && len(st.Containers) > 0 && st.Containers[0].State == "running"
	})
}

func (l *lab) host(name string) *labHost {
	for _, h := range l.hosts {
		if h.name == name || cluster+"/"+h.name == name {
			return h
		}
	}
	l.t.Fatalf("no lab host %s", name)
	return nil
}

func (h *labHost) ctx() context.Context {
	return namespaces.WithNamespace(context.Background(), h.ns)
}

// containersOf lists the containerd containers of VM uid on h.
func (h *labHost) containersOf(uid string) []containers.Container {
	h.labRef.t.Helper()
	cs, err := h.labRef.ctr.ContainerService().List(h.ctx(), fmt.Sprintf("labels.%q==%q", ctrdriver.LabelVMID, uid))
	if err != nil {
		h.labRef.t.Fatalf("containerd list on %s: %v", h.name, err)
	}
	return cs
}

// task returns the pid and status of a container's task (0, "" without one).
func (h *labHost) task(cid string) (uint32, containerd.ProcessStatus) {
	c, err := h.labRef.ctr.LoadContainer(h.ctx(), cid)
	if err != nil {
		return 0, ""
	}
	t, err := c.Task(h.ctx(), nil)
	if err != nil {
		return 0, ""
	}
	st, err := t.Status(h.ctx())
	if err != nil {
		return 0, ""
	}
	return t.Pid(), st.Status
}

// veths lists the veth links in h's netns other than its management link.
func (h *labHost) veths() []string {
	out, err := exec.Command("ip", "-n", h.netns, "-o", "link", "show", "type", "veth").CombinedOutput()
	if err != nil {
		h.labRef.t.Fatalf("ip link on %s: %v: %s", h.name, err, out)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if name != "eth0" {
			names = append(names, name)
		}
	}
	return names
}

// leases lists the IPs host-local has handed out on h.
func (h *labHost) leases() []string {
	entries, _ := os.ReadDir(filepath.Join(h.state, "network", "ipam", network.DefaultName))
	var ips []string
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// removeLeftovers deletes what stopped agents may have left: containers
// (and their tasks and snapshots), VM netns, images, the containerd
// namespaces and the cgroups. The host netns go with their own cleanups.
func (l *lab) removeLeftovers() {
	for _, h := range l.hosts {
		ctx := h.ctx()
		cs, _ := l.ctr.ContainerService().List(ctx)
		for _, info := range cs {
			if c, err := l.ctr.LoadContainer(ctx, info.ID); err == nil {
				if t, err := c.Task(ctx, nil); err == nil {
					_, _ = t.Delete(ctx, containerd.WithProcessKill)
				}
				_ = c.Delete(ctx, containerd.WithSnapshotCleanup)
			}
			if ns := info.Labels[ctrdriver.LabelNetNS]; ns != "" {
				if err := network.DeleteNamedNetNS(filepath.Base(ns)); err != nil {
					l.t.Errorf("cleanup: %v", err)
				}
			}
		}
		if len(cs) > 0 && !l.t.Failed() {
			l.t.Errorf("cleanup: %d containers were left in namespace %s", len(cs), h.ns)
		}
		is := l.ctr.ImageService()
		if imgs, err := is.List(ctx); err == nil {
			for _, img := range imgs {
				_ = is.Delete(ctx, img.Name, images.SynchronousDelete())
			}
		}
		_ = l.ctr.NamespaceService().Delete(ctx, h.ns)
		removeCgroupTree("podsphere/" + h.ns)
	}
	removeCgroupTree("podsphere") // only if empty: other agents may use it
}

// removeCgroupTree removes the cgroup rel (and its empty children) from every hierarchy.
func removeCgroupTree(rel string) {
	var roots []string
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		roots = []string{"/sys/fs/cgroup"}
	} else {
		ms, _ := os.ReadDir("/sys/fs/cgroup")
		for _, m := range ms {
			roots = append(roots, filepath.Join("/sys/fs/cgroup", m.Name()))
		}
	}
	for _, r := range roots {
		rmdirTree(filepath.Join(r, rel))
	}
}

func rmdirTree(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			rmdirTree(filepath.Join(dir, e.Name()))
		}
	}
	_ = os.Remove(dir)
}

// cgroupValue reads file of pid's cgroup for controller (v1), or v2file on the unified hierarchy.
func cgroupValue(t *testing.T, pid uint32, controller, v1file, v2file string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	v2 := ctrdriver.CgroupV2()
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if v2 && parts[0] == "0" {
			v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", parts[2], v2file))
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(v))
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, parts[2], v1file))
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(string(v))
			}
		}
	}
	t.Fatalf("no %s cgroup for pid %d", controller, pid)
	return ""
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
