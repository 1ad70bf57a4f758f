package store

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/podsphere/podsphere/api"
)

const crashChildEnv = "STORE_CRASH_CHILD"

// crashRetention is small so the child also compacts the log while it runs.
const crashRetention = 150

type payload struct {
	Writer int    `json:"writer"`
	Seq    int    `json:"seq"`
	Pad    string `json:"pad"`
	N      int    `json:"n,omitempty"`
}

func padFor(w, i int) string { return strings.Repeat(strconv.Itoa(w*1000+i), 20) }

// crashChild writes until it is killed, printing each acknowledged write
// after Update returns. Lines:
//
//	single PATH REV
//	pair PATH_A PATH_B REV
//	counter PATH N REV
func crashChild(dir string) {
	s, err := Open(dir, Options{LogRetention: crashRetention, Logger: quiet})
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(2)
	}
	run := s.Revision() // a fresh namespace for each run on the same directory
	var out sync.Mutex
	ack := func(format string, args ...any) {
		out.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", args...) // unbuffered: one write(2) per ack
		out.Unlock()
	}
	for w := range 8 {
		go func() {
			counter := fmt.Sprintf("/crash/r%d/counter%d", run, w)
			for i := 0; ; i++ {
				switch i % 3 {
				case 0:
					p := fmt.Sprintf("/crash/r%d/w%d/s%d", run, w, i)
					o := api.New(api.KindEvent, p, payload{Writer: w, Seq: i, Pad: padFor(w, i)})
					rev, err := s.Update(func(tx *Tx) error { _, err := tx.Create(o); return err })
					if err != nil {
						ack("error %v", err)
						os.Exit(3)
					}
					ack("single %s %d", p, rev)
				case 1:
					a, b := fmt.Sprintf("/crash/r%d/w%d/a%d", run, w, i), fmt.Sprintf("/crash/r%d/w%d/b%d", run, w, i)
					rev, err := s.Update(func(tx *Tx) error {
						if _, err := tx.Create(api.New(api.KindEvent, a, payload{Writer: w, Seq: i, Pad: padFor(w, i)})); err != nil {
							return err
						}
						_, err := tx.Create(api.New(api.KindEvent, b, payload{Writer: w, Seq: i, Pad: padFor(w, i)}))
						return err
					})
					if err != nil {
						ack("error %v", err)
						os.Exit(3)
					}
					ack("pair %s %s %d", a, b, rev)
				case 2:
					var n int
					rev, err := s.Update(func(tx *Tx) error {
						o, err := tx.Get(counter)
						if err != nil {
							_, err = tx.Create(api.New(api.KindEvent, counter, payload{Writer: w, N: 1}))
							n = 1
							return err
						}
						var p payload
						o.DecodeSpec(&p)
						p.N++
						n = p.N
						o.SetSpec(p)
						_, err = tx.Update(o)
						return err
					})
					if err != nil {
						ack("error %v", err)
						os.Exit(3)
					}
					ack("counter %s %d %d", counter, n, rev)
				}
			}
		}()
	}
	select {}
}

// TestDurabilityUnderKill9 kills a writing child process mid-stream and
// checks that everything it acknowledged survived, whole.
func TestDurabilityUnderKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	for round := range 3 {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			dir := t.TempDir()
			// Two kills on the same directory: the second run starts from a crashed store.
			for kill := range 2 {
				acks := runAndKill(t, dir, 300+100*round)
				s := openAt(t, dir, Options{LogRetention: crashRetention})
				checkAcks(t, s, acks)
				checkConsistent(t, s)
				t.Logf("kill %d: %d acks, store at revision %d with %d objects", kill, len(acks), s.Revision(), len(s.List(Query{}).Items))
				s.Close()
			}
		})
	}
}

func runAndKill(t *testing.T, dir string, wantAcks int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var acks []string
	timeout := time.After(60 * time.Second)
	for len(acks) < wantAcks {
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("child exited after %d acks: %v", len(acks), acks[max(0, len(acks)-3):])
			}
			if strings.HasPrefix(l, "error") || strings.HasPrefix(l, "open failed") {
				t.Fatalf("child: %s", l)
			}
			acks = append(acks, l)
		case <-timeout:
			cmd.Process.Kill()
			t.Fatalf("only %d acks in 60s", len(acks))
		}
	}
	// SIGKILL mid-stream; acks already in the pipe were acknowledged too.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		if strings.Count(l, " ") >= 2 && !strings.HasPrefix(l, "error") {
			acks = append(acks, l)
		}
	}
	cmd.Wait()
	return acks
}

