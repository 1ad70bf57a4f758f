package inventory

import (
	"encoding/json"
	"fmt"

	"github.com/podsphere/podsphere/api"
)

// strategy is everything the write path knows about one kind. Each kind
// has its own file; adding a kind is one new strategy file, its api types
// and an entry in strategies.
type strategy interface {
	// names are vSphere's task names and event types for create, change and delete.
	names() kindNames
	// prepare decodes the spec strictly, fills in defaults and checks its
	// shape, without looking at other objects. It runs before every create
	// and change.
	prepare(ref api.Ref, o *api.Object) error
	// admitCreate checks a new object against the inventory inside t
	// (what must exist, quotas, pools) and may complete it.
	admitCreate(t *Txn, ref api.Ref, o *api.Object) error
	// created runs right after the object is written, in the same
	// transaction: a cluster's root pool, a VM's power-on.
	created(t *Txn, out *api.Object) (*api.Object, error)
	// admitChange checks a change of cur into o; what it returns is added
	// to the event's message.
	admitChange(t *Txn, ref api.Ref, cur, o *api.Object) (string, error)
	// changed runs right after a change is written.
	changed(t *Txn, cur, out *api.Object) (*api.Object, error)
	// admitRemove checks (and makes) what removing cur implies.
	admitRemove(t *Txn, ref api.Ref, cur *api.Object, opt RemoveOptions) error
	// report merges a status report of the object's status owner (a host
	// agent) into cur: only the fields that owner owns. Kinds without
	// reported status refuse.
	report(t *Txn, cur *api.Object, raw json.RawMessage) error
}

// kindNames are a kind's vSphere task and event names.
type kindNames struct {
	word                                  string // "VM", "Resource pool"
	createTask, changeTask, removeTask    string
	createdEvent, changedEvent, goneEvent string
}

// strategies maps every kind clients may write.
var strategies = map[string]strategy{}

func register(kind string, s strategy) { strategies[kind] = s }

func strategyOf(kind string) (strategy, error) {
	s, ok := strategies[kind]
	if !ok {
		return nil, fmt.Errorf("unknown kind %q: %w", kind, api.ErrInvalid)
	}
	return s, nil
}

// base gives a kind the do-nothing hooks it does not need.
type base struct{}

func (base) admitCreate(*Txn, api.Ref, *api.Object) error         { return nil }
func (base) created(_ *Txn, out *api.Object) (*api.Object, error) { return out, nil }
func (base) admitChange(*Txn, api.Ref, *api.Object, *api.Object) (string, error) {
	return "", nil
}
func (base) changed(_ *Txn, _ *api.Object, out *api.Object) (*api.Object, error) { return out, nil }
func (base) admitRemove(*Txn, api.Ref, *api.Object, RemoveOptions) error         { return nil }
func (base) report(_ *Txn, cur *api.Object, _ json.RawMessage) error {
	return fmt.Errorf("%s objects have no status that clients report: %w", cur.Kind, api.ErrInvalid)
}

// vcenterOnly is a kind only vcenter itself writes (events, tasks).
type vcenterOnly struct{ base }

func (vcenterOnly) names() kindNames { return kindNames{} }
func (vcenterOnly) prepare(_ api.Ref, o *api.Object) error {
	return fmt.Errorf("%s objects are written by vcenter, not by clients: %w", o.Kind, api.ErrInvalid)
}
func (vcenterOnly) admitRemove(_ *Txn, ref api.Ref, _ *api.Object, _ RemoveOptions) error {
	return fmt.Errorf("%s objects are kept by vcenter and trimmed by age: %w", ref.Kind, api.ErrInvalid)
}

func init() {
	register(api.KindEvent, vcenterOnly{})
	register(api.KindTask, vcenterOnly{})
}
