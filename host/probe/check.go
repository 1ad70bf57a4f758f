package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
)

// UserAgent is what httpGet probes send unless the probe sets its own
// (the kubelet sends kube-probe/MAJOR.MINOR).
const UserAgent = "podsphere-probe/1.0"

// maxBody is how much of a response or command output a probe reads
// (the kubelet's limit too).
const maxBody = 10 << 10

// maxRedirects is how many redirects an httpGet probe follows.
const maxRedirects = 10

// ErrNotRunning is what an Exec function returns (wrapped) when the
// container has no running process to exec in: the outcome is Unknown.
var ErrNotRunning = errors.New("container not running")

// Target is what a probe runs against: one container of a VM.
type Target struct {
	Container api.Container // for named ports
	// IP is the VM's address, the default host of httpGet and tcpSocket.
	IP string
	// Dial opens a connection as the host agent would, from the host's
	// network namespace; nil dials from the process's own.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Exec runs cmd in the container and returns its exit code, with its
	// output (stdout and stderr) written to out. nil: exec probes fail.
	Exec func(ctx context.Context, cmd []string, out io.Writer) (int, error)
}

// Check runs probe p (defaults applied) once against t, bounded by
// timeout: exec succeeds on exit status 0, httpGet on a status from 200
// to 399, tcpSocket when the connection opens. A probe that could not be
// run at all (no address yet, the container not running) is Unknown.
func Check(ctx context.Context, p api.Probe, t Target, timeout time.Duration) Outcome {
	if timeout <= 0 {
		timeout = time.Duration(api.DefaultProbeTimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.Exec != nil:
		return checkExec(ctx, p.Exec, t, timeout)
	case p.HTTPGet != nil:
		return checkHTTP(ctx, p.HTTPGet, t, timeout)
	case p.TCPSocket != nil:
		return checkTCP(ctx, p.TCPSocket, t, timeout)
	}
	return Outcome{Failure, "probe has no action"}
}

func checkExec(ctx context.Context, e *api.ExecAction, t Target, timeout time.Duration) Outcome {
	if t.Exec == nil {
		return Outcome{Failure, "exec probes are not supported by this runtime"}
	}
	var out limitedBuffer
	code, err := t.Exec(ctx, e.Command, &out)
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return Outcome{Failure, fmt.Sprintf("command %s timed out after %v", quoteCmd(e.Command), timeout)}
	case errors.Is(err, ErrNotRunning) || ctx.Err() != nil:
		return Outcome{Unknown, ""}
	case err != nil:
		return Outcome{Failure, fmt.Sprintf("command %s: %v", quoteCmd(e.Command), err)}
	case code != 0:
		msg := fmt.Sprintf("command %s exited with %d", quoteCmd(e.Command), code)
		if o := strings.TrimSpace(out.String()); o != "" {
			msg += ": " + o
		}
		return Outcome{Failure, msg}
	}
	return Outcome{Success, ""}
}

func quoteCmd(cmd []string) string {
	return strconv.Quote(strings.Join(cmd, " "))
}

// hostPort is the address a network probe connects to.
func hostPort(host string, port api.IntOrString, t Target) (string, error) {
	n, err := api.ResolvePort(port, t.Container)
	if err != nil {
		return "", err
	}
	if host == "" {
		host = t.IP
	}
	if host == "" {
		return "", fmt.Errorf("the VM has no address yet: %w", ErrNotRunning)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

func (t Target) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if t.Dial != nil {
		return t.Dial
	}
	var d net.Dialer
	return d.DialContext
}

func checkTCP(ctx context.Context, a *api.TCPSocketAction, t Target, timeout time.Duration) Outcome {
	addr, err := hostPort(a.Host, a.Port, t)
	if errors.Is(err, ErrNotRunning) {
		return Outcome{Unknown, ""}
	}
	if err != nil {
		return Outcome{Failure, err.Error()}
	}
	c, err := t.dialer()(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return Outcome{Failure, fmt.Sprintf("dial tcp %s: timed out after %v", addr, timeout)}
		}
		return Outcome{Failure, err.Error()}
	}
	c.Close()
	return Outcome{Success, ""}
}

func checkHTTP(ctx context.Context, a *api.HTTPGetAction, t Target, timeout time.Duration) Outcome {
	addr, err := hostPort(a.Host, a.Port, t)
	if errors.Is(err, ErrNotRunning) {
		return Outcome{Unknown, ""}
	}
	if err != nil {
		return Outcome{Failure, err.Error()}
	}
	scheme := "http"
	if a.Scheme == "HTTPS" {
		scheme = "https"
	}
	path := a.Path
	if path == "" {
		path = "/"
	}
	u, err := url.Parse(scheme + "://" + addr + path)
	if err != nil {
		return Outcome{Failure, err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Outcome{Failure, err.Error()}
	}
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Accept", "*/*")
	custom := map[string]bool{}
	for _, h := range a.HTTPHeaders {
		name := http.CanonicalHeaderKey(h.Name)
		if name == "Host" {
			req.Host = h.Value
			continue
		}
		if !custom[name] { // the probe's own User-Agent or Accept replaces the default
			req.Header.Del(name)
			custom[name] = true
		}
		req.Header.Add(name, h.Value)
	}
	client := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:       t.dialer(),
			DisableKeepAlives: true, // one connection per probe, as the kubelet does
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		},
		// The kubelet follows redirects to the same host; a redirect to
		// another host ends the probe with that redirect's status (a success).
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if r.URL.Hostname() != via[0].URL.Hostname() {
				return http.ErrUseLastResponse
			}
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			return nil
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded || isTimeout(err) {
			return Outcome{Failure, fmt.Sprintf("GET %s: timed out after %v", u, timeout)}
		}
		return Outcome{Failure, err.Error()}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return Outcome{Success, ""}
	}
	return Outcome{Failure, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// limitedBuffer keeps the first maxBody bytes written to it; stdout and
// stderr may write at once.
type limitedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := maxBody - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
