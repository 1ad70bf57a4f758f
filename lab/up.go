package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/host/containerd/imagebuild"
	"github.com/podsphere/podsphere/host/network"
)

// Up builds the lab described by opts. On failure it tears down what it
// made (unless opts.Keep) and returns the error with the log tails that
// explain it.
func Up(ctx context.Context, opts Options) (*State, error) {
	if err := opts.complete(); err != nil {
		return nil, err
	}
	if err := requireRoot(); err != nil {
		return nil, err
	}
	if err := preflight(opts); err != nil {
		return nil, err
	}
	if s, err := LoadState(opts.Dir); err != nil {
		return nil, err
	} else if s != nil {
		return nil, fmt.Errorf("a lab already lives in %s (podsphere lab status --dir %s); tear it down first with: podsphere lab down --dir %s: %w", opts.Dir, opts.Dir, opts.Dir, api.ErrConflict)
	}
	if left := labNetNS(opts.Prefix); len(left) > 0 {
		return nil, fmt.Errorf("network namespaces of a lab with prefix %q exist (%s); remove them with: podsphere lab down --prefix %s --dir DIR: %w",
			opts.Prefix, strings.Join(left, ", "), opts.Prefix, api.ErrConflict)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	s := &State{Prefix: opts.Prefix, Dir: opts.Dir, Created: time.Now().UTC(), Runtime: opts.Runtime}
	if err := s.save(); err != nil {
		return nil, err
	}
	err := s.build(ctx, opts)
	if err == nil {
		return s, nil
	}
	if errors.Is(err, context.Canceled) {
		err = fmt.Errorf("lab up: interrupted: %w", err)
	} else {
		err = fmt.Errorf("lab up: %w%s", err, s.logTails(12))
	}
	if opts.Keep {
		return s, fmt.Errorf("%w\n(left in place for inspection: podsphere lab down --dir %s)", err, opts.Dir)
	}
	fmt.Fprintf(opts.Out, "lab up failed; tearing down what it made\n")
	if derr := Down(context.WithoutCancel(ctx), Options{Dir: opts.Dir, Prefix: opts.Prefix, Out: opts.Out}); derr != nil {
		err = fmt.Errorf("%w\nand the teardown failed too: %v", err, derr)
	}
	return s, err
}

// preflight checks the tools the lab runs, so a missing package is named up front.
func preflight(opts Options) error {
	need := []string{"ip"}
	if opts.Runtime == "containerd" {
		need = append(need, "containerd", "containerd-shim-runc-v2", "runc", "iptables")
	}
	var missing []string
	for _, b := range need {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: apt-get install -y iproute2 containerd runc containernetworking-plugins iptables busybox-static", strings.Join(missing, ", "))
	}
	if opts.Runtime == "containerd" {
		for _, f := range []string{"/usr/lib/cni/bridge", "/bin/busybox"} {
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("missing %s: apt-get install -y containernetworking-plugins busybox-static", f)
			}
		}
	}
	return nil
}

func (s *State) logf(opts Options, format string, args ...any) {
	fmt.Fprintf(opts.Out, format+"\n", args...)
}

