package manifest

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

var ctx = Context{Datacenter: "dc1", Cluster: "c1"}

// want is an expected item: kind, path, labels and spec (compared as JSON).
type want struct {
	kind, path string
	labels     map[string]string
	spec       any
	merge      Merge
}

func alloc(res, limit int64) api.Allocation {
	a := defaultAllocation()
	a.Reservation, a.Limit = res, limit
	return a
}

func quota(set func(q *api.QuotaLimits)) *api.QuotaLimits {
	q := noQuota()
	set(q)
	return q
}

type quotaOnly struct {
	Quota *api.QuotaLimits `json:"quota"`
}

func decodeOK(t *testing.T, in string, c Context) []Item {
	t.Helper()
	items, err := Decode(strings.NewReader(in), c)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return items
}

func checkItems(t *testing.T, items []Item, wants []want) {
	t.Helper()
	if len(items) != len(wants) {
		t.Fatalf("got %d items, want %d: %+v", len(items), len(wants), items)
	}
	for i, w := range wants {
		o := items[i].Object
		if o.Kind != w.kind || o.Path != w.path || items[i].Merge != w.merge {
			t.Errorf("item %d: %s %s (%v), want %s %s (%v)", i, o.Kind, o.Path, items[i].Merge, w.kind, w.path, w.merge)
		}
		if !reflect.DeepEqual(o.Labels, w.labels) {
			t.Errorf("item %d: labels %v, want %v", i, o.Labels, w.labels)
		}
		wantSpec, _ := json.Marshal(w.spec)
		if !jsonEqual(o.Spec, wantSpec) {
			t.Errorf("item %d: spec\n got %s\nwant %s", i, o.Spec, wantSpec)
		}
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func TestPodsphereKinds(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ctx  Context
		want []want
	}{
		{"datacenter by name, no context needed", `
apiVersion: podsphere.io/v1
kind: Datacenter
metadata: {name: dc9}`, Context{}, []want{{kind: "Datacenter", path: "/dc9", spec: api.DatacenterSpec{}}}},
		{"cluster by path", `
apiVersion: podsphere.io/v1
kind: Cluster
metadata: {path: /dc2/host/c7, labels: {env: prod}}
spec:
  drs: {enabled: true, mode: fullyAutomated}
  ha: {enabled: true, admissionControlEnabled: true, hostFailuresTolerated: 1}
  rules:
  - {name: spread, enabled: true, kind: anti-affinity, vms: [a, b]}
  podCIDR: 10.244.0.0/16`, Context{}, []want{{kind: "Cluster", path: "/dc2/host/c7", labels: map[string]string{"env": "prod"}, spec: api.ClusterSpec{
			DRS:     api.DRSConfig{Enabled: true, Mode: "fullyAutomated"},
			HA:      api.HAConfig{Enabled: true, AdmissionControlEnabled: true, HostFailuresTolerated: 1},
			Rules:   []api.ClusterRule{{Name: "spread", Enabled: true, Kind: "anti-affinity", VMs: []string{"a", "b"}}},
			PodCIDR: "10.244.0.0/16",
		}}}},
		{"cluster by name", `
apiVersion: podsphere.io/v1
kind: Cluster
metadata: {name: c2}`, ctx, []want{{kind: "Cluster", path: "/dc1/host/c2", spec: api.ClusterSpec{}}}},
		{"pool by path, defaults filled", `
apiVersion: podsphere.io/v1
kind: ResourcePool
metadata: { path: /dc1/host/c1/Resources/dev, labels: {team: web} }
spec: { cpu: {reservation: 1000}, mem: {limit: 4096, expandable: false, shares: {level: custom, value: 300}} }`,
			Context{}, []want{{kind: "ResourcePool", path: "/dc1/host/c1/Resources/dev", labels: map[string]string{"team": "web"}, spec: api.PoolSpec{
				CPU: alloc(1000, -1),
				Mem: api.Allocation{Limit: 4096, Shares: api.Shares{Level: "custom", Value: 300}},
			}}}},
		{"nested pool by name, no spec, partial quota", `
apiVersion: podsphere.io/v1
kind: ResourcePool
metadata: {name: dev/web}
spec:
  quota: {vms: 10, cpuMHz: 8000}`, ctx, []want{{kind: "ResourcePool", path: "/dc1/host/c1/Resources/dev/web", spec: api.PoolSpec{
			CPU: alloc(0, -1), Mem: alloc(0, -1),
			Quota: quota(func(q *api.QuotaLimits) { q.VMs, q.CPUMHz = 10, 8000 }),
		}}}},
		{"pool with no spec at all", `
apiVersion: podsphere.io/v1
kind: ResourcePool
metadata: {name: ops}`, ctx, []want{{kind: "ResourcePool", path: "/dc1/host/c1/Resources/ops", spec: api.PoolSpec{CPU: alloc(0, -1), Mem: alloc(0, -1)}}}},
		{"vm by name: defaults, relative pool, host by name", `
apiVersion: podsphere.io/v1
kind: VirtualMachine
metadata: {name: web-01, labels: {app: web}}
spec:
  pool: dev
  host: h1
  numCPU: 2
  memoryMB: 2048
  cpu: {reservation: 500}
  containers:
  - name: app
    image: busybox
    command: [sleep, "3600"]
    env: [{name: MODE, value: "on"}]
    ports: [{name: http, containerPort: 8080, protocol: TCP}]
  ha: {restartPriority: high, isolationResponse: shutdown}
  volumes: [{name: data, claim: data-1, mountPath: /data}]`, ctx, []want{{kind: "VirtualMachine", path: "/dc1/vm/web-01", labels: map[string]string{"app": "web"}, spec: api.VMSpec{
			Pool: "/dc1/host/c1/Resources/dev", Host: "/dc1/host/c1/h1", Pinned: true, NumCPU: 2, MemoryMB: 2048,
			CPU: alloc(500, -1), Mem: alloc(0, -1), PowerState: "poweredOn",
			Containers: []api.Container{{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"},
				Env: []api.EnvVar{{Name: "MODE", Value: "on"}}, Ports: []api.Port{{Name: "http", ContainerPort: 8080, Protocol: "TCP"}}}},
			HA:      api.HAPolicy{RestartPriority: "high", IsolationResponse: "shutdown"},
			Volumes: []api.Volume{{Name: "data", Claim: "data-1", MountPath: "/data"}},
		}}}},
		{"vm by path, absolute pool, powered off, no context", `
apiVersion: podsphere.io/v1
kind: VirtualMachine
metadata: {path: /dc3/vm/db}
spec: {pool: /dc3/host/c3/Resources, powerState: poweredOff, restartPolicy: OnFailure}`, Context{}, []want{{kind: "VirtualMachine", path: "/dc3/vm/db", spec: api.VMSpec{
			Pool: "/dc3/host/c3/Resources", NumCPU: 1, MemoryMB: 512, CPU: alloc(0, -1), Mem: alloc(0, -1),
			PowerState: "poweredOff", RestartPolicy: "OnFailure",
		}}}},
		{"vm pool defaults to the cluster root pool of the VM's datacenter", `
apiVersion: podsphere.io/v1
kind: VirtualMachine
metadata: {path: /dc3/vm/db}`, ctx, []want{{kind: "VirtualMachine", path: "/dc3/vm/db", spec: api.VMSpec{
			Pool: "/dc3/host/c1/Resources", NumCPU: 1, MemoryMB: 512, CPU: alloc(0, -1), Mem: alloc(0, -1), PowerState: "poweredOn",
		}}}},
		{"vm with the Pod-like fields, spelled as the api's", `
apiVersion: podsphere.io/v1
kind: VirtualMachine
metadata: {path: /dc1/vm/team-a/web}
spec:
  pool: team-a
  initContainers: [{name: init, image: busybox}]
  containers:
  - name: app
    image: nginx
    imagePullPolicy: Never
    readinessProbe: {httpGet: {port: 80, path: /}}
    runAsUser: 101
  hostSelector: {disk: ssd}
  affinity:
    vmAntiAffinity: [{selector: {matchLabels: {app: web}}, weight: 50}]
  terminationGracePeriodSeconds: 0
  hostname: web`, ctx, []want{{kind: "VirtualMachine", path: "/dc1/vm/team-a/web", spec: api.VMSpec{
			Pool: "/dc1/host/c1/Resources/team-a", NumCPU: 1, MemoryMB: 512, CPU: alloc(0, -1), Mem: alloc(0, -1), PowerState: "poweredOn",
			InitContainers: []api.Container{{Name: "init", Image: "busybox"}},
			Containers: []api.Container{{Name: "app", Image: "nginx", ImagePullPolicy: "Never", RunAsUser: i64(101),
				ReadinessProbe: &api.Probe{HTTPGet: &api.HTTPGetAction{Port: api.Int(80), Path: "/"}}}},
			HostSelector:                  map[string]string{"disk": "ssd"},
			Affinity:                      &api.Affinity{VMAntiAffinity: []api.VMAffinityTerm{{Selector: api.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Weight: 50}}},
			TerminationGracePeriodSeconds: i64(0), Hostname: "web",
		}}}},
		{"kubernetes metadata and status are ignored", `
apiVersion: podsphere.io/v1
kind: Datacenter
metadata:
  name: dc1
  annotations: {note: "x"}
  uid: 0b5c
  resourceVersion: "12"
  generation: 3
  creationTimestamp: null
  managedFields: [{manager: kubectl}]
  selfLink: /x
status: {anything: [1, 2]}`, Context{}, []want{{kind: "Datacenter", path: "/dc1", spec: api.DatacenterSpec{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkItems(t, decodeOK(t, tt.in, tt.ctx), tt.want)
		})
	}
}

func TestKubernetesKinds(t *testing.T) {
	root := "/dc1/host/c1/Resources"
	tests := []struct {
		name string
		in   string
		want []want
	}{
		{"namespace", `
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {team: web}, annotations: {a: b}}
spec: {finalizers: [kubernetes]}
status: {phase: Active}`, []want{{kind: "ResourcePool", path: root + "/dev", labels: map[string]string{"team": "web"},
			spec: api.PoolSpec{CPU: alloc(0, -1), Mem: alloc(0, -1)}}}},
		{"resource quota, every key", `
apiVersion: v1
kind: ResourceQuota
metadata: {name: q, namespace: dev}
spec:
  hard:
    pods: "10"
    count/replicasets.apps: 5
    services: "3"
    persistentvolumeclaims: "4"
    configmaps: 1k
    secrets: "0"
    requests.storage: 100Gi
    limits.cpu: "4"
    limits.memory: 8Gi`, []want{{kind: "ResourcePool", path: root + "/dev", merge: MergeQuota, spec: quotaOnly{&api.QuotaLimits{
			VMs: 10, ReplicaSets: 5, Services: 3, VolumeClaims: 4, ConfigMaps: 1000, Secrets: 0, StorageGB: 100, CPUMHz: 4000, MemMB: 8192,
		}}}}},
		{"resource quota, alternative keys, default namespace is the root pool", `
apiVersion: v1
kind: ResourceQuota
metadata: {name: q}
spec:
  hard: {count/pods: 2, cpu: 1500m, memory: 1G, count/services: 1, count/configmaps: 2, count/secrets: 3, count/persistentvolumeclaims: 4}`,
			[]want{{kind: "ResourcePool", path: root, merge: MergeQuota, spec: quotaOnly{quota(func(q *api.QuotaLimits) {
				q.VMs, q.CPUMHz, q.MemMB, q.Services, q.ConfigMaps, q.Secrets, q.VolumeClaims = 2, 1500, 954, 1, 2, 3, 4
			})}}}},
		{"resource quota with no hard limits", `
apiVersion: v1
kind: ResourceQuota
metadata: {name: q, namespace: default}`, []want{{kind: "ResourcePool", path: root, merge: MergeQuota, spec: quotaOnly{noQuota()}}}},
		{"pod in default namespace: minimal", `
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers: [{name: nginx, image: nginx}]`, []want{{kind: "VirtualMachine", path: "/dc1/vm/web", spec: api.VMSpec{
			Pool: root, NumCPU: 1, MemoryMB: 512, CPU: alloc(0, -1), Mem: alloc(0, -1), PowerState: "poweredOn", RestartPolicy: "Always",
			Containers: []api.Container{{Name: "nginx", Image: "nginx"}},
		}}}},
		{"pod in namespace default is at the top of the vm folder", `
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  containers: [{name: nginx, image: nginx}]`, []want{{kind: "VirtualMachine", path: "/dc1/vm/web", spec: api.VMSpec{
			Pool: root, NumCPU: 1, MemoryMB: 512, CPU: alloc(0, -1), Mem: alloc(0, -1), PowerState: "poweredOn", RestartPolicy: "Always",
			Containers: []api.Container{{Name: "nginx", Image: "nginx"}},
		}}}},
		{"pod: everything, two containers, sums and sizing from limits", `
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: dev
  labels: {app: web, tier: front}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: registry.local/app:1.2
    command: [/app]
    args: [--port, "8080"]
    workingDir: /srv
    env:
    - {name: A, value: "1"}
    - {name: EMPTY}
    ports: [{containerPort: 8080}, {containerPort: 53, protocol: UDP, name: dns}]
    resources:
      requests: {cpu: 500m, memory: 512Mi}
      limits: {cpu: "1.5", memory: 1Gi}
  - name: sidecar
    image: busybox
    resources:
      limits: {cpu: 250m, memory: 1000M}`, []want{{kind: "VirtualMachine", path: "/dc1/vm/dev/web", labels: map[string]string{"app": "web", "tier": "front"}, spec: api.VMSpec{
			Pool: root + "/dev", NumCPU: 2, MemoryMB: 1024 + 954,
			CPU:        alloc(500+250, 1500+250), // the sidecar's request defaults to its limit
			Mem:        alloc(512+954, 1024+954),
			PowerState: "poweredOn", RestartPolicy: "Never",
			Containers: []api.Container{
				{Name: "app", Image: "registry.local/app:1.2", Command: []string{"/app"}, Args: []string{"--port", "8080"}, WorkingDir: "/srv",
					Env:   []api.EnvVar{{Name: "A", Value: "1"}, {Name: "EMPTY"}},
					Ports: []api.Port{{ContainerPort: 8080}, {ContainerPort: 53, Protocol: "UDP", Name: "dns"}}},
				{Name: "sidecar", Image: "busybox"},
			},
		}}}},
		{"pod: one container without limits makes the pod unlimited; sizing from requests", `
apiVersion: v1
kind: Pod
metadata: {name: w2, namespace: dev}
spec:
  containers:
  - name: a
    image: a
    resources: {requests: {cpu: 2.5, memory: 128974848}, limits: {cpu: 3}}
  - name: b
    image: b
    resources: {requests: {cpu: "1"}}`, []want{{kind: "VirtualMachine", path: "/dc1/vm/dev/w2", spec: api.VMSpec{
			Pool: root + "/dev", NumCPU: 4, MemoryMB: 123,
			CPU: alloc(3500, -1), Mem: alloc(123, -1), PowerState: "poweredOn", RestartPolicy: "Always",
			Containers: []api.Container{{Name: "a", Image: "a"}, {Name: "b", Image: "b"}},
		}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkItems(t, decodeOK(t, tt.in, ctx), tt.want)
		})
	}
}

func TestMultiDocument(t *testing.T) {
	ns := func(name string) string {
		return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n"
	}
	tests := []struct {
		name  string
		in    string
		names []string
	}{
		{"single", ns("a"), []string{"a"}},
		{"leading separator and comments", "# header comment\n---\n" + ns("a") + "--- # second\n" + ns("b"), []string{"a", "b"}},
		{"empty and comment-only documents are skipped", "---\n---\n# nothing here\n---\n" + ns("a") + "---\n\n---\n" + ns("b") + "---\n", []string{"a", "b"}},
		{"explicit null document", "~\n---\n" + ns("a"), []string{"a"}},
		{"separator with trailing spaces and CRLF", strings.ReplaceAll(ns("a")+"---   \n"+ns("b"), "\n", "\r\n"), []string{"a", "b"}},
		{"no trailing newline", ns("a") + "---\n" + strings.TrimSuffix(ns("b"), "\n"), []string{"a", "b"}},
		{"byte-order mark", "\xef\xbb\xbf" + ns("a"), []string{"a"}},
		{"indented --- inside a block scalar is content", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: i\n    args:\n    - |\n      ---\n      x\n---\n" + ns("b"), []string{"p", "b"}},
		{"one JSON object", `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}`, []string{"a"}},
		{"JSON stream with tabs", "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Namespace\",\n\t\"metadata\": {\"name\": \"a\"}\n}\n{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"b\"}}", []string{"a", "b"}},
		{"JSON and YAML documents mixed", `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}` + "\n---\n" + ns("b"), []string{"a", "b"}},
		{"YAML flow mapping", "{apiVersion: v1, kind: Namespace, metadata: {name: a}}\n---\n" + ns("b"), []string{"a", "b"}},
		{"nothing at all", "", nil},
		{"only comments", "# a\n# b\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items := decodeOK(t, tt.in, ctx)
			var names []string
			for i, it := range items {
				names = append(names, it.Name)
				if it.Doc != i+1 {
					t.Errorf("item %d has Doc %d, want %d", i, it.Doc, i+1)
				}
			}
			if !reflect.DeepEqual(names, tt.names) {
				t.Errorf("names %v, want %v", names, tt.names)
			}
		})
	}
}

func TestItemFields(t *testing.T) {
	items := decodeOK(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: podsphere.io/v1\nkind: ResourcePool\nmetadata: {path: /dc1/host/c1/Resources/b}\n", ctx)
	got := []Item{items[0], items[1]}
	got[0].Object, got[1].Object = nil, nil
	want := []Item{
		{Doc: 1, APIVersion: "v1", Kind: "Namespace", Name: "a"},
		{Doc: 2, APIVersion: "podsphere.io/v1", Kind: "ResourcePool", Name: "/dc1/host/c1/Resources/b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("items %+v, want %+v", got, want)
	}
	if s := items[0].String(); s != `document 1 (Namespace "a")` {
		t.Errorf("String() = %q", s)
	}
	if MergeQuota.String() != "quota" || MergeReplace.String() != "replace" {
		t.Errorf("Merge strings: %v %v", MergeReplace, MergeQuota)
	}
}

const podHead = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - name: c\n    image: i\n"

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ctx  Context
		want string // the whole message
	}{
		{"bad cpu quantity", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n" + podHead + "    resources: {limits: {cpu: abc}}\n", ctx,
			`document 2 (Pod "web"): spec.containers[0].resources.limits.cpu: "abc" is not a quantity: want a number such as 500m, 2, 1.5, 512Mi or 1G`},
		{"negative memory", podHead + "    resources: {requests: {memory: -1Gi}}\n", ctx,
			`document 1 (Pod "web"): spec.containers[0].resources.requests.memory: "-1Gi" is negative`},
		{"request above limit", podHead + "    resources: {requests: {cpu: 2}, limits: {cpu: 1}}\n", ctx,
			`document 1 (Pod "web"): spec.containers[0].resources.requests.cpu: 2 is above limits.cpu 1`},
		{"unsupported resource", podHead + "    resources: {limits: {nvidia.com/gpu: 1}}\n", ctx,
			`document 1 (Pod "web"): spec.containers[0].resources.limits["nvidia.com/gpu"]: not supported (cpu and memory are)`},
		{"env valueFrom", podHead + "    env: [{name: A, valueFrom: {secretKeyRef: {name: s, key: k}}}]\n", ctx,
			`document 1 (Pod "web"): spec.containers[0].env[0].valueFrom: not supported yet: set value (ConfigMaps and Secrets arrive with storage)`},
		{"unknown container field", podHead + "    lifecycle: {preStop: {exec: {command: [x]}}}\n", ctx,
			`document 1 (Pod "web"): spec.containers[0].lifecycle: unknown field (known fields: args, command, env, image, imagePullPolicy, livenessProbe, name, ports, readinessProbe, resources, securityContext, startupProbe, workingDir)`},
		{"unknown pod spec field", podHead + "  tolerations: [{key: k, operator: Exists}]\n", ctx,
			`document 1 (Pod "web"): spec.tolerations: unknown field (known fields: affinity, containers, dnsConfig, dnsPolicy, hostname, initContainers, nodeName, nodeSelector, restartPolicy, securityContext, terminationGracePeriodSeconds)`},
		{"unknown top-level field", "apiVersion: v1\nkind: Namespace\nmetdata: {name: a}\n", ctx,
			`document 1 (Namespace): metdata: unknown field (known fields: apiVersion, kind, metadata, spec)`},
		{"metadata fields that change meaning are not ignored", "apiVersion: v1\nkind: Namespace\nmetadata: {generateName: a-}\n", ctx,
			`document 1 (Namespace): metadata.generateName: unknown field (known fields: labels, name, namespace)`},
		{"namespace on a podsphere kind", "apiVersion: podsphere.io/v1\nkind: Datacenter\nmetadata: {name: a, namespace: x}\n", ctx,
			`document 1 (Datacenter "a"): metadata.namespace: unknown field (known fields: labels, name, path)`},
		{"unknown allocation field", "apiVersion: podsphere.io/v1\nkind: ResourcePool\nmetadata: {name: dev}\nspec: {cpu: {reservaton: 5}}\n", ctx,
			`document 1 (ResourcePool "dev"): spec.cpu.reservaton: unknown field (known fields: expandable, limit, reservation, shares)`},
		{"wrong type", "apiVersion: podsphere.io/v1\nkind: ResourcePool\nmetadata: {name: dev}\nspec: {cpu: {limit: unlimited}}\n", ctx,
			`document 1 (ResourcePool "dev"): spec.cpu.limit: want an integer, got "unlimited"`},
		{"float for an integer", "apiVersion: podsphere.io/v1\nkind: VirtualMachine\nmetadata: {name: v}\nspec: {numCPU: 1.5}\n", ctx,
			`document 1 (VirtualMachine "v"): spec.numCPU: 1.5 is not an integer in range`},
		{"YAML 1.1 boolean where a string goes", podHead + "    env: [{name: A, value: yes}]\n", ctx,
			`document 1 (Pod "web"): spec.containers[0].env[0].value: want a string, got true`},
		{"label value not a string", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {version: 2}}\n", ctx,
			`document 1 (Namespace "a"): metadata.labels.version: want a string, got 2`},
		{"duplicate key", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n  name: c\n", ctx,
			`document 2: line 9: key "name" already set in map`},
		{"duplicate key in JSON", `{"apiVersion": "v1", "kind": "Namespace", "kind": "Pod"}`, ctx,
			`document 1: line 1: key "kind" already set in map`},
		{"YAML syntax error", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\n kind: x\n", ctx,
			`document 2: line 6: mapping values are not allowed in this context`},
		{"separator with content", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n--- {a: b}\n", ctx,
			`line 4: "--- {a: b}": a document separator must stand alone on its line (or be followed by a comment)`},
		{"not a mapping", "- a\n- b\n", ctx, `document 1: want a mapping with apiVersion and kind, got a list`},
		{"missing kind", "apiVersion: v1\nmetadata: {name: a}\n", ctx, `document 1: kind is missing`},
		{"missing apiVersion", "kind: Pod\n", ctx, `document 1: apiVersion is missing`},
		{"kind not a string", "apiVersion: v1\nkind: [Pod]\n", ctx, `document 1: kind: want a non-empty string, got a list`},
		{"recognised kind", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n", ctx,
			`document 2: kind ConfigMap (v1) is recognised but not supported yet`},
		{"StatefulSet", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\n", ctx,
			`document 1: kind StatefulSet (apps/v1) is recognised but not supported yet: a StatefulSet's members keep stable names and storage, and stable storage arrives with podsphere's storage work (a Deployment runs stateless members)`},
		{"CronJob", "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly}\n", ctx,
			`document 1: kind CronJob (batch/v1) is recognised but not supported yet: podsphere has no schedules yet (apply the jobTemplate as a Job)`},
		{"old apps version", "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: web}\n", ctx,
			`document 1: kind Deployment takes apiVersion apps/v1, not "extensions/v1beta1"`},
		{"autoscaling beta", "apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\n", ctx,
			`document 1: kind HorizontalPodAutoscaler takes apiVersion autoscaling/v2 or autoscaling/v1, not "autoscaling/v2beta2"`},
		{"workload kind as podsphere.io/v1", "apiVersion: podsphere.io/v1\nkind: Deployment\nmetadata: {name: web}\n", ctx,
			`document 1 (Deployment "web"): unknown kind "Deployment" for apiVersion podsphere.io/v1 (its kinds: Datacenter, Cluster, ResourcePool, VirtualMachine; Kubernetes' Deployment uses apiVersion apps/v1)`},
		{"unknown kind", "apiVersion: v1\nkind: Foo\n", ctx,
			`document 1: unknown kind "Foo" with apiVersion "v1": apply takes podsphere.io/v1 kinds Datacenter, Cluster, ResourcePool, VirtualMachine, and Kubernetes kinds v1 Namespace, ResourceQuota, Pod, Service; apps/v1 Deployment, ReplicaSet, DaemonSet; batch/v1 Job; autoscaling/v2 or autoscaling/v1 HorizontalPodAutoscaler; networking.k8s.io/v1 Ingress`},
		{"known kind, wrong apiVersion", "apiVersion: apps/v1\nkind: Pod\n", ctx,
			`document 1: kind Pod takes apiVersion v1, not "apps/v1"`},
		{"unknown podsphere version", "apiVersion: podsphere.io/v2\nkind: Datacenter\n", ctx,
			`document 1: unknown kind "Datacenter" with apiVersion "podsphere.io/v2": apply takes podsphere.io/v1 kinds Datacenter, Cluster, ResourcePool, VirtualMachine, and Kubernetes kinds v1 Namespace, ResourceQuota, Pod, Service; apps/v1 Deployment, ReplicaSet, DaemonSet; batch/v1 Job; autoscaling/v2 or autoscaling/v1 HorizontalPodAutoscaler; networking.k8s.io/v1 Ingress`},
		{"unknown podsphere kind", "apiVersion: podsphere.io/v1\nkind: Pod\nmetadata: {name: p}\n", ctx,
			`document 1 (Pod "p"): unknown kind "Pod" for apiVersion podsphere.io/v1 (its kinds: Datacenter, Cluster, ResourcePool, VirtualMachine; Kubernetes' Pod uses apiVersion v1)`},
		{"unknown podsphere kind, not a Kubernetes one", "apiVersion: podsphere.io/v1\nkind: Folder\nmetadata: {name: f}\n", ctx,
			`document 1 (Folder "f"): unknown kind "Folder" for apiVersion podsphere.io/v1 (its kinds: Datacenter, Cluster, ResourcePool, VirtualMachine; Kubernetes kinds use their own apiVersions)`},
		{"HostSystem", "apiVersion: podsphere.io/v1\nkind: HostSystem\nmetadata: {path: /dc1/host/c1/h1}\n", ctx,
			`document 1 (HostSystem "/dc1/host/c1/h1"): HostSystem objects are created by hosts joining, not by apply`},
		{"no context for a Pod", podHead, Context{},
			`document 1 (Pod "web"): PSC_DATACENTER and PSC_CLUSTER are not set: a Kubernetes Pod is placed in PSC_CLUSTER of PSC_DATACENTER`},
		{"no cluster for a Namespace", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n", Context{Datacenter: "dc1"},
			`document 1 (Namespace "a"): PSC_CLUSTER is not set: a Kubernetes Namespace is placed in PSC_CLUSTER of PSC_DATACENTER`},
		{"bad context name", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n", Context{Datacenter: "dc 1", Cluster: "c1"},
			`document 1 (Namespace "a"): PSC_DATACENTER: name "dc 1": character ' ' at 2 is not allowed (letters, digits, and - _ . after the first)`},
		{"no context for a pool by name", "apiVersion: podsphere.io/v1\nkind: ResourcePool\nmetadata: {name: dev}\n", Context{Datacenter: "dc1"},
			`document 1 (ResourcePool "dev"): PSC_CLUSTER is not set: metadata.name places a ResourcePool under PSC_CLUSTER's root pool (or give metadata.path)`},
		{"no cluster for a VM's default pool", "apiVersion: podsphere.io/v1\nkind: VirtualMachine\nmetadata: {path: /dc1/vm/v}\n", Context{},
			`document 1 (VirtualMachine "/dc1/vm/v"): spec.pool: PSC_CLUSTER is not set: give an absolute pool path (/DC/host/CLUSTER/Resources/...) or set PSC_CLUSTER`},
		{"path of the wrong kind", "apiVersion: podsphere.io/v1\nkind: ResourcePool\nmetadata: {path: /dc1/vm/x}\n", ctx,
			`document 1 (ResourcePool "/dc1/vm/x"): metadata.path: /dc1/vm/x is a VirtualMachine path, not a ResourcePool path`},
		{"invalid path", "apiVersion: podsphere.io/v1\nkind: VirtualMachine\nmetadata: {path: /dc1/vms/x}\n", ctx,
			`document 1 (VirtualMachine "/dc1/vms/x"): metadata.path: path "/dc1/vms/x": unknown folder "vms" (want host, vm, replicaset, deployment, daemonset, job, hpa, service, ingress or drill)`},
		{"root pool", "apiVersion: podsphere.io/v1\nkind: ResourcePool\nmetadata: {path: /dc1/host/c1/Resources}\n", ctx,
			`document 1 (ResourcePool "/dc1/host/c1/Resources"): metadata: /dc1/host/c1/Resources is the cluster's root pool, which is made with the cluster and sized by its hosts`},
		{"path and name", "apiVersion: podsphere.io/v1\nkind: Datacenter\nmetadata: {path: /a, name: a}\n", ctx,
			`document 1 (Datacenter "a"): metadata: set path or name, not both`},
		{"neither path nor name", "apiVersion: podsphere.io/v1\nkind: Datacenter\nmetadata: {labels: {a: b}}\n", ctx,
			`document 1 (Datacenter): metadata: path or name is required`},
		{"name that is a path", "apiVersion: podsphere.io/v1\nkind: VirtualMachine\nmetadata: {name: /dc1/vm/x}\n", ctx,
			`document 1 (VirtualMachine "/dc1/vm/x"): metadata.name: "/dc1/vm/x" is a path: set it as metadata.path`},
		{"bad pool name element", "apiVersion: podsphere.io/v1\nkind: ResourcePool\nmetadata: {name: dev//web}\n", ctx,
			`document 1 (ResourcePool "dev//web"): metadata.name: name is empty`},
		{"VM pool in another datacenter", "apiVersion: podsphere.io/v1\nkind: VirtualMachine\nmetadata: {name: v}\nspec: {pool: /dc2/host/c1/Resources}\n", ctx,
			`document 1 (VirtualMachine "v"): spec.pool: /dc2/host/c1/Resources is in datacenter dc2, but the VM is in dc1`},
		{"limit below reservation", "apiVersion: podsphere.io/v1\nkind: ResourcePool\nmetadata: {name: dev}\nspec: {mem: {reservation: 10, limit: 5}}\n", ctx,
			`document 1 (ResourcePool "dev"): spec.mem.limit: 5 is below spec.mem.reservation 10`},
		{"bad shares", "apiVersion: podsphere.io/v1\nkind: ResourcePool\nmetadata: {name: dev}\nspec: {cpu: {shares: {level: lots}}}\n", ctx,
			`document 1 (ResourcePool "dev"): spec.cpu.shares.level: "lots" is not low, normal, high or custom`},
		{"shares value without custom", "apiVersion: podsphere.io/v1\nkind: ResourcePool\nmetadata: {name: dev}\nspec: {cpu: {shares: {value: 5}}}\n", ctx,
			`document 1 (ResourcePool "dev"): spec.cpu.shares.value: is only for level custom (level is "normal")`},
		{"bad quota", "apiVersion: podsphere.io/v1\nkind: ResourcePool\nmetadata: {name: dev}\nspec: {quota: {vms: -2}}\n", ctx,
			`document 1 (ResourcePool "dev"): spec.quota.vms: -2 is invalid: use -1 for no limit or a value >= 0`},
		{"bad drs mode", "apiVersion: podsphere.io/v1\nkind: Cluster\nmetadata: {name: c}\nspec: {drs: {mode: auto}}\n", ctx,
			`document 1 (Cluster "c"): spec.drs.mode: "auto" is not manual, partiallyAutomated or fullyAutomated`},
		{"bad power state", "apiVersion: podsphere.io/v1\nkind: VirtualMachine\nmetadata: {name: v}\nspec: {powerState: on}\n", ctx,
			`document 1 (VirtualMachine "v"): spec.powerState: want a string, got true`},
		{"bad restart priority", "apiVersion: podsphere.io/v1\nkind: VirtualMachine\nmetadata: {name: v}\nspec: {ha: {restartPriority: urgent}}\n", ctx,
			`document 1 (VirtualMachine "v"): spec.ha.restartPriority: "urgent" is not one of disabled, lowest, low, medium, high, highest`},
		{"vm affinity weight", "apiVersion: podsphere.io/v1\nkind: VirtualMachine\nmetadata: {name: v}\nspec: {affinity: {vmAffinity: [{selector: {matchLabels: {a: b}}}]}}\n", ctx,
			`document 1 (VirtualMachine "v"): spec.affinity.vmAffinity[0].weight: 0 is not a weight from 1 to 100`},
		{"vm host selector operator", "apiVersion: podsphere.io/v1\nkind: VirtualMachine\nmetadata: {name: v}\nspec: {affinity: {hostRequired: [{matchExpressions: [{key: a, operator: Lt, values: ['1']}]}]}}\n", ctx,
			`document 1 (VirtualMachine "v"): spec.affinity.hostRequired[0].matchExpressions[0].operator: "Lt" is not supported (In, NotIn, Exists, DoesNotExist are)`},
		{"vm init container probe", "apiVersion: podsphere.io/v1\nkind: VirtualMachine\nmetadata: {name: v}\nspec: {initContainers: [{name: i, image: i, livenessProbe: {exec: {command: [x]}}}]}\n", ctx,
			`document 1 (VirtualMachine "v"): spec.initContainers[0]: init containers run to completion and take no probes (as in Kubernetes)`},
		{"pod without containers", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n", ctx,
			`document 1 (Pod "p"): spec.containers: a Pod needs at least one container`},
		{"pod without name", "apiVersion: v1\nkind: Pod\nmetadata: {namespace: dev}\n", ctx,
			`document 1 (Pod): metadata.name: is required`},
		{"pod name too long for vSphere", "apiVersion: v1\nkind: Pod\nmetadata: {name: " + strings.Repeat("a", 81) + "}\n", ctx,
			`document 1 (Pod "` + strings.Repeat("a", 81) + `"): metadata.name: name "` + strings.Repeat("a", 81) + `" is longer than 80 characters`},
		{"container without image", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n", ctx,
			`document 1 (Pod "p"): spec.containers[0].image: is required`},
		{"duplicate container names", podHead + "  - {name: c, image: j}\n", ctx,
			`document 1 (Pod "web"): spec.containers[1].name: "c" is used by another container`},
		{"bad port", podHead + "    ports: [{containerPort: 70000}]\n", ctx,
			`document 1 (Pod "web"): spec.containers[0].ports[0].containerPort: 70000 is not a port number (1-65535)`},
		{"hostPort", podHead + "    ports: [{containerPort: 80, hostPort: 80}]\n", ctx,
			`document 1 (Pod "web"): spec.containers[0].ports[0].hostPort: unknown field (known fields: containerPort, name, protocol)`},
		{"SCTP", podHead + "    ports: [{containerPort: 80, protocol: SCTP}]\n", ctx,
			`document 1 (Pod "web"): spec.containers[0].ports[0].protocol: "SCTP" is not TCP or UDP`},
		{"bad restart policy", podHead + "  restartPolicy: Sometimes\n", ctx,
			`document 1 (Pod "web"): spec.restartPolicy: "Sometimes" is not Always, OnFailure or Never`},
		{"bad namespace name", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: -x}\nspec: {containers: [{name: c, image: i}]}\n", ctx,
			`document 1 (Pod "p"): metadata.namespace: name "-x": character '-' at 0 is not allowed (letters, digits, and - _ . after the first)`},
		{"namespace default", "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n", ctx,
			`document 1 (Namespace "default"): metadata.name: namespace "default" is the cluster's root pool /dc1/host/c1/Resources, which is made with the cluster; leave this document out`},
		{"quota key alias used twice", "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec: {hard: {pods: 1, count/pods: 2}}\n", ctx,
			`document 1 (ResourceQuota "q"): spec.hard["count/pods"]: sets the same limit as pods; keep one`},
		{"unknown quota key", "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec: {hard: {requests.cpu: 1}}\n", ctx,
			`document 1 (ResourceQuota "q"): spec.hard["requests.cpu"]: not supported (pool quotas take pods, count/pods, count/replicasets.apps, services, count/services, persistentvolumeclaims, count/persistentvolumeclaims, configmaps, count/configmaps, secrets, count/secrets, requests.storage, limits.cpu, cpu, limits.memory, memory)`},
		{"fractional count", "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec: {hard: {pods: 1.5}}\n", ctx,
			`document 1 (ResourceQuota "q"): spec.hard.pods: "1.5" is not a whole number`},
		{"quota scopes", "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec: {scopes: [BestEffort]}\n", ctx,
			`document 1 (ResourceQuota "q"): spec.scopes: unknown field (known fields: hard)`},
		{"quantity of the wrong type", podHead + "    resources: {limits: {cpu: [1]}}\n", ctx,
			`document 1 (Pod "web"): spec.containers[0].resources.limits.cpu: want a quantity such as 500m, 2 or 512Mi, got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.in), tt.ctx)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %q\nwant %q", err.Error(), tt.want)
			}
			if !errors.Is(err, api.ErrInvalid) {
				t.Errorf("error does not wrap api.ErrInvalid")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error is not a *manifest.Error")
			}
		})
	}
}

func TestErrorFields(t *testing.T) {
	_, err := Decode(strings.NewReader("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n"+podHead+"    resources: {limits: {cpu: abc}}\n"), ctx)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *Error", err)
	}
	if e.Doc != 2 || e.Kind != "Pod" || e.Name != "web" || e.Field != "spec.containers[0].resources.limits.cpu" {
		t.Errorf("error fields %+v", e)
	}
}

func TestSizeLimit(t *testing.T) {
	big := "# " + strings.Repeat("x", MaxStreamBytes) + "\n"
	_, err := Decode(strings.NewReader(big), ctx)
	if err == nil || err.Error() != "manifest is larger than 4 MiB; split it into several files" || !errors.Is(err, api.ErrInvalid) {
		t.Errorf("error %v", err)
	}
	// Just under the limit is fine.
	ok := "# " + strings.Repeat("x", MaxStreamBytes-3) + "\n"
	if _, err := Decode(strings.NewReader(ok), ctx); err != nil {
		t.Errorf("stream of %d bytes: %v", len(ok), err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestReadError(t *testing.T) {
	_, err := Decode(failingReader{}, ctx)
	if err == nil || err.Error() != "reading manifest: disk on fire" {
		t.Errorf("error %v", err)
	}
}

func TestPodSizingExtremes(t *testing.T) {
	tests := []struct {
		resources string
		numCPU    int
		memoryMB  int64
	}{
		{"{limits: {cpu: 0, memory: 0}}", 1, 1},
		{"{requests: {cpu: 1m}}", 1, 512},
		{"{requests: {cpu: 1001m}}", 2, 512},
		{"{limits: {cpu: 9e12}}", 9_000_000_000_000, 512},
		{"{requests: {memory: 1Ei}}", 1, 1 << 40},
	}
	for _, tt := range tests {
		items := decodeOK(t, podHead+"    resources: "+tt.resources+"\n", ctx)
		var s api.VMSpec
		if err := items[0].Object.DecodeSpec(&s); err != nil {
			t.Fatal(err)
		}
		if s.NumCPU != tt.numCPU || s.MemoryMB != tt.memoryMB {
			t.Errorf("%s: numCPU %d memoryMB %d, want %d %d", tt.resources, s.NumCPU, s.MemoryMB, tt.numCPU, tt.memoryMB)
		}
	}
}
