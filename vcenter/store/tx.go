package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/podsphere/podsphere/api"
)

// mutation is one write of an Update: the object before and after it (nil
// after = deleted) and its encoded Badger values.
type mutation struct {
	rev      uint64
	path     string
	old, new *api.Object
	objVal   []byte // object JSON; nil for a delete
	logVal   []byte // change-log WatchEvent JSON
}

// event is the change-log entry of m.
func (m *mutation) event() entry {
	switch {
	case m.new == nil:
		return entry{ev: api.WatchEvent{Type: api.Deleted, Revision: m.rev, Object: m.old}, prev: m.old}
	case m.old == nil:
		return entry{ev: api.WatchEvent{Type: api.Added, Revision: m.rev, Object: m.new}}
	default:
		return entry{ev: api.WatchEvent{Type: api.Modified, Revision: m.rev, Object: m.new}, prev: m.old}
	}
}

// Tx is the view an Update's fn reads and writes: the cache plus fn's own
// earlier writes. It is valid only while fn runs and not for concurrent use.
type Tx struct {
	s      *Store
	writes map[string]*api.Object // path -> state after fn's writes (nil = deleted)
	muts   []mutation
	count  int64 // Badger entries the writes will take
	size   int64 // and their estimated bytes
	done   bool
}

// Update runs fn under the store's single write lock against a consistent
// view. If fn returns an error nothing is written. Otherwise fn's writes are
// applied to the cache, queued, and committed atomically to Badger with the
// writes of every other Update queued meanwhile (group commit); Update returns
// once they are durable, with the revision of fn's last write (the current
// revision if fn wrote nothing). fn must not call the Store (it holds the
// write lock) and should not block: every other writer waits for it.
func (s *Store) Update(fn func(tx *Tx) error) (uint64, error) {
	b, last, err := s.stage(fn)
	if err != nil || b == nil {
		return last, err
	}
	select {
	case s.kick <- struct{}{}:
	default: // the committer is already due to look at the queue
	}
	<-b.done
	if b.err != nil {
		return 0, b.err
	}
	return last, nil
}

// stage runs fn and, if it wrote anything, applies the writes to the cache
// and queues them for the committer.
func (s *Store) stage(fn func(tx *Tx) error) (*batch, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return nil, 0, err
	}
	tx := &Tx{s: s}
	defer func() { tx.done = true }() // also when fn panics
	if err := fn(tx); err != nil {
		return nil, 0, err
	}
	tx.done = true
	if len(tx.muts) == 0 {
		return nil, s.rev, nil
	}
	for i := range tx.muts {
		m := &tx.muts[i]
		if m.new != nil {
			s.objects.ReplaceOrInsert(m.new)
		} else {
			s.objects.Delete(m.old)
		}
		s.rev = m.rev
		for _, idx := range s.indexes {
			idx(m.old.Clone(), m.new.Clone())
		}
	}
	if s.pending == nil {
		s.pending = &batch{done: make(chan struct{})}
	}
	s.pending.units = append(s.pending.units, unit{muts: tx.muts, count: tx.count, size: tx.size})
	return s.pending, s.rev, nil
}

func (s *Store) usableLocked() error {
	switch {
	case s.closed:
		return fmt.Errorf("inventory store is closed: %w", api.ErrUnavailable)
	case s.failed != nil:
		return fmt.Errorf("inventory store stopped accepting writes after a database error (%v); restart vcenter to reload from disk: %w", s.failed, api.ErrUnavailable)
	}
	return nil
}

func (tx *Tx) usable() error {
	if tx.done {
		return fmt.Errorf("transaction used after its Update returned: %w", api.ErrInvalid)
	}
	return nil
}

func (tx *Tx) lookup(path string) (*api.Object, bool) {
	if o, ok := tx.writes[path]; ok {
		return o, o != nil
	}
	return tx.s.objects.Get(&api.Object{Meta: api.Meta{Path: path}})
}

// Get returns a copy of the object at path as fn currently sees it.
func (tx *Tx) Get(path string) (*api.Object, error) {
	if err := tx.usable(); err != nil {
		return nil, err
	}
	o, ok := tx.lookup(path)
	if !ok {
		return nil, notFound(path)
	}
	return o.Clone(), nil
}

// List returns copies of the objects matching q as fn currently sees them, by path.
func (tx *Tx) List(q Query) []*api.Object {
	if tx.usable() != nil {
		return nil
	}
	q = q.normalized()
	var out []*api.Object
	eachInRange(tx.s.objects, q.Prefix, func(o *api.Object) {
		if _, shadowed := tx.writes[o.Path]; !shadowed && q.matches(o) {
			out = append(out, o.Clone())
		}
	})
	if len(tx.writes) == 0 {
		return out
	}
	for _, o := range tx.writes {
		if o != nil && q.matches(o) {
			out = append(out, o.Clone())
		}
	}
	sortByPath(out)
	return out
}

// Create adds o. It fails with api.ErrConflict if the path is taken. The
// store sets UID, ResourceVersion, Created and Modified; the stored object is
// returned.
func (tx *Tx) Create(o *api.Object) (*api.Object, error) {
	if err := tx.usable(); err != nil {
		return nil, err
	}
	n, err := normalize(o)
	if err != nil {
		return nil, err
	}
	if cur, ok := tx.lookup(n.Path); ok {
		return nil, fmt.Errorf("%s %q already exists: %w", cur.Kind, n.Path, api.ErrConflict)
	}
	n.UID = newUID()
	n.Created = tx.s.opt.Now().UTC()
	n.Modified = n.Created
	return tx.write(nil, n)
}

