package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// childEnv makes the test binary a vcenter process: DATADIR:ADDRFILE.
// childListenEnv and childGossipEnv, when set, are its API and gossip
// addresses (a restarted vcenter keeps them, so host agents find it again);
// by default it serves on any loopback port and runs no gossip.
const (
	childEnv       = "VCENTER_CHILD"
	childListenEnv = "VCENTER_CHILD_LISTEN"
	childGossipEnv = "VCENTER_CHILD_GOSSIP"
)

// runChild serves vcenter over the data dir, writes its API address to the
// address file once it answers, and runs until it is killed.
func runChild(spec string) {
	i := strings.LastIndex(spec, ":")
	if i < 0 {
		fmt.Fprintf(os.Stderr, "%s=%q: want DATADIR:ADDRFILE\n", childEnv, spec)
		os.Exit(2)
	}
	dir, addrFile := spec[:i], spec[i+1:]
	logger := log.New(io.Discard, "", 0)
	if os.Getenv("VCENTER_CHILD_VERBOSE") != "" {
		logger = log.New(os.Stderr, "child: ", log.Lmicroseconds)
	}
	cfg := Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: logger}
	if l := os.Getenv(childListenEnv); l != "" {
		cfg.Listen = l
	}
	if g := os.Getenv(childGossipEnv); g != "" {
		cfg.Gossip, cfg.Timings = g, testTimings()
	}
	s, err := New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: New:", err)
		os.Exit(2)
	}
	if err := s.Serve(); err != nil {
		fmt.Fprintln(os.Stderr, "child: Serve:", err)
		os.Exit(2)
	}
	tmp := addrFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(s.Addr()), 0o600); err != nil {
		os.Exit(2)
	}
	if err := os.Rename(tmp, addrFile); err != nil {
		os.Exit(2)
	}
	select {}
}

// child is a vcenter running in another process.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
	admin  *client.Client
	url    string
}

func startChild(t *testing.T, dir string) *child {
	t.Helper()
	return startChildWith(t, dir, nil, nil)
}

// startChildWith starts a vcenter child with extra environment (childListenEnv,
// childGossipEnv, VCENTER_CHILD_VERBOSE); its stderr goes to logw if not nil.
func startChildWith(t *testing.T, dir string, env []string, logw io.Writer) *child {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir+":"+addrFile)
	if testing.Verbose() {
		cmd.Env = append(cmd.Env, "VCENTER_CHILD_VERBOSE=1")
	}
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if logw != nil {
		cmd.Stderr = io.MultiWriter(&stderr, logw)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.exited) }()
	t.Cleanup(c.kill)
	deadline := time.After(60 * time.Second)
	for {
		b, err := os.ReadFile(addrFile)
		if err == nil {
			c.url = "http://" + string(b)
			break
		}
		select {
		case <-c.exited:
			t.Fatalf("vcenter child exited before serving: %s", stderr.String())
		case <-deadline:
			t.Fatal("vcenter child did not serve within 60 s")
		case <-time.After(10 * time.Millisecond):
		}
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	c.admin = newClient(t, c.url, strings.TrimSpace(string(tok)))
	return c
}

// kill is kill -9; it returns once the process is gone.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// ack is an object the API acknowledged with a 2xx.
type ack struct {
	path string
	uid  string
	rv   uint64
	spec json.RawMessage
	n    string // label "n" acknowledged on an update
}

