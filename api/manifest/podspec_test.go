package manifest

import (
	"os"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

func i64(v int64) *int64 { return &v }

// podFieldsFile is a Pod using every PodSpec field podsphere maps beyond
// containers and resources; podFieldsSpec is what it becomes.
const podFieldsFile = "testdata/k8s/pod.yaml"

var podFieldsSpec = api.VMSpec{
	Pool: "/dc1/host/c1/Resources/team-a", Host: "/dc1/host/c1/esx-01", Pinned: true,
	// The init container's 3 CPUs are more than the containers' 750m together.
	NumCPU: 3, MemoryMB: 160,
	CPU: alloc(3000, 3000), Mem: alloc(160, 160), PowerState: "poweredOn", RestartPolicy: "Always",
	InitContainers: []api.Container{{Name: "wait-db", Image: "busybox",
		Command: []string{"sh", "-c", "until nc -z db 5432; do sleep 1; done"}, RunAsUser: i64(1000)}},
	Containers: []api.Container{
		{Name: "app", Image: "nginx:1.27", ImagePullPolicy: "Always", Ports: []api.Port{{Name: "http", ContainerPort: 80}},
			RunAsUser: i64(1000), ReadOnlyRootFilesystem: true,
			LivenessProbe: &api.Probe{HTTPGet: &api.HTTPGetAction{Path: "/healthz", Port: api.Str("http"), Scheme: "HTTP",
				HTTPHeaders: []api.HTTPHeader{{Name: "X-Probe", Value: "live"}}},
				InitialDelaySeconds: 3, PeriodSeconds: 5, TimeoutSeconds: 2, FailureThreshold: 4},
			ReadinessProbe: &api.Probe{TCPSocket: &api.TCPSocketAction{Port: api.Int(80)}, SuccessThreshold: 2},
			StartupProbe:   &api.Probe{Exec: &api.ExecAction{Command: []string{"cat", "/tmp/started"}}, FailureThreshold: 30, PeriodSeconds: 1},
		},
		{Name: "sidecar", Image: "busybox", ImagePullPolicy: "IfNotPresent", RunAsUser: i64(0)},
	},
	HostSelector: map[string]string{"disktype": "ssd", "kubernetes.io/hostname": "esx-01"},
	Affinity: &api.Affinity{
		HostRequired: []api.LabelSelector{
			{MatchExpressions: []api.LabelSelectorRequirement{{Key: "zone", Operator: "In", Values: []string{"a", "b"}}, {Key: "gpu", Operator: "DoesNotExist"}}},
			{MatchExpressions: []api.LabelSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: "NotIn", Values: []string{"esx-03"}}}},
		},
		HostPreferred: []api.WeightedSelector{{Weight: 20, Selector: api.LabelSelector{
			MatchExpressions: []api.LabelSelectorRequirement{{Key: "rack", Operator: "Exists"}}}}},
		VMAffinity: []api.VMAffinityTerm{{Selector: api.LabelSelector{MatchLabels: map[string]string{"app": "cache"}}, Required: true}},
		VMAntiAffinity: []api.VMAffinityTerm{{Weight: 100, Selector: api.LabelSelector{
			MatchExpressions: []api.LabelSelectorRequirement{{Key: "app", Operator: "In", Values: []string{"web"}}}}}},
	},
	TerminationGracePeriodSeconds: i64(45),
	Hostname:                      "web-0",
}

func TestPodFields(t *testing.T) {
	checkItems(t, decodeOK(t, readFile(t, podFieldsFile), ctx), []want{{kind: "VirtualMachine", path: "/dc1/vm/team-a/web",
		labels: map[string]string{"app": "web"}, spec: podFieldsSpec}})
}

