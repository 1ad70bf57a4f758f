package agent

import (
	"fmt"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/runtime"
)

func want(id, power string, gen, done int64) DesiredVM {
	return DesiredVM{ID: id, Path: "/dc1/vm/" + id, PowerState: power, ResetGeneration: gen, ResetDone: done,
		Spec: runtime.VMSpec{ID: id, Path: "/dc1/vm/" + id}}
}

func have(id, power string) runtime.VMState {
	return runtime.VMState{ID: id, Path: "/dc1/vm/" + id, PowerState: power}
}

// hashed is have with the spec hash the driver recorded at create.
func hashed(id, power, hash string) runtime.VMState {
	s := have(id, power)
	s.SpecHash = hash
	return s
}

// shaped is hashed with the shape hash a runtime.Resizer reports.
func shaped(id, power, hash, shape string) runtime.VMState {
	s := hashed(id, power, hash)
	s.ShapeHash = shape
	return s
}

// completed is a run-to-completion VM that finished in phase.
func completed(id, phase string) runtime.VMState {
	s := have(id, api.PoweredOff)
	s.Phase = phase
	return s
}

// changedSpec is want with a spec other than want's (another memory limit).
func changedSpec(id, power string, gen, done int64) DesiredVM {
	d := want(id, power, gen, done)
	d.Spec.Mem.Limit = 256
	return d
}

// steps renders a plan as "kind id[@gen]" items for comparison.
func steps(as []Action) string {
	var s []string
	for _, a := range as {
		x := fmt.Sprintf("%s %s", a.Kind, a.ID)
		if a.ResetGeneration != 0 {
			x += fmt.Sprintf("@%d", a.ResetGeneration)
		}
		s = append(s, x)
	}
	return strings.Join(s, ", ")
}

