package manifest

import (
	"reflect"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

func intp(v int) *int { return &v }

func pct(s string) *api.IntOrString { v := api.Str(s); return &v }

// defaultStrategy is Kubernetes' default Deployment strategy.
var defaultStrategy = api.Strategy{Type: api.RollingUpdate, MaxSurge: pct("25%"), MaxUnavailable: pct("25%")}

// tmplSpec is a template's VM spec as vmSpec makes it: no pool, power
// state or host (the controller's), allocations from the resources.
func tmplSpec(restart string, cpu, mem api.Allocation, numCPU int, memoryMB int64, cs ...api.Container) api.VMSpec {
	return api.VMSpec{NumCPU: numCPU, MemoryMB: memoryMB, CPU: cpu, Mem: mem, RestartPolicy: restart, Containers: cs}
}

// TestWorkloadFiles decodes the Kubernetes manifests of testdata/k8s, as
// tutorials write them.
func TestWorkloadFiles(t *testing.T) {
	teamA := "/dc1/host/c1/Resources/team-a"
	tests := []struct {
		file string
		want want
		keep []string
	}{
		{"deployment.yaml", want{kind: "Deployment", path: "/dc1/deployment/team-a/web", labels: map[string]string{"app": "web"},
			spec: api.DeploymentSpec{
				Pool: teamA, Replicas: 3,
				Selector: api.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Template: api.VMTemplate{Labels: map[string]string{"app": "web"}, Spec: tmplSpec("Always", alloc(100, 500), alloc(64, 128), 1, 128,
					api.Container{Name: "nginx", Image: "nginx:1.27", Ports: []api.Port{{Name: "http", ContainerPort: 80}},
						ReadinessProbe: &api.Probe{HTTPGet: &api.HTTPGetAction{Path: "/", Port: api.Str("http")}, PeriodSeconds: 5}})},
				Strategy: defaultStrategy, RevisionHistoryLimit: 10, ProgressDeadlineSeconds: 600,
			}}, nil},
		{"replicaset.yaml", want{kind: "ReplicaSet", path: "/dc1/replicaset/team-a/frontend", labels: map[string]string{"app": "guestbook", "tier": "frontend"},
			spec: api.ReplicaSetSpec{
				Pool: teamA, Replicas: 3,
				Selector: api.LabelSelector{MatchLabels: map[string]string{"tier": "frontend"}, MatchExpressions: []api.LabelSelectorRequirement{
					{Key: "environment", Operator: "In", Values: []string{"dev", "qa"}}, {Key: "legacy", Operator: "DoesNotExist"}}},
				Template: api.VMTemplate{Labels: map[string]string{"tier": "frontend", "environment": "dev"}, Spec: tmplSpec("Always", alloc(0, -1), alloc(0, -1), 1, 512,
					api.Container{Name: "php-redis", Image: "us-docker.pkg.dev/google-samples/containers/gke/gb-frontend:v5"})},
			}}, nil},
		{"daemonset.yaml", want{kind: "DaemonSet", path: "/dc1/daemonset/monitoring/node-exporter", labels: map[string]string{"app.kubernetes.io/name": "node-exporter"},
			spec: api.DaemonSetSpec{
				Pool:     "/dc1/host/c1/Resources/monitoring",
				Selector: api.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "node-exporter"}},
				Template: api.VMTemplate{Labels: map[string]string{"app.kubernetes.io/name": "node-exporter"}, Spec: func() api.VMSpec {
					s := tmplSpec("Always", alloc(100, -1), alloc(200, 200), 1, 200, api.Container{
						Name: "node-exporter", Image: "prom/node-exporter:v1.8.2", Args: []string{"--web.listen-address=:9100"},
						Ports:         []api.Port{{Name: "metrics", ContainerPort: 9100}},
						LivenessProbe: &api.Probe{HTTPGet: &api.HTTPGetAction{Path: "/", Port: api.Str("metrics")}},
						RunAsUser:     i64(65534), ReadOnlyRootFilesystem: true,
					})
					s.HostSelector = map[string]string{"kubernetes.io/os": "linux"}
					s.TerminationGracePeriodSeconds = i64(30)
					return s
				}()},
			}}, nil},
		{"job.yaml", want{kind: "Job", path: "/dc1/job/pi", spec: api.JobSpec{
			Pool: "/dc1/host/c1/Resources", Completions: 1, Parallelism: 1, BackoffLimit: 4,
			Selector: api.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/job-name": "pi", "job-name": "pi"}},
			Template: api.VMTemplate{Labels: map[string]string{"batch.kubernetes.io/job-name": "pi", "job-name": "pi"}, Spec: tmplSpec("Never", alloc(0, -1), alloc(0, -1), 1, 512,
				api.Container{Name: "pi", Image: "perl:5.34.0", Command: []string{"perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"}})},
		}}, nil},
		{"hpa.yaml", want{kind: "HorizontalPodAutoscaler", path: "/dc1/hpa/team-a/php-apache", spec: api.AutoscalerSpec{
			Target: "/dc1/deployment/team-a/php-apache", MinReplicas: 1, MaxReplicas: 10, TargetCPUUtilization: 50,
			ScaleDownStabilizationSeconds: intp(120), ScaleUpStabilizationSeconds: intp(0),
		}}, nil},
		{"hpa-v1.yaml", want{kind: "HorizontalPodAutoscaler", path: "/dc1/hpa/team-a/php-apache", spec: api.AutoscalerSpec{
			Target: "/dc1/deployment/team-a/php-apache", MinReplicas: 1, MaxReplicas: 10, TargetCPUUtilization: 50,
		}}, nil},
		{"kubectl-create-deployment.yaml", want{kind: "Deployment", path: "/dc1/deployment/hello", labels: map[string]string{"app": "hello"},
			spec: api.DeploymentSpec{
				Pool: "/dc1/host/c1/Resources", Replicas: 1,
				Selector: api.LabelSelector{MatchLabels: map[string]string{"app": "hello"}},
				Template: api.VMTemplate{Labels: map[string]string{"app": "hello"}, Spec: tmplSpec("Always", alloc(0, -1), alloc(0, -1), 1, 512,
					api.Container{Name: "nginx", Image: "nginx"})},
				Strategy: defaultStrategy, RevisionHistoryLimit: 10, ProgressDeadlineSeconds: 600,
			}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			items := decodeOK(t, readFile(t, "testdata/k8s/"+tt.file), ctx)
			checkItems(t, items, []want{tt.want})
			if !reflect.DeepEqual(items[0].Keep, tt.keep) {
				t.Errorf("Keep %v, want %v", items[0].Keep, tt.keep)
			}
		})
	}
}

