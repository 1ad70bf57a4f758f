package store

import (
	"strings"
	"testing"
	"time"
)

// A second store on the same directory waits for the first to let go (a
// vcenter restarted while the crashed one's last threads exit) and opens
// once it has; while the first stays open, it fails naming the lock.
func TestOpenWaitsForThePreviousHolderOfTheDatabase(t *testing.T) {
	dir := t.TempDir()
	first := openAt(t, dir, Options{})
	if _, err := Open(dir, Options{Logger: quiet, Now: testClock()}); err == nil || !strings.Contains(err.Error(), "directory lock") {
		first.Close()
		t.Fatalf("a second Open while the first is open: %v, want the directory lock named", err)
	}
	opened := make(chan error, 1)
	go func() {
		s, err := Open(dir, Options{Logger: quiet, Now: testClock()})
		if err == nil {
			s.Close()
		}
		opened <- err
	}()
	// Let the second Open find the lock taken (it takes milliseconds)
	// before the first lets go: without the wait, it would fail.
	time.Sleep(300 * time.Millisecond)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err != nil {
		t.Fatalf("Open after the first store closed: %v", err)
	}
}
