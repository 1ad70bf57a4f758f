package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// golden compares got with testdata/NAME.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	err := writeTable(&b, []string{"Name", "Kind", "CPU"}, [][]string{
		{"/dc1/host/c1/Resources/dev", "ResourcePool", "1200MHz"},
		{"/dc1", "Datacenter", ""},
		{"a long cell that must not wrap however long it is, because scripts grep it", "x", "y"},
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "table", b.String())
}

// devPoolInfo is the pool.info example of docs/cli.md (VMware's RP-MOM shape).
func devPoolInfo() *api.PoolInfo {
	pool := api.New(api.KindResourcePool, "/DC0/host/C0/Resources/dev", api.PoolSpec{
		CPU: api.Allocation{Reservation: 6000, Limit: -1, Shares: api.Shares{Level: "normal"}},
		Mem: api.Allocation{Reservation: 4096, Limit: 16384, Expandable: true, Shares: api.Shares{Level: "custom", Value: 99000}},
	})
	return &api.PoolInfo{
		Pool: pool,
		CPU: api.PoolUsage{Reservation: 6000, Limit: -1, Shares: 4000, ReservationUsed: 1200, ReservationUsedForVm: 1200,
			UnreservedForPool: 4800, UnreservedForVm: 4800, MaxUsage: 10000, OverallUsage: 1200},
		Mem: api.PoolUsage{Reservation: 4096, Limit: 16384, Expandable: true, Shares: 99000, ReservationUsed: 2048,
			UnreservedForPool: 2048, UnreservedForVm: 2048, MaxUsage: 16384, OverallUsage: 4096},
	}
}

func TestWritePoolInfo(t *testing.T) {
	var b bytes.Buffer
	if err := writePoolInfo(&b, devPoolInfo()); err != nil {
		t.Fatal(err)
	}
	golden(t, "pool-info", b.String())
}

func TestWriteQuotaInfo(t *testing.T) {
	lim := *noQuota()
	lim.VMs, lim.CPUMHz, lim.StorageGB = 10, 8000, 0
	var b bytes.Buffer
	err := writeQuotaInfo(&b, &api.QuotaInfo{Path: "/dc1/host/c1/Resources/dev", Limits: lim,
		Used: api.QuotaLimits{VMs: 3, CPUMHz: 3000, MemMB: 3072}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "quota-info", b.String())
}

func TestWriteEventsAndTasks(t *testing.T) {
	var b bytes.Buffer
	evs := []api.EventSpec{
		{Key: 7, Time: testTime, Category: "info", Type: "VmPoweredOnEvent", Target: "/dc1/vm/web-01", Message: "web-01 on esx-01 is powered on"},
		{Key: 8, Time: testTime.Add(time.Second), Category: "error", Type: "VmFailedToPowerOnEvent", Target: "/dc1/vm/web-04",
			Message: "cannot power on web-04: pool dev: quota exceeded"},
	}
	for _, e := range evs {
		if err := writeEvent(&b, e, time.UTC); err != nil {
			t.Fatal(err)
		}
	}
	b.WriteString("--\n")
	err := writeTasks(&b, []api.TaskSpec{
		{Name: "PowerOnVM_Task", Target: "/dc1/vm/web-01", Initiator: "admin", Queued: testTime, Started: testTime,
			Completed: testTime.Add(time.Second), Result: "success"},
		{Name: "PowerOnVM_Task", Target: "/dc1/vm/web-04", Initiator: "admin", Queued: testTime, Started: testTime,
			Result: "error", Error: "quota exceeded"},
	}, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "events-tasks", b.String())
}

// TestWriteHostInfo renders host.info blocks of given hosts, times included.
func TestWriteHostInfo(t *testing.T) {
	var b bytes.Buffer
	hosts := []hostInfo{
		{Name: "esx-01", Path: "/dc1/host/c1/esx-01", VMs: 1, Status: api.HostStatus{State: api.HostConnected, Runtime: "sim",
			Address: "10.0.0.11:7946", CPUCapacity: 20000, MemCapacity: 65536, CPUUsage: 1000, MemUsage: 2048,
			PodSubnet: "10.244.0.0/24", LastSeen: testTime.Add(-3 * time.Second)}},
		{Name: "esx-02", Path: "/dc1/host/c1/esx-02", Maintenance: true, Status: api.HostStatus{State: api.HostConnected,
			Runtime: "containerd", CPUCapacity: 8000, MemCapacity: 16384, LastSeen: testTime.Add(-90 * time.Second)}},
		{Name: "esx-03", Path: "/dc1/host/c1/esx-03", Status: api.HostStatus{State: api.HostNotResponding, CPUCapacity: 20000, MemCapacity: 65536}},
	}
	if err := writeHostInfo(&b, hosts, testTime, time.UTC); err != nil {
		t.Fatal(err)
	}
	golden(t, "host-info-render", b.String())
}

// volatile are the parts of real output that differ from run to run: ports
// the lab's servers bound, times, UIDs and the store revision.
var volatile = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\d+s ago\)`), "TIME (AGO)"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`), "TIME"},
	{regexp.MustCompile(`(?m)^(  UUID:\s+)\S+$`), "${1}UID"},
	{regexp.MustCompile(`(?m)^(Revision:\s+)\d+$`), "${1}REV"},
}

