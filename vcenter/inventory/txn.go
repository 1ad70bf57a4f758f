package inventory

import (
	"errors"
	"fmt"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/store"
)

// Retention of events and tasks: like vCenter's event database, old entries
// are trimmed so the inventory does not grow without bound.
const (
	MaxEvents = 20000
	MaxTasks  = 5000
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// Txn is one store transaction with the bookkeeping every change needs: an
// event for each change and a task for the request as a whole, on behalf
// of User (an admin, a host, or a controller such as "controller:replicaset").
type Txn struct {
	*store.Tx
	inv  *Inventory
	User string
	Now  time.Time
	// after runs once the transaction is durable (file removals).
	after []func()
}

// Event records a vSphere-style event inside the transaction.
func (t *Txn) Event(category, typ, target, format string, args ...any) error {
	k := t.inv.ix.takeKey()
	o := api.New(api.KindEvent, fmt.Sprintf("/events/%020d", k), api.EventSpec{
		Time: t.Now, Category: category, Type: typ, Target: target,
		Message: fmt.Sprintf(format, args...), User: t.User, Key: k,
	})
	if _, err := t.Create(o); err != nil {
		return err
	}
	return t.trim(api.KindEvent, MaxEvents)
}

// Task records a completed task (the request's outcome) inside the transaction.
func (t *Txn) Task(name, target string, started time.Time, failure error) error {
	k := t.inv.ix.takeKey()
	spec := api.TaskSpec{Name: name, Target: target, Initiator: t.User,
		Queued: started, Started: started, Completed: t.Now, Result: "success"}
	if failure != nil {
		spec.Result, spec.Error = "error", Message(failure)
	}
	if _, err := t.Create(api.New(api.KindTask, fmt.Sprintf("/tasks/%020d", k), spec)); err != nil {
		return err
	}
	return t.trim(api.KindTask, MaxTasks)
}

// AfterCommit runs fn once the transaction is durable; never if it fails.
func (t *Txn) AfterCommit(fn func()) { t.after = append(t.after, fn) }

func (t *Txn) trim(kind string, keep int) error {
	for _, p := range t.inv.ix.oldest(kind, keep) {
		if err := t.Delete(p, 0); err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}

// Update runs fn in one durable transaction on behalf of user.
func (inv *Inventory) Update(user string, fn func(t *Txn) error) error {
	var after []func()
	_, err := inv.store.Update(func(tx *store.Tx) error {
		t := &Txn{Tx: tx, inv: inv, User: user, Now: inv.now()}
		if err := fn(t); err != nil {
			return err
		}
		after = t.after
		return nil
	})
	if err == nil {
		for _, f := range after {
			f()
		}
	}
	return err
}

// Refuse records a refused request (event + failed task) and returns err.
// Nothing else is written: the refusal loses nothing and changes nothing.
func (inv *Inventory) Refuse(user, taskName, target, eventType string, started time.Time, err error) error {
	werr := inv.Update(user, func(t *Txn) error {
		if e := t.Event("error", eventType, target, "%s", Message(err)); e != nil {
			return e
		}
		return t.Task(taskName, target, started, err)
	})
	if werr != nil {
		inv.log.Printf("recording refusal of %s on %s: %v", taskName, target, werr)
	}
	return err
}

// Record writes one event outside any other change: what a controller
// decided not to do, or could not do, and why.
func (inv *Inventory) Record(user, category, typ, target, format string, args ...any) error {
	return inv.Update(user, func(t *Txn) error { return t.Event(category, typ, target, format, args...) })
}

// Refusal reports whether err is an admission refusal (as opposed to bad
// input or a conflict): those leave an event and a failed task.
func Refusal(err error) bool {
	return errors.Is(err, api.ErrQuotaExceeded) || errors.Is(err, api.ErrInsufficientResources)
}

// Message is err as users read it, without the trailing sentinel name.
func Message(err error) string { return api.Message(err) }
