package lab

import (
	"slices"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api/client"
)

// TestHADrillSim runs psc ha.drill on a lab of simulated hosts, whose VMs
// live only in their agents: the Sampler reads each agent's GET /vms from
// inside the host's netns and agrees with the inventory; crashing the host
// of a VM restarts every protected VM elsewhere, never twice; isolating one
// with response powerOff stops its VMs there (the FDM through the agent)
// before they run elsewhere; and lab down leaves nothing.
func TestHADrillSim(t *testing.T) {
	requireLabRuntime(t, "sim")
	podsphere, psc := buildBinaries(t)
	before := snapshot(t)
	l := newLabRun(t, podsphere, psc)
	l.upWith(3, "--runtime", "sim")
	l.env = append(l.env, "PSC_LAB="+l.dir)
	s, err := LoadState(l.dir)
	if err != nil || s == nil {
		t.Fatalf("state: %v", err)
	}
	c, err := client.New(s.LocalURL, readToken(l.dir))
	if err != nil {
		t.Fatal(err)
	}
	sm, err := NewSampler(l.dir)
	if err != nil {
		t.Fatalf("NewSampler on a sim lab: %v", err)
	}
	defer sm.Close()

	l.must(psc, "cluster.change", "-ha-enabled", "c1")
	l.must(psc, "vm.create", "-m", "64", "db")
	l.must(psc, "vm.create", "-m", "64", "app")
	l.waitReady(c, 2)

	// The agents say what the inventory says, read from inside each host.
	where := map[string][]string{}
	for _, vm := range []string{"/dc1/vm/db", "/dc1/vm/app"} {
		h := l.hostOf(c, vm)
		where[h] = append(where[h], l.uidOf(c, vm))
	}
	l.waitSample(sm, 10*time.Second, "the sampler seeing db and app where vcenter placed them", func(smp Sample) bool {
		for _, h := range hostNames(s.Hosts) {
			if _, ok := smp.Running[h]; !ok || !slices.Equal(smp.Running[h], slices.Sorted(slices.Values(where[h]))) {
				return false
			}
		}
		return true
	})

	victim := l.hostOf(c, "/dc1/vm/db")
	protected := l.vmsOn(c, victim)
	rep := l.drill("-mode", "crash", victim)
	if len(rep.VMs) != len(protected) {
		t.Errorf("the crash drill of %s protected %d VMs, want %d (%v)", victim, len(rep.VMs), len(protected), protected)
	}
	for _, v := range rep.VMs {
		if v.Outcome != "restarted" || v.To == victim || v.To == "" {
			t.Errorf("crash: %s: %s to %q, want restarted on another host", v.VM, v.Outcome, v.To)
		}
	}
	t.Logf("sim crash of %s: every protected VM back in %.2f s, %d samples", victim, rep.RecoverySeconds, rep.Samples)
	l.waitReady(c, 2)

	// Isolation with response powerOff: the host's FDM stops db in its
	// agent (POST /stop), and only then does it run elsewhere, never twice.
	l.must(psc, "cluster.change", "-ha-isolation-response", "powerOff", "c1")
	host := l.hostOf(c, "/dc1/vm/db")
	rep = l.drill("-mode", "isolate", host)
	for _, v := range rep.VMs {
		if v.Outcome != "restarted" || v.Stopped.IsZero() || v.To == host {
			t.Errorf("isolate powerOff: %s: %s to %q (stopped %v), want stopped on %s and restarted elsewhere", v.VM, v.Outcome, v.To, v.Stopped, host)
		}
	}

	// Healed (host.restart): each VM runs once, where vcenter has it.
	l.waitReady(c, 2)
	smp := l.waitSample(sm, 20*time.Second, "each VM running once, on its registered host", func(smp Sample) bool {
		n := 0
		for _, uids := range smp.Running {
			n += len(uids)
		}
		for _, vm := range []string{"/dc1/vm/db", "/dc1/vm/app"} {
			if !slices.Contains(smp.Running[l.hostOf(c, vm)], l.uidOf(c, vm)) {
				return false
			}
		}
		return n == 2
	})
	t.Logf("after the drill: %s", smp)

	l.must(podsphere, "lab", "down", "--dir", l.dir, "--prefix", l.prefix)
	l.checkGone(before)
}