// TestDurabilityUnderKill9 writes from several clients through the HTTP API,
// SIGKILLs vcenter mid-stream, restarts it on the same data dir and checks
// that every acknowledged write is there, whole, and that nothing is half
// written: each VM and pool has the event its create wrote in the same
// transaction, and each such event its object.
func TestDurabilityUnderKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns vcenter child processes")
	}
	dir := t.TempDir()
	var all []ack
	for round := range 3 {
		c := startChild(t, dir)
		ctx := ctxT(t)
		if round == 0 {
			for _, o := range []*api.Object{api.New(api.KindDatacenter, dc, nil), api.New(api.KindCluster, cluster, nil)} {
				if _, err := c.admin.Create(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
		} else {
			checkDurable(t, c, all)
		}
		acks := writeUntilKilled(t, c, round, 150+100*round)
		t.Logf("round %d: %d acknowledged writes before kill -9", round, len(acks))
		all = append(all, acks...)
	}
	c := startChild(t, dir)
	checkDurable(t, c, all)
	c.kill()
}

// writeUntilKilled runs 8 writers against c and kills c once want writes
// were acknowledged; writes acknowledged before the kill took effect count too.
func writeUntilKilled(t *testing.T, c *child, round, want int) []ack {
	t.Helper()
	var (
		mu      sync.Mutex
		acks    []ack
		reached = make(chan struct{})
		once    sync.Once
		wg      sync.WaitGroup
	)
	record := func(a ack) {
		mu.Lock()
		acks = append(acks, a)
		if len(acks) >= want {
			once.Do(func() { close(reached) })
		}
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for w := range 8 {
		wg.Go(func() {
			pp := fmt.Sprintf("%s/r%dw%d", rootRP, round, w)
			counter := fmt.Sprintf("%s/vm/r%dw%d-counter", dc, round, w)
			for i := 0; ; i++ {
				var o *api.Object
				switch {
				case i == 0:
					o = pool(pp, alloc(0, -1, true), nil)
				case i == 1:
					o = vm(api.Base(counter), pp, 0, api.PoweredOff)
					o.Labels = map[string]string{"n": "0"}
				case i%4 == 0:
					// Update the counter VM, with its resourceVersion.
					cur, err := c.admin.Get(ctx, counter)
					if err != nil {
						return
					}
					cur.Labels["n"] = fmt.Sprint(i)
					out, err := c.admin.Update(ctx, cur)
					if err != nil {
						return
					}
					record(ack{path: counter, uid: out.UID, rv: out.ResourceVersion, n: fmt.Sprint(i)})
					continue
				case i%5 == 0:
					o = pool(fmt.Sprintf("%s/p%d", pp, i), alloc(0, -1, true), nil)
				default:
					o = vm(fmt.Sprintf("r%dw%d-%d", round, w, i), pp, 0, api.PoweredOff)
					o.Labels = map[string]string{"writer": fmt.Sprint(w), "seq": fmt.Sprint(i)}
				}
				out, err := c.admin.Create(ctx, o)
				if err != nil {
					if !errors.Is(err, api.ErrUnavailable) {
						t.Errorf("create %s: %v", o.Path, err)
					}
					return // vcenter is gone
				}
				record(ack{path: out.Path, uid: out.UID, rv: out.ResourceVersion, spec: out.Spec})
			}
		})
	}
	select {
	case <-reached:
	case <-c.exited:
		t.Fatal("vcenter child died by itself")
	case <-ctx.Done():
		t.Fatalf("only %d acknowledged writes in 90 s", len(acks))
	}
	c.kill()
	wg.Wait()
	return acks
}

func checkDurable(t *testing.T, c *child, acks []ack) {
	t.Helper()
	ctx := ctxT(t)
	about, err := c.admin.About(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.admin.List(ctx, client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if all.Revision != about.Revision {
		t.Errorf("list at revision %d, about says %d (nothing else writes)", all.Revision, about.Revision)
	}
	objs := map[string]*api.Object{}
	uids := map[string]string{}
	for _, o := range all.Items {
		if o.ResourceVersion == 0 || o.ResourceVersion > all.Revision {
			t.Errorf("%s has resourceVersion %d, store revision %d", o.Path, o.ResourceVersion, all.Revision)
		}
		if p, dup := uids[o.UID]; dup {
			t.Errorf("%s and %s share uid %s", p, o.Path, o.UID)
		}
		uids[o.UID] = o.Path
		objs[o.Path] = o
	}
	for _, a := range acks {
		o := objs[a.path]
		if o == nil {
			t.Errorf("acknowledged %s is gone after kill -9", a.path)
			continue
		}
		if o.UID != a.uid {
			t.Errorf("%s: uid %s, acknowledged %s", a.path, o.UID, a.uid)
		}
		if o.ResourceVersion < a.rv {
			t.Errorf("%s: resourceVersion %d older than the acknowledged %d", a.path, o.ResourceVersion, a.rv)
		}
		if a.spec != nil && o.ResourceVersion == a.rv && !bytes.Equal(o.Spec, a.spec) {
			t.Errorf("%s: spec %s, acknowledged %s", a.path, o.Spec, a.spec)
		}
	}
	// Counters: the last acknowledged label survived (later unacknowledged ones may too).
	last := map[string]int{}
	for _, a := range acks {
		if a.n != "" {
			var n int
			fmt.Sscan(a.n, &n)
			last[a.path] = max(last[a.path], n)
		}
	}
	for p, n := range last {
		var got int
		fmt.Sscan(objs[p].Labels["n"], &got)
		if got < n {
			t.Errorf("%s: label n=%d, but n=%d was acknowledged", p, got, n)
		}
	}

	// No half-written creates: object and create event live or die together.
	created := map[string]int{}
	tasks := map[string]int{}
	for _, o := range all.Items {
		switch o.Kind {
		case api.KindEvent:
			var ev api.EventSpec
			_ = o.DecodeSpec(&ev)
			if ev.Type == "VmCreatedEvent" || ev.Type == "ResourcePoolCreatedEvent" {
				created[ev.Target]++
			}
		case api.KindTask:
			var ts api.TaskSpec
			_ = o.DecodeSpec(&ts)
			if ts.Result == "success" && (ts.Name == "CreateVM_Task" || ts.Name == "CreateResourcePool") {
				tasks[ts.Target]++
			}
		}
	}
	vms := map[string]int{} // pool -> VMs in it
	for _, o := range all.Items {
		if o.Kind != api.KindVirtualMachine && (o.Kind != api.KindResourcePool || o.Path == rootRP) {
			continue
		}
		if created[o.Path] != 1 || tasks[o.Path] != 1 {
			t.Errorf("%s has %d create events and %d create tasks, want 1 and 1", o.Path, created[o.Path], tasks[o.Path])
		}
		if o.Kind == api.KindVirtualMachine {
			var s api.VMSpec
			_ = o.DecodeSpec(&s)
			vms[s.Pool]++
			if objs[s.Pool] == nil {
				t.Errorf("%s is in pool %s, which does not exist", o.Path, s.Pool)
			}
		}
	}
	for target := range created {
		if objs[target] == nil {
			t.Errorf("a create event for %s survived without its object", target)
		}
	}
	// The admission index rebuilt from disk agrees with the objects.
	for p := range vms {
		n := 0 // quota counts the pool's whole subtree
		for q, m := range vms {
			if q == p || strings.HasPrefix(q, p+"/") {
				n += m
			}
		}
		q, err := c.admin.Quota(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if q.Used.VMs != int64(n) {
			t.Errorf("pool %s: quota counts %d VMs, %d are there", p, q.Used.VMs, n)
		}
	}
	// And the restarted vcenter takes writes again, with fresh event keys.
	probe := fmt.Sprintf("probe%d", about.Revision)
	if _, err := c.admin.Create(ctx, vm(probe, rootRP, 0, api.PoweredOff)); err != nil {
		t.Fatalf("create after restart: %v", err)
	}
	l, err := c.admin.List(ctx, client.ListOptions{Kind: api.KindEvent})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range l.Items {
		var ev api.EventSpec
		_ = o.DecodeSpec(&ev)
		if ev.Target == dc+"/vm/"+probe {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d events for the probe VM", n)
	}
	t.Logf("after restart: revision %d, %d objects, %d acknowledged writes checked", all.Revision, len(all.Items), len(acks))
}
