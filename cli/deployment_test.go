package cli

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

// newWorkloadFake is the fake vcenter at the renderers' clock (testTime).
func newWorkloadFake() *memAPI {
	m := newMemAPI()
	m.now = func() time.Time { return testTime }
	return m
}

// fakeVM stores a VM as a workload's controller makes it: owned by owner,
// powered on on esx-01, ready or not.
func (m *memAPI) fakeVM(p, owner string, ready bool) {
	vm := api.New(api.KindVirtualMachine, p, api.VMSpec{Pool: labRoot, NumCPU: 1, MemoryMB: 1024, CPU: vmAllocation(), Mem: vmAllocation(),
		PowerState: api.PoweredOn, Containers: []api.Container{{Name: "main", Image: "busybox"}}})
	vm.Owner, vm.Created = owner, testTime
	st := api.VMStatus{PowerState: api.PoweredOn, Host: labCluster + "/esx-01", Ready: ready, IP: "10.244.0.9"}
	if ready {
		st.ReadySince = testTime
	}
	vm.SetStatus(st)
	m.put(vm)
}

// fakeRevision plays the Deployment controller: the replica set of
// revision rev holds the Deployment's current template (with its hash
// label) and replicas ready VMs.
func (m *memAPI) fakeRevision(t *testing.T, d, hash string, rev int64, replicas int) string {
	t.Helper()
	dep, err := m.Get(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	s := specOf[api.DeploymentSpec](dep)
	tmpl := s.Template
	tmpl.Labels = maps.Clone(tmpl.Labels)
	tmpl.Labels[templateHashLabel] = hash
	sel := api.LabelSelector{MatchLabels: maps.Clone(s.Selector.MatchLabels)}
	sel.MatchLabels[templateHashLabel] = hash
	ref, _ := api.ParsePath(d)
	p := api.NamespacedPath(api.KindReplicaSet, ref.Datacenter, ref.Namespace, ref.Name+"-"+hash)
	rs := api.New(api.KindReplicaSet, p, api.ReplicaSetSpec{Pool: s.Pool, Replicas: replicas, Selector: sel, Template: tmpl, Revision: rev})
	rs.Owner, rs.Labels, rs.Created, rs.Generation = d, tmpl.Labels, testTime, 1
	rs.SetStatus(api.ReplicaSetStatus{ObservedGeneration: 1, Replicas: replicas, Running: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas})
	m.put(rs)
	for i := range replicas {
		m.fakeVM(api.NamespacedPath(api.KindVirtualMachine, ref.Datacenter, ref.Namespace, fmt.Sprintf("%s-%s-%d", ref.Name, hash, i)), p, true)
	}
	return p
}

// deploymentStatus is a status of the Deployment controller; progress is
// the Progressing condition's reason.
func deploymentStatus(gen, rev int64, replicas, updated, ready, available int, progress, msg string) api.DeploymentStatus {
	progStatus := "True"
	if progress == reasonDeadlineExceeded {
		progStatus = "False"
	}
	avail := api.Condition{Type: "Available", Status: "True", Reason: "MinimumReplicasAvailable", Message: "the deployment has its minimum availability"}
	return api.DeploymentStatus{ObservedGeneration: gen, Revision: rev, Replicas: replicas, UpdatedReplicas: updated,
		ReadyReplicas: ready, AvailableReplicas: available, UnavailableReplicas: max(0, 3-available),
		Conditions: []api.Condition{avail, {Type: condProgressing, Status: progStatus, Reason: progress, Message: msg}}}
}

func (m *memAPI) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := m.psc(t, "", args...)
	if code != 0 {
		t.Fatalf("psc %q: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// TestDeploymentVerbs creates, rolls, pauses, rolls back, scales and
// destroys a Deployment against the fake vcenter, playing its controller.
func TestDeploymentVerbs(t *testing.T) {
	t.Parallel()
	m := newWorkloadFake()
	const d = "/dc1/deployment/web"
	out := m.ok(t, "deployment.create", "-replicas", "3", "-image", "nginx:1.27", "-cmd", "", "-port", "80", "-cpu.reservation", "200", "web")
	if want := "Created Deployment " + d + " in pool " + labRoot + " (3 replicas)\n"; out != want {
		t.Errorf("deployment.create = %q, want %q", out, want)
	}
	obj := m.objs[d]
	s := specOf[api.DeploymentSpec](obj)
	c := s.Template.Spec.Containers[0]
	if s.Replicas != 3 || s.Pool != labRoot || s.Strategy.Type != api.RollingUpdate || s.Strategy.MaxSurge != nil ||
		s.RevisionHistoryLimit != 10 || s.ProgressDeadlineSeconds != 600 || s.Selector.MatchLabels["app"] != "web" ||
		s.Template.Labels["app"] != "web" || obj.Labels["app"] != "web" || c.Image != "nginx:1.27" || c.Command != nil ||
		c.Ports[0].ContainerPort != 80 || s.Template.Spec.CPU.Reservation != 200 || s.Template.Spec.RestartPolicy != "Always" ||
		s.Template.Spec.PowerState != "" {
		t.Errorf("spec = %+v", s)
	}

	status := func() string { return m.ok(t, "deployment.rollout.status", "web") }
	if got, want := status(), "Waiting for the Deployment controller to see the change of "+d+" (generation 1, observed 0)\n"; got != want {
		t.Errorf("rollout.status before the controller = %q, want %q", got, want)
	}
	rev1 := m.fakeRevision(t, d, "7c5d9", 1, 3)
	m.setStatus(d, deploymentStatus(1, 1, 3, 3, 3, 3, "NewReplicaSetAvailable", "revision 1 is rolled out: 3 of 3 available"))
	if got, want := status(), "Rollout of "+d+" complete: revision 1, 3 of 3 updated, 3 ready, 3 available\n"; got != want {
		t.Errorf("rollout.status = %q, want %q", got, want)
	}

	// A new image: generation 2, rolling out.
	out = m.ok(t, "deployment.set.image", "web", "main=nginx:1.28")
	if want := "Set image of " + d + ": main=nginx:1.28 (rolling out; psc deployment.rollout.status -w deployment/web follows it)\n"; out != want {
		t.Errorf("set.image = %q, want %q", out, want)
	}
	if s := specOf[api.DeploymentSpec](m.objs[d]); s.Template.Spec.Containers[0].Image != "nginx:1.28" || m.objs[d].Generation != 2 {
		t.Errorf("after set.image: generation %d, %+v", m.objs[d].Generation, s.Template.Spec.Containers)
	}
	if out := m.ok(t, "deployment.set.image", "web", "*=nginx:1.28"); out != "Deployment "+d+" already runs those images\n" {
		t.Errorf("set.image of the same image = %q", out)
	}
	if got, want := status(), "Waiting for the Deployment controller to see the change of "+d+" (generation 2, observed 1)\n"; got != want {
		t.Errorf("rollout.status = %q, want %q", got, want)
	}
	m.fakeRevision(t, d, "59f8b", 2, 1)
	m.setStatus(d, deploymentStatus(2, 2, 4, 1, 4, 4, "ReplicaSetUpdated", "revision 2 is rolling out"))
	if got, want := status(), "Waiting for rollout of "+d+" (revision 2): 1 of 3 updated, 4 ready, 4 available\n"; got != want {
		t.Errorf("rollout.status = %q, want %q", got, want)
	}

	m.now = func() time.Time { return testTime.Add(5*time.Minute + 3*time.Second) }
	golden(t, "deployment-ls", m.ok(t, "deployment.ls"))
	golden(t, "deployment-info", m.ok(t, "deployment.info", "web"))
	golden(t, "rollout-history", m.ok(t, "deployment.rollout.history", "web"))
	var hist []revisionInfo
	mustJSON(t, []byte(m.ok(t, "deployment.rollout.history", "-json", "web")), &hist)
	if len(hist) != 2 || hist[0].Revision != 1 || hist[0].ReplicaSet != rev1 || hist[1].Images[0] != "nginx:1.28" {
		t.Errorf("rollout.history -json = %+v", hist)
	}

	// The Deployment controller finds the rollout stuck: exit 1, saying why.
	m.setStatus(d, deploymentStatus(2, 2, 4, 1, 3, 3, reasonDeadlineExceeded, "revision 2 made no progress for 600s"))
	out, errOut, code := m.psc(t, "", "deployment.rollout.status", "web")
	if want := "psc: Rollout of " + d + " is stuck: 1 of 3 updated, 3 ready, 3 available (revision 2 made no progress for 600s)\n"; code != 1 || out != "" || errOut != want {
		t.Errorf("rollout.status of a stuck rollout: exit %d, %q, %q; want 1 and %q", code, out, errOut, want)
	}
	var st rolloutState
	out, _, code = m.psc(t, "", "deployment.rollout.status", "-json", "web")
	mustJSON(t, []byte(out), &st)
	if code != 1 || !st.Stuck || st.Complete || st.Updated != 1 || st.Desired != 3 || st.Revision != 2 {
		t.Errorf("rollout.status -json: exit %d, %+v", code, st)
	}

	// Paused: the rollout says so; a paused deployment is not rolled back.
	if out := m.ok(t, "deployment.rollout.pause", "web"); out != "Paused rollout of "+d+"\n" {
		t.Errorf("rollout.pause = %q", out)
	}
	if out := m.ok(t, "deployment.rollout.pause", "web"); out != "Rollout of "+d+" is already paused\n" {
		t.Errorf("rollout.pause again = %q", out)
	}
	if !specOf[api.DeploymentSpec](m.objs[d]).Paused {
		t.Error("spec.paused is not set")
	}
	m.setStatus(d, deploymentStatus(3, 2, 4, 1, 4, 4, "DeploymentPaused", "the rollout is paused"))
	if got, want := status(), "Rollout of "+d+" is paused: 1 of 3 updated, 4 ready, 4 available (psc deployment.rollout.resume deployment/web continues it)\n"; got != want {
		t.Errorf("rollout.status paused = %q, want %q", got, want)
	}
	if _, errOut, code := m.psc(t, "", "deployment.rollout.undo", "web"); code != api.ExitConflict || !strings.Contains(errOut, "resume it first") {
		t.Errorf("undo of a paused deployment: exit %d, %q", code, errOut)
	}
	if out := m.ok(t, "deployment.rollout.resume", "web"); out != "Resumed rollout of "+d+"\n" {
		t.Errorf("rollout.resume = %q", out)
	}
	if out := m.ok(t, "deployment.rollout.resume", "web"); out != "Rollout of "+d+" is already running (not paused)\n" {
		t.Errorf("rollout.resume again = %q", out)
	}

	// Back to revision 1: its template, without the controller's hash label.
	gen := m.objs[d].Generation
	if out := m.ok(t, "deployment.rollout.undo", "web"); out != "Rolled back "+d+" to revision 1\n" {
		t.Errorf("rollout.undo = %q", out)
	}
	s = specOf[api.DeploymentSpec](m.objs[d])
	if s.Template.Spec.Containers[0].Image != "nginx:1.27" || len(s.Template.Labels) != 1 || s.Template.Labels["app"] != "web" ||
		m.objs[d].Generation != gen+1 || s.Replicas != 3 || s.Paused {
		t.Errorf("after undo: generation %d, spec %+v", m.objs[d].Generation, s)
	}
	if out := m.ok(t, "deployment.rollout.undo", "-to-revision", "1", "web"); out != "Deployment "+d+" already runs the template of revision 1: nothing to roll back\n" {
		t.Errorf("undo to the current template = %q", out)
	}
	if out := m.ok(t, "deployment.rollout.undo", "-to-revision", "2", "web"); out != "Rolled back "+d+" to revision 2\n" ||
		specOf[api.DeploymentSpec](m.objs[d]).Template.Spec.Containers[0].Image != "nginx:1.28" {
		t.Errorf("undo -to-revision 2 = %q", out)
	}

	if out := m.ok(t, "deployment.scale", "-replicas", "5", "web"); out != "Scaled Deployment "+d+" from 3 to 5 replicas\n" {
		t.Errorf("deployment.scale = %q", out)
	}
	if s := specOf[api.DeploymentSpec](m.objs[d]); s.Replicas != 5 || s.Template.Spec.Containers[0].Image != "nginx:1.28" {
		t.Errorf("after scale: %+v", s)
	}

	// The sets are the Deployment's: rs.scale and rs.destroy refuse them.
	for _, args := range [][]string{{"rs.scale", "-replicas", "9", "web-7c5d9"}, {"rs.destroy", "web-7c5d9"}} {
		_, errOut, code := m.psc(t, "", args...)
		if code != api.ExitConflict || !strings.Contains(errOut, "is kept by Deployment "+d) || !strings.Contains(errOut, "deployment/web") {
			t.Errorf("psc %q: exit %d, %q", args, code, errOut)
		}
	}

	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"deployment.rollout.undo", "-to-revision", "9", "web"}, exitNotFound, "revision 9 of " + d + " not found"},
		{[]string{"deployment.rollout.undo", "-to-revision", "-1", "web"}, api.ExitUsage, "-to-revision -1 is negative"},
		{[]string{"deployment.set.image", "web", "side=x"}, api.ExitUsage, `has no container "side" (its containers: main)`},
		{[]string{"deployment.set.image", "web", "nginx"}, api.ExitUsage, `"nginx": want CONTAINER=IMAGE`},
		{[]string{"deployment.scale", "-replicas", "-3", "web"}, api.ExitUsage, "-replicas -3 is negative"},
		{[]string{"deployment.rollout.status", "-timeout", "1m", "web"}, api.ExitUsage, "-timeout applies to -w"},
		{[]string{"deployment.create", "-strategy", "BlueGreen", "x"}, api.ExitUsage, `-strategy "BlueGreen": want RollingUpdate or Recreate`},
		{[]string{"deployment.create", "-strategy", "Recreate", "-max-surge", "1", "x"}, api.ExitUsage, "apply to -strategy RollingUpdate"},
		{[]string{"deployment.create", "-max-surge", "0", "-max-unavailable", "0%", "x"}, api.ExitUsage, "cannot both be 0"},
		{[]string{"deployment.create", "-max-surge", "lots", "x"}, api.ExitUsage, `-max-surge "lots": want a count (1) or a percentage (25%)`},
		{[]string{"deployment.create", "-max-unavailable", "150%", "x"}, api.ExitUsage, "-max-unavailable 150% is above 100%"},
		{[]string{"deployment.create", "-replicas", "-1", "x"}, api.ExitUsage, "-replicas -1 is negative"},
		{[]string{"deployment.info", "nope"}, exitNotFound, "/dc1/deployment/nope"},
	} {
		_, errOut, code := m.psc(t, "", c.args...)
		if code != c.code || !strings.Contains(errOut, c.msg) {
			t.Errorf("psc %q: exit %d, %q; want %d and %q", c.args, code, errOut, c.code, c.msg)
		}
	}

	out = m.ok(t, "deployment.create", "-strategy", "recreate", "-namespace", "team", "db")
	if s := specOf[api.DeploymentSpec](m.objs["/dc1/deployment/team/db"]); s.Strategy.Type != api.Recreate || s.Pool != labRoot+"/team" || s.Replicas != 1 {
		t.Errorf("deployment.create -strategy recreate -namespace team: %q, %+v", out, s)
	}
	m.ok(t, "deployment.create", "-max-surge", "1", "-max-unavailable", "0", "-namespace", "team", "api")
	if st := specOf[api.DeploymentSpec](m.objs["/dc1/deployment/team/api"]).Strategy; st.MaxSurge.String() != "1" || st.MaxUnavailable.String() != "0" {
		t.Errorf("strategy %+v", st)
	}

	out = m.ok(t, "deployment.destroy", "web")
	if want := "Destroyed Deployment " + d + " with its 2 ReplicaSet(s) and their 4 VM(s)\n"; out != want {
		t.Errorf("deployment.destroy = %q, want %q", out, want)
	}
	for p := range m.objs {
		if !strings.Contains(p, "/team/") {
			t.Errorf("%s is left after deployment.destroy", p)
		}
	}
}

