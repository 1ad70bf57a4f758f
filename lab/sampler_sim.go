package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/network"
)

// agentAPIAddr is where the lab's agent of h serves its own API: a fixed
// port on its management address, so a restarted agent is found again.
func agentAPIAddr(h Host) string { return net.JoinHostPort(h.Address, fmt.Sprint(AgentPort)) }

// agentSampleTimeout bounds one GET /vms: a stopped (SIGSTOP) or wedged
// agent fails the sample instead of stalling a drill's 100 ms loop.
const agentSampleTimeout = 2 * time.Second

// agentReader reads what one simulated host runs from its agent's GET /vms.
// A sim host's VMs exist only in its agent's memory, so the agent is the
// only place to look; the request is made from inside the host's network
// namespace, where the host's own address answers even while its link is
// down (host.isolate, partition), so an isolated host is still sampled.
type agentReader struct {
	host   string
	url    string // http://10.99.0.11:8990/vms
	token  string // the join token the agent was started with
	client *http.Client
}

// newAgentReaders makes a reader per host of a sim lab from the agents'
// recorded arguments (--listen and --join-token), which host.restart
// reuses: the address stays right across restarts.
func newAgentReaders(s *State) (map[string]*agentReader, error) {
	readers := make(map[string]*agentReader, len(s.Hosts))
	for _, h := range s.Hosts {
		p := s.process(h.Name)
		if p == nil {
			return nil, fmt.Errorf("the lab in %s has no agent recorded for %s: %w", s.Dir, h.Name, api.ErrUnavailable)
		}
		listen, token := argValue(p.Args, "--listen"), argValue(p.Args, "--join-token")
		if listen == "" || token == "" {
			return nil, fmt.Errorf("the lab in %s started %s's agent without --listen: no agent API to sample its simulated VMs from (a lab made by an older podsphere: lab down and up again): %w",
				s.Dir, h.Name, api.ErrUnavailable)
		}
		readers[h.Name] = newAgentReader(h.Name, filepath.Join(network.NetNSDir, h.NetNS), listen, token)
	}
	return readers, nil
}

// newAgentReader reads host's agent at listen (host:port), dialling from
// inside the network namespace at nsPath ("" = the caller's).
func newAgentReader(host, nsPath, listen, token string) *agentReader {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, netw, addr string) (net.Conn, error) {
			var c net.Conn
			// A socket belongs to the namespace it was made in: only the
			// dial has to run inside it.
			err := network.InNetNS(nsPath, func() error {
				var d net.Dialer
				var err error
				c, err = d.DialContext(ctx, netw, addr)
				return err
			})
			return c, err
		},
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     30 * time.Second,
	}
	return &agentReader{host: host, url: "http://" + listen + "/vms", token: token,
		client: &http.Client{Transport: tr, Timeout: agentSampleTimeout}}
}

// argValue is the value of flag in argv ("--flag value" or "--flag=value").
func argValue(argv []string, flag string) string {
	for i, a := range argv {
		if a == flag && i+1 < len(argv) {
			return argv[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// running lists the VMs the host's agent runs: every VM its runtime has
// that is not powered off (a suspended one still holds its state, as a
// paused containerd task counts as running).
func (r *agentReader) running(ctx context.Context) ([]vmRef, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.client.Do(req)
	if err != nil {
		// A refused connection means no agent listens: the host crashed
		// (host.crash killed its agent) or its agent has not bound its API
		// yet. That it then runs nothing is true ONLY of a simulated host,
		// whose VMs live in its agent's memory and died with it; a
		// containerd host's VMs outlive their agent. Any other error
		// (timeout, reset mid-answer, no namespace) is "could not look".
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, nil
		}
		return nil, fmt.Errorf("agent API %s: %w", r.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("agent API %s: %w", r.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb api.ErrorBody
		_ = json.Unmarshal(body, &eb)
		return nil, fmt.Errorf("agent API %s: %s: %s", r.url, resp.Status, eb.Error)
	}
	var l api.HostVMList
	if err := json.Unmarshal(body, &l); err != nil {
		return nil, fmt.Errorf("agent API %s: %v", r.url, err)
	}
	if l.Host != r.host {
		return nil, fmt.Errorf("agent API %s answers as host %q, not %s", r.url, l.Host, r.host)
	}
	refs := make([]vmRef, 0, len(l.VMs))
	for _, vm := range l.VMs {
		if vm.PowerState != api.PoweredOff && !slices.ContainsFunc(refs, func(x vmRef) bool { return x.uid == vm.ID }) {
			refs = append(refs, vmRef{uid: vm.ID, path: vm.Path})
		}
	}
	return refs, nil
}

func (r *agentReader) close() { r.client.CloseIdleConnections() }
