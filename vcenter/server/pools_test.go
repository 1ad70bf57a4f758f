package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// poolEnv is vcenter with /dc1/host/c1 on two connected 10 GHz hosts: the
// root pool holds 20000 MHz.
func poolEnv(t *testing.T) *env {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	e.joinHost(t, "esx-01", 10000, 65536)
	e.joinHost(t, "esx-02", 10000, 65536)
	return e
}

func (e *env) poolCPU(t *testing.T, path string) api.PoolUsage {
	t.Helper()
	info, err := e.admin.Pool(ctxT(t), path)
	if err != nil {
		t.Fatalf("pool %s: %v", path, err)
	}
	return info.CPU
}

// powerOn creates the VM powered off, then powers it on.
func (e *env) powerOn(t *testing.T, o *api.Object) error {
	t.Helper()
	e.mustCreate(t, o)
	_, err := e.admin.Power(ctxT(t), o.Path, "on")
	return err
}

// TestWorkedExampleRPMomRPKid is VMware's worked example of expandable
// reservations, through the API.
func TestWorkedExampleRPMomRPKid(t *testing.T) {
	const mom, kid = rootRP + "/RP-MOM", rootRP + "/RP-MOM/RP-KID"
	build := func(t *testing.T, momOwnVMs int64) *env {
		e := poolEnv(t)
		if root := e.poolCPU(t, rootRP); root.Reservation != 20000 || root.UnreservedForPool != 20000 {
			t.Fatalf("root pool = %+v, want the 20000 MHz of its two connected hosts", root)
		}
		e.mustCreate(t, pool(mom, alloc(6000, -1, false), nil)) // fixed 6 GHz
		if err := e.powerOn(t, vm("VM-M1", mom, momOwnVMs, api.PoweredOff)); err != nil {
			t.Fatalf("VM-M1: %v", err)
		}
		e.mustCreate(t, pool(kid, alloc(2000, -1, true), nil)) // 2 GHz, expandable
		if err := e.powerOn(t, vm("VM-K1", kid, 2000, api.PoweredOff)); err != nil {
			t.Fatalf("VM-K1: %v", err)
		}
		return e
	}

	t.Run("VM-K2 borrows from RP-MOM", func(t *testing.T) {
		e := build(t, 1000)
		if err := e.powerOn(t, vm("VM-K2", kid, 2000, api.PoweredOff)); err != nil {
			t.Fatalf("VM-K2 refused: %v", err)
		}
		for _, c := range []struct {
			path string
			want api.PoolUsage
		}{
			// RP-MOM: 1000 for VM-M1 plus what RP-KID takes, max(2000, 4000).
			{mom, api.PoolUsage{Reservation: 6000, Limit: -1, Expandable: false, ReservationUsed: 5000, ReservationUsedForVm: 5000, UnreservedForPool: 1000, UnreservedForVm: 1000, MaxUsage: 20000}},
			// RP-KID: 4000 used of its 2000, the 2000 more borrowed; it can still borrow RP-MOM's last 1000.
			{kid, api.PoolUsage{Reservation: 2000, Limit: -1, Expandable: true, ReservationUsed: 4000, ReservationUsedForVm: 4000, UnreservedForPool: 1000, UnreservedForVm: 1000, MaxUsage: 20000}},
			// MaxUsage is bounded by the root's limit, the cluster capacity.
			// The root gave RP-MOM its fixed 6000 whatever it uses.
			{rootRP, api.PoolUsage{Reservation: 20000, Limit: 20000, ReservationUsed: 6000, ReservationUsedForVm: 5000, UnreservedForPool: 14000, UnreservedForVm: 14000, MaxUsage: 20000}},
		} {
			got := e.poolCPU(t, c.path)
			got.Shares = 0 // shares have their own tests in pools/
			if got != c.want {
				t.Errorf("pool %s CPU:\n got  %+v\n want %+v", api.Base(c.path), got, c.want)
			}
		}
		// A fourth 2 GHz VM no longer fits: only 1000 MHz is left in RP-MOM.
		err := e.powerOn(t, vm("VM-K3", kid, 2000, api.PoweredOff))
		if !errors.Is(err, api.ErrInsufficientResources) {
			t.Fatalf("VM-K3 = %v, want insufficient resources", err)
		}
	})

	t.Run("RP-MOM running 3 GHz refuses VM-K2", func(t *testing.T) {
		e := build(t, 3000)
		before := e.poolCPU(t, kid)
		err := e.powerOn(t, vm("VM-K2", kid, 2000, api.PoweredOff))
		if !errors.Is(err, api.ErrInsufficientResources) {
			t.Fatalf("VM-K2 = %v, want insufficient resources", err)
		}
		want := "cannot power on /dc1/vm/VM-K2: insufficient cpu in " + kid + ": 2000 MHz asked, 1000 MHz unreserved (expandable reservation reached " + mom + ", which is fixed)"
		if err.Error() != want {
			t.Errorf("refusal:\n got  %s\n want %s", err, want)
		}
		code, eb := rawRequest(t, http.MethodPost, e.url+"/api/v1/power", e.s.AdminToken(), mustJSON(api.PowerRequest{Path: "/dc1/vm/VM-K2", Action: "on"}))
		if code != http.StatusConflict || eb.Reason != "InsufficientResources" {
			t.Errorf("refused power-on answered %d %+v, want 409 InsufficientResources", code, eb)
		}
		if after := e.poolCPU(t, kid); after != before {
			t.Errorf("a refused power-on changed RP-KID: %+v -> %+v", before, after)
		}
		k2, _ := e.admin.Get(ctxT(t), "/dc1/vm/VM-K2")
		var spec api.VMSpec
		_ = k2.DecodeSpec(&spec)
		if spec.PowerState != api.PoweredOff || spec.Host != "" {
			t.Errorf("refused VM-K2 is %s on %q", spec.PowerState, spec.Host)
		}
		// The refusal is on record: an error event with the reason, a failed task.
		evs := e.eventsFor(t, "/dc1/vm/VM-K2")
		if !hasEvent(evs, "VmFailedToPowerOnEvent", "1000 MHz unreserved (expandable reservation reached "+mom) {
			t.Errorf("no refusal event with the reason; events: %q", eventTypes(evs))
		}
		var failed int
		for _, ts := range e.tasksFor(t, "/dc1/vm/VM-K2") {
			if ts.Name == "PowerOnVM_Task" {
				if ts.Result != "error" || !strings.Contains(ts.Error, "insufficient cpu in "+kid) {
					t.Errorf("power-on task %+v, want a failed task with the reason", ts)
				}
				failed++
			}
		}
		if failed != 2 {
			t.Errorf("%d failed PowerOnVM_Task for two refusals", failed)
		}
	})
}