func TestPodSizingWithInitContainers(t *testing.T) {
	tests := []struct {
		name     string
		spec     string
		numCPU   int
		memoryMB int64
		cpu, mem api.Allocation
	}{
		{"containers outweigh the init container", `
  initContainers: [{name: i, image: i, resources: {limits: {cpu: 1, memory: 100Mi}}}]
  containers:
  - {name: a, image: a, resources: {limits: {cpu: 1, memory: 100Mi}}}
  - {name: b, image: b, resources: {limits: {cpu: 1, memory: 100Mi}}}`, 2, 200, alloc(2000, 2000), alloc(200, 200)},
		{"an init container without a limit leaves the Pod unlimited", `
  initContainers: [{name: i, image: i}]
  containers: [{name: a, image: a, resources: {limits: {cpu: 1, memory: 100Mi}}}]`, 1, 100, alloc(1000, -1), alloc(100, -1)},
		{"the largest init container's request counts", `
  initContainers:
  - {name: i, image: i, resources: {requests: {cpu: 1500m, memory: 300Mi}}}
  - {name: j, image: j, resources: {requests: {cpu: 500m, memory: 400Mi}}}
  containers: [{name: a, image: a, resources: {requests: {cpu: 1, memory: 100Mi}}}]`, 2, 400, alloc(1500, -1), alloc(400, -1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items := decodeOK(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:"+tt.spec+"\n", ctx)
			var s api.VMSpec
			if err := items[0].Object.DecodeSpec(&s); err != nil {
				t.Fatal(err)
			}
			if s.NumCPU != tt.numCPU || s.MemoryMB != tt.memoryMB || s.CPU != tt.cpu || s.Mem != tt.mem {
				t.Errorf("numCPU %d memoryMB %d cpu %+v mem %+v, want %d %d %+v %+v", s.NumCPU, s.MemoryMB, s.CPU, s.Mem, tt.numCPU, tt.memoryMB, tt.cpu, tt.mem)
			}
		})
	}
}

// podSpecErrors are refusals of PodSpec fields, written as the lines that
// follow "spec:" of a Pod named web in namespace team-a, with the field
// the error names (relative to the Pod's spec) and the message.
var podSpecErrors = []struct {
	name, spec, field, msg string
}{
	{"volumes", "  containers: [{name: c, image: i}]\n  volumes: [{name: data, emptyDir: {}}]",
		"volumes", "not supported yet: volumes arrive with podsphere's storage work"},
	{"volumeMounts", "  containers: [{name: c, image: i, volumeMounts: [{name: data, mountPath: /data}]}]",
		"containers[0].volumeMounts", "not supported yet: volumes arrive with podsphere's storage work"},
	{"init container volumeMounts", "  containers: [{name: c, image: i}]\n  initContainers: [{name: d, image: i, volumeMounts: [{name: data, mountPath: /data}]}]",
		"initContainers[0].volumeMounts", "not supported yet: volumes arrive with podsphere's storage work"},
	{"grpc probe", "  containers: [{name: c, image: i, livenessProbe: {grpc: {port: 9000}}}]",
		"containers[0].livenessProbe.grpc", "not supported: use exec, httpGet or tcpSocket"},
	{"probe without action", "  containers: [{name: c, image: i, readinessProbe: {periodSeconds: 3}}]",
		"containers[0].readinessProbe", "needs one of exec, httpGet or tcpSocket"},
	{"probe with two actions", "  containers: [{name: c, image: i, readinessProbe: {exec: {command: [x]}, tcpSocket: {port: 80}}}]",
		"containers[0].readinessProbe", "takes only one of exec, httpGet and tcpSocket"},
	{"exec probe without command", "  containers: [{name: c, image: i, livenessProbe: {exec: {}}}]",
		"containers[0].livenessProbe.exec.command", "is required"},
	{"httpGet probe without port", "  containers: [{name: c, image: i, livenessProbe: {httpGet: {path: /}}}]",
		"containers[0].livenessProbe.httpGet.port", "is required"},
	{"probe port out of range", "  containers: [{name: c, image: i, livenessProbe: {tcpSocket: {port: 70000}}}]",
		"containers[0].livenessProbe.tcpSocket.port", "70000 is not a port number (1-65535)"},
	{"probe port not an integer", "  containers: [{name: c, image: i, livenessProbe: {tcpSocket: {port: 80.5}}}]",
		"containers[0].livenessProbe.tcpSocket.port", "80.5 is not an integer in range"},
	{"probe port of the wrong type", "  containers: [{name: c, image: i, livenessProbe: {tcpSocket: {port: [80]}}}]",
		"containers[0].livenessProbe.tcpSocket.port", "want a number or a string, got a list"},
	{"named probe port that is not the container's", "  containers: [{name: c, image: i, ports: [{name: web, containerPort: 80}], livenessProbe: {httpGet: {port: http}}}]",
		"containers[0].livenessProbe.httpGet.port", `"http" is not the name of one of the container's ports (web)`},
	{"named probe port, no named ports", "  containers: [{name: c, image: i, startupProbe: {tcpSocket: {port: http}}}]",
		"containers[0].startupProbe.tcpSocket.port", `"http": the container names no ports; give a number`},
	{"probe scheme", "  containers: [{name: c, image: i, livenessProbe: {httpGet: {port: 80, scheme: FTP}}}]",
		"containers[0].livenessProbe.httpGet.scheme", `"FTP" is not HTTP or HTTPS`},
	{"probe header without name", "  containers: [{name: c, image: i, livenessProbe: {httpGet: {port: 80, httpHeaders: [{value: x}]}}}]",
		"containers[0].livenessProbe.httpGet.httpHeaders[0].name", "is required"},
	{"negative probe timing", "  containers: [{name: c, image: i, livenessProbe: {tcpSocket: {port: 80}, periodSeconds: -1}}]",
		"containers[0].livenessProbe.periodSeconds", "-1 is negative"},
	{"liveness successThreshold", "  containers: [{name: c, image: i, livenessProbe: {tcpSocket: {port: 80}, successThreshold: 2}}]",
		"containers[0].livenessProbe.successThreshold", "2: must be 1 for liveness and startup probes"},
	{"probe-level terminationGracePeriodSeconds", "  containers: [{name: c, image: i, livenessProbe: {tcpSocket: {port: 80}, terminationGracePeriodSeconds: 5}}]",
		"containers[0].livenessProbe.terminationGracePeriodSeconds", "unknown field (known fields: exec, failureThreshold, httpGet, initialDelaySeconds, periodSeconds, successThreshold, tcpSocket, timeoutSeconds)"},
	{"init container probe", "  containers: [{name: c, image: i}]\n  initContainers: [{name: d, image: i, readinessProbe: {tcpSocket: {port: 80}}}]",
		"initContainers[0].readinessProbe", "init containers run to completion and take no probes (as in Kubernetes)"},
	{"init container named like a container", "  containers: [{name: c, image: i}]\n  initContainers: [{name: c, image: i}]",
		"containers[0].name", `"c" is used by another container`},
	{"init container without image", "  containers: [{name: c, image: i}]\n  initContainers: [{name: d}]",
		"initContainers[0].image", "is required"},
	{"init container resources", "  containers: [{name: c, image: i}]\n  initContainers: [{name: d, image: i, resources: {limits: {cpu: lots}}}]",
		"initContainers[0].resources.limits.cpu", `"lots" is not a quantity: want a number such as 500m, 2, 1.5, 512Mi or 1G`},
	{"imagePullPolicy", "  containers: [{name: c, image: i, imagePullPolicy: Sometimes}]",
		"containers[0].imagePullPolicy", `"Sometimes" is not IfNotPresent, Always or Never`},
	{"pod securityContext field", "  containers: [{name: c, image: i}]\n  securityContext: {runAsUser: 1000, fsGroup: 2000}",
		"securityContext.fsGroup", "unknown field (known fields: runAsUser)"},
	{"pod runAsNonRoot", "  containers: [{name: c, image: i}]\n  securityContext: {runAsNonRoot: true}",
		"securityContext.runAsNonRoot", "unknown field (known fields: runAsUser)"},
	{"container securityContext field", "  containers: [{name: c, image: i, securityContext: {allowPrivilegeEscalation: false}}]",
		"containers[0].securityContext.allowPrivilegeEscalation", "unknown field (known fields: readOnlyRootFilesystem, runAsUser)"},
	{"container capabilities", "  containers: [{name: c, image: i, securityContext: {capabilities: {drop: [ALL]}}}]",
		"containers[0].securityContext.capabilities", "unknown field (known fields: readOnlyRootFilesystem, runAsUser)"},
	{"negative pod runAsUser", "  containers: [{name: c, image: i}]\n  securityContext: {runAsUser: -1}",
		"securityContext.runAsUser", "-1 is negative"},
	{"negative container runAsUser", "  containers: [{name: c, image: i, securityContext: {runAsUser: -5}}]",
		"containers[0].securityContext.runAsUser", "-5 is negative"},
	{"nodeName not a host name", "  containers: [{name: c, image: i}]\n  nodeName: esx/01",
		"nodeName", `name "esx/01": character '/' at 3 is not allowed (letters, digits, and - _ . after the first)`},
	{"nodeSelector value not a string", "  containers: [{name: c, image: i}]\n  nodeSelector: {ssd: true}",
		"nodeSelector.ssd", "want a string, got true"},
	{"hostname", "  containers: [{name: c, image: i}]\n  hostname: Web_0",
		"hostname", `"Web_0" is not a DNS label (lower-case letters, digits and - inside)`},
	{"dnsPolicy", "  containers: [{name: c, image: i}]\n  dnsPolicy: ClusterLast",
		"dnsPolicy", `"ClusterLast" is not one of ClusterFirst, Default, None`},
	{"dnsPolicy None without nameservers", "  containers: [{name: c, image: i}]\n  dnsPolicy: None\n  dnsConfig: {searches: [corp.example]}",
		"dnsConfig.nameservers", "dnsPolicy None needs at least one nameserver in dnsConfig"},
	{"dnsConfig nameserver", "  containers: [{name: c, image: i}]\n  dnsConfig: {nameservers: [10.0.0.1, dns.corp]}",
		"dnsConfig.nameservers[1]", `"dns.corp" is not an IP address`},
	{"dnsConfig four nameservers", "  containers: [{name: c, image: i}]\n  dnsConfig: {nameservers: [10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4]}",
		"dnsConfig.nameservers", "4 given, at most 3"},
	{"dnsConfig search", "  containers: [{name: c, image: i}]\n  dnsConfig: {searches: [corp_example]}",
		"dnsConfig.searches[0]", `"corp_example" is not a DNS name (lowercase labels of letters, digits and '-', dot-separated)`},
	{"dnsConfig option", "  containers: [{name: c, image: i}]\n  dnsConfig: {options: [{value: '2'}]}",
		"dnsConfig.options[0].name", `"" is not a resolv.conf option name`},
	{"negative grace period", "  containers: [{name: c, image: i}]\n  terminationGracePeriodSeconds: -1",
		"terminationGracePeriodSeconds", "-1 is negative"},
	{"matchFields", "  containers: [{name: c, image: i}]\n  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchFields: [{key: metadata.name, operator: In, values: [esx-01]}]}]}}}",
		"affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields", "not supported: select hosts by label with matchExpressions"},
	{"no node selector terms", "  containers: [{name: c, image: i}]\n  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: []}}}",
		"affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms", "needs at least one term (the terms are ORed)"},
	{"empty node selector term", "  containers: [{name: c, image: i}]\n  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{}]}}}",
		"affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions", "is required: a term without expressions matches no host"},
	{"Gt", "  containers: [{name: c, image: i}]\n  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: cores, operator: Gt, values: ['8']}]}]}}}",
		"affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator", `"Gt" is not supported (In, NotIn, Exists, DoesNotExist are)`},
	{"In without values", "  containers: [{name: c, image: i}]\n  affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 1, preference: {matchExpressions: [{key: zone, operator: In}]}}]}}",
		"affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[0].values", "operator In needs at least one value"},
	{"Exists with values", "  containers: [{name: c, image: i}]\n  affinity: {podAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: kubernetes.io/hostname, labelSelector: {matchExpressions: [{key: app, operator: Exists, values: [x]}]}}]}}",
		"affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchExpressions[0].values", "operator Exists takes no values"},
	{"preferred weight", "  containers: [{name: c, image: i}]\n  affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 0, preference: {matchExpressions: [{key: zone, operator: Exists}]}}]}}",
		"affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight", "0 is not a weight from 1 to 100"},
	{"zone topology", "  containers: [{name: c, image: i}]\n  affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: topology.kubernetes.io/zone, labelSelector: {matchLabels: {app: web}}}]}}",
		"affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey", `"topology.kubernetes.io/zone" is not supported: podsphere's only topology is the host (kubernetes.io/hostname)`},
	{"no topology", "  containers: [{name: c, image: i}]\n  affinity: {podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 5, podAffinityTerm: {labelSelector: {matchLabels: {app: web}}}}]}}",
		"affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey", "is required (podsphere takes kubernetes.io/hostname: the same host)"},
	{"other namespace", "  containers: [{name: c, image: i}]\n  affinity: {podAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app: db}}, namespaces: [team-a, team-b]}]}}",
		"affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].namespaces[1]", `"team-b": terms select VMs of the Pod's own namespace (team-a) only`},
	{"every namespace", "  containers: [{name: c, image: i}]\n  affinity: {podAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app: db}}, namespaceSelector: {}}]}}",
		"affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].namespaceSelector", "terms select VMs of the Pod's own namespace only: leave it out, or give matchLabels {kubernetes.io/metadata.name: team-a}"},
	{"pod affinity without selector", "  containers: [{name: c, image: i}]\n  affinity: {podAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: kubernetes.io/hostname}]}}",
		"affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector", "is required"},
	{"matchLabelKeys", "  containers: [{name: c, image: i}]\n  affinity: {podAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: kubernetes.io/hostname, labelSelector: {}, matchLabelKeys: [pod-template-hash]}]}}",
		"affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].matchLabelKeys", "unknown field (known fields: labelSelector, namespaceSelector, namespaces, topologyKey)"},
	{"unknown affinity", "  containers: [{name: c, image: i}]\n  affinity: {nodeAfinity: {}}",
		"affinity.nodeAfinity", "unknown field (known fields: nodeAffinity, podAffinity, podAntiAffinity)"},
}

func TestPodSpecErrors(t *testing.T) {
	for _, tt := range podSpecErrors {
		t.Run(tt.name, func(t *testing.T) {
			in := "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: team-a}\nspec:\n" + tt.spec + "\n"
			want := `document 1 (Pod "web"): spec.` + tt.field + ": " + tt.msg
			_, err := Decode(strings.NewReader(in), ctx)
			if err == nil || err.Error() != want {
				t.Errorf("error\n got %v\nwant %s", err, want)
			}
		})
	}
}

func TestPodAffinityDefaultNamespace(t *testing.T) {
	// In the default namespace, the own namespace is spelled "default".
	in := podHead + "  affinity: {podAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: kubernetes.io/hostname, " +
		"labelSelector: {matchLabels: {app: db}}, namespaces: [default], namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [default]}]}}]}}\n"
	items := decodeOK(t, in, ctx)
	var s api.VMSpec
	if err := items[0].Object.DecodeSpec(&s); err != nil {
		t.Fatal(err)
	}
	if s.Affinity == nil || len(s.Affinity.VMAffinity) != 1 || s.Affinity.VMAffinity[0].Selector.MatchLabels["app"] != "db" {
		t.Errorf("affinity %+v", s.Affinity)
	}
	// An empty affinity maps to none.
	items = decodeOK(t, podHead+"  affinity: {nodeAffinity: {}}\n", ctx)
	if s := string(items[0].Object.Spec); strings.Contains(s, "affinity") {
		t.Errorf("spec %s has an affinity", s)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPodDNS(t *testing.T) {
	in := podHead + "  dnsPolicy: None\n  dnsConfig: {nameservers: [192.0.2.53], searches: [corp.example], options: [{name: ndots, value: '2'}, {name: edns0}]}\n"
	items := decodeOK(t, in, ctx)
	var s api.VMSpec
	if err := items[0].Object.DecodeSpec(&s); err != nil {
		t.Fatal(err)
	}
	if s.DNSPolicy != api.DNSNone || s.DNSConfig == nil || s.DNSConfig.Nameservers[0] != "192.0.2.53" ||
		s.DNSConfig.Searches[0] != "corp.example" || len(s.DNSConfig.Options) != 2 || *s.DNSConfig.Options[0].Value != "2" {
		t.Fatalf("dns policy %q config %+v", s.DNSPolicy, s.DNSConfig)
	}
	// No host network to share: ClusterFirstWithHostNet is ClusterFirst.
	items = decodeOK(t, podHead+"  dnsPolicy: ClusterFirstWithHostNet\n", ctx)
	if err := items[0].Object.DecodeSpec(&s); err != nil || s.DNSPolicy != api.DNSClusterFirst {
		t.Fatalf("ClusterFirstWithHostNet became %q (%v)", s.DNSPolicy, err)
	}
}
