package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

// workloadInventory is the fake vcenter holding an inventory with one of
// each workload kind, as their controllers would have made and reported
// them, at testTime.
func workloadInventory(t *testing.T) *memAPI {
	t.Helper()
	m := newWorkloadFake()
	put := func(kind, p string, spec, status any, owner string, lbls map[string]string) {
		o := api.New(kind, p, spec)
		if status != nil {
			o.SetStatus(status)
		}
		o.Owner, o.Labels, o.Created, o.Generation = owner, lbls, testTime.Add(-90*time.Minute), 1
		m.put(o)
	}
	def := defaultPoolAlloc()
	put(api.KindDatacenter, "/dc1", api.DatacenterSpec{}, nil, "", nil)
	put(api.KindCluster, labCluster, newClusterSpec(), nil, "", nil)
	put(api.KindHost, labCluster+"/esx-01", api.HostSpec{}, api.HostStatus{State: api.HostConnected, CPUCapacity: 20000, MemCapacity: 65536}, "", nil)
	for _, p := range []string{labRoot, labRoot + "/monitoring", labRoot + "/team"} {
		put(api.KindResourcePool, p, api.PoolSpec{CPU: def, Mem: def}, nil, "", nil)
	}
	tmpl := func(app, image string) api.VMTemplate {
		return api.VMTemplate{Labels: map[string]string{"app": app},
			Spec: api.VMSpec{NumCPU: 1, MemoryMB: 256, CPU: vmAllocation(), Mem: vmAllocation(), Containers: []api.Container{{Name: "main", Image: image}}}}
	}
	sel := func(app string) api.LabelSelector {
		return api.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}

	ds := tmpl("node-exporter", "prom/node-exporter")
	ds.Spec.HostSelector = map[string]string{"role": "worker"}
	put(api.KindDaemonSet, "/dc1/daemonset/monitoring/node-exporter", api.DaemonSetSpec{Pool: labRoot + "/monitoring", Selector: sel("node-exporter"), Template: ds},
		api.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 2, CurrentNumberScheduled: 2, NumberReady: 1,
			Conditions: []api.Condition{{Type: "HostsScheduled", Status: "True"}}}, "", map[string]string{"app": "node-exporter"})
	m.fakeVM("/dc1/vm/monitoring/node-exporter-a1b2c", "/dc1/daemonset/monitoring/node-exporter", true)
	m.fakeVM("/dc1/vm/monitoring/node-exporter-d3e4f", "/dc1/daemonset/monitoring/node-exporter", false)

	job := tmpl("pi", "perl:5.34")
	job.Spec.RestartPolicy = "Never"
	put(api.KindJob, "/dc1/job/pi", api.JobSpec{Pool: labRoot, Completions: 1, Parallelism: 1, BackoffLimit: 4, Selector: sel("pi"), Template: job},
		api.JobStatus{Succeeded: 1, StartTime: testTime.Add(-80 * time.Minute), CompletionTime: testTime.Add(-79*time.Minute - 12*time.Second),
			Conditions: []api.Condition{{Type: "Complete", Status: "True"}}}, "", nil)
	vm := api.New(api.KindVirtualMachine, "/dc1/vm/pi-x7k2p", api.VMSpec{Pool: labRoot, NumCPU: 1, MemoryMB: 256, PowerState: api.PoweredOff,
		Containers: []api.Container{{Name: "main", Image: "perl:5.34"}}})
	vm.Owner = "/dc1/job/pi"
	vm.SetStatus(api.VMStatus{PowerState: api.PoweredOff, Phase: api.PhaseSucceeded})
	m.put(vm)
	put(api.KindJob, "/dc1/job/team/batch", api.JobSpec{Pool: labRoot + "/team", Completions: 5, Parallelism: 2, BackoffLimit: 6,
		ActiveDeadlineSeconds: 3600, Selector: sel("batch"), Template: tmpl("batch", "busybox")},
		api.JobStatus{Active: 2, Succeeded: 1, Failed: 1, StartTime: testTime.Add(-10 * time.Minute),
			Waiting: []api.MemberWait{{VM: "/dc1/vm/team/batch-q9w8e", Reason: "QuotaExceeded", Message: "quota exceeded in /dc1/host/c1/Resources/team: vms 4 + 1 > 4",
				RetryAt: testTime.Add(30 * time.Second)}}}, "", nil)
	m.fakeVM("/dc1/vm/team/batch-m1n2b", "/dc1/job/team/batch", false)

	put(api.KindDeployment, "/dc1/deployment/web", api.DeploymentSpec{Pool: labRoot, Replicas: 2, Selector: sel("web"), Template: tmpl("web", "nginx")},
		deploymentStatus(1, 1, 2, 2, 2, 2, "NewReplicaSetAvailable", ""), "", map[string]string{"app": "web"})
	m.fakeRevision(t, "/dc1/deployment/web", "6b7c8", 1, 2)
	cpu := 45
	down := 120
	put(api.KindAutoscaler, "/dc1/hpa/web", api.AutoscalerSpec{Target: "/dc1/deployment/web", MinReplicas: 1, MaxReplicas: 5,
		TargetCPUUtilization: 80, ScaleDownStabilizationSeconds: &down},
		api.AutoscalerStatus{CurrentReplicas: 2, DesiredReplicas: 2, CurrentCPUUtilization: &cpu, LastScaleTime: testTime.Add(-time.Hour),
			Conditions: []api.Condition{{Type: "ScalingActive", Status: "True", Reason: "ValidMetricFound"}}}, "", nil)
	put(api.KindAutoscaler, "/dc1/hpa/team/gone", api.AutoscalerSpec{Target: "/dc1/deployment/team/gone", MinReplicas: 2, MaxReplicas: 4, TargetCPUUtilization: 60},
		api.AutoscalerStatus{}, "", nil)
	put(api.KindVirtualMachine, "/dc1/vm/db-01", api.VMSpec{Pool: labRoot, NumCPU: 1, MemoryMB: 1024, PowerState: api.PoweredOff,
		Containers: []api.Container{{Name: "main", Image: "busybox"}}}, nil, "", nil)
	return m
}

