package ingress

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/lb"
)

// BenchmarkIngressVsNginx measures the proxy against Debian's nginx in one
// run: the same two host routes onto the same two backends (Go HTTP
// servers in this process, two endpoints each), the same Go client with
// the same keep-alive connections, on the same machine. Each proxy runs
// in a process of its own (the proxy as this test binary re-executed,
// nginx with worker_processes 2, its own config, pid and logs under a
// temp dir). A third and fourth run reconfigure each proxy 10 times a
// second under the same load (podsphere: a route table swap, nginx:
// `nginx -s reload`) and count failed requests. docs/benchmarks.md has
// the figures and the command:
//
//	go test -run '^$' -bench IngressVsNginx -benchtime 1x -v ./host/ingress/
//
// PODSPHERE_BENCH_SECONDS (default 5) is each run's length,
// PODSPHERE_BENCH_CONNS (default 32) the client's connections.
func BenchmarkIngressVsNginx(b *testing.B) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		b.Skip("nginx is not installed (apt-get install nginx-light)")
	}
	secs := envInt("PODSPHERE_BENCH_SECONDS", 5)
	conns := envInt("PODSPHERE_BENCH_CONNS", 32)
	var backends []string
	for range 4 {
		backends = append(backends, benchBackend(b))
	}
	routes := benchRoutes{A: backends[:2], B: backends[2:]}
	dir := b.TempDir()
	rounds := envInt("PODSPHERE_BENCH_ROUNDS", 3)
	run := d(secs)
	for range b.N {
		// Rounds alternate the two proxies, so a neighbour's load on the
		// machine falls on both; the medians are compared.
		var goRuns, ngRuns []result
		for range rounds {
			goRuns = append(goRuns, runGo(b, routes, conns, run, false))
			ngRuns = append(ngRuns, runNginx(b, nginx, dir, routes, conns, run, false))
		}
		goReload := runGo(b, routes, conns, run, true)
		ngReload := runNginx(b, nginx, dir, routes, conns, run, true)

		b.Logf("%d connections, %d rounds of %d s, response %d bytes", conns, rounds, secs, len(benchBody))
		for i := range rounds {
			b.Logf("round %d  %-30s %s", i+1, "podsphere ingress", goRuns[i])
			b.Logf("round %d  %-30s %s", i+1, "nginx", ngRuns[i])
		}
		goRes, ngRes := median(goRuns), median(ngRuns)
		b.Logf("median   %-30s %s", "podsphere ingress", goRes)
		b.Logf("median   %-30s %s", "nginx", ngRes)
		b.Logf("         %-30s %s", "podsphere, routes swapped 10/s", goReload)
		b.Logf("         %-30s %s", "nginx, nginx -s reload 10/s", ngReload)
		b.ReportMetric(goRes.rps, "podsphere-req/s")
		b.ReportMetric(ngRes.rps, "nginx-req/s")
		b.ReportMetric(ms(goRes.p99), "podsphere-p99-ms")
		b.ReportMetric(ms(ngRes.p99), "nginx-p99-ms")
		b.ReportMetric(float64(goReload.failed), "podsphere-failed-reconfiguring")
		b.ReportMetric(float64(ngReload.failed), "nginx-failed-reloading")
	}
}

func d(secs int) time.Duration { return time.Duration(secs) * time.Second }

func runGo(b *testing.B, routes benchRoutes, conns int, run time.Duration, reconfig bool) result {
	addr := freeAddr(b)
	stop := startGoProxy(b, addr, routes, reconfig)
	r := load(addr, conns, run, nil)
	r.cpu = stop()
	return r
}

func runNginx(b *testing.B, nginx, dir string, routes benchRoutes, conns int, run time.Duration, reload bool) result {
	addr := freeAddr(b)
	stop, reloader := startNginx(b, nginx, dir, addr, routes)
	var every func(int)
	if reload {
		every = reloader
	}
	r := load(addr, conns, run, every)
	r.cpu = stop()
	return r
}

// median is the run with the median requests/s.
func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int { return int(a.rps - b.rps) })
	return s[len(s)/2]
}

// benchBody is a small page, as most requests through an Ingress are API
// calls and pages rather than downloads.
var benchBody = strings.Repeat("x", 512)

func benchBackend(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, benchBody)
	})}
	go s.Serve(ln)
	b.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// benchRoutes: a.example.com / -> Service a (A), b.example.com /api -> Service b (B).
type benchRoutes struct{ A, B []string }

