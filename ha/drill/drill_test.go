package drill

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// crash scripts a crash of esx-02 running web (restarted on esx-03) and db
// (restarted on esx-01); extra lets a test add observations.
func crash() Input {
	in := Input{Name: "d1", Cluster: "/dc1/host/c1", Mode: api.DrillCrash, Hosts: []string{"esx-02"},
		Injected: t0, Healed: at(6000), Ended: at(6500), SampleInterval: 100 * time.Millisecond,
		DeclaredTypes: []string{"HostFailedEvent"},
		Protected: []Protected{{VM: "/dc1/vm/web", UID: "u-web", Priority: "medium", Host: "esx-02"},
			{VM: "/dc1/vm/db", UID: "u-db", Priority: "high", Host: "esx-02"}}}
	for ms := 0; ms <= 6000; ms += 100 {
		s := Sample{At: at(ms), Running: map[string][]string{}}
		if ms >= 3900 {
			s.Running["esx-01"] = []string{"u-db"}
		}
		if ms >= 4200 {
			s.Running["esx-03"] = []string{"u-web"}
		}
		in.Samples = append(in.Samples, s)
	}
	in.HostStates = []HostObs{{At: at(-100), Host: "esx-02", State: api.HostConnected}, {At: at(3100), Host: "esx-02", State: api.HostNotResponding}}
	in.Events = []Event{{At: at(3500), Type: "HostFailedEvent", Target: "/dc1/host/c1/esx-02", Message: "failed"}}
	in.VMs = []VMObs{
		{At: at(3600), VM: "/dc1/vm/db", Host: "esx-01", StatusHost: "esx-01", PowerState: api.PoweredOff},
		{At: at(3900), VM: "/dc1/vm/db", Host: "esx-01", StatusHost: "esx-01", PowerState: api.PoweredOn},
		{At: at(4000), VM: "/dc1/vm/db", Host: "esx-01", StatusHost: "esx-01", PowerState: api.PoweredOn, Ready: true},
		{At: at(4000), VM: "/dc1/vm/web", Host: "esx-03", StatusHost: "esx-03", PowerState: api.PoweredOff},
		{At: at(4200), VM: "/dc1/vm/web", Host: "esx-03", StatusHost: "esx-03", PowerState: api.PoweredOn, Ready: true},
	}
	return in
}

func TestACrashDrillReportsEachRestartAndTheRecoveryTime(t *testing.T) {
	r := Build(crash())
	if !r.Passed {
		t.Fatalf("drill failed: %v", r.Failures)
	}
	if r.Detected != at(3100) || r.Declared != at(3500) {
		t.Errorf("detected %v declared %v", r.Detected, r.Declared)
	}
	if r.RecoverySeconds != 4.2 {
		t.Errorf("recovery %.3fs, want 4.2s (web ready on esx-03)", r.RecoverySeconds)
	}
	got := map[string]api.HADrillVM{}
	for _, v := range r.VMs {
		got[v.VM] = v
	}
	if v := got["/dc1/vm/db"]; v.To != "esx-01" || v.Restarted != at(3600) || v.Running != at(3900) || v.Ready != at(4000) || v.Outcome != "restarted" || v.Stopped != t0 {
		t.Errorf("db: %+v", v)
	}
	if r.Samples != 61 || r.SampleIntervalMs != 100 {
		t.Errorf("samples %d every %d ms", r.Samples, r.SampleIntervalMs)
	}
}

func TestAVMSeenOnTwoHostsFailsTheDrill(t *testing.T) {
	in := crash()
	in.Samples[45].Running["esx-02"] = []string{"u-web"} // the crashed host still runs web at +4.5 s
	in.Samples[45].Running["esx-03"] = []string{"u-web"}
	r := Build(in)
	if r.Passed || len(r.Duplicates) != 1 || r.Duplicates[0].VM != "/dc1/vm/web" || r.Duplicates[0].At != at(4500) {
		t.Fatalf("passed=%v duplicates=%+v", r.Passed, r.Duplicates)
	}
	if !strings.Contains(strings.Join(r.Failures, "\n"), "/dc1/vm/web ran on esx-02 and esx-03 at once (+4.50s)") {
		t.Errorf("failures: %v", r.Failures)
	}
}