func TestPlan(t *testing.T) {
	on, off := api.PoweredOn, api.PoweredOff
	// The hash of want's spec, and one of a spec want no longer has.
	cur, old := runtime.SpecHash(want("a", on, 0, 0).Spec), runtime.SpecHash(changedSpec("a", on, 0, 0).Spec)
	shape := runtime.ShapeHash(changedSpec("a", on, 0, 0).Spec)
	for _, tc := range []struct {
		name    string
		desired []DesiredVM
		actual  []runtime.VMState
		want    string
	}{
		{"nothing", nil, nil, ""},
		{"new VM to power on", []DesiredVM{want("a", on, 0, 0)}, nil, "create a, start a"},
		{"created but stopped", []DesiredVM{want("a", on, 0, 0)}, []runtime.VMState{have("a", off)}, "start a"},
		{"running as wanted is adopted", []DesiredVM{want("a", on, 0, 0)}, []runtime.VMState{have("a", on)}, "adopt a"},
		{"reset asked", []DesiredVM{want("a", on, 3, 2)}, []runtime.VMState{have("a", on)}, "restart a@3"},
		{"reset already done", []DesiredVM{want("a", on, 3, 3)}, []runtime.VMState{have("a", on)}, "adopt a@3"},
		{"reset of a VM not yet running: a fresh boot does it", []DesiredVM{want("a", on, 1, 0)}, nil, "create a@1, start a@1"},
		{"power off", []DesiredVM{want("a", off, 0, 0)}, []runtime.VMState{have("a", on)}, "stop a"},
		{"off and stopped is kept", []DesiredVM{want("a", off, 0, 0)}, []runtime.VMState{have("a", off)}, "adopt a"},
		{"off and absent: nothing to do", []DesiredVM{want("a", off, 0, 0)}, nil, ""},
		{"suspended counts as off", []DesiredVM{want("a", api.Suspended, 0, 0)}, []runtime.VMState{have("a", on)}, "stop a"},
		{"empty power state counts as off", []DesiredVM{want("a", "", 0, 0)}, nil, ""},
		{"reset while off waits for power on", []DesiredVM{want("a", off, 2, 1)}, []runtime.VMState{have("a", off)}, "adopt a@2"},
		{"deleted or moved away while running", nil, []runtime.VMState{have("z", on)}, "stop z, delete z"},
		{"deleted or moved away while stopped", nil, []runtime.VMState{have("z", off)}, "delete z"},
		{"agent restart: healthy VMs are adopted, never restarted, unwanted removed",
			[]DesiredVM{want("a", on, 5, 5), want("b", on, 0, 0), want("c", off, 0, 0)},
			[]runtime.VMState{have("a", on), have("b", on), have("c", off), have("gone", on)},
			"stop gone, delete gone, adopt a@5, adopt b, adopt c"},
		{"capacity is freed before new VMs start",
			[]DesiredVM{want("new", on, 0, 0), want("old", off, 0, 0)},
			[]runtime.VMState{have("old", on), have("moved", off)},
			"delete moved, stop old, create new, start new"},
		{"spec unchanged: adopted", []DesiredVM{want("a", on, 0, 0)}, []runtime.VMState{hashed("a", on, cur)}, "adopt a"},
		{"spec changed while running: recreated and started", []DesiredVM{want("a", on, 0, 0)}, []runtime.VMState{hashed("a", on, old)}, "recreate a, start a"},
		{"spec changed with a reset pending: the fresh boot does it", []DesiredVM{want("a", on, 4, 3)}, []runtime.VMState{hashed("a", on, old)}, "recreate a@4, start a@4"},
		{"spec changed while stopped, to power on", []DesiredVM{want("a", on, 0, 0)}, []runtime.VMState{hashed("a", off, old)}, "recreate a, start a"},
		{"spec changed while stopped and to stay off: recreated, not started", []DesiredVM{want("a", off, 0, 0)}, []runtime.VMState{hashed("a", off, old)}, "recreate a"},
		{"spec changed and powered off at once: stop, then recreate", []DesiredVM{want("a", off, 0, 0)}, []runtime.VMState{hashed("a", on, old)}, "stop a, recreate a"},
		{"only the size changed while running: resized in place, no restart", []DesiredVM{want("a", on, 0, 0)}, []runtime.VMState{shaped("a", on, old, shape)}, "resize a"},
		{"only the size changed while stopped: resized, stays off", []DesiredVM{want("a", off, 0, 0)}, []runtime.VMState{shaped("a", off, old, shape)}, "resize a"},
		{"only the size changed, to power on: resized, then started", []DesiredVM{want("a", on, 0, 0)}, []runtime.VMState{shaped("a", off, old, shape)}, "resize a, start a"},
		{"only the size changed with a reset pending: resized, then reset", []DesiredVM{want("a", on, 4, 3)}, []runtime.VMState{shaped("a", on, old, shape)}, "resize a@4, restart a@4"},
		{"more than the size changed: recreated", []DesiredVM{want("a", on, 0, 0)}, []runtime.VMState{shaped("a", on, old, "another-shape")}, "recreate a, start a"},
		{"spec unchanged and off", []DesiredVM{want("a", off, 0, 0)}, []runtime.VMState{hashed("a", off, cur)}, "adopt a"},
		{"no recorded hash (older agent): adopted, not recreated",
			[]DesiredVM{changedSpec("a", on, 0, 0), changedSpec("b", off, 0, 0)},
			[]runtime.VMState{hashed("a", on, ""), hashed("b", off, "")},
			"adopt a, adopt b"},
		{"completed VM is not started again", []DesiredVM{want("a", on, 0, 0), want("b", on, 0, 0)},
			[]runtime.VMState{completed("a", api.PhaseSucceeded), completed("b", api.PhaseFailed)}, "adopt a, adopt b"},
		{"completed VM, reset: a new run", []DesiredVM{want("a", on, 2, 1)}, []runtime.VMState{completed("a", api.PhaseSucceeded)}, "start a@2"},
		{"completed VM, spec changed: a new run", []DesiredVM{want("a", on, 0, 0)},
			[]runtime.VMState{func() runtime.VMState { s := completed("a", api.PhaseFailed); s.SpecHash = old; return s }()}, "recreate a, start a"},
		{"agent restart: changed VMs are recreated, unchanged ones adopted",
			[]DesiredVM{want("a", on, 0, 0), changedSpec("b", on, 0, 0), want("c", on, 0, 0), want("d", on, 0, 0)},
			[]runtime.VMState{hashed("a", on, cur), hashed("b", on, cur), hashed("c", on, ""), hashed("gone", on, cur), hashed("d", off, old)},
			"stop gone, delete gone, adopt a, recreate b, start b, adopt c, recreate d, start d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Plan(tc.desired, tc.actual)
			if s := steps(got); s != tc.want {
				t.Errorf("Plan =\n  %s\nwant\n  %s", s, tc.want)
			}
			for _, a := range got {
				if a.Kind == Create && (a.Spec == nil || a.Spec.ID != a.ID) {
					t.Errorf("create %s without its spec", a.ID)
				}
				if a.Kind == Recreate && (a.Spec == nil || a.Spec.ID != a.ID) {
					t.Errorf("recreate %s without its spec", a.ID)
				}
				if a.Kind != Create && a.Kind != Recreate && a.Kind != Resize && a.Spec != nil {
					t.Errorf("%s %s carries a spec", a.Kind, a.ID)
				}
			}
		})
	}
}

