package api

import "errors"

// The few sentinels every podsphere error wraps onto. Callers test them with
// errors.Is; the API server maps them to HTTP status codes and psc maps them to
// exit codes, so the same failure reads the same everywhere.
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
)
