package controllers

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/internal/scenario"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// Scenario tests: testdata/*.txt are scripts of commands, each followed by
// "----" and the output it must produce. `go test -rewrite` rewrites the
// expected outputs from what the code does (read the diff before committing).
//
// Commands (the cluster is /dc1/host/c1, hosts esx-01.., VMs in /dc1/vm):
//
//	hosts N [cpu=MHz] [mem=MB]     N connected hosts join
//	pool NAME [vms=N] [cpu=MHz]    a pool under the root pool, with a quota
//	quota NAME vms=N               change the pool's VM quota
//	rs NAME replicas=N [ns=NS] [res=MHz] [minready=S] [labels=k=v,...]
//	scale KIND/NAME N              change replicas of a replicaset or deployment
//	report [N]                     every host reports its VMs as it would: running
//	                               (and ready) when powered on, off when powered off;
//	                               N rounds, the controllers acting after each;
//	                               an image named *broken* is never ready
//	report-off VM                  the VM's host reports it off (a crash);
//	                               VM is a path, a name in /dc1/vm, or KIND/NAME#i
//	                               (a workload's i-th member by path)
//	fail VM                        the VM's host reports it Failed
//	delete PATH                    an admin removes the object
//	power-off VM                   an admin powers the VM off
//	host-down HOST / host-up HOST  gossip declares the host failed / alive
//	relabel VM k=v,...             an admin replaces the VM's labels
//	orphan VM [labels=k=v,...]     an admin creates a powered-on VM without owner
//	restart                        vcenter restarts: controllers lose their memory
//	tick DURATION                  the clock moves on; due work runs
//	!COMMAND                       COMMAND, without the controllers acting after it
//	show KIND/NAME                 the object's status and its members
//	events                         the controllers' events since the last events
//	vms                            how many VMs the inventory holds
//	deploy NAME replicas=N [image=I] [surge=S] [unavailable=U] [strategy=Recreate]
//	       [minready=S] [deadline=S]
//	set-image deployment/NAME IMAGE   a new template (a rolling update)
//	undo deployment/NAME REV       the template of revision REV again
//	pause / resume deployment/NAME
//	ds NAME [hosts=k=v]            a DaemonSet (on hosts with those labels)
//	job NAME [completions=N] [parallelism=N] [backoff=N] [deadline=S]
//	succeed VM                     the VM's host reports it Succeeded
//	hpa NAME target=KIND/NAME min=N max=N cpu=PERCENT [down=S]
//	usage KIND/NAME MHZ            the workload's running members report MHz of CPU use
//	label-host HOST k=v,...        an admin sets the host's labels
//	maintenance HOST on|off        an admin puts the host in or out of maintenance mode
//	peak deployment/NAME           the most VMs it had on or stopping at once
//	                               (after every reconcile the harness also checks
//	                               that this never exceeds replicas + maxSurge)
var rewrite = flag.Bool("rewrite", false, "rewrite testdata expectations")

func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenario(t, f) })
	}
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

type harness struct {
	t      *testing.T
	dir    string
	clock  *fakeClock
	inv    *inventory.Inventory
	runner *Runner
	nHosts int
	seen   uint64 // last event key shown
	// maxSeen is the most VMs each Deployment had on or stopping at once.
	maxSeen  map[string]int
	lastSeen map[string]int
}

var epoch = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, dir: t.TempDir(), clock: &fakeClock{now: epoch}, maxSeen: map[string]int{}, lastSeen: map[string]int{}}
	h.open()
	t.Cleanup(func() { h.inv.Close() })
	return h
}

func (h *harness) open() {
	inv, err := inventory.Open(h.dir, inventory.Options{Now: h.clock.Now, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		h.t.Fatal(err)
	}
	h.inv = inv
	h.runner = New(inv, Options{Clock: h.clock, Logger: log.New(io.Discard, "", 0), AfterReconcile: h.checkSurge},
		NewReplicaSets(inv, h.clock, 1), NewDeployments(inv, h.clock), NewDaemonSets(inv, h.clock),
		NewJobs(inv, h.clock, 2), NewAutoscalers(inv, h.clock))
}

func (h *harness) drain() { h.runner.Drain(context.Background()) }

func runScenario(t *testing.T, file string) {
	h := newHarness(t)
	scenario.Run(t, file, *rewrite, func(line string) string {
		// "!cmd" runs cmd without letting the controllers act afterwards
		// (a crash right after the write).
		got := h.do(strings.TrimPrefix(line, "!"))
		if !strings.HasPrefix(line, "!") {
			h.drain()
		}
		return got
	})
}

func kv(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		m[k] = v
	}
	return m
}

