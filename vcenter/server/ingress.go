package server

import (
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/podsphere/podsphere/api"
)

// handleIngressLog relays GET /api/v1/ingress/log?host=PATH&n=N to the
// host's agent: its Ingress proxy's access log (api.IngressLog). Each host
// keeps its own (the one that answered the request logged it), so psc
// asks each host of the cluster.
func (s *Server) handleIngressLog(w http.ResponseWriter, r *http.Request, _ string) error {
	v := r.URL.Query()
	path := v.Get("host")
	ref, err := api.ParsePath(path)
	if err != nil {
		return fmt.Errorf("?host=: %w", err)
	}
	if ref.Kind != api.KindHost {
		return fmt.Errorf("?host=%s is a %s, not a host: %w", path, ref.Kind, api.ErrInvalid)
	}
	h, err := s.store.Get(path)
	if err != nil {
		return err
	}
	var hs api.HostStatus
	_ = h.DecodeStatus(&hs)
	if hs.State != api.HostConnected && hs.State != api.HostMaintenance {
		return fmt.Errorf("host %s is %s: %w", api.Base(path), hs.State, api.ErrUnavailable)
	}
	if hs.AgentAddress == "" {
		return fmt.Errorf("host %s (%s runtime) serves no agent API, so no Ingress log: %w", api.Base(path), hs.Runtime, api.ErrUnavailable)
	}
	q := url.Values{}
	if n := v.Get("n"); n != "" {
		q.Set("n", n)
	}
	g := guestTarget{host: api.Base(path), agent: hs.AgentAddress}
	resp, err := s.relay(r.Context(), g, http.MethodGet, "/ingress/log", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, resp.Body)
	return nil
}
