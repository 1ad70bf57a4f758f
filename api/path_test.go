package api

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		path string
		want Ref
	}{
		{"/dc1", Ref{Kind: KindDatacenter, Path: "/dc1", Datacenter: "dc1", Name: "dc1"}},
		{"/dc1/host/c1", Ref{Kind: KindCluster, Path: "/dc1/host/c1", Datacenter: "dc1", Cluster: "c1", Name: "c1"}},
		{"/dc1/host/c1/h1", Ref{Kind: KindHost, Path: "/dc1/host/c1/h1", Datacenter: "dc1", Cluster: "c1", Name: "h1"}},
		{"/dc1/host/c1/Resources", Ref{Kind: KindResourcePool, Path: "/dc1/host/c1/Resources", Datacenter: "dc1", Cluster: "c1", Pools: []string{}, Name: "Resources"}},
		{"/dc1/host/c1/Resources/dev", Ref{Kind: KindResourcePool, Path: "/dc1/host/c1/Resources/dev", Datacenter: "dc1", Cluster: "c1", Pools: []string{"dev"}, Name: "dev"}},
		{"/dc1/host/c1/Resources/dev/web", Ref{Kind: KindResourcePool, Path: "/dc1/host/c1/Resources/dev/web", Datacenter: "dc1", Cluster: "c1", Pools: []string{"dev", "web"}, Name: "web"}},
		{"/dc1/vm/web-01", Ref{Kind: KindVirtualMachine, Path: "/dc1/vm/web-01", Datacenter: "dc1", Name: "web-01"}},
		{"/dc1/vm/team-a/web-01", Ref{Kind: KindVirtualMachine, Path: "/dc1/vm/team-a/web-01", Datacenter: "dc1", Namespace: "team-a", Name: "web-01"}},
		{"/dc1/deployment/team-a/web", Ref{Kind: KindDeployment, Path: "/dc1/deployment/team-a/web", Datacenter: "dc1", Namespace: "team-a", Name: "web"}},
		{"/dc1/replicaset/web", Ref{Kind: KindReplicaSet, Path: "/dc1/replicaset/web", Datacenter: "dc1", Name: "web"}},
		{"/dc1/hpa/ns/web", Ref{Kind: KindAutoscaler, Path: "/dc1/hpa/ns/web", Datacenter: "dc1", Namespace: "ns", Name: "web"}},
		{"/library/busybox", Ref{Kind: KindImage, Path: "/library/busybox", Name: "busybox"}},
		{"/events/42", Ref{Kind: KindEvent, Path: "/events/42", Name: "42"}},
		{"/tasks/7", Ref{Kind: KindTask, Path: "/tasks/7", Name: "7"}},
		{"/DC_0/host/C.0/H-0", Ref{Kind: KindHost, Path: "/DC_0/host/C.0/H-0", Datacenter: "DC_0", Cluster: "C.0", Name: "H-0"}},
		{"/" + strings.Repeat("a", MaxNameLen), Ref{Kind: KindDatacenter, Path: "/" + strings.Repeat("a", MaxNameLen), Datacenter: strings.Repeat("a", MaxNameLen), Name: strings.Repeat("a", MaxNameLen)}},
		// "host" and "vm" are only folders in second position.
		{"/host/host/host/host", Ref{Kind: KindHost, Path: "/host/host/host/host", Datacenter: "host", Cluster: "host", Name: "host"}},
	}
	for _, tt := range tests {
		got, err := ParsePath(tt.path)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tt.path, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParsePath(%q) =\n %+v\nwant\n %+v", tt.path, got, tt.want)
		}
	}
}

func TestParsePathErrors(t *testing.T) {
	tests := []struct {
		path, want string
	}{
		{"", `path "" must be absolute (start with /): invalid`},
		{"dc1", `path "dc1" must be absolute (start with /): invalid`},
		{"/", `path "/": name is empty: invalid`},
		{"/dc1/", `path "/dc1/" has a trailing /: invalid`},
		{"//dc1", `path "//dc1": name is empty: invalid`},
		{"/dc1//host", `path "/dc1//host": name is empty: invalid`},
		{"/dc 1", `path "/dc 1": name "dc 1": character ' ' at 2 is not allowed (letters, digits, and - _ . after the first): invalid`},
		{"/-dc", `path "/-dc": name "-dc": character '-' at 0 is not allowed (letters, digits, and - _ . after the first): invalid`},
		{"/dc1/vm/..", `path "/dc1/vm/..": name "..": character '.' at 0 is not allowed (letters, digits, and - _ . after the first): invalid`},
		{"/" + strings.Repeat("a", MaxNameLen+1), `is longer than 80 characters: invalid`},
		{"/dc1/vm", `path "/dc1/vm": expected /DC/vm/NAME or /DC/vm/NAMESPACE/NAME: invalid`},
		{"/dc1/vm/a/b/c", `path "/dc1/vm/a/b/c": expected /DC/vm/NAME or /DC/vm/NAMESPACE/NAME: invalid`},
		{"/dc1/vm/default/b", `path "/dc1/vm/default/b": the default namespace is the folder itself: use /dc1/vm/b: invalid`},
		{"/dc1/host", `path "/dc1/host": expected /DC/host/CLUSTER: invalid`},
		{"/dc1/datastore/ds1", `path "/dc1/datastore/ds1": unknown folder "datastore" (want host, vm, replicaset, deployment, daemonset, job, hpa, service, ingress or drill): invalid`},
		{"/dc1/host/c1/h1/x", `path "/dc1/host/c1/h1/x": hosts have no children; pools live under Resources: invalid`},
		{"/library", `path "/library": expected /library/NAME: invalid`},
		{"/events/1/2", `path "/events/1/2": expected /events/NAME: invalid`},
		{"/tasks", `path "/tasks": expected /tasks/NAME: invalid`},
		{"/dc1/host/c1/Resources/", `path "/dc1/host/c1/Resources/" has a trailing /: invalid`},
		{"/dc\x00", `character '\x00' at 2 is not allowed`},
		{"/é", `character 'é' at 0 is not allowed`},
	}
	for _, tt := range tests {
		_, err := ParsePath(tt.path)
		if err == nil {
			t.Errorf("ParsePath(%q): no error, want %q", tt.path, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParsePath(%q): error %q, want it to contain %q", tt.path, err, tt.want)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePath(%q): error %v does not wrap ErrInvalid", tt.path, err)
		}
	}
}

func TestRefHelpers(t *testing.T) {
	r, err := ParsePath("/dc1/host/c1/Resources/dev/web")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.ClusterPath(); got != "/dc1/host/c1" {
		t.Errorf("ClusterPath() = %q", got)
	}
	if got := r.RootPool(); got != "/dc1/host/c1/Resources" {
		t.Errorf("RootPool() = %q", got)
	}
	if got := r.ParentPool(); got != "/dc1/host/c1/Resources/dev" {
		t.Errorf("ParentPool() = %q", got)
	}
	root, _ := ParsePath("/dc1/host/c1/Resources")
	if got := root.ParentPool(); got != "" {
		t.Errorf("root ParentPool() = %q, want empty", got)
	}
	vm, _ := ParsePath("/dc1/vm/v")
	if vm.ClusterPath() != "" || vm.RootPool() != "" || vm.ParentPool() != "" {
		t.Errorf("VM ref helpers should be empty: %+v", vm)
	}
}