func scrub(s string) string {
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.repl)
	}
	return s
}

// TestReadVerbs runs the read verbs against a real vcenter holding the lab
// inventory and compares their output with golden files (with ports,
// times, UIDs and the revision blanked out).
func TestReadVerbs(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	l.ok("cluster.rule.create", "-name", "spread", "-enable", "-mandatory", "-anti-affinity", "web-01", "web-02")
	l.ok("cluster.rule.create", "-name", "db-pin", "-vm-host", "-host", "esx-03", "-affine=false", "db-01")
	tests := []struct {
		golden string
		args   []string
	}{
		{"tree", []string{"tree"}},
		{"tree-pool", []string{"tree", "dev"}},
		{"ls", []string{"ls"}},
		{"ls-cluster", []string{"ls", "-l", "/dc1/host/c1"}},
		{"ls-pool", []string{"ls", "-l", "c1/Resources/dev"}},
		{"ls-vms", []string{"ls", "-t", "m", "/dc1/vm"}},
		{"ls-glob", []string{"ls", "*/Resources/*"}},
		{"find", []string{"find", "-type", "p", "-name", "*e*"}},
		{"host-info", []string{"host.info"}},
		{"pool-info-cmd", []string{"pool.info", "dev"}},
		{"quota-info-cmd", []string{"quota.info", "dev"}},
		{"vm-info", []string{"vm.info", "-r", "web-01", "db-01"}},
		{"rules", []string{"cluster.rule.ls"}},
		{"about", []string{"about"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			out, errOut, code := l.psc("", nil, tt.args...)
			if code != 0 {
				t.Fatalf("psc %q: exit %d: %s", tt.args, code, errOut)
			}
			golden(t, tt.golden, scrub(out))
		})
	}
}