// TestRolloutStatusWatch follows a rollout with -w: one line per change
// until it completes; a stuck rollout ends it with exit 1.
func TestRolloutStatusWatch(t *testing.T) {
	t.Parallel()
	for _, stuck := range []bool{false, true} {
		m := newWorkloadFake()
		const d = "/dc1/deployment/web"
		m.ok(t, "deployment.create", "-replicas", "3", "web")
		m.fakeRevision(t, d, "7c5d9", 1, 3)
		m.setStatus(d, deploymentStatus(1, 1, 4, 1, 3, 3, "ReplicaSetUpdated", ""))

		var out, errb syncBuffer
		e := &Env{In: strings.NewReader(""), Out: &out, Err: &errb, Now: m.now, Location: time.UTC,
			NewAPI: func(string, string) (API, error) { return m, nil }}
		vars := map[string]string{"PSC_TOKEN": "t", "PSC_DATACENTER": "dc1", "PSC_CLUSTER": "c1"}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		done := make(chan int, 1)
		go func() {
			done <- Run(ctx, e, func(k string) string { return vars[k] }, []string{"deployment.rollout.status", "-w", "web"})
		}()
		wait := func(s string) {
			t.Helper()
			for !strings.Contains(out.String(), s) {
				if ctx.Err() != nil {
					t.Fatalf("no %q in:\n%s", s, out.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		wait("1 of 3 updated")
		m.setStatus(d, deploymentStatus(1, 1, 4, 1, 3, 3, "ReplicaSetUpdated", "")) // no change: no line
		m.setStatus(d, deploymentStatus(1, 1, 4, 3, 3, 3, "ReplicaSetUpdated", ""))
		wait("pending removal")
		want := "Waiting for rollout of " + d + " (revision 1): 1 of 3 updated, 3 ready, 3 available\n" +
			"Waiting for rollout of " + d + " (revision 1): 3 of 3 updated, 3 ready, 3 available, 1 old VM(s) pending removal\n"
		wantCode, wantErr := 0, ""
		if stuck {
			m.setStatus(d, deploymentStatus(1, 1, 4, 3, 3, 3, reasonDeadlineExceeded, "no progress for 600s"))
			wantCode, wantErr = 1, "psc: Rollout of "+d+" is stuck: 3 of 3 updated, 3 ready, 3 available (no progress for 600s)\n"
		} else {
			m.setStatus(d, deploymentStatus(1, 1, 3, 3, 3, 2, "ReplicaSetUpdated", ""))
			wait("2 available")
			m.setStatus(d, deploymentStatus(1, 1, 3, 3, 3, 3, "NewReplicaSetAvailable", ""))
			want += "Waiting for rollout of " + d + " (revision 1): 3 of 3 updated, 3 ready, 2 available\n" +
				"Rollout of " + d + " complete: revision 1, 3 of 3 updated, 3 ready, 3 available\n"
		}
		select {
		case code := <-done:
			if code != wantCode || out.String() != want || errb.String() != wantErr {
				t.Errorf("stuck=%t: exit %d\n%s%s\nwant exit %d\n%s%s", stuck, code, out.String(), errb.String(), wantCode, want, wantErr)
			}
		case <-ctx.Done():
			t.Fatalf("rollout.status -w did not end:\n%s", out.String())
		}
		cancel()
	}
}

// TestDeploymentAgainstVcenter rolls a Deployment out, to a new image and
// back, through psc against a real vcenter and its Deployment controller.
func TestDeploymentAgainstVcenter(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01", "esx-02")
	const d = "/dc1/deployment/web"
	l.ok("deployment.create", "-replicas", "3", "-m", "256", "-max-surge", "1", "-max-unavailable", "0", "web")
	out := l.ok("deployment.rollout.status", "-w", "-timeout", "20s", "web")
	if !strings.HasSuffix(out, "Rollout of "+d+" complete: revision 1, 3 of 3 updated, 3 ready, 3 available\n") {
		t.Fatalf("rollout.status -w:\n%s", out)
	}
	out = l.ok("deployment.set.image", "web", "main=busybox:2")
	if !strings.HasPrefix(out, "Set image of "+d+": main=busybox:2") {
		t.Errorf("set.image = %q", out)
	}
	out = l.ok("deployment.rollout.status", "-w", "-timeout", "20s", "web")
	if !strings.HasSuffix(out, "Rollout of "+d+" complete: revision 2, 3 of 3 updated, 3 ready, 3 available\n") {
		t.Fatalf("rollout.status -w after set.image:\n%s", out)
	}
	hist := l.ok("deployment.rollout.history", "web")
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "1 ") || !strings.HasSuffix(lines[1], " 0          busybox") ||
		!strings.HasPrefix(lines[2], "2 ") || !strings.HasSuffix(lines[2], " 3          busybox:2") {
		t.Errorf("rollout.history:\n%s", hist)
	}
	if out := l.ok("deployment.rollout.undo", "web"); out != "Rolled back "+d+" to revision 1\n" {
		t.Errorf("rollout.undo = %q", out)
	}
	out = l.ok("deployment.rollout.status", "-w", "-timeout", "20s", "web")
	if !strings.HasSuffix(out, "Rollout of "+d+" complete: revision 3, 3 of 3 updated, 3 ready, 3 available\n") {
		t.Fatalf("rollout.status -w after undo:\n%s", out)
	}
	// The old set is current again, as revision 3; its VMs run the first image.
	sets := l.ok("deployment.info", "web")
	if !strings.Contains(sets, "  Image:              busybox\n") || !strings.Contains(sets, " (revision 3, 3 desired, 3 current, 3 ready)\n") {
		t.Errorf("deployment.info after undo:\n%s", sets)
	}
	if got := l.ok("deployment.ls"); !strings.Contains(got, "\nweb    3         3         3       3            3           ") {
		t.Errorf("deployment.ls:\n%s", got)
	}
	if out := l.ok("deployment.scale", "-replicas", "1", "web"); out != "Scaled Deployment "+d+" from 3 to 1 replicas\n" {
		t.Errorf("deployment.scale = %q", out)
	}
	l.eventually("one VM left", func() bool {
		st := statusOf[api.DeploymentStatus](l.get(d))
		return st.Replicas == 1 && st.AvailableReplicas == 1
	})
	out = l.ok("deployment.destroy", "web")
	if !strings.HasPrefix(out, "Destroyed Deployment "+d+" with its 2 ReplicaSet(s) and their ") {
		t.Errorf("deployment.destroy = %q", out)
	}
	if l.exists(d) || strings.Contains(l.ok("ls", "-l", "/dc1/vm"), "VirtualMachine") {
		t.Error("the deployment or its VMs are still there")
	}
}
