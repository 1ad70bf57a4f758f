// Package inventory is vcenter's write path as a Go service: create,
// change, remove, power, status reports and host joins, each validated by
// its kind's strategy (one file per kind), admitted by the pure decisions
// of vcenter/admission, and written in one store transaction with its
// events and task. The HTTP layer (vcenter/server) and the controllers
// (vcenter/controllers) both write through it, so an automatic action is
// checked exactly as an admin's request is and leaves the same events.
package inventory

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/store"
)

// Options configure an Inventory.
type Options struct {
	// Now is the clock (default time.Now); tests inject one.
	Now    func() time.Time
	Logger *log.Logger
	// LogRetention is how many changes the store keeps for watchers that
	// resume from an old revision (0 = store.DefaultLogRetention).
	LogRetention int
	// LibraryDir holds the Content Library's archives; removing a library
	// item removes its archive once the removal is durable.
	LibraryDir string
}

// Inventory is the write path over one store.
type Inventory struct {
	store   *store.Store
	ix      *index
	allocs  *allocs // Services' addresses and ports, per cluster
	now     func() time.Time
	log     *log.Logger
	library string
}

// Open opens (or creates) the inventory database in dir.
func Open(dir string, opt Options) (*Inventory, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = log.New(os.Stderr, "inventory: ", log.LstdFlags)
	}
	inv := &Inventory{ix: newIndex(), allocs: newAllocs(), now: opt.Now, log: opt.Logger, library: opt.LibraryDir}
	st, err := store.Open(dir, store.Options{Logger: opt.Logger, Now: opt.Now, LogRetention: opt.LogRetention})
	if err != nil {
		return nil, err
	}
	inv.store = st
	st.AddIndex(inv.ix.apply)
	st.AddIndex(inv.allocs.apply)
	return inv, nil
}

// Store is the underlying store, for reads and watches.
func (inv *Inventory) Store() *store.Store { return inv.store }

// Close closes the store.
func (inv *Inventory) Close() error { return inv.store.Close() }

// Now is the inventory's clock.
func (inv *Inventory) Now() time.Time { return inv.now() }

// Get reads one object.
func (inv *Inventory) Get(path string) (*api.Object, error) { return inv.store.Get(path) }

// List reads the objects q selects.
func (inv *Inventory) List(q store.Query) api.List { return inv.store.List(q) }

// Owned returns the objects q selects among those whose owner is owner,
// sorted by path: List with a Filter on Owner, without visiting every
// object of the inventory (the index keeps each owner's objects).
func (inv *Inventory) Owned(owner string, q store.Query) []*api.Object {
	return inv.store.GetAll(q, func() []string { return inv.ix.ownedBy(owner) }).Items
}

// LibraryFile is where the archive of library item name with digest is
// kept. Naming files by content lets an import write its file before the
// inventory changes, outside the store's lock: the object only ever points
// at a complete, fsynced archive, and a failed commit leaves the old one.
func (inv *Inventory) LibraryFile(name, digest string) string {
	d := strings.TrimPrefix(digest, "sha256:")
	if len(d) > 16 {
		d = d[:16]
	}
	return filepath.Join(inv.library, name+"-"+d+".tar")
}

func isNotFound(err error) bool { return errorsIs(err, api.ErrNotFound) }

// mustExist checks a path inside the transaction, naming what is missing.
func mustExist(t *Txn, path, what string) (*api.Object, error) {
	o, err := t.Get(path)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("%s %s does not exist: %w", what, path, api.ErrInvalid)
		}
		return nil, err
	}
	return o, nil
}
