// Package lab builds and tears down a podsphere datacenter on one machine:
// a vcenter and N host agents, each in its own network namespace, joined by
// a management bridge that lives in a namespace of its own. The machine's
// root network namespace is never reconfigured: the lab adds processes, one
// loopback listener (a TCP forwarder to vcenter) and files under its
// directory, nothing else. Everything it makes is recorded in
// DIR/state.json as it is made, and everything it names carries the lab's
// prefix, so Down can undo a half-built or crashed lab.
package lab

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/podsphere/podsphere/api"
)

// LoadBalancerAddresses are c1's addresses for LoadBalancer Services and
// the Ingress: on the management network, above the hosts' .11-.109, so
// the lab's other namespaces reach them out of the box.
const LoadBalancerAddresses = "10.99.0.200-10.99.0.239"

// Defaults, in one place.
const (
	DefaultPrefix  = "psl"          // names the lab's netns and containerd namespaces: psl-mgmt, psl-esx-01
	DefaultHosts   = 3              // hosts `lab up` starts unless told otherwise
	MaxHosts       = 99             // esx-01..esx-99; addresses .11-.109 fit the /24
	MgmtSubnet     = "10.99.0.0/24" // management network; exists only inside the lab's namespaces
	VCenterAddr    = "10.99.0.2"    // vcenter's management address
	FirstHostOctet = 11             // esx-01 is 10.99.0.11
	APIPort        = 8989           // vcenter's HTTP API
	GossipPort     = 7946           // memberlist, vcenter and hosts
	AgentPort      = 8990           // each host agent's own API (logs, exec, GET /vms)
	Datacenter     = "dc1"          // inventory the lab creates
	Cluster        = "c1"           //
	ImageName      = "busybox"      // Content Library item the lab imports
	ImageRef       = "docker.io/library/busybox:latest"
	SystemSocket   = "/run/containerd/containerd.sock" // used when it answers
	BridgeName     = "mgmt0"                           // the management bridge, inside <prefix>-mgmt
	HostIfName     = "mgmt0"                           // each host's and vcenter's NIC on the management network

	UpTimeout       = 90 * time.Second // hosts joining and the image import, on a slow CI machine
	StopGrace       = 10 * time.Second // SIGTERM to SIGKILL for the lab's daemons
	ContainerdStart = 20 * time.Second // a private containerd answering on its socket
)

// DefaultDir is where a lab lives unless --dir says otherwise.
func DefaultDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/podsphere-lab"
	}
	return "/tmp/podsphere-lab"
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)

// Options says what lab to build or tear down.
type Options struct {
	Dir    string // the lab's directory; DefaultDir() when empty
	Prefix string // DefaultPrefix when empty; [a-z][a-z0-9]{0,7} so interface names fit 15 bytes
	Hosts  int    // DefaultHosts when 0

	// Runtime is the host agents' runtime: "containerd" (default) or "sim".
	Runtime string
	// ContainerdSocket is the machine's containerd; SystemSocket when empty.
	ContainerdSocket string
	// PrivateContainerd starts the lab's own containerd even if the machine's answers.
	PrivateContainerd bool
	// HostCPU and HostMem override the capacity each host reports (MHz, MB); 0 = measured.
	HostCPU, HostMem int64

	// Binary is the podsphere executable the daemons run; the current one when empty.
	Binary string
	// Keep leaves a failed `up` in place for inspection instead of tearing it down.
	Keep bool

	Out io.Writer // progress and status; os.Stdout when nil
}

func (o *Options) complete() error {
	if o.Dir == "" {
		o.Dir = DefaultDir()
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	o.Dir = abs
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(o.Prefix) {
		return fmt.Errorf("lab prefix %q: want a lowercase letter then up to 7 letters or digits: %w", o.Prefix, api.ErrInvalid)
	}
	if o.Hosts == 0 {
		o.Hosts = DefaultHosts
	}
	if o.Hosts < 1 || o.Hosts > MaxHosts {
		return fmt.Errorf("--hosts %d: want 1..%d: %w", o.Hosts, MaxHosts, api.ErrInvalid)
	}
	switch o.Runtime {
	case "":
		o.Runtime = "containerd"
	case "containerd", "sim":
	default:
		return fmt.Errorf("--runtime %q: want containerd or sim: %w", o.Runtime, api.ErrInvalid)
	}
	if o.ContainerdSocket == "" {
		o.ContainerdSocket = SystemSocket
	}
	if o.Binary == "" {
		if o.Binary, err = os.Executable(); err != nil {
			return fmt.Errorf("find the podsphere binary: %w", err)
		}
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	return nil
}

// ErrNotRoot: the lab creates network namespaces, bridges and cgroups.
var ErrNotRoot = errors.New("the lab needs root (it creates network namespaces, veths, bridges and cgroups)")

func requireRoot() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	return nil
}

// Names of the lab's objects, all carrying the prefix.
func mgmtNS(prefix string) string               { return prefix + "-mgmt" }
func vcNS(prefix string) string                 { return prefix + "-vc" }
func hostName(i int) string                     { return fmt.Sprintf("esx-%02d", i) }
func hostNS(prefix string, i int) string        { return prefix + "-" + hostName(i) }
func ctrdNamespace(prefix string, i int) string { return prefix + "-" + hostName(i) }

// hostAddr is host i's (1-based) management address.
func hostAddr(i int) string {
	a := netip.MustParsePrefix(MgmtSubnet).Addr().As4()
	a[3] = byte(FirstHostOctet + i - 1)
	return netip.AddrFrom4(a).String()
}

func clusterPath() string { return "/" + Datacenter + "/host/" + Cluster }
