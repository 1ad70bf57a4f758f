package server

import (
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

// txn wraps one store transaction with the bookkeeping every change needs:
// an event for each change and a task for the request as a whole.
type txn struct {
	*store.Tx
	s    *Server
	user string
	now  time.Time
}

// event records a vSphere-style event inside the transaction.
func (t *txn) event(category, typ, target, format string, args ...any) error {
	k := t.s.ix.takeKey()
	o := api.New(api.KindEvent, fmt.Sprintf("/events/%020d", k), api.EventSpec{
		Time: t.now, Category: category, Type: typ, Target: target,
		Message: fmt.Sprintf(format, args...), User: t.user, Key: k,
	})
	if _, err := t.Create(o); err != nil {
		return err
	}
	return t.trim(api.KindEvent, MaxEvents)
}

// task records a completed task (the request's outcome) inside the transaction.
func (t *txn) task(name, target string, started time.Time, failure error) error {
	k := t.s.ix.takeKey()
	spec := api.TaskSpec{Name: name, Target: target, Initiator: t.user,
		Queued: started, Started: started, Completed: t.now, Result: "success"}
	if failure != nil {
		spec.Result, spec.Error = "error", trimSentinel(failure)
	}
	if _, err := t.Create(api.New(api.KindTask, fmt.Sprintf("/tasks/%020d", k), spec)); err != nil {
		return err
	}
	return t.trim(api.KindTask, MaxTasks)
}

func (t *txn) trim(kind string, keep int) error {
	for _, p := range t.s.ix.oldest(kind, keep) {
		if err := t.Delete(p, 0); err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}

// update runs fn in one durable transaction on behalf of user.
func (s *Server) update(user string, fn func(t *txn) error) error {
	_, err := s.store.Update(func(tx *store.Tx) error {
		return fn(&txn{Tx: tx, s: s, user: user, now: s.now()})
	})
	return err
}

// refuse records a refused request (event + failed task) and returns err.
// Nothing else is written: the refusal loses nothing and changes nothing.
func (s *Server) refuse(user, taskName, target, eventType string, started time.Time, err error) error {
	werr := s.update(user, func(t *txn) error {
		if e := t.event("error", eventType, target, "%s", trimSentinel(err)); e != nil {
			return e
		}
		return t.task(taskName, target, started, err)
	})
	if werr != nil {
		s.log.Printf("recording refusal of %s on %s: %v", taskName, target, werr)
	}
	return err
}
