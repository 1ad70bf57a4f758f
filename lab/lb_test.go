package lab

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/host/network"
)

const lbManifest = haDeployment + `---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 80}]
`

// TestLoadBalancerFailover: a LoadBalancer Service of 3 httpd VMs in a
// real 3-host lab answers on its address from the lab's other namespaces,
// through the one host answering for it; ha.drill crashing that host
// streams requests through the address, which another host takes over:
// the requests come back, the client's neighbour entry names the new
// holder, and the crashed host, restarted, answers for nothing. The drill
// also streams to the Service's ClusterIP from a VM on another host, and
// those requests come back once HA has declared the crashed host failed.
func TestLoadBalancerFailover(t *testing.T) {
	requireLab(t)
	podsphere, psc := buildBinaries(t)
	before := snapshot(t)
	l := newLabRun(t, podsphere, psc)
	l.up(3)
	l.env = append(l.env, "PSC_LAB="+l.dir)
	s, err := LoadState(l.dir)
	if err != nil || s == nil {
		t.Fatalf("state: %v", err)
	}
	c, err := client.New(s.LocalURL, readToken(l.dir))
	if err != nil {
		t.Fatal(err)
	}
	l.must(psc, "cluster.change", "-ha-enabled", "c1")
	manifest := filepath.Join(t.TempDir(), "web.yaml")
	if err := os.WriteFile(manifest, []byte(lbManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	l.must(psc, "apply", "-f", manifest)
	l.waitReady(c, 3)

	ingress := func() api.LoadBalancerIngress {
		o, err := c.Get(context.Background(), "/dc1/service/web")
		if err != nil {
			return api.LoadBalancerIngress{}
		}
		var st api.ServiceStatus
		_ = o.DecodeStatus(&st)
		if len(st.LoadBalancer.Ingress) == 0 {
			return api.LoadBalancerIngress{}
		}
		return st.LoadBalancer.Ingress[0]
	}
	var in api.LoadBalancerIngress
	if err := waitUntil(context.Background(), 30*time.Second, "the Service's address and its host", func() (bool, error) {
		in = ingress()
		return in.IP != "" && in.Host != "", nil
	}); err != nil {
		t.Fatal(err)
	}
	holder := api.Base(in.Host)
	clientNS, err := ClientNetNS(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	get := func() error {
		hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(ctx context.Context, nw, addr string) (conn net.Conn, err error) {
				err = network.InNetNS(clientNS, func() error { conn, err = (&net.Dialer{}).DialContext(ctx, nw, addr); return err })
				return conn, err
			}}}
		resp, err := hc.Get("http://" + in.IP + "/")
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil
	}
	if err := waitUntil(context.Background(), 30*time.Second, "the address to answer from the lab's client namespace", func() (bool, error) {
		return get() == nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	mac := func(host string) string {
		out, err := l.run("ip", "-n", s.host(host).NetNS, "-br", "link", "show", HostIfName)
		if err != nil {
			t.Fatalf("mac of %s: %v %s", host, err, out)
		}
		return strings.Fields(out)[2]
	}
	neighbour := func() string {
		out, _ := l.run("ip", "-n", filepath.Base(clientNS), "neigh", "show", in.IP)
		return out
	}
	if nb := neighbour(); !strings.Contains(nb, mac(holder)) {
		t.Fatalf("the client resolved %s to %q, want %s's %s", in.IP, nb, holder, mac(holder))
	}

	// The cluster's Ingress address is answered for by its holder too.
	co, err := c.Get(context.Background(), "/dc1/host/c1")
	if err != nil {
		t.Fatal(err)
	}
	var cst api.ClusterStatus
	_ = co.DecodeStatus(&cst)
	if cst.Ingress.IP == "" || cst.Ingress.Host == "" {
		t.Fatalf("the lab's cluster has no Ingress address: %+v", cst.Ingress)
	}
	if err := waitUntil(context.Background(), 10*time.Second, "the cluster's Ingress address to resolve to its holder", func() (bool, error) {
		var hw net.HardwareAddr
		err := network.InNetNS(clientNS, func() error {
			ifi, err := net.InterfaceByName(HostIfName)
			if err != nil {
				return err
			}
			ac, err := arp.Dial(ifi)
			if err != nil {
				return err
			}
			defer ac.Close()
			_ = ac.SetDeadline(time.Now().Add(time.Second))
			hw, err = ac.Resolve(netip.MustParseAddr(cst.Ingress.IP))
			return err
		})
		return err == nil && hw.String() == mac(api.Base(cst.Ingress.Host)), nil
	}); err != nil {
		t.Fatal(err)
	}

	rep := l.drill("-mode", "crash", holder)
	q := rep.Requests
	if q == nil || q.Target != "http://"+in.IP+":80/" || q.Sent == 0 {
		t.Fatalf("the drill sent no requests through %s: %+v", in.IP, q)
	}
	t.Logf("crash of the holder %s: %d sent through %s, %d failed, longest gap %d ms", holder, q.Sent, in.IP, q.Failed, q.LongestGapMs)
	// The same drill streamed to the Service's ClusterIP from inside a VM
	// on a host it left alone, and those requests came back too.
	o, err := c.Get(context.Background(), "/dc1/service/web")
	if err != nil {
		t.Fatal(err)
	}
	var spec api.ServiceSpec
	_ = o.DecodeSpec(&spec)
	v := rep.ClusterIPRequests
	if v == nil || v.Target != "http://"+net.JoinHostPort(spec.ClusterIP, "80")+"/" || v.Sent == 0 || v.FromVM == "" || v.FromHost == "" || v.FromHost == holder {
		t.Fatalf("the drill sent no requests to the ClusterIP %s from a VM off %s: %+v (not sent: %v)", spec.ClusterIP, holder, v, rep.RequestsNotSent)
	}
	t.Logf("ClusterIP stream from %s on %s: %d sent to %s, %d failed, longest gap %d ms", api.Base(v.FromVM), v.FromHost, v.Sent, v.Target, v.Failed, v.LongestGapMs)
	if n := len(v.Outages); n > 0 {
		t.Logf("ClusterIP failures in %d outage(s) from %+.2fs to %+.2fs after the crash (declared %+.2fs, all back %+.2fs)", n,
			v.Outages[0].From.Sub(rep.Injected).Seconds(), v.Outages[n-1].To.Sub(rep.Injected).Seconds(),
			rep.Declared.Sub(rep.Injected).Seconds(), rep.Recovered.Sub(rep.Injected).Seconds())
		t.Logf("ClusterIP last error: %s", v.LastError)
		// Once every VM is back no request fails any more: in particular
		// not when the crashed host, restarted, removes its copy of the
		// VM HA moved (the lab's hosts share /run/netns).
		if last := v.Outages[n-1].From; !rep.Recovered.IsZero() && last.After(rep.Recovered.Add(2*time.Second)) {
			t.Errorf("ClusterIP requests still failed at %+.2fs, after every VM was back at %+.2fs",
				last.Sub(rep.Injected).Seconds(), rep.Recovered.Sub(rep.Injected).Seconds())
		}
	}
	// Closed: its longest gap ended on an answer, not with the stream (the
	// drill sends for 2 s and more after the crashed host is back).
	if v.GapTo.IsZero() || !v.GapTo.Before(rep.Ended.Add(-time.Second)) {
		t.Fatalf("no ClusterIP request answered after the crash (gap %s to %s, drill ended %s; last error %s)", v.GapFrom, v.GapTo, rep.Ended, v.LastError)
	}
	now := ingress()
	if now.IP != in.IP || now.Host == "" || api.Base(now.Host) == holder {
		t.Fatalf("after the crash the address is %+v, want %s held by another host than %s", now, in.IP, holder)
	}
	// The requests came back before the drill ended: the last gap closed.
	if q.GapTo.IsZero() || !q.GapTo.Before(rep.Ended) {
		t.Fatalf("no request answered after the crash (gap %s to %s, drill ended %s)", q.GapFrom, q.GapTo, rep.Ended)
	}
	// The address answers through its new holder (the failures until
	// then are logged).
	fails := 0
	if err := waitUntil(context.Background(), 20*time.Second, "an answer through the address after the move", func() (bool, error) {
		if err := get(); err != nil {
			fails++
			t.Logf("after the move: %v", err)
			return false, nil
		}
		return true, nil
	}); err != nil {
		info, _ := l.run(psc, "svc.info", "web")
		t.Fatalf("%v\nclient's entry: %s\n%s", err, neighbour(), info)
	}
	t.Logf("after the move: answered after %d failed request(s)", fails)
	if nb := neighbour(); !strings.Contains(nb, mac(api.Base(now.Host))) {
		t.Fatalf("the client's entry for %s is %q, want the new holder %s's %s", in.IP, nb, api.Base(now.Host), mac(api.Base(now.Host)))
	}
	// The restarted host holds nothing: its agent answers only for what
	// vcenter gives it.
	log, _ := os.ReadFile(filepath.Join(l.dir, "logs", holder+".log"))
	i := strings.LastIndex(string(log), "answering ARP for this host's")
	if i < 0 {
		t.Fatalf("%s's log does not say where it answers ARP:\n%s", holder, log)
	}
	if restarted := string(log)[i:]; strings.Contains(restarted, "answering for "+in.IP) {
		t.Fatalf("%s answers for %s again after its restart:\n%s", holder, in.IP, restarted)
	}

	l.must(psc, "svc.destroy", "web")
	l.must(podsphere, "lab", "down", "--dir", l.dir)
	l.checkGone(before)
}
