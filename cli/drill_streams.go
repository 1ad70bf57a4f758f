package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/ha/drill"
)

// VMDialer is an injector that opens connections from inside a VM's
// network namespace, so a drill's ClusterIP stream starts where a VM's
// own traffic does (through its host's bridge and Service rules). The
// lab's injector is one: its VMs' namespaces sit on the machine psc runs
// on. Outside a lab psc cannot enter a VM, and ha.drill needs a lab anyway.
type VMDialer interface {
	// DialFromVM is a Dialer whose sockets live in the network namespace
	// of the VM with this UID.
	DialFromVM(uid string) (Dialer, error)
}

// drillStreams are the request streams a drill sends through the Service
// selecting its VMs: from outside the hosts, and to its ClusterIP from a VM.
type drillStreams struct {
	outside, clusterIP Prober
	notSent            []string
	stopped            bool
}

// startStreams starts both streams; one that cannot be sent is said why,
// on stderr and in the report.
func (o *drillOptions) startStreams(ctx context.Context, c API, inj Injector, dc, cluster string, vms []string) (*drillStreams, error) {
	s := &drillStreams{}
	if o.env.DrillProber != nil {
		p, err := o.env.DrillProber(ctx, cluster, vms)
		var ns *NoStream
		switch {
		case errors.As(err, &ns):
			s.notSent = append(s.notSent, "from outside: "+ns.Why)
		case err != nil:
			return nil, err
		default:
			s.outside = p
		}
	}
	p, why, err := clusterIPProber(ctx, c, inj, dc, cluster, o.hosts, vms)
	if err != nil {
		return nil, err
	}
	if why != "" {
		s.notSent = append(s.notSent, "to the ClusterIP from a VM: "+why)
	}
	s.clusterIP = p
	for _, w := range s.notSent {
		fmt.Fprintf(o.env.Err, "ha.drill: no requests sent %s\n", w)
	}
	for _, p := range []Prober{s.outside, s.clusterIP} {
		if p == nil {
			continue
		}
		if err := p.Start(ctx); err != nil {
			s.stop(nil)
			return nil, err
		}
	}
	return s, nil
}

// stop ends the streams and, given in, records what they sent.
func (s *drillStreams) stop(in *drill.Input) {
	if s == nil || s.stopped {
		return
	}
	s.stopped = true
	if s.outside != nil {
		r := s.outside.Stop()
		if in != nil {
			in.Requests = &r
		}
	}
	if s.clusterIP != nil {
		r := s.clusterIP.Stop()
		if in != nil {
			in.ClusterIPRequests = &r
		}
	}
	if in != nil {
		in.RequestsNotSent = s.notSent
	}
}

// clusterIPProber is the ClusterIP stream of a drill of hosts whose VMs
// are vms: nil and no why when no Service selects them.
func clusterIPProber(ctx context.Context, c API, inj Injector, dc, cluster string, hosts, vms []string) (Prober, string, error) {
	svcs, err := c.List(ctx, client.ListOptions{Kind: api.KindService, Prefix: "/" + dc + "/service"})
	if err != nil {
		return nil, "", err
	}
	if candidates, _ := drillServices(cluster, svcs.Items, vms); len(candidates) == 0 {
		return nil, "", nil
	}
	hs, err := c.List(ctx, client.ListOptions{Kind: api.KindHost, Prefix: cluster})
	if err != nil {
		return nil, "", err
	}
	all, err := c.List(ctx, client.ListOptions{Kind: api.KindVirtualMachine, Prefix: "/" + dc + "/vm"})
	if err != nil {
		return nil, "", err
	}
	t, why := clusterIPTarget(cluster, svcs.Items, hs.Items, all.Items, vms, hosts)
	if t == nil {
		return nil, why, nil
	}
	vd, ok := inj.(VMDialer)
	if !ok {
		return nil, "it needs the lab, whose injector can open connections inside a VM's network namespace", nil
	}
	dial, err := vd.DialFromVM(t.uid)
	if err != nil {
		return nil, fmt.Sprintf("VM %s on %s: %v", api.Base(t.VM), t.Host, err), nil
	}
	return &streamProber{target: t.drillStreamTarget, from: fmt.Sprintf("VM %s on %s", api.Base(t.VM), t.Host), dial: dial}, "", nil
}

// clusterIPStream is a ClusterIP stream's target and client VM.
type clusterIPStream struct {
	drillStreamTarget
	uid string
}

// clusterIPTarget picks the Service selecting the drill's VMs that has a
// clusterIP and a TCP port, and the client VM to send from: one running
// with an address on a connected host the drill does not fail, not one of
// the drill's own VMs (they are what fails), and not an endpoint of the
// Service when another will do (its requests could stay on its own host).
// nil with why when there is none.
func clusterIPTarget(cluster string, svcs, hosts, vms []*api.Object, drillVMs, drillHosts []string) (*clusterIPStream, string) {
	candidates, _ := drillServices(cluster, svcs, drillVMs)
	if len(candidates) == 0 {
		return nil, ""
	}
	var svc *api.Object
	var url string
	for _, o := range candidates {
		var spec api.ServiceSpec
		_ = o.DecodeSpec(&spec)
		port, ok := firstTCPPort(spec)
		if _, err := netip.ParseAddr(spec.ClusterIP); err != nil || !ok {
			continue
		}
		svc, url = o, "http://"+net.JoinHostPort(spec.ClusterIP, strconv.Itoa(port.Port))+"/"
		break
	}
	if svc == nil {
		names := make([]string, len(candidates))
		for i, o := range candidates {
			names[i] = o.Path
		}
		return nil, fmt.Sprintf("%s select the drill's VMs but have no clusterIP (headless) with a TCP port", strings.Join(names, ", "))
	}
	connected := map[string]bool{}
	for _, h := range hosts {
		var st api.HostStatus
		_ = h.DecodeStatus(&st)
		connected[h.Path] = st.State == api.HostConnected && !slices.Contains(drillHosts, h.Name())
	}
	var st api.ServiceStatus
	_ = svc.DecodeStatus(&st)
	endpoint := map[string]bool{}
	for _, sub := range st.Subsets {
		for _, a := range slices.Concat(sub.Addresses, sub.NotReadyAddresses) {
			endpoint[a.VM] = true
		}
	}
	var clients []*api.Object
	for _, v := range vms {
		var spec api.VMSpec
		var vst api.VMStatus
		_ = v.DecodeSpec(&spec)
		_ = v.DecodeStatus(&vst)
		if spec.PowerState != api.PoweredOn || spec.Removing || vst.PowerState != api.PoweredOn || vst.IP == "" ||
			vst.Host != spec.Host || !connected[vst.Host] || slices.Contains(drillVMs, v.Path) {
			continue
		}
		clients = append(clients, v)
	}
	if len(clients) == 0 {
		return nil, fmt.Sprintf("no VM runs on a connected host other than %s to send them from (power one on there)", strings.Join(drillHosts, ","))
	}
	slices.SortStableFunc(clients, func(a, b *api.Object) int {
		if endpoint[a.Path] != endpoint[b.Path] {
			if endpoint[b.Path] {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
	v := clients[0]
	var vst api.VMStatus
	_ = v.DecodeStatus(&vst)
	return &clusterIPStream{drillStreamTarget: drillStreamTarget{Service: svc.Path, URL: url, VM: v.Path, Host: api.Base(vst.Host)}, uid: v.UID}, ""
}
