package server

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

func rsSpec(pool string, replicas int, labels map[string]string) api.ReplicaSetSpec {
	return api.ReplicaSetSpec{Pool: pool, Replicas: replicas, Selector: api.LabelSelector{MatchLabels: labels},
		Template: api.VMTemplate{Labels: labels, Spec: api.VMSpec{NumCPU: 1, MemoryMB: 64,
			Containers: []api.Container{{Name: "main", Image: "busybox"}}}}}
}

// members lists the VMs a workload owns.
func (e *env) members(t *testing.T, owner string) []*api.Object {
	t.Helper()
	l, err := e.admin.List(ctxT(t), client.ListOptions{Kind: api.KindVirtualMachine})
	if err != nil {
		t.Fatal(err)
	}
	var out []*api.Object
	for _, o := range l.Items {
		if o.Owner == owner {
			out = append(out, o)
		}
	}
	return out
}

func TestReplicaSetThroughTheAPI(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	for _, h := range []string{"esx-01", "esx-02", "esx-03"} {
		e.joinHost(t, h, 20000, 65536)
	}
	const path = dc + "/replicaset/web"
	e.mustCreate(t, api.New(api.KindReplicaSet, path, rsSpec(rootRP, 3, map[string]string{"app": "web"})))
	hosts := map[string]bool{}
	eventually(t, "3 members placed", 10*time.Second, func() bool {
		ms := e.members(t, path)
		hosts = map[string]bool{}
		for _, m := range ms {
			var s api.VMSpec
			_ = m.DecodeSpec(&s)
			hosts[s.Host] = true
		}
		return len(ms) == 3 && len(hosts) == 3
	})
	if !hasEvent(e.eventsFor(t, path), "ReplicaSetCreatedEvent", "") {
		t.Errorf("no ReplicaSetCreatedEvent for %s", path)
	}
	// Members are the set's: vm.info-style reads show the owner, and the
	// controller's events name it.
	m := e.members(t, path)[0]
	if evs := e.eventsFor(t, m.Path); len(evs) == 0 || evs[0].User != "controller:replicaset" {
		t.Errorf("events of member %s: %+v, want the first by controller:replicaset", m.Path, evs)
	}

	// Deleting the set deletes its members.
	if err := e.admin.Delete(ctxT(t), path, client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if ms := e.members(t, path); len(ms) != 0 {
		t.Errorf("after delete, %d members left", len(ms))
	}
}

func TestWorkloadBadInput(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	web := map[string]string{"app": "web"}
	neg := rsSpec(rootRP, -1, web)
	mismatch := rsSpec(rootRP, 2, web)
	mismatch.Template.Labels = map[string]string{"app": "api"}
	empty := rsSpec(rootRP, 2, web)
	empty.Selector = api.LabelSelector{}
	badOp := rsSpec(rootRP, 2, web)
	badOp.Selector.MatchExpressions = []api.LabelSelectorRequirement{{Key: "tier", Operator: "Near"}}
	noContainers := rsSpec(rootRP, 1, web)
	noContainers.Template.Spec.Containers = nil
	otherNS := rsSpec(rootRP, 1, web)
	tests := []struct {
		name string
		obj  *api.Object
		want string
	}{
		{"negative replicas", api.New(api.KindReplicaSet, dc+"/replicaset/a", neg), "spec.replicas -1 is negative"},
		{"selector does not match template", api.New(api.KindReplicaSet, dc+"/replicaset/b", mismatch), "spec.selector app=web does not select the template's labels app=api"},
		{"empty selector", api.New(api.KindReplicaSet, dc+"/replicaset/c", empty), "spec.selector is empty"},
		{"bad operator", api.New(api.KindReplicaSet, dc+"/replicaset/d", badOp), `spec.selector.matchExpressions[0].operator: "Near": want In, NotIn, Exists or DoesNotExist`},
		{"no containers", api.New(api.KindReplicaSet, dc+"/replicaset/e", noContainers), "spec.template.spec.containers: a member needs at least one container"},
		{"pool outside the namespace", api.New(api.KindReplicaSet, dc+"/replicaset/team-a/f", otherNS), "is not in namespace team-a"},
		{"autoscaler target missing", api.New(api.KindAutoscaler, dc+"/hpa/g", api.AutoscalerSpec{Target: dc + "/deployment/ghost", MinReplicas: 1, MaxReplicas: 3, TargetCPUUtilization: 50}),
			"spec.target /dc1/deployment/ghost does not exist"},
		{"job restartPolicy Always", api.New(api.KindJob, dc+"/job/h", api.JobSpec{Pool: rootRP, Completions: 1, Parallelism: 1,
			Selector: api.LabelSelector{MatchLabels: web}, Template: api.VMTemplate{Labels: web, Spec: api.VMSpec{RestartPolicy: "Always", NumCPU: 1, MemoryMB: 64,
				Containers: []api.Container{{Name: "main", Image: "busybox"}}}}}), "a Job's VMs run to completion: want Never or OnFailure"},
		{"deployment both zero", api.New(api.KindDeployment, dc+"/deployment/i", func() api.DeploymentSpec {
			z := api.Int(0)
			return api.DeploymentSpec{Pool: rootRP, Replicas: 2, Selector: api.LabelSelector{MatchLabels: web}, Strategy: api.Strategy{MaxSurge: &z, MaxUnavailable: &z},
				Template: api.VMTemplate{Labels: web, Spec: api.VMSpec{NumCPU: 1, MemoryMB: 64, Containers: []api.Container{{Name: "main", Image: "busybox"}}}}}
		}()), "maxSurge and maxUnavailable cannot both be 0"},
	}
	before := e.revision(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.admin.Create(ctxT(t), tt.obj)
			if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("create: %v, want invalid containing %q", err, tt.want)
			}
		})
	}
	if after := e.revision(t); after != before {
		t.Errorf("refused creates wrote %d changes", after-before)
	}
}

