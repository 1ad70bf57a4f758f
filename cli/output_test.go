package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
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

// TestReadVerbs runs the read verbs against the lab inventory and compares
// their table output with golden files.
func TestReadVerbs(t *testing.T) {
	f := labInventory()
	f.pools["/dc1/host/c1/Resources/dev"] = devPoolInfo()
	f.pools["/dc1/host/c1/Resources/dev"].Pool = f.objs["/dc1/host/c1/Resources/dev"]
	f.quotas["/dc1/host/c1/Resources/dev"] = &api.QuotaInfo{Path: "/dc1/host/c1/Resources/dev", Limits: *noQuota()}
	cl := f.objs["/dc1/host/c1"]
	s := newClusterSpec()
	s.Rules = []api.ClusterRule{
		{Name: "spread", Enabled: true, Kind: ruleAntiAffinity, Mandatory: true, VMs: []string{"/dc1/vm/web-01", "/dc1/vm/web-02"}},
		{Name: "db-pin", Enabled: false, Kind: ruleVMHost, VMs: []string{"/dc1/vm/db-01"}, Hosts: []string{"/dc1/host/c1/esx-03"}},
	}
	cl.SetSpec(s)
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
			out, errOut, code := runPsc(t, f, "", nil, tt.args...)
			if code != 0 {
				t.Fatalf("psc %q: exit %d: %s", tt.args, code, errOut)
			}
			golden(t, tt.golden, out)
		})
	}
}

// TestJSONOutput checks that -json prints valid indented JSON of the right shape.
func TestJSONOutput(t *testing.T) {
	f := labInventory()
	f.pools["/dc1/host/c1/Resources/dev"] = devPoolInfo()
	tests := []struct {
		args  []string
		check func(t *testing.T, raw []byte)
	}{
		{[]string{"ls", "-json", "/dc1/vm"}, func(t *testing.T, raw []byte) {
			var objs []api.Object
			mustJSON(t, raw, &objs)
			if len(objs) != 3 || objs[0].Path != "/dc1/vm/db-01" || objs[0].Kind != api.KindVirtualMachine {
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
			if len(infos) != 1 || infos[0].CPU.UnreservedForVm != 4800 {
				t.Errorf("pool.info -json = %+v", infos)
			}
		}},
		{[]string{"host.info", "-json", "esx-03"}, func(t *testing.T, raw []byte) {
			var hs []hostInfo
			mustJSON(t, raw, &hs)
			if len(hs) != 1 || hs[0].Status.State != api.HostNotResponding {
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
		{[]string{"vm.ip", "-json", "web-01"}, func(t *testing.T, raw []byte) {
			var ips []map[string]string
			mustJSON(t, raw, &ips)
			if len(ips) != 1 || ips[0]["ip"] != "10.244.0.2" {
				t.Errorf("vm.ip -json = %+v", ips)
			}
		}},
		{[]string{"events", "-json"}, func(t *testing.T, raw []byte) {
			var evs []api.EventSpec
			mustJSON(t, raw, &evs)
			if len(evs) != 0 {
				t.Errorf("events -json = %+v", evs)
			}
		}},
	}
	for _, tt := range tests {
		out, errOut, code := runPsc(t, f, "", nil, tt.args...)
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
