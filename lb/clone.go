package lb

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/podsphere/podsphere/api"
)

// Clone is a deep copy of st: the host agent hands each consumer (service
// rules, DNS, the Ingress proxy, the address announcer) its own, so none
// can change what another reads.
func (st *State) Clone() *State {
	if st == nil {
		return nil
	}
	out := &State{Cluster: st.Cluster, Self: st.Self, Spec: cloneClusterSpec(st.Spec), Ingress: st.Ingress}
	out.Ingress.Ports = slices.Clone(st.Ingress.Ports)
	out.Hosts = maps.Clone(st.Hosts) // Host holds only strings
	if st.Hosts == nil {
		out.Hosts = map[string]Host{}
	}
	out.Services = make(map[string]Service, len(st.Services))
	for p, s := range st.Services {
		out.Services[p] = s.Clone()
	}
	if st.Ingresses != nil {
		out.Ingresses = make(map[string]Ingress, len(st.Ingresses))
		for p, in := range st.Ingresses {
			out.Ingresses[p] = in.Clone()
		}
	}
	return out
}

// Clone is a deep copy of in (a JSON round trip of its spec and status:
// they are nested pointers and lists all the way down).
func (in Ingress) Clone() Ingress {
	var sp api.IngressSpec
	if b, err := json.Marshal(in.Spec); err == nil && json.Unmarshal(b, &sp) == nil {
		in.Spec = sp
	}
	var st api.IngressStatus
	if b, err := json.Marshal(in.Status); err == nil && json.Unmarshal(b, &st) == nil {
		in.Status = st
	}
	return in
}

// Clone is a deep copy of s.
func (s Service) Clone() Service {
	sp := s.Spec
	sp.Selector = maps.Clone(sp.Selector)
	sp.Ports = slices.Clone(sp.Ports)
	if c := sp.SessionAffinityConfig; c != nil {
		cc := *c
		if c.ClientIP != nil {
			ip := *c.ClientIP
			if ip.TimeoutSeconds != nil {
				t := *ip.TimeoutSeconds
				ip.TimeoutSeconds = &t
			}
			cc.ClientIP = &ip
		}
		sp.SessionAffinityConfig = &cc
	}
	s.Spec = sp
	st := s.Status
	st.Subsets = slices.Clone(st.Subsets)
	for i, ss := range st.Subsets {
		st.Subsets[i] = api.EndpointSubset{
			Addresses:         slices.Clone(ss.Addresses),
			NotReadyAddresses: slices.Clone(ss.NotReadyAddresses),
			Ports:             slices.Clone(ss.Ports),
		}
	}
	st.LoadBalancer.Ingress = slices.Clone(st.LoadBalancer.Ingress)
	for i, in := range st.LoadBalancer.Ingress {
		st.LoadBalancer.Ingress[i].Ports = slices.Clone(in.Ports)
	}
	s.Status = st
	return s
}

// cloneClusterSpec deep-copies the cluster's configuration. It is one
// object with nested rules and groups, copied once per change: a JSON
// round trip keeps this right as ClusterSpec grows fields.
func cloneClusterSpec(cs api.ClusterSpec) api.ClusterSpec {
	b, err := json.Marshal(cs)
	if err != nil {
		return cs
	}
	var out api.ClusterSpec
	if json.Unmarshal(b, &out) != nil {
		return cs
	}
	return out
}
