package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

// server is a loopback HTTP server whose answer a test sets.
func server(t *testing.T) (*httptest.Server, *atomic.Int32, *atomic.Value) {
	t.Helper()
	var code atomic.Int32
	code.Store(200)
	var seen atomic.Value
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Clone())
		if r.URL.Path == "/slow" {
			time.Sleep(500 * time.Millisecond)
		}
		if r.URL.Path == "/away" {
			http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
			return
		}
		if r.URL.Path == "/here" {
			http.Redirect(w, r, "/", http.StatusFound)
			return
		}
		w.WriteHeader(int(code.Load()))
		fmt.Fprint(w, "hello")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &code, &seen
}

func split(t *testing.T, addr string) (string, int) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return host, n
}

func TestCheckHTTP(t *testing.T) {
	srv, code, seen := server(t)
	ip, port := split(t, srv.Listener.Addr().String())
	target := Target{IP: ip, Container: api.Container{Ports: []api.Port{{Name: "http", ContainerPort: port}}}}
	get := func(path string, p api.IntOrString, headers ...api.HTTPHeader) api.Probe {
		return api.Probe{HTTPGet: &api.HTTPGetAction{Path: path, Port: p, HTTPHeaders: headers}}
	}
	for _, tc := range []struct {
		name   string
		code   int
		probe  api.Probe
		want   Result
		msg    string
		target *Target
	}{
		{"200", 200, get("/", api.Int(port)), Success, "", nil},
		{"named port", 204, get("/", api.Str("http")), Success, "", nil},
		{"399", 399, get("/", api.Int(port)), Success, "", nil},
		{"404", 404, get("/", api.Int(port)), Failure, "statuscode: 404", nil},
		{"500", 500, get("/", api.Int(port)), Failure, "statuscode: 500", nil},
		{"redirect same host followed", 503, get("/here", api.Int(port)), Failure, "statuscode: 503", nil},
		{"redirect elsewhere is success", 500, get("/away", api.Int(port)), Success, "", nil},
		{"timeout", 200, get("/slow", api.Int(port)), Failure, "timed out", nil},
		{"refused", 200, get("/", api.Int(1)), Failure, "refused", nil},
		{"no address yet", 200, get("/", api.Int(port)), Unknown, "", &Target{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code.Store(int32(tc.code))
			tg := target
			if tc.target != nil {
				tg = *tc.target
			}
			o := Check(context.Background(), tc.probe, tg, 200*time.Millisecond)
			if o.Result != tc.want || !strings.Contains(o.Message, tc.msg) {
				t.Fatalf("Check = %+v, want %s with %q", o, tc.want, tc.msg)
			}
		})
	}
	t.Run("headers", func(t *testing.T) {
		code.Store(200)
		Check(context.Background(), get("/", api.Int(port)), target, time.Second)
		h := seen.Load().(http.Header)
		if h.Get("User-Agent") != UserAgent || h.Get("Accept") != "*/*" {
			t.Fatalf("default headers %v", h)
		}
		Check(context.Background(), get("/", api.Int(port), api.HTTPHeader{Name: "user-agent", Value: "mine"}, api.HTTPHeader{Name: "X-A", Value: "1"}), target, time.Second)
		h = seen.Load().(http.Header)
		if h.Values("User-Agent")[0] != "mine" || len(h.Values("User-Agent")) != 1 || h.Get("X-A") != "1" {
			t.Fatalf("custom headers %v", h)
		}
	})
	t.Run("dial through the target", func(t *testing.T) {
		var dialed atomic.Int32
		tg := target
		tg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
		if o := Check(context.Background(), get("/", api.Int(port)), tg, time.Second); o.Result != Success || dialed.Load() != 1 {
			t.Fatalf("Check = %+v, dialed %d", o, dialed.Load())
		}
	})
}

func TestCheckTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ip, port := split(t, ln.Addr().String())
	ln.Close() // a closed port: refused
	tcp := api.Probe{TCPSocket: &api.TCPSocketAction{Port: api.Int(port)}}
	if o := Check(context.Background(), tcp, Target{IP: ip}, time.Second); o.Result != Failure {
		t.Fatalf("closed port: %+v", o)
	}
	ln, err = net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Skipf("port %d taken meanwhile: %v", port, err)
	}
	defer ln.Close()
	if o := Check(context.Background(), tcp, Target{IP: ip}, time.Second); o.Result != Success {
		t.Fatalf("open port: %+v", o)
	}
	other := api.Probe{TCPSocket: &api.TCPSocketAction{Port: api.Int(port), Host: "127.0.0.1"}}
	if o := Check(context.Background(), other, Target{IP: "192.0.2.1"}, time.Second); o.Result != Success {
		t.Fatalf("probe host overrides the VM address: %+v", o)
	}
	named := api.Probe{TCPSocket: &api.TCPSocketAction{Port: api.Str("db")}}
	if o := Check(context.Background(), named, Target{IP: ip}, time.Second); o.Result != Failure || !strings.Contains(o.Message, "no port") {
		t.Fatalf("undeclared named port: %+v", o)
	}
}