func checkAcks(t *testing.T, s *Store, acks []string) {
	t.Helper()
	intact := func(path string, rv uint64) *api.Object {
		t.Helper()
		o, err := s.Get(path)
		if err != nil {
			t.Fatalf("acknowledged %s is gone: %v", path, err)
		}
		if rv != 0 && o.ResourceVersion != rv {
			t.Fatalf("%s: resourceVersion %d, acknowledged %d", path, o.ResourceVersion, rv)
		}
		var p payload
		if err := o.DecodeSpec(&p); err != nil {
			t.Fatalf("%s: spec %s: %v", path, o.Spec, err)
		}
		if !strings.Contains(path, "counter") && p.Pad != padFor(p.Writer, p.Seq) {
			t.Fatalf("%s: payload corrupted: %+v", path, p)
		}
		return o
	}
	counters := map[string]int{}
	for _, l := range acks {
		f := strings.Fields(l)
		rev, _ := strconv.ParseUint(f[len(f)-1], 10, 64)
		switch f[0] {
		case "single":
			intact(f[1], rev)
		case "pair":
			intact(f[1], rev-1)
			intact(f[2], rev)
		case "counter":
			n, _ := strconv.Atoi(f[2])
			counters[f[1]] = max(counters[f[1]], n)
		default:
			t.Fatalf("bad ack line %q", l)
		}
	}
	for path, n := range counters {
		var p payload
		intact(path, 0).DecodeSpec(&p)
		if p.N < n {
			t.Fatalf("%s: n=%d, but %d was acknowledged", path, p.N, n)
		}
	}
}

// checkConsistent checks the invariants a crash must not break: no object
// newer than the store revision, a contiguous change log ending at it whose
// entries agree with the objects, and no half-written pair.
func checkConsistent(t *testing.T, s *Store) {
	t.Helper()
	rev := s.Revision()
	all := s.List(Query{})
	have := map[string]*api.Object{}
	for _, o := range all.Items {
		if o.ResourceVersion > rev || o.ResourceVersion == 0 {
			t.Fatalf("%s has resourceVersion %d, store revision %d", o.Path, o.ResourceVersion, rev)
		}
		have[o.Path] = o
	}
	for p := range have {
		dir, base := p[:strings.LastIndex(p, "/")+1], api.Base(p)
		var other string
		switch base[0] {
		case 'a':
			other = dir + "b" + base[1:]
		case 'b':
			other = dir + "a" + base[1:]
		default:
			continue
		}
		if _, ok := have[other]; !ok {
			t.Fatalf("half-written pair: %s present, %s missing", p, other)
		}
	}
	// The on-disk log: contiguous, ends at the revision, and each entry's
	// revision is its object's resourceVersion.
	var prev uint64
	var n int
	err := s.db.View(func(txn *badger.Txn) error {
		return scan(txn, prefixLog, func(key, val []byte) error {
			r := binary.BigEndian.Uint64(key[1:])
			if prev != 0 && r != prev+1 {
				return fmt.Errorf("log jumps from %d to %d", prev, r)
			}
			prev = r
			n++
			var ev api.WatchEvent
			if err := json.Unmarshal(val, &ev); err != nil {
				return fmt.Errorf("log entry %d: %v", r, err)
			}
			if ev.Revision != r || ev.Type != api.Deleted && ev.Object.ResourceVersion != r {
				return fmt.Errorf("log entry %d: %s revision %d object rv %d", r, ev.Type, ev.Revision, ev.Object.ResourceVersion)
			}
			if o := have[ev.Object.Path]; o != nil && o.ResourceVersion == r && string(o.Spec) != string(ev.Object.Spec) {
				return fmt.Errorf("log entry %d disagrees with object %s", r, o.Path)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if prev != rev {
		t.Fatalf("log ends at %d, revision is %d", prev, rev)
	}
	if want := min(rev, crashRetention); uint64(n) != want {
		t.Fatalf("log holds %d entries, want %d", n, want)
	}
	// Objects changed within the retained window have their entry there.
	for _, o := range all.Items {
		if o.ResourceVersion > rev-uint64(n) {
			var ev api.WatchEvent
			s.db.View(func(txn *badger.Txn) error {
				v, err := getValue(txn, logKey(o.ResourceVersion))
				if err == nil {
					err = json.Unmarshal(v, &ev)
				}
				return err
			})
			if ev.Object == nil || ev.Object.Path != o.Path {
				t.Fatalf("log entry %d is not for %s", o.ResourceVersion, o.Path)
			}
		}
	}
}

// logOnDisk returns the first change-log revision on disk and how many there are.
func logOnDisk(t *testing.T, s *Store) (first uint64, n int) {
	t.Helper()
	err := s.db.View(func(txn *badger.Txn) error {
		return scan(txn, prefixLog, func(key, _ []byte) error {
			if n == 0 {
				first = binary.BigEndian.Uint64(key[1:])
			}
			n++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return first, n
}
