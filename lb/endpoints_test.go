package lb

import (
	"encoding/json"
	"testing"

	"github.com/podsphere/podsphere/api"
)

func vm(name, ip, host string, ready bool, ports ...api.Port) VM {
	return VM{Path: "/dc/vm/" + name, Labels: map[string]string{"app": "web"}, Running: true, Ready: ready, IP: ip, Host: "/dc/host/c/" + host, Ports: ports}
}

func TestEndpoints(t *testing.T) {
	web := api.ServiceSpec{Type: api.ServiceClusterIP, Selector: map[string]string{"app": "web"},
		Ports: []api.ServicePort{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: api.Int(8080)}}}
	named := api.ServiceSpec{Type: api.ServiceClusterIP, Selector: map[string]string{"app": "web"},
		Ports: []api.ServicePort{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: api.Str("web")}}}
	defaulted := api.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []api.ServicePort{{Port: 443}}}
	other := vm("db", "10.0.0.9", "h1", true)
	other.Labels = map[string]string{"app": "db"}
	elsewhere := vm("web-ns", "10.0.0.8", "h1", true)
	elsewhere.Namespace = "dev"
	off := vm("web-off", "10.0.0.7", "h1", true)
	off.Running = false
	noIP := vm("web-noip", "", "h1", true)

	cases := []struct {
		name  string
		ns    string
		spec  api.ServiceSpec
		vms   []VM
		hosts map[string]string
		want  string
	}{
		{"ready and not ready, sorted by IP", "", web,
			[]VM{vm("b", "10.0.0.3", "h2", true), vm("a", "10.0.0.2", "h1", false), vm("c", "10.0.0.1", "h1", true)}, nil,
			`[{"addresses":[{"ip":"10.0.0.1","vm":"/dc/vm/c","host":"/dc/host/c/h1"},{"ip":"10.0.0.3","vm":"/dc/vm/b","host":"/dc/host/c/h2"}],"notReadyAddresses":[{"ip":"10.0.0.2","vm":"/dc/vm/a","host":"/dc/host/c/h1"}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}]`},
		{"other labels, namespaces, powered off and IP-less VMs are no endpoints", "", web,
			[]VM{other, elsewhere, off, noIP, vm("a", "10.0.0.2", "h1", true)}, nil,
			`[{"addresses":[{"ip":"10.0.0.2","vm":"/dc/vm/a","host":"/dc/host/c/h1"}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}]`},
		{"namespace selects its own VMs only", "dev", web, []VM{elsewhere, vm("a", "10.0.0.2", "h1", true)}, nil,
			`[{"addresses":[{"ip":"10.0.0.8","vm":"/dc/vm/web-ns","host":"/dc/host/c/h1"}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}]`},
		{"a host not responding takes its VMs out", "", web,
			[]VM{vm("a", "10.0.0.2", "h1", true), vm("b", "10.0.0.3", "h2", true)}, map[string]string{"/dc/host/c/h1": api.HostNotResponding},
			`[{"addresses":[{"ip":"10.0.0.3","vm":"/dc/vm/b","host":"/dc/host/c/h2"}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}]`},
		{"a host in maintenance keeps its VMs until they move", "", web,
			[]VM{vm("a", "10.0.0.2", "h1", true)}, map[string]string{"/dc/host/c/h1": api.HostMaintenance},
			`[{"addresses":[{"ip":"10.0.0.2","vm":"/dc/vm/a","host":"/dc/host/c/h1"}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}]`},
		{"named target ports resolve per VM into subsets; a VM without the name is left out", "", named,
			[]VM{vm("a", "10.0.0.2", "h1", true, api.Port{Name: "web", ContainerPort: 8080}), vm("b", "10.0.0.3", "h1", true, api.Port{Name: "web", ContainerPort: 9090}),
				vm("c", "10.0.0.4", "h1", true, api.Port{Name: "other", ContainerPort: 80}), vm("d", "10.0.0.5", "h1", true, api.Port{Name: "web", ContainerPort: 8080, Protocol: "UDP"})}, nil,
			`[{"addresses":[{"ip":"10.0.0.2","vm":"/dc/vm/a","host":"/dc/host/c/h1"}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]},{"addresses":[{"ip":"10.0.0.3","vm":"/dc/vm/b","host":"/dc/host/c/h1"}],"ports":[{"name":"http","port":9090,"protocol":"TCP"}]}]`},
		{"an unset target port is the Service port", "", defaulted, []VM{vm("a", "10.0.0.2", "h1", true)}, nil,
			`[{"addresses":[{"ip":"10.0.0.2","vm":"/dc/vm/a","host":"/dc/host/c/h1"}],"ports":[{"port":443,"protocol":"TCP"}]}]`},
		{"no selector: endpoints are not vcenter's", "", api.ServiceSpec{Ports: web.Ports}, []VM{vm("a", "10.0.0.2", "h1", true)}, nil, `null`},
		{"ExternalName has none", "", api.ServiceSpec{Type: api.ServiceExternalName, Selector: web.Selector, ExternalName: "db.example.com"}, []VM{vm("a", "10.0.0.2", "h1", true)}, nil, `null`},
		{"a selector matching nothing: none", "", web, []VM{other}, nil, `null`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Endpoints(c.ns, c.spec, c.vms, c.hosts)
			b, _ := json.Marshal(got)
			if string(b) != c.want {
				t.Errorf("got  %s\nwant %s", b, c.want)
			}
			// Deterministic whatever order the VMs come in.
			rev := append([]VM(nil), c.vms...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			if b2, _ := json.Marshal(Endpoints(c.ns, c.spec, rev, c.hosts)); string(b2) != string(b) {
				t.Errorf("order depends on input: %s", b2)
			}
		})
	}
}

func TestCount(t *testing.T) {
	r, n := Count([]api.EndpointSubset{{Addresses: make([]api.EndpointAddress, 2), NotReadyAddresses: make([]api.EndpointAddress, 1)}, {Addresses: make([]api.EndpointAddress, 1)}})
	if r != 3 || n != 4 {
		t.Errorf("Count = %d/%d, want 3/4", r, n)
	}
}
