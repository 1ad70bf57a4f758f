package store

import (
	"errors"
	"io"
	"log"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/labels"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir) // never returns: runs until the parent kills it
	}
	os.Exit(m.Run())
}

var quiet = log.New(io.Discard, "", 0)

// testClock ticks one second per reading, so Created/Modified are deterministic.
func testClock() func() time.Time {
	var n atomic.Int64
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Second) }
}

func openAt(t testing.TB, dir string, opt Options) *Store {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = quiet
	}
	if opt.Now == nil {
		opt.Now = testClock()
	}
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func newStore(t testing.TB, opt Options) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s := openAt(t, dir, opt)
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func vm(path, host string, lbls map[string]string) *api.Object {
	o := api.New(api.KindVirtualMachine, path, api.VMSpec{Host: host, NumCPU: 1, MemoryMB: 512})
	o.Labels = lbls
	return o
}

func create(t testing.TB, s *Store, objs ...*api.Object) uint64 {
	t.Helper()
	rev, err := s.Update(func(tx *Tx) error {
		for _, o := range objs {
			if _, err := tx.Create(o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return rev
}

func paths(items []*api.Object) []string {
	var out []string
	for _, o := range items {
		out = append(out, o.Path)
	}
	return out
}

func TestCreateGetUpdateDelete(t *testing.T) {
	s, dir := newStore(t, Options{})
	var created *api.Object
	rev, err := s.Update(func(tx *Tx) error {
		var err error
		created, err = tx.Create(vm("/dc1/vm/web", "h1", map[string]string{"app": "web"}))
		return err
	})
	if err != nil || rev != 1 || s.Revision() != 1 {
		t.Fatalf("create: rev %d, store rev %d, err %v", rev, s.Revision(), err)
	}
	if len(created.UID) != 32 || created.ResourceVersion != 1 || created.Created.IsZero() || !created.Modified.Equal(created.Created) {
		t.Fatalf("create did not stamp metadata: %+v", created.Meta)
	}
	got, err := s.Get("/dc1/vm/web")
	if err != nil || !reflect.DeepEqual(got, created) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, created)
	}
	// Handed-out objects are copies.
	got.Labels["app"] = "changed"
	got.Spec[0] = 'X'
	if again, _ := s.Get("/dc1/vm/web"); again.Labels["app"] != "web" || again.Spec[0] != '{' {
		t.Fatalf("cache aliased through Get: %+v %s", again.Labels, again.Spec)
	}

	_, err = s.Update(func(tx *Tx) error { _, err := tx.Create(vm("/dc1/vm/web", "", nil)); return err })
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), `"/dc1/vm/web" already exists`) {
		t.Fatalf("duplicate create: %v", err)
	}

	upd := created.Clone()
	upd.SetSpec(api.VMSpec{Host: "h2"})
	var updated *api.Object
	rev, err = s.Update(func(tx *Tx) error { var err error; updated, err = tx.Update(upd); return err })
	if err != nil || rev != 2 || updated.ResourceVersion != 2 || updated.UID != created.UID ||
		!updated.Created.Equal(created.Created) || !updated.Modified.After(created.Modified) {
		t.Fatalf("update: rev %d err %v obj %+v", rev, err, updated.Meta)
	}

	// Stale resourceVersion: the message tells the user what happened.
	_, err = s.Update(func(tx *Tx) error { _, err := tx.Update(upd); return err })
	want := `VirtualMachine "/dc1/vm/web" has been modified (resourceVersion 2, you sent 1)`
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), want) {
		t.Fatalf("stale update: %v; want %q", err, want)
	}
	err = update(s, func(tx *Tx) error { return tx.Delete("/dc1/vm/web", 1) })
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), want) {
		t.Fatalf("stale delete: %v", err)
	}
	_, err = s.Update(func(tx *Tx) error { _, err := tx.Update(vm("/dc1/vm/nope", "", nil)); return err })
	if !errors.Is(err, api.ErrNotFound) || !strings.Contains(err.Error(), "/dc1/vm/nope") {
		t.Fatalf("update missing: %v", err)
	}
	_, err = s.Update(func(tx *Tx) error {
		_, err := tx.Create(&api.Object{Meta: api.Meta{Kind: "VirtualMachine", Path: "rel"}})
		return err
	})
	if !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("relative path: %v", err)
	}
	_, err = s.Update(func(tx *Tx) error {
		_, err := tx.Create(&api.Object{Meta: api.Meta{Kind: "VirtualMachine", Path: "/dc1/vm/bad"}, Spec: []byte("{nope")})
		return err
	})
	if !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("invalid spec: %v", err)
	}

	// Survives a reopen byte for byte.
	s.Close()
	s = openAt(t, dir, Options{})
	if got, err := s.Get("/dc1/vm/web"); err != nil || !reflect.DeepEqual(got, updated) {
		t.Fatalf("after reopen Get = %+v, %v; want %+v", got, err, updated)
	}
	if s.Revision() != 2 {
		t.Fatalf("revision after reopen = %d", s.Revision())
	}

	if err := update(s, func(tx *Tx) error { return tx.Delete("/dc1/vm/web", 2) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("/dc1/vm/web"); !errors.Is(err, api.ErrNotFound) || !strings.Contains(err.Error(), "/dc1/vm/web") {
		t.Fatalf("Get after delete: %v", err)
	}
	if err := update(s, func(tx *Tx) error { return tx.Delete("/dc1/vm/web", 0) }); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
	s.Close()
}

// update drops the revision, for brevity in tests.
func update(s *Store, fn func(tx *Tx) error) error { _, err := s.Update(fn); return err }

func TestQuery(t *testing.T) {
	s, _ := newStore(t, Options{})
	create(t, s,
		api.New(api.KindDatacenter, "/dc1", nil),
		api.New(api.KindCluster, "/dc1/host/c1", nil),
		api.New(api.KindCluster, "/dc1/host/c10", nil),
		api.New(api.KindCluster, "/dc1/host/c1-x", nil),
		api.New(api.KindHost, "/dc1/host/c1/h1", nil),
		api.New(api.KindResourcePool, "/dc1/host/c1/Resources", nil),
		api.New(api.KindResourcePool, "/dc1/host/c1/Resources/dev", nil),
		vm("/dc1/vm/a", "/dc1/host/c1/h1", map[string]string{"app": "web", "tier": "fe"}),
		vm("/dc1/vm/b", "/dc1/host/c1/h2", map[string]string{"app": "web", "tier": "db"}),
		vm("/dc2/vm/c", "/dc1/host/c1/h1", map[string]string{"app": "db"}),
	)
	onH1 := func(o *api.Object) bool {
		var spec api.VMSpec
		return o.DecodeSpec(&spec) == nil && spec.Host == "/dc1/host/c1/h1"
	}
	for _, c := range []struct {
		name string
		q    Query
		want string
	}{
		{"all", Query{}, "/dc1 /dc1/host/c1 /dc1/host/c1-x /dc1/host/c1/Resources /dc1/host/c1/Resources/dev /dc1/host/c1/h1 /dc1/host/c10 /dc1/vm/a /dc1/vm/b /dc2/vm/c"},
		{"root", Query{Prefix: "/"}, "/dc1 /dc1/host/c1 /dc1/host/c1-x /dc1/host/c1/Resources /dc1/host/c1/Resources/dev /dc1/host/c1/h1 /dc1/host/c10 /dc1/vm/a /dc1/vm/b /dc2/vm/c"},
		{"element-wise prefix", Query{Prefix: "/dc1/host/c1"}, "/dc1/host/c1 /dc1/host/c1/Resources /dc1/host/c1/Resources/dev /dc1/host/c1/h1"},
		{"trailing slash", Query{Prefix: "/dc1/host/c1/"}, "/dc1/host/c1 /dc1/host/c1/Resources /dc1/host/c1/Resources/dev /dc1/host/c1/h1"},
		{"leaf", Query{Prefix: "/dc1/host/c1/h1"}, "/dc1/host/c1/h1"},
		{"no such prefix", Query{Prefix: "/dc1/host/c"}, ""},
		{"kind", Query{Kind: api.KindCluster}, "/dc1/host/c1 /dc1/host/c1-x /dc1/host/c10"},
		{"kind and prefix", Query{Kind: api.KindResourcePool, Prefix: "/dc1/host/c1"}, "/dc1/host/c1/Resources /dc1/host/c1/Resources/dev"},
		{"labels", Query{Selector: labels.MustParse("app=web")}, "/dc1/vm/a /dc1/vm/b"},
		{"labels all must match", Query{Selector: labels.MustParse("app=web,tier=db")}, "/dc1/vm/b"},
		{"label prefix", Query{Prefix: "/dc1", Selector: labels.MustParse("app=db")}, ""},
		{"label set", Query{Selector: labels.MustParse("tier in (db,fe)")}, "/dc1/vm/a /dc1/vm/b"},
		{"label != includes unlabelled", Query{Kind: api.KindVirtualMachine, Selector: labels.MustParse("tier!=db")}, "/dc1/vm/a /dc2/vm/c"},
		{"label does not exist", Query{Prefix: "/dc1/host/c1", Selector: labels.MustParse("!app")}, "/dc1/host/c1 /dc1/host/c1/Resources /dc1/host/c1/Resources/dev /dc1/host/c1/h1"},
		{"label exists", Query{Selector: labels.MustParse("tier")}, "/dc1/vm/a /dc1/vm/b"},
		{"filter", Query{Kind: api.KindVirtualMachine, Filter: onH1}, "/dc1/vm/a /dc2/vm/c"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := s.List(c.q)
			if got := strings.Join(paths(l.Items), " "); got != c.want {
				t.Errorf("List = %q\nwant   %q", got, c.want)
			}
			if l.Revision != s.Revision() {
				t.Errorf("list revision %d, store %d", l.Revision, s.Revision())
			}
			var inTx string
			s.Update(func(tx *Tx) error { inTx = strings.Join(paths(tx.List(c.q)), " "); return nil })
			if inTx != c.want {
				t.Errorf("Tx.List = %q", inTx)
			}
		})
	}
	q := Query{Prefix: "/dc1/host/c1"}
	for p, want := range map[string]bool{"/dc1/host/c1": true, "/dc1/host/c1/h1": true, "/dc1/host/c10": false, "/dc1/host": false, "/dc1/host/c1-x": false} {
		if got := q.Matches(&api.Object{Meta: api.Meta{Path: p}}); got != want {
			t.Errorf("Matches(%s) = %v", p, got)
		}
	}
}

