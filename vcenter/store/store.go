// Package store owns vcenter's inventory: every object, the global revision
// counter and the change log watchers resume from. Objects live in an embedded
// Badger v4 database and in an in-memory cache loaded at Open; reads and
// watches are served from memory, writes are group-committed to Badger with
// SyncWrites so an acknowledged Update survives kill -9.
//
// The key schema and the operational notes are in docs/store.md.
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"maps"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/google/btree"

	"github.com/podsphere/podsphere/api"
)

// Defaults, each with the reason beside it.
const (
	// DefaultLogRetention keeps ~100k changes: enough for a watcher (a host
	// agent, the API server's clients) to reconnect after a minute-long blip
	// at a busy vcenter without a full re-list.
	DefaultLogRetention = 100000
	// DefaultWatchBacklog is how many undelivered events a watcher may hold
	// before it is closed; a stalled client must not grow vcenter's memory
	// without bound, and it can always re-list and watch again.
	DefaultWatchBacklog = 10000
	// DefaultGCInterval runs Badger's value-log GC every few minutes: values
	// are small and mostly stay in the LSM tree, so there is little to reclaim.
	DefaultGCInterval = 5 * time.Minute
	// gcDiscardRatio is Badger's recommended ratio: rewrite a value-log file
	// when half of it is garbage.
	gcDiscardRatio = 0.5
)

// formatVersion is stored under keyFormat; Open refuses any other.
const formatVersion = "1"

// Key schema (documented for operators in docs/store.md).
var (
	prefixObject = []byte("o")          // o<path>            -> api.Object JSON
	prefixLog    = []byte("l")          // l<8-byte BE rev>   -> api.WatchEvent JSON
	keyRevision  = []byte("m/revision") // 8-byte BE: revision of the last committed mutation
	keyOldest    = []byte("m/oldest")   // 8-byte BE: oldest change-log revision kept on disk
	keyFormat    = []byte("m/format")   // "1"
)

func objectKey(path string) []byte { return append(append([]byte(nil), prefixObject...), path...) }

func logKey(rev uint64) []byte {
	k := make([]byte, len(prefixLog)+8)
	copy(k, prefixLog)
	binary.BigEndian.PutUint64(k[len(prefixLog):], rev)
	return k
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// ErrCompacted is wrapped by Watch when the requested revision is older than
// the oldest change the log still holds. It is an api.ErrGone, so the API
// answers 410 Gone.
var ErrCompacted error = &sentinelError{msg: "revision compacted", sentinel: api.ErrGone}

// sentinelError is a store error of its own that also matches an api sentinel,
// without the sentinel's text in its message.
type sentinelError struct {
	msg      string
	sentinel error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.sentinel }

// ErrFellBehind is wrapped by Watcher.Err when the watcher's consumer fell
// more than Options.WatchBacklog events behind and was closed.
var ErrFellBehind = errors.New("watcher fell behind")

// Options tune a Store. The zero value is usable.
type Options struct {
	// LogRetention is how many change-log entries are kept for watchers that
	// resume from an old revision (default 100000).
	LogRetention int
	// WatchBacklog is how many undelivered events a watcher may hold before it
	// is closed with ErrFellBehind (default 10000).
	WatchBacklog int
	// GCInterval is how often Badger's value-log GC runs (default 5m; <0 disables).
	GCInterval time.Duration
	// Now stamps Created and Modified (default time.Now); inject for tests.
	Now func() time.Time
	// Logger receives the store's and Badger's warnings and errors (default: stderr).
	Logger *log.Logger
}

func (o *Options) setDefaults() {
	if o.LogRetention <= 0 {
		o.LogRetention = DefaultLogRetention
	}
	if o.WatchBacklog <= 0 {
		o.WatchBacklog = DefaultWatchBacklog
	}
	if o.GCInterval == 0 {
		o.GCInterval = DefaultGCInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = log.New(os.Stderr, "store: ", log.LstdFlags)
	}
}

// Store is the inventory. All methods are safe for concurrent use.
type Store struct {
	opt Options
	db  *badger.DB
	// maxTxnCount and maxTxnSize are Badger's per-txn limits less headroom for
	// the meta keys every txn carries.
	maxTxnCount, maxTxnSize int64

	mu      sync.RWMutex // the single write lock; guards everything below
	objects *btree.BTreeG[*api.Object]
	rev     uint64
	indexes []func(old, new *api.Object)
	pending *batch // staged by Update, not yet taken by the committer
	failed  error  // a Badger commit failed: the cache is ahead of the disk
	closed  bool

	kick          chan struct{} // wakes the committer
	closing       chan struct{}
	committerDone chan struct{}
	gcDone        chan struct{}

	hub hub
	// diskOldest is the oldest change-log revision on disk; only the
	// committer touches it after Open.
	diskOldest uint64
	commits    atomic.Uint64 // Badger transactions committed, for tests and benchmarks
}

func newTree() *btree.BTreeG[*api.Object] {
	return btree.NewG(32, func(a, b *api.Object) bool { return a.Path < b.Path })
}

// lockWait is how long Open waits for another process to release the
// database's directory lock before it gives up.
const lockWait = 3 * time.Second

// Open opens (or creates) the store in dir and loads every object into memory.
func Open(dir string, opt Options) (*Store, error) {
	opt.setDefaults()
	bopt := badger.DefaultOptions(dir).
		WithSyncWrites(true).       // Update is acknowledged only once durable
		WithDetectConflicts(false). // a single committer goroutine writes; nothing to detect
		WithLogger(badgerLogger{opt.Logger})
	db, err := badger.Open(bopt)
	// A vcenter restarted at once after a crash (a supervisor with no
	// restart delay) can find the old process still releasing the
	// database's directory lock: its last threads are exiting. Wait a
	// little for it rather than fail; a live second vcenter still fails.
	for deadline := time.Now().Add(lockWait); err != nil && strings.Contains(err.Error(), "Cannot acquire directory lock") && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		db, err = badger.Open(bopt)
	}
	if err != nil {
		return nil, fmt.Errorf("opening inventory database in %s: %w", dir, err)
	}
	s := &Store{
		opt:           opt,
		db:            db,
		maxTxnCount:   db.MaxBatchCount() - 16,
		maxTxnSize:    db.MaxBatchSize() * 9 / 10,
		objects:       newTree(),
		kick:          make(chan struct{}, 1),
		closing:       make(chan struct{}),
		committerDone: make(chan struct{}),
		gcDone:        make(chan struct{}),
	}
	s.hub.init(opt.LogRetention)
	if err := s.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("loading inventory from %s: %w", dir, err)
	}
	go s.committer()
	go s.gcLoop()
	return s, nil
}

