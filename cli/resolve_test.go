package cli

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/podsphere/podsphere/api"
)

func TestResolverPath(t *testing.T) {
	tests := []struct {
		dc, cluster, kind, arg string
		want                   string
		err                    error
	}{
		{"DC0", "C0", api.KindResourcePool, "/DC0/host/C0/Resources/dev", "/DC0/host/C0/Resources/dev", nil},
		{"DC0", "C0", api.KindResourcePool, "C0/Resources/dev", "/DC0/host/C0/Resources/dev", nil},
		{"DC0", "C0", api.KindResourcePool, "C1/Resources", "/DC0/host/C1/Resources", nil},
		{"DC0", "C0", api.KindResourcePool, "dev", "/DC0/host/C0/Resources/dev", nil},
		{"DC0", "C0", api.KindResourcePool, "dev/web", "/DC0/host/C0/Resources/dev/web", nil},
		{"DC0", "C0", api.KindResourcePool, "dev/web/", "/DC0/host/C0/Resources/dev/web", nil},
		{"DC0", "C0", api.KindResourcePool, "Resources", "/DC0/host/C0/Resources", nil},
		{"DC0", "C0", api.KindResourcePool, "Resources/dev", "/DC0/host/C0/Resources/dev", nil},
		{"DC0", "/DC0/host/C9", api.KindResourcePool, "dev", "/DC0/host/C9/Resources/dev", nil},
		{"", "/DC0/host/C9", api.KindResourcePool, "dev", "/DC0/host/C9/Resources/dev", nil},
		{"/DC0", "C0", api.KindResourcePool, "dev", "/DC0/host/C0/Resources/dev", nil},
		{"DC0", "C0", api.KindVirtualMachine, "web-01", "/DC0/vm/web-01", nil},
		{"DC0", "C0", api.KindVirtualMachine, "vm/web-01", "/DC0/vm/web-01", nil},
		{"DC0", "C0", api.KindVirtualMachine, "/DC1/vm/web-01", "/DC1/vm/web-01", nil},
		{"DC0", "C0", api.KindHost, "esx-01", "/DC0/host/C0/esx-01", nil},
		{"DC0", "C0", api.KindHost, "C1/esx-01", "/DC0/host/C1/esx-01", nil},
		{"DC0", "C0", api.KindCluster, "C1", "/DC0/host/C1", nil},
		{"DC0", "C0", api.KindDatacenter, "DC7", "/DC7", nil},
		// errors
		{"DC0", "C0", api.KindResourcePool, "/DC0/vm/web-01", "", api.ErrInvalid},
		{"DC0", "C0", api.KindVirtualMachine, "bad name", "", api.ErrInvalid},
		{"", "", api.KindVirtualMachine, "web-01", "", api.ErrInvalid},
		{"DC0", "", api.KindResourcePool, "dev", "", api.ErrInvalid},
		{"DC0", "C0", api.KindResourcePool, "", "", api.ErrInvalid},
	}
	for _, tt := range tests {
		r := &Resolver{DC: tt.dc, Cluster: tt.cluster}
		got, err := r.Path(context.Background(), tt.kind, tt.arg)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Path(dc=%q cluster=%q %s %q) = %q, %v; want error %v", tt.dc, tt.cluster, tt.kind, tt.arg, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Path(dc=%q cluster=%q %s %q) = %q, %v; want %q", tt.dc, tt.cluster, tt.kind, tt.arg, got, err, tt.want)
		}
	}
}

func TestResolverDefaultsToTheOnlyDatacenterAndCluster(t *testing.T) {
	t.Parallel()
	l := labBase(t)
	r := &Resolver{API: l.api}
	got, err := r.Path(context.Background(), api.KindResourcePool, "dev")
	if err != nil || got != "/dc1/host/c1/Resources/dev" {
		t.Fatalf("Path(dev) = %q, %v", got, err)
	}
	l.create(api.New(api.KindCluster, "/dc1/host/c2", newClusterSpec()))
	r = &Resolver{API: l.api}
	if _, err := r.Path(context.Background(), api.KindResourcePool, "dev"); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("two clusters, no PSC_CLUSTER: err = %v, want a usage error", err)
	}
}

func TestResolverPathsGlob(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	r := &Resolver{DC: "dc1", Cluster: "c1", API: l.api}
	tests := []struct {
		kind string
		args []string
		want []string
		err  error
	}{
		{api.KindResourcePool, []string{"*/Resources/test"}, []string{"/dc1/host/c1/Resources/test"}, nil},
		{api.KindResourcePool, []string{"*"}, []string{"/dc1/host/c1/Resources/dev", "/dc1/host/c1/Resources/test"}, nil},
		{api.KindResourcePool, []string{"dev/*"}, []string{"/dc1/host/c1/Resources/dev/web"}, nil},
		{api.KindVirtualMachine, []string{"web-*"}, []string{"/dc1/vm/web-01", "/dc1/vm/web-02"}, nil},
		{api.KindVirtualMachine, []string{"db-01", "web-0[2]"}, []string{"/dc1/vm/db-01", "/dc1/vm/web-02"}, nil},
		{api.KindHost, []string{"esx-0?"}, []string{"/dc1/host/c1/esx-01", "/dc1/host/c1/esx-02", "/dc1/host/c1/esx-03"}, nil},
		{api.KindVirtualMachine, []string{"nope-*"}, nil, api.ErrNotFound},
		{api.KindVirtualMachine, []string{"web-["}, nil, api.ErrInvalid},
	}
	for _, tt := range tests {
		got, err := r.Paths(context.Background(), tt.kind, tt.args)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Paths(%s %q) = %q, %v; want error %v", tt.kind, tt.args, got, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Paths(%s %q) = %q, %v; want %q", tt.kind, tt.args, got, err, tt.want)
		}
	}
}

