package fdm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/podsphere/podsphere/api"
)

// SimVMs stands in for the runtime on a host whose agent runs `--runtime
// sim`: its VMs live only inside the agent, so the FDM takes the ones
// vcenter reports powered on here (read every tick while vcenter answers,
// the last answer kept while it does not) as running. Locks, heartbeats
// and isolation then behave as on a real host, which is what HA drills on
// simulated hosts need; stopping a VM can only be recorded (its lock
// released), not done.
//
// With the agent's API (NewSimAgentVMs) the stop is done too: Running is
// what the agent's runtime runs (GET /vms) and Kill and Terminate stop the
// VM there (POST /stop), so an isolation response really powers simulated
// VMs off, as it kills containers on a containerd host.
type SimVMs struct {
	mu    sync.Mutex
	vms   map[string]*LocalVM
	agent *simAgent // nil: Running is vcenter's word, stops only recorded
}

var _ RuntimeVMs = (*SimVMs)(nil)

// NewSimVMs is an empty simulated runtime, filled from vcenter.
func NewSimVMs() *SimVMs { return &SimVMs{vms: map[string]*LocalVM{}} }

// NewSimAgentVMs is SimVMs that reads and stops the VMs through the sim
// agent's own API at addr (host:port, its --listen), with the join token.
func NewSimAgentVMs(addr, token string) *SimVMs {
	s := NewSimVMs()
	s.agent = &simAgent{base: "http://" + addr, token: token, client: &http.Client{Timeout: simAgentTimeout}}
	return s
}

func (s *SimVMs) List(ctx context.Context) ([]LocalVM, error) {
	s.mu.Lock()
	out := make([]LocalVM, 0, len(s.vms))
	for _, vm := range s.vms {
		out = append(out, *vm)
	}
	s.mu.Unlock()
	if s.agent == nil {
		return out, nil
	}
	running, err := s.agent.running(ctx)
	if err != nil {
		return nil, err
	}
	for i := range out {
		_, on := running[out[i].UID]
		out[i].Running = on
		out[i].Desired = out[i].Desired || on
		delete(running, out[i].UID)
	}
	// Run by the agent though vcenter (as last heard) does not place them
	// here: the locks decide what to do with them, as on containerd.
	for uid, path := range running {
		out = append(out, LocalVM{UID: uid, Path: path, Desired: true, Running: true})
	}
	return out, nil
}

// Kill and Terminate record the VM stopped until vcenter next reports it,
// and stop it in the agent's runtime when SimVMs has the agent's API. A
// simulated VM has no processes to signal: both stop it at once.
func (s *SimVMs) Kill(ctx context.Context, uid string) error {
	if err := s.agent.stop(ctx, uid); err != nil {
		return err
	}
	return s.stopped(uid)
}

func (s *SimVMs) Terminate(ctx context.Context, uid string) error { return s.Kill(ctx, uid) }

func (s *SimVMs) stopped(uid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if vm := s.vms[uid]; vm != nil {
		vm.Running = false
	}
	return nil
}

// observe takes vcenter's list of the VMs placed on host.
func (s *SimVMs) observe(items []*api.Object, host string) {
	vms := map[string]*LocalVM{}
	for _, o := range items {
		var spec api.VMSpec
		var st api.VMStatus
		if o.DecodeSpec(&spec) != nil || spec.Host != host {
			continue
		}
		_ = o.DecodeStatus(&st)
		on := st.PowerState == api.PoweredOn && st.Host == host
		vms[o.UID] = &LocalVM{UID: o.UID, Path: o.Path, Desired: spec.PowerState == api.PoweredOn, Running: on}
	}
	s.mu.Lock()
	s.vms = vms
	s.mu.Unlock()
}

// simAgentTimeout bounds one call to the agent, well inside a heartbeat tick's budget.
const simAgentTimeout = 2 * time.Second

// simAgent is the sim host agent's API (docs/hosts-and-vms.md).
type simAgent struct {
	base, token string
	client      *http.Client
}

func (a *simAgent) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	return a.client.Do(req)
}

// errorOf is the agent's answer as an error, for anything but 2xx.
func errorOf(resp *http.Response, what string) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	var eb api.ErrorBody
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&eb)
	return fmt.Errorf("sim agent: %s: %s: %s: %w", what, resp.Status, eb.Error, api.ErrUnavailable)
}

// running is UID -> path of every VM the agent's runtime has powered on
// (or suspended). A refused connection is nothing: no agent listens, and
// a simulated host's VMs live only in its agent, so none runs; any other
// failure is an error, never an empty list.
func (a *simAgent) running(ctx context.Context) (map[string]string, error) {
	resp, err := a.do(ctx, http.MethodGet, "/vms", nil)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sim agent: list VMs: %w", err)
	}
	defer resp.Body.Close()
	if err := errorOf(resp, "list VMs"); err != nil {
		return nil, err
	}
	var l api.HostVMList
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&l); err != nil {
		return nil, fmt.Errorf("sim agent: list VMs: %v: %w", err, api.ErrUnavailable)
	}
	out := make(map[string]string, len(l.VMs))
	for _, vm := range l.VMs {
		if vm.PowerState != api.PoweredOff {
			out[vm.ID] = vm.Path
		}
	}
	return out, nil
}

// stop stops the VM in the agent's runtime; nil agent: nothing to do. A
// VM the agent does not have (not found) or an agent that is gone
// (refused) is stopped already.
func (a *simAgent) stop(ctx context.Context, uid string) error {
	if a == nil {
		return nil
	}
	resp, err := a.do(ctx, http.MethodPost, "/stop", api.HostStopRequest{VM: uid})
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sim agent: stop VM %s: %w", uid, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	return errorOf(resp, "stop VM "+uid)
}
