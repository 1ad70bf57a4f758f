package manifest

import (
	"slices"
	"strings"

	"github.com/podsphere/podsphere/api"
)

// Kubernetes' v1 Service lands at /DC/service/[NS/]NAME with its spec as
// users paste it (api.ServiceSpec has Kubernetes' field names). The fields
// `kubectl get -o yaml` adds for dual-stack and internal traffic are
// accepted when they say what podsphere does anyway (one IPv4 address,
// internal traffic to every endpoint) and refused otherwise.
type kubeServiceSpec struct {
	api.ServiceSpec
	ClusterIPs            []string `json:"clusterIPs"`
	IPFamilies            []string `json:"ipFamilies"`
	IPFamilyPolicy        string   `json:"ipFamilyPolicy"`
	InternalTrafficPolicy string   `json:"internalTrafficPolicy"`
	// AllocateLoadBalancerNodePorts is true in every exported LoadBalancer
	// Service; podsphere's balancer is built in and needs no node ports of
	// its own, so the field changes nothing.
	AllocateLoadBalancerNodePorts *bool `json:"allocateLoadBalancerNodePorts"`
}

// kubeEndpointsKinds are read-only here: vcenter keeps endpoints from the
// Service's selector.
var kubeEndpointsKinds = map[string]string{"Endpoints": "v1", "EndpointSlice": "discovery.k8s.io/v1"}

func (d *document) service() ([]Item, *fieldError) {
	var doc kubeDoc[kubeServiceSpec]
	w, err := decodeWorkload(d, api.KindService, &doc)
	if err != nil {
		return nil, err
	}
	ks := doc.Spec
	s := ks.ServiceSpec
	if len(ks.ClusterIPs) > 0 {
		if len(ks.ClusterIPs) > 1 {
			return nil, fieldErr("spec.clusterIPs", "podsphere gives a Service one address; %d were given", len(ks.ClusterIPs))
		}
		if s.ClusterIP != "" && s.ClusterIP != ks.ClusterIPs[0] {
			return nil, fieldErr("spec.clusterIPs", "%q differs from spec.clusterIP %q", ks.ClusterIPs[0], s.ClusterIP)
		}
		s.ClusterIP = ks.ClusterIPs[0]
	}
	if len(ks.IPFamilies) > 0 && !slices.Equal(ks.IPFamilies, []string{"IPv4"}) {
		return nil, fieldErr("spec.ipFamilies", "%v: podsphere's Services are IPv4 only", ks.IPFamilies)
	}
	if ks.IPFamilyPolicy != "" && ks.IPFamilyPolicy != "SingleStack" {
		return nil, fieldErr("spec.ipFamilyPolicy", "%q: podsphere's Services are SingleStack (IPv4)", ks.IPFamilyPolicy)
	}
	if ks.InternalTrafficPolicy != "" && ks.InternalTrafficPolicy != "Cluster" {
		return nil, fieldErr("spec.internalTrafficPolicy", "%q: podsphere sends traffic from inside the cluster to every endpoint (Cluster)", ks.InternalTrafficPolicy)
	}
	// The same checks as vcenter's, so a bad Service fails before anything
	// of its file is applied; vcenter checks the selector's labels.
	if err := s.Normalize(); err != nil {
		field, msg, _ := strings.Cut(apiMessage(err), ": ")
		return nil, &fieldError{field: field, msg: msg}
	}
	// The cluster whose ranges the Service's addresses come from: the
	// context's (PSC_CLUSTER); without one vcenter takes the datacenter's
	// only cluster.
	if s.Cluster == "" && d.ctx.Cluster != "" && d.ctx.Datacenter != "" && api.ValidName(d.ctx.Cluster) == nil {
		s.Cluster = d.ctx.clusterPath()
	}
	return []Item{w.item(api.KindService, s)}, nil
}
