package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// BenchmarkHADrill runs psc ha.drill 20 times per mode on a 3-host lab
// (real containers, the hosts' HA processes, the lab's shared heartbeat
// datastore), each time failing the host that runs the most protected VMs
// (a 3-replica Deployment and 3 standalone VMs), and reports the time from
// the failure until every protected VM runs and is ready elsewhere (p50,
// p99, max), the restart phase alone (HA's declaration to all back), and
// the duplicates the drills saw (sampling every host's containerd every
// 100 ms). Goals: crash p99 <= 5 s; isolation duplicates 0.
//
//	go test -run '^$' -bench BenchmarkHADrill -benchtime 1x -timeout 30m -v ./bench/
func BenchmarkHADrill(b *testing.B) {
	requireDataPlane(b)
	for _, mode := range []string{api.DrillCrash, api.DrillIsolate} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				runDrills(b, mode, 20)
			}
		})
	}
}

func runDrills(b *testing.B, mode string, runs int) {
	b.StopTimer()
	l := upLab(b, 3)
	psc := pscBinary(b)
	token, err := os.ReadFile(filepath.Join(l.dir, "vcenter", "admin.token"))
	if err != nil {
		b.Fatal(err)
	}
	env := append(os.Environ(), "PSC_URL="+l.state.LocalURL, "PSC_TOKEN="+strings.TrimSpace(string(token)), "PSC_DATACENTER=dc1",
		"PSC_CLUSTER=c1", "PSC_LAB="+l.dir)
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(psc, args...)
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	must := func(args ...string) {
		if out, err := run(args...); err != nil {
			b.Fatalf("psc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	must("cluster.change", "-ha-enabled", "-ha-isolation-response", "powerOff", "c1")
	manifest := filepath.Join(b.TempDir(), "web.yaml")
	if err := os.WriteFile(manifest, []byte(drillDeployment), 0o644); err != nil {
		b.Fatal(err)
	}
	must("apply", "-f", manifest)
	for i := range 3 {
		must("vm.create", "-m", "32", "-cmd", "httpd -f -p 80", fmt.Sprintf("app-%d", i))
	}
	waitProtectedReady(b, l.api, 6)

	var total, restart []time.Duration
	dups := 0
	b.StartTimer()
	for i := range runs {
		victim := busiestHost(b, l.api)
		cmd := exec.Command(psc, "ha.drill", "-json", "-mode", mode, "-name", fmt.Sprintf("bench-%s-%02d", mode, i), victim)
		cmd.Env = env
		out, err := cmd.Output() // the report on stdout; progress goes to stderr
		var rep api.HADrillReport
		if jerr := json.Unmarshal(out, &rep); jerr != nil {
			b.Fatalf("drill %d: %v (exit %v)\n%s", i, jerr, err, out)
		}
		dups += len(rep.Duplicates)
		if !rep.Passed {
			b.Errorf("drill %d (%s %s) failed: %v", i, mode, victim, rep.Failures)
			continue
		}
		total = append(total, rep.Recovered.Sub(rep.Injected))
		if !rep.Declared.IsZero() {
			restart = append(restart, rep.Recovered.Sub(rep.Declared))
		}
		b.Logf("drill %2d: %s %s: %d VMs back in %.2f s (declared %s, %d samples, %d duplicates)", i, mode, victim, len(rep.VMs),
			rep.RecoverySeconds, rep.Declared.Sub(rep.Injected).Round(time.Millisecond), rep.Samples, len(rep.Duplicates))
		waitProtectedReady(b, l.api, 6)
	}
	b.StopTimer()
	b.Logf("%s: %d drills: until every protected VM is back %s; restart phase %s; duplicates %d", mode, len(total), summary(total), summary(restart), dups)
	b.ReportMetric(percentile(total, 0.5).Seconds(), "p50-s")
	b.ReportMetric(percentile(total, 0.99).Seconds(), "p99-s")
	b.ReportMetric(float64(dups), "duplicates")
}

const drillDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: httpd
        image: busybox
        command: ["httpd", "-f", "-p", "80"]
        resources:
          requests: {cpu: 100m, memory: 32Mi}
`

// pscBinary builds cmd/psc beside the podsphere binary.
func pscBinary(b *testing.B) string {
	b.Helper()
	dir := filepath.Dir(podsphereBinary(b))
	if out, err := exec.Command("go", "build", "-o", dir+"/", "../cmd/psc").CombinedOutput(); err != nil {
		b.Fatalf("go build ../cmd/psc: %v\n%s", err, out)
	}
	return filepath.Join(dir, "psc")
}

// waitProtectedReady waits until n VMs run and are ready where registered,
// and every host is connected.
func waitProtectedReady(b *testing.B, c *client.Client, n int) {
	b.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		vms, err1 := c.List(context.Background(), client.ListOptions{Kind: api.KindVirtualMachine, Prefix: "/dc1/vm"})
		hosts, err2 := c.List(context.Background(), client.ListOptions{Kind: api.KindHost, Prefix: cluster})
		if err1 == nil && err2 == nil {
			ready, connected := 0, 0
			for _, v := range vms.Items {
				var s api.VMSpec
				var st api.VMStatus
				_ = v.DecodeSpec(&s)
				_ = v.DecodeStatus(&st)
				if s.PowerState == api.PoweredOn && !s.Removing && st.Host == s.Host && st.Ready {
					ready++
				}
			}
			for _, h := range hosts.Items {
				var st api.HostStatus
				_ = h.DecodeStatus(&st)
				if st.State == api.HostConnected {
					connected++
				}
			}
			if ready == n && connected == len(hosts.Items) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("%d VMs not ready on connected hosts within 90 s", n)
}

// busiestHost is the host running the most powered-on VMs.
func busiestHost(b *testing.B, c *client.Client) string {
	b.Helper()
	vms, err := c.List(context.Background(), client.ListOptions{Kind: api.KindVirtualMachine, Prefix: "/dc1/vm"})
	if err != nil {
		b.Fatal(err)
	}
	count := map[string]int{}
	best := ""
	for _, v := range vms.Items {
		var s api.VMSpec
		_ = v.DecodeSpec(&s)
		if s.PowerState != api.PoweredOn || s.Removing {
			continue
		}
		h := api.Base(s.Host)
		count[h]++
		if best == "" || count[h] > count[best] || count[h] == count[best] && h < best {
			best = h
		}
	}
	return best
}
