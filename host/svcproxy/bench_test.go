package svcproxy

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/lb"
)

// bigState is a cluster of nServices Services with nEndpoints ready
// endpoints each over four hosts; one in ten is a NodePort Service.
func bigState(nServices, nEndpoints int) *lb.State {
	hosts := []string{self, "/dc1/host/c1/esx-02", "/dc1/host/c1/esx-03", "/dc1/host/c1/esx-04"}
	st := &lb.State{Cluster: "/dc1/host/c1", Self: self,
		Spec:     api.ClusterSpec{PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/16"},
		Hosts:    map[string]lb.Host{self: {Path: self, Address: hostIP, PodSubnet: "10.244.1.0/24"}},
		Services: make(map[string]lb.Service, nServices)}
	for i := range nServices {
		typ, np := api.ServiceClusterIP, 0
		if i%10 == 0 {
			typ, np = api.ServiceNodePort, 30000+i/10
		}
		s := lb.Service{Version: uint64(i + 1), Path: fmt.Sprintf("/dc1/service/team%d/svc%d", i%50, i), Namespace: fmt.Sprintf("team%d", i%50), Name: fmt.Sprintf("svc%d", i),
			Spec: api.ServiceSpec{Type: typ, ClusterIP: fmt.Sprintf("10.96.%d.%d", i/250, i%250+1),
				Ports: []api.ServicePort{{Port: 80, TargetPort: api.IntOrString{IntVal: 8080}, NodePort: np}}}}
		sub := api.EndpointSubset{Ports: []api.EndpointPort{{Port: 8080, Protocol: "TCP"}}}
		for e := range nEndpoints {
			h := (i + e) % len(hosts)
			sub.Addresses = append(sub.Addresses, api.EndpointAddress{IP: fmt.Sprintf("10.244.%d.%d", h+1, (i*nEndpoints+e)%250+2), Host: hosts[h]})
		}
		s.Status.Subsets = []api.EndpointSubset{sub}
		st.Services[s.Path] = s
	}
	return st
}

// moveOneEndpoint replaces one endpoint of one Service, as a VM restarting
// elsewhere does.
func moveOneEndpoint(st *lb.State, n int) {
	p := fmt.Sprintf("/dc1/service/team%d/svc%d", 7%50, 7)
	s := st.Services[p].Clone()
	s.Status.Subsets[0].Addresses[0].IP = fmt.Sprintf("10.244.9.%d", n%250+2)
	s.Version = uint64(1_000_000 + n) // the store gives every write a new version
	st.Services[p] = s
}

func BenchmarkRulesGenerate10k(b *testing.B) {
	st := bigState(10000, 5)
	b.ResetTimer()
	for range b.N {
		lb.Rules(st)
	}
}

// benchNS is an empty network namespace for one measurement.
func benchNS(b *testing.B) string {
	b.Helper()
	name := fmt.Sprintf("psrb%04x", rand.IntN(0xffff))
	path, err := network.CreateNamedNetNS(name)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = network.DeleteNamedNetNS(name) })
	return path
}

func newBench(b *testing.B, cfg IPTablesConfig) (*IPTables, error) {
	cfg.NetNS = benchNS(b)
	return NewIPTables(cfg)
}

func requireRootB(b *testing.B) {
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		b.Skip("iptables-restore not installed")
	}
	if out, err := exec.Command("id", "-u").Output(); err != nil || string(bytes.TrimSpace(out)) != "0" {
		b.Skip("needs root (creates network namespaces and iptables rules in them)")
	}
}

// benchConfig is the scale and the iptables flavour of BenchmarkSync:
// PSR_BENCH_SERVICES (default 10000) Services of 5 endpoints, and
// PSR_BENCH_IPTABLES=legacy for iptables-legacy (default: the system's
// iptables, nf_tables-backed on this machine).
func benchConfig() (int, IPTablesConfig, string) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("PSR_BENCH_SERVICES")); err == nil && v > 0 {
		n = v
	}
	if os.Getenv("PSR_BENCH_IPTABLES") == "legacy" {
		return n, IPTablesConfig{Iptables: "/usr/sbin/iptables-legacy", Restore: "/usr/sbin/iptables-legacy-restore"}, "/usr/sbin/iptables-legacy-restore"
	}
	return n, IPTablesConfig{}, "iptables-restore"
}

