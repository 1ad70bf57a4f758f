package cli

import (
	"context"
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
	paths, err := r.hostPaths(ctx, o.hosts)
	if err != nil {
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
		if p := st.Maintenance; p != nil && (h.Maintenance && !p.Done || p.Error != "") {
			b.add("Maintenance", "%s", maintenanceLine(p))
		}
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

// hostPaths resolves the hosts named, or with none named every host of the
// current cluster (of the whole inventory when there is none), as govc's
// host verbs do.
func (r *Resolver) hostPaths(ctx context.Context, names []string) ([]string, error) {
	if len(names) > 0 {
		return r.Paths(ctx, api.KindHost, names)
	}
	scope := "/"
	if cp, err := r.clusterPath(ctx); err == nil {
		scope = cp + "/"
	}
	l, err := r.API.List(ctx, client.ListOptions{Kind: api.KindHost, Prefix: scope})
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, h := range l.Items {
		paths = append(paths, h.Path)
	}
	return paths, nil
}
