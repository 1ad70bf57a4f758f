package agent

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
)

// The agent's own API serves what only the host can: a VM's logs, commands
// run in its containers, and its metrics. vcenter relays to it (vm.logs,
// guest.run) with the join token as bearer; nothing else may call it.
//
//	GET  /logs?vm=ID&container=C&follow=true   the container's output, streamed
//	POST /exec {vm, container, command}        -> api.ExecResult
//	GET  /metrics?vm=ID                        -> {cpuUsageMHz, memUsageMB}
//	GET  /vms                                  -> api.HostVMList
//	POST /stop {vm, timeoutSeconds}            -> 204 (api.HostStopRequest)
//	GET  /ingress/log?n=100                    -> IngressLog (the Ingress proxy's access log)
//
// GET /vms is what the runtime itself runs (runtime.List), whatever
// vcenter's inventory says: a lab drill on simulated hosts, whose VMs live
// only in the agent's memory, reads it from inside each host's network
// namespace as it reads containerd on real hosts. POST /stop is how the
// host's HA process (podsphere fdm) applies an isolation response to such
// VMs, as it kills containerd tasks on real hosts: the runtime's VM stops,
// and the agent, cut off from vcenter, does not start it again (its lock
// is released, and only vcenter's word lets it take the lock back).

// apiHandler is the agent's HTTP API.
func (a *Agent) apiHandler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(a.cfg.JoinToken)) != 1 {
				writeAPIError(w, fmt.Errorf("host %s: missing or wrong bearer token (the join token): %w", a.cfg.Name, api.ErrUnauthorized))
				return
			}
			if err := h(w, r); err != nil {
				writeAPIError(w, err)
			}
		})
	}
	route("GET /logs", a.handleLogs)
	route("POST /exec", a.handleExec)
	route("GET /metrics", a.handleMetrics)
	route("GET /vms", a.handleVMs)
	route("POST /stop", a.handleStop)
	route("GET /ingress/log", a.handleIngressLog)
	return mux
}

// writeAPIError answers err as vcenter does: the status and reason of the
// sentinel it wraps (api.Sentinels) and its message without the sentinel's
// name (api.Message).
func writeAPIError(w http.ResponseWriter, err error) {
	s := api.SentinelOf(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(s.HTTPStatus)
	_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Message(err), Reason: s.Reason})
}

func vmParam(r *http.Request) (string, error) {
	id := r.URL.Query().Get("vm")
	if id == "" {
		return "", fmt.Errorf("?vm= (the VM's UID) is required: %w", api.ErrInvalid)
	}
	return id, nil
}

// streamWriter sends the 200 header with the first bytes, so an error found
// before any output still answers as an error; then it flushes every write.
type streamWriter struct {
	w       http.ResponseWriter
	started bool
}

func (s *streamWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		s.w.WriteHeader(http.StatusOK)
		s.started = true
	}
	n, err := s.w.Write(p)
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
	return n, err
}

func (a *Agent) handleLogs(w http.ResponseWriter, r *http.Request) error {
	id, err := vmParam(r)
	if err != nil {
		return err
	}
	follow, _ := strconv.ParseBool(r.URL.Query().Get("follow"))
	if _, err := a.cfg.Runtime.Status(r.Context(), id); err != nil {
		return fmt.Errorf("host %s: VM %s: %w", a.cfg.Name, id, err)
	}
	sw := &streamWriter{w: w}
	if follow {
		// Headers now, so the caller sees the stream open even before output.
		_, _ = sw.Write(nil)
	}
	err = a.cfg.Runtime.Logs(r.Context(), id, r.URL.Query().Get("container"), follow, sw)
	if err != nil && !sw.started {
		return err
	}
	if !sw.started {
		_, _ = sw.Write(nil) // empty log
	}
	return nil
}

// cappedBuffer keeps the first max bytes written and drops the rest.
type cappedBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *cappedBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.b)
}