// Update replaces the object at o.Path. o.ResourceVersion must be the current
// one (optimistic concurrency); UID and Created are kept.
func (tx *Tx) Update(o *api.Object) (*api.Object, error) {
	if err := tx.usable(); err != nil {
		return nil, err
	}
	n, err := normalize(o)
	if err != nil {
		return nil, err
	}
	cur, ok := tx.lookup(n.Path)
	if !ok {
		return nil, notFound(n.Path)
	}
	if n.ResourceVersion != cur.ResourceVersion {
		return nil, modified(cur, n.ResourceVersion)
	}
	if n.Kind != cur.Kind {
		return nil, fmt.Errorf("%q is a %s; its kind cannot change to %s: %w", n.Path, cur.Kind, n.Kind, api.ErrInvalid)
	}
	n.UID, n.Created = cur.UID, cur.Created
	n.Modified = tx.s.opt.Now().UTC()
	return tx.write(cur, n)
}

// Delete removes the object at path. resourceVersion 0 deletes whatever is
// there; otherwise it must be the current one.
func (tx *Tx) Delete(path string, resourceVersion uint64) error {
	if err := tx.usable(); err != nil {
		return err
	}
	cur, ok := tx.lookup(path)
	if !ok {
		return notFound(path)
	}
	if resourceVersion != 0 && resourceVersion != cur.ResourceVersion {
		return modified(cur, resourceVersion)
	}
	_, err := tx.write(cur, nil)
	return err
}

func modified(cur *api.Object, sent uint64) error {
	return fmt.Errorf("%s %q has been modified (resourceVersion %d, you sent %d): %w",
		cur.Kind, cur.Path, cur.ResourceVersion, sent, api.ErrConflict)
}

// write records one mutation: it stamps the revision, encodes the Badger
// values and checks the Update still fits in one Badger transaction.
func (tx *Tx) write(old, n *api.Object) (*api.Object, error) {
	m := mutation{rev: tx.s.rev + uint64(len(tx.muts)) + 1, old: old, new: n}
	logObj := old
	if n != nil {
		m.path = n.Path
		n.ResourceVersion = m.rev
		m.objVal = encode(n)
		logObj = n
	} else {
		m.path = old.Path
	}
	e := m.event()
	var lb bytes.Buffer
	lb.WriteString(`{"type":"` + e.ev.Type + `","revision":` + strconv.FormatUint(m.rev, 10) + `,"object":`)
	if n != nil {
		lb.Write(m.objVal)
	} else {
		lb.Write(encode(logObj))
	}
	lb.WriteString("}")
	m.logVal = lb.Bytes()

	count := tx.count + 2
	size := tx.size + entryCost(len(m.path)+1, len(m.objVal)) + entryCost(9, len(m.logVal))
	if count > tx.s.maxTxnCount || size > tx.s.maxTxnSize {
		return nil, fmt.Errorf("this Update is too large to commit atomically (%d writes, ~%d bytes; the limit is %d writes, %d bytes): %w",
			len(tx.muts)+1, size, tx.s.maxTxnCount, tx.s.maxTxnSize, api.ErrInvalid)
	}
	tx.count, tx.size = count, size
	tx.muts = append(tx.muts, m)
	if tx.writes == nil {
		tx.writes = map[string]*api.Object{}
	}
	tx.writes[m.path] = n
	return n.Clone(), nil
}

// entryCost over-estimates Badger's own accounting (key+value+2, plus 10 for
// the version), so a batch we think fits never hits ErrTxnTooBig.
func entryCost(key, val int) int64 { return int64(key+val) + 32 }

// normalize copies o and puts it in the exact form it will have after a
// round trip through the database, so the cache and the disk agree byte for
// byte: compact spec and status, no empty label map, UTC times.
func normalize(o *api.Object) (*api.Object, error) {
	if o == nil {
		return nil, fmt.Errorf("no object given: %w", api.ErrInvalid)
	}
	if o.Kind == "" {
		return nil, fmt.Errorf("object %q has no kind: %w", o.Path, api.ErrInvalid)
	}
	if len(o.Path) < 2 || o.Path[0] != '/' || strings.HasSuffix(o.Path, "/") || strings.Contains(o.Path, "//") {
		return nil, fmt.Errorf("path %q must be absolute, non-root, with no empty elements: %w", o.Path, api.ErrInvalid)
	}
	n := o.Clone()
	if len(n.Labels) == 0 {
		n.Labels = nil
	}
	for _, f := range []struct {
		name string
		raw  *json.RawMessage
	}{{"spec", &n.Spec}, {"status", &n.Status}} {
		if len(*f.raw) == 0 {
			*f.raw = nil
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, *f.raw); err != nil {
			return nil, fmt.Errorf("%s %q: %s is not valid JSON: %v: %w", n.Kind, n.Path, f.name, err, api.ErrInvalid)
		}
		*f.raw = buf.Bytes()
	}
	return n, nil
}

// encode marshals o without HTML escaping, so stored bytes equal cached bytes.
func encode(o *api.Object) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(o); err != nil {
		panic("store: object does not marshal after normalize: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
