package lb

import (
	"fmt"
	"testing"

	"github.com/podsphere/podsphere/api"
)

func lbService(path string, ingress ...api.LoadBalancerIngress) Service {
	return Service{Path: path, Spec: api.ServiceSpec{Type: api.ServiceLoadBalancer},
		Status: api.ServiceStatus{LoadBalancer: api.LoadBalancerStatus{Ingress: ingress}}}
}

func TestAnnounced(t *testing.T) {
	const a, b = "/dc/host/c/esx-01", "/dc/host/c/esx-02"
	cases := []struct {
		name     string
		self     string
		services []Service
		ingress  api.LoadBalancerIngress
		want     string
	}{
		{"only the addresses held by this host", a, []Service{
			lbService("/dc/service/web", api.LoadBalancerIngress{IP: "10.99.0.200", Host: a}),
			lbService("/dc/service/db", api.LoadBalancerIngress{IP: "10.99.0.201", Host: b}),
		}, api.LoadBalancerIngress{}, "[10.99.0.200]"},
		{"sorted, one entry for an address two Services share", a, []Service{
			lbService("/dc/service/web", api.LoadBalancerIngress{IP: "10.99.0.210", Host: a}),
			lbService("/dc/service/web-udp", api.LoadBalancerIngress{IP: "10.99.0.210", Host: a}),
			lbService("/dc/service/api", api.LoadBalancerIngress{IP: "10.99.0.9", Host: a}),
		}, api.LoadBalancerIngress{}, "[10.99.0.9 10.99.0.210]"},
		{"an address not yet given to a host is answered by none", a, []Service{
			lbService("/dc/service/web", api.LoadBalancerIngress{IP: "10.99.0.200"}),
		}, api.LoadBalancerIngress{}, "[]"},
		{"IPv6 and unparsable addresses are not ARP's", a, []Service{
			lbService("/dc/service/web", api.LoadBalancerIngress{IP: "fd00::1", Host: a}, api.LoadBalancerIngress{IP: "nope", Host: a}),
		}, api.LoadBalancerIngress{}, "[]"},
		{"a host that does not know itself answers for nothing", "", []Service{
			lbService("/dc/service/web", api.LoadBalancerIngress{IP: "10.99.0.200", Host: ""}),
		}, api.LoadBalancerIngress{}, "[]"},
		{"the cluster's Ingress address, when held here", a, []Service{
			lbService("/dc/service/web", api.LoadBalancerIngress{IP: "10.99.0.201", Host: a}),
		}, api.LoadBalancerIngress{IP: "10.99.0.200", Host: a}, "[10.99.0.200 10.99.0.201]"},
		{"the cluster's Ingress address held by another host", a, nil, api.LoadBalancerIngress{IP: "10.99.0.200", Host: b}, "[]"},
		{"a Service sharing the Ingress address follows the Ingress's holder, not its own (a write behind)", a, []Service{
			lbService("/dc/service/dns", api.LoadBalancerIngress{IP: "10.99.0.200", Host: a, Shared: true}),
		}, api.LoadBalancerIngress{IP: "10.99.0.200", Host: b}, "[]"},
		{"the Ingress address held here, its sharer not updated yet", a, []Service{
			lbService("/dc/service/dns", api.LoadBalancerIngress{IP: "10.99.0.200", Host: b, Shared: true}),
		}, api.LoadBalancerIngress{IP: "10.99.0.200", Host: a}, "[10.99.0.200]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := &State{Self: c.self, Services: map[string]Service{}, Ingress: c.ingress}
			for _, s := range c.services {
				st.Services[s.Path] = s
			}
			if got := fmt.Sprint(Announced(st)); got != c.want {
				t.Fatalf("Announced = %s, want %s", got, c.want)
			}
		})
	}
	if got := Announced(nil); got != nil {
		t.Fatalf("Announced(nil) = %v", got)
	}
}