func parseLabels(s string) map[string]string {
	if s == "" {
		return nil
	}
	m := map[string]string{}
	for _, p := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return m
}

const (
	dc      = "/dc1"
	cluster = "/dc1/host/c1"
	root    = "/dc1/host/c1/Resources"
)

func (h *harness) must(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

// vmPath resolves a VM named in a script: a path, a name in /dc1/vm, or
// KIND/NAME#i, the i-th member (by path) of a workload that is neither
// removing nor finished.
func (h *harness) vmPath(name string) string {
	if w, i, ok := strings.Cut(name, "#"); ok {
		n, _ := strconv.Atoi(i)
		owner := workloadPath(w)
		var paths []string
		for _, vm := range h.inv.List(store.Query{Kind: api.KindVirtualMachine}).Items {
			var spec api.VMSpec
			var st api.VMStatus
			_ = vm.DecodeSpec(&spec)
			_ = vm.DecodeStatus(&st)
			if vm.Owner == owner && !spec.Removing && st.Phase == "" {
				paths = append(paths, vm.Path)
			}
		}
		if n >= len(paths) {
			h.t.Fatalf("%s has %d members, no #%d", owner, len(paths), n)
		}
		return paths[n]
	}
	if strings.HasPrefix(name, "/") {
		return name
	}
	return dc + "/vm/" + name
}

func workloadPath(arg string) string {
	kind, name, _ := strings.Cut(arg, "/")
	if strings.HasPrefix(name, "/") {
		return name
	}
	return dc + "/" + kind + "/" + name
}

func (h *harness) do(line string) string {
	f := strings.Fields(line)
	cmd, args := f[0], f[1:]
	inv := h.inv
	errText := func(err error) string {
		if err != nil {
			return "error: " + api.Message(err)
		}
		return ""
	}
	switch cmd {
	case "hosts":
		n, _ := strconv.Atoi(args[0])
		o := kv(args[1:])
		cpu, mem := int64(20000), int64(65536)
		if v, ok := o["cpu"]; ok {
			cpu, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := o["mem"]; ok {
			mem, _ = strconv.ParseInt(v, 10, 64)
		}
		if h.nHosts == 0 {
			_, err := inv.Create("admin", api.New(api.KindDatacenter, dc, nil))
			h.must(err)
			_, err = inv.Create("admin", api.New(api.KindCluster, cluster, nil))
			h.must(err)
		}
		for i := 0; i < n; i++ {
			h.nHosts++
			_, err := inv.Join(api.JoinRequest{Name: fmt.Sprintf("esx-%02d", h.nHosts), Cluster: cluster, Address: "127.0.0.1:1", Runtime: "sim", CPUCapacity: cpu, MemCapacity: mem})
			h.must(err)
		}
	case "pool":
		o := kv(args[1:])
		spec := api.PoolSpec{CPU: api.Allocation{Limit: -1, Expandable: true, Shares: api.Shares{Level: "normal"}}, Mem: api.Allocation{Limit: -1, Expandable: true, Shares: api.Shares{Level: "normal"}}}
		q := api.QuotaLimits{VMs: -1, ReplicaSets: -1, Services: -1, VolumeClaims: -1, ConfigMaps: -1, Secrets: -1, StorageGB: -1, CPUMHz: -1, MemMB: -1}
		quota := false
		if v, ok := o["vms"]; ok {
			q.VMs, _ = strconv.ParseInt(v, 10, 64)
			quota = true
		}
		if v, ok := o["cpu"]; ok {
			q.CPUMHz, _ = strconv.ParseInt(v, 10, 64)
			quota = true
		}
		if quota {
			spec.Quota = &q
		}
		_, err := inv.Create("admin", api.New(api.KindResourcePool, root+"/"+args[0], spec))
		return errText(err)
	case "quota":
		o, err := inv.Get(root + "/" + args[0])
		h.must(err)
		var spec api.PoolSpec
		h.must(o.DecodeSpec(&spec))
		v, _ := strconv.ParseInt(kv(args[1:])["vms"], 10, 64)
		spec.Quota.VMs = v
		o.SetSpec(spec)
		_, err = inv.Change("admin", o)
		return errText(err)
	case "rs":
		o := kv(args[1:])
		n, _ := strconv.Atoi(o["replicas"])
		pool := root
		if ns := o["ns"]; ns != "" {
			pool = root + "/" + ns
		}
		lbl := parseLabels(o["labels"])
		if lbl == nil {
			lbl = map[string]string{"app": args[0]}
		}
		vm := api.VMSpec{NumCPU: 1, MemoryMB: 64, CPU: api.Allocation{Limit: -1, Shares: api.Shares{Level: "normal"}}, Mem: api.Allocation{Limit: -1, Shares: api.Shares{Level: "normal"}},
			Containers: []api.Container{{Name: "main", Image: "busybox"}}}
		if v, ok := o["res"]; ok {
			vm.CPU.Reservation, _ = strconv.ParseInt(v, 10, 64)
		}
		spec := api.ReplicaSetSpec{Pool: pool, Replicas: n, Selector: api.LabelSelector{MatchLabels: lbl}, Template: api.VMTemplate{Labels: lbl, Spec: vm}}
		spec.MinReadySeconds, _ = strconv.Atoi(o["minready"])
		_, err := inv.Create("admin", api.New(api.KindReplicaSet, api.NamespacedPath(api.KindReplicaSet, "dc1", o["ns"], args[0]), spec))
		return errText(err)
	case "deploy":
		o := kv(args[1:])
		n, _ := strconv.Atoi(o["replicas"])
		lbl := map[string]string{"app": args[0]}
		image := o["image"]
		if image == "" {
			image = "busybox:1"
		}
		vm := api.VMSpec{NumCPU: 1, MemoryMB: 64, CPU: api.Allocation{Limit: -1, Shares: api.Shares{Level: "normal"}}, Mem: api.Allocation{Limit: -1, Shares: api.Shares{Level: "normal"}},
			Containers: []api.Container{{Name: "main", Image: image}}}
		spec := api.DeploymentSpec{Pool: root, Replicas: n, Selector: api.LabelSelector{MatchLabels: lbl}, Template: api.VMTemplate{Labels: lbl, Spec: vm},
			RevisionHistoryLimit: 10}
		spec.MinReadySeconds, _ = strconv.Atoi(o["minready"])
		spec.ProgressDeadlineSeconds, _ = strconv.Atoi(o["deadline"])
		if o["strategy"] == "Recreate" {
			spec.Strategy.Type = api.Recreate
		}
		for _, f := range []struct {
			key string
			dst **api.IntOrString
		}{{"surge", &spec.Strategy.MaxSurge}, {"unavailable", &spec.Strategy.MaxUnavailable}} {
			if v, ok := o[f.key]; ok {
				x := api.Str(v)
				if n, err := strconv.Atoi(v); err == nil {
					x = api.Int(n)
				}
				*f.dst = &x
			}
		}
		_, err := inv.Create("admin", api.New(api.KindDeployment, dc+"/deployment/"+args[0], spec))
		return errText(err)
	case "set-image", "undo", "pause", "resume":
		p := workloadPath(args[0])
		o, err := inv.Get(p)
		h.must(err)
		var spec api.DeploymentSpec
		h.must(o.DecodeSpec(&spec))
		switch cmd {
		case "set-image":
			spec.Template.Spec.Containers[0].Image = args[1]
		case "undo":
			// the template of the given revision's replica set
			rev, _ := strconv.ParseInt(args[1], 10, 64)
			found := false
			for _, rs := range inv.List(store.Query{Kind: api.KindReplicaSet}).Items {
				var rspec api.ReplicaSetSpec
				_ = rs.DecodeSpec(&rspec)
				if rs.Owner == p && rspec.Revision == rev {
					t := rspec.Template
					delete(t.Labels, TemplateHashLabel)
					spec.Template = t
					found = true
				}
			}
			if !found {
				return fmt.Sprintf("error: no revision %d", rev)
			}
		case "pause", "resume":
			spec.Paused = cmd == "pause"
		}
		o.SetSpec(spec)
		_, err = inv.Change("admin", o)
		return errText(err)
	case "ds", "job":
		o := kv(args[1:])
		lbl := map[string]string{"app": args[0]}
		vm := api.VMSpec{NumCPU: 1, MemoryMB: 64, CPU: api.Allocation{Limit: -1, Shares: api.Shares{Level: "normal"}}, Mem: api.Allocation{Limit: -1, Shares: api.Shares{Level: "normal"}},
			Containers: []api.Container{{Name: "main", Image: "busybox:1"}}, HostSelector: parseLabels(o["hosts"])}
		tmpl := api.VMTemplate{Labels: lbl, Spec: vm}
		if cmd == "ds" {
			_, err := inv.Create("admin", api.New(api.KindDaemonSet, dc+"/daemonset/"+args[0], api.DaemonSetSpec{Pool: root, Selector: api.LabelSelector{MatchLabels: lbl}, Template: tmpl}))
			return errText(err)
		}
		tmpl.Spec.RestartPolicy = "Never"
		js := api.JobSpec{Pool: root, Completions: 1, Parallelism: 1, BackoffLimit: 6, Selector: api.LabelSelector{MatchLabels: lbl}, Template: tmpl}
		for k, dst := range map[string]*int{"completions": &js.Completions, "parallelism": &js.Parallelism, "backoff": &js.BackoffLimit, "deadline": &js.ActiveDeadlineSeconds} {
			if v, ok := o[k]; ok {
				*dst, _ = strconv.Atoi(v)
			}
		}
		_, err := inv.Create("admin", api.New(api.KindJob, dc+"/job/"+args[0], js))
		return errText(err)
	case "succeed":
		o, err := inv.Get(h.vmPath(args[0]))
		h.must(err)
		var st api.VMStatus
		_ = o.DecodeStatus(&st)
		st.Phase, st.Ready = api.PhaseSucceeded, false
		o.SetStatus(st)
		_, err = inv.SetStatus("host", o)
		return errText(err)
	case "hpa":
		o := kv(args[1:])
		spec := api.AutoscalerSpec{Target: workloadPath(o["target"])}
		spec.MinReplicas, _ = strconv.Atoi(o["min"])
		spec.MaxReplicas, _ = strconv.Atoi(o["max"])
		spec.TargetCPUUtilization, _ = strconv.Atoi(o["cpu"])
		if v, ok := o["down"]; ok {
			n, _ := strconv.Atoi(v)
			spec.ScaleDownStabilizationSeconds = &n
		}
		_, err := inv.Create("admin", api.New(api.KindAutoscaler, dc+"/hpa/"+args[0], spec))
		return errText(err)
	case "usage":
		// every running member of the workload reports MHz of CPU use
		owner := workloadPath(args[0])
		mhz, _ := strconv.ParseInt(args[1], 10, 64)
		owners := map[string]bool{owner: true}
		for _, rs := range inv.List(store.Query{Kind: api.KindReplicaSet}).Items {
			if rs.Owner == owner {
				owners[rs.Path] = true
			}
		}
		for _, vm := range inv.List(store.Query{Kind: api.KindVirtualMachine}).Items {
			var st api.VMStatus
			_ = vm.DecodeStatus(&st)
			if owners[vm.Owner] && st.PowerState == api.PoweredOn {
				st.CPUUsageMHz = mhz
				vm.SetStatus(st)
				_, err := inv.SetStatus("host", vm)
				h.must(err)
			}
		}
	case "label-host", "maintenance":
		o, err := inv.Get(cluster + "/" + args[0])
		h.must(err)
		if cmd == "label-host" {
			o.Labels = parseLabels(args[1])
		} else {
			var hs api.HostSpec
			_ = o.DecodeSpec(&hs)
			hs.Maintenance = args[1] == "on"
			o.SetSpec(hs)
		}
		_, err = inv.Change("admin", o)
		return errText(err)
	case "scale":
		p := workloadPath(args[0])
		n, _ := strconv.Atoi(args[1])
		o, err := inv.Get(p)
		h.must(err)
		var spec map[string]any
		h.must(o.DecodeSpec(&spec))
		spec["replicas"] = n
		o.SetSpec(spec)
		_, err = inv.Change("admin", o)
		return errText(err)
	case "report":
		n := 1
		if len(args) > 0 {
			n, _ = strconv.Atoi(args[0])
		}
		for i := 0; i < n; i++ {
			h.reportAll()
			h.drain()
		}
	case "report-off", "fail":
		o, err := inv.Get(h.vmPath(args[0]))
		h.must(err)
		var st api.VMStatus
		_ = o.DecodeStatus(&st)
		st.Ready = false
		if cmd == "fail" {
			st.Phase, st.Message = api.PhaseFailed, "exit code 1"
			st.PowerState = api.PoweredOff
		} else {
			st.PowerState = api.PoweredOff
		}
		o.SetStatus(st)
		_, err = inv.SetStatus("host", o)
		return errText(err)
	case "delete":
		p := args[0]
		if !strings.HasPrefix(p, "/") {
			p = h.vmPath(p)
		}
		return errText(inv.Remove("admin", p, inventory.RemoveOptions{}))
	case "power-off":
		_, err := inv.Power("admin", h.vmPath(args[0]), "off")
		return errText(err)
	case "host-down", "host-up":
		inv.SetConnection(cluster+"/"+args[0], cmd == "host-up")
	case "relabel":
		o, err := inv.Get(h.vmPath(args[0]))
		h.must(err)
		o.Labels = parseLabels(args[1])
		_, err = inv.Change("admin", o)
		return errText(err)
	case "orphan":
		o := kv(args[1:])
		lbl := parseLabels(o["labels"])
		vm := api.New(api.KindVirtualMachine, h.vmPath(args[0]), api.VMSpec{Pool: root, PowerState: api.PoweredOn, NumCPU: 1, MemoryMB: 64,
			Containers: []api.Container{{Name: "main", Image: "busybox"}}})
		vm.Labels = lbl
		_, err := inv.Create("admin", vm)
		return errText(err)
	case "restart":
		h.must(h.inv.Close())
		h.open()
	case "tick":
		d, err := time.ParseDuration(args[0])
		h.must(err)
		// Step to each due time in turn, so work due inside the interval runs then.
		end := h.clock.now.Add(d)
		for {
			next := h.runner.NextDue()
			if next.IsZero() || next.After(end) {
				break
			}
			if next.After(h.clock.now) {
				h.clock.now = next
			}
			h.drain()
		}
		h.clock.now = end
	case "show":
		return h.show(workloadPath(args[0]))
	case "events":
		return h.events()
	case "peak":
		p := workloadPath(args[0])
		return fmt.Sprintf("at most %d VMs on or stopping at once", h.maxSeen[p])
	case "vms":
		return fmt.Sprintf("%d VMs", len(h.inv.List(store.Query{Kind: api.KindVirtualMachine}).Items))
	default:
		h.t.Fatalf("unknown command %q", cmd)
	}
	return ""
}

// reportAll plays every host agent: each powered-on VM on a connected host
// runs and is ready; each powered-off one is off.
func (h *harness) reportAll() {
	for _, o := range h.inv.List(store.Query{Kind: api.KindVirtualMachine}).Items {
		var spec api.VMSpec
		var st api.VMStatus
		_ = o.DecodeSpec(&spec)
		_ = o.DecodeStatus(&st)
		if spec.Host == "" || hostState(h.inv, spec.Host) == api.HostNotResponding {
			continue
		}
		want := st
		want.Host = spec.Host
		if spec.PowerState == api.PoweredOn && st.Phase != api.PhaseFailed {
			// An image named "*broken*" runs but never passes its readiness probe.
			broken := len(spec.Containers) > 0 && strings.Contains(spec.Containers[0].Image, "broken")
			want.PowerState, want.Ready = api.PoweredOn, !broken
			if !st.Ready && want.Ready {
				want.ReadySince = h.clock.now
			}
		} else {
			want.PowerState, want.Ready, want.ReadySince = api.PoweredOff, false, time.Time{}
		}
		if want.PowerState == st.PowerState && want.Ready == st.Ready && want.Host == st.Host {
			continue
		}
		o.SetStatus(want)
		_, err := h.inv.SetStatus("host", o)
		h.must(err)
	}
}

func (h *harness) show(path string) string {
	o, err := h.inv.Get(path)
	if err != nil {
		return "error: " + api.Message(err)
	}
	var b strings.Builder
	switch o.Kind {
	case api.KindDeployment:
		return h.showDeployment(o)
	case api.KindDaemonSet, api.KindJob, api.KindAutoscaler:
		return h.showOther(o)
	}
	var st api.ReplicaSetStatus
	_ = o.DecodeStatus(&st)
	fmt.Fprintf(&b, "%s: replicas %d, running %d, ready %d, available %d\n", o.Path, st.Replicas, st.Running, st.ReadyReplicas, st.AvailableReplicas)
	for _, w := range st.Waiting {
		fmt.Fprintf(&b, "  waiting: %s: %s: %s (retry at +%s)\n", w.VM, w.Reason, w.Message, w.RetryAt.Sub(h.clock.now))
	}
	for _, c := range st.Conditions {
		if c.Status == "True" {
			fmt.Fprintf(&b, "  condition %s: %s\n", c.Type, c.Reason)
		}
	}
	perHost := map[string]int{}
	var lines []string
	for _, vm := range h.inv.List(store.Query{Kind: api.KindVirtualMachine}).Items {
		if vm.Owner != path {
			continue
		}
		var spec api.VMSpec
		var vs api.VMStatus
		_ = vm.DecodeSpec(&spec)
		_ = vm.DecodeStatus(&vs)
		state := spec.PowerState
		if spec.Removing {
			state = "removing"
		}
		if vs.PowerState != "" {
			state += "/" + vs.PowerState
		}
		lines = append(lines, state)
		if spec.PowerState == api.PoweredOn {
			perHost[api.Base(spec.Host)]++
		}
	}
	sort.Strings(lines)
	counts := map[string]int{}
	var order []string
	for _, l := range lines {
		if counts[l] == 0 {
			order = append(order, l)
		}
		counts[l]++
	}
	for _, l := range order {
		fmt.Fprintf(&b, "  members %s: %d\n", l, counts[l])
	}
	var hosts []string
	for hst, n := range perHost {
		hosts = append(hosts, fmt.Sprintf("%s=%d", hst, n))
	}
	sort.Strings(hosts)
	if len(hosts) > 0 {
		fmt.Fprintf(&b, "  on hosts: %s\n", strings.Join(hosts, " "))
	}
	return b.String()
}

// events lists the events controllers wrote since the last call: routine
// ones (created, placed) as counts, the rest in full, sorted so the
// order of concurrent creates does not matter.
func (h *harness) events() string {
	counts := map[string]int{}
	var lines []string
	for _, e := range h.inv.List(store.Query{Kind: api.KindEvent}).Items {
		var es api.EventSpec
		_ = e.DecodeSpec(&es)
		if es.Key <= h.seen {
			continue
		}
		h.seen = es.Key
		if !strings.HasPrefix(es.User, "controller:") {
			continue
		}
		switch es.Type {
		case "VmCreatedEvent", "DrsVmPoweredOnEvent":
			counts[es.User+" "+es.Type]++
			continue
		case "AdmissionRefusedEvent":
			// Which of a batch's concurrent creates is refused varies; the refusal does not.
			counts[es.User+" "+es.Type+" ("+es.Message+")"]++
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %s %s: %s", es.User, es.Type, es.Target, es.Message))
	}
	for k, n := range counts {
		lines = append(lines, fmt.Sprintf("%s x%d", k, n))
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return "(none)"
	}
	return strings.Join(lines, "\n")
}

func (h *harness) showDeployment(o *api.Object) string {
	var b strings.Builder
	var st api.DeploymentStatus
	_ = o.DecodeStatus(&st)
	fmt.Fprintf(&b, "%s: revision %d, replicas %d, updated %d, ready %d, available %d, unavailable %d\n", o.Path, st.Revision, st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas, st.UnavailableReplicas)
	for _, c := range st.Conditions {
		fmt.Fprintf(&b, "  condition %s=%s %s\n", c.Type, c.Status, c.Reason)
	}
	var sets []string
	for _, rs := range h.inv.List(store.Query{Kind: api.KindReplicaSet}).Items {
		if rs.Owner != o.Path {
			continue
		}
		var spec api.ReplicaSetSpec
		_ = rs.DecodeSpec(&spec)
		on, stopping := 0, 0
		for _, vm := range h.inv.List(store.Query{Kind: api.KindVirtualMachine}).Items {
			if vm.Owner != rs.Path {
				continue
			}
			var vs api.VMSpec
			var vst api.VMStatus
			_ = vm.DecodeSpec(&vs)
			_ = vm.DecodeStatus(&vst)
			switch {
			case vs.Removing && vst.PowerState == api.PoweredOn:
				stopping++
			case !vs.Removing:
				on++
			}
		}
		sets = append(sets, fmt.Sprintf("  revision %d %s (%s): replicas %d, members %d, stopping %d", spec.Revision, rs.Name(), spec.Template.Spec.Containers[0].Image, spec.Replicas, on, stopping))
	}
	sort.Strings(sets)
	for _, l := range sets {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// checkSurge asserts, after every reconcile, the Deployment promise: no
// more than replicas + maxSurge VMs powered on or still stopping.
func (h *harness) checkSurge(controller, key string) {
	for _, d := range h.inv.List(store.Query{Kind: api.KindDeployment}).Items {
		var spec api.DeploymentSpec
		_ = d.DecodeSpec(&spec)
		limit := spec.Replicas
		if spec.Strategy.Type == api.RollingUpdate && spec.Strategy.MaxSurge != nil {
			s, _ := spec.Strategy.MaxSurge.Scaled(spec.Replicas, true)
			limit += s
		}
		owned := map[string]bool{}
		for _, rs := range h.inv.List(store.Query{Kind: api.KindReplicaSet}).Items {
			if rs.Owner == d.Path {
				owned[rs.Path] = true
			}
		}
		n := 0
		for _, vm := range h.inv.List(store.Query{Kind: api.KindVirtualMachine}).Items {
			var vs api.VMSpec
			var vst api.VMStatus
			_ = vm.DecodeSpec(&vs)
			_ = vm.DecodeStatus(&vst)
			if owned[vm.Owner] && (vs.PowerState == api.PoweredOn || vst.PowerState == api.PoweredOn) {
				n++
			}
		}
		// A scale-down leaves more than the new limit stopping for a while;
		// what must never happen is a VM powered on above it.
		if prev := h.lastSeen[d.Path]; n > limit && n > prev {
			h.t.Errorf("after %s reconciled %s: %s has %d VMs on or stopping (was %d), more than replicas + maxSurge = %d", controller, key, d.Path, n, prev, limit)
		}
		h.lastSeen[d.Path] = n
		h.maxSeen[d.Path] = max(h.maxSeen[d.Path], n)
	}
}

// showOther prints a DaemonSet's, Job's or autoscaler's status and, for
// the first two, their members by host and state.
func (h *harness) showOther(o *api.Object) string {
	var b strings.Builder
	switch o.Kind {
	case api.KindDaemonSet:
		var st api.DaemonSetStatus
		_ = o.DecodeStatus(&st)
		fmt.Fprintf(&b, "%s: desired %d, current %d, ready %d\n", o.Path, st.DesiredNumberScheduled, st.CurrentNumberScheduled, st.NumberReady)
		for _, w := range st.Waiting {
			fmt.Fprintf(&b, "  waiting: %s: %s\n", w.VM, w.Message)
		}
	case api.KindJob:
		var st api.JobStatus
		_ = o.DecodeStatus(&st)
		fmt.Fprintf(&b, "%s: active %d, succeeded %d, failed %d\n", o.Path, st.Active, st.Succeeded, st.Failed)
		for _, c := range st.Conditions {
			fmt.Fprintf(&b, "  condition %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
		return b.String()
	case api.KindAutoscaler:
		var st api.AutoscalerStatus
		_ = o.DecodeStatus(&st)
		util := "-"
		if st.CurrentCPUUtilization != nil {
			util = strconv.Itoa(*st.CurrentCPUUtilization) + "%"
		}
		fmt.Fprintf(&b, "%s: current %d, desired %d, cpu %s\n", o.Path, st.CurrentReplicas, st.DesiredReplicas, util)
		for _, c := range st.Conditions {
			fmt.Fprintf(&b, "  condition %s=%s %s\n", c.Type, c.Status, c.Reason)
		}
		return b.String()
	}
	var lines []string
	for _, vm := range h.inv.List(store.Query{Kind: api.KindVirtualMachine}).Items {
		if vm.Owner != o.Path {
			continue
		}
		var spec api.VMSpec
		_ = vm.DecodeSpec(&spec)
		state := spec.PowerState
		if spec.Removing {
			state = "removing"
		}
		lines = append(lines, fmt.Sprintf("  %s on %s: %s", vm.Name(), api.Base(spec.Host), state))
	}
	sort.Strings(lines)
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}
