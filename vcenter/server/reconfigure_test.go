package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// movePool moves a VM to another pool through the API (what psc apply does).
func (e *env) movePool(t *testing.T, name, to string) error {
	t.Helper()
	o, s, _ := e.getVM(t, name)
	s.Pool = to
	o.SetSpec(s)
	_, err := e.admin.Update(ctxT(t), o)
	return err
}

func TestDestroyNestedPoolsKeepsAdmissionWorking(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	e.joinHost(t, "esx-01", 10000, 16384)
	for _, p := range []string{"/dev", "/dev/a", "/dev/a/b", "/dev/a/b/c"} {
		e.mustCreate(t, pool(rootRP+p, alloc(500, -1, true), nil))
	}
	e.mustCreate(t, vm("deep", rootRP+"/dev/a/b/c", 1000, api.PoweredOn))
	if err := e.admin.Delete(ctxT(t), rootRP+"/dev", client.DeleteOptions{Children: true}); err != nil {
		t.Fatalf("pool.destroy -children dev: %v", err)
	}
	// The VM moved up to the root pool, and the cluster still admits.
	if _, s, _ := e.getVM(t, "deep"); s.Pool != rootRP {
		t.Errorf("VM of the destroyed pools is in %s, want %s", s.Pool, rootRP)
	}
	e.mustCreate(t, pool(rootRP+"/dev", alloc(2000, -1, true), nil))
	e.mustCreate(t, vm("next", rootRP+"/dev", 1000, api.PoweredOn))
	info := e.poolCPU(t, rootRP)
	// deep (1000, now in the root pool) + dev's 2000 reservation, which covers next.
	if info.ReservationUsed != 3000 {
		t.Errorf("root reservationUsed = %d MHz, want 3000", info.ReservationUsed)
	}
}

func TestDRSPlacesUnpinnedVMAgainAtPowerOn(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	e.joinHost(t, "esx-01", 10000, 16384)
	e.mustCreate(t, vm("free", rootRP, 1000, api.PoweredOn))
	pinned := vm("pinned", rootRP, 1000, api.PoweredOff)
	var ps api.VMSpec
	_ = pinned.DecodeSpec(&ps)
	ps.Host, ps.Pinned = cluster+"/esx-01", true
	pinned.SetSpec(ps)
	e.mustCreate(t, pinned)
	e.joinHost(t, "esx-02", 10000, 16384)

	if _, err := e.admin.Power(ctxT(t), dc+"/vm/free", "off"); err != nil {
		t.Fatal(err)
	}
	e.setMaintenance(t, "esx-01", true)
	if _, err := e.admin.Power(ctxT(t), dc+"/vm/free", "on"); err != nil {
		t.Fatalf("power on an unpinned VM whose last host is in maintenance: %v", err)
	}
	if h := e.hostOf(t, "free"); h != "esx-02" {
		t.Errorf("unpinned VM placed on %s, want esx-02", h)
	}
	_, err := e.admin.Power(ctxT(t), dc+"/vm/pinned", "on")
	if !errors.Is(err, api.ErrInsufficientResources) || !strings.Contains(err.Error(), "esx-01: in maintenance mode") {
		t.Errorf("pinned VM on a host in maintenance: %v, want a refusal naming esx-01", err)
	}
	if strings.Contains(err.Error(), "esx-02") {
		t.Errorf("a pinned VM's refusal considers other hosts: %v", err)
	}
}

