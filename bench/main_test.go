package bench

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
)

// teardowns undo what the benchmarks built (labs, floor hosts), newest
// first. Benchmarks also register them with b.Cleanup; this list is the
// backstop for an interrupt, so Ctrl-C never leaves a lab behind.
var teardowns struct {
	mu  sync.Mutex
	fns []*teardown
}

type teardown struct {
	once sync.Once
	name string
	fn   func() error
}

// onTeardown registers fn and returns a function that runs it once.
func onTeardown(name string, fn func() error) func() error {
	td := &teardown{name: name, fn: fn}
	teardowns.mu.Lock()
	teardowns.fns = append(teardowns.fns, td)
	teardowns.mu.Unlock()
	return td.run
}

func (td *teardown) run() error {
	var err error
	td.once.Do(func() { err = td.fn() })
	return err
}

func runTeardowns() {
	teardowns.mu.Lock()
	fns := teardowns.fns
	teardowns.fns = nil
	teardowns.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		if err := fns[i].run(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: teardown %s: %v\n", fns[i].name, err)
		}
	}
}

func TestMain(m *testing.M) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "bench: %v: tearing down before exiting\n", s)
		runTeardowns()
		os.Exit(2)
	}()
	code := m.Run()
	runTeardowns()
	os.Exit(code)
}