// TestJSONOutput checks that -json prints valid indented JSON of the right
// shape, with what vcenter holds and computes.
func TestJSONOutput(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	tests := []struct {
		args  []string
		check func(t *testing.T, raw []byte)
	}{
		{[]string{"ls", "-json", "/dc1/vm"}, func(t *testing.T, raw []byte) {
			var objs []api.Object
			mustJSON(t, raw, &objs)
			if len(objs) != 3 || objs[0].Path != "/dc1/vm/db-01" || objs[0].Kind != api.KindVirtualMachine || objs[0].UID == "" {
				t.Errorf("ls -json /dc1/vm = %+v", objs)
			}
		}},
		{[]string{"find", "-json", "-type", "h"}, func(t *testing.T, raw []byte) {
			var paths []string
			mustJSON(t, raw, &paths)
			if len(paths) != 3 {
				t.Errorf("find -json = %q", paths)
			}
		}},
		{[]string{"tree", "-json"}, func(t *testing.T, raw []byte) {
			var nodes []treeNode
			mustJSON(t, raw, &nodes)
			if len(nodes) != 1 || nodes[0].Kind != api.KindDatacenter || nodes[0].Children[0].Name != "c1" {
				t.Errorf("tree -json = %+v", nodes)
			}
		}},
		{[]string{"pool.info", "-json", "dev"}, func(t *testing.T, raw []byte) {
			var infos []api.PoolInfo
			mustJSON(t, raw, &infos)
			// dev reserves 6000 MHz; its VMs reserve none.
			if len(infos) != 1 || infos[0].CPU.Reservation != 6000 || infos[0].CPU.Expandable ||
				infos[0].CPU.ReservationUsed != 0 || infos[0].CPU.UnreservedForVm != 6000 {
				t.Errorf("pool.info -json = %+v", infos)
			}
		}},
		{[]string{"pool.info", "-json", "Resources"}, func(t *testing.T, raw []byte) {
			var infos []api.PoolInfo
			mustJSON(t, raw, &infos)
			// The root pool is the two connected hosts, 2 x 20000 MHz; dev holds 6000.
			if len(infos) != 1 || infos[0].CPU.Reservation != 40000 || infos[0].CPU.ReservationUsed != 6000 ||
				infos[0].CPU.UnreservedForPool != 34000 || infos[0].Mem.Reservation != 131072 {
				t.Errorf("pool.info -json Resources = %+v", infos)
			}
		}},
		{[]string{"host.info", "-json", "esx-03"}, func(t *testing.T, raw []byte) {
			var hs []hostInfo
			mustJSON(t, raw, &hs)
			if len(hs) != 1 || hs[0].Status.State != api.HostNotResponding || hs[0].Status.CPUCapacity != 20000 {
				t.Errorf("host.info -json = %+v", hs)
			}
		}},
		{[]string{"vm.info", "-json", "web-*"}, func(t *testing.T, raw []byte) {
			var objs []api.Object
			mustJSON(t, raw, &objs)
			if len(objs) != 2 {
				t.Errorf("vm.info -json = %+v", objs)
			}
		}},
		{[]string{"about", "-json"}, func(t *testing.T, raw []byte) {
			// Every field the table shows.
			var a map[string]any
			mustJSON(t, raw, &a)
			for _, k := range []string{"fullName", "name", "version", "apiVersion", "revision", "members", "url"} {
				if _, ok := a[k]; !ok {
					t.Errorf("about -json has no %q: %s", k, raw)
				}
			}
		}},
		{[]string{"vm.ip", "-json", "web-01"}, func(t *testing.T, raw []byte) {
			var ips []map[string]string
			mustJSON(t, raw, &ips)
			// esx-01 joined first and holds the cluster's first pod subnet.
			if len(ips) != 1 || ips[0]["path"] != "/dc1/vm/web-01" || ips[0]["ip"] != "10.244.0.2" {
				t.Errorf("vm.ip -json = %+v", ips)
			}
		}},
		{[]string{"events", "-json", "/dc1/vm/web-01"}, func(t *testing.T, raw []byte) {
			var evs []api.EventSpec
			mustJSON(t, raw, &evs)
			for i, e := range evs {
				if e.Target != "/dc1/vm/web-01" || i > 0 && e.Key <= evs[i-1].Key {
					t.Errorf("events -json: %+v", e)
				}
			}
			// What the admin did, and what esx-01 reported: web-01 running there.
			if types := eventTypes(evs); !slices.Equal(types, []string{"VmCreatedEvent", "VmPoweredOnEvent"}) {
				t.Errorf("events -json /dc1/vm/web-01: types %q", types)
			}
			if n := len(evs); n == 0 || evs[n-1].Type != "VmStateChangedEvent" || evs[n-1].Message != "web-01 is poweredOn on esx-01" {
				t.Errorf("events -json /dc1/vm/web-01: last is not the host's report of web-01 running: %+v", evs)
			}
		}},
		{[]string{"events", "-json", "/dc1/vm/nope"}, func(t *testing.T, raw []byte) {
			var evs []api.EventSpec
			mustJSON(t, raw, &evs)
			if len(evs) != 0 {
				t.Errorf("events -json about a VM that never was = %+v", evs)
			}
		}},
	}
	for _, tt := range tests {
		out, errOut, code := l.psc("", nil, tt.args...)
		if code != 0 {
			t.Fatalf("psc %q: exit %d: %s", tt.args, code, errOut)
		}
		if !bytes.Contains([]byte(out), []byte("\n  ")) && out != "[]\n" {
			t.Errorf("psc %q: JSON is not indented:\n%s", tt.args, out)
		}
		tt.check(t, []byte(out))
	}
}

func mustJSON(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, raw)
	}
}

