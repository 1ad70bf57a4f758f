package containerd

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	psdns "github.com/podsphere/podsphere/host/dns"
	"github.com/podsphere/podsphere/internal/testenv"
	"github.com/podsphere/podsphere/lb"
)

// TestVMResolvesServices runs the host's resolver on the bridge's gateway
// in a test host's netns, as the agent does, and a VM of namespace
// datagrand that looks Services up by their short, namespaced and full
// names through the resolv.conf and search path it was given.
func TestVMResolvesServices(t *testing.T) {
	testenv.RequireContainers(t)
	sock := testenv.StartContainerd(t)
	name := fmt.Sprintf("psd%04x", rand.IntN(0xffff))
	h := newTestHost(t, sock, name, "10.244.7.0/24", busyboxLibrary(t))
	d := h.drv
	ctx := context.Background()

	// Started before any VM: the gateway address does not exist yet.
	res, err := psdns.New(psdns.Config{Listen: net.JoinHostPort(d.Nameserver(), "53"), NetNS: h.netns, Upstreams: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = res.Close() })
	st := &lb.State{Services: map[string]lb.Service{
		"/dc1/service/datagrand/my-nginx": {Path: "/dc1/service/datagrand/my-nginx", Namespace: "datagrand", Name: "my-nginx",
			Spec: api.ServiceSpec{Type: api.ServiceClusterIP, ClusterIP: "10.96.0.10"}},
		"/dc1/service/db": {Path: "/dc1/service/db", Name: "db", Spec: api.ServiceSpec{ClusterIP: api.ClusterIPNone},
			Status: api.ServiceStatus{Subsets: []api.EndpointSubset{{Addresses: []api.EndpointAddress{{IP: "10.244.9.5", VM: "/dc1/vm/db-0"}}}}}},
	}}
	_ = res.ApplyLB(ctx, st)

	spec := vmSpec("dnsclient", "sleep", "3600")
	spec.Path = "/dc1/vm/datagrand/client"
	if err := d.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	vm, err := d.Status(ctx, spec.ID)
	if err != nil || vm.IP == "" {
		t.Fatalf("VM status %+v, %v", vm, err)
	}

	resolv, _, _ := exec1(t, d, spec.ID, "", "cat", "/etc/resolv.conf")
	if !strings.Contains(resolv, "nameserver 10.244.7.1\n") ||
		!strings.Contains(resolv, "search datagrand.svc.cluster.local svc.cluster.local cluster.local\n") ||
		!strings.Contains(resolv, "options ndots:5\n") {
		t.Fatalf("resolv.conf:\n%s", resolv)
	}
	hosts, _, _ := exec1(t, d, spec.ID, "", "cat", "/etc/hosts")
	if !strings.Contains(hosts, "127.0.0.1\tlocalhost\n") || !strings.Contains(hosts, vm.IP+"\tclient\n") {
		t.Fatalf("/etc/hosts:\n%s", hosts)
	}

	lookup := func(name string) (string, int) {
		// Bounded by timeout: nslookup's own retries are not what is tested.
		out, errs, code := exec1(t, d, spec.ID, "", "timeout", "5", "nslookup", name)
		return out + errs, code
	}
	// busybox nslookup asks every search domain of a short name at once
	// and exits 1 when any of them is NXDOMAIN, even though one answered:
	// the address in its output is what counts.
	for _, n := range []string{"my-nginx", "my-nginx.datagrand", "my-nginx.datagrand.svc.cluster.local"} {
		if out, code := lookup(n); !strings.Contains(out, "Address: 10.96.0.10") {
			t.Errorf("nslookup %s: exit %d\n%s", n, code, out)
		}
	}
	if out, code := lookup("db.default"); !strings.Contains(out, "Address: 10.244.9.5") {
		t.Errorf("nslookup db.default (headless): exit %d\n%s", code, out)
	}
	// Programs resolve through the C library, which applies ndots:5 and
	// the search path itself (ping prints the address it resolved).
	for _, n := range []string{"my-nginx", "my-nginx.datagrand"} {
		out, _, _ := exec1(t, d, spec.ID, "", "timeout", "5", "ping", "-c", "1", "-W", "1", n)
		if !strings.Contains(out, "(10.96.0.10)") {
			t.Errorf("ping %s resolved no cluster IP:\n%s", n, out)
		}
	}
	if out, code := lookup("nope.datagrand.svc.cluster.local"); code == 0 || !strings.Contains(out, "NXDOMAIN") {
		t.Errorf("nslookup of a missing Service: exit %d\n%s", code, out)
	}

	// A change is seen by the VM's next lookup.
	svc := st.Services["/dc1/service/datagrand/my-nginx"]
	svc.Spec.ClusterIP = "10.96.0.77"
	st.Services[svc.Path] = svc
	_ = res.ApplyLB(ctx, st)
	if out, code := lookup("my-nginx"); !strings.Contains(out, "Address: 10.96.0.77") {
		t.Errorf("after the change: exit %d\n%s", code, out)
	}

	// No upstream here: an outside name fails at once, not after the
	// VM's resolver times out.
	start := time.Now()
	if out, code := lookup("example.com"); code == 0 {
		t.Errorf("example.com resolved without an upstream:\n%s", out)
	}
	t.Logf("outside name failed after %v", time.Since(start))

	if err := d.Delete(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.dnsDir(spec.ID)); !os.IsNotExist(err) {
		t.Errorf("the VM's DNS files outlive it: %v", err)
	}
}
