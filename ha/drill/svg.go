package drill

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"

	"github.com/podsphere/podsphere/api"
)

// Colours of the timeline: one per phase a VM goes through.
const (
	colFault    = "#d9534f" // the failure is in effect
	colDown     = "#f2b8b5" // the VM runs nowhere
	colStarting = "#f0ad4e" // registered on its new host, not running yet
	colRunning  = "#9fd49f" // running, not ready yet
	colReady    = "#3c9d3c" // running and ready
	colMarker   = "#333333"
)

// SVG draws the drill's timeline: the failure and what vcenter and HA saw
// on top, then one row per protected VM coloured by phase (down,
// starting, running, ready), duplicates as red lines. Offsets are seconds
// after the injection.
func SVG(r api.HADrillReport) string {
	const left, right, rowH, top = 230, 30, 26, 70
	const width = 1000
	end := r.Ended
	for _, t := range []time.Time{r.Recovered, r.Healed} {
		if t.After(end) {
			end = t
		}
	}
	span := end.Sub(r.Injected).Seconds()
	if span <= 0 {
		span = 1
	}
	plot := float64(width - left - right)
	x := func(t time.Time) float64 {
		if t.IsZero() {
			return float64(left) + plot
		}
		return float64(left) + plot*math.Max(0, t.Sub(r.Injected).Seconds())/span
	}
	rows := 1 + len(r.VMs)
	streams := requestRows(r)
	rows += len(streams) // the requests sent through the Service
	height := top + rows*rowH + 70
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	verdict := "FAILED"
	if r.Passed {
		verdict = "passed"
	}
	title := fmt.Sprintf("ha.drill %s: %s %s", r.Name, r.Mode, strings.Join(r.Hosts, ","))
	if !r.Recovered.IsZero() {
		title += fmt.Sprintf(", every protected VM back in %.2f s", r.RecoverySeconds)
	}
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="15" font-weight="bold">%s (%s)</text>`+"\n", esc(title), verdict)

	// Time axis with a tick per step.
	step := tickStep(span)
	axisY := top - 12
	for s := 0.0; s <= span+1e-9; s += step {
		px := float64(left) + plot*s/span
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#dddddd"/>`, px, axisY, px, top+rows*rowH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#666">+%gs</text>`+"\n", px, axisY-4, s)
	}

	// Row 0: the failure and what was seen of it.
	y := top
	fmt.Fprintf(&b, `<text x="10" y="%d">%s %s</text>`, y+17, esc(r.Mode), esc(strings.Join(r.Hosts, ",")))
	faultEnd := r.Healed
	if faultEnd.IsZero() {
		faultEnd = end
	}
	bar(&b, x(r.Injected), x(faultEnd), y, rowH, colFault, "failure in effect")
	seenWord := "seen"
	if r.Mode == api.DrillMaintenance {
		seenWord = "in maintenance"
	}
	for i, m := range []struct {
		at          time.Time
		word, label string
	}{{r.Detected, seenWord, "notResponding"}, {r.Declared, "declared", "HA: " + r.Verdict}, {r.HostResponseAt, "host response", "host: " + r.HostResponse}} {
		if m.at.IsZero() {
			continue
		}
		px := x(m.at)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2"><title>%s</title></line>`+"\n",
			px, y, px, y+rowH-4, colMarker, esc(m.label+" "+offset(m.at, r.Injected)))
		// Words inside the bar, stacked so markers at the same moment stay readable.
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="9" fill="white">%s</text>`+"\n", px+3, y+11+7*i, esc(m.word))
	}

	for i, v := range r.VMs {
		y = top + (i+1)*rowH
		fmt.Fprintf(&b, `<text x="10" y="%d">%s</text>`, y+17, esc(fmt.Sprintf("%s (%s)", api.Base(v.VM), v.Priority)))
		if v.Outcome == "kept running" {
			bar(&b, x(r.Injected), x(end), y, rowH, colReady, "kept running on "+v.From)
			continue
		}
		down := v.Stopped
		if down.IsZero() {
			down = r.Injected
		}
		bar(&b, x(r.Injected), x(down), y, rowH, colReady, "running on "+v.From)
		bar(&b, x(down), x(v.Restarted), y, rowH, colDown, "down")
		if !v.Restarted.IsZero() {
			bar(&b, x(v.Restarted), x(v.Running), y, rowH, colStarting, "starting on "+v.To)
		}
		if !v.Running.IsZero() {
			bar(&b, x(v.Running), x(v.Ready), y, rowH, colRunning, "running on "+v.To+", not ready")
		}
		if !v.Ready.IsZero() {
			bar(&b, x(v.Ready), x(end), y, rowH, colReady, "ready on "+v.To+" "+offset(v.Ready, r.Injected))
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="white">%s</text>`, x(v.Ready)+3, y+17, esc(v.To))
		}
	}
	for i, st := range streams {
		q := st.q
		y = top + (1+len(r.VMs)+i)*rowH
		fmt.Fprintf(&b, `<text x="10" y="%d">%s</text>`, y+17, esc(st.label))
		bar(&b, x(r.Injected), x(end), y, rowH, colReady, fmt.Sprintf("%d sent to %s from %s, %d failed", q.Sent, q.Target, q.From, q.Failed))
		for _, o := range q.Outages {
			x0, x1 := x(o.From), x(o.To)
			if x1-x0 < 1 {
				x1 = x0 + 1 // a single lost request stays visible
			}
			bar(&b, x0, x1, y, rowH, colFault, fmt.Sprintf("%d failed %s to %s", o.Failed, offset(o.From, r.Injected), offset(o.To, r.Injected)))
		}
		if q.LongestGapMs > 0 && !q.GapFrom.IsZero() {
			// Inside its own row: the rows of both streams stay readable.
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="9">%s</text>`+"\n", x(q.GapFrom)+3, y+rowH/2+3,
				esc(fmt.Sprintf("longest gap %.2f s", float64(q.LongestGapMs)/1000)))
		}
	}
	for _, d := range r.Duplicates {
		px := x(d.At)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="red" stroke-width="3"><title>%s</title></line>`+"\n",
			px, top, px, top+rows*rowH, esc(fmt.Sprintf("duplicate: %s on %s", d.VM, strings.Join(d.Hosts, ", "))))
	}

	// Legend.
	ly := top + rows*rowH + 25
	lx := 10
	for _, l := range []struct{ col, label string }{{colFault, "failure"}, {colDown, "down"}, {colStarting, "starting"},
		{colRunning, "running, not ready"}, {colReady, "ready / answered"}, {"red", "duplicate"}} {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="14" fill="%s"/><text x="%d" y="%d">%s</text>`, lx, ly, l.col, lx+18, ly+12, esc(l.label))
		lx += 30 + 8*len(l.label)
	}
	fmt.Fprintf(&b, `<text x="10" y="%d" fill="#666">%d runtime samples, every %d ms; injected %s</text>`+"\n",
		ly+35, r.Samples, r.SampleIntervalMs, r.Injected.UTC().Format(time.RFC3339Nano))
	b.WriteString("</svg>\n")
	return b.String()
}

// requestStream is one row of requests in the timeline.
type requestStream struct {
	q     *api.DrillRequests
	label string
}

// requestRows are the report's request streams: from outside, then to the
// ClusterIP from a VM.
func requestRows(r api.HADrillReport) []requestStream {
	var out []requestStream
	if q := r.Requests; q != nil {
		out = append(out, requestStream{q, "requests via " + api.Base(q.Service)})
	}
	if q := r.ClusterIPRequests; q != nil {
		out = append(out, requestStream{q, "ClusterIP from " + api.Base(q.FromVM)})
	}
	return out
}

func bar(b *strings.Builder, x0, x1 float64, y, h int, col, title string) {
	if x1 <= x0 {
		return
	}
	fmt.Fprintf(b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`+"\n", x0, y+3, x1-x0, h-6, col, esc(title))
}

// tickStep picks 1, 2, 5, 10... seconds so the axis has at most 12 ticks.
func tickStep(span float64) float64 {
	for _, s := range []float64{0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300} {
		if span/s <= 12 {
			return s
		}
	}
	return 600
}

func esc(s string) string { return html.EscapeString(s) }
