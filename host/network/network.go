// Package network owns a host's VM networking: one Linux bridge per host with
// the host's pod subnet (CNI bridge + host-local IPAM + loopback, run through
// libcni), one pinned network namespace per VM, masquerade for traffic that
// leaves the cluster, and plain routes to the other hosts' pod subnets (the
// kubenet model: pod-to-pod traffic across hosts is routed, never NATed).
//
// Everything host-side happens inside Config.HostNetNS when it is set, so a
// lab can run many "hosts" as network namespaces of one machine.
package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/podsphere/podsphere/api"
)

// Defaults, in one place.
const (
	DefaultName        = "podsphere"    // CNI network name (cache and lease directories are keyed by it)
	DefaultBridge      = "ps0"          // bridge in the host netns; the gateway is the subnet's first address
	DefaultBinDir      = "/usr/lib/cni" // Debian's containernetworking-plugins
	DefaultStateDir    = "/var/lib/podsphere/network"
	DefaultNetNSPrefix = "ps-"            // VM netns are /run/netns/<prefix><vmID>
	DefaultIfName      = "eth0"           // the VM's interface
	DefaultMasqChain   = "PODSPHERE-MASQ" // nat chain holding the masquerade exceptions
	cniVersion         = "1.0.0"          // highest version the Debian 12 plugins (1.1.1) speak
)

// Config describes one host's network.
type Config struct {
	// Subnet is the host's pod subnet, e.g. 10.244.1.0/24; the bridge gets its first address.
	Subnet string
	// ClusterCIDR, when set, is never masqueraded (pod-to-pod across hosts); peer subnets never are either.
	ClusterCIDR string
	Name        string // CNI network name; default DefaultName
	Bridge      string // default DefaultBridge
	BinDir      string // CNI plugin directory; default DefaultBinDir
	// StateDir holds the libcni cache (StateDir/cache) and the host-local leases (StateDir/ipam).
	StateDir string
	// HostNetNS is the path of the network namespace the host lives in ("" = the agent's own).
	HostNetNS string
	// NetNSPrefix names the VMs' pinned netns; default DefaultNetNSPrefix.
	NetNSPrefix string
	MTU         int // 0 lets the bridge plugin choose
	// MasqChain is the nat chain this network owns; default DefaultMasqChain.
	MasqChain string
}

// Network sets up and tears down VM networking on one host.
type Network struct {
	cfg    Config
	subnet *net.IPNet
	cni    *libcni.CNIConfig
	list   *libcni.NetworkConfigList

	mu          sync.Mutex
	peers       []Peer // last SetPeerRoutes, for the masquerade exceptions
	masqApplied string // exemptions last written to the masquerade chain
}

// New validates cfg and prepares the CNI configuration; it changes nothing on the host.
func New(cfg Config) (*Network, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.BinDir == "" {
		cfg.BinDir = DefaultBinDir
	}
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	if cfg.NetNSPrefix == "" {
		cfg.NetNSPrefix = DefaultNetNSPrefix
	}
	if cfg.MasqChain == "" {
		cfg.MasqChain = DefaultMasqChain
	}
	_, subnet, err := net.ParseCIDR(cfg.Subnet)
	if err != nil || subnet.IP.To4() == nil {
		return nil, fmt.Errorf("network: pod subnet %q: %w", cfg.Subnet, api.ErrInvalid)
	}
	if cfg.ClusterCIDR != "" {
		if _, _, err := net.ParseCIDR(cfg.ClusterCIDR); err != nil {
			return nil, fmt.Errorf("network: cluster CIDR %q: %w", cfg.ClusterCIDR, api.ErrInvalid)
		}
	}
	if cfg.HostNetNS != "" {
		if _, err := os.Stat(cfg.HostNetNS); err != nil {
			return nil, fmt.Errorf("network: host netns %q: %w", cfg.HostNetNS, api.ErrNotFound)
		}
	}
	n := &Network{cfg: cfg, subnet: subnet}
	raw, err := n.confList()
	if err != nil {
		return nil, err
	}
	if n.list, err = libcni.ConfListFromBytes(raw); err != nil {
		return nil, fmt.Errorf("network: CNI config: %w", err)
	}
	exec := &hostExec{
		DefaultExec: invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}},
		netns:       cfg.HostNetNS,
	}
	n.cni = libcni.NewCNIConfigWithCacheDir([]string{cfg.BinDir}, filepath.Join(cfg.StateDir, "cache"), exec)
	return n, nil
}

// Config returns the configuration with defaults filled in.
func (n *Network) Config() Config { return n.cfg }

// Gateway is the bridge's address, the VMs' default gateway.
func (n *Network) Gateway() net.IP {
	ip := append(net.IP(nil), n.subnet.IP.To4()...)
	ip[3]++
	return ip
}

