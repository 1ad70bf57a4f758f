package cli

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/internal/loadgen"
)

// DefaultDrillProber is ha.drill's request stream for Main; cmd/psc sets
// it (in a lab: requests sent from inside the lab's network).
var DefaultDrillProber func(env *Env) func(ctx context.Context, cluster string, vms []string) (Prober, error)

// Dialer opens a connection (net.Dialer.DialContext's shape).
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// ServiceProber is an Env.DrillProber streaming HTTP requests
// (internal/loadgen, 20 a second, 1 s timeout each) through the Service
// that selects the drill's VMs, from outside the hosts: its LoadBalancer
// address, else its NodePort on a host the drill leaves alone. dial opens
// the connections from where the client stands (nil: this machine), from
// says where that is, for the report.
func ServiceProber(env *Env, from string, dial Dialer) func(ctx context.Context, cluster string, vms []string) (Prober, error) {
	return func(ctx context.Context, cluster string, vms []string) (Prober, error) {
		c, err := env.Client()
		if err != nil {
			return nil, err
		}
		dc := strings.Split(strings.TrimPrefix(cluster, "/"), "/")[0]
		svcs, err := c.List(ctx, client.ListOptions{Kind: api.KindService, Prefix: "/" + dc + "/service"})
		if err != nil {
			return nil, err
		}
		hosts, err := c.List(ctx, client.ListOptions{Kind: api.KindHost, Prefix: cluster})
		if err != nil {
			return nil, err
		}
		t, why := drillTarget(cluster, svcs.Items, hosts.Items, vms)
		if t == nil {
			if why != "" {
				return nil, &NoStream{Why: why}
			}
			return nil, nil
		}
		return &streamProber{target: *t, from: from, dial: dial}, nil
	}
}

// NoStream is a DrillProber's answer when a Service selects the drill's
// VMs but no stream can be sent to it: the report keeps Why.
type NoStream struct{ Why string }

func (e *NoStream) Error() string { return e.Why }

// drillStreamTarget is where a drill's requests go.
type drillStreamTarget struct {
	Service string // inventory path
	URL     string
	// VM and Host name the client VM a ClusterIP stream is sent from.
	VM, Host string
}

// drillServices are the Services of cluster selecting any of the drill's
// VMs (by path), sorted, and the hosts those VMs are endpoints on.
func drillServices(cluster string, svcs []*api.Object, vms []string) ([]*api.Object, map[string]bool) {
	failing := map[string]bool{}
	var candidates []*api.Object
	for _, o := range svcs {
		var spec api.ServiceSpec
		var st api.ServiceStatus
		if o.DecodeSpec(&spec) != nil || spec.Cluster != "" && spec.Cluster != cluster {
			continue
		}
		_ = o.DecodeStatus(&st)
		selects := false
		for _, sub := range st.Subsets {
			for _, a := range slices.Concat(sub.Addresses, sub.NotReadyAddresses) {
				if slices.Contains(vms, a.VM) {
					selects = true
					failing[a.Host] = true
				}
			}
		}
		if selects {
			candidates = append(candidates, o)
		}
	}
	slices.SortFunc(candidates, func(a, b *api.Object) int { return strings.Compare(a.Path, b.Path) })
	return candidates, failing
}

// drillTarget picks the Service selecting the drill's VMs and the address
// an outside client reaches it on: the LoadBalancer address (it moves
// when its host fails, which is what the drill measures), else a NodePort
// on a connected host that runs none of the drill's VMs. nil with why
// when there is none a client outside could use.
func drillTarget(cluster string, svcs, hosts []*api.Object, vms []string) (*drillStreamTarget, string) {
	candidates, failing := drillServices(cluster, svcs, vms)
	if len(candidates) == 0 {
		return nil, ""
	}
	for _, o := range candidates {
		var spec api.ServiceSpec
		var st api.ServiceStatus
		_ = o.DecodeSpec(&spec)
		_ = o.DecodeStatus(&st)
		port, ok := firstTCPPort(spec)
		if !ok {
			continue
		}
		for _, in := range st.LoadBalancer.Ingress {
			if _, err := netip.ParseAddr(in.IP); err == nil {
				return &drillStreamTarget{Service: o.Path, URL: "http://" + net.JoinHostPort(in.IP, strconv.Itoa(port.Port)) + "/"}, ""
			}
		}
	}
	for _, o := range candidates {
		var spec api.ServiceSpec
		_ = o.DecodeSpec(&spec)
		port, ok := firstTCPPort(spec)
		if !ok || port.NodePort == 0 {
			continue
		}
		for _, h := range hosts {
			var st api.HostStatus
			_ = h.DecodeStatus(&st)
			addr := hostIP(st.Address)
			if st.State != api.HostConnected || failing[h.Path] || addr == "" {
				continue
			}
			return &drillStreamTarget{Service: o.Path, URL: "http://" + net.JoinHostPort(addr, strconv.Itoa(port.NodePort)) + "/"}, ""
		}
	}
	names := make([]string, len(candidates))
	for i, o := range candidates {
		names[i] = o.Path
	}
	return nil, fmt.Sprintf("%s select the drill's VMs but have neither a LoadBalancer address nor a NodePort on a host the drill leaves alone, for a TCP port",
		strings.Join(names, ", "))
}

func firstTCPPort(spec api.ServiceSpec) (api.ServicePort, bool) {
	for _, p := range spec.Ports {
		if p.Protocol == "" || strings.EqualFold(p.Protocol, "TCP") {
			return p, true
		}
	}
	return api.ServicePort{}, false
}

// hostIP is the IP of a host's address (host:port or a bare IP).
func hostIP(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	if _, err := netip.ParseAddr(addr); err != nil {
		return ""
	}
	return addr
}

// streamProber is a Prober over internal/loadgen.
type streamProber struct {
	target drillStreamTarget
	from   string
	dial   Dialer
	stream *loadgen.Stream
}

func (p *streamProber) Start(ctx context.Context) error {
	s, err := loadgen.Start(context.WithoutCancel(ctx), loadgen.Config{URL: p.target.URL, Dial: p.dial})
	if err != nil {
		return err
	}
	p.stream = s
	return nil
}

func (p *streamProber) Stop() api.DrillRequests {
	r := api.DrillRequests{Service: p.target.Service, Target: p.target.URL, From: p.from,
		IntervalMs: int(loadgen.DefaultInterval / time.Millisecond), TimeoutMs: int(loadgen.DefaultTimeout / time.Millisecond),
		FromVM: p.target.VM, FromHost: p.target.Host}
	if p.stream == nil {
		return r
	}
	return drillRequestsOf(r, p.stream.Stop())
}

// drillRequestsOf fills the report's figures from what the stream measured.
func drillRequestsOf(r api.DrillRequests, s loadgen.Summary) api.DrillRequests {
	r.Sent, r.Failed, r.LastError = s.Sent, s.Failed, s.LastError
	r.LongestGapMs, r.GapFrom, r.GapTo = s.LongestGap.Milliseconds(), s.GapFrom, s.GapTo
	for _, o := range s.Outages {
		r.Outages = append(r.Outages, api.DrillOutage{From: o.From, To: o.To, Failed: o.Failed})
	}
	return r
}
