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
				if a.Kind != Create && a.Spec != nil {
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
