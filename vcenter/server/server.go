// Package server is vcenter's HTTP layer: routes, authentication,
// decoding and the relays to host agents. Every write goes through
// vcenter/inventory; the server also runs the gossip member that tells
// connected hosts from failed ones and the controllers.
package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/internal/gossip"
	"github.com/podsphere/podsphere/internal/hads"
	"github.com/podsphere/podsphere/vcenter/controllers"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/membership"
	"github.com/podsphere/podsphere/vcenter/store"
)

// Version is podsphere's version, reported by `psc about`.
const Version = "0.1.0"

// Config is everything `podsphere vcenter` is started with.
type Config struct {
	DataDir string
	Listen  string // HTTP API, 127.0.0.1:8989
	Gossip  string // memberlist bind, 127.0.0.1:7946
	Timings gossip.Timings
	Logger  *log.Logger
	// Now is the clock; tests inject one. Defaults to time.Now.
	Now func() time.Time
	// LogRetention is how many changes the store keeps for watchers that
	// resume from an old revision (0 = store.DefaultLogRetention).
	LogRetention int
	// HADatastores are the roots of vSphere HA's heartbeat datastores
	// (--ha-datastore, directories every host mounts); with none, HA
	// restarts a silent host's VMs only after its self-fencing time.
	HADatastores []string
	// HATimings are HA's figures (zero: ha.DefaultTimings()); tests
	// shorten them.
	HATimings ha.Timings
	// HAObserve, when set, is told the cost of each HA pass that took a
	// snapshot (benchmarks).
	HAObserve func(controllers.HAPass)
}

// Server is a running vcenter.
type Server struct {
	cfg        Config
	log        *log.Logger
	now        func() time.Time
	inv        *inventory.Inventory
	store      *store.Store // inv's store, for reads and watches
	adminToken string
	joinToken  string
	member     *membership.Member
	listener   net.Listener
	http       *http.Server
	library    string // directory of Content Library archives
	// libMu orders the Content Library's file changes with the inventory
	// writes that point at them (import, delete), so one request never
	// removes a file another has just committed.
	libMu sync.Mutex

	controllers *controllers.Runner
	ha          *controllers.HA
	ctrlStop    context.CancelFunc
	ctrlDone    *sync.WaitGroup

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New opens the inventory in cfg.DataDir (creating tokens on first start).
// Call Serve to start answering.
func New(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("--data-dir is required: %w", api.ErrInvalid)
	}
	if cfg.Logger == nil {
		cfg.Logger = log.New(os.Stderr, "vcenter: ", log.LstdFlags)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timings == (gossip.Timings{}) {
		cfg.Timings = gossip.DefaultTimings()
	}
	for _, root := range cfg.HADatastores {
		if err := hads.CheckRoot(root); err != nil {
			return nil, fmt.Errorf("--ha-datastore: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %v: %w", cfg.DataDir, err, api.ErrUnavailable)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, stop: make(chan struct{}),
		library: filepath.Join(cfg.DataDir, "library")}
	var err error
	if s.adminToken, err = loadToken(filepath.Join(cfg.DataDir, "admin.token")); err != nil {
		return nil, err
	}
	if s.joinToken, err = loadToken(filepath.Join(cfg.DataDir, "join.token")); err != nil {
		return nil, err
	}
	inv, err := inventory.Open(filepath.Join(cfg.DataDir, "inventory"), inventory.Options{
		Logger: cfg.Logger, Now: cfg.Now, LogRetention: cfg.LogRetention, LibraryDir: s.library})
	if err != nil {
		return nil, err
	}
	s.inv, s.store = inv, inv.Store()
	s.controllers = controllers.New(inv, controllers.Options{Logger: cfg.Logger},
		controllers.NewReplicaSets(inv, nil, 0), controllers.NewDeployments(inv, nil),
		controllers.NewDaemonSets(inv, nil), controllers.NewJobs(inv, nil, 0), controllers.NewAutoscalers(inv, nil),
		controllers.NewEvacuation(inv, nil), controllers.NewEndpoints(inv), controllers.NewLoadBalancer(inv),
		controllers.NewIngressStatus(inv))
	s.sweepLibrary()
	return s, nil
}

// loadToken reads a bearer token, creating it (mode 0600) on first start.
func loadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		t := strings.TrimSpace(string(b))
		if len(t) < 16 {
			return "", fmt.Errorf("token file %s is too short to be a token: %w", path, api.ErrInvalid)
		}
		return t, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("token file %s: %v: %w", path, err, api.ErrUnavailable)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	t := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %v: %w", path, err, api.ErrUnavailable)
	}
	return t, nil
}

