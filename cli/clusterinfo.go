package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// clusterInfo is one cluster as cluster.info shows it (-json: a list).
type clusterInfo struct {
	Name     string          `json:"name"`
	Path     string          `json:"path"`
	DRS      api.DRSConfig   `json:"drs"`
	HA       api.HAConfig    `json:"ha"`
	Groups   int             `json:"groups"`
	Rules    int             `json:"rules"`
	Capacity *api.HACapacity `json:"failoverCapacity"`
	// Network is the cluster's pod and service network; Ingress the
	// address kept for its Ingress proxy and the host answering for it.
	Network clusterNetwork          `json:"network"`
	Ingress api.LoadBalancerIngress `json:"ingress,omitzero"`
}

type clusterNetwork struct {
	PodCIDR               string   `json:"podCIDR,omitempty"`
	ServiceCIDR           string   `json:"serviceCIDR,omitempty"`
	NodePortRange         string   `json:"nodePortRange,omitempty"`
	LoadBalancerAddresses []string `json:"loadBalancerAddresses,omitempty"`
	ClusterDomain         string   `json:"clusterDomain,omitempty"`
}

// clusterInfoOptions runs `psc cluster.info [CLUSTER...]`. govc has no
// cluster.info; this is vSphere's cluster summary (DRS, HA and its
// admission control with the current failover capacity) in host.info's
// layout.
type clusterInfoOptions struct {
	env      *Env
	clusters []string
}

func newClusterInfoCommand(env *Env) *cobra.Command {
	o := &clusterInfoOptions{env: env}
	return &cobra.Command{
		Use:   "cluster.info [CLUSTER...]",
		Short: "Show clusters' DRS and HA settings and HA failover capacity (slots or CPU/memory percentages, total and free)",
		Example: `  psc cluster.info c1
  psc cluster.info -json c1`,
		RunE: runE(o),
	}
}

func (o *clusterInfoOptions) Complete(_ *cobra.Command, args []string) error {
	o.clusters = args
	return nil
}

func (o *clusterInfoOptions) Validate() error { return nil }

func (o *clusterInfoOptions) Run(ctx context.Context) error {
	var r *Resolver
	var paths []string
	var err error
	if len(o.clusters) == 0 {
		var cp string
		if r, cp, err = o.env.clusterResolver(ctx); err != nil {
			return err
		}
		paths = []string{cp}
	} else if r, paths, err = o.env.resolvePaths(ctx, api.KindCluster, o.clusters); err != nil {
		return err
	}
	infos := make([]clusterInfo, 0, len(paths))
	for _, p := range paths {
		obj, err := r.API.Get(ctx, p)
		if err != nil {
			return err
		}
		var s api.ClusterSpec
		if err := obj.DecodeSpec(&s); err != nil {
			return fmt.Errorf("cluster %s: %w", p, err)
		}
		c, err := r.API.HACapacity(ctx, p)
		if err != nil {
			return err
		}
		var st api.ClusterStatus
		_ = obj.DecodeStatus(&st)
		infos = append(infos, clusterInfo{Name: obj.Name(), Path: p, DRS: s.DRS, HA: s.HA, Groups: len(s.Groups), Rules: len(s.Rules), Capacity: c,
			Network: clusterNetwork{PodCIDR: s.PodCIDR, ServiceCIDR: s.ServiceCIDR, NodePortRange: s.NodePortRange,
				LoadBalancerAddresses: s.LoadBalancerAddresses, ClusterDomain: s.ClusterDomain},
			Ingress: st.Ingress})
	}
	if o.env.JSON {
		return writeJSON(o.env.Out, infos)
	}
	for _, ci := range infos {
		if err := writeClusterInfo(o.env.Out, ci); err != nil {
			return err
		}
	}
	return nil
}

func onOff(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

// writeClusterInfo prints one cluster's summary block.
func writeClusterInfo(w io.Writer, ci clusterInfo) error {
	h, c := ci.HA, ci.Capacity
	b := &block{name: ci.Name}
	b.add("Path", "%s", ci.Path)
	b.add("DRS", "%s (%s)", onOff(ci.DRS.Enabled), orDash(ci.DRS.Mode))
	b.add("HA", "%s", onOff(h.Enabled))
	b.add("Restart priority", "%s", orDefault(h.DefaultRestartPriority, "medium"))
	b.add("Isolation response", "%s", orDefault(h.IsolationResponse, "disabled"))
	b.list("Isolation address", h.IsolationAddresses)
	if h.ShutdownTimeoutSeconds > 0 {
		b.add("Shutdown timeout", "%ds", h.ShutdownTimeoutSeconds)
	}
	b.add("Ready condition", "%s, additional delay %ds, timeout %s", orDefault(h.ReadyCondition, "poweredOn"), h.PostReadyDelaySeconds, secondsOr(h.ReadyTimeoutSeconds, "60s"))
	b.add("Groups, rules", "%d, %d", ci.Groups, ci.Rules)
	policy := "cluster resource percentage"
	if c.Policy == "slot" {
		policy = "slot policy"
	}
	ac := onOff(h.AdmissionControlEnabled)
	if !h.AdmissionControlEnabled || !h.Enabled {
		ac += " (figures: what it would keep)"
		if h.AdmissionControlEnabled {
			ac = "enabled, inactive while HA is disabled"
		}
	}
	b.add("Admission control", "%s", ac)
	b.add("Policy", "%s, %d host failure(s) tolerated", policy, c.HostFailuresTolerated)
	b.add("Hosts, VMs", "%d, %d powered on", c.Hosts, c.VMs)
	if c.Policy == "slot" {
		b.add("Slot size", "%s, %s", mhz(c.SlotCPUMHz), mb(c.SlotMemMB))
		b.add("Slots", "%d total, %d for failover, %d usable, %d used, %d free", c.TotalSlots, c.TotalSlots-c.UsableSlots, c.UsableSlots, c.UsedSlots, c.FreeSlots)
	} else {
		for _, x := range []struct {
			label string
			r     api.HACapacityResource
			u     func(int64) string
		}{{"CPU", c.CPU, mhz}, {"Memory", c.Mem, mb}} {
			b.add(x.label+" failover", "%s of %s kept for failover (%.0f%%), current failover capacity %.0f%%", x.u(x.r.Failover), x.u(x.r.Total), x.r.FailoverPercent, x.r.CurrentPercent)
			b.add(x.label+" free", "%s reserved, %s free to reserve", x.u(x.r.Reserved), x.u(x.r.Free))
		}
	}
	n := ci.Network
	b.add("Pod CIDR", "%s", orDash(n.PodCIDR))
	b.add("Service CIDR", "%s", orDash(n.ServiceCIDR))
	b.add("Node ports", "%s", orDash(n.NodePortRange))
	if len(n.LoadBalancerAddresses) == 0 {
		b.add("LB addresses", "none (LoadBalancer Services stay <pending>)")
	} else {
		b.list("LB addresses", n.LoadBalancerAddresses)
	}
	if ci.Ingress.IP != "" {
		b.add("Ingress address", "%s answered by %s", ci.Ingress.IP, orDash(baseOrEmpty(ci.Ingress.Host)))
	}
	b.add("Cluster domain", "%s", orDash(n.ClusterDomain))
	return b.write(w)
}

func baseOrEmpty(p string) string {
	if p == "" {
		return ""
	}
	return api.Base(p)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func secondsOr(n int, def string) string {
	if n == 0 {
		return def
	}
	return fmt.Sprintf("%ds", n)
}
