package agent

import (
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/sim"
	"github.com/podsphere/podsphere/vcenter/membership"
)

// TestReadinessReportedAtOnce: a VM whose readiness probe passes after
// its initial delay is reported ready within about a second of that,
// though the agent's status pass comes only every 30 s: the runtime's
// notice (runtime.Notifier) makes the report. A run-to-completion VM that
// completed reports its phase and is not started again.
func TestReadinessReportedAtOnce(t *testing.T) {
	f, srv := newFakeVCenter(t)
	vc, err := membership.Start("vcenter", "127.0.0.1:0", token, fastTimings(), &hosts{alive: map[string]string{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	f.seed = vc.Addr()

	f.put(vmEdited("web", me, api.PoweredOn, func(s *api.VMSpec) {
		s.Containers[0].ReadinessProbe = &api.Probe{HTTPGet: &api.HTTPGetAction{Port: api.Int(80)}, InitialDelaySeconds: 1}
	}))
	f.put(vmEdited("job", me, api.PoweredOn, func(s *api.VMSpec) {
		s.RestartPolicy = "Never"
		s.Containers[0].Command = []string{"true"}
	}))
	rt := sim.New(4000, 8192, sim.IPPrefix(1))
	r := startAgentWith(t, srv.URL, rt, token, func(c *Config) { c.Timings.StatusInterval = 30 * time.Second })
	<-r.agent.Ready()

	eventually(t, "web powered on, not ready", func() bool {
		st := status(f.obj("/dc1/vm/web"))
		return st.PowerState == api.PoweredOn && !st.Ready
	})
	on := time.Now()
	eventually(t, "web ready", func() bool { return status(f.obj("/dc1/vm/web")).Ready })
	if took := time.Since(on); took > 2500*time.Millisecond {
		t.Fatalf("readiness took %v to reach vcenter (delay 1 s)", took)
	}
	st := status(f.obj("/dc1/vm/web"))
	if st.ReadySince.IsZero() || st.ReadySince.Before(st.BootTime) || !st.Containers[0].Ready || !st.Containers[0].Started {
		t.Fatalf("ready status %+v", st)
	}

	eventually(t, "job succeeded", func() bool { return status(f.obj("/dc1/vm/job")).Phase == api.PhaseSucceeded })
	st = status(f.obj("/dc1/vm/job"))
	if st.PowerState != api.PoweredOff || st.Ready || st.Restarts != 0 {
		t.Fatalf("completed job %+v", st)
	}
	// Passes (here: the ones each status write's watch event brings) leave it completed.
	for _, id := range []string{"web", "job"} {
		f.put(f.obj("/dc1/vm/" + id)) // a write by an admin: the agent passes again
	}
	time.Sleep(300 * time.Millisecond)
	if st := status(f.obj("/dc1/vm/job")); st.Restarts != 0 || st.Phase != api.PhaseSucceeded {
		t.Fatalf("completed job started again: %+v", st)
	}
	r.stop(t)
}