func (a *Agent) handleExec(w http.ResponseWriter, r *http.Request) error {
	var req api.HostExecRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("exec request: %v: %w", err, api.ErrInvalid)
	}
	if req.VM == "" || len(req.Command) == 0 {
		return fmt.Errorf("exec request needs vm and command: %w", api.ErrInvalid)
	}
	stdout := &cappedBuffer{max: api.MaxExecOutput}
	stderr := &cappedBuffer{max: api.MaxExecOutput}
	code, err := a.cfg.Runtime.Exec(r.Context(), req.VM, req.Container, req.Command, stdout, stderr)
	if err != nil {
		return fmt.Errorf("host %s: exec %q in VM %s: %w", a.cfg.Name, req.Command[0], req.VM, err)
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(api.ExecResult{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: code})
}

func (a *Agent) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	id, err := vmParam(r)
	if err != nil {
		return err
	}
	m, err := a.cfg.Runtime.Metrics(r.Context(), id)
	if err != nil {
		return fmt.Errorf("host %s: metrics of VM %s: %w", a.cfg.Name, id, err)
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(struct {
		CPUUsageMHz int64 `json:"cpuUsageMHz"`
		MemUsageMB  int64 `json:"memUsageMB"`
	}{m.CPUUsageMHz, m.MemUsageMB})
}

func (a *Agent) handleVMs(w http.ResponseWriter, r *http.Request) error {
	states, err := a.cfg.Runtime.List(r.Context())
	if err != nil {
		return fmt.Errorf("host %s: list the runtime's VMs: %w", a.cfg.Name, err)
	}
	out := api.HostVMList{Host: a.cfg.Name, VMs: make([]api.HostVM, 0, len(states))}
	for _, st := range states {
		out.VMs = append(out.VMs, api.HostVM{ID: st.ID, Path: st.Path, PowerState: st.PowerState})
	}
	slices.SortFunc(out.VMs, func(x, y api.HostVM) int { return strings.Compare(x.ID, y.ID) })
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(out)
}

func (a *Agent) handleStop(w http.ResponseWriter, r *http.Request) error {
	var req api.HostStopRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("stop request: %v: %w", err, api.ErrInvalid)
	}
	if req.VM == "" || req.TimeoutSeconds < 0 {
		return fmt.Errorf("stop request needs vm (the VM's UID) and a timeoutSeconds of 0 or more: %w", api.ErrInvalid)
	}
	if _, err := a.cfg.Runtime.Status(r.Context(), req.VM); err != nil {
		return fmt.Errorf("host %s: stop VM %s: %w", a.cfg.Name, req.VM, err)
	}
	if err := a.cfg.Runtime.Stop(r.Context(), req.VM, time.Duration(req.TimeoutSeconds)*time.Second); err != nil {
		return fmt.Errorf("host %s: stop VM %s: %w", a.cfg.Name, req.VM, err)
	}
	a.log.Printf("VM %s stopped through the agent API (POST /stop)", req.VM)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listenAPI binds the agent API: cfg.APIListen, else the gossip IP with any
// port. It returns the listener and the address to advertise to vcenter
// (an unspecified bind IP is replaced by advertiseIP, the gossip address).
func (a *Agent) listenAPI(advertiseIP string) (net.Listener, string, error) {
	bind := a.cfg.APIListen
	if bind == "" {
		host, _, err := net.SplitHostPort(a.cfg.GossipBind)
		if err != nil {
			return nil, "", fmt.Errorf("host %s: agent API: %w", a.host, err)
		}
		bind = net.JoinHostPort(host, "0")
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, "", fmt.Errorf("host %s: agent API on %s: %v: %w", a.host, bind, err, api.ErrUnavailable)
	}
	ta := ln.Addr().(*net.TCPAddr)
	ip := ta.IP.String()
	if ta.IP.IsUnspecified() && advertiseIP != "" {
		ip = advertiseIP
	}
	return ln, net.JoinHostPort(ip, strconv.Itoa(ta.Port)), nil
}

// serveAPI answers on ln until stop is closed.
func (a *Agent) serveAPI(ln net.Listener, stop <-chan struct{}) {
	srv := &http.Server{Handler: a.apiHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-stop
		_ = srv.Close() // also ends followed log streams
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.log.Printf("agent API: %v", err)
	}
}
