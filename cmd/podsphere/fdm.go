package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	ctrdriver "github.com/podsphere/podsphere/host/containerd"
	"github.com/podsphere/podsphere/host/fdm"
	"github.com/podsphere/podsphere/host/halock"
)

// haFlags are the host agent's HA settings: where its VMs' locks live.
type haFlags struct {
	datastores  []string
	selfFence   bool
	fenceBinary string
}

func (h *haFlags) register(f *pflag.FlagSet) {
	f.StringArrayVar(&h.datastores, "ha-datastore", nil, "HA heartbeat datastore: a directory every host of the cluster mounts (repeatable; the first holds the VM locks); VMs then run under the HA fence")
	f.BoolVar(&h.selfFence, "ha-self-fence", false, "HA without heartbeat datastore: VM locks in --state-dir, VMs fenced FenceTime after podsphere fdm stops renewing them")
	f.StringVar(&h.fenceBinary, "fence-binary", "", "the podsphere-fence executable (default: beside this executable)")
}

// locks are the agent's HA locks, nil when HA is not configured on the host.
func (h *haFlags) locks(host, stateDir string) (*halock.Locks, error) {
	if len(h.datastores) == 0 && !h.selfFence {
		return nil, nil
	}
	return halock.New(halock.Config{Host: host, Datastores: h.datastores, StateDir: stateDir, Timings: ha.DefaultTimings()})
}

// fence is the fence binary's path ("" without locks).
func (h *haFlags) fence(locks *halock.Locks) (string, error) {
	if locks == nil {
		return "", nil
	}
	if h.fenceBinary != "" {
		return filepath.Abs(h.fenceBinary)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding %s beside this executable: %v (give --fence-binary): %w", ctrdriver.FenceBinaryName, err, api.ErrInvalid)
	}
	return filepath.Join(filepath.Dir(exe), ctrdriver.FenceBinaryName), nil
}

func fdmCmd() *cobra.Command {
	var (
		cfg  fdm.Config
		rt   string
		ctrd containerdFlags
		// agentAPI is the sim agent's own API (its --listen).
		agentAPI string
	)
	cmd := &cobra.Command{
		Use:   "fdm",
		Short: "run the host's HA process: datastore heartbeats, VM locks, isolation response",
		Long: `fdm is the host's HA process, vSphere's FDM beside the agent's hostd. Run one per host,
beside 'podsphere host', with the same --name, --cluster, --vcenter, --join-token, --state-dir,
containerd flags and --ha-datastore. It keeps the host's heartbeat on each heartbeat datastore and
renews the lock of every VM the host runs, so the VMs keep running while the agent restarts; it
probes vcenter, the peer hosts and the isolation addresses, and applies the cluster's isolation
response when none answers. If it stops for longer than the lock lease (3 s; 6 s without
datastores), the VMs' fences stop them. Beside a --runtime sim agent, give --runtime sim and
--agent-api (the agent's --listen): the simulated VMs are read and stopped through the agent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrd.defaults(cfg.Name)
			cfg.StateDir = ctrd.stateDir
			cfg.Logger = log.New(os.Stderr, "fdm "+cfg.Name+": ", log.LstdFlags)
			cfg.Timings = ha.DefaultTimings()
			switch rt {
			case "containerd":
				vms, err := fdm.NewContainerd(ctrd.socket, ctrd.namespace)
				if err != nil {
					return err
				}
				defer vms.Close() // VMs keep running
				cfg.VMs = vms
			case "sim":
				if agentAPI != "" {
					cfg.VMs = fdm.NewSimAgentVMs(agentAPI, cfg.JoinToken)
					cfg.Logger.Printf("--runtime sim: the VMs live in the agent; read and stopped through its API at %s", agentAPI)
					break
				}
				cfg.VMs = fdm.NewSimVMs()
				cfg.Logger.Printf("--runtime sim: the VMs live in the agent; their state is taken from vcenter, and stopping one is only recorded (give --agent-api to stop them)")
			default:
				return fmt.Errorf("--runtime %q: want containerd or sim: %w", rt, api.ErrInvalid)
			}
			f, err := fdm.New(cfg)
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			return f.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", "", "host name, e.g. esx-01 (required; as given to podsphere host)")
	f.StringVar(&cfg.Cluster, "cluster", "", "cluster path, e.g. /dc1/host/c1 (required)")
	f.StringVar(&cfg.VCenter, "vcenter", "http://127.0.0.1:8989", "vcenter API URL")
	f.StringVar(&cfg.JoinToken, "join-token", os.Getenv("PODSPHERE_JOIN_TOKEN"), "join token from vcenter's DATA_DIR/join.token")
	f.StringArrayVar(&cfg.Datastores, "ha-datastore", nil, "HA heartbeat datastore directory (repeatable; as given to podsphere host; none: self-fencing)")
	f.StringArrayVar(&cfg.IsolationAddresses, "isolation-address", nil, "address probed before the host calls itself isolated, ADDR or ADDR:PORT (repeatable; overrides the cluster's; default: the default gateway; vcenter and the peers are always probed)")
	f.StringVar(&cfg.Address, "address", "", "this host's management IP, written into its heartbeat (default: the local address routing to vcenter)")
	f.StringVar(&rt, "runtime", "containerd", "the agent's VM runtime: containerd (VMs read and stopped in containerd) or sim (VMs as vcenter reports them)")
	f.StringVar(&agentAPI, "agent-api", "", "sim runtime: the agent's own API, its --listen ADDR:PORT: the VMs are read (GET /vms) and the isolation response stops them (POST /stop) there")
	ctrd.register(f)
	return cmd
}
