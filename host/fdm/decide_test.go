package fdm

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/internal/hads"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

const tick = 500 * time.Millisecond

func probes(reachable ...bool) []Probe {
	var ps []Probe
	for i, r := range reachable {
		ps = append(ps, Probe{Addr: fmt.Sprintf("10.0.0.%d:7", i+1), Reachable: r})
	}
	return ps
}

func TestIsolationNeedsEveryAddressSilentForTheDetectionTime(t *testing.T) {
	s := &Isolation{Detection: 2 * time.Second}
	now := t0
	step := func(ps []Probe) bool { now = now.Add(tick); return s.Observe(now, ps) }
	// One address answering is enough, however many are silent.
	for range 10 {
		if step(probes(false, false, true)) {
			t.Fatal("isolated while a peer answers")
		}
	}
	// All silent: isolated on the tick the detection time is reached, not before.
	var at int
	for i := 1; i <= 10 && at == 0; i++ {
		if step(probes(false, false, false)) {
			at = i
		}
	}
	if iso, since := s.Isolated(); !iso || at != 5 || !since.Equal(now) {
		t.Fatalf("isolated=%v at tick %d (since %v): want isolated at the 5th silent tick (0 s + 2 s)", iso, at, since)
	}
	// A tick with nothing to probe changes nothing.
	if step(nil) {
		t.Fatal("an empty tick changed the verdict")
	}
	// The first answer ends it.
	if !step(probes(false, true)) {
		t.Fatal("still isolated after vcenter answered")
	}
	if iso, _ := s.Isolated(); iso {
		t.Fatal("isolated after an answer")
	}
	// One answer in the middle of a silent run restarts the count.
	for range 3 {
		step(probes(false))
	}
	step(probes(true))
	for i := range 4 {
		if step(probes(false)) {
			t.Fatalf("isolated %d ticks after an answer", i+1)
		}
	}
	if !step(probes(false)) {
		t.Fatal("not isolated 2 s after the last answer")
	}
	// Restored from an earlier FDM: isolated at once, since the old time.
	r := &Isolation{Detection: 2 * time.Second}
	r.Restore(t0)
	if iso, since := r.Isolated(); !iso || !since.Equal(t0) {
		t.Fatal("Restore lost the verdict")
	}
}

const esx1, esx2 = "/dc1/host/c1/esx-01", "/dc1/host/c1/esx-02"

func held(host string) hads.Lock { return hads.Lock{Host: host, State: hads.Held, Renewed: t0} }

func kinds(steps []Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, string(s.Kind)+" "+s.UID)
	}
	return out
}