// TestWorkloadDefaults checks Kubernetes' defaults on minimal manifests.
func TestWorkloadDefaults(t *testing.T) {
	const tmpl = `
  template:
    metadata: {labels: {app: a}}
    spec:
      containers: [{name: c, image: i}]`
	const sel = "\n  selector: {matchLabels: {app: a}}"
	plain := api.VMTemplate{Labels: map[string]string{"app": "a"}, Spec: tmplSpec("Always", alloc(0, -1), alloc(0, -1), 1, 512, api.Container{Name: "c", Image: "i"})}
	root := "/dc1/host/c1/Resources"
	tests := []struct {
		name, in string
		want     want
		keep     []string
	}{
		{"deployment: replicas 1 (kept on apply), rolling update 25%/25%, history 10, deadline 600",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:" + sel + tmpl,
			want{kind: "Deployment", path: "/dc1/deployment/d", spec: api.DeploymentSpec{Pool: root, Replicas: 1,
				Selector: api.LabelSelector{MatchLabels: map[string]string{"app": "a"}}, Template: plain,
				Strategy: defaultStrategy, RevisionHistoryLimit: 10, ProgressDeadlineSeconds: 600}}, []string{"replicas"}},
		{"deployment: rolling update with one of the two given",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 0\n  strategy: {rollingUpdate: {maxSurge: 1}}" + sel + tmpl,
			want{kind: "Deployment", path: "/dc1/deployment/d", spec: api.DeploymentSpec{Pool: root, Replicas: 0,
				Selector: api.LabelSelector{MatchLabels: map[string]string{"app": "a"}}, Template: plain,
				Strategy:             api.Strategy{Type: api.RollingUpdate, MaxSurge: func() *api.IntOrString { v := api.Int(1); return &v }(), MaxUnavailable: pct("25%")},
				RevisionHistoryLimit: 10, ProgressDeadlineSeconds: 600}}, nil},
		{"deployment: recreate, everything set",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: ns}\nspec:\n  replicas: 2\n  strategy: {type: Recreate}\n  minReadySeconds: 5\n  revisionHistoryLimit: 0\n  paused: true\n  progressDeadlineSeconds: 60" + sel + tmpl,
			want{kind: "Deployment", path: "/dc1/deployment/ns/d", spec: api.DeploymentSpec{Pool: root + "/ns", Replicas: 2,
				Selector: api.LabelSelector{MatchLabels: map[string]string{"app": "a"}}, Template: plain, MinReadySeconds: 5,
				Strategy: api.Strategy{Type: api.Recreate}, RevisionHistoryLimit: 0, Paused: true, ProgressDeadlineSeconds: 60}}, nil},
		{"replicaset: replicas 1, kept on apply",
			"apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\nspec:" + sel + tmpl,
			want{kind: "ReplicaSet", path: "/dc1/replicaset/r", spec: api.ReplicaSetSpec{Pool: root, Replicas: 1,
				Selector: api.LabelSelector{MatchLabels: map[string]string{"app": "a"}}, Template: plain}}, []string{"replicas"}},
		{"job: completions 1, parallelism 1, backoffLimit 6; selector from the labels, job-name added",
			"apiVersion: batch/v1\nkind: Job\nmetadata: {name: j, namespace: ns}\nspec:\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n      restartPolicy: OnFailure\n      containers: [{name: c, image: i}]",
			want{kind: "Job", path: "/dc1/job/ns/j", spec: api.JobSpec{Pool: root + "/ns", Completions: 1, Parallelism: 1, BackoffLimit: 6,
				Selector: api.LabelSelector{MatchLabels: map[string]string{"app": "a", "batch.kubernetes.io/job-name": "j", "job-name": "j"}},
				Template: api.VMTemplate{Labels: map[string]string{"app": "a", "batch.kubernetes.io/job-name": "j", "job-name": "j"},
					Spec: tmplSpec("OnFailure", alloc(0, -1), alloc(0, -1), 1, 512, api.Container{Name: "c", Image: "i"})}}}, nil},
		{"job: the Job's name wins over a template's job-name label",
			"apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    metadata: {labels: {job-name: other}}\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: i}]",
			want{kind: "Job", path: "/dc1/job/j", spec: api.JobSpec{Pool: root, Completions: 1, Parallelism: 1, BackoffLimit: 6,
				Selector: api.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/job-name": "j", "job-name": "j"}},
				Template: api.VMTemplate{Labels: map[string]string{"batch.kubernetes.io/job-name": "j", "job-name": "j"},
					Spec: tmplSpec("Never", alloc(0, -1), alloc(0, -1), 1, 512, api.Container{Name: "c", Image: "i"})}}}, nil},
		{"job: everything set, manual selector",
			"apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  completions: 5\n  parallelism: 2\n  backoffLimit: 0\n  activeDeadlineSeconds: 100\n  manualSelector: true\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: i}]",
			want{kind: "Job", path: "/dc1/job/j", spec: api.JobSpec{Pool: root, Completions: 5, Parallelism: 2, BackoffLimit: 0, ActiveDeadlineSeconds: 100,
				Selector: api.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
				Template: api.VMTemplate{Labels: map[string]string{"app": "a"}, Spec: tmplSpec("Never", alloc(0, -1), alloc(0, -1), 1, 512, api.Container{Name: "c", Image: "i"})}}}, nil},
		{"hpa v2: minReplicas 1, 80% cpu without metrics, a ReplicaSet target",
			"apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  scaleTargetRef: {kind: ReplicaSet, name: r}\n  maxReplicas: 4",
			want{kind: "HorizontalPodAutoscaler", path: "/dc1/hpa/h", spec: api.AutoscalerSpec{Target: "/dc1/replicaset/r", MinReplicas: 1, MaxReplicas: 4, TargetCPUUtilization: 80}}, nil},
		{"hpa v1: minReplicas 1, 80% cpu",
			"apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h, namespace: ns}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}\n  maxReplicas: 4",
			want{kind: "HorizontalPodAutoscaler", path: "/dc1/hpa/ns/h", spec: api.AutoscalerSpec{Target: "/dc1/deployment/ns/d", MinReplicas: 1, MaxReplicas: 4, TargetCPUUtilization: 80}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items := decodeOK(t, tt.in, ctx)
			checkItems(t, items, []want{tt.want})
			if !reflect.DeepEqual(items[0].Keep, tt.keep) {
				t.Errorf("Keep %v, want %v", items[0].Keep, tt.keep)
			}
		})
	}
}

