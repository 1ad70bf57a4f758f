package agent

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/sim"
	"github.com/podsphere/podsphere/lb"
)

// recorder is an LBConsumer keeping what it was handed; it fails while
// failing is set, and scribbles on every state to prove it is its own.
type recorder struct {
	name     string
	mu       sync.Mutex
	states   []*lb.State
	failing  int
	scribble bool
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) ApplyLB(_ context.Context, st *lb.State) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, st)
	if r.failing > 0 {
		r.failing--
		return errors.New("rules would not load")
	}
	for p, s := range st.Services {
		if !r.scribble {
			break
		}
		s.Spec.Ports = append(s.Spec.Ports[:0], api.ServicePort{Port: 1})
		if len(s.Status.Subsets) > 0 && len(s.Status.Subsets[0].Addresses) > 0 {
			s.Status.Subsets[0].Addresses[0].IP = "scribbled"
		}
		st.Services[p] = s
	}
	return nil
}

func (r *recorder) last() *lb.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.states) == 0 {
		return nil
	}
	return r.states[len(r.states)-1]
}

func (r *recorder) calls() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.states) }

// serviceNames is what a consumer saw: the Services it carries, sorted.
func serviceNames(st *lb.State) []string {
	if st == nil {
		return nil
	}
	var out []string
	for p := range st.Services {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func svcObj(name, clusterPath, ip string, endpoints ...string) *api.Object {
	o := api.New(api.KindService, "/dc1/service/"+name, api.ServiceSpec{
		Cluster: clusterPath, Type: api.ServiceClusterIP, ClusterIP: ip,
		Selector: map[string]string{"app": name}, Ports: []api.ServicePort{{Port: 80}},
	})
	st := api.ServiceStatus{}
	if len(endpoints) > 0 {
		sub := api.EndpointSubset{Ports: []api.EndpointPort{{Port: 8080, Protocol: "TCP"}}}
		for _, e := range endpoints {
			sub.Addresses = append(sub.Addresses, api.EndpointAddress{IP: e, VM: "/dc1/vm/" + e, Host: me})
		}
		st.Subsets = []api.EndpointSubset{sub}
	}
	o.SetStatus(st)
	return o
}

func (f *fakeVCenter) remove(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objs[path]
	delete(f.objs, path)
	f.rev++
	f.log = append(f.log, api.WatchEvent{Type: api.Deleted, Revision: f.rev, Object: o})
	close(f.change)
	f.change = make(chan struct{})
}

func TestLBConsumersGetTheClustersServices(t *testing.T) {
	f, srv := newFakeVCenter(t)
	cl := api.New(api.KindCluster, cluster, api.ClusterSpec{ServiceCIDR: "10.96.0.0/16", ClusterDomain: "corp.local"})
	cl.SetStatus(api.ClusterStatus{Ingress: api.LoadBalancerIngress{IP: "10.99.0.200", Host: me}})
	f.put(cl)
	h := api.New(api.KindHost, me, api.HostSpec{})
	h.SetStatus(api.HostStatus{State: api.HostConnected, Address: "10.99.0.11:7946", PodSubnet: "10.244.1.0/24"})
	f.put(h)
	other := api.New(api.KindHost, "/dc1/host/c2/esx-09", api.HostSpec{})
	f.put(other)
	f.put(svcObj("web", "", "10.96.0.10", "10.244.1.5", "10.244.1.6")) // "" = the only cluster
	f.put(svcObj("db", cluster, "10.96.0.11"))
	f.put(svcObj("elsewhere", "/dc1/host/c2", "10.97.0.1"))
	f.put(svcObj("pending", cluster, "")) // no cluster IP allocated yet

	rules, dns := &recorder{name: "rules", failing: 1, scribble: true}, &recorder{name: "dns"}
	startAgentWith(t, srv.URL, sim.New(1000, 1024, "10.250.0"), token, func(c *Config) {
		c.LB = []LBConsumer{rules, dns}
	})

	want := []string{"/dc1/service/db", "/dc1/service/web"}
	eventually(t, "both consumers get the cluster's Services", func() bool {
		return slices.Equal(serviceNames(dns.last()), want) && slices.Equal(serviceNames(rules.last()), want)
	})
	// The first ApplyLB of rules failed: it was handed the state again.
	eventually(t, "the failed consumer is retried", func() bool { return rules.calls() >= 2 })

	st := dns.last()
	if st.Self != me || st.Cluster != cluster || st.Spec.ClusterDomain != "corp.local" {
		t.Errorf("state is for %s in %s (domain %q), want %s in %s (corp.local)", st.Self, st.Cluster, st.Spec.ClusterDomain, me, cluster)
	}
	if st.Ingress.IP != "10.99.0.200" || st.Ingress.Host != me {
		t.Errorf("the cluster's Ingress address = %+v, want 10.99.0.200 held by %s", st.Ingress, me)
	}
	if got := st.Hosts[me]; got.Address != "10.99.0.11" || got.PodSubnet != "10.244.1.0/24" || got.State != api.HostConnected {
		t.Errorf("self host = %+v, want address 10.99.0.11, pod subnet 10.244.1.0/24, connected", got)
	}
	if _, ok := st.Hosts["/dc1/host/c2/esx-09"]; ok {
		t.Error("a host of another cluster is in the state")
	}

	// Endpoints change: the consumers see the new set. rules scribbled on
	// its copies; dns must still read the real addresses.
	f.put(svcObj("web", "", "10.96.0.10", "10.244.1.7"))
	eventually(t, "the endpoint change reaches the consumers", func() bool {
		s := dns.last().Services["/dc1/service/web"]
		return len(s.Status.Subsets) == 1 && len(s.Status.Subsets[0].Addresses) == 1 &&
			s.Status.Subsets[0].Addresses[0].IP == "10.244.1.7" && len(s.Spec.Ports) == 1 && s.Spec.Ports[0].Port == 80
	})

	// An allocated cluster IP brings the pending Service in; a delete takes db out.
	f.put(svcObj("pending", cluster, "10.96.0.12"))
	f.remove("/dc1/service/db")
	want = []string{"/dc1/service/pending", "/dc1/service/web"}
	eventually(t, "allocation and delete reach the consumers", func() bool {
		return slices.Equal(serviceNames(dns.last()), want)
	})
}