func TestDecide(t *testing.T) {
	vm := func(uid, resp string, running bool) LocalVM {
		return LocalVM{UID: uid, Path: "/dc1/vm/" + uid, Desired: true, Running: running, Response: resp}
	}
	for _, tc := range []struct {
		name string
		in   Input
		want []string
	}{
		{"renews the locks it holds, leaves unlocked and stopped VMs",
			Input{VMs: []LocalVM{vm("a", ResponseDisabled, true), vm("b", ResponseDisabled, false), vm("nolock", ResponseDisabled, true),
				{UID: "off", Path: "/dc1/vm/off"}},
				Locks: map[string]hads.Lock{"a": held(esx1), "b": held(esx1), "off": held(esx1)}},
			[]string{"renew a", "renew b"}},
		{"kills a copy whose lock another host holds or was released",
			Input{VMs: []LocalVM{vm("a", ResponseDisabled, true), vm("b", ResponseDisabled, true), vm("c", ResponseDisabled, false)},
				Locks: map[string]hads.Lock{"a": held(esx2), "b": {Host: esx1, State: hads.Released}, "c": held(esx2)}},
			[]string{"kill a", "kill b"}},
		{"isolated, powerOff: kill, then release once down",
			Input{Isolated: true, VMs: []LocalVM{vm("a", ResponsePowerOff, true), vm("b", ResponsePowerOff, false), vm("c", ResponseDisabled, true)},
				Locks: map[string]hads.Lock{"a": held(esx1), "b": held(esx1), "c": held(esx1)}},
			[]string{"kill a", "release b", "renew c"}},
		{"isolated, shutdown: SIGTERM and keep renewing, kill after the timeout",
			Input{Isolated: true, ShutdownTimeout: time.Minute, Now: t0.Add(time.Minute),
				VMs:          []LocalVM{vm("a", ResponseShutdown, true), vm("b", ResponseShutdown, true), vm("c", ResponseShutdown, true)},
				ShuttingDown: map[string]time.Time{"b": t0.Add(30 * time.Second), "c": t0},
				Locks:        map[string]hads.Lock{"a": held(esx1), "b": held(esx1), "c": held(esx1)}},
			[]string{"shutdown a", "renew a", "renew b", "kill c"}},
		{"self-fencing: renewal while vcenter confirms the host",
			Input{SelfFencing: true, Confirmed: true, VMs: []LocalVM{vm("a", ResponseDisabled, true)}, Locks: map[string]hads.Lock{"a": held(esx1)}},
			[]string{"renew a"}},
		{"self-fencing: no renewal while isolated, whatever the response",
			Input{Isolated: true, SelfFencing: true, Confirmed: true, VMs: []LocalVM{vm("a", ResponseDisabled, true), vm("b", ResponsePowerOff, true)},
				Locks: map[string]hads.Lock{"a": held(esx1), "b": held(esx1)}},
			[]string{"kill b"}},
		{"self-fencing: no renewal without vcenter's word (not responding, or no answer)",
			Input{SelfFencing: true, VMs: []LocalVM{vm("a", ResponseDisabled, true)}, Locks: map[string]hads.Lock{"a": held(esx1)}},
			nil},
		{"with datastores vcenter's view of gossip does not matter",
			Input{VMs: []LocalVM{vm("a", ResponseDisabled, true)}, Locks: map[string]hads.Lock{"a": held(esx1)}},
			[]string{"renew a"}},
	} {
		tc.in.Host = esx1
		if got := kinds(Decide(tc.in)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A host isolated with powerOff, tick by tick: its VM is killed, then
// released with the reason, and nothing renews it afterwards.
func TestIsolationResponseTicks(t *testing.T) {
	s := &Isolation{Detection: 2 * time.Second}
	lock := held(esx1)
	vm := LocalVM{UID: "a", Path: "/dc1/vm/a", Desired: true, Running: true, Response: ResponsePowerOff}
	var log []string
	now := t0
	for i := 0; i < 12; i++ {
		now = now.Add(tick)
		s.Observe(now, probes(false, false))
		iso, _ := s.Isolated()
		for _, st := range Decide(Input{Now: now, Host: esx1, VMs: []LocalVM{vm}, Locks: map[string]hads.Lock{"a": lock}, Isolated: iso}) {
			log = append(log, fmt.Sprintf("%d %s", i, st.Kind))
			switch st.Kind {
			case Renew:
				lock.Renewed = now
			case Kill:
				vm.Running = false
			case Release:
				lock.State, lock.Reason = hads.Released, st.Reason
			}
		}
	}
	want := "0 renew,1 renew,2 renew,3 renew,4 kill,5 release"
	if got := strings.Join(log, ","); got != want {
		t.Fatalf("ticks: %s\nwant:  %s", got, want)
	}
	if lock.Reason != "isolation response powerOff" {
		t.Fatalf("release reason %q", lock.Reason)
	}
}

func TestEffectiveResponse(t *testing.T) {
	for _, tc := range [][3]string{
		{"", "", ResponseDisabled}, {"powerOff", "", ResponsePowerOff}, {"disabled", "shutdown", ResponseShutdown},
		{"powerOff", "none", ResponseDisabled}, {"bogus", "", ResponseDisabled},
	} {
		if got := EffectiveResponse(tc[0], tc[1]); got != tc[2] {
			t.Errorf("cluster %q vm %q: %s, want %s", tc[0], tc[1], got, tc[2])
		}
	}
}
