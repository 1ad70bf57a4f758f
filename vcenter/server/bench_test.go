package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/vcenter/store"
)

// BenchmarkAPICreate measures acknowledged durable VM creates through the
// HTTP API (each answered only after its VM, event and task are fsynced),
// with 1 and 32 concurrent clients, and the latency of each create.
//
//	go test -run '^$' -bench BenchmarkAPICreate -benchtime 3000x ./vcenter/server/
func BenchmarkAPICreate(b *testing.B) {
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			e := startVCenter(b, Config{})
			e.inventory(b, nil)
			e.joinHost(b, "esx-01", 100000, 1<<20)
			ctx := context.Background()
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range clients {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						o := vm(fmt.Sprintf("vm%07d", i), rootRP, 0, api.PoweredOff)
						o.Labels = map[string]string{"app": fmt.Sprintf("app%d", i%10)}
						start := time.Now()
						if _, err := e.admin.Create(ctx, o); err != nil {
							b.Error(err)
							return
						}
						lat[i] = time.Since(start)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
			b.ReportMetric(float64(lat[len(lat)*50/100].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
			b.ReportMetric(0, "ns/op") // throughput and latency say it; ns/op of concurrent clients misleads
		})
	}
}

// seedVMs writes n VMs straight into the store, 2000 per transaction, shaped
// as the API would have stored them; the admission index follows as usual.
func seedVMs(b *testing.B, s *Server, n int) {
	b.Helper()
	spec := api.VMSpec{Pool: rootRP, NumCPU: 2, MemoryMB: 2048, CPU: alloc(0, -1, true), Mem: alloc(0, -1, true),
		PowerState: api.PoweredOff, Containers: []api.Container{{Name: "web", Image: "nginx:1.27"}}}
	const perTx = 2000
	for start := 0; start < n; start += perTx {
		_, err := s.store.Update(func(tx *store.Tx) error {
			for i := start; i < min(n, start+perTx); i++ {
				o := api.New(api.KindVirtualMachine, fmt.Sprintf("%s/vm/vm%06d", dc, i), spec)
				o.Labels = map[string]string{"app": fmt.Sprintf("app%d", i%10)}
				if _, err := tx.Create(o); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAPIList100k lists 100,000 VMs through the HTTP API: "client"
// decodes them as psc does, "http" only reads the body (server time plus
// transfer), "selector" lists the tenth of them matching a label.
//
//	go test -run '^$' -bench BenchmarkAPIList100k -benchtime 10x ./vcenter/server/
func BenchmarkAPIList100k(b *testing.B) {
	const total = 100000
	e := startVCenter(b, Config{})
	e.inventory(b, nil)
	seedVMs(b, e.s, total)
	ctx := context.Background()

	b.Run("client", func(b *testing.B) {
		for b.Loop() {
			l, err := e.admin.List(ctx, client.ListOptions{Kind: api.KindVirtualMachine})
			if err != nil || len(l.Items) != total {
				b.Fatalf("list: %v (%d items)", err, len(l.Items))
			}
		}
	})
	b.Run("http", func(b *testing.B) {
		url := e.url + "/api/v1/list?kind=" + api.KindVirtualMachine
		var size int64
		for b.Loop() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			req.Header.Set("Authorization", "Bearer "+e.s.AdminToken())
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("GET list: %v %v", err, resp)
			}
			size, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		b.ReportMetric(float64(size)/(1<<20), "MB/list")
	})
	b.Run("selector", func(b *testing.B) {
		for b.Loop() {
			l, err := e.admin.List(ctx, client.ListOptions{Kind: api.KindVirtualMachine, Selector: "app=app3"})
			if err != nil || len(l.Items) != total/10 {
				b.Fatalf("list: %v (%d items)", err, len(l.Items))
			}
		}
	})
}