// TestWorkloadReadVerbs renders the ls and info verbs of every workload
// kind, and the inventory verbs over them, against golden files.
func TestWorkloadReadVerbs(t *testing.T) {
	t.Parallel()
	m := workloadInventory(t)
	var b strings.Builder
	for _, args := range [][]string{
		{"daemonset.ls", "-all-namespaces"},
		{"daemonset.info", "monitoring/node-exporter"},
		{"job.ls", "-all-namespaces"},
		{"job.info", "pi", "team/batch"},
		{"hpa.ls", "-all-namespaces"},
		{"hpa.info", "web", "team/gone"},
		{"rs.ls"},
		{"rs.info", "web-6b7c8"},
		{"vm.info", "web-6b7c8-0"},
	} {
		b.WriteString("$ psc " + strings.Join(args, " ") + "\n" + m.ok(t, args...))
	}
	golden(t, "workload-verbs", b.String())

	b.Reset()
	for _, args := range [][]string{
		{"tree"},
		{"ls", "-l"},
		{"ls", "-l", "/dc1/vm", "/dc1/job", "job/team", "hpa"},
		{"find", "-type", "job"},
		{"find", "/dc1/deployment", "-type", "deploy"},
		{"ls", "-t", "ds", "/dc1/daemonset/monitoring"},
		{"tree", "/dc1/deployment/web"},
	} {
		b.WriteString("$ psc " + strings.Join(args, " ") + "\n" + m.ok(t, args...))
	}
	golden(t, "workload-inventory", b.String())

	// -namespace picks the namespace; without it, the default one.
	if out := m.ok(t, "job.ls"); !strings.HasPrefix(out, "Name   Status     Completions   Duration   Age\npi     Complete   1/1           48s        90m\n") {
		t.Errorf("job.ls:\n%s", out)
	}
	if out := m.ok(t, "job.ls", "-namespace", "team"); !strings.Contains(out, "\nbatch  ") || strings.Contains(out, "pi") {
		t.Errorf("job.ls -namespace team:\n%s", out)
	}
	if out := m.ok(t, "daemonset.ls"); out != "Name   Desired   Current   Ready   Host selector   Age\n" {
		t.Errorf("daemonset.ls of the default namespace:\n%s", out)
	}
	for _, c := range []struct {
		args []string
		kind string
		n    int
	}{
		{[]string{"daemonset.ls", "-json", "-namespace", "monitoring"}, api.KindDaemonSet, 1},
		{[]string{"job.info", "-json", "pi"}, api.KindJob, 1},
		{[]string{"hpa.ls", "-json", "-all-namespaces"}, api.KindAutoscaler, 2},
	} {
		var objs []api.Object
		mustJSON(t, []byte(m.ok(t, c.args...)), &objs)
		if len(objs) != c.n || objs[0].Kind != c.kind {
			t.Errorf("psc %q: %+v", c.args, objs)
		}
	}
	if _, errOut, code := m.psc(t, "", "job.info", "nope"); code != exitNotFound || !strings.Contains(errOut, "/dc1/job/nope") {
		t.Errorf("job.info nope: exit %d, %q", code, errOut)
	}
	if _, errOut, code := m.psc(t, "", "ls", "-t", "widget"); code != api.ExitUsage || !strings.Contains(errOut, "rs, deploy, ds, job, hpa") {
		t.Errorf("ls -t widget: exit %d, %q", code, errOut)
	}
}

// TestWorkloadDestroy destroys one workload of each kind; what they own goes with them.
func TestWorkloadDestroy(t *testing.T) {
	t.Parallel()
	m := workloadInventory(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"daemonset.destroy", "monitoring/*"}, "Destroyed DaemonSet /dc1/daemonset/monitoring/node-exporter with its 2 VM(s)\n"},
		{[]string{"job.destroy", "pi", "team/batch"}, "Destroyed Job /dc1/job/pi with its 1 VM(s)\nDestroyed Job /dc1/job/team/batch with its 1 VM(s)\n"},
		{[]string{"hpa.destroy", "web"}, "Destroyed HorizontalPodAutoscaler /dc1/hpa/web\n"},
		{[]string{"hpa.destroy", "-namespace", "team", "gone"}, "Destroyed HorizontalPodAutoscaler /dc1/hpa/team/gone\n"},
	} {
		if out := m.ok(t, c.args...); out != c.want {
			t.Errorf("psc %q = %q, want %q", c.args, out, c.want)
		}
	}
	for p, o := range m.objs {
		if o.Kind == api.KindDaemonSet || o.Kind == api.KindJob || o.Kind == api.KindAutoscaler || o.Owner != "" && !strings.Contains(o.Owner, "web") {
			t.Errorf("%s is left", p)
		}
	}
	if _, _, code := m.psc(t, "", "job.destroy", "pi"); code != exitNotFound {
		t.Errorf("job.destroy of a gone job: exit %d", code)
	}
}
