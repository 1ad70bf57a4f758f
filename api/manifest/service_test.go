package manifest

import (
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

func TestServiceFiles(t *testing.T) {
	timeout := 600
	for _, tt := range []struct {
		file string
		want want
	}{
		{"service.yaml", want{kind: "Service", path: "/dc1/service/datagrand/my-nginx", labels: map[string]string{"run": "my-nginx"},
			spec: api.ServiceSpec{Cluster: "/dc1/host/c1", Type: api.ServiceNodePort, Selector: map[string]string{"run": "my-nginx"},
				Ports:           []api.ServicePort{{Name: "http", Protocol: "TCP", Port: 8080, TargetPort: api.Int(80)}, {Name: "https", Protocol: "TCP", Port: 443}},
				SessionAffinity: "None", ExternalTrafficPolicy: "Cluster"}}},
		{"service-exported.yaml", want{kind: "Service", path: "/dc1/service/web",
			spec: api.ServiceSpec{Cluster: "/dc1/host/c1", Type: api.ServiceClusterIP, Selector: map[string]string{"app": "web"}, ClusterIP: "10.96.12.7",
				Ports:           []api.ServicePort{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: api.Str("http")}},
				SessionAffinity: "ClientIP", SessionAffinityConfig: &api.SessionAffinityConfig{ClientIP: &api.ClientIPConfig{TimeoutSeconds: &timeout}}}}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			checkItems(t, decodeOK(t, readFile(t, "testdata/k8s/"+tt.file), ctx), []want{tt.want})
		})
	}
}

func TestServiceErrors(t *testing.T) {
	const head = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
	for _, tt := range []struct{ name, in, want string }{
		{"no ports", head + "spec: {selector: {app: web}}\n",
			`document 1 (Service "web"): spec.ports: a ClusterIP Service needs at least one port (only headless and ExternalName Services may have none)`},
		{"typo", head + "spec: {selecter: {app: web}, ports: [{port: 80}]}\n",
			`document 1 (Service "web"): spec.selecter: unknown field`},
		{"unnamed ports", head + "spec: {ports: [{port: 80}, {name: b, port: 99999}]}\n",
			`document 1 (Service "web"): spec.ports[0].name: a Service with several ports must name each`},
		{"bad type", head + "spec: {type: Internal, ports: [{port: 80}]}\n",
			`document 1 (Service "web"): spec.type: "Internal": want one of ClusterIP, NodePort, LoadBalancer, ExternalName`},
		{"target port object", head + "spec: {ports: [{port: 80, targetPort: {a: 1}}]}\n",
			`document 1 (Service "web"): spec.ports[0].targetPort: want a number or a string`},
		{"dual stack", head + "spec: {ipFamilies: [IPv4, IPv6], ports: [{port: 80}]}\n",
			`document 1 (Service "web"): spec.ipFamilies: [IPv4 IPv6]: podsphere's Services are IPv4 only`},
		{"nodePort on ClusterIP", head + "spec: {ports: [{port: 80, nodePort: 30080}]}\n",
			`document 1 (Service "web"): spec.ports[0].nodePort: set only with type NodePort or LoadBalancer (type is ClusterIP)`},
		{"Endpoints are vcenter's", "apiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\n",
			`document 1 (Endpoints): Endpoints objects are kept by vcenter from each Service's selector, not applied: read them with psc svc.info (a Service without a selector has no endpoints in podsphere yet)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.in), ctx)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

// A Cluster manifest carries its service network; a malformed field is
// refused before anything is sent, naming it.
func TestClusterServiceNetworkManifest(t *testing.T) {
	const head = "apiVersion: podsphere.io/v1\nkind: Cluster\nmetadata: {name: c2}\n"
	items := decodeOK(t, head+"spec: {serviceCIDR: 10.100.0.0/16, nodePortRange: 8000-8100, loadBalancerAddresses: [10.99.0.200-10.99.0.239], clusterDomain: corp.local}\n", ctx)
	var s api.ClusterSpec
	_ = items[0].Object.DecodeSpec(&s)
	if s.ServiceCIDR != "10.100.0.0/16" || s.NodePortRange != "8000-8100" || len(s.LoadBalancerAddresses) != 1 || s.ClusterDomain != "corp.local" {
		t.Errorf("spec %+v", s)
	}
	for in, want := range map[string]string{
		"spec: {nodePortRange: 9-1}\n":                  "spec.nodePortRange",
		"spec: {loadBalancerAddresses: [10.0.0.300]}\n": "spec.loadBalancerAddresses[0]",
		"spec: {serviceCIDR: 10.96.0.0/30}\n":           "spec.serviceCIDR",
		"spec: {clusterDomain: \"bad..domain\"}\n":      "spec.clusterDomain",
	} {
		_, err := Decode(strings.NewReader(head+in), ctx)
		if err == nil || !strings.Contains(err.Error(), "(Cluster \"c2\"): "+want) {
			t.Errorf("%s: %v, want an error naming %s", in, err, want)
		}
	}
}
