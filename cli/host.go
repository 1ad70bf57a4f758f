package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// hostInfoOptions runs `psc host.info [HOST...]`.
type hostInfoOptions struct {
	env   *Env
	hosts []string
}

func newHostInfoCommand(env *Env) *cobra.Command {
	o := &hostInfoOptions{env: env}
	return &cobra.Command{
		Use:   "host.info [HOST...]",
		Short: "Show hosts: state, capacity, usage, VMs, last heartbeat (all hosts of the cluster by default)",
		Example: `  psc host.info
  psc host.info esx-01 '/dc1/host/c1/esx-0*'`,
		RunE: runE(o),
	}
}

func (o *hostInfoOptions) Complete(_ *cobra.Command, args []string) error {
	o.hosts = args
	return nil
}

func (o *hostInfoOptions) Validate() error { return nil }

// hostInfo is host.info's -json element.
type hostInfo struct {
	Name        string         `json:"name"`
	Path        string         `json:"path"`
	Maintenance bool           `json:"maintenance"`
	Status      api.HostStatus `json:"status"`
	VMs         int            `json:"vms"`
}

func (o *hostInfoOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	var paths []string
	if len(o.hosts) == 0 {
		scope := "/"
		if cp, err := r.clusterPath(ctx); err == nil {
			scope = cp + "/"
		}
		l, err := r.API.List(ctx, client.ListOptions{Kind: api.KindHost, Prefix: scope})
		if err != nil {
			return err
		}
		for _, h := range l.Items {
			paths = append(paths, h.Path)
		}
	} else if paths, err = r.Paths(ctx, api.KindHost, o.hosts); err != nil {
		return err
	}
	inv, err := loadInventory(ctx, r.API, "/")
	if err != nil {
		return err
	}
	var infos []hostInfo
	for _, p := range paths {
		h, ok := inv.byPath[p]
		if !ok {
			if h, err = r.API.Get(ctx, p); err != nil {
				return err
			}
		}
		var spec api.HostSpec
		_ = h.DecodeSpec(&spec)
		hi := hostInfo{Name: h.Name(), Path: h.Path, Maintenance: spec.Maintenance, VMs: len(inv.hostVMs(h.Path))}
		_ = h.DecodeStatus(&hi.Status)
		infos = append(infos, hi)
	}
	if o.env.JSON {
		if infos == nil {
			infos = []hostInfo{}
		}
		return writeJSON(o.env.Out, infos)
	}
	return writeHostInfo(o.env.Out, infos, o.env.Now(), o.env.Location)
}

// writeHostInfo prints govc's host.info blocks.
func writeHostInfo(w io.Writer, infos []hostInfo, now time.Time, loc *time.Location) error {
	for _, h := range infos {
		st := h.Status
		b := &block{name: h.Name}
		b.add("Path", "%s", h.Path)
		state := orDash(st.State)
		if h.Maintenance && st.State != api.HostMaintenance {
			state += " (entering maintenance)"
		}
		b.add("State", "%s", state)
		b.add("Runtime", "%s", orDash(st.Runtime))
		b.add("Address", "%s", orDash(st.Address))
		b.add("CPU capacity", "%s", mhz(st.CPUCapacity))
		b.add("CPU usage", "%s (%s)", mhz(st.CPUUsage), percent(st.CPUUsage, st.CPUCapacity))
		b.add("Memory capacity", "%s", mb(st.MemCapacity))
		b.add("Memory usage", "%s (%s)", mb(st.MemUsage), percent(st.MemUsage, st.MemCapacity))
		b.add("VMs", "%d", h.VMs)
		if st.PodSubnet != "" {
			b.add("Pod subnet", "%s", st.PodSubnet)
		}
		b.add("Last seen", "%s (%s)", timeString(st.LastSeen, loc), ago(st.LastSeen, now))
		if err := b.write(w); err != nil {
			return err
		}
	}
	return nil
}

// hostMaintenanceOptions runs host.maintenance.enter and host.maintenance.exit.
type hostMaintenanceOptions struct {
	env   *Env
	enter bool
	hosts []string
}

func newHostMaintenanceCommand(enter bool) func(*Env) *cobra.Command {
	return func(env *Env) *cobra.Command {
		o := &hostMaintenanceOptions{env: env, enter: enter}
		use, short := "host.maintenance.exit HOST...", "Take hosts out of maintenance mode"
		if enter {
			use, short = "host.maintenance.enter HOST...", "Put hosts in maintenance mode: nothing new lands there (running VMs stay until moved)"
		}
		return &cobra.Command{
			Use:     use,
			Short:   short,
			Example: "  psc " + use[:len(use)-len(" HOST...")] + " esx-01",
			Args:    minArgs(1, "at least one HOST"),
			RunE:    runE(o),
		}
	}
}

func (o *hostMaintenanceOptions) Complete(_ *cobra.Command, args []string) error {
	o.hosts = args
	return nil
}

func (o *hostMaintenanceOptions) Validate() error { return nil }

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
		_, err := modify(ctx, r.API, p, func(obj *api.Object) error {
			var s api.HostSpec
			if err := obj.DecodeSpec(&s); err != nil {
				return fmt.Errorf("host %s: %w", p, err)
			}
			s.Maintenance = o.enter
			obj.SetSpec(s)
			return nil
		})
		if err != nil {
			fmt.Fprintln(o.env.Out, "failed")
			return err
		}
		fmt.Fprintln(o.env.Out, "OK")
	}
	return nil
}
