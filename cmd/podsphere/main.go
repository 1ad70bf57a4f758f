// Command podsphere runs podsphere's daemons: `podsphere vcenter` (the
// manager), `podsphere host` (the host agent, ESXi's analog) and
// `podsphere fdm` (the host's HA process, beside the agent).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/agent"
	ctrdriver "github.com/podsphere/podsphere/host/containerd"
	"github.com/podsphere/podsphere/host/halock"
	"github.com/podsphere/podsphere/host/ingress"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/host/runtime"
	"github.com/podsphere/podsphere/host/sim"
	"github.com/podsphere/podsphere/host/svcproxy"
	"github.com/podsphere/podsphere/internal/gossip"
	"github.com/podsphere/podsphere/vcenter/server"
)

func main() {
	root := &cobra.Command{Use: "podsphere", Short: "podsphere daemons: vcenter and host", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(vcenterCmd(), hostCmd(), fdmCmd())
	root.AddCommand(labCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "podsphere: %v\n", err)
		if errors.Is(err, api.ErrInvalid) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func vcenterCmd() *cobra.Command {
	var cfg server.Config
	cmd := &cobra.Command{
		Use:   "vcenter",
		Short: "run the manager: API, inventory, placement, membership",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = log.New(os.Stderr, "vcenter: ", log.LstdFlags)
			s, err := server.New(cfg)
			if err != nil {
				return err
			}
			if err := s.Serve(); err != nil {
				s.Close()
				return err
			}
			cfg.Logger.Printf("serving the API on http://%s, gossip on %s, data in %s", s.Addr(), s.GossipAddr(), cfg.DataDir)
			ctx, stop := signalContext()
			defer stop()
			<-ctx.Done()
			cfg.Logger.Printf("shutting down")
			return s.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for the inventory and the tokens (required)")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:8989", "address of the HTTP API")
	f.StringVar(&cfg.Gossip, "gossip", "127.0.0.1:7946", "address hosts gossip with (memberlist)")
	f.StringArrayVar(&cfg.HADatastores, "ha-datastore", nil, "vSphere HA heartbeat datastore: a directory every host mounts (repeatable; without one, HA waits for a silent host's self-fencing time)")
	return cmd
}

func hostCmd() *cobra.Command {
	var (
		cfg          agent.Config
		rt           string
		cpu          int64
		mem          int64
		simCIDR      string
		ctrd         containerdFlags
		status       time.Duration
		haf          haFlags
		ing          ingressFlags
		rules        bool
		rulesBackend string
		// announceIf is where load balancer addresses are answered for.
		announceIf string
	)
	cmd := &cobra.Command{
		Use:   "host",
		Short: "run a host agent that joins vcenter and runs the VMs placed on it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = log.New(os.Stderr, "host "+cfg.Name+": ", log.LstdFlags)
			cfg.Timings = gossip.DefaultTimings()
			if status > 0 {
				cfg.Timings.StatusInterval = status
			}
			cfg.CPUMHz, cfg.MemMB = cpu, mem
			ctrd.defaults(cfg.Name)
			locks, err := haf.locks(cfg.Cluster+"/"+cfg.Name, ctrd.stateDir)
			if err != nil {
				return err
			}
			cfg.Locks = locks
			var drv runtime.Runtime
			switch rt {
			case "sim":
				if cpu <= 0 || mem <= 0 {
					return fmt.Errorf("--runtime sim needs --cpu MHz and --mem MB: %w", api.ErrInvalid)
				}
				drv = sim.New(cpu, mem, simCIDR)
			case "containerd":
				fence, err := haf.fence(locks)
				if err != nil {
					return err
				}
				d, err := ctrd.driver(cfg.Name, cfg.VCenter, cfg.JoinToken, locks, fence)
				if err != nil {
					return err
				}
				defer d.Close() // containers keep running
				drv = d
				if cfg.APIListen == "" {
					host, _, err := net.SplitHostPort(cfg.GossipBind)
					if err != nil {
						return fmt.Errorf("--gossip-bind %q: %v: %w", cfg.GossipBind, err, api.ErrInvalid)
					}
					cfg.APIListen = net.JoinHostPort(host, "0")
				}
				// Real VM networking: this host carries the cluster's
				// Services in its packet filter (sim VMs have no packets).
				if rules {
					be, err := svcproxy.NewBackend(context.Background(), rulesBackend, "", cfg.Logger)
					if err != nil {
						return err
					}
					p, err := svcproxy.New(svcproxy.Config{Backend: be, ServiceRouteDev: svcproxy.ServiceDummy, Logger: cfg.Logger})
					if err != nil {
						return err
					}
					defer p.Close() // the rules stay: Services keep working while the agent restarts
					cfg.LB = append(cfg.LB, p)
				}
			default:
				return fmt.Errorf("--runtime %q: want sim or containerd: %w", rt, api.ErrInvalid)
			}
			cfg.Runtime = drv
			if err := ing.apply(&cfg, rt, ctrd.stateDir); err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			// The announcer lives and dies with the agent's process: a dead
			// agent answers for no load balancer address.
			ann, err := startAnnouncer(ctx, cfg.Logger, announceIf, cfg.GossipBind)
			if err != nil {
				return err
			}
			if ann != nil {
				cfg.LB = append(cfg.LB, ann)
			}
			a, err := agent.New(cfg)
			if err != nil {
				return err
			}
			return a.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", "", "host name, e.g. esx-01 (required)")
	f.StringVar(&cfg.Cluster, "cluster", "", "cluster path, e.g. /dc1/host/c1 (required)")
	f.StringVar(&cfg.VCenter, "vcenter", "http://127.0.0.1:8989", "vcenter API URL")
	f.StringSliceVar(&cfg.Join, "join", nil, "vcenter's gossip address(es)")
	f.StringVar(&cfg.JoinToken, "join-token", os.Getenv("PODSPHERE_JOIN_TOKEN"), "join token from vcenter's DATA_DIR/join.token")
	f.StringVar(&cfg.GossipBind, "gossip-bind", "127.0.0.1:0", "address this host gossips on")
	f.StringVar(&rt, "runtime", "sim", "VM runtime: sim or containerd")
	f.Int64Var(&cpu, "cpu", 0, "CPU capacity in MHz (0 = read from the machine)")
	f.Int64Var(&mem, "mem", 0, "memory capacity in MB (0 = read from the machine)")
	f.StringVar(&simCIDR, "sim-ip-prefix", "", "sim runtime: IP prefix for fake VM addresses")
	f.StringVar(&cfg.APIListen, "listen", "", "address of the agent's own API (logs, exec, metrics) for vcenter (default: the gossip IP, any port; containerd runtime)")
	f.StringVar(&announceIf, "announce-interface", "", "interface on the hosts' network where this host answers ARP for the load balancer addresses it holds (default: the one carrying --gossip-bind's address; none: answer for none)")
	f.DurationVar(&status, "status-interval", 0, "how often VM status and usage are re-checked and reported (default 10s)")
	f.BoolVar(&rules, "service-rules", true, "containerd runtime: carry the cluster's Services (cluster IPs, node ports, load balancer addresses) in this host's packet filter")
	f.StringVar(&rulesBackend, "service-rules-backend", svcproxy.BackendAuto, "service rules in nftables (table ip podsphere), iptables, or auto: nftables when the kernel's nf_tables works, else iptables")
	ctrd.register(f)
	haf.register(f)
	ing.register(f)
	return cmd
}

// ingressFlags configure the host's Ingress proxy.
type ingressFlags struct {
	listen, tlsListen, certDir string
	h2c                        bool
}

func (g *ingressFlags) register(f *pflag.FlagSet) {
	f.StringVar(&g.listen, "ingress-listen", "auto", "address of the Ingress proxy (auto: :80 with the containerd runtime, none with sim; off: no proxy)")
	f.StringVar(&g.tlsListen, "ingress-tls-listen", ":443", "address of the Ingress proxy's TLS listener, opened when --ingress-cert-dir holds certificates")
	f.StringVar(&g.certDir, "ingress-cert-dir", "", "directory of NAME.crt / NAME.key pairs, NAME an Ingress's tls[].secretName (default STATE_DIR/ingress-certs with containerd)")
	f.BoolVar(&g.h2c, "ingress-h2c", false, "let clients speak HTTP/2 without TLS to the Ingress proxy")
}

// apply sets the agent's proxy: sim hosts share the machine's network, so
// they run none unless an address is given.
func (g *ingressFlags) apply(cfg *agent.Config, rt, stateDir string) error {
	listen := g.listen
	switch listen {
	case "off", "":
		return nil
	case "auto":
		if rt != "containerd" {
			return nil
		}
		listen = ":80"
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return fmt.Errorf("--ingress-listen %q: %v: %w", listen, err, api.ErrInvalid)
	}
	certDir := g.certDir
	if certDir == "" && rt == "containerd" && stateDir != "" {
		certDir = filepath.Join(stateDir, "ingress-certs")
		if _, err := os.Stat(certDir); err != nil {
			certDir = "" // none made: no TLS
		}
	}
	cfg.Ingress = ingress.New(ingress.Options{CertDir: certDir})
	cfg.IngressListen = ingress.Listeners{HTTP: listen, H2C: g.h2c}
	if certDir != "" {
		cfg.IngressListen.HTTPS = g.tlsListen
	}
	return nil
}

// containerdFlags configure --runtime containerd.
type containerdFlags struct {
	socket, namespace, stateDir, cniBinDir string
}

func (c *containerdFlags) register(f *pflag.FlagSet) {
	f.StringVar(&c.socket, "containerd-socket", "/run/containerd/containerd.sock", "containerd runtime: containerd's socket")
	f.StringVar(&c.namespace, "containerd-namespace", "", "containerd runtime: namespace of this host's containers (default podsphere-<name>)")
	f.StringVar(&c.stateDir, "state-dir", "", "containerd runtime: state (exec FIFOs, CNI cache, IP leases, logs) (default /var/lib/podsphere/<name>)")
	f.StringVar(&c.cniBinDir, "cni-bin-dir", network.DefaultBinDir, "containerd runtime: CNI plugin directory")
}

// driver connects to containerd; the host network is built once vcenter has
// assigned the pod subnet, and images come from vcenter's Content Library.
func (c *containerdFlags) driver(name, vcenter, joinToken string, locks *halock.Locks, fence string) (*ctrdriver.Driver, error) {
	c.defaults(name)
	lib, err := ctrdriver.NewVCenterLibrary(vcenter, joinToken)
	if err != nil {
		return nil, err
	}
	return ctrdriver.New(ctrdriver.Config{
		Socket:    c.socket,
		Namespace: c.namespace,
		StateDir:  filepath.Join(c.stateDir, "containerd"),
		LogDir:    filepath.Join(c.stateDir, "logs"),
		Images:    lib,
		NetworkTemplate: &network.Config{
			BinDir:   c.cniBinDir,
			StateDir: filepath.Join(c.stateDir, "network"),
		},
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, nil)).With("host", name),
		Locks:       locks,
		FenceBinary: fence,
	})
}

// defaults fills the namespace and state directory the host's name implies.
func (c *containerdFlags) defaults(name string) {
	if c.namespace == "" {
		c.namespace = "podsphere-" + name
	}
	if c.stateDir == "" {
		c.stateDir = filepath.Join("/var/lib/podsphere", name)
	}
}
