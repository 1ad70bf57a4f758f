package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// The Kubernetes manifests tutorials use, applied with psc against a real
// vcenter and its controllers, with three sim hosts reporting: each kind
// does what Kubernetes users expect.
func TestApplyKubernetesWorkloads(t *testing.T) {
	t.Parallel()
	l := labBase(t, "esx-01", "esx-02", "esx-03")
	k8s := func(name string) string { return filepath.Join("..", "api", "manifest", "testdata", "k8s", name) }
	ns := "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: monitoring}\n"
	if _, errOut, code := l.psc(ns, nil, "apply", "-f", "-"); code != 0 {
		t.Fatalf("namespaces: exit %d: %s", code, errOut)
	}
	for _, f := range []string{"deployment.yaml", "replicaset.yaml", "daemonset.yaml", "job.yaml"} {
		if out, errOut, code := l.psc("", nil, "apply", "-f", k8s(f)); code != 0 {
			t.Fatalf("apply %s: exit %d: %s%s", f, code, out, errOut)
		}
	}
	members := func(owner string, deployment bool) []*api.Object {
		l.t.Helper()
		owners := map[string]bool{owner: true}
		if deployment {
			sets, err := l.api.List(l.ctx(), client.ListOptions{Kind: api.KindReplicaSet})
			if err != nil {
				t.Fatal(err)
			}
			for _, rs := range sets.Items {
				if rs.Owner == owner {
					owners[rs.Path] = true
				}
			}
		}
		vms, err := l.api.List(l.ctx(), client.ListOptions{Kind: api.KindVirtualMachine})
		if err != nil {
			t.Fatal(err)
		}
		var out []*api.Object
		for _, vm := range vms.Items {
			if owners[vm.Owner] {
				out = append(out, vm)
			}
		}
		return out
	}
	running := func(vms []*api.Object) (n int, hosts map[string]bool) {
		hosts = map[string]bool{}
		for _, vm := range vms {
			var st api.VMStatus
			_ = vm.DecodeStatus(&st)
			if st.PowerState == api.PoweredOn && st.Ready {
				n++
				hosts[st.Host] = true
			}
		}
		return n, hosts
	}
	// Deployment web, 3 replicas of nginx in team-a: 3 ready VMs on 3 hosts.
	l.eventually("the Deployment's 3 VMs ready on 3 hosts", func() bool {
		n, hosts := running(members("/dc1/deployment/team-a/web", true))
		return n == 3 && len(hosts) == 3
	})
	for _, vm := range members("/dc1/deployment/team-a/web", true) {
		if !strings.HasPrefix(vm.Path, "/dc1/vm/team-a/web-") {
			t.Errorf("member %s is not in namespace team-a's folder", vm.Path)
		}
	}
	// ReplicaSet frontend with matchExpressions: 3 members.
	l.eventually("the ReplicaSet's 3 members ready", func() bool {
		n, _ := running(members("/dc1/replicaset/team-a/frontend", false))
		return n == 3
	})
	// DaemonSet node-exporter: one member per host.
	l.eventually("one DaemonSet member per host", func() bool {
		n, hosts := running(members("/dc1/daemonset/monitoring/node-exporter", false))
		return n == 3 && len(hosts) == 3
	})
	// Job pi: one VM running toward its completion.
	l.eventually("the Job runs a VM and says since when", func() bool {
		var js api.JobStatus
		_ = l.get("/dc1/job/pi").DecodeStatus(&js)
		return len(members("/dc1/job/pi", false)) == 1 && js.Active == 1 && !js.StartTime.IsZero()
	})
	// HorizontalPodAutoscaler php-apache: refused while its target does not
	// exist, accepted once it does.
	_, errOut, code := l.psc("", nil, "apply", "-f", k8s("hpa.yaml"))
	if code == 0 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("HPA without its target: exit %d: %s", code, errOut)
	}
	target := strings.ReplaceAll(strings.ReplaceAll(mustRead(t, k8s("deployment.yaml")), "name: web", "name: php-apache"), "app: web", "app: php-apache")
	if out, errOut, code := l.psc(target, nil, "apply", "-f", "-"); code != 0 {
		t.Fatalf("php-apache: exit %d: %s%s", code, out, errOut)
	}
	if out, errOut, code := l.psc("", nil, "apply", "-f", k8s("hpa.yaml")); code != 0 {
		t.Fatalf("HPA: exit %d: %s%s", code, out, errOut)
	}
	l.eventually("the autoscaler looks at its target", func() bool {
		var st api.AutoscalerStatus
		_ = l.get("/dc1/hpa/team-a/php-apache").DecodeStatus(&st)
		return st.CurrentReplicas == 3 && len(st.Conditions) > 0
	})
	// A new autoscaler does not shrink its target before its scale-down
	// window (120 s here) has passed, though the sim members use no CPU.
	var hs api.AutoscalerStatus
	_ = l.get("/dc1/hpa/team-a/php-apache").DecodeStatus(&hs)
	if hs.DesiredReplicas != 3 {
		t.Errorf("the new autoscaler wants %d replicas at once, want 3 until its window passed: %+v", hs.DesiredReplicas, hs)
	}
	// Deleting the Namespace deletes what is in it.
	if _, errOut, code := l.psc("apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n", nil, "delete", "-f", "-"); code != 0 {
		t.Fatalf("delete namespace: exit %d: %s", code, errOut)
	}
	for _, p := range []string{"/dc1/deployment/team-a/web", "/dc1/replicaset/team-a/frontend", "/dc1/hpa/team-a/php-apache", labRoot + "/team-a"} {
		if l.exists(p) {
			t.Errorf("%s is still there after its namespace was deleted", p)
		}
	}
	if n := len(members("/dc1/deployment/team-a/web", true)); n != 0 {
		t.Errorf("%d VMs of the Deployment left after its namespace was deleted", n)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
