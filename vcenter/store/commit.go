package store

import (
	"fmt"

	"github.com/podsphere/podsphere/api"
)

// unit is the writes of one Update: they go to Badger in one transaction.
type unit struct {
	muts        []mutation
	count, size int64
}

// batch is what the committer takes from the queue at once: every Update
// staged while the previous batch was being fsynced.
type batch struct {
	units []unit
	done  chan struct{} // closed once the batch is durable or has failed
	err   error
}

// committer is the only goroutine that writes to Badger after Open. It takes
// the whole queue, writes it in as few transactions as Badger's size limit
// allows (splitting only between Updates, never inside one), and wakes the
// waiting Updates. While it waits for the fsync, new Updates queue up behind it.
func (s *Store) committer() {
	defer close(s.committerDone)
	for {
		closing := false
		select {
		case <-s.kick:
		case <-s.closing:
			closing = true
		}
		s.mu.Lock()
		b, failed := s.pending, s.failed
		s.pending = nil
		s.mu.Unlock()
		if b != nil {
			s.commit(b, failed)
		}
		if closing {
			return
		}
	}
}

func (s *Store) commit(b *batch, failed error) {
	defer close(b.done)
	if failed != nil {
		// An earlier batch failed; this one's cache changes were staged on top of it.
		b.err = fmt.Errorf("inventory store stopped accepting writes after a database error (%v): %w", failed, api.ErrUnavailable)
		return
	}
	err := s.write(b)
	if err == nil {
		return
	}
	first, last := b.units[0].muts[0].rev, lastRev(b.units[len(b.units)-1])
	// The cache already holds these revisions, and later Updates may have read
	// them: the memory and the disk now disagree, and no retry can make the
	// acknowledged order true again. Refuse further writes; a restart reloads
	// the last durable state.
	s.mu.Lock()
	s.failed = err
	s.mu.Unlock()
	s.opt.Logger.Printf("committing revisions %d-%d failed; refusing further writes until restart: %v", first, last, err)
	b.err = fmt.Errorf("committing revisions %d-%d to the inventory database: %w (%w)", first, last, api.ErrUnavailable, err)
	s.hub.closeAll(b.err)
}

func lastRev(u unit) uint64 { return u.muts[len(u.muts)-1].rev }

// write commits b's units, in order, in one or more Badger transactions, each
// also carrying the revision counter and a slice of change-log compaction.
// Watchers see each transaction's events once it is durable.
func (s *Store) write(b *batch) error {
	var (
		txn         = s.db.NewTransaction(true)
		count, size int64
		inTxn       []unit
	)
	defer func() { txn.Discard() }()
	flush := func() error {
		last := lastRev(inTxn[len(inTxn)-1])
		oldest := s.diskOldest
		var want uint64 // oldest revision the log should keep after this txn
		if last >= uint64(s.opt.LogRetention) {
			want = last - uint64(s.opt.LogRetention) + 1
		}
		// Compaction rides along in whatever room the txn has left; a large
		// backlog (retention lowered across a restart) drains over later txns.
		for ; oldest < want && count < s.maxTxnCount; oldest++ {
			if err := txn.Delete(logKey(oldest)); err != nil {
				return err
			}
			count++
		}
		if err := txn.Set(keyRevision, u64(last)); err != nil {
			return err
		}
		if err := txn.Set(keyOldest, u64(oldest)); err != nil {
			return err
		}
		if err := txn.Commit(); err != nil {
			return err
		}
		s.diskOldest = oldest
		s.commits.Add(1)
		var events []entry
		for _, u := range inTxn {
			for i := range u.muts {
				events = append(events, u.muts[i].event())
			}
		}
		s.hub.publish(events)
		txn = s.db.NewTransaction(true)
		count, size, inTxn = 0, 0, inTxn[:0]
		return nil
	}
	for _, u := range b.units {
		if len(inTxn) > 0 && (count+u.count > s.maxTxnCount || size+u.size > s.maxTxnSize) {
			if err := flush(); err != nil {
				return err
			}
		}
		for i := range u.muts {
			m := &u.muts[i]
			var err error
			if m.new != nil {
				err = txn.Set(objectKey(m.path), m.objVal)
			} else {
				err = txn.Delete(objectKey(m.path))
			}
			if err == nil {
				err = txn.Set(logKey(m.rev), m.logVal)
			}
			if err != nil {
				return err
			}
		}
		count += u.count
		size += u.size
		inTxn = append(inTxn, u)
	}
	return flush()
}
