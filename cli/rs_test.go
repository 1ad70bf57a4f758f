package cli

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// members lists the VMs that the workload at owner owns in the lab, by path.
func (l *testLab) members(owner string) []*api.Object {
	l.t.Helper()
	list, err := l.api.List(l.ctx(), client.ListOptions{Kind: api.KindVirtualMachine})
	if err != nil {
		l.t.Fatal(err)
	}
	var out []*api.Object
	for _, o := range list.Items {
		if o.Owner == owner {
			out = append(out, o)
		}
	}
	return out
}

func (l *testLab) rsStatus(p string) api.ReplicaSetStatus {
	l.t.Helper()
	return statusOf[api.ReplicaSetStatus](l.get(p))
}

// TestRSVerbs drives a replica set through psc against a real vcenter,
// whose replica-set controller makes the VMs on sim hosts.
func TestRSVerbs(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01", "esx-02")
	const rs = "/dc1/replicaset/web"
	out := l.ok("rs.create", "-replicas", "3", "-m", "512", "-cpu.reservation", "100", "web")
	if want := "Created ReplicaSet " + rs + " in pool " + labRoot + " (3 replicas)\n"; out != want {
		t.Errorf("rs.create = %q, want %q", out, want)
	}
	s := specOf[api.ReplicaSetSpec](l.get(rs))
	if s.Replicas != 3 || s.Pool != labRoot || s.Selector.MatchLabels["app"] != "web" || s.Template.Labels["app"] != "web" ||
		s.Template.Spec.MemoryMB != 512 || s.Template.Spec.CPU.Reservation != 100 || s.Template.Spec.RestartPolicy != "Always" ||
		!slices.Equal(s.Template.Spec.Containers[0].Command, []string{"httpd", "-f", "-p", "80"}) {
		t.Errorf("spec = %+v", s)
	}
	if lb := l.get(rs).Labels; lb["app"] != "web" {
		t.Errorf("labels of the set = %v", lb)
	}
	l.eventually("3 members running and ready", func() bool {
		st := l.rsStatus(rs)
		return st.Replicas == 3 && st.Running == 3 && st.ReadyReplicas == 3 && st.AvailableReplicas == 3
	})
	members := l.members(rs)
	if len(members) != 3 {
		t.Fatalf("%d members", len(members))
	}
	member := members[0]
	if !regexp.MustCompile(`^/dc1/vm/web-[a-z0-9]{5}$`).MatchString(member.Path) {
		t.Errorf("member path %s", member.Path)
	}

	if got := l.ok("rs.ls"); !regexp.MustCompile(`^Name   Desired   Current   Ready   Available   Age\nweb    3         3         3       3           \d+s\n$`).MatchString(got) {
		t.Errorf("rs.ls:\n%s", got)
	}
	info := l.ok("rs.info", "web")
	for _, want := range []string{
		"Name:               web\n  Path:             /dc1/replicaset/web\n  Namespace:        default\n",
		"  Pool:             /dc1/host/c1/Resources\n  Selector:         app=web\n  Template labels:  app=web\n  Image:            busybox\n  CPU:              1 vCPU(s)\n  Memory:           512MB\n",
		"  Replicas:         3 desired, 3 current, 3 running, 3 ready, 3 available\n",
		"  VMs:              " + member.Name() + " (poweredOn on esx-0",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("rs.info lacks %q:\n%s", want, info)
		}
	}
	if n := strings.Count(info, "ready)"); n != 3 || strings.Count(info, " (poweredOn on esx-0") != 3 {
		t.Errorf("rs.info lists %d running VMs:\n%s", n, info)
	}
	vmInfo := l.ok("vm.info", member.Name())
	if !strings.Contains(vmInfo, "  Owner:            ReplicaSet "+rs+"\n") || !strings.Contains(vmInfo, "  Ready:            yes, since ") {
		t.Errorf("vm.info of a member:\n%s", vmInfo)
	}
	var objs []api.Object
	mustJSON(t, []byte(l.ok("rs.ls", "-json")), &objs)
	if len(objs) != 1 || objs[0].Path != rs || objs[0].Kind != api.KindReplicaSet {
		t.Errorf("rs.ls -json = %+v", objs)
	}
	mustJSON(t, []byte(l.ok("rs.info", "-json", "web")), &objs)
	if len(objs) != 1 || statusOf[api.ReplicaSetStatus](&objs[0]).Running != 3 {
		t.Errorf("rs.info -json = %+v", objs)
	}

	// The inventory verbs show the set: in its folder, in its pool with its VMs.
	if got := l.ok("ls", "/dc1/replicaset"); got != rs+"\n" {
		t.Errorf("ls /dc1/replicaset = %q", got)
	}
	if got := l.ok("ls", "-l", "replicaset"); !regexp.MustCompile(`^Path\s+Type\s+Summary\n/dc1/replicaset/web\s+ReplicaSet\s+3 desired, 3 current, 3 ready, 3 available\n$`).MatchString(got) {
		t.Errorf("ls -l replicaset:\n%s", got)
	}
	if got := l.ok("find", "-type", "rs"); got != rs+"\n" {
		t.Errorf("find -type rs = %q", got)
	}
	tree := l.ok("tree")
	if !regexp.MustCompile(`(?m)^    └── Resources \[pool\]\n        └── web \[replicaset 3/3 ready\]\n            ├── web-\w{5} \[vm poweredOn on esx-0[12]\]\n`).MatchString(tree) {
		t.Errorf("tree:\n%s", tree)
	}

	// Scaling: down to 1, the extra VMs go.
	if out := l.ok("rs.scale", "-replicas", "1", "web"); out != "Scaled ReplicaSet "+rs+" from 3 to 1 replicas\n" {
		t.Errorf("rs.scale = %q", out)
	}
	if out := l.ok("rs.scale", "-replicas", "1", "web"); out != "ReplicaSet "+rs+" already has 1 replicas\n" {
		t.Errorf("rs.scale again = %q", out)
	}
	l.eventually("one member left", func() bool { return len(l.members(rs)) == 1 })

	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"rs.scale", "-replicas", "-1", "web"}, "-replicas -1 is negative"},
		{[]string{"rs.scale", "web"}, "-replicas N is required"},
		{[]string{"rs.create", "-replicas", "-2", "x"}, "-replicas -2 is negative"},
		{[]string{"rs.create", "-l", "app", "x"}, `-l "app": want KEY=VAL`},
		{[]string{"rs.create", "-l", "app=a/b", "x"}, `-l "app=a/b": label "app"="a/b"`},
		{[]string{"rs.create", "-m", "0", "x"}, "-m 0"},
		{[]string{"rs.create", "a/b/c"}, "give NAME, NAMESPACE/NAME or an absolute path"},
		{[]string{"rs.ls", "-all-namespaces", "web"}, "not both"},
	} {
		_, errOut, code := l.psc("", nil, c.args...)
		if code != api.ExitUsage || !strings.Contains(errOut, c.msg) {
			t.Errorf("psc %q: exit %d, %q; want %d and %q", c.args, code, errOut, api.ExitUsage, c.msg)
		}
	}
	if _, errOut, code := l.psc("", nil, "rs.info", "nope"); code != api.ExitNotFound {
		t.Errorf("rs.info nope: exit %d, %q", code, errOut)
	}
	if _, errOut, code := l.psc("", nil, "rs.create", "web"); code != api.ExitConflict {
		t.Errorf("rs.create of an existing set: exit %d, %q", code, errOut)
	}

	// A namespace: its sets and VMs have folders of their own, its pool is the default.
	l.ok("pool.create", "team")
	out = l.ok("rs.create", "-namespace", "team", "-replicas", "1", "-m", "256", "api")
	if want := "Created ReplicaSet /dc1/replicaset/team/api in pool " + labRoot + "/team (1 replicas)\n"; out != want {
		t.Errorf("rs.create -namespace team = %q, want %q", out, want)
	}
	_, errOut, code := l.psc("", nil, "rs.create", "-namespace", "team", "-pool", "Resources", "api2")
	if code != api.ExitUsage || !strings.Contains(errOut, "-pool "+labRoot+" is not in namespace team") {
		t.Errorf("rs.create in team with the root pool: exit %d, %q", code, errOut)
	}
	// Reported by its host too: ls -l below shows its readiness, which only
	// the host's report carries.
	l.eventually("api's member running", func() bool {
		m := l.members("/dc1/replicaset/team/api")
		return len(m) == 1 && vmStatus(m[0]).PowerState == api.PoweredOn
	})
	apiVM := l.members("/dc1/replicaset/team/api")[0]
	// ls -l says ready or not ready once its host reported it: wait for that.
	l.eventually("api's member reported by its host", func() bool {
		ms := l.members("/dc1/replicaset/team/api")
		var st api.VMStatus
		return len(ms) == 1 && ms[0].DecodeStatus(&st) == nil && st.PowerState == api.PoweredOn
	})
	if !strings.HasPrefix(apiVM.Path, "/dc1/vm/team/api-") {
		t.Errorf("member of team/api at %s", apiVM.Path)
	}
	team := map[string]string{"PSC_NAMESPACE": "team"}
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"rs.ls"}, "(?s)^Name .*\nweb  [^\n]*\n$"},
		{team, []string{"rs.ls"}, "(?s)^Name .*\napi  [^\n]*\n$"},
		{nil, []string{"rs.ls", "-namespace", "team"}, "(?s)^Name .*\napi  [^\n]*\n$"},
		{nil, []string{"rs.ls", "-all-namespaces"}, "(?s)^Namespace   Name   Desired .*\ndefault     web    1 .*\nteam        api    1 .*\n$"},
		{nil, []string{"rs.ls", "team/*", "web"}, "(?s)^Namespace   Name .*\ndefault     web .*\nteam        api .*\n$"},
		{nil, []string{"rs.info", "team/api"}, "Path:             /dc1/replicaset/team/api\n  Namespace:        team\n"},
		{team, []string{"vm.info", apiVM.Name()}, "Owner:            ReplicaSet /dc1/replicaset/team/api\n"},
		{nil, []string{"vm.info", "team/" + apiVM.Name()}, "Path:             " + apiVM.Path + "\n"},
		{nil, []string{"ls", "/dc1/vm"}, "^/dc1/vm/team\n/dc1/vm/web-\\w{5}\n$"},
		{nil, []string{"ls", "-l", "/dc1/vm/team"}, apiVM.Path + " +VirtualMachine +poweredOn(, (not )?ready)?, 1 vCPU, 256MB on esx-0"},
		{nil, []string{"ls", "-l", "replicaset"}, "/dc1/replicaset/team +Folder +namespace team\n"},
		{nil, []string{"ls", "-t", "f", "/dc1/replicaset"}, "^/dc1/replicaset/team\n$"},
	} {
		got, errOut, code := l.psc("", c.env, c.args...)
		if code != 0 || !regexp.MustCompile(c.want).MatchString(got) {
			t.Errorf("psc %q (env %v): exit %d %s\n%s\nwant /%s/", c.args, c.env, code, errOut, got, c.want)
		}
	}
	var infos []api.Object
	mustJSON(t, []byte(l.ok("rs.ls", "-json", "-all-namespaces", "-selector", "app=api")), &infos)
	if len(infos) != 1 || infos[0].Path != "/dc1/replicaset/team/api" {
		t.Errorf("rs.ls -json -all-namespaces -selector app=api = %+v", infos)
	}

	// Destroying the sets takes their VMs with them.
	out = l.ok("rs.destroy", "web", "team/api")
	if want := "Destroyed ReplicaSet " + rs + " with its 1 VM(s)\nDestroyed ReplicaSet /dc1/replicaset/team/api with its 1 VM(s)\n"; out != want {
		t.Errorf("rs.destroy = %q, want %q", out, want)
	}
	if l.exists(rs) || len(l.members(rs)) != 0 || l.exists(apiVM.Path) {
		t.Error("a set or its VMs still exist")
	}
	if out := l.ok("rs.ls", "-json"); out != "[]\n" {
		t.Errorf("rs.ls -json with no sets = %q", out)
	}
	if out := l.ok("rs.ls"); out != "Name   Desired   Current   Ready   Available   Age\n" {
		t.Errorf("rs.ls with no sets = %q", out)
	}
}
