package lb

import (
	"github.com/podsphere/podsphere/api"
)

// State is what a host needs to carry its cluster's load balancing: the
// Services (with their endpoints and outside addresses), the cluster's
// service network and its hosts. The host agent keeps one from its watch
// of vcenter and hands each change to the parts that act on it (service
// rules, DNS, the Ingress proxy, the address announcer); the pure
// functions of this package turn it into what each of them programs.
type State struct {
	// Cluster is the cluster's inventory path, Spec its configuration
	// (serviceCIDR, nodePortRange, loadBalancerAddresses, clusterDomain).
	Cluster string
	Spec    api.ClusterSpec
	// Ingress is the load balancer address vcenter keeps for the
	// cluster's Ingress proxy and the host answering for it (the
	// cluster's status.ingress; zero without one).
	Ingress api.LoadBalancerIngress
	// Self is the host this State is for (inventory path).
	Self string
	// Hosts are the cluster's hosts, by inventory path.
	Hosts map[string]Host
	// Services are the Services carried by the cluster's hosts, by path.
	Services map[string]Service
	// Ingresses are the cluster's Ingresses, by path (Routes turns them
	// and Services into what the Ingress proxy serves).
	Ingresses map[string]Ingress
}

// Host is what load balancing needs of one host.
type Host struct {
	Path    string
	Address string // its address on the hosts' network (NodePort, LoadBalancer)
	State   string // api.Host* connection state, or "failed" / "isolated" (HA)
	// PodSubnet is its VMs' /24: traffic from it is the host's own VMs.
	PodSubnet string
}

// Service is one Service as a host sees it.
type Service struct {
	Path      string
	Namespace string // "" for the default namespace
	Name      string
	Spec      api.ServiceSpec
	Status    api.ServiceStatus
	// Version is the object's resourceVersion (0 when unknown): two
	// Services of one path and version are the same, so the rule
	// generators skip comparing them field by field, which at 10,000
	// Services was half of one change's CPU.
	Version uint64
}

// ServiceOf decodes a Service object; a Service whose spec does not decode
// is nil (vcenter validated it, so that is a newer vcenter's shape).
func ServiceOf(o *api.Object) *Service {
	s := &Service{Path: o.Path, Version: o.ResourceVersion}
	if err := o.DecodeSpec(&s.Spec); err != nil {
		return nil
	}
	_ = o.DecodeStatus(&s.Status)
	if ref, err := api.ParsePath(o.Path); err == nil {
		s.Namespace, s.Name = ref.Namespace, ref.Name
	}
	return s
}
