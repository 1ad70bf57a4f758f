package ha

import (
	"flag"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/internal/scenario"
)

// Scenario tests: testdata/*.txt are scripts of commands, each followed by
// "----" and the output it must produce; `go test -rewrite` rewrites the
// outputs from what the planner does (read the diff before committing).
//
// The harness plays the cluster around the planner: live hosts renew their
// datastore heartbeat and their VMs' locks every second, a restarted VM
// runs at once on its new host and is ready a second later (unless marked
// slow), and every plan is applied as vcenter's HA controller would.
//
//	config [datastores=yes|no] [ready=COND] [default=PRIO] [enabled=no] [postready=D]
//	hosts NAME... [cpu=MHz] [mem=MB]
//	vm NAME host=H [prio=P] [res=MHz] [mem=MB] [group=G,...] [slow] [off]
//	dep NAME GROUP DEPENDS_ON
//	crash HOST            the host dies: no gossip, no heartbeat, no locks
//	partition HOST        gossip lost, the host and its VMs run on, heartbeats continue
//	isolate HOST RESPONSE the host is isolated; powerOff stops and releases its VMs, disabled leaves them
//	heal HOST             gossip is back (a crashed host comes back empty)
//	startfail HOST ERROR  the host cannot power VMs on: what HA restarts there stays off, the host reporting ERROR
//	ready VM              the VM's readiness probe passes
//	tick DURATION         time passes in 1 s steps; each step's plan is applied
//	plan                  the plan now, not applied
//	show                  where every VM runs
var rewrite = flag.Bool("rewrite", false, "rewrite testdata expectations")

func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no scenarios")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { run(t, f) })
	}
}

type simHost struct {
	Host
	crashed, partitioned bool
	// startFail is the error the host reports for every VM it is to power on ("" = it can).
	startFail string
}

type simVM struct {
	VM
	slow bool
	// copies counts the hosts the VM runs on at once, for the invariant.
	runsOn map[string]bool
}

type harness struct {
	t     *testing.T
	start time.Time
	now   time.Time
	cfg   Config
	hosts map[string]*simHost
	vms   map[string]*simVM
	deps  []Dependency
	log   []string
	// gaveUp records the VMs whose give-up was logged.
	gaveUp map[string]bool
}

func (h *harness) state() State {
	st := State{Now: h.now, Config: h.cfg, Dependencies: h.deps}
	for _, x := range h.hosts {
		st.Hosts = append(st.Hosts, x.Host)
	}
	for _, v := range h.vms {
		st.VMs = append(st.VMs, v.VM)
	}
	return st
}

func (h *harness) at() string { return "+" + h.now.Sub(h.start).String() }

// step advances one second: the world acts, then the planner.
func (h *harness) step() {
	h.now = h.now.Add(time.Second)
	for _, x := range h.hosts {
		if !x.crashed && (x.Gossip || x.partitioned || x.Isolated) && h.cfg.Datastores {
			x.Heartbeat = h.now
		}
	}
	for _, v := range h.vms {
		x := h.hosts[v.Host]
		if x != nil && !x.crashed && v.Running {
			v.Lock = h.now
			if !v.Ready && !v.slow && !v.RestartedAt.IsZero() && h.now.Sub(v.RestartedAt) >= time.Second {
				v.Ready, v.ReadySince = true, h.now
			}
		}
	}
	h.apply(Decide(h.state()))
	h.checkCopies()
}

func (h *harness) apply(p Plan) {
	for _, r := range p.Restarts {
		v := h.vms[r.VM]
		v.Attempts, v.LastAttempt = r.Attempt, h.now
		if r.Host == "" {
			v.LastError = r.Reason
			h.log = append(h.log, fmt.Sprintf("%s %s: no host (attempt %d): %s", h.at(), r.VM, r.Attempt, r.Reason))
			continue
		}
		h.log = append(h.log, fmt.Sprintf("%s restart %s on %s (%s, attempt %d): %s", h.at(), r.VM, r.Host, r.Priority, r.Attempt, r.Reason))
		delete(v.runsOn, v.Host)
		v.Host, v.Running, v.Ready, v.Released, v.RestartedAt = r.Host, true, false, false, h.now
		v.LastError, v.PowerOnFailed = "", ""
		if e := h.hosts[r.Host].startFail; e != "" {
			// The attempt stands (vcenter keeps it until the VM runs); the host says why it is off.
			v.Running, v.PowerOnFailed = false, e
			continue
		}
		v.Attempts = 0 // it runs: vcenter's HA controller clears the record
		v.runsOn[r.Host] = true
	}
	for _, g := range p.GivenUp {
		if !h.gaveUp[g.VM] {
			h.gaveUp[g.VM] = true
			h.log = append(h.log, fmt.Sprintf("%s give up %s: %s", h.at(), g.VM, g.Reason))
		}
	}
}

// checkCopies is the invariant: no VM runs on two hosts at once. A VM
// still "runs" on a partitioned or isolated host until that host stops it.
func (h *harness) checkCopies() {
	for name, v := range h.vms {
		n := 0
		for hn := range v.runsOn {
			if x := h.hosts[hn]; x != nil && !x.crashed {
				n++
			}
		}
		if n > 1 {
			h.t.Errorf("%s: %s runs on %d hosts at once: %v", h.at(), name, n, v.runsOn)
		}
	}
}

func kv(args []string) (map[string]string, []string) {
	m := map[string]string{}
	var rest []string
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			m[k] = v
		} else {
			rest = append(rest, a)
		}
	}
	return m, rest
}

