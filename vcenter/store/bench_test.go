package store

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/labels"
)

// BenchmarkCreate measures durable creates (one object per Update, each
// acknowledged only after fsync) with 1 and 32 concurrent writers; with more
// writers, group commit shares each fsync among many Updates.
func BenchmarkCreate(b *testing.B) {
	for _, writers := range []int{1, 32} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, _ := newStore(b, Options{})
			spec := api.VMSpec{Pool: "/dc1/host/c1/Resources", NumCPU: 2, MemoryMB: 2048, PowerState: api.PoweredOn}
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						o := api.New(api.KindVirtualMachine, fmt.Sprintf("/dc1/vm/vm%d", i), spec)
						if _, err := s.Update(func(tx *Tx) error { _, err := tx.Create(o); return err }); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
			b.ReportMetric(float64(b.N)/float64(max(1, s.commits.Load())), "creates/commit")
		})
	}
}

// populate creates n VMs spread over four datacenters, 2000 per Update.
func populate(b *testing.B, s *Store, n int) {
	const perUpdate = 2000
	spec := api.VMSpec{Pool: "/dc1/host/c1/Resources", NumCPU: 2, MemoryMB: 2048, PowerState: api.PoweredOn,
		Containers: []api.Container{{Name: "web", Image: "nginx:1.27"}}}
	for start := 0; start < n; start += perUpdate {
		_, err := s.Update(func(tx *Tx) error {
			for i := start; i < min(n, start+perUpdate); i++ {
				o := api.New(api.KindVirtualMachine, fmt.Sprintf("/dc%d/vm/vm%06d", i%4, i), spec)
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

// BenchmarkList100k lists a 100k-object inventory from memory.
func BenchmarkList100k(b *testing.B) {
	const total = 100000
	s, _ := newStore(b, Options{})
	populate(b, s, total)
	for _, c := range []struct {
		name string
		q    Query
		want int
	}{
		{"all", Query{}, total},
		{"kind", Query{Kind: api.KindVirtualMachine}, total},
		{"prefix", Query{Prefix: "/dc1"}, total / 4},
		{"labels", Query{Selector: labels.MustParse("app=app3")}, total / 10},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if l := s.List(c.q); len(l.Items) != c.want {
					b.Fatalf("%d items, want %d", len(l.Items), c.want)
				}
			}
		})
	}
}

// BenchmarkOpen100k is vcenter's startup: load 100k objects and a 100k-entry change log.
func BenchmarkOpen100k(b *testing.B) {
	dir := b.TempDir()
	s := openAt(b, dir, Options{})
	populate(b, s, 100000)
	s.Close()
	for b.Loop() {
		s := openAt(b, dir, Options{})
		s.Close()
	}
}
