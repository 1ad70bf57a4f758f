package membership

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestTmpScale(t *testing.T) {
	tm := DefaultTimings()
	tm.ProbeInterval = time.Second
	tm.ProbeTimeout = 500 * time.Millisecond
	tm.LastSeenInterval = 0
	rec := newRecorder()
	vc, err := Start("vcenter", "127.0.0.1:0", "k", tm, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	var ls []*memberlist.Memberlist
	for i := range 200 {
		l := startHost(t, fmt.Sprintf("/dc1/host/c1/h%d", i), "k", tm)
		defer l.Shutdown()
		if _, err := l.Join([]string{vc.Addr()}); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	time.Sleep(20 * time.Second)
	fails := 0
	for _, c := range rec.snapshot() {
		if !c.alive {
			fails++
		}
	}
	t.Logf("false failures in 20s: %d, alive %d", fails, len(vc.Alive()))
	mark := len(rec.snapshot())
	k := time.Now()
	ls[7].Shutdown()
	c, _ := rec.waitFor(t, mark, 30*time.Second, func(c call) bool { return !c.alive && c.name == "/dc1/host/c1/h7" })
	t.Logf("detected in %v (expected %v)", c.at.Sub(k), tm.ExpectedDetection(201))
}