func (h *harness) do(line string) string {
	f := strings.Fields(line)
	cmd, args := f[0], f[1:]
	o, rest := kv(args)
	switch cmd {
	case "config":
		h.cfg.Datastores = o["datastores"] != "no"
		if v := o["ready"]; v != "" {
			h.cfg.ReadyCondition = v
		}
		if v := o["default"]; v != "" {
			h.cfg.DefaultPriority = v
		}
		h.cfg.Enabled = o["enabled"] != "no"
		if v := o["postready"]; v != "" {
			d, _ := time.ParseDuration(v)
			h.cfg.Timings.PostReadyDelay = d
		}
	case "hosts":
		cpu, mem := int64(10000), int64(32768)
		if v := o["cpu"]; v != "" {
			cpu, _ = strconv.ParseInt(v, 10, 64)
		}
		if v := o["mem"]; v != "" {
			mem, _ = strconv.ParseInt(v, 10, 64)
		}
		for _, n := range rest {
			h.hosts[n] = &simHost{Host: Host{Name: n, Gossip: true, Heartbeat: h.now, CPUCapacity: cpu, MemCapacity: mem}}
		}
	case "vm":
		v := &simVM{VM: VM{Name: rest[0], Host: o["host"], Priority: o["prio"], On: true, Running: true, Ready: true, ReadySince: h.now,
			NumCPU: 1, MemoryMB: 64, Lock: h.now}, runsOn: map[string]bool{o["host"]: true}}
		v.CPUReservation, _ = strconv.ParseInt(o["res"], 10, 64)
		v.MemReservation, _ = strconv.ParseInt(o["mem"], 10, 64)
		if g := o["group"]; g != "" {
			v.Groups = strings.Split(g, ",")
		}
		for _, r := range rest[1:] {
			switch r {
			case "slow":
				v.slow = true
			case "off":
				v.On, v.Running, v.Ready = false, false, false
				v.runsOn = map[string]bool{}
			}
		}
		h.vms[v.Name] = v
	case "dep":
		d := Dependency{Name: rest[0], Group: rest[1], DependsOn: rest[2]}
		var vms []VM
		for _, v := range h.vms {
			vms = append(vms, v.VM)
		}
		if err := ValidateDependencies(append(append([]Dependency(nil), h.deps...), d), vms, h.cfg.DefaultPriority); err != nil {
			return "error: " + strings.TrimSuffix(err.Error(), ": invalid")
		}
		h.deps = append(h.deps, d)
	case "crash", "partition", "isolate":
		x := h.hosts[rest[0]]
		x.Gossip, x.SilentSince = false, h.now
		switch cmd {
		case "crash":
			x.crashed = true
			for _, v := range h.vms {
				if v.Host == x.Name {
					v.Running, v.Ready = false, false
				}
			}
		case "partition":
			x.partitioned = true
		case "isolate":
			x.Isolated = true
			if len(rest) > 1 && rest[1] == "powerOff" {
				for _, v := range h.vms {
					if v.Host == x.Name && v.On {
						v.Running, v.Ready, v.Released = false, false, true
						delete(v.runsOn, x.Name)
					}
				}
			}
		}
	case "heal":
		x := h.hosts[rest[0]]
		x.Gossip, x.Isolated, x.partitioned, x.SilentSince = true, false, false, time.Time{}
		x.crashed = false
		// Its agent starts again what vcenter still assigns to it.
		for _, v := range h.vms {
			if v.Host == x.Name && v.On && !v.Running {
				v.Running, v.Ready, v.ReadySince, v.Released = true, true, h.now, false
				v.runsOn[x.Name] = true
			}
		}
	case "startfail":
		h.hosts[rest[0]].startFail = strings.Join(args[1:], " ")
	case "ready":
		v := h.vms[rest[0]]
		v.Ready, v.ReadySince, v.slow = true, h.now, false
	case "tick":
		d, err := time.ParseDuration(rest[0])
		if err != nil {
			h.t.Fatal(err)
		}
		h.log = nil
		for end := h.now.Add(d); h.now.Before(end); {
			h.step()
		}
		if len(h.log) == 0 {
			return "(nothing)"
		}
		return strings.Join(h.log, "\n")
	case "plan":
		p := Decide(h.state())
		var b strings.Builder
		for _, hv := range p.Hosts {
			if hv.State != HostLive {
				fmt.Fprintf(&b, "host %s %s: %s\n", hv.Host, hv.State, hv.Reason)
			}
		}
		for _, r := range p.Restarts {
			fmt.Fprintf(&b, "restart %s on %s (%s)%s\n", r.VM, orDash(r.Host), r.Priority, reason(r.Reason))
		}
		for _, w := range p.Waiting {
			fmt.Fprintf(&b, "wait %s: %s\n", w.VM, w.Reason)
		}
		for _, w := range p.GivenUp {
			fmt.Fprintf(&b, "given up %s: %s\n", w.VM, w.Reason)
		}
		return b.String()
	case "show":
		names := make([]string, 0, len(h.vms))
		for n := range h.vms {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		for _, n := range names {
			v := h.vms[n]
			state := "off"
			switch {
			case v.Running && v.Ready:
				state = "ready"
			case v.Running:
				state = "running"
			case v.On:
				state = "down"
			}
			fmt.Fprintf(&b, "%s on %s: %s\n", n, v.Host, state)
		}
		return b.String()
	default:
		h.t.Fatalf("unknown command %q", cmd)
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func reason(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func run(t *testing.T, file string) {
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	h := &harness{t: t, start: start, now: start, hosts: map[string]*simHost{}, vms: map[string]*simVM{}, gaveUp: map[string]bool{},
		cfg: Config{Enabled: true, Datastores: true, Timings: DefaultTimings()}}
	scenario.Run(t, file, *rewrite, h.do)
}