func TestMatchPath(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"/dc1/host/*/Resources/test", "/dc1/host/c1/Resources/test", true},
		{"/dc1/host/*/Resources/test", "/dc1/host/c1/Resources/dev/test", false},
		{"/dc1/vm/*", "/dc1/vm/a", true},
		{"/dc1/vm/*", "/dc1/vm", false},
		{"/*", "/dc1", true},
		{"/dc?", "/dc12", false},
	}
	for _, tt := range tests {
		if got := matchPath(tt.pattern, tt.path); got != tt.want {
			t.Errorf("matchPath(%q, %q) = %t, want %t", tt.pattern, tt.path, got, tt.want)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		bad  bool
	}{
		{"httpd -f -p 80", []string{"httpd", "-f", "-p", "80"}, false},
		{"", nil, false},
		{`sh -c 'echo hi; sleep 1'`, []string{"sh", "-c", "echo hi; sleep 1"}, false},
		{`echo "a b" c\ d ''`, []string{"echo", "a b", "c d", ""}, false},
		{`echo 'open`, nil, true},
	}
	for _, tt := range tests {
		got, err := splitCommand(tt.in)
		if (err != nil) != tt.bad || !slices.Equal(got, tt.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q (error %t)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

// TestResolverNamespaces: bare names of VMs and workloads resolve in the
// namespace (-namespace, PSC_NAMESPACE), NS/NAME in NS, paths as they are.
func TestResolverNamespaces(t *testing.T) {
	tests := []struct {
		ns, kind, arg string
		want          string
		err           error
	}{
		{"", api.KindVirtualMachine, "web-01", "/DC0/vm/web-01", nil},
		{"default", api.KindVirtualMachine, "web-01", "/DC0/vm/web-01", nil},
		{"team", api.KindVirtualMachine, "web-01", "/DC0/vm/team/web-01", nil},
		{"", api.KindVirtualMachine, "web/client", "/DC0/vm/web/client", nil},
		{"team", api.KindVirtualMachine, "web/client", "/DC0/vm/web/client", nil},
		{"team", api.KindVirtualMachine, "default/web-01", "/DC0/vm/web-01", nil},
		{"team", api.KindVirtualMachine, "vm/web-01", "/DC0/vm/web-01", nil},
		{"team", api.KindVirtualMachine, "vm/web/client", "/DC0/vm/web/client", nil},
		{"team", api.KindVirtualMachine, "/DC1/vm/web-01", "/DC1/vm/web-01", nil},
		{"", api.KindReplicaSet, "web", "/DC0/replicaset/web", nil},
		{"team", api.KindReplicaSet, "web", "/DC0/replicaset/team/web", nil},
		{"", api.KindReplicaSet, "team/web", "/DC0/replicaset/team/web", nil},
		{"", api.KindReplicaSet, "replicaset/team/web", "/DC0/replicaset/team/web", nil},
		{"team", api.KindDeployment, "web", "/DC0/deployment/team/web", nil},
		{"team", api.KindDaemonSet, "agent", "/DC0/daemonset/team/agent", nil},
		{"team", api.KindJob, "pi", "/DC0/job/team/pi", nil},
		{"team", api.KindAutoscaler, "web", "/DC0/hpa/team/web", nil},
		// pools and hosts have no namespace
		{"team", api.KindResourcePool, "dev", "/DC0/host/C0/Resources/dev", nil},
		{"team", api.KindHost, "esx-01", "/DC0/host/C0/esx-01", nil},
		// errors
		{"", api.KindVirtualMachine, "a/b/c", "", api.ErrInvalid},
		{"bad name", api.KindVirtualMachine, "web-01", "", api.ErrInvalid},
		{"", api.KindReplicaSet, "/DC0/vm/web-01", "", api.ErrInvalid},
		{"", api.KindDeployment, "/DC0/replicaset/web", "", api.ErrInvalid},
	}
	for _, tt := range tests {
		r := &Resolver{DC: "DC0", Cluster: "C0", Namespace: tt.ns}
		got, err := r.Path(context.Background(), tt.kind, tt.arg)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Path(ns=%q %s %q) = %q, %v; want error %v", tt.ns, tt.kind, tt.arg, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Path(ns=%q %s %q) = %q, %v; want %q", tt.ns, tt.kind, tt.arg, got, err, tt.want)
		}
	}
}