// load reads the format, the revision, every object and the retained change log.
func (s *Store) load() error {
	return s.db.Update(func(txn *badger.Txn) error {
		format, err := getValue(txn, keyFormat)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			if err := txn.Set(keyFormat, []byte(formatVersion)); err != nil {
				return err
			}
		case err != nil:
			return err
		case string(format) != formatVersion:
			return fmt.Errorf("format version %q, this vcenter reads %q: %w", format, formatVersion, api.ErrInvalid)
		}
		rev, err := getU64(txn, keyRevision)
		if err != nil {
			return err
		}
		s.rev = rev

		var maxRV uint64
		err = scan(txn, prefixObject, func(key, val []byte) error {
			o := new(api.Object)
			if err := json.Unmarshal(val, o); err != nil {
				return fmt.Errorf("object %q: %w", key[len(prefixObject):], err)
			}
			maxRV = max(maxRV, o.ResourceVersion)
			s.objects.ReplaceOrInsert(o)
			return nil
		})
		if err != nil {
			return err
		}
		if maxRV > rev {
			return fmt.Errorf("object resourceVersion %d is past the stored revision %d: %w", maxRV, rev, api.ErrInvalid)
		}

		// The change log: contiguous revisions ending at rev. prev is rebuilt
		// from the log itself, so it is unknown for each path's first entry.
		last := map[string]*api.Object{}
		var entries []entry
		var lastRev uint64
		err = scan(txn, prefixLog, func(key, val []byte) error {
			r := binary.BigEndian.Uint64(key[len(prefixLog):])
			var ev api.WatchEvent
			if err := json.Unmarshal(val, &ev); err != nil || ev.Object == nil {
				return fmt.Errorf("change-log entry %d does not decode: %v", r, err)
			}
			if lastRev != 0 && r != lastRev+1 {
				return fmt.Errorf("change log jumps from revision %d to %d: %w", lastRev, r, api.ErrInvalid)
			}
			lastRev = r
			e := entry{ev: ev, prev: last[ev.Object.Path]}
			if ev.Type == api.Deleted {
				delete(last, ev.Object.Path)
			} else {
				last[ev.Object.Path] = ev.Object
			}
			entries = append(entries, e)
			return nil
		})
		if err != nil {
			return err
		}
		if len(entries) > 0 && lastRev != rev {
			return fmt.Errorf("change log ends at revision %d but the stored revision is %d: %w", lastRev, rev, api.ErrInvalid)
		}
		oldest := rev + 1
		if len(entries) > 0 {
			oldest = entries[0].ev.Revision
		}
		s.diskOldest = oldest
		s.hub.load(entries, oldest, rev)
		return nil
	})
}

func getValue(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func getU64(txn *badger.Txn, key []byte) (uint64, error) {
	v, err := getValue(txn, key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("meta key %q holds %d bytes, want 8: %w", key, len(v), api.ErrInvalid)
	}
	return binary.BigEndian.Uint64(v), nil
}

func scan(txn *badger.Txn, prefix []byte, fn func(key, val []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		key := item.Key()
		if err := item.Value(func(val []byte) error { return fn(key, val) }); err != nil {
			return err
		}
	}
	return nil
}

// Close flushes queued writes, closes every watcher and the database.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.closing)
	<-s.committerDone
	<-s.gcDone
	s.hub.closeAll(fmt.Errorf("inventory store closed: %w", api.ErrUnavailable))
	return s.db.Close()
}

