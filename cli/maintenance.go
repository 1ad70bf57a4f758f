package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// maintenancePoll is how often host.maintenance.enter reads the host's
// progress while it evacuates.
const maintenancePoll = 250 * time.Millisecond

// hostMaintenanceOptions runs host.maintenance.enter and host.maintenance.exit.
type hostMaintenanceOptions struct {
	env      *Env
	enter    bool
	evacuate bool // govc -evacuate: powered-off VMs move too
	timeout  int  // govc -timeout, seconds; 0 waits as long as it takes
	hosts    []string
}

func newHostMaintenanceCommand(enter bool) func(*Env) *cobra.Command {
	return func(env *Env) *cobra.Command {
		o := &hostMaintenanceOptions{env: env, enter: enter}
		use, short := "host.maintenance.exit HOST...", "Take hosts out of maintenance mode (or stop entering it)"
		example := "  psc host.maintenance.exit esx-01"
		if enter {
			use = "host.maintenance.enter [-evacuate] [-timeout S] HOST..."
			short = "Put hosts in maintenance mode: nothing new lands there, and every powered-on VM is moved away first (shows progress until done)"
			example = "  psc host.maintenance.enter esx-01\n  psc host.maintenance.enter -evacuate -timeout 300 esx-01"
		}
		cmd := &cobra.Command{
			Use:     use,
			Short:   short,
			Example: example,
			Args:    minArgs(1, "at least one HOST"),
			RunE:    runE(o),
		}
		if enter {
			cmd.Flags().BoolVar(&o.evacuate, "evacuate", false, "also move powered-off VMs off the host (govc's -evacuate)")
			cmd.Flags().IntVar(&o.timeout, "timeout", 0, "give up after S seconds with VMs left: the host goes back to connected (0: no timeout)")
		}
		return cmd
	}
}

func (o *hostMaintenanceOptions) Complete(_ *cobra.Command, args []string) error {
	o.hosts = args
	return nil
}

func (o *hostMaintenanceOptions) Validate() error {
	if o.timeout < 0 {
		return usagef("host.maintenance.enter: -timeout %d is negative: give seconds, or 0 for no timeout", o.timeout)
	}
	return nil
}

func (o *hostMaintenanceOptions) Run(ctx context.Context) error {
	r, paths, err := o.env.resolvePaths(ctx, api.KindHost, o.hosts)
	if err != nil {
		return err
	}
	verb := "Exiting"
	if o.enter {
		verb = "Entering"
	}
	for _, p := range paths {
		fmt.Fprintf(o.env.Out, "%s maintenance mode on %s... ", verb, p)
		out, err := modify(ctx, r.API, p, func(obj *api.Object) error {
			var s api.HostSpec
			if err := obj.DecodeSpec(&s); err != nil {
				return fmt.Errorf("host %s: %w", p, err)
			}
			s.Maintenance = o.enter
			s.EvacuatePoweredOff, s.MaintenanceTimeoutSeconds = o.enter && o.evacuate, 0
			if o.enter {
				s.MaintenanceTimeoutSeconds = o.timeout
			}
			obj.SetSpec(s)
			return nil
		})
		if err != nil {
			fmt.Fprintln(o.env.Out, "failed")
			return err
		}
		var st api.HostStatus
		_ = out.DecodeStatus(&st)
		if !o.enter || st.State == api.HostMaintenance {
			fmt.Fprintln(o.env.Out, "OK")
			continue
		}
		fmt.Fprintln(o.env.Out)
		if err := o.follow(ctx, r.API, p); err != nil {
			return err
		}
	}
	return nil
}

// follow prints the host's evacuation progress whenever it changes until
// the host is in maintenance mode, or fails with the reason it gave up.
func (o *hostMaintenanceOptions) follow(ctx context.Context, c API, p string) error {
	if o.timeout > 0 {
		// vcenter gives up at the timeout; this bounds the wait should
		// vcenter itself stop answering.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(o.timeout)*time.Second+30*time.Second)
		defer cancel()
	}
	last := ""
	for {
		h, err := c.Get(ctx, p)
		if err != nil {
			return err
		}
		var spec api.HostSpec
		var st api.HostStatus
		_ = h.DecodeSpec(&spec)
		_ = h.DecodeStatus(&st)
		pr := st.Maintenance
		switch {
		case spec.Maintenance && st.State == api.HostMaintenance && (pr == nil || pr.Done):
			moved := 0
			if pr != nil {
				moved = pr.Moved
			}
			fmt.Fprintf(o.env.Out, "OK: %s is in maintenance mode (%d VMs moved or stopped)\n", api.Base(p), moved)
			return nil
		case !spec.Maintenance && pr != nil && pr.Error != "":
			fmt.Fprintf(o.env.Out, "failed\n")
			return fmt.Errorf("%s did not enter maintenance mode and is back in service: %s: %w", p, pr.Error, api.ErrUnavailable)
		case !spec.Maintenance:
			fmt.Fprintf(o.env.Out, "failed\n")
			return fmt.Errorf("%s stopped entering maintenance mode (host.maintenance.exit): %w", p, api.ErrConflict)
		}
		if pr != nil {
			if line := maintenanceLine(pr); line != last {
				fmt.Fprintf(o.env.Out, "  %s: %s\n", api.Base(p), line)
				last = line
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is still entering maintenance mode (%s): stopped following it: %w", p, last, api.ErrUnavailable)
		case <-time.After(maintenancePoll):
		}
	}
}

// maintenanceLine is a host's evacuation progress as one line.
func maintenanceLine(p *api.MaintenanceProgress) string {
	switch {
	case p.Error != "":
		return "failed: " + p.Error
	case p.Done:
		return "in maintenance mode"
	}
	s := fmt.Sprintf("%d of %d VMs left", p.VMsLeft, max(p.VMs, p.VMsLeft))
	if p.Step != "" {
		s += ": " + p.Step
	}
	if p.Waiting != "" {
		s += "; waiting: " + p.Waiting
	}
	if !p.Deadline.IsZero() {
		s += " (times out at " + p.Deadline.UTC().Format("15:04:05") + " UTC)"
	}
	return s
}