// Serve binds the API and gossip ports and starts background loops. It
// returns once both are listening.
func (s *Server) Serve() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %v: %w", s.cfg.Listen, err, api.ErrUnavailable)
	}
	s.listener = ln
	if s.cfg.Gossip != "" {
		m, err := membership.Start("vcenter", s.cfg.Gossip, s.joinToken, s.cfg.Timings, s, s.log)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--gossip %s: %w", s.cfg.Gossip, err)
		}
		s.member = m
	}
	s.http = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	s.ctrlStop, s.ctrlDone = cancel, s.controllers.Start(ctx)
	s.ha = s.newHA()
	s.ctrlDone.Add(1)
	go func() {
		defer s.ctrlDone.Done()
		s.ha.Run(ctx)
	}()
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Printf("http: %v", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		if s.member != nil {
			s.rejoinHosts()
		}
		s.hostLoop()
	}()
	return nil
}

// Addr is the API's bound address.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// GossipAddr is the memberlist bound address.
func (s *Server) GossipAddr() string {
	if s.member == nil {
		return ""
	}
	return s.member.Addr()
}

// AdminToken and JoinToken are the bearer tokens in the data dir.
func (s *Server) AdminToken() string { return s.adminToken }
func (s *Server) JoinToken() string  { return s.joinToken }

// Close stops serving and closes the inventory. Calling it again is a no-op.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		if s.http != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = s.http.Shutdown(ctx)
			cancel()
		}
		if s.member != nil {
			_ = s.member.Close()
		}
		if s.ctrlStop != nil {
			s.ctrlStop()
			s.ctrlDone.Wait()
		}
		s.wg.Wait()
		s.closeErr = s.inv.Close()
	})
	return s.closeErr
}

// role is what a bearer token may do.
type role int

const (
	roleNone  role = iota
	roleHost       // join token: register hosts, read, watch, report status
	roleAdmin      // admin token: everything
)

func (s *Server) roleOf(r *http.Request) role {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return roleNone
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.adminToken)) == 1 {
		return roleAdmin
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.joinToken)) == 1 {
		return roleHost
	}
	return roleNone
}

// Inventory is the write path, for controllers and tests.
func (s *Server) Inventory() *inventory.Inventory { return s.inv }

// HostAlive is memberlist telling us a host gossips (joined or came back).
func (s *Server) HostAlive(name, addr string) { s.inv.SetConnection(name, true) }

// HostFailed is memberlist declaring a host dead or gone.
func (s *Server) HostFailed(name string) { s.inv.SetConnection(name, false) }

// hostLoop records lastSeen of live hosts every LastSeenInterval. It also
// catches hosts the inventory calls connected that gossip never reported
// after a vcenter restart: once the detection bound has passed since start,
// such a host is notResponding.
func (s *Server) hostLoop() {
	if s.member == nil {
		return
	}
	every := s.cfg.Timings.LastSeenInterval
	if every <= 0 {
		every = time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	start := s.now()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		alive := map[string]bool{}
		for _, p := range s.member.Alive() {
			alive[p] = true
		}
		stale, err := s.inv.RecordLastSeen(alive)
		if err != nil {
			s.log.Printf("recording lastSeen: %v", err)
		}
		if s.now().Sub(start) > 2*s.cfg.Timings.DetectionBound(len(alive)+1) {
			for _, p := range stale {
				s.inv.SetConnection(p, false)
			}
		}
	}
}

// newHA makes vSphere HA's controller: gossip's alive set is its first
// word on hosts, and after a start it gives gossip twice the detection
// bound to hear from every host again before it trusts a silence.
func (s *Server) newHA() *controllers.HA {
	opt := controllers.HAOptions{Datastores: s.cfg.HADatastores, Timings: s.cfg.HATimings, Logger: s.log, Observe: s.cfg.HAObserve}
	if s.member != nil {
		opt.Alive = s.member.Alive
		opt.Grace = 2 * s.cfg.Timings.DetectionBound(len(s.inv.HostAddresses())+1)
	}
	return controllers.NewHA(s.inv, opt)
}

// HA is vSphere HA's controller, for tests.
func (s *Server) HA() *controllers.HA { return s.ha }

// rejoinHosts asks gossip to contact every host the inventory knows, so a
// restarted vcenter finds its hosts again without waiting for them.
func (s *Server) rejoinHosts() {
	addrs := s.inv.HostAddresses()
	if len(addrs) == 0 {
		return
	}
	if n, err := s.member.Join(addrs); err != nil && n == 0 {
		s.log.Printf("rejoining %d known hosts: %v (they will rejoin on their own)", len(addrs), err)
	}
}