func (r benchRoutes) table(swap int) *lb.RouteTable {
	mk := func(name string, eps []string) lb.Service {
		if swap%2 == 1 {
			eps = []string{eps[1], eps[0]} // another table, the same endpoints
		}
		return service(name, eps...)
	}
	in := lb.Ingress{Path: "/dc1/ingress/bench", Spec: api.IngressSpec{Rules: []api.IngressRule{
		{Host: "a.example.com", HTTP: &api.HTTPIngressRuleValue{Paths: []api.HTTPIngressPath{path("Prefix", "/", "a")}}},
		{Host: "b.example.com", HTTP: &api.HTTPIngressRuleValue{Paths: []api.HTTPIngressPath{path("Prefix", "/api", "b")}}},
	}}}
	a, bb := mk("a", r.A), mk("b", r.B)
	return lb.Routes(map[string]lb.Ingress{in.Path: in}, map[string]lb.Service{a.Path: a, bb.Path: bb})
}

const proxyEnv = "PODSPHERE_INGRESS_BENCH_PROXY"

// TestBenchProxyProcess is the proxy process of BenchmarkIngressVsNginx
// (it does nothing unless the benchmark starts it).
func TestBenchProxyProcess(t *testing.T) {
	spec := os.Getenv(proxyEnv)
	if spec == "" {
		t.Skip("the proxy process of BenchmarkIngressVsNginx")
	}
	var cfg struct {
		Addr     string
		Routes   benchRoutes
		Reconfig bool
	}
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		t.Fatal(err)
	}
	p := New(Options{})
	p.SetRoutes(cfg.Routes.table(0))
	if os.Getenv("PODSPHERE_BENCH_NETHTTP") != "" {
		// net/http's server and ReverseProxy (ServeHTTP), for comparison.
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			t.Fatal(err)
		}
		go p.Server(false).Serve(ln)
	} else {
		go p.ListenAndServe(context.Background(), Listeners{HTTP: cfg.Addr})
		for i := 0; ; i++ {
			if c, err := net.Dial("tcp", cfg.Addr); err == nil {
				c.Close()
				break
			} else if i == 200 {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if cfg.Reconfig {
		go func() {
			for i := 1; ; i++ {
				time.Sleep(100 * time.Millisecond)
				p.SetRoutes(cfg.Routes.table(i))
			}
		}()
	}
	if f := os.Getenv("PODSPHERE_BENCH_CPUPROFILE"); f != "" && !cfg.Reconfig {
		out, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		pprof.StartCPUProfile(out)
		defer pprof.StopCPUProfile()
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // until the benchmark closes it
}

func startGoProxy(b *testing.B, addr string, r benchRoutes, reconfig bool) func() time.Duration {
	spec, _ := json.Marshal(map[string]any{"Addr": addr, "Routes": r, "Reconfig": reconfig})
	cmd := exec.Command(os.Args[0], "-test.run", "^TestBenchProxyProcess$", "-test.bench", "^$")
	cmd.Env = append(os.Environ(), proxyEnv+"="+string(spec))
	if n := os.Getenv("PODSPHERE_BENCH_PROXY_PROCS"); n != "" {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+n)
	}
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		b.Fatalf("proxy process: %q", line)
	}
	go io.Copy(io.Discard, out)
	return func() time.Duration {
		stdin.Close() // the process stops its profile and exits
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		return cpuOf(cmd)
	}
}

// startNginx runs nginx with a config of its own (never the system
// service), returning its stop and a reload that `nginx -s reload`s it.
func startNginx(b *testing.B, nginx, dir, addr string, r benchRoutes) (stop func() time.Duration, reload func(int)) {
	conf := filepath.Join(dir, "nginx.conf")
	ups := func(name string, eps []string) string {
		var s strings.Builder
		fmt.Fprintf(&s, "  upstream %s {\n", name)
		for _, e := range eps {
			fmt.Fprintf(&s, "    server %s;\n", e)
		}
		s.WriteString("    keepalive 512;\n  }\n")
		return s.String()
	}
	// As ingress-nginx configures it: HTTP/1.1 keep-alive to upstreams,
	// the client's Host and X-Forwarded-* headers, retries on errors.
	cfg := fmt.Sprintf(`daemon off;
worker_processes 2;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_requests 100000;
%[3]s%[4]s
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host $host;
  proxy_set_header X-Forwarded-For $remote_addr;
  proxy_set_header X-Forwarded-Host $host;
  proxy_set_header X-Forwarded-Proto $scheme;
  proxy_next_upstream error timeout;
  server { listen %[2]s default_server; return 404; }
  server { listen %[2]s; server_name a.example.com; location / { proxy_pass http://a; } }
  server { listen %[2]s; server_name b.example.com; location /api { proxy_pass http://b; } }
}
`, dir, addr, ups("a", r.A), ups("b", r.B))
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(nginx, "-c", conf, "-p", dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var once sync.Once
	stop = func() time.Duration {
		once.Do(func() {
			cmd.Process.Signal(os.Interrupt) // SIGINT: fast shutdown
			cmd.Wait()
		})
		return cpuOf(cmd) // the master's, with its workers'
	}
	b.Cleanup(func() { stop() })
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			stop()
			b.Fatalf("nginx did not start: %v (see %s/error.log)", err, dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
	reload = func(int) {
		if out, err := exec.Command(nginx, "-c", conf, "-p", dir, "-s", "reload").CombinedOutput(); err != nil {
			b.Logf("nginx -s reload: %v %s", err, out)
		}
	}
	return stop, reload
}

type result struct {
	sent, failed int
	served       int // including the warm-up's, for CPU per request
	cpu          time.Duration
	rps          float64
	p50, p99     time.Duration
	firstErr     string
}

func (r result) String() string {
	s := fmt.Sprintf("%8.0f req/s  p50 %.3f ms  p99 %.3f ms  %d requests, %d failed", r.rps, ms(r.p50), ms(r.p99), r.sent, r.failed)
	if r.cpu > 0 && r.served > 0 {
		s += fmt.Sprintf(", proxy CPU %.1f µs/request", float64(r.cpu.Microseconds())/float64(r.served))
	}
	if r.firstErr != "" {
		s += " (first: " + r.firstErr + ")"
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// load sends GETs alternating the two routes over conns keep-alive
// connections for d, calling every (if set) 10 times a second; it
// measures each request from send to the last byte of its body.
func load(addr string, conns int, d time.Duration, every func(int)) result {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}}
	// Warm the connections up so the run measures steady keep-alive.
	warm, cancelWarm := context.WithTimeout(context.Background(), 500*time.Millisecond)
	warmLat, _, _ := loadRun(warm, c, addr, conns)
	cancelWarm()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var swapper sync.WaitGroup
	if every != nil {
		swapper.Go(func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for i := 1; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					every(i)
				}
			}
		})
	}
	start := time.Now()
	lat, failed, firstErr := loadRun(ctx, c, addr, conns)
	elapsed := time.Since(start)
	swapper.Wait()
	c.CloseIdleConnections()
	slices.Sort(lat)
	r := result{sent: len(lat) + failed, failed: failed, served: len(warmLat) + len(lat), rps: float64(len(lat)) / elapsed.Seconds(), firstErr: firstErr}
	if len(lat) > 0 {
		r.p50 = lat[rank(len(lat), 50)]
		r.p99 = lat[rank(len(lat), 99)]
	}
	return r
}

