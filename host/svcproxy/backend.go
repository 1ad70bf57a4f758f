package svcproxy

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/podsphere/podsphere/api"
)

// The backends a host can carry its Services with.
const (
	BackendAuto     = "auto"
	BackendNFTables = "nftables"
	BackendIPTables = "iptables"
)

// NewBackend makes the backend name picks in netns ("" = the agent's
// own). auto is nftables when the kernel has nf_tables and a batch in
// podsphere's table goes through (the probe), else iptables. The backend
// not chosen is cleared of podsphere's rules, so a host moving from one to
// the other does not keep both (the two would translate the same packet).
func NewBackend(ctx context.Context, name, netns string, logger *log.Logger) (Backend, error) {
	if logger == nil {
		logger = log.Default()
	}
	var be Backend
	var err error
	switch name {
	case BackendNFTables:
		be, err = NewNFTables(NFTablesConfig{NetNS: netns})
	case BackendIPTables:
		be, err = NewIPTables(IPTablesConfig{NetNS: netns})
	case BackendAuto, "":
		nb, nerr := NewNFTables(NFTablesConfig{NetNS: netns})
		if nerr == nil {
			be = nb
			break
		}
		logger.Printf("service rules: nftables unusable (%v): using iptables", nerr)
		be, err = NewIPTables(IPTablesConfig{NetNS: netns})
		if err != nil {
			err = errors.Join(nerr, err)
		}
	default:
		return nil, fmt.Errorf("--service-rules-backend %q: want auto, nftables or iptables: %w", name, api.ErrInvalid)
	}
	if err != nil {
		return nil, err
	}
	// Best effort: the other backend may not even be installed.
	switch be.(type) {
	case *NFTables:
		if ipt, err := NewIPTables(IPTablesConfig{NetNS: netns}); err == nil {
			if err := ipt.Remove(ctx); err != nil {
				logger.Printf("service rules: clearing iptables rules: %v", err)
			}
		}
	case *IPTables:
		if nb, err := openNFTables(netns); err == nil {
			if err := nb.Remove(ctx); err != nil {
				logger.Printf("service rules: clearing the nftables table: %v", err)
			}
		}
	}
	return be, nil
}
