package probe

import (
	"context"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
)

// Config is what a Runner needs besides the container.
type Config struct {
	Target Target
	// Unit is the length of one of the probes' seconds; 0 = time.Second.
	// Tests shrink it.
	Unit time.Duration
	// OnChange hears of every change of verdict, on the goroutine of the
	// probe that made it, outside the Runner's lock (so it may read the
	// Runner). A Kill is the caller's to carry out.
	OnChange func(Change)
}

// Runner probes one run of one container: a goroutine per probe, each
// sleeping until its probe is due, running it (bounded by its timeout) and
// recording the outcome. It stops when its context ends; Wait waits for
// its goroutines. A container without probes gets no goroutine.
type Runner struct {
	cfg  Config
	mu   sync.Mutex
	m    *Machine
	wake [numKinds]chan struct{}
	wg   sync.WaitGroup
}

// Start begins probing container c, whose run started at start, until ctx ends.
func Start(ctx context.Context, c api.Container, start time.Time, cfg Config) *Runner {
	r := &Runner{cfg: cfg, m: NewMachine(c, start, cfg.Unit)}
	for _, k := range Kinds {
		r.wake[k] = make(chan struct{}, 1)
		if !r.m.Has(k) {
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.loop(ctx, k)
		}()
	}
	return r
}

// Wait returns once every probe goroutine has stopped (after ctx ended, or
// when no probe is left to run).
func (r *Runner) Wait() { r.wg.Wait() }

func (r *Runner) loop(ctx context.Context, k Kind) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.mu.Lock()
		next := r.m.Next(k)
		r.mu.Unlock()
		if next.IsZero() {
			return // this probe will not run again in this container run
		}
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-r.wake[k]:
				timer.Stop()
				continue // the schedule changed: look again
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		r.mu.Lock()
		due := r.m.Tick(k, now)
		spec, timeout := r.m.Spec(k), r.m.Timeout(k)
		r.mu.Unlock()
		if !due {
			continue
		}
		o := Check(ctx, spec, r.cfg.Target, timeout)
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		ch := r.m.Record(k, o, now)
		r.mu.Unlock()
		if ch.Started {
			for _, w := range r.wake {
				select {
				case w <- struct{}{}:
				default:
				}
			}
		}
		if ch.Any() && r.cfg.OnChange != nil {
			r.cfg.OnChange(ch)
		}
	}
}

// Started, Ready, ReadySince and Killed are the Machine's, read under the lock.
func (r *Runner) Started() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m.Started()
}

func (r *Runner) Ready() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m.Ready()
}

func (r *Runner) ReadySince() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m.ReadySince()
}

func (r *Runner) Killed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m.Killed()
}