func rank(n int, p float64) int { return min(max(int(math.Ceil(p/100*float64(n))), 1), n) - 1 }

func loadRun(ctx context.Context, c *http.Client, addr string, conns int) (lat []time.Duration, failed int, firstErr string) {
	var mu sync.Mutex
	var nfail atomic.Int64
	var wg sync.WaitGroup
	urls := []struct{ url, host string }{{"http://" + addr + "/index.html", "a.example.com"}, {"http://" + addr + "/api/items", "b.example.com"}}
	for w := range conns {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 1<<16)
			reqs := make([]*http.Request, len(urls))
			for i, u := range urls {
				reqs[i], _ = http.NewRequest("GET", u.url, nil)
				reqs[i].Host = u.host
			}
			for i := w; ctx.Err() == nil; i++ {
				t0 := time.Now()
				resp, err := c.Do(reqs[i%2])
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					if ctx.Err() != nil {
						break // the run ended mid-request: not a failure
					}
					if nfail.Add(1) == 1 {
						mu.Lock()
						firstErr = err.Error()
						mu.Unlock()
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return lat, int(nfail.Load()), firstErr
}

// cpuOf is the user + system CPU of an exited process and the children it waited for.
func cpuOf(cmd *exec.Cmd) time.Duration {
	if cmd.ProcessState == nil {
		return 0
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(name), &n); err != nil || n <= 0 {
		return def
	}
	return n
}

func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
