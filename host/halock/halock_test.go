package halock

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/internal/hads"
)

const (
	esx1 = "/dc1/host/c1/esx-01"
	esx2 = "/dc1/host/c1/esx-02"
	uid  = "u1"
	vm   = "/dc1/vm/web"
)

func TestAcquire(t *testing.T) {
	ds := t.TempDir()
	l, err := New(Config{Host: esx1, Datastores: []string{ds}, Timings: ha.DefaultTimings()})
	if err != nil {
		t.Fatal(err)
	}
	if l.SelfFencing() || l.Lease() != 3*time.Second || l.Root() != ds {
		t.Fatalf("datastore locks: %+v", l)
	}
	t0 := time.Now()
	write := func(lk hads.Lock) {
		lk.UID, lk.VM = uid, vm
		if err := hads.WriteLock(ds, lk); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name      string
		lock      *hads.Lock
		confirmed bool
		want      string // "" = taken
	}{
		{"no lock", nil, false, ""},
		{"own live lock renewed alone", &hads.Lock{Host: esx1, State: hads.Held, Renewed: t0.Add(-time.Second)}, false, ""},
		{"own lapsed lock alone", &hads.Lock{Host: esx1, State: hads.Held, Renewed: t0.Add(-4 * time.Second)}, false, "lapsed"},
		{"own lapsed lock, vcenter placed it here", &hads.Lock{Host: esx1, State: hads.Held, Renewed: t0.Add(-4 * time.Second)}, true, ""},
		{"released alone", &hads.Lock{Host: esx1, State: hads.Released, Renewed: t0, Reason: "isolation response powerOff"}, false, "stopped by esx-01 (isolation response powerOff)"},
		{"released, vcenter placed it here", &hads.Lock{Host: esx2, State: hads.Released, Renewed: t0}, true, ""},
		{"other host live", &hads.Lock{Host: esx2, State: hads.Held, Renewed: t0.Add(-time.Second)}, true, "locked by host esx-02"},
		{"other host lapsed alone", &hads.Lock{Host: esx2, State: hads.Held, Renewed: t0.Add(-time.Minute)}, false, "last held by host esx-02"},
		{"other host lapsed, vcenter placed it here", &hads.Lock{Host: esx2, State: hads.Held, Renewed: t0.Add(-time.Minute)}, true, ""},
	} {
		_ = hads.Remove(ds, uid, esx1)
		_ = hads.Remove(ds, uid, esx2)
		if tc.lock != nil {
			write(*tc.lock)
		}
		err := l.Acquire(uid, vm, t0, tc.confirmed)
		if tc.want == "" {
			got, ok, _ := hads.ReadLock(ds, uid)
			if err != nil || !ok || got.Host != esx1 || got.State != hads.Held || !got.Renewed.Equal(t0) {
				t.Errorf("%s: err %v, lock %+v: want held by esx-01 renewed now", tc.name, err, got)
			}
			continue
		}
		if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want conflict mentioning %q", tc.name, err, tc.want)
		}
		if got, _, _ := hads.ReadLock(ds, uid); tc.lock != nil && got.Host != tc.lock.Host {
			t.Errorf("%s: a refused acquire changed the lock to %+v", tc.name, got)
		}
	}
	// Release leaves another host's lock alone.
	write(hads.Lock{Host: esx2, State: hads.Held, Renewed: t0})
	if err := l.Release(uid); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := hads.ReadLock(ds, uid); !ok {
		t.Fatal("released esx-02's lock")
	}
}

func TestSelfFencingWithoutDatastores(t *testing.T) {
	state := t.TempDir()
	l, err := New(Config{Host: esx1, StateDir: state, Timings: ha.DefaultTimings()})
	if err != nil {
		t.Fatal(err)
	}
	if !l.SelfFencing() || l.Lease() != 6*time.Second || l.Root() != state {
		t.Fatalf("self-fencing locks: root %s lease %s", l.Root(), l.Lease())
	}
	if err := l.Acquire(uid, vm, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(uid); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := hads.ReadLock(state, uid); ok {
		t.Fatal("lock still there after Release")
	}
	if _, err := New(Config{Host: esx1, Datastores: []string{"relative/dir"}}); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("relative datastore: %v", err)
	}
}