func TestUpdateIsAtomic(t *testing.T) {
	s, dir := newStore(t, Options{})
	create(t, s, vm("/dc1/vm/keep", "", nil))

	boom := errors.New("boom")
	_, err := s.Update(func(tx *Tx) error {
		tx.Create(vm("/dc1/vm/x", "", nil))
		tx.Create(vm("/dc1/vm/y", "", nil))
		tx.Delete("/dc1/vm/keep", 0)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if l := s.List(Query{}); l.Revision != 1 || strings.Join(paths(l.Items), " ") != "/dc1/vm/keep" {
		t.Fatalf("failed fn wrote: rev %d %v", l.Revision, paths(l.Items))
	}

	// fn sees its own earlier writes.
	var leaked *Tx
	rev, err := s.Update(func(tx *Tx) error {
		leaked = tx
		for _, p := range []string{"/dc1/vm/p1", "/dc1/vm/p2", "/dc1/vm/p3"} {
			if _, err := tx.Create(vm(p, "", nil)); err != nil {
				return err
			}
		}
		if err := tx.Delete("/dc1/vm/keep", 0); err != nil {
			return err
		}
		if _, err := tx.Get("/dc1/vm/keep"); !errors.Is(err, api.ErrNotFound) {
			return errors.New("deleted object still visible in tx")
		}
		if got := strings.Join(paths(tx.List(Query{})), " "); got != "/dc1/vm/p1 /dc1/vm/p2 /dc1/vm/p3" {
			return errors.New("tx.List = " + got)
		}
		p2, err := tx.Get("/dc1/vm/p2")
		if err != nil || p2.ResourceVersion != 3 {
			return errors.New("tx.Get of own write")
		}
		p2.Labels = map[string]string{"x": "y"}
		_, err = tx.Update(p2)
		return err
	})
	if err != nil || rev != 6 {
		t.Fatalf("multi-write: rev %d err %v", rev, err)
	}
	if _, err := leaked.Create(vm("/dc1/vm/late", "", nil)); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("tx used after Update returned: %v", err)
	}

	s.Close()
	s = openAt(t, dir, Options{})
	defer s.Close()
	if l := s.List(Query{}); l.Revision != 6 || strings.Join(paths(l.Items), " ") != "/dc1/vm/p1 /dc1/vm/p2 /dc1/vm/p3" {
		t.Fatalf("after reopen: rev %d %v", l.Revision, paths(l.Items))
	}
	if p2, _ := s.Get("/dc1/vm/p2"); p2.ResourceVersion != 6 || p2.Labels["x"] != "y" {
		t.Fatalf("p2 after reopen: %+v", p2.Meta)
	}
}

func TestUpdateTooLarge(t *testing.T) {
	s, _ := newStore(t, Options{})
	big := `"` + strings.Repeat("x", 1<<20) + `"`
	_, err := s.Update(func(tx *Tx) error {
		for i := range 20 {
			o := api.New(api.KindImage, "/library/img"+string(rune('a'+i)), nil)
			o.Spec = []byte(big)
			if _, err := tx.Create(o); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("err = %v", err)
	}
	if s.Revision() != 0 {
		t.Fatalf("revision = %d", s.Revision())
	}
}

func TestIndexHooks(t *testing.T) {
	s, dir := newStore(t, Options{})
	create(t, s, vm("/dc1/vm/a", "h1", nil), vm("/dc1/vm/b", "h1", nil), vm("/dc1/vm/c", "h2", nil))
	s.Close()
	s = openAt(t, dir, Options{})
	defer s.Close()

	// Per-host VM count, as vcenter's placement would keep it.
	perHost := map[string]int{}
	var calls []string
	host := func(o *api.Object) string {
		var spec api.VMSpec
		o.DecodeSpec(&spec)
		return spec.Host
	}
	s.AddIndex(func(old, new *api.Object) {
		switch {
		case old == nil:
			calls = append(calls, "add "+new.Path)
			perHost[host(new)]++
		case new == nil:
			calls = append(calls, "del "+old.Path)
			perHost[host(old)]--
		default:
			calls = append(calls, "mod "+new.Path)
			perHost[host(old)]--
			perHost[host(new)]++
		}
		if new != nil {
			new.Labels = map[string]string{"hooks": "get copies"}
		}
	})
	if got := strings.Join(calls, ","); got != "add /dc1/vm/a,add /dc1/vm/b,add /dc1/vm/c" {
		t.Fatalf("calls at registration: %s", got)
	}
	calls = nil
	err := update(s, func(tx *Tx) error {
		b, _ := tx.Get("/dc1/vm/b")
		b.SetSpec(api.VMSpec{Host: "h2"})
		if _, err := tx.Update(b); err != nil {
			return err
		}
		if err := tx.Delete("/dc1/vm/a", 0); err != nil {
			return err
		}
		_, err := tx.Create(vm("/dc1/vm/d", "h3", nil))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(calls, ","); got != "mod /dc1/vm/b,del /dc1/vm/a,add /dc1/vm/d" {
		t.Fatalf("calls: %s", got)
	}
	if !reflect.DeepEqual(perHost, map[string]int{"h1": 0, "h2": 2, "h3": 1}) {
		t.Fatalf("perHost = %v", perHost)
	}
	if d, _ := s.Get("/dc1/vm/d"); d.Labels != nil {
		t.Fatalf("hook aliased the cache: %v", d.Labels)
	}
	// A failed fn calls no hooks.
	calls = nil
	s.Update(func(tx *Tx) error { tx.Create(vm("/dc1/vm/e", "", nil)); return errors.New("no") })
	if len(calls) != 0 {
		t.Fatalf("hooks called for a failed fn: %v", calls)
	}
}

func TestGroupCommit(t *testing.T) {
	s, _ := newStore(t, Options{})
	const writers, each = 32, 20
	var wg sync.WaitGroup
	revs := make(chan uint64, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rev, err := s.Update(func(tx *Tx) error {
					_, err := tx.Create(vm("/dc1/vm/w"+strconv.Itoa(w)+"-"+strconv.Itoa(i), "", nil))
					return err
				})
				if err != nil {
					t.Error(err)
				}
				revs <- rev
			}
		})
	}
	wg.Wait()
	close(revs)
	seen := map[uint64]bool{}
	for r := range revs {
		if seen[r] || r < 1 || r > writers*each {
			t.Fatalf("revision %d duplicated or out of range", r)
		}
		seen[r] = true
	}
	commits := s.commits.Load()
	t.Logf("%d updates in %d Badger commits", writers*each, commits)
	if commits >= writers*each {
		t.Errorf("no group commit: %d commits for %d updates", commits, writers*each)
	}
}

// A commit error leaves the cache ahead of the disk: the store must refuse
// further writes rather than acknowledge a history it cannot keep.
func TestCommitFailureIsFatal(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, Options{})
	create(t, s, vm("/dc1/vm/a", "", nil))
	w, err := s.Watch(t.Context(), Query{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.db.Close() // pull the database out from under the store

	_, err = s.Update(func(tx *Tx) error { _, err := tx.Create(vm("/dc1/vm/b", "", nil)); return err })
	if !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("commit error = %v", err)
	}
	_, err = s.Update(func(tx *Tx) error { _, err := tx.Create(vm("/dc1/vm/c", "", nil)); return err })
	if !errors.Is(err, api.ErrUnavailable) || !strings.Contains(err.Error(), "restart vcenter") {
		t.Fatalf("later update = %v", err)
	}
	for range w.Events() {
	}
	if !errors.Is(w.Err(), api.ErrUnavailable) {
		t.Fatalf("watcher err = %v", w.Err())
	}
	if _, err := s.Watch(t.Context(), Query{}, 0); !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("watch on failed store = %v", err)
	}
	s.Close()

	s = openAt(t, dir, Options{})
	defer s.Close()
	if l := s.List(Query{}); l.Revision != 1 || len(l.Items) != 1 {
		t.Fatalf("after restart: rev %d items %v", l.Revision, paths(l.Items))
	}
}