func TestMovingRunningVMsRespectsQuotaAndCountsOnce(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	e.joinHost(t, "esx-01", 10000, 65536)
	q := unlimitedQuota()
	q.CPUMHz = 1000
	e.mustCreate(t, pool(rootRP+"/q", alloc(0, -1, true), q))
	e.mustCreate(t, pool(rootRP+"/a", alloc(0, -1, true), nil))
	e.mustCreate(t, pool(rootRP+"/b", alloc(0, -1, true), nil))
	for _, n := range []string{"v1", "v2"} {
		o := vm(n, rootRP+"/a", 0, api.PoweredOn)
		var s api.VMSpec
		_ = o.DecodeSpec(&s)
		s.CPU.Limit = 1000
		o.SetSpec(s)
		e.mustCreate(t, o)
	}
	if err := e.movePool(t, "v1", rootRP+"/q"); err != nil {
		t.Fatalf("first 1000 MHz VM into a 1000 MHz quota: %v", err)
	}
	err := e.movePool(t, "v2", rootRP+"/q")
	if !errors.Is(err, api.ErrQuotaExceeded) || !strings.Contains(err.Error(), "cpu 1000 + 1000 > 1000 MHz") {
		t.Fatalf("second VM into the full quota: %v, want quota exceeded", err)
	}
	if u, _ := e.admin.Quota(ctxT(t), rootRP+"/q"); u.Used.CPUMHz != 1000 {
		t.Errorf("quota cpu used = %d, want 1000", u.Used.CPUMHz)
	}

	// A 6000 MHz VM on a 10000 MHz host moves between pools: its reservation
	// leaves a as it enters b, so the move needs no extra room.
	e.mustCreate(t, vm("big", rootRP+"/a", 6000, api.PoweredOn))
	if err := e.movePool(t, "big", rootRP+"/b"); err != nil {
		t.Fatalf("moving a running 6000 MHz VM between pools: %v", err)
	}
	info := e.poolCPU(t, rootRP)
	if info.ReservationUsedForVm != 6000 {
		t.Errorf("root reservationUsedForVm after the move = %d, want 6000", info.ReservationUsedForVm)
	}
}

func TestMaintenanceHostKeepsItsVMsReservations(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	e.joinHost(t, "esx-01", 10000, 16384)
	// Pinned, so evacuation cannot move it: the host stays entering
	// maintenance with its VM running.
	held := vm("held", rootRP, 6000, api.PoweredOn)
	var hs api.VMSpec
	_ = held.DecodeSpec(&hs)
	hs.Host, hs.Pinned = cluster+"/esx-01", true
	held.SetSpec(hs)
	e.mustCreate(t, held)
	e.joinHost(t, "esx-02", 10000, 16384)
	e.setMaintenance(t, "esx-01", true)
	// esx-02 is empty: a 5000 MHz VM fits there although esx-01's VM still
	// holds 6000 MHz of the cluster's reservations.
	e.mustCreate(t, vm("next", rootRP, 5000, api.PoweredOn))
	if h := e.hostOf(t, "next"); h != "esx-02" {
		t.Errorf("next placed on %s, want esx-02", h)
	}
	info := e.poolCPU(t, rootRP)
	// Capacity: esx-02's 10000 plus the 6000 still reserved on esx-01.
	if info.Reservation != 16000 || info.UnreservedForVm != 5000 {
		t.Errorf("root pool: reservation %d, unreservedForVm %d; want 16000 and 5000", info.Reservation, info.UnreservedForVm)
	}
}

func TestClustersGetDistinctPodCIDRs(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	e.mustCreate(t, api.New(api.KindCluster, dc+"/host/c2", nil))
	cidr := func(path string) string {
		o, err := e.admin.Get(ctxT(t), path)
		if err != nil {
			t.Fatal(err)
		}
		var s api.ClusterSpec
		_ = o.DecodeSpec(&s)
		return s.PodCIDR
	}
	if a, b := cidr(cluster), cidr(dc+"/host/c2"); a != "10.244.0.0/16" || b != "10.245.0.0/16" {
		t.Errorf("pod CIDRs of c1 and c2 = %s, %s; want 10.244.0.0/16 and 10.245.0.0/16", a, b)
	}
	before := e.revision(t)
	_, err := e.admin.Create(ctxT(t), api.New(api.KindCluster, dc+"/host/c3", api.ClusterSpec{PodCIDR: "10.244.128.0/17"}))
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "overlaps the pod CIDR of cluster /dc1/host/c1") {
		t.Errorf("overlapping pod CIDR: %v, want a conflict naming c1", err)
	}
	if e.revision(t) != before {
		t.Errorf("a refused cluster wrote something")
	}
	e.joinHost(t, "esx-01", 10000, 16384)
	o, _ := e.admin.Get(ctxT(t), cluster)
	o.SetSpec(api.ClusterSpec{PodCIDR: "10.200.0.0/16"})
	if _, err := e.admin.Update(ctxT(t), o); !errors.Is(err, api.ErrConflict) {
		t.Errorf("changing the pod CIDR of a cluster with hosts: %v, want a conflict", err)
	}
}