// The figures docs/benchmarks.md reports: go test ./host/svcproxy -run '^$'
// -bench Sync -benchtime 3x (root; each run in fresh namespaces).
func BenchmarkSync(b *testing.B) {
	requireRootB(b)
	ctx := context.Background()
	n, cfg, restore := benchConfig()
	st := bigState(n, 5)
	rs := lb.Rules(st)
	text := lb.Restore(rs.Chains(), nil)
	rules := bytes.Count(text, []byte("\n-A "))
	b.Logf("%d Services x 5 endpoints (%s): %d chains, %d rules, %d KB of iptables-restore input", n, restore, len(rs.Chains()), rules, len(text)/1024)

	b.Run("floor-iptables-restore", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			ns := benchNS(b)
			b.StartTimer()
			err := network.InNetNS(ns, func() error {
				cmd := exec.Command(restore, "-w", "5", "--noflush")
				cmd.Stdin = bytes.NewReader(text)
				out, err := cmd.CombinedOutput()
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full-sync-empty-host", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			be, err := newBench(b, cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := be.Full(ctx, lb.Rules(st)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full-sync-adopting", func(b *testing.B) {
		be, err := newBench(b, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := be.Full(ctx, rs); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if err := be.Full(ctx, lb.Rules(st)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one-endpoint-change", func(b *testing.B) {
		be, err := newBench(b, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := be.Full(ctx, rs); err != nil {
			b.Fatal(err)
		}
		p, err := New(Config{Backend: be})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		cur := bigState(n, 5)
		if err := p.ApplyLB(ctx, cur); err != nil { // the adopting full sync
			b.Fatal(err)
		}
		b.ResetTimer()
		var worst time.Duration
		for i := range b.N {
			moveOneEndpoint(cur, i)
			start := time.Now()
			if err := p.ApplyLB(ctx, cur); err != nil {
				b.Fatal(err)
			}
			worst = max(worst, time.Since(start))
		}
		b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
	})
}

// The CPU a one-endpoint change costs before iptables-restore runs.
func BenchmarkRulesOneChange10k(b *testing.B) {
	st := bigState(10000, 5)
	gn := lb.NewGenerator()
	was := gn.Rules(st)
	b.ResetTimer()
	for i := range b.N {
		moveOneEndpoint(st, i)
		rs := gn.Rules(st)
		lb.Restore(lb.Diff(was, rs))
		was = rs
	}
}

// The nftables figures of docs/benchmarks.md: go test ./host/svcproxy
// -run '^$' -bench NftSync -benchtime 3x (root; fresh namespaces). The
// floor is `nft -f` of the same table as text (lb.NftText), the nft
// binary's own single transaction.
func BenchmarkNftSync(b *testing.B) {
	requireRootB(b)
	if _, err := exec.LookPath("nft"); err != nil {
		b.Skip("nft not installed (apt-get install nftables)")
	}
	ctx := context.Background()
	n, _, _ := benchConfig()
	st := bigState(n, 5)
	rs := lb.NftRules(st)
	text := lb.NftText(rs)
	all := lb.NftDiff(nil, rs)
	rules := 0
	for _, c := range all.Write {
		rules += len(c.Rules)
	}
	b.Logf("%d Services x 5 endpoints: %d chains, %d rules, %d map elements, %d KB of nft -f input", n, len(all.Write), rules, len(all.AddElems), len(text)/1024)

	b.Run("floor-nft-f", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			ns := benchNS(b)
			b.StartTimer()
			err := network.InNetNS(ns, func() error {
				cmd := exec.Command("nft", "-f", "-")
				cmd.Stdin = bytes.NewReader(text)
				out, err := cmd.CombinedOutput()
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	newNft := func(b *testing.B) *NFTables {
		be, err := NewNFTables(NFTablesConfig{NetNS: benchNS(b)})
		if err != nil {
			b.Fatal(err)
		}
		return be
	}
	b.Run("full-sync-empty-host", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			be := newNft(b)
			b.StartTimer()
			if err := be.Sync(ctx, st, true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full-sync-adopting", func(b *testing.B) {
		be := newNft(b)
		if err := be.Sync(ctx, st, true); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			// A restarted agent: a new backend, nothing remembered.
			b.StopTimer()
			nb, err := NewNFTables(NFTablesConfig{NetNS: be.netns})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := nb.Sync(ctx, st, true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one-endpoint-change", func(b *testing.B) {
		be := newNft(b)
		p, err := New(Config{Backend: be})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		cur := bigState(n, 5)
		if err := p.ApplyLB(ctx, cur); err != nil { // the full sync
			b.Fatal(err)
		}
		b.ResetTimer()
		var worst time.Duration
		for i := range b.N {
			moveOneEndpoint(cur, i)
			start := time.Now()
			if err := p.ApplyLB(ctx, cur); err != nil {
				b.Fatal(err)
			}
			worst = max(worst, time.Since(start))
		}
		b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
	})
}

// The CPU a one-endpoint change costs on the nftables backend before the
// netlink batch: the rules of the changed Service, the shards and the
// diff (no root).
func BenchmarkNftRulesOneChange10k(b *testing.B) {
	st := bigState(10000, 5)
	gn := lb.NewNftGenerator()
	shardOf := map[string]uint32{}
	was := split(gn.Rules(st), shardOf)
	b.ResetTimer()
	for i := range b.N {
		moveOneEndpoint(st, i)
		rs := split(gn.Rules(st), shardOf)
		for k := range rs {
			lb.NftDiff(was[k], rs[k])
		}
		was = rs
	}
}