func (n *Network) confList() ([]byte, error) {
	bridge := map[string]any{
		"type":        "bridge",
		"bridge":      n.cfg.Bridge,
		"isGateway":   true,
		"ipMasq":      false, // our own chain masquerades, sparing pod-to-pod traffic
		"hairpinMode": true,  // a VM reaches itself through a Service VIP
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  [][]map[string]string{{{"subnet": n.subnet.String(), "gateway": n.Gateway().String()}}},
			"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			"dataDir": filepath.Join(n.cfg.StateDir, "ipam"),
		},
	}
	if n.cfg.MTU > 0 {
		bridge["mtu"] = n.cfg.MTU
	}
	return json.Marshal(map[string]any{
		"cniVersion": cniVersion,
		"name":       n.cfg.Name,
		"plugins":    []any{bridge, map[string]any{"type": "loopback"}},
	})
}

func (n *Network) runtimeConf(vmID, netnsPath string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: vmID, NetNS: netnsPath, IfName: DefaultIfName}
}

// Setup attaches the VM's netns to the host bridge and returns its IP. It is
// idempotent: a VM already attached gets its address back unchanged.
func (n *Network) Setup(ctx context.Context, vmID, netnsPath string) (string, error) {
	if vmID == "" || netnsPath == "" {
		return "", fmt.Errorf("network: setup needs a VM id and a netns: %w", api.ErrInvalid)
	}
	if err := n.ensureMasquerade(); err != nil {
		return "", err
	}
	rt := n.runtimeConf(vmID, netnsPath)
	if res, err := n.cni.GetNetworkListCachedResult(n.list, rt); err == nil && res != nil {
		if ip := ResultIP(res); ip != "" && n.cni.CheckNetworkList(ctx, n.list, rt) == nil {
			return ip, nil
		}
		// A half-made attachment: release it and start again.
		_ = n.cni.DelNetworkList(ctx, n.list, rt)
	}
	res, err := n.cni.AddNetworkList(ctx, n.list, rt)
	if err != nil {
		_ = n.cni.DelNetworkList(context.WithoutCancel(ctx), n.list, rt)
		return "", fmt.Errorf("network: attach VM %s: %w", vmID, err)
	}
	ip := ResultIP(res)
	if ip == "" {
		_ = n.cni.DelNetworkList(context.WithoutCancel(ctx), n.list, rt)
		return "", fmt.Errorf("network: attach VM %s: CNI result has no IPv4 address", vmID)
	}
	return ip, nil
}

// Check verifies that the VM's attachment is still as CNI made it.
func (n *Network) Check(ctx context.Context, vmID, netnsPath string) error {
	return n.cni.CheckNetworkList(ctx, n.list, n.runtimeConf(vmID, netnsPath))
}

// IP returns the address Setup gave the VM, from the CNI cache, or "".
func (n *Network) IP(vmID string) string {
	res, err := n.cni.GetNetworkListCachedResult(n.list, n.runtimeConf(vmID, n.NetNSPath(vmID)))
	if err != nil || res == nil {
		return ""
	}
	return ResultIP(res)
}

// Teardown detaches the VM and releases its IP lease. Repeating it, or
// calling it for a VM that was never attached, is not an error.
func (n *Network) Teardown(ctx context.Context, vmID, netnsPath string) error {
	if netnsPath != "" {
		if _, err := os.Stat(netnsPath); err != nil {
			netnsPath = "" // the plugins then only release the lease
		}
	}
	if err := n.cni.DelNetworkList(ctx, n.list, n.runtimeConf(vmID, netnsPath)); err != nil {
		return fmt.Errorf("network: detach VM %s: %w", vmID, err)
	}
	return nil
}

// Leases lists the addresses host-local has handed out, for leak checks.
func (n *Network) Leases() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(n.cfg.StateDir, "ipam", n.cfg.Name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			ips = append(ips, e.Name())
		}
	}
	return ips, nil
}

// ResultIP is the first IPv4 address of a CNI result ("" if none).
func ResultIP(res types.Result) string {
	r, err := current.NewResultFromResult(res)
	if err != nil {
		return ""
	}
	for _, ip := range r.IPs {
		if ip.Address.IP.To4() != nil {
			return ip.Address.IP.String()
		}
	}
	return ""
}

// hostExec runs CNI plugins inside the host's netns, where the bridge lives.
type hostExec struct {
	invoke.DefaultExec
	netns string
}

func (e *hostExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	var out []byte
	err := InNetNS(e.netns, func() error {
		var err error
		out, err = e.DefaultExec.ExecPlugin(ctx, pluginPath, stdin, environ)
		return err
	})
	return out, err
}
