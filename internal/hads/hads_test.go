package hads

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

func TestTakeRefusesAFreshForeignLockAndTakesALapsedOne(t *testing.T) {
	root := t.TempDir()
	if err := CheckRoot(root); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lapse := 3750 * time.Millisecond
	a, b := "/dc1/host/c1/esx-01", "/dc1/host/c1/esx-02"
	if err := Take(root, "u1", "/dc1/vm/web", a, t0, lapse, false); err != nil {
		t.Fatal(err)
	}
	err := Take(root, "u1", "/dc1/vm/web", b, t0.Add(time.Second), lapse, true)
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "locked by host esx-01") {
		t.Fatalf("fresh foreign lock: got %v, want a conflict naming esx-01", err)
	}
	if err := Take(root, "u1", "/dc1/vm/web", b, t0.Add(lapse), lapse, false); err != nil {
		t.Fatalf("lapsed lock: %v", err)
	}
	l, ok, err := ReadLock(root, "u1")
	if err != nil || !ok || l.Host != b || l.State != Held {
		t.Fatalf("after take: %+v %v %v", l, ok, err)
	}
	// esx-01 may not remove esx-02's lock; esx-02 may.
	if err := Remove(root, "u1", a); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ReadLock(root, "u1"); !ok {
		t.Fatal("esx-01 removed esx-02's lock")
	}
	if err := Remove(root, "u1", b); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ReadLock(root, "u1"); ok {
		t.Fatal("lock still there after its holder removed it")
	}
}

func TestAReleasedLockIsTakenOnlyWhenVcenterPlacedTheVM(t *testing.T) {
	root := t.TempDir()
	if err := CheckRoot(root); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a := "/dc1/host/c1/esx-01"
	if err := WriteLock(root, Lock{UID: "u2", VM: "/dc1/vm/db", Host: a, State: Released, Renewed: now, Reason: "isolation response powerOff"}); err != nil {
		t.Fatal(err)
	}
	if err := Take(root, "u2", "/dc1/vm/db", a, now, time.Second, false); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("restart on its own after its isolation response: got %v, want a conflict", err)
	}
	if err := Take(root, "u2", "/dc1/vm/db", "/dc1/host/c1/esx-03", now, time.Second, true); err != nil {
		t.Fatalf("placed by vcenter: %v", err)
	}
	hb := Heartbeat{Host: a, Address: "10.0.0.2", Time: now, Isolated: true}
	if err := WriteHeartbeat(root, hb); err != nil {
		t.Fatal(err)
	}
	got, err := ReadHeartbeats(root)
	if err != nil || !got[a].Isolated || got[a].Address != "10.0.0.2" {
		t.Fatalf("heartbeats: %+v %v", got, err)
	}
	if err := CheckRoot("relative/dir"); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("relative root: %v", err)
	}
}