// Plan is pure: the same input gives the same plan, and it leaves its input alone.
func TestPlanDeterministic(t *testing.T) {
	d := []DesiredVM{want("b", api.PoweredOn, 0, 0), want("a", api.PoweredOn, 0, 0), want("c", api.PoweredOff, 0, 0)}
	a := []runtime.VMState{have("c", api.PoweredOn), have("x", api.PoweredOff)}
	first := steps(Plan(d, a))
	for range 20 {
		if s := steps(Plan(d, a)); s != first {
			t.Fatalf("Plan not deterministic: %s vs %s", s, first)
		}
	}
	if d[0].ID != "b" || a[0].ID != "c" {
		t.Error("Plan reordered its input")
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    string
	}{{0, "100ms"}, {1, "200ms"}, {3, "800ms"}, {6, "5s"}, {100, "5s"}} {
		if d := Backoff(tc.attempt, 100e6, 5e9); d.String() != tc.want {
			t.Errorf("Backoff(%d) = %v, want %s", tc.attempt, d, tc.want)
		}
	}
}

// A recreate builds the VM from the desired spec, not the one it ran.
func TestPlanRecreateCarriesNewSpec(t *testing.T) {
	d := changedSpec("a", api.PoweredOn, 0, 0)
	old := runtime.SpecHash(want("a", api.PoweredOn, 0, 0).Spec)
	got := Plan([]DesiredVM{d}, []runtime.VMState{hashed("a", api.PoweredOn, old)})
	if len(got) != 2 || got[0].Kind != Recreate || got[0].Spec == nil {
		t.Fatalf("Plan = %s, want recreate then start", steps(got))
	}
	if got[0].Spec.Mem.Limit != 256 || runtime.SpecHash(*got[0].Spec) != runtime.SpecHash(d.Spec) {
		t.Errorf("recreate carries %+v, want the desired spec %+v", *got[0].Spec, d.Spec)
	}
	// Once recreated, the driver reports the new hash: nothing more to do.
	if s := steps(Plan([]DesiredVM{d}, []runtime.VMState{hashed("a", api.PoweredOn, runtime.SpecHash(d.Spec))})); s != "adopt a" {
		t.Errorf("after the recreate Plan = %s, want adopt a", s)
	}
}

// Every step of a VM carries its grace period, for the steps that stop it.
func TestPlanCarriesGrace(t *testing.T) {
	g := int64(3)
	d := want("a", api.PoweredOff, 0, 0)
	d.Spec.TerminationGracePeriodSeconds = &g
	got := Plan([]DesiredVM{d}, []runtime.VMState{have("a", api.PoweredOn)})
	if len(got) != 1 || got[0].Kind != Stop || got[0].Grace == nil || *got[0].Grace != 3 {
		t.Fatalf("Plan = %+v", got)
	}
	// A VM that left vcenter is stopped with the grace period its runtime recorded.
	gone := have("gone", api.PoweredOn)
	gone.Grace = &g
	got = Plan(nil, []runtime.VMState{gone})
	if len(got) != 2 || got[0].Kind != Stop || got[0].Grace == nil || *got[0].Grace != 3 {
		t.Fatalf("Plan = %+v", got)
	}
}