func TestPoolAdmissionThroughAPI(t *testing.T) {
	e := poolEnv(t)
	ctx := ctxT(t)
	// A child pool's reservation is admitted against its parent at create and change.
	e.mustCreate(t, pool(rootRP+"/fixed", alloc(3000, -1, false), nil))
	_, err := e.admin.Create(ctx, pool(rootRP+"/fixed/big", alloc(4000, -1, false), nil))
	if !errors.Is(err, api.ErrInsufficientResources) || !strings.Contains(err.Error(), "fixed") {
		t.Fatalf("child pool above a fixed parent = %v", err)
	}
	if _, err := e.admin.Get(ctx, rootRP+"/fixed/big"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("refused pool exists: %v", err)
	}
	small := e.mustCreate(t, pool(rootRP+"/fixed/small", alloc(1000, -1, false), nil))
	small.SetSpec(api.PoolSpec{CPU: alloc(5000, -1, false), Mem: alloc(0, -1, true)})
	if _, err := e.admin.Update(ctx, small); !errors.Is(err, api.ErrInsufficientResources) {
		t.Fatalf("growing a child beyond its parent = %v", err)
	}
	// The cluster's capacity bounds the root: a 25 GHz pool cannot be made from 20.
	if _, err := e.admin.Create(ctx, pool(rootRP+"/huge", alloc(25000, -1, false), nil)); !errors.Is(err, api.ErrInsufficientResources) {
		t.Fatalf("pool above cluster capacity = %v", err)
	}
	// A limit caps reservations beneath it.
	e.mustCreate(t, pool(rootRP+"/capped", alloc(0, 1500, true), nil))
	if err := e.powerOn(t, vm("c1", rootRP+"/capped", 1000, api.PoweredOff)); err != nil {
		t.Fatal(err)
	}
	err = e.powerOn(t, vm("c2", rootRP+"/capped", 1000, api.PoweredOff))
	if !errors.Is(err, api.ErrInsufficientResources) || !strings.Contains(err.Error(), "its limit is 1500 MHz") {
		t.Fatalf("VM beyond a pool limit = %v", err)
	}
}

