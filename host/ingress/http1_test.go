package ingress

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// echo answers METHOD, the framing it received and the body.
func echo(t *testing.T) string {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Length", fmt.Sprint(r.ContentLength))
		w.Header().Set("X-Connection", r.Header.Get("Connection"))
		fmt.Fprintf(w, "%s %s", r.Method, b)
	}))
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

func TestHTTP1Bodies(t *testing.T) {
	p := New(Options{})
	p.SetRoutes(oneRoute(service("echo", echo(t))))
	url := front(t, p)
	c := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
	do := func(req *http.Request) (*http.Response, string) {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", req.Method, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	req, _ := http.NewRequest("POST", url+"/", strings.NewReader("hello"))
	if resp, body := do(req); body != "POST hello" || resp.Header.Get("X-Length") != "5" {
		t.Errorf("POST with a length: %q length %s", body, resp.Header.Get("X-Length"))
	}
	pr, pw := io.Pipe()
	go func() { io.WriteString(pw, "chunk one, "); io.WriteString(pw, "chunk two"); pw.Close() }()
	req, _ = http.NewRequest("PUT", url+"/", pr)
	if resp, body := do(req); body != "PUT chunk one, chunk two" || resp.Header.Get("X-Length") != "-1" {
		t.Errorf("chunked PUT: %q length %s", body, resp.Header.Get("X-Length"))
	}
	req, _ = http.NewRequest("POST", url+"/", strings.NewReader("after 100"))
	req.Header.Set("Expect", "100-continue")
	if _, body := do(req); body != "POST after 100" {
		t.Errorf("Expect: 100-continue: %q", body)
	}
	req, _ = http.NewRequest("HEAD", url+"/", nil)
	if resp, body := do(req); resp.StatusCode != 200 || body != "" {
		t.Errorf("HEAD: %d %q", resp.StatusCode, body)
	}
	req, _ = http.NewRequest("GET", url+"/", nil)
	if resp, _ := do(req); resp.Header.Get("X-Connection") != "" {
		t.Errorf("the client's hop-by-hop headers reached the endpoint: Connection %q", resp.Header.Get("X-Connection"))
	}

	// An HTTP/1.0 client without keep-alive gets its answer and the close.
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /old HTTP/1.0\r\nHost: x\r\n\r\n")
	all, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(all), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(all), "GET ") || !strings.Contains(string(all), "Connection: close") {
		t.Errorf("HTTP/1.0: %q", all)
	}

	// Garbage gets 400 and the connection closes.
	bad, _ := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	defer bad.Close()
	bad.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(bad, "NOT HTTP\r\n\r\n")
	line, _ := bufio.NewReader(bad).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 400") {
		t.Errorf("garbage: %q", line)
	}
}

// A client speaking HTTP/2 without TLS (prior knowledge) is handed to
// net/http's server and routed the same.
func TestHTTP1HandsH2COver(t *testing.T) {
	web, _ := backend(t, "web")
	p := New(Options{})
	p.SetRoutes(oneRoute(service("web", web)))
	addr := deadAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.ListenAndServe(ctx, Listeners{HTTP: addr, H2C: true}) }()
	t.Cleanup(func() { cancel(); <-done })
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: tr}
	var resp *http.Response
	var err error
	for range 50 { // the listener comes up in the goroutine
		if resp, err = c.Get("http://" + addr + "/h2"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || string(b) != "web /h2" {
		t.Errorf("%s %q, want HTTP/2 and the backend", resp.Proto, b)
	}
	// HTTP/1.1 on the same listener still works.
	if code, body, _ := get(t, http.DefaultClient, "http://"+addr+"/h1", ""); code != 200 || body != "web /h1" {
		t.Errorf("HTTP/1.1 next to h2c: %d %q", code, body)
	}
}

// An endpoint that closes after each answer (busybox httpd) does not close
// the client's connection: the proxy frames the body itself.
func TestHTTP1EndpointCloseKeepsTheClient(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "once")
	}))
	t.Cleanup(s.Close)
	p := New(Options{})
	p.SetRoutes(oneRoute(service("web", s.Listener.Addr().String())))
	url := front(t, p)
	for i := range 3 {
		resp, err := http.Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "once" || resp.Close {
			t.Errorf("request %d: %q, close %v: want the body and a kept-alive client connection", i, b, resp.Close)
		}
	}
}
