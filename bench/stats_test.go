package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// percentile is the nearest-rank percentile of d (p in 0..100): with 50
// samples p99 is the slowest one.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summary is one line of figures for a sample set.
func summary(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return fmt.Sprintf("n=%d p50=%.1fms p90=%.1fms p99=%.1fms max=%.1fms mean=%.1fms",
		len(d), ms(percentile(d, 50)), ms(percentile(d, 90)), ms(percentile(d, 99)), ms(percentile(d, 100)), ms(sum/time.Duration(len(d))))
}

// phases accumulates named per-sample durations, reported in first-seen order.
type phases struct {
	order []string
	by    map[string][]time.Duration
}

func (p *phases) add(name string, d time.Duration) {
	if p.by == nil {
		p.by = map[string][]time.Duration{}
	}
	if _, ok := p.by[name]; !ok {
		p.order = append(p.order, name)
	}
	p.by[name] = append(p.by[name], d)
}

func (p *phases) String() string {
	var b strings.Builder
	for _, n := range p.order {
		fmt.Fprintf(&b, "  %-28s %s\n", n, summary(p.by[n]))
	}
	return b.String()
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 50; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 25 * time.Millisecond}, {99, 50 * time.Millisecond}, {100, 50 * time.Millisecond}, {0, 1 * time.Millisecond}, {2, 1 * time.Millisecond}} {
		if got := percentile(d, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("empty p50 = %v", got)
	}
}
