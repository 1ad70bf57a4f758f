package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

// HA admission control: with one host failure tolerated, a power-on that
// would leave too little to restart everything is refused, naming the
// policy and the figures; with admission control off it is admitted.
func TestHAAdmissionControl(t *testing.T) {
	for _, policy := range []string{"percentage", "slot"} {
		t.Run(policy, func(t *testing.T) {
			e := startVCenter(t, Config{})
			e.inventory(t, &api.ClusterSpec{HA: api.HAConfig{Enabled: true, AdmissionControlEnabled: true, HostFailuresTolerated: 1, AdmissionPolicy: policy}})
			e.joinHost(t, "esx-01", 10000, 65536)
			e.joinHost(t, "esx-02", 10000, 65536)
			// 10,000 MHz of 20,000 are kept for one host's failure: two VMs
			// of 5,000 fit (2 slots of 5,000 left after the largest host).
			e.mustCreate(t, vm("a", rootRP, 5000, api.PoweredOn))
			e.mustCreate(t, vm("b", rootRP, 5000, api.PoweredOn))
			_, err := e.admin.Create(ctxT(t), vm("c", rootRP, 5000, api.PoweredOn))
			if !errors.Is(err, api.ErrInsufficientResources) || !strings.Contains(err.Error(), "HA admission control") {
				t.Fatalf("the third VM: %v, want an HA admission control refusal", err)
			}
			want := map[string]string{"percentage": "cluster resource percentage, 1 host failures tolerated", "slot": "slot policy, 1 host failures tolerated"}[policy]
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q does not name %q", err, want)
			}
			if !hasEvent(e.eventsFor(t, dc+"/vm/c"), "VmFailedToPowerOnEvent", "HA admission control") {
				t.Errorf("no refusal event for c")
			}
			// A running VM's reservation may not grow into the failover reserve.
			o, s, _ := e.getVM(t, "a")
			s.CPU.Reservation = 6000
			o.SetSpec(s)
			if _, err := e.admin.Update(ctxT(t), o); !errors.Is(err, api.ErrInsufficientResources) || !strings.Contains(err.Error(), "HA admission control") {
				t.Errorf("growing a to 6000 MHz: %v", err)
			}
		})
	}
	t.Run("off", func(t *testing.T) {
		e := startVCenter(t, Config{})
		e.inventory(t, &api.ClusterSpec{HA: api.HAConfig{Enabled: true}})
		e.joinHost(t, "esx-01", 10000, 65536)
		e.joinHost(t, "esx-02", 10000, 65536)
		for _, n := range []string{"a", "b", "c"} {
			e.mustCreate(t, vm(n, rootRP, 5000, api.PoweredOn))
		}
	})
	t.Run("bad policy", func(t *testing.T) {
		e := startVCenter(t, Config{})
		e.mustCreate(t, api.New(api.KindDatacenter, dc, nil))
		_, err := e.admin.Create(ctxT(t), api.New(api.KindCluster, cluster, api.ClusterSpec{HA: api.HAConfig{AdmissionPolicy: "dedicated"}}))
		if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), `spec.ha.admissionPolicy "dedicated": want percentage or slot`) {
			t.Errorf("policy dedicated: %v", err)
		}
	})
}

// ha.plan: what HA would do if a host failed, without touching anything.
func TestHAPlanPreview(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, &api.ClusterSpec{HA: api.HAConfig{Enabled: true}})
	e.joinHost(t, "esx-01", 6000, 65536)
	e.joinHost(t, "esx-02", 10000, 65536)
	e.joinHost(t, "esx-03", 4000, 65536)
	// Everything on esx-02: the others are in maintenance mode meanwhile
	// (a pinned VM would not do: HA never restarts it elsewhere).
	e.setMaintenance(t, "esx-01", true)
	e.setMaintenance(t, "esx-03", true)
	mk := func(name, prio string, res int64) {
		e.mustCreate(t, withPriority(vm(name, rootRP, res, api.PoweredOn), prio))
		if h := e.hostOf(t, name); h != "esx-02" {
			t.Fatalf("%s placed on %s", name, h)
		}
	}
	mk("db", "high", 3000)
	mk("web", "", 2000)
	mk("batch", "disabled", 0)
	mk("huge", "low", 4500)
	e.setMaintenance(t, "esx-01", false)
	e.setMaintenance(t, "esx-03", false)
	before := e.revision(t)
	plan, err := e.admin.HAPlan(ctxT(t), cluster, []string{"esx-02"})
	if err != nil {
		t.Fatal(err)
	}
	if e.revision(t) != before {
		t.Error("ha.plan wrote to the inventory")
	}
	if len(plan.Steps) != 2 || plan.Steps[0].VM != dc+"/vm/db" || plan.Steps[0].Round != 1 || plan.Steps[1].VM != dc+"/vm/web" || plan.Steps[1].Round != 2 {
		t.Errorf("steps %+v, want db in round 1 then web in round 2", plan.Steps)
	}
	if len(plan.NotRestarted) != 1 || plan.NotRestarted[0].VM != dc+"/vm/huge" || !strings.Contains(plan.NotRestarted[0].Reason, "not enough unreserved CPU") {
		t.Errorf("not restarted %+v, want huge for lack of CPU", plan.NotRestarted)
	}
	if len(plan.Unprotected) != 1 || plan.Unprotected[0] != dc+"/vm/batch" {
		t.Errorf("unprotected %v, want batch", plan.Unprotected)
	}
	if _, err := e.admin.HAPlan(ctxT(t), cluster, []string{"esx-09"}); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("a host that does not exist: %v", err)
	}
}
