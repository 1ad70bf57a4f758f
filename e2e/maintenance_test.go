package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/internal/testenv"
)

// TestMaintenanceEvacuates: on a 3-host lab running a Deployment of 3
// ready VMs, psc host.maintenance.enter -evacuate moves the replicas off
// the host without the Deployment ever having fewer than 3 ready (every
// replacement runs and is ready elsewhere before the old VM stops), shows
// its progress, and the host ends in maintenance with none of them.
func TestMaintenanceEvacuates(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping end-to-end test in -short mode")
	}
	start := time.Now()
	l := newLab(t, 3)
	for _, h := range l.hosts {
		l.startAgent(h)
	}
	for _, h := range l.hosts {
		l.waitHost(h, start)
	}
	l.importBusybox(t)
	p := filepath.Join(l.dir, "web.yaml")
	if err := os.WriteFile(p, []byte(strings.Replace(webDeployment, "%s", "v1", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := l.psc("apply", "-f", p); !strings.Contains(out, "created") {
		t.Fatalf("apply said %q", out)
	}
	vms := l.waitWeb(t, "v1", 90*time.Second)
	target := api.Base(vms[0].status.Host)

	// Ready at least 3 at every sample; at most 4 on (surge by one).
	poll := l.watchRollout(t, 3, 1, 0)
	began := time.Now()
	out, errOut, code := l.pscCode("host.maintenance.enter", "-evacuate", "-timeout", "60", target)
	poll.stop()
	if code != 0 {
		t.Fatalf("host.maintenance.enter -evacuate %s: exit %d\n%s\n%s", target, code, out, errOut)
	}
	t.Logf("%s evacuated in %v:\n%s", target, time.Since(began).Round(time.Millisecond), out)
	if !strings.Contains(out, "VMs left") || !strings.Contains(out, "OK: "+target+" is in maintenance mode") {
		t.Errorf("no progress or no final line in:\n%s", out)
	}
	poll.check(t)
	for _, v := range l.webVMs(t) {
		if api.Base(v.spec.Host) == target && !v.spec.Removing {
			t.Errorf("%s is still on %s", v.name, target)
		}
	}
	l.waitWeb(t, "v1", 30*time.Second)
	if l.event(t, "EnteredMaintenanceModeEvent", "/"+dc+"/host/c1/"+target) == nil {
		t.Errorf("no EnteredMaintenanceModeEvent for %s", target)
	}
	// The old member's containers are gone from the host itself.
	testenv.WaitFor(t, "no containers left on "+target, 30*time.Second, func() bool {
		cs, err := l.ctr.ContainerService().List(l.host(target).ctx())
		return err == nil && len(cs) == 0
	})

	if out, errOut, code := l.pscCode("delete", "-f", p); code != 0 {
		t.Errorf("psc delete: exit %d: %s%s", code, out, errOut)
	}
	for _, h := range l.hosts {
		testenv.WaitFor(t, "no containers on "+h.name, 60*time.Second, func() bool {
			cs, err := l.ctr.ContainerService().List(h.ctx())
			return err == nil && len(cs) == 0
		})
	}
}