// TestWriteVMInfoMember renders vm.info of a replica set's member: the
// workload that keeps it, its readiness, and that it is being removed.
func TestWriteVMInfoMember(t *testing.T) {
	vm := api.New(api.KindVirtualMachine, "/dc1/vm/team/web-5d8f7-x2k9q", api.VMSpec{Pool: "/dc1/host/c1/Resources/team", NumCPU: 1, MemoryMB: 512,
		PowerState: api.PoweredOn, Removing: true, Containers: []api.Container{{Name: "main", Image: "nginx:1.27"}}})
	vm.UID = "4f1c"
	vm.SetStatus(api.VMStatus{PowerState: api.PoweredOn, Host: "/dc1/host/c1/esx-02", BootTime: testTime, IP: "10.244.1.7", Ready: true, ReadySince: testTime.Add(5 * time.Second), Restarts: 1})
	job := api.New(api.KindVirtualMachine, "/dc1/vm/pi-7x2kq", api.VMSpec{Pool: "/dc1/host/c1/Resources", NumCPU: 1, MemoryMB: 256,
		PowerState: api.PoweredOff, Containers: []api.Container{{Name: "main", Image: "perl:5.34"}}})
	job.SetStatus(api.VMStatus{PowerState: api.PoweredOff, Phase: api.PhaseSucceeded})
	var b bytes.Buffer
	if err := writeVMInfo(&b, vm, "ReplicaSet /dc1/replicaset/team/web-5d8f7 (Deployment /dc1/deployment/team/web)", nil, false, time.UTC); err != nil {
		t.Fatal(err)
	}
	if err := writeVMInfo(&b, job, "Job /dc1/job/pi", nil, false, time.UTC); err != nil {
		t.Fatal(err)
	}
	golden(t, "vm-info-member", b.String())
}

// TestWriteVMInfoHA renders vm.info's HA lines: protection by the
// cluster's settings and the VM's override, a failover in progress, one
// given up, and the last restart HA made.
func TestWriteVMInfoHA(t *testing.T) {
	on := api.VMSpec{Pool: "/dc1/host/c1/Resources", NumCPU: 1, MemoryMB: 256, PowerState: api.PoweredOn}
	restarted := api.New(api.KindVirtualMachine, "/dc1/vm/web-1", on)
	restarted.SetStatus(api.VMStatus{PowerState: api.PoweredOn, Host: "/dc1/host/c1/esx-03", HA: &api.VMHAStatus{
		RestartedAt: testTime, RestartedFrom: "/dc1/host/c1/esx-02", Reason: "host esx-02 failed"}})
	retrying := api.New(api.KindVirtualMachine, "/dc1/vm/db-1", on)
	retrying.SetStatus(api.VMStatus{PowerState: api.PoweredOff, Host: "/dc1/host/c1/esx-02", HA: &api.VMHAStatus{
		Attempts: 2, LastAttempt: testTime, LastError: "no host has 1500 MHz unreserved CPU"}})
	gaveUp := api.New(api.KindVirtualMachine, "/dc1/vm/big-1", on)
	gaveUp.SetStatus(api.VMStatus{PowerState: api.PoweredOff, Host: "/dc1/host/c1/esx-02", HA: &api.VMHAStatus{
		Attempts: 5, LastAttempt: testTime, LastError: "no host has 1500 MHz unreserved CPU", GaveUp: true}})
	off := on
	off.HA.RestartPriority = "disabled"
	disabled := api.New(api.KindVirtualMachine, "/dc1/vm/scratch", off)
	cs := &api.ClusterSpec{HA: api.HAConfig{Enabled: true, DefaultRestartPriority: "high"}}
	var b bytes.Buffer
	for _, vm := range []*api.Object{restarted, retrying, gaveUp, disabled} {
		if err := writeVMInfo(&b, vm, "", cs, false, time.UTC); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeVMInfo(&b, disabled, "", &api.ClusterSpec{}, false, time.UTC); err != nil {
		t.Fatal(err)
	}
	golden(t, "vm-info-ha", b.String())
}

// An automatic action's event says who did it; an admin's does not.
func TestEventLineNamesWhoActed(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var b strings.Builder
	_ = writeEvent(&b, api.EventSpec{Time: at, Category: "info", Key: 8, Type: "VmCreatedEvent", Message: "VM /dc1/vm/web-x created", User: "controller:replicaset"}, time.UTC)
	_ = writeEvent(&b, api.EventSpec{Time: at, Category: "info", Key: 9, Type: "VmCreatedEvent", Message: "VM /dc1/vm/db created", User: "admin"}, time.UTC)
	want := "[2026-03-01 12:00:00] [info] [8] [VmCreatedEvent] VM /dc1/vm/web-x created (by controller:replicaset)\n" +
		"[2026-03-01 12:00:00] [info] [9] [VmCreatedEvent] VM /dc1/vm/db created\n"
	if b.String() != want {
		t.Errorf("got\n%swant\n%s", b.String(), want)
	}
}
