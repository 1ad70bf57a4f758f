package inventory

import (
	"fmt"
	"io"
	"log"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/admission"
	"github.com/podsphere/podsphere/vcenter/store"
)

// peersByScan is the per-owner, per-host count of powered-on VMs computed
// the slow way, from the owned lists and the VM entries.
func peersByScan(ix *index) map[string]map[string]int {
	out := map[string]map[string]int{}
	for owner, paths := range ix.owned {
		for _, p := range paths {
			if vm, ok := ix.vms[p]; ok && vm.on && vm.host != "" {
				if out[owner] == nil {
					out[owner] = map[string]int{}
				}
				out[owner][vm.host]++
			}
		}
	}
	return out
}

// hostsByScan is what admission sees of a cluster's hosts, built the slow
// way from every host entry.
func hostsByScan(ix *index, cluster string) map[string]admission.Host {
	out := map[string]admission.Host{}
	for p, h := range ix.hosts {
		if h.cluster == cluster {
			out[p] = admission.Host{Spec: h.spec, Status: h.status, Labels: h.labels,
				CPUReserved: h.cpuRes, MemReserved: h.memRes, Running: h.running}
		}
	}
	return out
}

// TestIndexPeers: the index's per-owner counts of powered-on VMs per host
// (admission's Peers) agree with a scan of every owned VM after each of a
// random run of creates, power changes, adoptions, releases, retirements,
// removals and host connection changes; so do the snapshot's hosts with a
// rebuild from every host entry, and Owned with a List filtered by owner.
func TestIndexPeers(t *testing.T) {
	inv, err := Open(t.TempDir(), Options{Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer inv.Close()
	for _, o := range []*api.Object{api.New(api.KindDatacenter, "/dc1", nil), api.New(api.KindCluster, "/dc1/host/c1", nil)} {
		if _, err := inv.Create("admin", o); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		if _, err := inv.Join(api.JoinRequest{Name: fmt.Sprintf("esx-%d", i), Cluster: "/dc1/host/c1", Address: "127.0.0.1:1",
			Runtime: "sim", CPUCapacity: 10000, MemCapacity: 10000}); err != nil {
			t.Fatal(err)
		}
	}
	owners := []string{"", "/dc1/replicaset/a", "/dc1/replicaset/b"}
	rng := rand.New(rand.NewPCG(1, 2))
	var vms []string
	check := func(step string) {
		t.Helper()
		for _, owner := range owners[1:] {
			q := store.Query{Kind: api.KindVirtualMachine}
			got := inv.Owned(owner, q)
			q.Filter = func(o *api.Object) bool { return o.Owner == owner }
			want := inv.List(q).Items
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("after %s: Owned(%s) has %d VMs, List with a filter %d", step, owner, len(got), len(want))
			}
		}
		inv.ix.mu.RLock()
		defer inv.ix.mu.RUnlock()
		if want := peersByScan(inv.ix); !maps.EqualFunc(inv.ix.peers, want, maps.Equal) {
			t.Fatalf("after %s: peers %v, by scan %v", step, inv.ix.peers, want)
		}
		want := hostsByScan(inv.ix, "/dc1/host/c1")
		for _, owner := range owners {
			v := inv.ix.cluster("/dc1/host/c1", &placing{vm: "/dc1/vm/probe", owner: owner})
			if len(v.Hosts) != len(want) {
				t.Fatalf("after %s: %d hosts in the snapshot, %d by scan", step, len(v.Hosts), len(want))
			}
			if order := slices.Sorted(maps.Keys(want)); !slices.Equal(v.HostOrder, order) {
				t.Fatalf("after %s: host order %v, want %v", step, v.HostOrder, order)
			}
			for h, host := range v.Hosts {
				if host.Peers != inv.ix.peers[owner][h] {
					t.Fatalf("after %s: %s has %d peers of %q in the snapshot, %d counted", step, h, host.Peers, owner, inv.ix.peers[owner][h])
				}
				host.Peers = 0
				if w := want[h]; !reflect.DeepEqual(host, w) {
					t.Fatalf("after %s: snapshot of %s is %+v, by scan %+v", step, h, host, w)
				}
			}
		}
	}
	for i := range 300 {
		var step string
		switch op := rng.IntN(7); {
		case op == 0 || len(vms) == 0:
			p := fmt.Sprintf("/dc1/vm/vm%d", i)
			o := api.New(api.KindVirtualMachine, p, api.VMSpec{Pool: "/dc1/host/c1/Resources", NumCPU: 1, MemoryMB: 64,
				PowerState: []string{api.PoweredOn, api.PoweredOff}[rng.IntN(2)]})
			o.Owner = owners[rng.IntN(len(owners))]
			if _, err := inv.Create("admin", o); err != nil {
				t.Fatal(err)
			}
			vms = append(vms, p)
			step = "create " + p
		default:
			p := vms[rng.IntN(len(vms))]
			switch op {
			case 1:
				_, err = inv.Power("admin", p, "on")
				step = "power on " + p
			case 2:
				_, err = inv.Power("admin", p, "off")
				step = "power off " + p
			case 3:
				_, err = inv.SetOwner("admin", p, owners[rng.IntN(len(owners))], 0)
				step = "set owner of " + p
			case 4:
				_, err = inv.Retire("admin", p, "test")
				step = "retire " + p
			case 6:
				h := fmt.Sprintf("/dc1/host/c1/esx-%d", rng.IntN(4))
				alive := rng.IntN(3) > 0
				inv.SetConnection(h, alive)
				step = fmt.Sprintf("host %s alive %v", h, alive)
			case 5:
				err = inv.Remove("admin", p, RemoveOptions{})
				for j, q := range vms {
					if q == p {
						vms = append(vms[:j], vms[j+1:]...)
						break
					}
				}
				step = "remove " + p
			}
			if err != nil && !isNotFound(err) {
				t.Fatalf("%s: %v", step, err)
			}
		}
		check(step)
	}
	// A host that joins and leaves again.
	if _, err := inv.Join(api.JoinRequest{Name: "esx-9", Cluster: "/dc1/host/c1", Address: "127.0.0.1:1",
		Runtime: "sim", CPUCapacity: 10000, MemCapacity: 10000}); err != nil {
		t.Fatal(err)
	}
	check("join esx-9")
	if err := inv.Remove("admin", "/dc1/host/c1/esx-9", RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	check("remove esx-9")
}