// indent prefixes every non-empty line of s.
func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

// podSpecOf is the text of a Pod manifest's spec, without the "spec:" line.
func podSpecOf(t *testing.T, pod string) string {
	t.Helper()
	_, spec, ok := strings.Cut(pod, "\nspec:\n")
	if !ok {
		t.Fatal("no spec in the Pod")
	}
	return spec
}

// TestTemplateIsAPodSpec checks that a template's spec maps as a Pod's
// does: the Pod of testdata/k8s/pod.yaml as a Deployment's template.
func TestTemplateIsAPodSpec(t *testing.T) {
	in := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: team-a}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n" +
		"    metadata: {labels: {app: web}}\n    spec:\n" + indent(podSpecOf(t, readFile(t, podFieldsFile)), "    ")
	items := decodeOK(t, in, ctx)
	var s api.DeploymentSpec
	if err := items[0].Object.DecodeSpec(&s); err != nil {
		t.Fatal(err)
	}
	wantSpec := podFieldsSpec
	wantSpec.Pool, wantSpec.PowerState = "", ""
	checkItems(t, []Item{{Object: api.New("VirtualMachine", "/x", s.Template.Spec)}}, []want{{kind: "VirtualMachine", path: "/x", spec: wantSpec}})
}

// TestTemplateErrors runs the PodSpec refusals in a Deployment's and a
// Job's template: the same message, at spec.template.spec.
func TestTemplateErrors(t *testing.T) {
	heads := map[string]string{
		"Deployment": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: team-a}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n",
		"Job":        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: web, namespace: team-a}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n",
	}
	for kind, head := range heads {
		for _, tt := range podSpecErrors {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				want := `document 1 (` + kind + ` "web"): spec.template.spec.` + tt.field + ": " + tt.msg
				_, err := Decode(strings.NewReader(head+indent(tt.spec, "    ")+"\n"), ctx)
				if err == nil || err.Error() != want {
					t.Errorf("error\n got %v\nwant %s", err, want)
				}
			})
		}
	}
}

