package svcproxy

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/lb"
)

// health answers the health-check node ports of externalTrafficPolicy
// Local LoadBalancer Services, as kube-proxy does: 200 on a host with a
// ready local endpoint, 503 elsewhere, so whatever balances in front of
// the hosts (the address announcer, an F5) sends traffic only where it is
// kept. The body is Kubernetes'.
type health struct {
	netns, bind string
	servers     map[int]*hcServer // by port
}

type hcServer struct {
	srv  *http.Server
	info atomic.Pointer[hcInfo]
}

type hcInfo struct {
	ns, name string
	local    int
}

// hcBody is kube-proxy's health-check answer.
type hcBody struct {
	Service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
	LocalEndpoints      int  `json:"localEndpoints"`
	ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
}

func (s *hcServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	info := s.info.Load()
	var b hcBody
	b.Service.Namespace, b.Service.Name = cmp.Or(info.ns, "default"), info.name
	b.LocalEndpoints, b.ServiceProxyHealthy = info.local, true
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if info.local == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(b)
}

// healthChecks are the ports st wants answered, with what to answer.
func healthChecks(st *lb.State) map[int]hcInfo {
	out := map[int]hcInfo{}
	for _, s := range st.Services {
		sp := s.Spec
		if sp.Type != api.ServiceLoadBalancer || sp.ExternalTrafficPolicy != "Local" || sp.HealthCheckNodePort <= 0 {
			continue
		}
		local := map[string]bool{}
		for _, sub := range s.Status.Subsets {
			for _, a := range sub.Addresses {
				if a.Host == st.Self {
					local[a.IP] = true
				}
			}
		}
		out[sp.HealthCheckNodePort] = hcInfo{ns: s.Namespace, name: s.Name, local: len(local)}
	}
	return out
}

// sync opens the ports st wants, closes the others, and updates answers.
// A port that cannot be opened (taken) is reported and retried next time.
func (h *health) sync(st *lb.State) error {
	want := healthChecks(st)
	for port, s := range h.servers {
		if _, ok := want[port]; !ok {
			_ = s.srv.Close()
			delete(h.servers, port)
		}
	}
	var errs []error
	for port, info := range want {
		s := h.servers[port]
		if s == nil {
			var ln net.Listener
			addr := net.JoinHostPort(h.bind, strconv.Itoa(port))
			// A socket stays in the namespace it was made in.
			err := network.InNetNS(h.netns, func() (err error) {
				ln, err = net.Listen("tcp", addr)
				return err
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("health check node port of %s: %w", info.name, err))
				continue
			}
			s = &hcServer{}
			s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
			s.info.Store(&info)
			go func() { _ = s.srv.Serve(ln) }()
			h.servers[port] = s
		}
		s.info.Store(&info)
	}
	return errors.Join(errs...)
}

func (h *health) close() {
	for port, s := range h.servers {
		_ = s.srv.Close()
		delete(h.servers, port)
	}
}