func TestQuotaThroughAPI(t *testing.T) {
	e := poolEnv(t)
	ctx := ctxT(t)
	const dev = rootRP + "/dev"

	t.Run("vms count", func(t *testing.T) {
		q := unlimitedQuota()
		q.VMs = 10
		e.mustCreate(t, pool(dev, alloc(0, -1, true), q))
		for i := range 10 {
			e.mustCreate(t, vm(fmt.Sprintf("dev%02d", i), dev, 0, api.PoweredOff))
		}
		before := e.revision(t)
		_, err := e.admin.Create(ctx, vm("dev10", dev, 0, api.PoweredOff))
		if !errors.Is(err, api.ErrQuotaExceeded) {
			t.Fatalf("11th VM = %v, want quota exceeded", err)
		}
		if got, want := err.Error(), "quota exceeded in /dc1/host/c1/Resources/dev: vms 10 + 1 > 10"; got != want {
			t.Fatalf("message %q, want %q", got, want)
		}
		code, eb := rawRequest(t, http.MethodPost, e.url+"/api/v1/object", e.s.AdminToken(), mustJSON(vm("dev10", dev, 0, api.PoweredOff)))
		if code != http.StatusForbidden || eb.Reason != "QuotaExceeded" {
			t.Fatalf("raw answer %d %+v, want 403 QuotaExceeded", code, eb)
		}
		if _, err := e.admin.Get(ctx, "/dc1/vm/dev10"); !errors.Is(err, api.ErrNotFound) {
			t.Fatalf("refused VM exists: %v", err)
		}
		// Only the refusal's own event and task were written: 2 refusals x 2 objects.
		if after := e.revision(t); after != before+4 {
			t.Errorf("revision %d -> %d: want only the refusals' events and tasks", before, after)
		}
		evs := e.eventsFor(t, "/dc1/vm/dev10")
		if len(evs) != 2 || evs[0].Category != "error" || evs[0].Message != "quota exceeded in /dc1/host/c1/Resources/dev: vms 10 + 1 > 10" {
			t.Errorf("refusal events: %+v", evs)
		}
		ts := e.tasksFor(t, "/dc1/vm/dev10")
		if len(ts) != 2 || ts[0].Name != "CreateVM_Task" || ts[0].Result != "error" {
			t.Errorf("refusal tasks: %+v", ts)
		}
		info, err := e.admin.Quota(ctx, dev)
		if err != nil || info.Used.VMs != 10 || info.Limits.VMs != 10 || info.Limits.CPUMHz != -1 {
			t.Errorf("quota info = %+v, %v", info, err)
		}
		// Deleting one makes room for one.
		if err := e.admin.Delete(ctx, "/dc1/vm/dev00", client.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.mustCreate(t, vm("dev10", dev, 0, api.PoweredOff))
	})

	t.Run("ancestor quota", func(t *testing.T) {
		const team = rootRP + "/team"
		q := unlimitedQuota()
		q.VMs = 3
		e.mustCreate(t, pool(team, alloc(0, -1, true), q))
		e.mustCreate(t, pool(team+"/a", alloc(0, -1, true), nil))
		e.mustCreate(t, pool(team+"/b", alloc(0, -1, true), nil))
		e.mustCreate(t, vm("ta1", team+"/a", 0, api.PoweredOff))
		e.mustCreate(t, vm("ta2", team+"/a", 0, api.PoweredOff))
		e.mustCreate(t, vm("tb1", team+"/b", 0, api.PoweredOff))
		_, err := e.admin.Create(ctx, vm("tb2", team+"/b", 0, api.PoweredOff))
		if !errors.Is(err, api.ErrQuotaExceeded) || err.Error() != "quota exceeded in "+team+": vms 3 + 1 > 3" {
			t.Fatalf("VM in a child of a full pool = %v", err)
		}
		// Moving a VM into the full subtree is refused as well.
		out := e.mustCreate(t, vm("outside", rootRP, 0, api.PoweredOff))
		out.SetSpec(api.VMSpec{Pool: team + "/a", NumCPU: 1, MemoryMB: 512, CPU: alloc(0, -1, false), Mem: alloc(0, -1, false)})
		if _, err := e.admin.Update(ctx, out); !errors.Is(err, api.ErrQuotaExceeded) {
			t.Fatalf("move into the full subtree = %v", err)
		}
	})

	t.Run("cpu and memory totals", func(t *testing.T) {
		const q1 = rootRP + "/q1"
		q := unlimitedQuota()
		q.CPUMHz, q.MemMB = 3000, 2048
		e.mustCreate(t, pool(q1, alloc(0, -1, true), q))
		mk := func(name string, cpus int, mem int64) *api.Object {
			return api.New(api.KindVirtualMachine, dc+"/vm/"+name, api.VMSpec{Pool: q1, NumCPU: cpus, MemoryMB: mem,
				CPU: alloc(0, -1, true), Mem: alloc(0, -1, true)})
		}
		// Powered-off VMs count against totals only when they power on.
		if err := e.powerOn(t, mk("q-a", 2, 1024)); err != nil { // 2000 MHz, 1024 MB
			t.Fatal(err)
		}
		err := e.powerOn(t, mk("q-b", 2, 512))
		if !errors.Is(err, api.ErrQuotaExceeded) || err.Error() != "cannot power on /dc1/vm/q-b: quota exceeded in "+q1+": cpu 2000 + 2000 > 3000 MHz" {
			t.Fatalf("cpu total = %v", err)
		}
		err = e.powerOn(t, mk("q-c", 1, 1536))
		if !errors.Is(err, api.ErrQuotaExceeded) || err.Error() != "cannot power on /dc1/vm/q-c: quota exceeded in "+q1+": memory 1024 + 1536 > 2048 MB" {
			t.Fatalf("memory total = %v", err)
		}
		// A limit is what counts when the VM has one.
		lim := mk("q-d", 4, 1024)
		var s api.VMSpec
		_ = lim.DecodeSpec(&s)
		s.CPU.Limit = 1000
		lim.SetSpec(s)
		if err := e.powerOn(t, lim); err != nil {
			t.Fatalf("4 vCPUs limited to 1000 MHz: %v", err)
		}
		info, err := e.admin.Quota(ctx, q1)
		if err != nil || info.Used.CPUMHz != 3000 || info.Used.MemMB != 2048 || info.Used.VMs != 4 {
			t.Errorf("quota used = %+v, %v", info.Used, err)
		}
		// Powering off gives the room back.
		if _, err := e.admin.Power(ctx, "/dc1/vm/q-a", "off"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.admin.Power(ctx, "/dc1/vm/q-b", "on"); err != nil {
			t.Fatalf("q-b after q-a powered off: %v", err)
		}
	})
}

// TestConcurrentAdmission: 32 clients at once against room for one. The
// store serialises admission with the write, so exactly one wins.
func TestConcurrentAdmission(t *testing.T) {
	const n = 32
	race := func(t *testing.T, e *env, do func(i int) error) (ok int, errs []error) {
		t.Helper()
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			start = make(chan struct{})
		)
		for i := range n {
			wg.Go(func() {
				<-start
				err := do(i)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					ok++
				} else {
					errs = append(errs, err)
				}
			})
		}
		close(start)
		wg.Wait()
		return ok, errs
	}
	check := func(t *testing.T, ok int, errs []error, sentinel error, msg string) {
		t.Helper()
		if ok != 1 || len(errs) != n-1 {
			t.Fatalf("%d admitted, %d refused; want 1 and %d (errors: %v)", ok, len(errs), n-1, errs)
		}
		for _, err := range errs {
			if !errors.Is(err, sentinel) || !strings.Contains(err.Error(), msg) {
				t.Fatalf("refusal %v, want %v containing %q", err, sentinel, msg)
			}
		}
	}
	countOn := func(t *testing.T, e *env, poolPath string) int {
		l, err := e.admin.List(ctxT(t), client.ListOptions{Kind: api.KindVirtualMachine})
		if err != nil {
			t.Fatal(err)
		}
		on := 0
		for _, o := range l.Items {
			var s api.VMSpec
			_ = o.DecodeSpec(&s)
			if s.Pool == poolPath && s.PowerState == api.PoweredOn {
				on++
			}
		}
		return on
	}
	failedTasks := func(t *testing.T, e *env, name string) int {
		l, _ := e.admin.List(ctxT(t), client.ListOptions{Kind: api.KindTask})
		c := 0
		for _, o := range l.Items {
			var ts api.TaskSpec
			_ = o.DecodeSpec(&ts)
			if ts.Name == name && ts.Result == "error" {
				c++
			}
		}
		return c
	}

	t.Run("power-on against a cpu quota", func(t *testing.T) {
		e := poolEnv(t)
		const p = rootRP + "/q"
		q := unlimitedQuota()
		q.CPUMHz = 1000 // one 1-vCPU VM
		e.mustCreate(t, pool(p, alloc(0, -1, true), q))
		for i := range n {
			e.mustCreate(t, vm(fmt.Sprintf("v%02d", i), p, 0, api.PoweredOff))
		}
		ok, errs := race(t, e, func(i int) error {
			_, err := e.admin.Power(ctxT(t), fmt.Sprintf("/dc1/vm/v%02d", i), "on")
			return err
		})
		check(t, ok, errs, api.ErrQuotaExceeded, "quota exceeded in "+p+": cpu 1000 + 1000 > 1000 MHz")
		if on := countOn(t, e, p); on != 1 {
			t.Errorf("%d VMs powered on", on)
		}
		if f := failedTasks(t, e, "PowerOnVM_Task"); f != n-1 {
			t.Errorf("%d failed power-on tasks, want %d", f, n-1)
		}
		if info, _ := e.admin.Quota(ctxT(t), p); info.Used.CPUMHz != 1000 {
			t.Errorf("quota used %+v", info.Used)
		}
	})

	t.Run("power-on against a fixed pool reservation", func(t *testing.T) {
		e := poolEnv(t)
		const p = rootRP + "/r"
		e.mustCreate(t, pool(p, alloc(1500, -1, false), nil))
		for i := range n {
			e.mustCreate(t, vm(fmt.Sprintf("v%02d", i), p, 1000, api.PoweredOff))
		}
		ok, errs := race(t, e, func(i int) error {
			_, err := e.admin.Power(ctxT(t), fmt.Sprintf("/dc1/vm/v%02d", i), "on")
			return err
		})
		check(t, ok, errs, api.ErrInsufficientResources, "insufficient cpu in "+p+": 1000 MHz asked, 500 MHz unreserved")
		if on := countOn(t, e, p); on != 1 {
			t.Errorf("%d VMs powered on", on)
		}
		if u := e.poolCPU(t, p); u.ReservationUsed != 1000 || u.UnreservedForVm != 500 {
			t.Errorf("pool usage %+v", u)
		}
	})

	t.Run("create against a vms quota", func(t *testing.T) {
		e := poolEnv(t)
		const p = rootRP + "/one"
		q := unlimitedQuota()
		q.VMs = 1
		e.mustCreate(t, pool(p, alloc(0, -1, true), q))
		ok, errs := race(t, e, func(i int) error {
			_, err := e.admin.Create(ctxT(t), vm(fmt.Sprintf("c%02d", i), p, 0, api.PoweredOff))
			return err
		})
		check(t, ok, errs, api.ErrQuotaExceeded, "quota exceeded in "+p+": vms 1 + 1 > 1")
		l, _ := e.admin.List(ctxT(t), client.ListOptions{Kind: api.KindVirtualMachine})
		if len(l.Items) != 1 {
			t.Errorf("%d VMs exist", len(l.Items))
		}
		if f := failedTasks(t, e, "CreateVM_Task"); f != n-1 {
			t.Errorf("%d failed create tasks, want %d", f, n-1)
		}
	})

	t.Run("create powered on against a cpu quota", func(t *testing.T) {
		e := poolEnv(t)
		const p = rootRP + "/on"
		q := unlimitedQuota()
		q.CPUMHz = 1000
		e.mustCreate(t, pool(p, alloc(0, -1, true), q))
		ok, errs := race(t, e, func(i int) error {
			_, err := e.admin.Create(ctxT(t), vm(fmt.Sprintf("c%02d", i), p, 0, api.PoweredOn))
			return err
		})
		check(t, ok, errs, api.ErrQuotaExceeded, "cpu 1000 + 1000 > 1000 MHz")
		l, _ := e.admin.List(ctxT(t), client.ListOptions{Kind: api.KindVirtualMachine})
		if len(l.Items) != 1 {
			t.Errorf("%d VMs exist; a refused power-on at create must not leave the VM", len(l.Items))
		}
	})
}
