package controllers

import (
	"fmt"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

// The evacuation step of a replica set, pass by pass, as the set's members
// change: a ready member on a host entering maintenance retires only once
// a replacement elsewhere is ready, one replacement at a time, and the
// set's ready members never fall below its replicas.
func TestEvacuationSurgesByOne(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	mk := func(name, host string, ready bool) member {
		m := member{obj: &api.Object{Meta: api.Meta{Path: "/dc1/vm/" + name, Created: now}}, host: api.HostConnected}
		m.spec = api.VMSpec{Host: "/dc1/host/c1/" + host, PowerState: api.PoweredOn}
		m.status = api.VMStatus{PowerState: api.PoweredOn, Host: m.spec.Host, Ready: ready, ReadySince: now.Add(-time.Minute)}
		if host == "esx-01" {
			m.host = api.HostMaintenance
		}
		return m
	}
	spec := api.ReplicaSetSpec{Replicas: 3}
	// All three on esx-01, entering maintenance.
	members := []member{mk("a", "esx-01", true), mk("b", "esx-01", true), mk("c", "esx-01", true)}
	made := 0
	for pass := 0; pass < 20; pass++ {
		stay, leaving := splitLeaving(members)
		if len(leaving) == 0 {
			break
		}
		ready := 0
		for _, m := range members {
			if m.available(now, 0) {
				ready++
			}
		}
		retire, create := evacuation("/dc1/replicaset/web", spec, stay, leaving, now)
		if create > 1 {
			t.Fatalf("pass %d: %d replacements at once, want at most 1 (surge by one)", pass, create)
		}
		gone := map[string]bool{}
		for _, r := range retire {
			if r.m.host != api.HostMaintenance {
				t.Errorf("pass %d: retired %s, which is not on the host entering maintenance", pass, r.m.obj.Path)
			}
			if r.m.available(now, 0) {
				ready--
			}
			gone[r.m.obj.Path] = true
		}
		if ready < 3 {
			t.Fatalf("pass %d: retiring %d would leave %d ready, want >= 3", pass, len(retire), ready)
		}
		var next []member
		for _, m := range members {
			if !gone[m.obj.Path] {
				// A replacement made last pass is ready by now.
				m.status.Ready = true
				next = append(next, m)
			}
		}
		for range create {
			made++
			next = append(next, mk(fmt.Sprintf("r%d", made), "esx-02", false))
		}
		if len(next) > 4 {
			t.Fatalf("pass %d: %d members, want at most replicas + 1", pass, len(next))
		}
		members = next
	}
	if _, leaving := splitLeaving(members); len(leaving) != 0 || len(members) != 3 || made != 3 {
		t.Errorf("after the evacuation: %d members, %d still leaving, %d replacements made; want 3, 0, 3", len(members), len(leaving), made)
	}
}

// A leaving member that is not ready retires at once (waiting for its
// replacement would keep nothing serving), and its replacement is made in
// the same pass.
func TestEvacuationRetiresUnreadyAtOnce(t *testing.T) {
	now := time.Now()
	m := member{obj: &api.Object{Meta: api.Meta{Path: "/dc1/vm/a"}}, host: api.HostMaintenance,
		spec: api.VMSpec{Host: "/dc1/host/c1/esx-01", PowerState: api.PoweredOn}}
	retire, create := evacuation("/dc1/replicaset/web", api.ReplicaSetSpec{Replicas: 1}, nil, []member{m}, now)
	if len(retire) != 1 || create != 1 {
		t.Errorf("retire %d, create %d; want 1 and 1", len(retire), create)
	}
}
