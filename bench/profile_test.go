package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/network"
)

// loadavg is /proc/loadavg's first three fields: other work on the machine
// during a run shows here.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// profileSteps times, in isolation, the steps podsphere does on a power-on
// that the floor does not (or does more cheaply), so the gap between the
// two columns can be attributed. It runs after the measured loop, with the
// driver host holding all its VMs.
func profileSteps(b *testing.B, l *benchLab, dh *driverHost, vmsPerLabHost int) string {
	b.Helper()
	ctx := context.Background()
	const reps = 20
	var ph phases
	for i := range reps {
		name := fmt.Sprintf("%s-p%02d", l.prefix, i)
		t0 := time.Now()
		if _, err := network.CreateNamedNetNS(name); err != nil { // unshare + bind mount + lo up, as ip netns add does
			b.Fatal(err)
		}
		ph.add("netns: create + lo up", time.Since(t0))
		if err := network.DeleteNamedNetNS(name); err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		p, err := newNetNS(name)
		if err != nil {
			b.Fatal(err)
		}
		ph.add("netns: unshare + bind mount", time.Since(t0))
		if err := deleteNetNS(p); err != nil {
			b.Fatal(err)
		}
	}
	vms, err := dh.drv.List(ctx)
	if err != nil || len(vms) == 0 {
		b.Fatalf("driver list: %d VMs, %v", len(vms), err)
	}
	for i := range reps {
		id := vms[i%len(vms)].ID
		t0 := time.Now()
		if err := dh.net.Check(ctx, id, dh.net.NetNSPath(id)); err != nil { // what Start's Setup does for an attached VM
			b.Fatal(err)
		}
		ph.add("CNI CHECK (bridge, loopback)", time.Since(t0))
	}
	for range reps {
		t0 := time.Now()
		if _, err := dh.drv.List(ctx); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		ph.add(fmt.Sprintf("Driver.List, %d VMs", len(vms)), d)
		ph.add(fmt.Sprintf("  scaled to %d VMs (a lab host)", vmsPerLabHost), d*time.Duration(vmsPerLabHost)/time.Duration(len(vms)))
	}
	p, err := l.createVM(ctx, "probe", "")
	if err != nil {
		b.Fatal(err)
	}
	o, err := l.api.Get(ctx, p)
	if err != nil {
		b.Fatal(err)
	}
	for i := range reps {
		o.SetStatus(api.VMStatus{PowerState: api.PoweredOff, Message: fmt.Sprintf("probe %d", i)})
		t0 := time.Now()
		if o, err = l.api.UpdateStatus(ctx, o); err != nil {
			b.Fatal(err)
		}
		ph.add("vcenter UpdateStatus round trip", time.Since(t0))
		t0 = time.Now()
		if _, err := l.api.Get(ctx, p); err != nil {
			b.Fatal(err)
		}
		ph.add("vcenter Get round trip", time.Since(t0))
	}
	return ph.String()
}
