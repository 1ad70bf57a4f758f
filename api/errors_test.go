package api

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestSentinelTable(t *testing.T) {
	want := []struct {
		err    error
		reason string
		status int
		exit   int
	}{
		{ErrUnauthorized, "Unauthorized", http.StatusUnauthorized, 7},
		{ErrNotFound, "NotFound", http.StatusNotFound, 3},
		{ErrGone, "Gone", http.StatusGone, 6},
		{ErrConflict, "Conflict", http.StatusConflict, 4},
		{ErrInvalid, "Invalid", http.StatusBadRequest, 2},
		{ErrQuotaExceeded, "QuotaExceeded", http.StatusForbidden, 5},
		{ErrInsufficientResources, "InsufficientResources", http.StatusConflict, 5},
		{ErrUnavailable, "Unavailable", http.StatusServiceUnavailable, 6},
	}
	if len(Sentinels) != len(want) {
		t.Fatalf("Sentinels has %d entries, want %d", len(Sentinels), len(want))
	}
	reasons := map[string]bool{}
	for i, w := range want {
		s := Sentinels[i]
		if s.Err != w.err || s.Reason != w.reason || s.HTTPStatus != w.status || s.ExitCode != w.exit {
			t.Errorf("Sentinels[%d] = %v %s %d exit %d; want %v %s %d exit %d",
				i, s.Err, s.Reason, s.HTTPStatus, s.ExitCode, w.err, w.reason, w.status, w.exit)
		}
		if reasons[s.Reason] {
			t.Errorf("reason %s listed twice", s.Reason)
		}
		reasons[s.Reason] = true
		// Reason -> sentinel -> entry is the identity, directly and wrapped.
		if got := ErrorForReason(s.Reason); got != s.Err {
			t.Errorf("ErrorForReason(%q) = %v, want %v", s.Reason, got, s.Err)
		}
		for _, err := range []error{s.Err, fmt.Errorf("a: %w", s.Err), fmt.Errorf("b: %w", fmt.Errorf("a: %w", s.Err))} {
			if got := SentinelOf(err); got != s {
				t.Errorf("SentinelOf(%v) = %+v, want %+v", err, got, s)
			}
			if _, ok := FindSentinel(err); !ok {
				t.Errorf("FindSentinel(%v) found nothing", err)
			}
		}
	}
}

func TestSentinelDefaults(t *testing.T) {
	for _, r := range []string{"", "Teapot", "notfound"} {
		if got := ErrorForReason(r); got != ErrUnavailable {
			t.Errorf("ErrorForReason(%q) = %v, want ErrUnavailable", r, got)
		}
	}
	for _, err := range []error{nil, errors.New("disk on fire")} {
		if s := SentinelOf(err); s.Err != ErrUnavailable || s.HTTPStatus != http.StatusServiceUnavailable || s.Reason != "Unavailable" {
			t.Errorf("SentinelOf(%v) = %+v, want Unavailable", err, s)
		}
		if _, ok := FindSentinel(err); ok {
			t.Errorf("FindSentinel(%v) found a sentinel", err)
		}
	}
	// An error wrapping two sentinels reads as the first in the table.
	both := fmt.Errorf("x: %w (%w)", ErrUnavailable, ErrNotFound)
	if s := SentinelOf(both); s.Err != ErrNotFound {
		t.Errorf("SentinelOf(%v) = %v, want ErrNotFound (listed before ErrUnavailable)", both, s.Err)
	}
}

type compacted struct{}

func (compacted) Error() string { return "revision compacted" }
func (compacted) Unwrap() error { return ErrGone }

func TestMessage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("name %q: %w", "a/b", ErrInvalid), `name "a/b"`},
		{fmt.Errorf("stale resourceVersion: %w", ErrConflict), "stale resourceVersion"},
		{fmt.Errorf("no host has room: %w", ErrInsufficientResources), "no host has room"},
		{fmt.Errorf("store is read-only: %w", ErrUnavailable), "store is read-only"},
		{fmt.Errorf("wrong token: %w", ErrUnauthorized), "wrong token"},
		{fmt.Errorf("revision 3 is compacted: %w", ErrGone), "revision 3 is compacted"},
		{fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", ErrInvalid)), "outer: inner"},
		// "not found" and "quota exceeded" are the message.
		{fmt.Errorf("/dc1/vm/web %w", ErrNotFound), "/dc1/vm/web not found"},
		{fmt.Errorf("vm /dc1/vm/web: %w", ErrNotFound), "vm /dc1/vm/web: not found"},
		{fmt.Errorf("pool dev: %w", ErrQuotaExceeded), "pool dev: quota exceeded"},
		// The suffix goes only when it is there, and never leaves nothing.
		{fmt.Errorf("%w", ErrInvalid), "invalid"},
		{fmt.Errorf("bad (%w)", ErrInvalid), "bad (invalid)"},
		{fmt.Errorf("re-list: %w", compacted{}), "re-list: revision compacted"},
		{fmt.Errorf("ends in invalid but wraps nothing: invalid"), "ends in invalid but wraps nothing: invalid"},
		{nil, ""},
	} {
		if got := Message(tc.err); got != tc.want {
			t.Errorf("Message(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
