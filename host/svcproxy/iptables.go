// Package svcproxy carries a cluster's Services on one host, podsphere's
// kube-proxy: it turns the agent's lb.State into the host's packet-filter
// rules (lb.Rules decides them; a Backend programs them) and answers the
// health-check node ports of externalTrafficPolicy Local Services.
package svcproxy

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/coreos/go-iptables/iptables"

	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/lb"
)

// Backend programs a host's packet filter from the load-balancing state;
// each backend turns it into its own rules (lb.Rules for iptables,
// lb.NftRules for nftables) and remembers what it last programmed.
type Backend interface {
	Name() string
	// Sync programs st. A full sync makes the host's rules exactly st's:
	// everything of podsphere's rewritten, whatever st lacks deleted
	// (whoever left it), adopting what a previous agent left without a
	// moment with no rules. Otherwise it moves the host from what the
	// last successful Sync left, rewriting only what differs; after a
	// failed Sync the next is full.
	Sync(ctx context.Context, st *lb.State, full bool) error
	// Remove deletes everything of podsphere's from the host.
	Remove(ctx context.Context) error
}

// IPTables is the iptables backend: one `iptables-restore --noflush` per
// sync, which replaces the chains it names and nothing else, each table in
// one transaction, and go-iptables for the hooks.
type IPTables struct {
	netns   string
	restore string
	ipt     *iptables.IPTables
	gen     *lb.Generator
	last    *lb.Ruleset
}

// IPTablesConfig configures the backend.
type IPTablesConfig struct {
	// NetNS is the network namespace to program, a path like
	// /run/netns/NAME ("" = the agent's own, as in the lab, where each
	// agent runs in its host's namespace).
	NetNS string
	// Iptables and Restore are the iptables and iptables-restore binaries
	// (default: from PATH, whichever backend the distribution picked;
	// iptables-legacy and iptables-legacy-restore for the legacy one).
	Iptables, Restore string
}

// NewIPTables checks that iptables can be run in cfg.NetNS.
func NewIPTables(cfg IPTablesConfig) (*IPTables, error) {
	b := &IPTables{netns: cfg.NetNS, restore: cfg.Restore, gen: lb.NewGenerator()}
	if b.restore == "" {
		p, err := exec.LookPath("iptables-restore")
		if err != nil {
			return nil, fmt.Errorf("service rules: %w (apt-get install iptables)", err)
		}
		b.restore = p
	}
	err := network.InNetNS(b.netns, func() error {
		var err error
		if cfg.Iptables != "" {
			b.ipt, err = iptables.New(iptables.Path(cfg.Iptables))
		} else {
			b.ipt, err = iptables.New()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("service rules: iptables: %w", err)
	}
	return b, nil
}

func (b *IPTables) Name() string { return "iptables" }

func (b *IPTables) Sync(ctx context.Context, st *lb.State, full bool) error {
	rs := b.gen.Rules(st)
	var err error
	if full || b.last == nil {
		err = b.Full(ctx, rs)
	} else {
		err = b.Update(ctx, b.last, rs)
	}
	if err != nil {
		b.last = nil // what is in place is unknown: the next sync is full
		return err
	}
	b.last = rs
	return nil
}

func (b *IPTables) Full(ctx context.Context, rs *lb.Ruleset) error {
	want := map[lb.ID]bool{}
	for _, c := range rs.Chains() {
		want[c.ID()] = true
	}
	var stale []lb.ID
	err := network.InNetNS(b.netns, func() error {
		for _, table := range []string{"nat", "filter"} {
			chains, err := b.ipt.ListChains(table)
			if err != nil {
				return fmt.Errorf("list %s chains: %w", table, err)
			}
			for _, c := range chains {
				if id := (lb.ID{Table: table, Name: c}); strings.HasPrefix(c, lb.ChainPrefix) && !want[id] {
					stale = append(stale, id)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("service rules: %w", err)
	}
	// The chains first, so the hooks never jump to a missing chain.
	if err := b.run(ctx, lb.Restore(rs.Chains(), stale)); err != nil {
		return err
	}
	return b.hooks(rs.Hooks)
}

func (b *IPTables) Update(ctx context.Context, was, rs *lb.Ruleset) error {
	write, remove := lb.Diff(was, rs)
	if len(write) == 0 && len(remove) == 0 {
		return nil
	}
	return b.run(ctx, lb.Restore(write, remove))
}

// hooks puts each hook first in its built-in chain unless it is there.
func (b *IPTables) hooks(hooks []lb.Hook) error {
	return network.InNetNS(b.netns, func() error {
		for _, h := range hooks {
			ok, err := b.ipt.Exists(h.Table, h.Chain, h.Rule...)
			if err == nil && !ok {
				err = b.ipt.Insert(h.Table, h.Chain, 1, h.Rule...)
			}
			if err != nil {
				return fmt.Errorf("service rules: hook %s %s: %w", h.Table, h.Chain, err)
			}
		}
		return nil
	})
}

// run feeds text to one iptables-restore. -w waits for the xtables lock
// other tools (CNI's portmap, the network's masquerade) take.
func (b *IPTables) run(ctx context.Context, text []byte) error {
	return network.InNetNS(b.netns, func() error {
		cmd := exec.CommandContext(ctx, b.restore, "-w", "5", "--noflush")
		cmd.Stdin = bytes.NewReader(text)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("service rules: iptables-restore: %v: %s", err, firstLines(out.String(), 5))
		}
		return nil
	})
}

// Remove deletes every rule podsphere's Services put on the host: the
// hooks, then its chains. The lab needs none of it (a host's namespace
// goes away with its rules); an agent taken off a machine for good does.
func (b *IPTables) Remove(ctx context.Context) error {
	var chains []lb.ID
	err := network.InNetNS(b.netns, func() error {
		for _, h := range lb.Hooks {
			// iptables cannot even check a jump to a missing chain: a host
			// that never had podsphere's chains has no hooks either.
			if ok, err := b.ipt.ChainExists(h.Table, h.Rule[len(h.Rule)-1]); err != nil || !ok {
				continue
			}
			if err := b.ipt.DeleteIfExists(h.Table, h.Chain, h.Rule...); err != nil {
				return err
			}
		}
		for _, table := range []string{"nat", "filter"} {
			cs, err := b.ipt.ListChains(table)
			if err != nil {
				return err
			}
			for _, c := range cs {
				if strings.HasPrefix(c, lb.ChainPrefix) {
					chains = append(chains, lb.ID{Table: table, Name: c})
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("service rules: remove: %w", err)
	}
	if len(chains) == 0 {
		return nil
	}
	return b.run(ctx, lb.Restore(nil, chains))
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "; ")
}
