package loadgen

import (
	"slices"
	"time"
)

// Summary is what a stream measured.
type Summary struct {
	Start, End   time.Time
	Sent, Failed int
	// LongestGap is the longest time with no answer: between the start,
	// each answered request's answer, and the end. GapFrom and GapTo bound it.
	LongestGap     time.Duration
	GapFrom, GapTo time.Time
	// Outages are the runs of consecutive failed requests, in send order.
	Outages []Outage
	// LastError is the last failure's reason ("" = none failed).
	LastError string
}

// Outage is a run of consecutive failed requests: From is the first one's
// send time, To when the last one was given up on.
type Outage struct {
	From, To time.Time
	Failed   int
}

// Summarize counts results sent between start and end; it is pure, so
// drills can be replayed from recorded results.
func Summarize(start, end time.Time, results []Result) Summary {
	rs := slices.Clone(results)
	slices.SortStableFunc(rs, func(a, b Result) int { return a.Sent.Compare(b.Sent) })
	s := Summary{Start: start, End: end, Sent: len(rs)}
	answers := []time.Time{start}
	var cur *Outage
	for _, r := range rs {
		if r.Err == "" {
			answers = append(answers, r.Answered())
			cur = nil
			continue
		}
		s.Failed++
		s.LastError = r.Err
		if cur == nil {
			s.Outages = append(s.Outages, Outage{From: r.Sent})
			cur = &s.Outages[len(s.Outages)-1]
		}
		cur.Failed++
		cur.To = r.Sent.Add(r.Took)
	}
	answers = append(answers, end)
	// Answers may come back out of send order (a slow one after a fast one).
	slices.SortFunc(answers, time.Time.Compare)
	for i := 1; i < len(answers); i++ {
		if gap := answers[i].Sub(answers[i-1]); gap > s.LongestGap {
			s.LongestGap, s.GapFrom, s.GapTo = gap, answers[i-1], answers[i]
		}
	}
	return s
}