func (s *State) build(ctx context.Context, opts Options) error {
	s.logf(opts, "Building lab %q in %s: vcenter + %d hosts on %s", s.Prefix, s.Dir, opts.Hosts, MgmtSubnet)
	for _, d := range []string{"logs", "datastore", SharedDir, "vcenter", "hosts"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o755); err != nil {
			return err
		}
	}

	// Management network: a bridge in its own namespace, a veth to each member.
	if err := s.createMgmt(); err != nil {
		return err
	}
	if err := s.attach(vcNS(s.Prefix), "v-vc", VCenterAddr); err != nil {
		return err
	}
	for i := 1; i <= opts.Hosts; i++ {
		h := Host{Name: hostName(i), NetNS: hostNS(s.Prefix, i), Address: hostAddr(i)}
		if opts.Runtime == "containerd" {
			h.Namespace = ctrdNamespace(s.Prefix, i)
		}
		s.Hosts = append(s.Hosts, h)
		if err := s.attach(h.NetNS, "v-"+h.Name, h.Address); err != nil {
			return err
		}
	}
	s.logf(opts, "  network namespaces: %s", strings.Join(s.NetNS, " "))

	if opts.Runtime == "containerd" {
		if err := s.ensureContainerd(ctx, opts); err != nil {
			return err
		}
	}

	// vcenter, inside its namespace.
	s.VCenterURL = fmt.Sprintf("http://%s:%d", VCenterAddr, APIPort)
	ha := s.haWiring(ctx, opts.Binary, opts.Runtime)
	s.logf(opts, "  vSphere HA: %s", ha.Summary)
	vcDir := filepath.Join(s.Dir, "vcenter")
	vcArgs := append([]string{"vcenter", "--data-dir", vcDir,
		"--listen", fmt.Sprintf("%s:%d", VCenterAddr, APIPort), "--gossip", fmt.Sprintf("%s:%d", VCenterAddr, GossipPort)}, ha.VCenter...)
	if err := s.daemon("vcenter", vcNS(s.Prefix), opts.Binary, vcArgs...); err != nil {
		return err
	}
	// The loopback forwarder, in the root namespace.
	addrFile := filepath.Join(s.Dir, "proxy.addr")
	if err := s.daemon("proxy", "", opts.Binary, "lab", "proxy", "--listen", "127.0.0.1:0",
		"--netns", filepath.Join(network.NetNSDir, vcNS(s.Prefix)), "--to", fmt.Sprintf("%s:%d", VCenterAddr, APIPort), "--addr-file", addrFile); err != nil {
		return err
	}
	tokens, err := waitFiles(ctx, 20*time.Second, filepath.Join(vcDir, "admin.token"), filepath.Join(vcDir, "join.token"), addrFile)
	if err != nil {
		return err
	}
	adminToken, joinToken, local := tokens[0], tokens[1], tokens[2]
	s.LocalURL = "http://" + local
	if err := s.save(); err != nil {
		return err
	}
	c, err := client.New(s.LocalURL, adminToken)
	if err != nil {
		return err
	}
	if err := waitUntil(ctx, 20*time.Second, "vcenter to answer through "+s.LocalURL, func() (bool, error) {
		_, err := c.About(ctx)
		return err == nil, nil
	}); err != nil {
		return err
	}
	s.logf(opts, "  vcenter: %s inside the lab, %s from this machine", s.VCenterURL, s.LocalURL)

	for _, o := range []*api.Object{
		api.New(api.KindDatacenter, "/"+Datacenter, api.DatacenterSpec{}),
		api.New(api.KindCluster, clusterPath(), api.ClusterSpec{DRS: api.DRSConfig{Enabled: true, Mode: "fullyAutomated"},
			LoadBalancerAddresses: []string{LoadBalancerAddresses}}),
	} {
		if _, err := c.Create(ctx, o); err != nil && !errors.Is(err, api.ErrConflict) {
			return fmt.Errorf("create %s: %w", o.Path, err)
		}
	}

	for _, h := range s.Hosts {
		args := []string{"host", "--name", h.Name, "--cluster", clusterPath(), "--vcenter", s.VCenterURL,
			"--join", fmt.Sprintf("%s:%d", VCenterAddr, GossipPort), "--join-token", joinToken,
			"--gossip-bind", fmt.Sprintf("%s:%d", h.Address, GossipPort),
			// A fixed agent API address on every runtime: on sim hosts it is
			// also how the lab's Sampler sees what runs (GET /vms).
			"--listen", agentAPIAddr(h)}
		args = append(args, ha.Host...)
		switch opts.Runtime {
		case "containerd":
			args = append(args, "--runtime", "containerd", "--containerd-socket", s.Containerd.Socket,
				"--containerd-namespace", h.Namespace, "--state-dir", filepath.Join(s.Dir, "hosts", h.Name))
		case "sim":
			cpu, mem := opts.HostCPU, opts.HostMem
			if cpu == 0 {
				cpu = 20000
			}
			if mem == 0 {
				mem = 65536
			}
			args = append(args, "--runtime", "sim", "--cpu", strconv.FormatInt(cpu, 10), "--mem", strconv.FormatInt(mem, 10))
		}
		if opts.Runtime == "containerd" && opts.HostCPU > 0 {
			args = append(args, "--cpu", strconv.FormatInt(opts.HostCPU, 10))
		}
		if opts.Runtime == "containerd" && opts.HostMem > 0 {
			args = append(args, "--mem", strconv.FormatInt(opts.HostMem, 10))
		}
		if err := s.hostDaemon(h.Name, h.Name, h.NetNS, append([]string{opts.Binary}, args...)); err != nil {
			return err
		}
		// The host's HA agent (FDM) runs beside its host agent, in the same netns.
		if ha.FDM != nil {
			if err := s.hostDaemon(h.Name, h.Name+"-fdm", h.NetNS, append([]string{opts.Binary}, ha.FDM(h, joinToken)...)); err != nil {
				return err
			}
		}
	}
	s.logf(opts, "  waiting for %d hosts to connect...", len(s.Hosts))
	if err := waitUntil(ctx, UpTimeout, "all hosts connected", func() (bool, error) {
		states, err := hostStates(ctx, c)
		if err != nil {
			return false, nil
		}
		for _, h := range s.Hosts {
			if states[h.Name] != api.HostConnected {
				return false, s.checkAlive(h.Name)
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	s.logf(opts, "  hosts connected: %s", strings.Join(hostNames(s.Hosts), " "))

	if opts.Runtime == "containerd" {
		if err := importImage(ctx, c); err != nil {
			return err
		}
		s.logf(opts, "  content library: %s (%s)", ImageName, ImageRef)
	}

	// PSC_LAB lets psc ha.drill inject real failures into this lab.
	env := fmt.Sprintf("# podsphere lab %q: source me (. %s) and use psc\nexport PSC_URL=%s PSC_TOKEN=%s PSC_DATACENTER=%s PSC_CLUSTER=%s PSC_LAB=%s\n",
		s.Prefix, filepath.Join(s.Dir, "env"), s.LocalURL, adminToken, Datacenter, Cluster, s.Dir)
	if err := os.WriteFile(filepath.Join(s.Dir, "env"), []byte(env), 0o600); err != nil {
		return err
	}
	s.Ready = true
	if err := s.save(); err != nil {
		return err
	}
	s.logf(opts, "Lab is up. Use it from this shell:\n  . %s\n  psc ls\nTear it down with: podsphere lab down --dir %s", filepath.Join(s.Dir, "env"), s.Dir)
	return nil
}

// ensureContainerd picks the machine's containerd when it answers, else
// starts the lab's own.
func (s *State) ensureContainerd(ctx context.Context, opts Options) error {
	if !opts.PrivateContainerd && answering(ctx, opts.ContainerdSocket) {
		s.Containerd = &Containerd{Socket: opts.ContainerdSocket}
		s.CtrdNamespaces = hostNamespaces(s.Hosts)
		s.logf(opts, "  containerd: the machine's, at %s (namespaces %s)", opts.ContainerdSocket, strings.Join(s.CtrdNamespaces, " "))
		return s.save()
	}
	s.Containerd = privateContainerd(s.Dir)
	s.CtrdNamespaces = hostNamespaces(s.Hosts)
	if err := s.Containerd.writeConfig(); err != nil {
		return err
	}
	if err := s.save(); err != nil {
		return err
	}
	p, err := startPrivateContainerd(ctx, s.Containerd, filepath.Join(s.Dir, "logs", "containerd.log"))
	if p.PID != 0 {
		if serr := s.addProcess(p); serr != nil && err == nil {
			err = serr
		}
	}
	if err != nil {
		return err
	}
	s.logf(opts, "  containerd: the lab's own (pid %d), socket %s", p.PID, s.Containerd.Socket)
	return nil
}

func hostNamespaces(hosts []Host) []string {
	var ns []string
	for _, h := range hosts {
		if h.Namespace != "" {
			ns = append(ns, h.Namespace)
		}
	}
	return ns
}

func hostNames(hosts []Host) []string {
	var n []string
	for _, h := range hosts {
		n = append(n, h.Name)
	}
	return n
}

// daemon starts a podsphere daemon and records it.
func (s *State) daemon(name, netns, binary string, args ...string) error {
	return s.hostDaemon("", name, netns, append([]string{binary}, args...))
}

// hostDaemon starts and records a daemon that belongs to host ("" = to the
// lab as a whole): host.crash kills and host.restart restarts all of a
// host's daemons, whatever they are.
func (s *State) hostDaemon(host, name, netns string, argv []string) error {
	p, err := startDaemon(name, netns, argv, filepath.Join(s.Dir, "logs", name+".log"))
	if err != nil {
		return err
	}
	p.Host = host
	return s.addProcess(p)
}

// checkAlive fails fast when a daemon died instead of waiting out the timeout.
func (s *State) checkAlive(name string) error {
	if p := s.process(name); p != nil && !p.Alive() {
		return fmt.Errorf("%s exited: see %s", name, p.Log)
	}
	return nil
}

// hostStates maps host name to connection state.
func hostStates(ctx context.Context, c *client.Client) (map[string]string, error) {
	l, err := c.List(ctx, client.ListOptions{Kind: api.KindHost, Prefix: clusterPath()})
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, o := range l.Items {
		var st api.HostStatus
		_ = o.DecodeStatus(&st)
		m[o.Name()] = st.State
	}
	return m, nil
}

// importImage builds the busybox OCI archive in memory and stores it in
// vcenter's Content Library under ImageName.
func importImage(ctx context.Context, c *client.Client) error {
	var buf bytes.Buffer
	if err := imagebuild.Build(&buf, imagebuild.Options{Name: ImageRef}); err != nil {
		return fmt.Errorf("build the busybox image: %w", err)
	}
	q := url.Values{"name": {ImageName}}
	body, err := c.Raw(ctx, http.MethodPost, "/api/v1/library/import", q, &buf)
	if err != nil {
		if errors.Is(err, api.ErrConflict) {
			return nil
		}
		return fmt.Errorf("import %s into the content library: %w", ImageName, err)
	}
	return body.Close()
}

// waitFiles waits until every file exists and is non-empty, and returns their trimmed contents.
func waitFiles(ctx context.Context, timeout time.Duration, paths ...string) ([]string, error) {
	out := make([]string, len(paths))
	err := waitUntil(ctx, timeout, "files "+strings.Join(paths, ", "), func() (bool, error) {
		for i, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil || len(bytes.TrimSpace(b)) == 0 {
				return false, nil
			}
			out[i] = strings.TrimSpace(string(b))
		}
		return true, nil
	})
	return out, err
}

// waitUntil polls cond until it holds, fails, or timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// logTails returns the last n lines of each daemon's log, for error messages.
func (s *State) logTails(n int) string {
	var b strings.Builder
	for _, p := range s.Processes {
		raw, err := os.ReadFile(p.Log)
		if err != nil || len(raw) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
		fmt.Fprintf(&b, "\n--- %s (%s), last lines:\n%s", p.Name, p.Log, strings.Join(lines[max(0, len(lines)-n):], "\n"))
	}
	return b.String()
}

// ==== vSphere HA wiring (issue 7) ==========================================
//
// SharedDir (DIR/shared) is the heartbeat datastore: one directory vcenter,
// every host agent and every host's FDM see (internal/hads keeps its files
// under DIR/shared/.podsphere-ha). haWiring below is the ONE place the lab
// hands HA's pieces their flags.

// SharedDir is the heartbeat datastore's directory under DIR.
const SharedDir = "shared"

// haDaemons are the extra arguments HA's pieces get, from haWiring.
type haDaemons struct {
	Summary string   // one line for `lab up`'s output
	VCenter []string // appended to `podsphere vcenter ...`
	Host    []string // appended to every `podsphere host ...`
	// FDM is the full argv (after the binary) of host h's `podsphere fdm`;
	// nil when the binary has no fdm command.
	FDM func(h Host, joinToken string) []string
}

// haWiring builds the HA arguments of the lab's daemons. Each flag is passed
// only when the binary's --help lists it, and the FDM is started only when
// `BIN fdm --help` succeeds, so a binary without HA builds the lab it always
// did and one with HA gets a wired-up lab, with no change here. The lab does
// not turn HA on for its cluster: that is the admin's (or the demo's) call.
func (s *State) haWiring(ctx context.Context, binary, rt string) haDaemons {
	shared := filepath.Join(s.Dir, SharedDir)
	var d haDaemons
	var wired []string
	if helpHas(ctx, binary, "vcenter")("ha-datastore") {
		d.VCenter = []string{"--ha-datastore", shared}
		wired = append(wired, "vcenter")
	}
	if helpHas(ctx, binary, "host")("ha-datastore") {
		d.Host = []string{"--ha-datastore", shared}
		wired = append(wired, "host agents")
	}
	fdm := helpHas(ctx, binary, "fdm")
	// Without containerd the FDM could not see the (simulated) VMs, unless it says it runs on sim too.
	if fdm("name") && (rt == "containerd" || fdm("runtime")) {
		d.FDM = func(h Host, joinToken string) []string {
			args := []string{"fdm"}
			add := func(flag, value string) {
				if fdm(flag) {
					args = append(args, "--"+flag, value)
				}
			}
			add("name", h.Name)
			add("cluster", clusterPath())
			add("vcenter", s.VCenterURL)
			add("join-token", joinToken)
			add("ha-datastore", shared)
			add("address", h.Address)
			add("state-dir", filepath.Join(s.Dir, "fdm", h.Name))
			add("runtime", rt)
			if rt == "sim" {
				// A sim host's VMs live in its agent: the FDM reads and stops them there.
				add("agent-api", agentAPIAddr(h))
			}
			if rt == "containerd" && s.Containerd != nil {
				add("containerd-socket", s.Containerd.Socket)
				add("containerd-namespace", h.Namespace)
			}
			return args
		}
		wired = append(wired, "an FDM on each host")
	}
	if len(wired) == 0 {
		d.Summary = "this podsphere binary has no HA pieces (no --ha-datastore, no fdm); heartbeat datastore " + shared + " unused"
	} else {
		d.Summary = "heartbeat datastore " + shared + " wired to " + strings.Join(wired, ", ")
	}
	return d
}

// helpHas runs `binary sub --help` once and returns a test for whether a
// flag is listed; a failing --help (no such command) lists nothing.
func helpHas(ctx context.Context, binary, sub string) func(flag string) bool {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, binary, sub, "--help").CombinedOutput()
	if err != nil {
		return func(string) bool { return false }
	}
	help := string(out)
	return func(flag string) bool {
		for i := 0; ; {
			j := strings.Index(help[i:], "--"+flag)
			if j < 0 {
				return false
			}
			end := i + j + 2 + len(flag)
			if end == len(help) || strings.ContainsRune(" \t\n=", rune(help[end])) {
				return true
			}
			i = end
		}
	}
}
