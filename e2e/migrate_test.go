package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd"

	"github.com/podsphere/podsphere/api"
	ctrdriver "github.com/podsphere/podsphere/host/containerd"
	"github.com/podsphere/podsphere/internal/testenv"
)

// TestColdMigration: psc vm.migrate of a running standalone VM on a
// 2-host lab without heartbeat datastores stops its containers on h1
// before any starts on h2 (containerd's tasks on both hosts sampled
// throughout), shows both steps, returns once the VM runs on h2 as the
// same VM, and leaves nothing of it on h1.
func TestColdMigration(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping end-to-end test in -short mode")
	}
	start := time.Now()
	l := newLab(t, 2)
	for _, h := range l.hosts {
		l.startAgent(h)
	}
	for _, h := range l.hosts {
		l.waitHost(h, start)
	}
	l.importBusybox(t)
	l.psc("vm.create", "-host", "h1", "-m", "32", "db")
	o, _ := l.waitRunning("db")

	// Sample both hosts' containerd tasks of db until the migration is over.
	var mu sync.Mutex
	most, passes := 0, 0
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			default:
			}
			n := 0
			for _, h := range l.hosts {
				running := false
				cs, _ := l.ctr.ContainerService().List(h.ctx(), fmt.Sprintf("labels.%q==%q", ctrdriver.LabelVMID, o.UID))
				for _, c := range cs {
					if _, st := h.task(c.ID); st == containerd.Running || st == containerd.Paused || st == containerd.Pausing {
						running = true
					}
				}
				if running {
					n++
				}
			}
			mu.Lock()
			most, passes = max(most, n), passes+1
			mu.Unlock()
			time.Sleep(5 * time.Millisecond) // a sampling rate: the machine is shared
		}
	}()
	out, errOut, code := l.pscCode("vm.migrate", "-host", "h2", "db")
	// The sampler looks a few more times once psc says the VM runs on h2.
	mu.Lock()
	seen := passes
	mu.Unlock()
	testenv.WaitFor(t, "the task sampler to pass", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return passes >= seen+3
	})
	close(done)
	<-stopped
	if code != 0 {
		t.Fatalf("psc vm.migrate -host h2 db: exit %d\n%s\n%s", code, out, errOut)
	}
	if want := "Migrating /" + dc + "/vm/db... stopping on h1... starting on h2... OK (host h2)\n"; out != want {
		t.Errorf("psc vm.migrate said %q, want %q", out, want)
	}
	mu.Lock()
	t.Logf("%d samples of both hosts' tasks during the migration", passes)
	if most > 1 {
		t.Errorf("db's containers ran on %d hosts at once during its migration", most)
	}
	mu.Unlock()
	after, spec, st := l.vm("db")
	if after.UID != o.UID || api.Base(spec.Host) != "h2" || st.PowerState != api.PoweredOn || api.Base(st.Host) != "h2" {
		t.Errorf("db after vm.migrate: uid %s (was %s), host %s, %s on %s", after.UID, o.UID, spec.Host, st.PowerState, st.Host)
	}
	ev := l.event(t, "VmMigratedEvent", "/"+dc+"/vm/db")
	if ev == nil || !strings.Contains(ev.Message, "db migrated from h1 to h2 by") {
		t.Errorf("VmMigratedEvent: %+v", ev)
	}
	testenv.WaitFor(t, "no container of db left on h1", 30*time.Second, func() bool {
		return len(l.host("h1").containersOf(o.UID)) == 0
	})
	l.psc("vm.destroy", "db")
	testenv.WaitFor(t, "no container of db left on h2", 60*time.Second, func() bool {
		return len(l.host("h2").containersOf(o.UID)) == 0
	})
}
