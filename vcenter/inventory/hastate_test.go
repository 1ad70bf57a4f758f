package inventory

import (
	"fmt"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/vcenter/store"
)

func openHAInventory(t testing.TB, hosts int) *Inventory {
	t.Helper()
	inv, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inv.Close() })
	for _, o := range []*api.Object{api.New(api.KindDatacenter, "/dc1", nil),
		api.New(api.KindCluster, "/dc1/host/c1", api.ClusterSpec{PodCIDR: "10.64.0.0/14", HA: api.HAConfig{Enabled: true, DefaultRestartPriority: "low"}}),
		api.New(api.KindCluster, "/dc1/host/c2", api.ClusterSpec{})} {
		if _, err := inv.Create("admin", o); err != nil {
			t.Fatal(err)
		}
	}
	for i := range hosts {
		if _, err := inv.Join(api.JoinRequest{Name: fmt.Sprintf("esx-%d", i+1), Cluster: "/dc1/host/c1", Address: "127.0.0.1:1",
			Runtime: "sim", CPUCapacity: 20000, MemCapacity: 65536}); err != nil {
			t.Fatal(err)
		}
	}
	return inv
}

// haTestVM is a powered-on VM registered on host, reported running there
// when running.
func haTestVM(path, host, prio string, running bool) *api.Object {
	o := api.New(api.KindVirtualMachine, path, api.VMSpec{Pool: "/dc1/host/c1/Resources", Host: host, PowerState: api.PoweredOn,
		NumCPU: 2, MemoryMB: 256, CPU: api.Allocation{Reservation: 300}, HA: api.HAPolicy{RestartPriority: prio}})
	if running {
		o.SetStatus(api.VMStatus{Host: host, PowerState: api.PoweredOn, Ready: true})
	}
	return o
}