func TestWorkloadErrors(t *testing.T) {
	const tmpl = "\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n      containers: [{name: c, image: i}]"
	const sel = "\n  selector: {matchLabels: {app: a}}"
	dep := func(spec string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:" + spec
	}
	job := func(spec string) string { return "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:" + spec }
	hpa := func(spec string) string {
		return "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  scaleTargetRef: {kind: Deployment, name: d}\n  maxReplicas: 3" + spec
	}
	const jobTmpl = "\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: i}]"
	tests := []struct{ name, in, want string }{
		{"no selector", dep(tmpl),
			`document 1 (Deployment "d"): spec.selector: is required in apps/v1: give matchLabels that the template's labels (spec.template.metadata.labels) carry, such as {app: web}`},
		{"empty selector", dep("\n  selector: {}" + tmpl),
			`document 1 (Deployment "d"): spec.selector: is empty, which would select every VM of the namespace: give matchLabels or matchExpressions`},
		{"selector not matching the template", dep("\n  selector: {matchLabels: {app: b}}" + tmpl),
			`document 1 (Deployment "d"): spec.selector: does not match the template's labels (spec.template.metadata.labels: app=a)`},
		{"selector expression not matching", "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\nspec:\n  selector: {matchExpressions: [{key: app, operator: NotIn, values: [a]}]}" + tmpl,
			`document 1 (ReplicaSet "r"): spec.selector: does not match the template's labels (spec.template.metadata.labels: app=a)`},
		{"template without labels", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: s}\nspec:" + sel + "\n  template:\n    spec:\n      containers: [{name: c, image: i}]",
			`document 1 (DaemonSet "s"): spec.selector: does not match the template's labels: spec.template.metadata.labels is empty`},
		{"bad selector operator", dep("\n  selector: {matchExpressions: [{key: app, operator: Equals, values: [a]}]}" + tmpl),
			`document 1 (Deployment "d"): spec.selector.matchExpressions[0].operator: "Equals" is not supported (In, NotIn, Exists, DoesNotExist are)`},
		{"deployment restartPolicy", dep(sel + tmpl + "\n      restartPolicy: OnFailure"),
			`document 1 (Deployment "d"): spec.template.spec.restartPolicy: "OnFailure": a Deployment's VMs run until they are replaced, so only Always is allowed (as in Kubernetes)`},
		{"daemonset restartPolicy", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: s}\nspec:" + sel + tmpl + "\n      restartPolicy: Never",
			`document 1 (DaemonSet "s"): spec.template.spec.restartPolicy: "Never": a DaemonSet's VMs run until they are replaced, so only Always is allowed (as in Kubernetes)`},
		{"job restartPolicy Always", job("\n  template:\n    spec:\n      restartPolicy: Always\n      containers: [{name: c, image: i}]"),
			`document 1 (Job "j"): spec.template.spec.restartPolicy: "Always": a Job's VMs run to completion: use Never or OnFailure (Kubernetes refuses Always)`},
		{"job restartPolicy missing", job("\n  template:\n    spec:\n      containers: [{name: c, image: i}]"),
			`document 1 (Job "j"): spec.template.spec.restartPolicy: is required: a Job's VMs run to completion: use Never or OnFailure (Kubernetes refuses Always)`},
		{"template without containers", dep(sel + "\n  template:\n    metadata: {labels: {app: a}}"),
			`document 1 (Deployment "d"): spec.template.spec.containers: a Pod needs at least one container`},
		{"template metadata name", dep(sel + "\n  template:\n    metadata: {name: x, labels: {app: a}}\n    spec:\n      containers: [{name: c, image: i}]"),
			`document 1 (Deployment "d"): spec.template.metadata.name: unknown field (known fields: labels)`},
		{"negative replicas", dep("\n  replicas: -1" + sel + tmpl), `document 1 (Deployment "d"): spec.replicas: -1 is negative`},
		{"replicas as a string", dep("\n  replicas: \"3\"" + sel + tmpl), `document 1 (Deployment "d"): spec.replicas: want an integer, got "3"`},
		{"negative minReadySeconds", dep("\n  minReadySeconds: -1" + sel + tmpl), `document 1 (Deployment "d"): spec.minReadySeconds: -1 is negative`},
		{"negative revisionHistoryLimit", dep("\n  revisionHistoryLimit: -1" + sel + tmpl), `document 1 (Deployment "d"): spec.revisionHistoryLimit: -1 is negative`},
		{"deadline not above minReadySeconds", dep("\n  minReadySeconds: 30\n  progressDeadlineSeconds: 30" + sel + tmpl),
			`document 1 (Deployment "d"): spec.progressDeadlineSeconds: 30 must be more than spec.minReadySeconds 30`},
		{"strategy type", dep("\n  strategy: {type: BlueGreen}" + sel + tmpl), `document 1 (Deployment "d"): spec.strategy.type: "BlueGreen" is not RollingUpdate or Recreate`},
		{"recreate with rollingUpdate", dep("\n  strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}" + sel + tmpl),
			`document 1 (Deployment "d"): spec.strategy.rollingUpdate: is for type RollingUpdate, not Recreate`},
		{"maxSurge not a percentage", dep("\n  strategy: {rollingUpdate: {maxSurge: \"25\"}}" + sel + tmpl),
			`document 1 (Deployment "d"): spec.strategy.rollingUpdate.maxSurge: "25" is neither a count nor a percentage like "25%"`},
		{"negative maxUnavailable", dep("\n  strategy: {rollingUpdate: {maxUnavailable: -1}}" + sel + tmpl),
			`document 1 (Deployment "d"): spec.strategy.rollingUpdate.maxUnavailable: -1 is negative`},
		{"maxUnavailable above 100%", dep("\n  strategy: {rollingUpdate: {maxUnavailable: 150%}}" + sel + tmpl),
			`document 1 (Deployment "d"): spec.strategy.rollingUpdate.maxUnavailable: 150% is more than 100%`},
		{"both zero", dep("\n  strategy: {rollingUpdate: {maxUnavailable: 0, maxSurge: 0%}}" + sel + tmpl),
			`document 1 (Deployment "d"): spec.strategy.rollingUpdate: maxSurge and maxUnavailable are both 0, so a rollout could never make progress`},
		{"unknown deployment field", dep("\n  revisionHistory: 3" + sel + tmpl),
			`document 1 (Deployment "d"): spec.revisionHistory: unknown field (known fields: minReadySeconds, paused, progressDeadlineSeconds, replicas, revisionHistoryLimit, selector, strategy, template)`},
		{"daemonset updateStrategy", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: s}\nspec:\n  updateStrategy: {type: RollingUpdate}" + sel + tmpl,
			`document 1 (DaemonSet "s"): spec.updateStrategy: unknown field (known fields: selector, template)`},
		{"deployment without name", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {namespace: a}\n", `document 1 (Deployment): metadata.name: is required`},
		{"deployment bad namespace", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: a/b}\n",
			`document 1 (Deployment "d"): metadata.namespace: name "a/b": character '/' at 1 is not allowed (letters, digits, and - _ . after the first)`},
		{"no context", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n" + "spec:" + sel + tmpl,
			`document 1 (Deployment "d"): PSC_DATACENTER and PSC_CLUSTER are not set: a Kubernetes Deployment is placed in PSC_CLUSTER of PSC_DATACENTER`},
		{"job selector without manualSelector", job("\n  selector: {matchLabels: {app: a}}" + jobTmpl),
			`document 1 (Job "j"): spec.selector: a Job's selector is made from its template's labels: leave it out, or set spec.manualSelector: true (as Kubernetes asks)`},
		{"job manual selector not matching", job("\n  manualSelector: true\n  selector: {matchLabels: {app: a}}" + jobTmpl),
			`document 1 (Job "j"): spec.selector: does not match the template's labels: spec.template.metadata.labels is empty`},
		{"job manualSelector without selector", job("\n  manualSelector: true" + jobTmpl),
			`document 1 (Job "j"): spec.selector: is required with spec.manualSelector: true`},
		{"negative completions", job("\n  completions: -1" + jobTmpl), `document 1 (Job "j"): spec.completions: -1 is negative`},
		{"negative backoffLimit", job("\n  backoffLimit: -1" + jobTmpl), `document 1 (Job "j"): spec.backoffLimit: -1 is negative`},
		{"zero activeDeadlineSeconds", job("\n  activeDeadlineSeconds: 0" + jobTmpl),
			`document 1 (Job "j"): spec.activeDeadlineSeconds: 0: must be positive (leave it out for no deadline)`},
		{"job ttl", job("\n  ttlSecondsAfterFinished: 100" + jobTmpl),
			`document 1 (Job "j"): spec.ttlSecondsAfterFinished: unknown field (known fields: activeDeadlineSeconds, backoffLimit, completions, manualSelector, parallelism, selector, template)`},
		{"job name too long for its label", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: " + strings.Repeat("j", 64) + "}\nspec:" + jobTmpl,
			`document 1 (Job "` + strings.Repeat("j", 64) + `"): metadata.name: a Job's name becomes the job-name label of its VMs, which takes at most 63 characters`},
		{"hpa target kind", "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: StatefulSet, name: db}\n  maxReplicas: 3",
			`document 1 (HorizontalPodAutoscaler "h"): spec.scaleTargetRef.kind: "StatefulSet" is not supported: podsphere scales Deployments and ReplicaSets`},
		{"hpa target without kind", "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  scaleTargetRef: {name: d}\n  maxReplicas: 3",
			`document 1 (HorizontalPodAutoscaler "h"): spec.scaleTargetRef.kind: is required (Deployment or ReplicaSet)`},
		{"hpa target apiVersion", "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  scaleTargetRef: {apiVersion: extensions/v1beta1, kind: Deployment, name: d}\n  maxReplicas: 3",
			`document 1 (HorizontalPodAutoscaler "h"): spec.scaleTargetRef.apiVersion: "extensions/v1beta1": a Deployment is apps/v1`},
		{"hpa target without name", "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  scaleTargetRef: {kind: Deployment}\n  maxReplicas: 3",
			`document 1 (HorizontalPodAutoscaler "h"): spec.scaleTargetRef.name: is required`},
		{"hpa without maxReplicas", "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  scaleTargetRef: {kind: Deployment, name: d}",
			`document 1 (HorizontalPodAutoscaler "h"): spec.maxReplicas: is required`},
		{"hpa maxReplicas below minReplicas", hpa("\n  minReplicas: 5"), `document 1 (HorizontalPodAutoscaler "h"): spec.maxReplicas: 3 is below spec.minReplicas 5`},
		{"hpa minReplicas 0", hpa("\n  minReplicas: 0"), `document 1 (HorizontalPodAutoscaler "h"): spec.minReplicas: 0: must be at least 1`},
		{"hpa memory metric", hpa("\n  metrics: [{type: Resource, resource: {name: memory, target: {type: Utilization, averageUtilization: 50}}}]"),
			`document 1 (HorizontalPodAutoscaler "h"): spec.metrics[0].resource.name: "memory" is not supported: podsphere scales on cpu utilization only (type Resource, resource.name cpu, target.type Utilization)`},
		{"hpa pods metric", hpa("\n  metrics: [{type: Pods, pods: {metric: {name: rps}, target: {type: AverageValue, averageValue: 10}}}]"),
			`document 1 (HorizontalPodAutoscaler "h"): spec.metrics[0].type: "Pods" is not supported: podsphere scales on cpu utilization only (type Resource, resource.name cpu, target.type Utilization)`},
		{"hpa external source beside a Resource type", hpa("\n  metrics: [{type: Resource, external: {metric: {name: q}}, resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}}]"),
			`document 1 (HorizontalPodAutoscaler "h"): spec.metrics[0].external: not supported: podsphere scales on cpu utilization only (type Resource, resource.name cpu, target.type Utilization)`},
		{"hpa metric without type", hpa("\n  metrics: [{resource: {name: cpu}}]"),
			`document 1 (HorizontalPodAutoscaler "h"): spec.metrics[0].type: is required: podsphere scales on cpu utilization only (type Resource, resource.name cpu, target.type Utilization)`},
		{"hpa AverageValue target", hpa("\n  metrics: [{type: Resource, resource: {name: cpu, target: {type: AverageValue, averageValue: 500m}}}]"),
			`document 1 (HorizontalPodAutoscaler "h"): spec.metrics[0].resource.target.type: "AverageValue" is not supported: podsphere scales on cpu utilization only (type Resource, resource.name cpu, target.type Utilization)`},
		{"hpa averageValue with Utilization", hpa("\n  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageValue: 500m}}}]"),
			`document 1 (HorizontalPodAutoscaler "h"): spec.metrics[0].resource.target.averageValue: not supported: give averageUtilization, a percentage of the VMs' CPU requests`},
		{"hpa without averageUtilization", hpa("\n  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization}}}]"),
			`document 1 (HorizontalPodAutoscaler "h"): spec.metrics[0].resource.target.averageUtilization: is required for target type Utilization`},
		{"hpa zero averageUtilization", hpa("\n  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 0}}}]"),
			`document 1 (HorizontalPodAutoscaler "h"): spec.metrics[0].resource.target.averageUtilization: 0: must be at least 1 (percent)`},
		{"hpa without resource", hpa("\n  metrics: [{type: Resource}]"),
			`document 1 (HorizontalPodAutoscaler "h"): spec.metrics[0].resource: is required for type Resource`},
		{"hpa second metric", hpa("\n  metrics:\n  - {type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}}\n  - {type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}}"),
			`document 1 (HorizontalPodAutoscaler "h"): spec.metrics[1]: podsphere scales on one metric, the cpu utilization of spec.metrics[0]`},
		{"hpa scaling policies", hpa("\n  behavior: {scaleDown: {policies: [{type: Pods, value: 1, periodSeconds: 60}]}}"),
			`document 1 (HorizontalPodAutoscaler "h"): spec.behavior.scaleDown.policies: unknown field (known fields: stabilizationWindowSeconds)`},
		{"hpa stabilization window too long", hpa("\n  behavior: {scaleUp: {stabilizationWindowSeconds: 3601}}"),
			`document 1 (HorizontalPodAutoscaler "h"): spec.behavior.scaleUp.stabilizationWindowSeconds: 3601 is not from 0 to 3600`},
		{"hpa v1 zero target", "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  scaleTargetRef: {kind: Deployment, name: d}\n  maxReplicas: 3\n  targetCPUUtilizationPercentage: 0",
			`document 1 (HorizontalPodAutoscaler "h"): spec.targetCPUUtilizationPercentage: 0: must be at least 1 (percent)`},
		{"hpa v1 with v2 metrics", "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  scaleTargetRef: {kind: Deployment, name: d}\n  maxReplicas: 3\n  metrics: []",
			`document 1 (HorizontalPodAutoscaler "h"): spec.metrics: unknown field (known fields: maxReplicas, minReplicas, scaleTargetRef, targetCPUUtilizationPercentage)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ctx
			if tt.name == "no context" {
				c = Context{}
			}
			_, err := Decode(strings.NewReader(tt.in), c)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestSelectorMatches(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "front"}
	tests := []struct {
		sel  api.LabelSelector
		want bool
	}{
		{api.LabelSelector{}, true},
		{api.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, true},
		{api.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, false},
		{api.LabelSelector{MatchLabels: map[string]string{"zone": ""}}, false},
		{api.LabelSelector{MatchExpressions: []api.LabelSelectorRequirement{{Key: "app", Operator: "In", Values: []string{"db", "web"}}}}, true},
		{api.LabelSelector{MatchExpressions: []api.LabelSelectorRequirement{{Key: "zone", Operator: "In", Values: []string{""}}}}, false},
		{api.LabelSelector{MatchExpressions: []api.LabelSelectorRequirement{{Key: "app", Operator: "NotIn", Values: []string{"web"}}}}, false},
		{api.LabelSelector{MatchExpressions: []api.LabelSelectorRequirement{{Key: "zone", Operator: "NotIn", Values: []string{"a"}}}}, true},
		{api.LabelSelector{MatchExpressions: []api.LabelSelectorRequirement{{Key: "tier", Operator: "Exists"}}}, true},
		{api.LabelSelector{MatchExpressions: []api.LabelSelectorRequirement{{Key: "tier", Operator: "DoesNotExist"}}}, false},
		{api.LabelSelector{MatchExpressions: []api.LabelSelectorRequirement{{Key: "zone", Operator: "DoesNotExist"}}}, true},
		{api.LabelSelector{MatchLabels: map[string]string{"app": "web"}, MatchExpressions: []api.LabelSelectorRequirement{{Key: "zone", Operator: "Exists"}}}, false},
	}
	for i, tt := range tests {
		if got := selectorMatches(tt.sel, labels); got != tt.want {
			t.Errorf("%d: %+v matches %v = %v, want %v", i, tt.sel, labels, got, tt.want)
		}
	}
}
