package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/podsphere/podsphere/api"
)

// Guest operations (vm.logs, guest.run) are served by the VM's host agent;
// vcenter finds the host and relays, so admins need only vcenter's address.

// agentClient relays to host agents; no overall timeout, since log streams
// are long-lived: each relay is bounded by its request's context.
var agentClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}

// guestTarget is where a VM's guest operations go.
type guestTarget struct {
	vm, uid, host, agent string
}

// vmAgent finds the agent of the host running the VM at path, or says why
// there is none in words that name the VM and the host.
func (s *Server) vmAgent(path string) (guestTarget, error) {
	ref, err := api.ParsePath(path)
	if err != nil {
		return guestTarget{}, err
	}
	if ref.Kind != api.KindVirtualMachine {
		return guestTarget{}, fmt.Errorf("%s is a %s, not a VM: %w", path, ref.Kind, api.ErrInvalid)
	}
	vm, err := s.store.Get(path)
	if err != nil {
		return guestTarget{}, err
	}
	var spec api.VMSpec
	var st api.VMStatus
	_ = vm.DecodeSpec(&spec)
	_ = vm.DecodeStatus(&st)
	if spec.PowerState != api.PoweredOn {
		return guestTarget{}, fmt.Errorf("VM %s is %s: power it on first (psc vm.power -on %s): %w", vm.Name(), spec.PowerState, vm.Name(), api.ErrConflict)
	}
	host := st.Host
	if host == "" {
		host = spec.Host
	}
	if host == "" {
		return guestTarget{}, fmt.Errorf("VM %s is not placed on a host yet: %w", vm.Name(), api.ErrConflict)
	}
	h, err := s.store.Get(host)
	if err != nil {
		if isNotFound(err) {
			return guestTarget{}, fmt.Errorf("VM %s: its host %s is no longer in the inventory: %w", vm.Name(), host, api.ErrUnavailable)
		}
		return guestTarget{}, err
	}
	var hs api.HostStatus
	_ = h.DecodeStatus(&hs)
	if hs.State != api.HostConnected && hs.State != api.HostMaintenance {
		return guestTarget{}, fmt.Errorf("VM %s: its host %s is %s: %w", vm.Name(), api.Base(host), hs.State, api.ErrUnavailable)
	}
	if hs.AgentAddress == "" {
		return guestTarget{}, fmt.Errorf("VM %s: its host %s (%s runtime) serves no guest operations: %w", vm.Name(), api.Base(host), hs.Runtime, api.ErrUnavailable)
	}
	return guestTarget{vm: vm.Name(), uid: vm.UID, host: api.Base(host), agent: hs.AgentAddress}, nil
}

// relay sends one request to the target's agent and returns its answer,
// or an error (naming VM and host) for anything but 2xx.
func (s *Server) relay(ctx context.Context, g guestTarget, method, path string, q url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := "http://" + g.agent + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%s on host %s: %v: %w", g.who(), g.host, err, api.ErrInvalid)
	}
	req.Header.Set("Authorization", "Bearer "+s.joinToken)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := agentClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot reach the agent of host %s at %s: %v: %w", g.who(), g.host, g.agent, err, api.ErrUnavailable)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	eb, _ := api.ReadErrorBody(resp)
	return nil, fmt.Errorf("%s on host %s: %s: %w", g.who(), g.host, eb.Error, reasonErr(eb.Reason))
}

// who names what a relay is for in its errors: the VM, or (no VM) the
// host's Ingress proxy.
func (g guestTarget) who() string {
	if g.vm == "" {
		return "the Ingress proxy"
	}
	return "VM " + g.vm
}

// reasonErr maps an ErrorBody reason back to its sentinel.
func reasonErr(reason string) error {
	if reason == "Unauthorized" {
		// The agent refused vcenter's join token, which is not the caller's doing.
		return api.ErrUnavailable
	}
	return api.ErrorForReason(reason)
}

// handleVMLogs relays GET /api/v1/vm/logs?path=&container=&follow= to the VM's host.
func (s *Server) handleVMLogs(w http.ResponseWriter, r *http.Request, _ string) error {
	v := r.URL.Query()
	g, err := s.vmAgent(v.Get("path"))
	if err != nil {
		return err
	}
	q := url.Values{"vm": {g.uid}}
	if c := v.Get("container"); c != "" {
		q.Set("container", c)
	}
	follow := v.Get("follow") == "true"
	if follow {
		q.Set("follow", "true")
	}
	resp, err := s.relay(r.Context(), g, http.MethodGet, "/logs", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return nil
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if rerr != nil {
			return nil // headers are out: the stream just ends
		}
	}
}

// handleVMExec relays POST /api/v1/vm/exec to the VM's host and answers the result.
func (s *Server) handleVMExec(w http.ResponseWriter, r *http.Request, _ string) error {
	var req api.ExecRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if len(req.Command) == 0 || req.Command[0] == "" {
		return fmt.Errorf("guest.run needs a command: %w", api.ErrInvalid)
	}
	g, err := s.vmAgent(req.Path)
	if err != nil {
		return err
	}
	resp, err := s.relay(r.Context(), g, http.MethodPost, "/exec", nil, api.HostExecRequest{VM: g.uid, Container: req.Container, Command: req.Command})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var res api.ExecResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, 3*api.MaxExecOutput)).Decode(&res); err != nil {
		return fmt.Errorf("VM %s on host %s: bad answer from the agent: %v: %w", g.vm, g.host, err, api.ErrUnavailable)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