func writeObjects(t testing.TB, inv *Inventory, objs ...*api.Object) {
	t.Helper()
	if _, err := inv.Store().Update(func(tx *store.Tx) error {
		for _, o := range objs {
			cur, err := tx.Get(o.Path)
			if err == nil {
				o.ResourceVersion = cur.ResourceVersion
				o.UID = cur.UID
				_, err = tx.Update(o)
			} else {
				_, err = tx.Create(o)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func snapVM(t *testing.T, s *HASnapshot, name string) (ha.VM, bool) {
	t.Helper()
	for _, v := range s.State.VMs {
		if v.Name == name {
			return v, true
		}
	}
	return ha.VM{}, false
}

// TestHASnapshotFollowsWrites: HA's snapshot reads the VMs from the
// inventory's index, not the store; it must show each VM of the cluster
// as it was last written (priority with the cluster's default, running
// and ready only as reported by its registered host, removing as off,
// pinned, HA record, namespace names), none of another cluster, and
// follow status writes and removals.
func TestHASnapshotFollowsWrites(t *testing.T) {
	inv := openHAInventory(t, 2)
	h1, h2 := "/dc1/host/c1/esx-1", "/dc1/host/c1/esx-2"
	moved := haTestVM("/dc1/vm/moved", h2, "", true)
	moved.SetStatus(api.VMStatus{Host: h1, PowerState: api.PoweredOn, Ready: true}) // its old host still reports it
	removing := haTestVM("/dc1/vm/removing", h1, "", true)
	var rs api.VMSpec
	_ = removing.DecodeSpec(&rs)
	rs.Removing = true
	removing.SetSpec(rs)
	pinned := haTestVM("/dc1/vm/pinned", h1, "", true)
	var ps api.VMSpec
	_ = pinned.DecodeSpec(&ps)
	ps.Pinned = true
	pinned.SetSpec(ps)
	restarted := haTestVM("/dc1/vm/restarted", h2, "highest", false)
	when := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	restarted.SetStatus(api.VMStatus{Host: h2, PowerState: api.PoweredOff, HA: &api.VMHAStatus{Attempts: 2, LastAttempt: when, RestartedAt: when, LastError: "no room"}})
	writeObjects(t, inv, haTestVM("/dc1/vm/db", h1, "high", true), haTestVM("/dc1/vm/team-a/web", h2, "", true),
		moved, removing, pinned, restarted, haTestVM("/dc1/vm/elsewhere", "/dc1/host/c2/esx-9", "", true),
		haTestVM("/dc1/vm/unplaced", "", "", false))

	s, err := inv.HASnapshot("/dc1/host/c1", ha.Timings{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range s.State.VMs {
		names = append(names, v.Name)
	}
	if want := "[db moved pinned removing restarted team-a/web]"; fmt.Sprint(names) != want {
		t.Fatalf("snapshot VMs %v, want %s (path order, this cluster's only)", names, want)
	}
	db, _ := snapVM(t, s, "db")
	if db.Host != "esx-1" || db.Priority != "high" || !db.On || !db.Running || !db.Ready || db.CPUReservation != 300 || db.NumCPU != 2 || db.MemoryMB != 256 {
		t.Errorf("db: %+v", db)
	}
	if s.VMPaths["team-a/web"] != "/dc1/vm/team-a/web" || s.UIDs["db"] == "" {
		t.Errorf("paths %v, UIDs %v", s.VMPaths, s.UIDs)
	}
	if web, _ := snapVM(t, s, "team-a/web"); web.Priority != "low" {
		t.Errorf("team-a/web has priority %q, want the cluster's default low", web.Priority)
	}
	if m, _ := snapVM(t, s, "moved"); m.Running || m.Ready || m.Host != "esx-2" {
		t.Errorf("moved is reported by its old host only, yet the snapshot says %+v", m)
	}
	if r, _ := snapVM(t, s, "removing"); r.On {
		t.Errorf("a VM being removed is not HA's to restart: %+v", r)
	}
	if !s.Pinned["pinned"] || s.Pinned["db"] {
		t.Errorf("pinned: %v", s.Pinned)
	}
	if r, _ := snapVM(t, s, "restarted"); r.Attempts != 2 || !r.RestartedAt.Equal(when) || r.LastError != "no room" || s.Records["restarted"] == nil {
		t.Errorf("restarted: %+v, record %+v", r, s.Records["restarted"])
	}

	// Its host reports it running; the web VM goes.
	restarted.SetStatus(api.VMStatus{Host: h2, PowerState: api.PoweredOn, Ready: true, HA: &api.VMHAStatus{RestartedAt: when}})
	writeObjects(t, inv, restarted)
	if _, err := inv.Store().Update(func(tx *store.Tx) error { return tx.Delete("/dc1/vm/team-a/web", 0) }); err != nil {
		t.Fatal(err)
	}
	s, err = inv.HASnapshot("/dc1/host/c1", ha.Timings{})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := snapVM(t, s, "restarted"); !r.Running || !r.Ready || r.Attempts != 0 {
		t.Errorf("after its host's report, restarted is %+v", r)
	}
	if _, ok := snapVM(t, s, "team-a/web"); ok {
		t.Errorf("a removed VM is still in the snapshot")
	}
}

// BenchmarkHASnapshot: HA's snapshot of a cluster of 1,000 hosts and
// 50,000 VMs, what every HA pass starts with while a host is silent.
//
//	go test -run '^$' -bench HASnapshot -benchtime 20x ./vcenter/inventory/
func BenchmarkHASnapshot(b *testing.B) {
	inv := openHAInventory(b, 1000)
	var objs []*api.Object
	for i := range 50000 {
		objs = append(objs, haTestVM(fmt.Sprintf("/dc1/vm/vm-%05d", i), fmt.Sprintf("/dc1/host/c1/esx-%d", i%1000+1), "", true))
		if len(objs) == 2000 {
			writeObjects(b, inv, objs...)
			objs = nil
		}
	}
	b.ResetTimer()
	for b.Loop() {
		s, err := inv.HASnapshot("/dc1/host/c1", ha.Timings{})
		if err != nil || len(s.State.VMs) != 50000 {
			b.Fatalf("%v, %d VMs", err, len(s.State.VMs))
		}
	}
}
