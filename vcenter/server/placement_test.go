package server

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

// hostOf is where placement put the VM ("" when it did not).
func (e *env) hostOf(t *testing.T, name string) string {
	t.Helper()
	_, s, _ := e.getVM(t, name)
	if s.Host == "" {
		return ""
	}
	return api.Base(s.Host)
}

func (e *env) setMaintenance(t *testing.T, host string, on bool) {
	t.Helper()
	o, err := e.admin.Get(ctxT(t), cluster+"/"+host)
	if err != nil {
		t.Fatal(err)
	}
	o.SetSpec(api.HostSpec{Maintenance: on})
	if _, err := e.admin.Update(ctxT(t), o); err != nil {
		t.Fatalf("maintenance %s %v: %v", host, on, err)
	}
}

func TestPlacementSpreadsAndSkipsMaintenance(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	for _, h := range []string{"esx-01", "esx-02", "esx-03"} {
		e.joinHost(t, h, 8000, 16384)
	}
	per := map[string]int{}
	for i := range 6 {
		name := fmt.Sprintf("web%d", i)
		e.mustCreate(t, vm(name, rootRP, 1000, api.PoweredOn))
		h := e.hostOf(t, name)
		per[h]++
		evs := e.eventsFor(t, dc+"/vm/"+name)
		if !hasEvent(evs, "DrsVmPoweredOnEvent", "DRS placed "+name+" on "+h) {
			t.Errorf("no placement event for %s on %s: %q", name, h, eventTypes(evs))
		}
	}
	if per["esx-01"] != 2 || per["esx-02"] != 2 || per["esx-03"] != 2 {
		t.Fatalf("6 equal VMs on 3 equal hosts landed %v, want 2 each", per)
	}

	e.setMaintenance(t, "esx-02", true)
	if !hasEvent(e.eventsFor(t, cluster+"/esx-02"), "HostReconfiguredEvent", "entering maintenance mode") {
		t.Error("no maintenance event")
	}
	// Its two VMs are migrated away first (stopped there, as its agent
	// would report, then registered elsewhere); then it is in maintenance.
	eventually(t, "esx-02 in maintenance", 10*time.Second, func() bool {
		e.confirmStops(t, "esx-02")
		return e.hostStatus(t, "esx-02").State == api.HostMaintenance
	})
	for i := range 6 {
		if h := e.hostOf(t, fmt.Sprintf("web%d", i)); h == "esx-02" {
			t.Errorf("web%d is still on esx-02 in maintenance", i)
		}
	}
	// The root pool loses the host's capacity while it is in maintenance.
	if u := e.poolCPU(t, rootRP); u.Reservation != 16000 {
		t.Errorf("root pool capacity %d with one of three 8 GHz hosts in maintenance, want 16000", u.Reservation)
	}
	for i := range 6 {
		name := fmt.Sprintf("late%d", i)
		e.mustCreate(t, vm(name, rootRP, 500, api.PoweredOn))
		if got := e.hostOf(t, name); got == "esx-02" || got == "" {
			t.Fatalf("%s placed on %q while esx-02 is in maintenance", name, got)
		}
	}
	// Pinned to the host in maintenance: refused, with the reason.
	pinned := vm("pinned", rootRP, 0, api.PoweredOff)
	var s api.VMSpec
	_ = pinned.DecodeSpec(&s)
	s.Host, s.Pinned = cluster+"/esx-02", true
	pinned.SetSpec(s)
	e.mustCreate(t, pinned)
	if _, err := e.admin.Power(ctxT(t), pinned.Path, "on"); !errors.Is(err, api.ErrInsufficientResources) || !strings.Contains(err.Error(), "esx-02: in maintenance mode") {
		t.Fatalf("power on pinned to a host in maintenance = %v", err)
	}

	e.setMaintenance(t, "esx-02", false)
	e.mustCreate(t, vm("back", rootRP, 1000, api.PoweredOn))
	if got := e.hostOf(t, "back"); got != "esx-02" {
		t.Errorf("after maintenance.exit the emptiest host esx-02 should win, got %s", got)
	}
}

