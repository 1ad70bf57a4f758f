package api

import (
	"errors"
	"net/http"
	"strings"
)

// The few sentinels every podsphere error wraps onto. Callers test them with
// errors.Is; Sentinels says what each one reads as over HTTP and as psc's exit
// code, so the same failure reads the same everywhere.
var (
	ErrNotFound      = errors.New("not found")
	ErrConflict      = errors.New("conflict")
	ErrInvalid       = errors.New("invalid")
	ErrQuotaExceeded = errors.New("quota exceeded")
	// ErrInsufficientResources is vSphere's InsufficientResourcesFault: a
	// reservation cannot be admitted by the pool tree or no host has room.
	ErrInsufficientResources = errors.New("insufficient resources")
	ErrUnavailable           = errors.New("unavailable")
	ErrUnauthorized          = errors.New("unauthorized")
	// ErrGone is a watch asked to resume from a revision the change log no
	// longer holds: re-list and watch again from the list's revision.
	ErrGone = errors.New("gone")
)

// psc's exit codes: ExitOK and ExitError (an error that wraps no sentinel);
// the others are the sentinels' (Sentinels).
const (
	ExitOK           = 0
	ExitError        = 1
	ExitUsage        = 2
	ExitNotFound     = 3
	ExitConflict     = 4
	ExitInsufficient = 5 // quota exceeded or insufficient resources
	ExitUnavailable  = 6
	ExitUnauthorized = 7
)

// Sentinel is how one sentinel error reads on every surface.
type Sentinel struct {
	Err        error
	Reason     string // ErrorBody.Reason
	HTTPStatus int    // the answer of vcenter and of host agents
	ExitCode   int    // psc's
	// Trim: Message drops the ": <Err>" that %w wrapping leaves at the end of
	// the message. The texts "not found" and "quota exceeded" are kept: they
	// are part of the sentence ("/dc1/vm/web not found").
	Trim bool
}

// Sentinels is the one table of sentinels, in match order: an error that
// wraps several reads as the first one listed. docs/api.md shows it.
var Sentinels = []Sentinel{
	{ErrUnauthorized, "Unauthorized", http.StatusUnauthorized, ExitUnauthorized, true},
	{ErrNotFound, "NotFound", http.StatusNotFound, ExitNotFound, false},
	{ErrGone, "Gone", http.StatusGone, ExitUnavailable, true},
	{ErrConflict, "Conflict", http.StatusConflict, ExitConflict, true},
	{ErrInvalid, "Invalid", http.StatusBadRequest, ExitUsage, true},
	{ErrQuotaExceeded, "QuotaExceeded", http.StatusForbidden, ExitInsufficient, false},
	{ErrInsufficientResources, "InsufficientResources", http.StatusConflict, ExitInsufficient, true},
	{ErrUnavailable, "Unavailable", http.StatusServiceUnavailable, ExitUnavailable, true},
}

// FindSentinel is the first entry of Sentinels that err wraps; ok is false
// when it wraps none (or err is nil).
func FindSentinel(err error) (s Sentinel, ok bool) {
	if err == nil {
		return Sentinel{}, false
	}
	for _, s := range Sentinels {
		if errors.Is(err, s.Err) {
			return s, true
		}
	}
	return Sentinel{}, false
}

// SentinelOf is FindSentinel's entry, or ErrUnavailable's when err wraps no
// sentinel: a failure nobody classified answers 503 Unavailable.
func SentinelOf(err error) Sentinel {
	if s, ok := FindSentinel(err); ok {
		return s
	}
	for _, s := range Sentinels {
		if s.Err == ErrUnavailable {
			return s
		}
	}
	panic("api: ErrUnavailable is missing from Sentinels")
}

// ErrorForReason is the sentinel an ErrorBody's reason names; an unknown or
// empty reason counts as ErrUnavailable (the answer came from something that
// is not a podsphere server, or a newer one).
func ErrorForReason(reason string) error {
	for _, s := range Sentinels {
		if s.Reason == reason {
			return s.Err
		}
	}
	return ErrUnavailable
}

// Message is err's text for people (ErrorBody.Error, events, tasks): the
// trailing ": invalid" style suffix that %w wrapping leaves is dropped, so
// users read the message rather than the sentinel's name repeated. See
// Sentinel.Trim for the ones that stay.
func Message(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	for _, s := range Sentinels {
		if !s.Trim || !errors.Is(err, s.Err) {
			continue
		}
		if m, ok := strings.CutSuffix(msg, ": "+s.Err.Error()); ok && m != "" {
			return m
		}
	}
	return msg
}
