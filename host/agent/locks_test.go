package agent

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/host/halock"
	"github.com/podsphere/podsphere/host/sim"
	"github.com/podsphere/podsphere/internal/gossip"
	"github.com/podsphere/podsphere/internal/hads"
	"github.com/podsphere/podsphere/vcenter/membership"
)

func TestAgentHonoursHALocks(t *testing.T) {
	f, srv := newFakeVCenter(t)
	vc, err := membership.Start("vcenter", "127.0.0.1:0", token, fastTimings(), &hosts{alive: map[string]string{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	f.seed = vc.Addr()
	ds := t.TempDir()
	locks, err := halock.New(halock.Config{Host: me, Datastores: []string{ds}, Timings: ha.DefaultTimings()})
	if err != nil {
		t.Fatal(err)
	}
	web := f.put(vmObj("web", me, api.PoweredOn, 0))
	// esx-02 still holds web's lock: it may run there.
	if err := hads.WriteLock(ds, hads.Lock{UID: web.UID, VM: web.Path, Host: cluster + "/esx-02", State: hads.Held, Renewed: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	startAgentWith(t, srv.URL, sim.New(4000, 4096, "10.250.7"), token, func(c *Config) { c.Locks = locks })
	eventually(t, "web held back, saying who holds its lock", func() bool {
		s := status(f.obj(web.Path))
		return s.PowerState == api.PoweredOff && strings.Contains(s.Message, "locked by host esx-02")
	})
	// esx-02 lets go: a later pass starts web and this host holds the lock.
	if err := os.Remove(hads.LockFile(ds, web.UID)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web powered on once the lock is free", func() bool {
		return status(f.obj(web.Path)).PowerState == api.PoweredOn
	})
	if l, ok, _ := hads.ReadLock(ds, web.UID); !ok || l.Host != me || l.State != hads.Held {
		t.Fatalf("lock after power-on: %+v (exists %v), want held by %s", l, ok, me)
	}
	// A normal power-off removes the lock.
	f.put(vmObj("web", me, api.PoweredOff, 0))
	eventually(t, "lock removed after power-off", func() bool {
		_, ok, _ := hads.ReadLock(ds, web.UID)
		return !ok && status(f.obj(web.Path)).PowerState == api.PoweredOff
	})
	// Released by this host's isolation response: vcenter, asked, still
	// places it here powered on, so the agent takes it again.
	if err := hads.WriteLock(ds, hads.Lock{UID: web.UID, VM: web.Path, Host: me, State: hads.Released, Renewed: time.Now(), Reason: "isolation response powerOff"}); err != nil {
		t.Fatal(err)
	}
	f.put(vmObj("web", me, api.PoweredOn, 0))
	eventually(t, "released lock taken again once vcenter confirms the placement", func() bool {
		l, ok, _ := hads.ReadLock(ds, web.UID)
		return ok && l.State == hads.Held && l.Host == me && status(f.obj(web.Path)).PowerState == api.PoweredOn
	})
}

func TestNewRefusesAnotherHostsLocks(t *testing.T) {
	locks, err := halock.New(halock.Config{Host: cluster + "/esx-02", Datastores: []string{t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{Name: "esx-01", Cluster: cluster, VCenter: "http://127.0.0.1:1", JoinToken: "t",
		Runtime: sim.New(1, 1, "10.250.0"), Timings: gossip.DefaultTimings(), Locks: locks})
	if err == nil || !strings.Contains(err.Error(), "Locks") {
		t.Fatalf("New with esx-02's locks for esx-01: %v", err)
	}
}
