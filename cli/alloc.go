package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/pools"
)

// allocFlags are govc's resource allocation flags, shared by pools and VMs:
// -cpu.reservation (MHz) -cpu.limit -cpu.shares -cpu.expandable and the
// same for mem (MB).
type allocFlags struct {
	fs                   *pflag.FlagSet
	cpuRes, cpuLim       int64
	memRes, memLim       int64
	cpuShares, memShares string
	cpuExp, memExp       bool
	expandable           bool
}

// register adds the flags to fs. With defaults they start at govc's
// pool.create values; without, they are only applied when set.
// expandable adds -cpu.expandable and -mem.expandable (pools only).
func (a *allocFlags) register(fs *pflag.FlagSet, defaults, expandable bool) {
	a.fs, a.expandable = fs, expandable
	d := pools.DefaultAllocation()
	var limit int64
	shares := ""
	if defaults {
		limit, shares = d.Limit, d.Shares.Level
	}
	fs.Int64Var(&a.cpuRes, "cpu.reservation", 0, "CPU reservation in MHz")
	fs.Int64Var(&a.cpuLim, "cpu.limit", limit, "CPU limit in MHz (-1 unlimited)")
	fs.StringVar(&a.cpuShares, "cpu.shares", shares, "CPU shares: low, normal, high or a number (custom)")
	fs.Int64Var(&a.memRes, "mem.reservation", 0, "memory reservation in MB")
	fs.Int64Var(&a.memLim, "mem.limit", limit, "memory limit in MB (-1 unlimited)")
	fs.StringVar(&a.memShares, "mem.shares", shares, "memory shares: low, normal, high or a number (custom)")
	if expandable {
		fs.BoolVar(&a.cpuExp, "cpu.expandable", defaults && d.Expandable, "CPU reservation may borrow from the parent pool")
		fs.BoolVar(&a.memExp, "mem.expandable", defaults && d.Expandable, "memory reservation may borrow from the parent pool")
	}
}

// anySet says whether the user gave any allocation flag.
func (a *allocFlags) anySet() bool {
	for _, n := range []string{"cpu.reservation", "cpu.limit", "cpu.shares", "cpu.expandable", "mem.reservation", "mem.limit", "mem.shares", "mem.expandable"} {
		if f := a.fs.Lookup(n); f != nil && f.Changed {
			return true
		}
	}
	return false
}

// apply writes the flags onto cpu and mem: every flag when all is set
// (create), otherwise only those the user set (change). The result is
// validated as vSphere would (limit >= reservation, known shares).
func (a *allocFlags) apply(cpu, mem *api.Allocation, all bool) error {
	set := func(name string) bool { return all || a.fs.Changed(name) }
	one := func(prefix string, al *api.Allocation, res, lim int64, shares string, exp bool) error {
		if set(prefix + ".reservation") {
			al.Reservation = res
		}
		if set(prefix + ".limit") {
			al.Limit = lim
		}
		if set(prefix+".shares") && shares != "" {
			s, err := pools.ParseShares(shares)
			if err != nil {
				return usageErr(fmt.Errorf("-%s.shares: %w", prefix, err))
			}
			al.Shares = s
		}
		if a.expandable && set(prefix+".expandable") {
			al.Expandable = exp
		}
		if err := pools.Allocation(*al).Validate(prefix); err != nil {
			return usageErr(err)
		}
		return nil
	}
	return errors.Join(
		one("cpu", cpu, a.cpuRes, a.cpuLim, a.cpuShares, a.cpuExp),
		one("mem", mem, a.memRes, a.memLim, a.memShares, a.memExp),
	)
}

// vmAllocation is what a VM gets without resource flags: no reservation,
// no limit, normal shares.
func vmAllocation() api.Allocation {
	return api.Allocation{Limit: -1, Shares: api.Shares{Level: "normal"}}
}