func TestNamespaceDeleteTakesItsContents(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	e.joinHost(t, "esx-01", 20000, 65536)
	nsPool := rootRP + "/team-a"
	e.mustCreate(t, pool(nsPool, alloc(0, -1, true), nil))
	web := map[string]string{"app": "web"}
	e.mustCreate(t, api.New(api.KindReplicaSet, dc+"/replicaset/team-a/web", rsSpec(nsPool, 2, web)))
	e.mustCreate(t, api.New(api.KindVirtualMachine, dc+"/vm/team-a/tools", api.VMSpec{Pool: nsPool, NumCPU: 1, MemoryMB: 64,
		Containers: []api.Container{{Name: "main", Image: "busybox"}}}))
	eventually(t, "2 members", 10*time.Second, func() bool { return len(e.members(t, dc+"/replicaset/team-a/web")) == 2 })

	// A VM of the namespace's folder must use the namespace's pool.
	_, err := e.admin.Create(ctxT(t), api.New(api.KindVirtualMachine, dc+"/vm/team-a/stray", api.VMSpec{Pool: rootRP, NumCPU: 1, MemoryMB: 64}))
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "is not in namespace team-a") {
		t.Errorf("VM of team-a in the root pool: %v", err)
	}
	// pool.destroy of the namespace's pool is refused while it holds workloads.
	err = e.admin.Delete(ctxT(t), nsPool, client.DeleteOptions{})
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "is namespace team-a's pool") || !strings.Contains(err.Error(), "delete the Namespace instead") {
		t.Fatalf("pool.destroy of a namespace's pool: %v", err)
	}
	// Deleting the namespace deletes the set, its members, the VM and the pool.
	if err := e.admin.Delete(ctxT(t), nsPool, client.DeleteOptions{Namespace: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{nsPool, dc + "/replicaset/team-a/web", dc + "/vm/team-a/tools"} {
		if _, err := e.admin.Get(ctxT(t), p); !errors.Is(err, api.ErrNotFound) {
			t.Errorf("%s after the namespace was deleted: %v", p, err)
		}
	}
	l, _ := e.admin.List(ctxT(t), client.ListOptions{Kind: api.KindVirtualMachine})
	if len(l.Items) != 0 {
		t.Errorf("%d VMs left after the namespace was deleted", len(l.Items))
	}
	if !hasEvent(e.eventsFor(t, dc+"/vm/team-a/tools"), "VmRemovedEvent", "removed with its namespace team-a") {
		t.Errorf("no event says the VM went with its namespace")
	}
}