func TestCheckExec(t *testing.T) {
	exec := func(code int, err error, out string, delay time.Duration) Target {
		return Target{Exec: func(ctx context.Context, cmd []string, w io.Writer) (int, error) {
			io.WriteString(w, out)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return -1, ctx.Err()
			}
			return code, err
		}}
	}
	p := api.Probe{Exec: &api.ExecAction{Command: []string{"test", "-f", "/tmp/healthy"}}}
	for _, tc := range []struct {
		name   string
		target Target
		want   Result
		msg    string
	}{
		{"exit 0", exec(0, nil, "", 0), Success, ""},
		{"exit 1", exec(1, nil, "no such file\n", 0), Failure, `command "test -f /tmp/healthy" exited with 1: no such file`},
		{"timeout", exec(0, nil, "", time.Second), Failure, "timed out after 100ms"},
		{"not running", exec(-1, fmt.Errorf("exec: %w", ErrNotRunning), "", 0), Unknown, ""},
		{"cannot start", exec(-1, errors.New("executable file not found"), "", 0), Failure, "executable file not found"},
		{"no exec", Target{}, Failure, "not supported"},
	} {
		o := Check(context.Background(), p, tc.target, 100*time.Millisecond)
		if o.Result != tc.want || !strings.Contains(o.Message, tc.msg) {
			t.Errorf("%s: Check = %+v, want %s with %q", tc.name, o, tc.want, tc.msg)
		}
	}
}

// TestRunner drives real goroutines with a short probe second: readiness
// comes and goes with the server, a failing liveness probe asks for the
// kill once, and every goroutine ends with the context.
func TestRunner(t *testing.T) {
	before := runtime.NumGoroutine()
	srv, code, _ := server(t)
	ip, port := split(t, srv.Listener.Addr().String())
	var healthy atomic.Bool
	healthy.Store(true)
	var mu sync.Mutex
	var changes []Change
	changed := make(chan struct{}, 100)
	c := api.Container{
		Name:           "web",
		ReadinessProbe: &api.Probe{HTTPGet: &api.HTTPGetAction{Port: api.Int(port)}, PeriodSeconds: 1, FailureThreshold: 1},
		LivenessProbe:  &api.Probe{Exec: &api.ExecAction{Command: []string{"check"}}, PeriodSeconds: 1, FailureThreshold: 2},
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := Start(ctx, c, time.Now(), Config{
		Unit: 20 * time.Millisecond,
		Target: Target{IP: ip, Exec: func(ctx context.Context, cmd []string, w io.Writer) (int, error) {
			if healthy.Load() {
				return 0, nil
			}
			return 1, nil
		}},
		OnChange: func(ch Change) {
			mu.Lock()
			changes = append(changes, ch)
			mu.Unlock()
			changed <- struct{}{}
		},
	})
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for !cond() {
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	wait("ready", r.Ready)
	if r.ReadySince().IsZero() || !r.Started() {
		t.Fatal("ready without a time, or not started")
	}
	code.Store(404)
	wait("not ready", func() bool { return !r.Ready() })
	code.Store(200)
	wait("ready again", r.Ready)
	healthy.Store(false)
	wait("kill", r.Killed)
	mu.Lock()
	kills := 0
	for _, ch := range changes {
		if ch.Kill {
			kills++
			if !strings.Contains(ch.Reason, `liveness probe failed: command "check" exited with 1`) {
				t.Errorf("kill reason %q", ch.Reason)
			}
		}
	}
	mu.Unlock()
	if kills != 1 {
		t.Fatalf("%d kills, want 1", kills)
	}
	cancel()
	r.Wait()
	srv.Close()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines left, %d before", n, before)
	}
}

// A Runner of a container without probes starts nothing.
func TestRunnerNoProbes(t *testing.T) {
	r := Start(context.Background(), api.Container{}, time.Now(), Config{})
	r.Wait() // returns at once
	if !r.Ready() || !r.Started() {
		t.Fatal("a container without probes is ready once running")
	}
}