func TestPlacementAntiAffinity(t *testing.T) {
	e := startVCenter(t, Config{})
	// esx-01 is much bigger, so without the rule both VMs would go there.
	e.inventory(t, &api.ClusterSpec{Rules: []api.ClusterRule{
		{Name: "db-apart", Enabled: true, Mandatory: true, Kind: "anti-affinity", VMs: []string{"db1", "db2", "db3"}},
	}})
	e.joinHost(t, "esx-01", 100000, 262144)
	e.joinHost(t, "esx-02", 10000, 32768)

	e.mustCreate(t, vm("web1", rootRP, 1000, api.PoweredOn))
	e.mustCreate(t, vm("web2", rootRP, 1000, api.PoweredOn))
	if a, b := e.hostOf(t, "web1"), e.hostOf(t, "web2"); a != "esx-01" || b != "esx-01" {
		t.Fatalf("control VMs on %s and %s, want both on the big esx-01", a, b)
	}
	e.mustCreate(t, vm("db1", rootRP, 1000, api.PoweredOn))
	e.mustCreate(t, vm("db2", rootRP, 1000, api.PoweredOn))
	a, b := e.hostOf(t, "db1"), e.hostOf(t, "db2")
	if a == b || a == "" || b == "" {
		t.Fatalf("anti-affine db1 and db2 both on %q/%q", a, b)
	}
	// A third member has nowhere to go: the rule is mandatory.
	e.mustCreate(t, vm("db3", rootRP, 1000, api.PoweredOff))
	_, err := e.admin.Power(ctxT(t), dc+"/vm/db3", "on")
	if !errors.Is(err, api.ErrInsufficientResources) || !strings.Contains(err.Error(), "db-apart") {
		t.Fatalf("db3 = %v, want a refusal naming the rule", err)
	}
	for _, h := range []string{"esx-01", "esx-02"} {
		if !strings.Contains(err.Error(), h+": ") {
			t.Errorf("refusal %q gives no reason for %s", err, h)
		}
	}
	if e.hostOf(t, "db3") != "" {
		t.Error("refused db3 got a host")
	}
}

func TestPlacementNothingFitsGivesReasonPerHost(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	e.joinHost(t, "esx-01", 4000, 8192)
	e.joinHost(t, "esx-02", 4000, 8192)
	e.joinHost(t, "esx-03", 6000, 8192)
	// Pinned, so entering maintenance cannot move it away.
	small := vm("small", rootRP, 2000, api.PoweredOn)
	var ss api.VMSpec
	_ = small.DecodeSpec(&ss)
	ss.Host, ss.Pinned = cluster+"/esx-03", true
	small.SetSpec(ss)
	e.mustCreate(t, small)
	e.setMaintenance(t, "esx-03", true)
	// 8000 MHz of connected capacity admits 5000 in the pool tree, but no single host has it.
	big := api.New(api.KindVirtualMachine, dc+"/vm/big", api.VMSpec{Pool: rootRP, NumCPU: 2, MemoryMB: 4096,
		CPU: alloc(5000, -1, false), Mem: alloc(1024, -1, false)})
	e.mustCreate(t, big)
	before := e.revision(t)
	_, err := e.admin.Power(ctxT(t), big.Path, "on")
	if !errors.Is(err, api.ErrInsufficientResources) {
		t.Fatalf("big = %v, want insufficient resources", err)
	}
	want := []string{
		"no host can run big",
		"esx-01: not enough unreserved CPU (4000 MHz free, 5000 MHz asked)",
		"esx-02: not enough unreserved CPU (4000 MHz free, 5000 MHz asked)",
		"esx-03: in maintenance mode",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q lacks %q", err, w)
		}
	}
	evs := e.eventsFor(t, big.Path)
	var ev *api.EventSpec
	for i := range evs {
		if evs[i].Type == "VmFailedToPowerOnEvent" {
			ev = &evs[i]
		}
	}
	if ev == nil || ev.Category != "error" {
		t.Fatalf("no error event for the refusal: %q", eventTypes(evs))
	}
	if strings.HasSuffix(ev.Message, api.ErrInsufficientResources.Error()) {
		t.Errorf("event %q ends with the sentinel's name", ev.Message)
	}
	for _, w := range want {
		if !strings.Contains(ev.Message, w) {
			t.Errorf("event %q lacks %q", ev.Message, w)
		}
	}
	if after := e.revision(t); after != before+2 {
		t.Errorf("revision %d -> %d: a refusal writes its event and task only", before, after)
	}
	if e.hostOf(t, "big") != "" {
		t.Error("big got a host")
	}
}
