package server

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/runtime"
)

// refuseOn makes the sim hosts hosts fail creating VM name, as a host
// whose content library lacks its image; only refuses, when set, says
// whether a host refuses (the first to try, say).
func (l *haLab) refuseOn(name string, refuses func(host string) bool, hosts ...string) {
	for _, h := range hosts {
		l.rts[h].SetCreateError(func(spec runtime.VMSpec) error {
			if api.Base(spec.Path) != name || (refuses != nil && !refuses(h)) {
				return nil
			}
			return fmt.Errorf("image registry.local/%s:2 not found in the content library: %w", name, api.ErrNotFound)
		})
	}
}

// TestHARetriesARestartItsHostCannotStart: the host HA restarts a failed
// host's VM on cannot start it (its image is missing there): the host
// says so in the VM's status, HA counts the attempt with a warning event
// and, after the backoff delay, restarts the VM on another host, where
// it runs; its record is cleared once it does.
func TestHARetriesARestartItsHostCannotStart(t *testing.T) {
	l := startHALab(t, Config{}, haCluster(), 8000, "esx-01", "esx-02", "esx-03")
	l.createOn(t, "esx-02", vm("db", rootRP, 1000, api.PoweredOn))
	l.running(t, "db", 30*time.Second)
	// Whichever host DRS picks first cannot start db; the other can.
	var mu sync.Mutex
	bad := ""
	l.refuseOn("db", func(host string) bool {
		mu.Lock()
		defer mu.Unlock()
		if bad == "" {
			bad = host
		}
		return host == bad
	}, "esx-01", "esx-03")

	l.agents["esx-02"].stop(t)
	eventually(t, "db refused by the first host HA picked", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return bad != ""
	})
	mu.Lock()
	first := bad
	mu.Unlock()
	good := map[string]string{"esx-01": "esx-03", "esx-03": "esx-01"}[first]
	if got := l.runningOff(t, "db", "esx-02", 20*time.Second); got != good {
		t.Fatalf("db runs on %s, want %s (%s could not start it)", got, good, first)
	}
	evs := l.eventsFor(t, dc+"/vm/db")
	if !hasEvent(evs, "VmRestartedOnAlternateHostEvent", fmt.Sprintf("vSphere HA restarted db on %s (host esx-02 failed", first)) {
		t.Errorf("no first restart on %s: %q", first, eventTypes(evs))
	}
	if !hasEvent(evs, "VmFailoverFailed", fmt.Sprintf("vSphere HA could not start db on %s (attempt 1 of 5): create: image registry.local/db:2 not found in the content library", first)) ||
		!hasEvent(evs, "VmFailoverFailed", "; trying another host") {
		t.Errorf("no warning that %s could not start db: %q", first, eventTypes(evs))
	}
	if !hasEvent(evs, "VmRestartedOnAlternateHostEvent", fmt.Sprintf("vSphere HA restarted db on %s (host %s could not start it: create: image", good, first)) {
		t.Errorf("no retry on %s: %q", good, eventTypes(evs))
	}
	for _, ev := range evs {
		if ev.Type == "VmFailoverFailed" && ev.User != "vSphere HA" {
			t.Errorf("%s event by %q, want vSphere HA", ev.Type, ev.User)
		}
	}
	eventually(t, "db's HA record cleared once it runs", 10*time.Second, func() bool {
		_, st := l.vmStatus(t, "db")
		return st.HA != nil && st.HA.Attempts == 0 && st.HA.LastError == "" && st.PowerOnFailed == "" &&
			st.HA.RestartedFrom == cluster+"/"+first
	})
}

// TestHAGivesUpWhenNoHostCanStartIt: when every surviving host fails to
// start the VM, HA goes back and forth between them, then gives up after
// the last attempt with an error event; vm's status keeps the host's
// error (powerOnFailed) and its HA record why HA gave up.
func TestHAGivesUpWhenNoHostCanStartIt(t *testing.T) {
	l := startHALab(t, Config{}, haCluster(), 8000, "esx-01", "esx-02", "esx-03")
	l.createOn(t, "esx-02", vm("app", rootRP, 1000, api.PoweredOn))
	l.running(t, "app", 30*time.Second)
	l.refuseOn("app", nil, "esx-01", "esx-03")
	l.agents["esx-02"].stop(t)
	eventually(t, "HA gives up on app", 30*time.Second, func() bool {
		_, st := l.vmStatus(t, "app")
		return st.HA != nil && st.HA.GaveUp
	})
	spec, st := l.vmStatus(t, "app")
	if st.HA.Attempts != 5 || !strings.Contains(st.HA.LastError, "could not start it: create: image registry.local/app:2 not found") {
		t.Errorf("app's HA record after giving up: %+v", *st.HA)
	}
	if h := api.Base(spec.Host); h != "esx-01" && h != "esx-03" || st.PowerState == api.PoweredOn ||
		!strings.Contains(st.PowerOnFailed, "create: image registry.local/app:2 not found") {
		t.Errorf("app after giving up: on %s, %s, powerOnFailed %q", spec.Host, st.PowerState, st.PowerOnFailed)
	}
	evs := l.eventsFor(t, dc+"/vm/app")
	for i := 1; i < 5; i++ {
		if !hasEvent(evs, "VmFailoverFailed", fmt.Sprintf("(attempt %d of 5): create: image", i)) {
			t.Errorf("no warning for attempt %d: %q", i, eventTypes(evs))
		}
	}
	if !hasEvent(evs, "VmFailoverFailed", "vSphere HA gave up restarting app after 5 attempts: host esx-0") {
		t.Errorf("no give-up event: %q", eventTypes(evs))
	}
	n := 0
	for _, ev := range evs {
		if ev.Type == "VmRestartedOnAlternateHostEvent" {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d restarts, want 5 (one per attempt): %q", n, eventTypes(evs))
	}
}