// Revision is the revision of the last mutation applied to the cache.
func (s *Store) Revision() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// Get returns a copy of the object at path.
func (s *Store) Get(path string) (*api.Object, error) {
	s.mu.RLock()
	o, ok := s.objects.Get(&api.Object{Meta: api.Meta{Path: path}})
	s.mu.RUnlock()
	if !ok {
		return nil, notFound(path)
	}
	return o.Clone(), nil
}

func notFound(path string) error { return fmt.Errorf("object %q: %w", path, api.ErrNotFound) }

// List returns copies of the objects matching q, sorted by path, and the
// revision they were read at (a Watch from it continues without a gap).
func (s *Store) List(q Query) api.List {
	q = q.normalized()
	s.mu.RLock()
	var found []*api.Object
	eachInRange(s.objects, q.Prefix, func(o *api.Object) {
		if q.matches(o) {
			found = append(found, o)
		}
	})
	rev := s.rev
	s.mu.RUnlock()
	// Cached objects are immutable (writes replace them), so copying outside
	// the lock is safe and keeps writers unblocked.
	return api.List{Revision: rev, Items: cloneAll(found)}
}

// GetAll returns copies of the objects at the paths paths returns that
// match q, in path order, and the revision they were read at: List for a
// caller that knows where its objects are. paths runs under the store's
// read lock, so an index fed by AddIndex (which runs under the write lock)
// agrees exactly with the objects read; it must be quick and must not call
// the Store.
func (s *Store) GetAll(q Query, paths func() []string) api.List {
	q = q.normalized()
	s.mu.RLock()
	var found []*api.Object
	for _, p := range paths() {
		if o, ok := s.objects.Get(&api.Object{Meta: api.Meta{Path: p}}); ok && q.matches(o) {
			found = append(found, o)
		}
	}
	rev := s.rev
	s.mu.RUnlock()
	sortByPath(found)
	return api.List{Revision: rev, Items: cloneAll(found)}
}

// cloneAll deep-copies objs with three allocations plus one per label map
// instead of four per object: copying dominates a 100k-object List.
func cloneAll(objs []*api.Object) []*api.Object {
	var n int
	for _, o := range objs {
		n += len(o.Spec) + len(o.Status)
	}
	slab := make([]api.Object, len(objs))
	raw := make([]byte, 0, n)
	items := make([]*api.Object, len(objs))
	take := func(b json.RawMessage) json.RawMessage {
		if b == nil {
			return nil
		}
		start := len(raw)
		raw = append(raw, b...)
		return raw[start:len(raw):len(raw)] // full slice expression: appends never reach a neighbour
	}
	for i, o := range objs {
		c := &slab[i]
		*c = *o
		c.Labels = maps.Clone(o.Labels)
		c.Spec, c.Status = take(o.Spec), take(o.Status)
		items[i] = c
	}
	return items
}

// AddIndex registers fn to follow every mutation. It is called at once, under
// the write lock, with (nil, o) for every object already in the store, then
// for every mutation in revision order as it is applied to the cache (old ==
// nil for a create, new == nil for a delete). fn gets copies it may keep. It
// runs under the write lock: it must be quick and must not call the Store.
// The index reflects the cache, not the writes of an Update's fn in progress.
func (s *Store) AddIndex(fn func(old, new *api.Object)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects.Ascend(func(o *api.Object) bool {
		fn(nil, o.Clone())
		return true
	})
	s.indexes = append(s.indexes, fn)
}

// gcLoop runs Badger's value-log GC until the store closes.
func (s *Store) gcLoop() {
	defer close(s.gcDone)
	if s.opt.GCInterval < 0 {
		<-s.closing
		return
	}
	t := time.NewTicker(s.opt.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		// Each successful run rewrote one file; keep going while there is garbage.
		for {
			err := s.db.RunValueLogGC(gcDiscardRatio)
			if err == nil {
				continue
			}
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				s.opt.Logger.Printf("value-log GC: %v", err)
			}
			break
		}
	}
}

// badgerLogger forwards Badger's warnings and errors and drops its chatty INFO
// and DEBUG lines (one per table flush, compaction and GC run).
type badgerLogger struct{ l *log.Logger }

func (b badgerLogger) Errorf(f string, v ...any)   { b.l.Printf("badger ERROR: "+f, v...) }
func (b badgerLogger) Warningf(f string, v ...any) { b.l.Printf("badger WARNING: "+f, v...) }
func (badgerLogger) Infof(string, ...any)          {}
func (badgerLogger) Debugf(string, ...any)         {}
