package api

// KindService is a load-balanced name for the VMs its selector picks, at
// /DC/service/[NS/]NAME: what a vSphere shop buys an NSX or F5 virtual
// server for. Its spec has Kubernetes' v1 Service fields, so manifests from
// tutorials apply unchanged; its status holds its endpoints (the pool
// members), written by vcenter's endpoints controller.
const KindService = "Service"

// Service types (spec.type), as Kubernetes names them.
const (
	ServiceClusterIP    = "ClusterIP"
	ServiceNodePort     = "NodePort"
	ServiceLoadBalancer = "LoadBalancer"
	ServiceExternalName = "ExternalName"
)

// ServiceTypes lists the types in the order messages name them.
var ServiceTypes = []string{ServiceClusterIP, ServiceNodePort, ServiceLoadBalancer, ServiceExternalName}

// ClusterIPNone is spec.clusterIP of a headless Service: no virtual
// address, clients get the endpoints' own addresses.
const ClusterIPNone = "None"

// ServiceSpec is Kubernetes' ServiceSpec, the fields users paste, plus the
// cluster it lives in. ClusterIP empty means "allocate one" from the
// cluster's service range; NodePort 0 means allocate one from the
// cluster's node port range.
type ServiceSpec struct {
	// Cluster is the inventory path of the cluster whose hosts carry the
	// Service and whose ranges its addresses come from (podsphere's, not
	// Kubernetes': one datacenter may hold several clusters). psc apply
	// sets it from PSC_CLUSTER; "" is the datacenter's only cluster.
	Cluster string `json:"cluster,omitempty"`
	Type    string `json:"type"`
	// Selector picks the VMs of the Service's namespace by their labels
	// (equality only, as Kubernetes' Service selector). A Service without
	// one has no endpoints kept by vcenter.
	Selector map[string]string `json:"selector,omitempty"`
	Ports    []ServicePort     `json:"ports,omitempty"`
	// ClusterIP is the virtual address, "None" for a headless Service.
	ClusterIP string `json:"clusterIP,omitempty"`
	// SessionAffinity None (default) or ClientIP: a client's connections
	// keep going to the same endpoint for TimeoutSeconds.
	SessionAffinity       string                 `json:"sessionAffinity,omitempty"`
	SessionAffinityConfig *SessionAffinityConfig `json:"sessionAffinityConfig,omitempty"`
	// ExternalTrafficPolicy of NodePort and LoadBalancer Services: Cluster
	// (default: any endpoint, the client's address replaced by the host's)
	// or Local (only the receiving host's endpoints; the client's address kept).
	ExternalTrafficPolicy string `json:"externalTrafficPolicy,omitempty"`
	// ExternalName is the DNS name an ExternalName Service aliases.
	ExternalName string `json:"externalName,omitempty"`
	// HealthCheckNodePort is the port, on every host, that answers 200
	// only where the Service has a local endpoint (externalTrafficPolicy
	// Local of a LoadBalancer Service; allocated from the node port range
	// when 0).
	HealthCheckNodePort int `json:"healthCheckNodePort,omitempty"`
	// LoadBalancerIP asks for a particular address of the cluster's
	// LoadBalancerAddresses ("" = the next free one).
	LoadBalancerIP string `json:"loadBalancerIP,omitempty"`
}

// SessionAffinityConfig is Kubernetes' sessionAffinityConfig.
type SessionAffinityConfig struct {
	ClientIP *ClientIPConfig `json:"clientIP,omitempty"`
}

// ClientIPConfig holds how long ClientIP affinity lasts.
type ClientIPConfig struct {
	TimeoutSeconds *int `json:"timeoutSeconds,omitempty"`
}

// DefaultSessionAffinityTimeout is Kubernetes' default, 3 hours.
const DefaultSessionAffinityTimeout = 10800

// ServicePort is one port of a Service.
type ServicePort struct {
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol,omitempty"` // TCP (default), UDP
	Port     int    `json:"port"`
	// TargetPort is the VMs' port: a number, or the name of a container
	// port (resolved per VM, so members may listen on different numbers).
	// Zero means Port.
	TargetPort IntOrString `json:"targetPort,omitzero"`
	NodePort   int         `json:"nodePort,omitempty"`
}

// IsZero reports an unset target port (IntOrString is in workloads.go).
func (v IntOrString) IsZero() bool { return !v.IsStr && v.IntVal == 0 }

// ServiceStatus is what vcenter keeps of a Service. The endpoints live
// here, rather than in an Endpoints object of their own as in Kubernetes:
// they are the Service's observed state (written by vcenter only, like
// every status), one read shows a Service with its pool members, and
// deleting the Service cannot leave them behind. Their shape is
// Kubernetes' Endpoints subsets, so `psc svc.info -json` reads like
// `kubectl get endpoints -o json`.
type ServiceStatus struct {
	// ObservedGeneration is the spec generation the endpoints were computed for.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Subsets group the endpoints by their resolved ports.
	Subsets []EndpointSubset `json:"subsets,omitempty"`
	// Ready and Total count the endpoints' addresses (ready and ready +
	// not ready), for tables.
	Ready int `json:"ready"`
	Total int `json:"total"`
	// LoadBalancer is where a LoadBalancer Service is reached from outside.
	LoadBalancer LoadBalancerStatus `json:"loadBalancer,omitzero"`
}

// LoadBalancerStatus is Kubernetes' status.loadBalancer.
type LoadBalancerStatus struct {
	Ingress []LoadBalancerIngress `json:"ingress,omitempty"`
}

// LoadBalancerIngress is one outside address. Host is podsphere's: the
// host that answers for the address on the hosts' network (ARP); another
// takes it over when that host fails or enters maintenance.
type LoadBalancerIngress struct {
	IP    string       `json:"ip,omitempty"`
	Host  string       `json:"host,omitempty"`
	Ports []PortStatus `json:"ports,omitempty"`
	// Shared is podsphere's too: the address is the cluster's Ingress
	// address (asked for with spec.loadBalancerIP), which the Service
	// shares with the Ingress proxy (80 and 443/TCP) and other Services,
	// each on its own ports; its holder is the Ingress address's.
	Shared bool `json:"shared,omitempty"`
}

// PortStatus is Kubernetes' status.loadBalancer.ingress[].ports[]: listed
// when the address is reached on a port other than the usual one.
type PortStatus struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
}

// EndpointSubset is a set of addresses sharing the same ports.
type EndpointSubset struct {
	Addresses         []EndpointAddress `json:"addresses,omitempty"`
	NotReadyAddresses []EndpointAddress `json:"notReadyAddresses,omitempty"`
	Ports             []EndpointPort    `json:"ports,omitempty"`
}

// EndpointAddress is one member VM.
type EndpointAddress struct {
	IP   string `json:"ip"`
	VM   string `json:"vm"`   // inventory path
	Host string `json:"host"` // inventory path of the host running it
}

// EndpointPort is a Service port resolved for these addresses.
type EndpointPort struct {
	Name     string `json:"name,omitempty"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
}
