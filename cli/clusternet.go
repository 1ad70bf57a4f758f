package cli

import (
	"github.com/spf13/pflag"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/lb"
)

// serviceNetworkFlags are a cluster's service network on cluster.create
// and cluster.change. govc has no such flags (vSphere's networking is
// NSX's), so they are podsphere's own, named after the spec fields.
type serviceNetworkFlags struct {
	serviceCIDR, nodePorts, domain string
	lbAddresses                    []string
}

var serviceNetworkFlagNames = []string{"service-cidr", "node-port-range", "lb-addresses", "cluster-domain"}

func (n *serviceNetworkFlags) register(f *pflag.FlagSet) {
	f.StringVar(&n.serviceCIDR, "service-cidr", "", "block Services' cluster IPs come from (default: the first free /16 from "+lb.DefaultServiceCIDR+" on)")
	f.StringVar(&n.nodePorts, "node-port-range", "", "FIRST-LAST: ports NodePort Services get on every host (default "+lb.DefaultNodePortRange+"; ports below it may collide with the hosts' own services)")
	f.StringSliceVar(&n.lbAddresses, "lb-addresses", nil, "addresses on the hosts' network for LoadBalancer Services and the Ingress, CIDRs or FIRST-LAST ranges, comma separated (\"\" clears)")
	f.StringVar(&n.domain, "cluster-domain", "", "DNS suffix of Service names (default "+lb.DefaultClusterDomain+")")
}

// apply sets the fields of the flags given.
func (n *serviceNetworkFlags) apply(f *pflag.FlagSet, s *api.ClusterSpec) {
	if f.Changed("service-cidr") {
		s.ServiceCIDR = n.serviceCIDR
	}
	if f.Changed("node-port-range") {
		s.NodePortRange = n.nodePorts
	}
	if f.Changed("lb-addresses") {
		s.LoadBalancerAddresses = nil
		for _, a := range n.lbAddresses {
			if a != "" {
				s.LoadBalancerAddresses = append(s.LoadBalancerAddresses, a)
			}
		}
	}
	if f.Changed("cluster-domain") {
		s.ClusterDomain = n.domain
	}
}

// validate checks the shape of what the flags give, naming the flag.
func (n *serviceNetworkFlags) validate(f *pflag.FlagSet) error {
	var s api.ClusterSpec
	n.apply(f, &s)
	if err := lb.CheckServiceNetwork(s); err != nil {
		return usagef("%s", api.Message(err))
	}
	return nil
}
