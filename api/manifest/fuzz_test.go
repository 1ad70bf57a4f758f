package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

// FuzzDecode checks that Decode never panics, that every failure is an
// *Error wrapping api.ErrInvalid, and that every object it returns sits at
// a path api.ParsePath accepts for the object's kind. The seed corpus in
// testdata/fuzz/FuzzDecode holds realistic manifests, and so does
// testdata/k8s, whose files are added as seeds too.
func FuzzDecode(f *testing.F) {
	k8s, err := filepath.Glob("testdata/k8s/*.yaml")
	if err != nil || len(k8s) == 0 {
		f.Fatalf("no seeds in testdata/k8s: %v", err)
	}
	for _, name := range k8s {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), "dc1", "c1")
	}
	f.Add(podHead, "dc1", "c1")
	f.Add("apiVersion: podsphere.io/v1\nkind: ResourcePool\nmetadata: {name: dev/web}\nspec: {quota: {vms: 3}}\n", "dc1", "c1")
	f.Add(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}{"apiVersion":"v1","kind":"ResourceQuota","metadata":{"name":"q","namespace":"a"},"spec":{"hard":{"pods":"1"}}}`, "dc1", "c1")
	f.Fuzz(func(t *testing.T, data, dc, cluster string) {
		items, err := Decode(strings.NewReader(data), Context{Datacenter: dc, Cluster: cluster})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, api.ErrInvalid) {
				t.Fatalf("error %v (%T) is not a *manifest.Error wrapping api.ErrInvalid", err, err)
			}
			if items != nil {
				t.Fatalf("items returned with an error")
			}
			return
		}
		for i, it := range items {
			o := it.Object
			if o == nil {
				t.Fatalf("item %d has no object", i)
			}
			ref, err := api.ParsePath(o.Path)
			if err != nil {
				t.Fatalf("item %d: path %q: %v", i, o.Path, err)
			}
			if ref.Kind != o.Kind {
				t.Fatalf("item %d: path %q is a %s, object is a %s", i, o.Path, ref.Kind, o.Kind)
			}
			if it.Doc < 1 || i > 0 && it.Doc <= items[i-1].Doc {
				t.Fatalf("item %d: document number %d out of order", i, it.Doc)
			}
			// Every pool and target named must be a path of its kind.
			checkRef := func(what, p, kind string) {
				ref, err := api.ParsePath(p)
				if err != nil || ref.Kind != kind {
					t.Fatalf("item %d: %s %q is not a %s path: %v", i, what, p, kind, err)
				}
			}
			var spec any
			switch o.Kind {
			case api.KindVirtualMachine:
				var s api.VMSpec
				spec = &s
				defer func() { checkRef("pool", s.Pool, api.KindResourcePool) }()
			case api.KindDeployment:
				var s api.DeploymentSpec
				spec = &s
				defer func() { checkRef("pool", s.Pool, api.KindResourcePool) }()
			case api.KindReplicaSet:
				var s api.ReplicaSetSpec
				spec = &s
				defer func() { checkRef("pool", s.Pool, api.KindResourcePool) }()
			case api.KindDaemonSet:
				var s api.DaemonSetSpec
				spec = &s
				defer func() { checkRef("pool", s.Pool, api.KindResourcePool) }()
			case api.KindJob:
				var s api.JobSpec
				spec = &s
				defer func() { checkRef("pool", s.Pool, api.KindResourcePool) }()
			case api.KindAutoscaler:
				var s api.AutoscalerSpec
				spec = &s
				defer func() {
					ref, _ := api.ParsePath(s.Target)
					if ref.Kind != api.KindDeployment && ref.Kind != api.KindReplicaSet {
						t.Fatalf("item %d: target %q is not a Deployment or ReplicaSet path", i, s.Target)
					}
				}()
			case api.KindService:
				var s api.ServiceSpec
				spec = &s
				defer func() {
					// What apply sends is already what vcenter would store.
					n := s
					if err := n.Normalize(); err != nil {
						t.Fatalf("item %d: Service spec %+v does not pass Normalize: %v", i, s, err)
					}
				}()
			case api.KindIngress:
				var s api.IngressSpec
				spec = &s
				defer func() {
					if err := s.Normalize(); err != nil {
						t.Fatalf("item %d: Ingress spec %+v does not pass Normalize: %v", i, s, err)
					}
				}()
			case api.KindResourcePool:
				spec = &api.PoolSpec{}
			case api.KindCluster:
				spec = &api.ClusterSpec{}
			case api.KindDatacenter:
				spec = &api.DatacenterSpec{}
			default:
				t.Fatalf("item %d: kind %s cannot come from a manifest", i, o.Kind)
			}
			if err := o.DecodeSpec(spec); err != nil {
				t.Fatalf("item %d: spec %s does not decode: %v", i, o.Spec, err)
			}
		}
	})
}

// TestFuzzCorpusDecodes keeps the realistic seeds realistic: every seed
// whose name does not start with "error" or "no_context" must decode.
func TestFuzzCorpusDecodes(t *testing.T) {
	entries, err := os.ReadDir("testdata/fuzz/FuzzDecode")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata/fuzz/FuzzDecode", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var args []string
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if s, ok := strings.CutPrefix(line, "string("); ok {
				v, err := strconv.Unquote(strings.TrimSuffix(s, ")"))
				if err != nil {
					t.Fatalf("%s: %v", e.Name(), err)
				}
				args = append(args, v)
			}
		}
		if len(args) != 3 {
			t.Fatalf("%s: %d arguments, want 3", e.Name(), len(args))
		}
		_, err = Decode(strings.NewReader(args[0]), Context{Datacenter: args[1], Cluster: args[2]})
		wantErr := strings.HasPrefix(e.Name(), "error") || strings.HasPrefix(e.Name(), "no_context")
		if (err != nil) != wantErr {
			t.Errorf("%s: error %v, want error: %v", e.Name(), err, wantErr)
		}
	}
}
