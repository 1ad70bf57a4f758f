package agent

import (
	"context"
	"log/slog"
	"net"
	"strconv"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	psdns "github.com/podsphere/podsphere/host/dns"
	"github.com/podsphere/podsphere/lb"
)

// nameserverRuntime is a runtime whose VMs resolve names through a
// resolver on their host (containerd): it says where that resolver must
// listen (the VM bridge's gateway, "" without a host network) and takes
// the cluster domain their search path ends with.
type nameserverRuntime interface {
	Nameserver() string
	SetClusterDomain(domain string)
}

// dnsConsumer is the host's resolver as a consumer of the cluster's
// load-balancing state: each state swaps its records, and a changed
// cluster domain reaches the resolv.conf of the VMs created next.
type dnsConsumer struct {
	res *psdns.Resolver
	rt  nameserverRuntime
}

var _ LBConsumer = (*dnsConsumer)(nil)

func (d *dnsConsumer) Name() string { return d.res.Name() }

func (d *dnsConsumer) ApplyLB(ctx context.Context, st *lb.State) error {
	d.rt.SetClusterDomain(st.Spec.ClusterDomain)
	return d.res.ApplyLB(ctx, st)
}

// startDNS starts the host's resolver on port 53 of the VM bridge's
// gateway, when the runtime has VM networking, and reads the cluster's
// domain first so VMs created before the first load-balancing state get
// the right search path. It returns nil when the runtime has no resolver
// to run, or it cannot listen (logged: VMs keep running, their lookups
// fail until an agent restart).
func (a *Agent) startDNS(ctx context.Context, c *client.Client) *dnsConsumer {
	rt, ok := a.cfg.Runtime.(nameserverRuntime)
	if !ok || rt.Nameserver() == "" {
		return nil
	}
	if o, err := c.Get(ctx, a.cfg.Cluster); err == nil {
		var spec api.ClusterSpec
		if o.DecodeSpec(&spec) == nil {
			rt.SetClusterDomain(spec.ClusterDomain)
		}
	} else {
		a.log.Printf("DNS: cluster %s not read (%v): VMs get the cluster.local search path until the services state arrives", a.cfg.Cluster, err)
	}
	res, err := psdns.New(psdns.Config{
		Listen: net.JoinHostPort(rt.Nameserver(), strconv.Itoa(psdns.DefaultPort)),
		Logger: slog.Default().With("host", a.host),
	})
	if err == nil {
		err = res.Start()
	}
	if err != nil {
		a.log.Printf("DNS: resolver for VMs not started: %v", err)
		return nil
	}
	a.log.Printf("DNS: resolver for VMs on %s, forwarding to %v", res.Addr(), res.Upstreams())
	return &dnsConsumer{res: res, rt: rt}
}