func TestAVMNotBackFailsTheDrillWithHAsReason(t *testing.T) {
	in := crash()
	in.VMs = in.VMs[:3] // web never re-registered
	in.VMs = append(in.VMs, VMObs{At: at(5000), VM: "/dc1/vm/web", Host: "esx-02", Message: "attempt 2 of 5: no host has 3000 MHz unreserved"})
	r := Build(in)
	if r.Passed || !r.Recovered.IsZero() {
		t.Fatalf("passed=%v recovered=%v", r.Passed, r.Recovered)
	}
	if !strings.Contains(strings.Join(r.Failures, "\n"), "/dc1/vm/web was not back before the drill ended: attempt 2 of 5") {
		t.Errorf("failures: %v", r.Failures)
	}
}

func TestIsolationWithResponseDisabledMustKeepVMsWhereTheyAre(t *testing.T) {
	in := Input{Name: "d2", Mode: api.DrillIsolate, Hosts: []string{"esx-02"}, KeepRunning: true,
		Injected: t0, Ended: at(8000), Healed: at(8000), SampleInterval: 100 * time.Millisecond,
		Protected: []Protected{{VM: "/dc1/vm/web", UID: "u-web", Priority: "medium", Host: "esx-02"}}}
	for ms := 0; ms <= 8000; ms += 100 {
		in.Samples = append(in.Samples, Sample{At: at(ms), Running: map[string][]string{"esx-02": {"u-web"}}})
	}
	r := Build(in)
	if !r.Passed || r.VMs[0].Outcome != "kept running" {
		t.Fatalf("kept running: passed=%v %+v %v", r.Passed, r.VMs, r.Failures)
	}
	// The same drill where vcenter restarted it anyway is a failure.
	in.VMs = []VMObs{{At: at(5000), VM: "/dc1/vm/web", Host: "esx-03", StatusHost: "esx-03", PowerState: api.PoweredOn, Ready: true}}
	r = Build(in)
	if r.Passed || !strings.Contains(strings.Join(r.Failures, "\n"), "restarted on esx-03 although its host kept it running") {
		t.Fatalf("restarted anyway: passed=%v %v", r.Passed, r.Failures)
	}
}

func TestNoSampleMeansDuplicatesWereNotRuledOut(t *testing.T) {
	in := crash()
	in.Samples = nil
	if r := Build(in); r.Passed {
		t.Fatal("a drill that never sampled the runtimes passed")
	}
}

func TestTheTimelineIsWellFormedSVGNamingEveryVM(t *testing.T) {
	in := crash()
	in.Samples[45].Running["esx-02"] = []string{"u-web"}
	svg := SVG(Build(in))
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := d.Token(); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
	}
	for _, want := range []string{"web (medium)", "db (high)", "duplicate: /dc1/vm/web", "ready on esx-01 +4.00s", "FAILED"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestACrashIsNotOverWhileTheVMsHaveNotMoved(t *testing.T) {
	in := crash()
	in.VMs, in.Samples = nil, []Sample{{At: at(0), Running: map[string][]string{"esx-02": {"u-web", "u-db"}}}}
	r := Build(in)
	if r.Passed || !r.Recovered.IsZero() {
		t.Fatalf("a crash whose VMs never moved: passed=%v recovered=%v", r.Passed, r.Recovered)
	}
	if !strings.Contains(strings.Join(r.Failures, "\n"), "/dc1/vm/web still ran on esx-02, where the failure should have stopped it") {
		t.Errorf("failures: %v", r.Failures)
	}
}

// Requests lost while the host is down are the drill's figure, not a
// failure of HA's: the report carries them and the timeline draws them.
func TestRequestsLostDuringTheFailoverAreReportedNotFailed(t *testing.T) {
	in := crash()
	in.Requests = &api.DrillRequests{Service: "/dc1/service/web", Target: "http://10.99.0.240:80/", Sent: 130, Failed: 84,
		LongestGapMs: 4250, GapFrom: at(-20), GapTo: at(4230),
		Outages: []api.DrillOutage{{From: at(0), To: at(4200), Failed: 84}}}
	r := Build(in)
	if !r.Passed || r.Requests == nil || r.Requests.Failed != 84 {
		t.Fatalf("passed=%v failures=%v requests=%+v", r.Passed, r.Failures, r.Requests)
	}
	svg := SVG(r)
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Fatalf("not well-formed XML: %v", err)
	}
	for _, want := range []string{"requests via web", "84 failed +0.00s to +4.20s", "longest gap 4.25 s", "130 sent to http://10.99.0.240:80/"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}
