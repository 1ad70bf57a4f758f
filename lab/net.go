package lab

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/podsphere/podsphere/host/network"
)

// ipIn runs `ip -n NS ARGS...`; the command acts inside that namespace only.
func ipIn(ns string, args ...string) error {
	full := append([]string{"-n", ns}, args...)
	if out, err := exec.Command("ip", full...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(full, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// createNetNS records the namespace, then creates it: a crash in between
// leaves a record of something absent, which down tolerates.
func (s *State) createNetNS(name string) error {
	if err := s.addNetNS(name); err != nil {
		return err
	}
	_, err := network.CreateNamedNetNS(name)
	return err
}

// createMgmt makes the management namespace and its bridge.
func (s *State) createMgmt() error {
	ns := mgmtNS(s.Prefix)
	if err := s.createNetNS(ns); err != nil {
		return err
	}
	if err := ipIn(ns, "link", "add", BridgeName, "type", "bridge"); err != nil {
		return err
	}
	return ipIn(ns, "link", "set", BridgeName, "up")
}

// attach creates namespace ns and plugs it into the management bridge with
// addr: a veth pair made inside the management namespace whose far end is
// moved straight into ns, so the root namespace never holds either end.
func (s *State) attach(ns, port, addr string) error {
	if err := s.createNetNS(ns); err != nil {
		return err
	}
	mgmt := mgmtNS(s.Prefix)
	bits := netip.MustParsePrefix(MgmtSubnet).Bits()
	steps := [][]string{
		{mgmt, "link", "add", port, "type", "veth", "peer", "name", HostIfName, "netns", ns},
		{mgmt, "link", "set", port, "master", BridgeName},
		{mgmt, "link", "set", port, "up"},
		{ns, "addr", "add", fmt.Sprintf("%s/%d", addr, bits), "dev", HostIfName},
		{ns, "link", "set", HostIfName, "up"},
	}
	for _, st := range steps {
		if err := ipIn(st[0], st[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// labNetNS lists the pinned namespaces whose names carry the lab's prefix.
func labNetNS(prefix string) []string {
	entries, _ := os.ReadDir(network.NetNSDir)
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix+"-") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

func netNSExists(name string) bool {
	_, err := os.Stat(filepath.Join(network.NetNSDir, name))
	return err == nil
}

// ClientNetNS is the namespace of the lab at dir from which a client
// outside the hosts reaches them on the management network: vcenter's
// (10.99.0.2), the only address there that is no host's. ha.drill sends
// its requests through a Service from it.
func ClientNetNS(dir string) (string, error) {
	s, err := LoadState(dir)
	if err != nil {
		return "", err
	}
	if s == nil {
		return "", fmt.Errorf("no lab in %s (podsphere lab up --dir %s)", dir, dir)
	}
	path := filepath.Join(network.NetNSDir, vcNS(s.Prefix))
	if !netNSExists(vcNS(s.Prefix)) {
		return "", fmt.Errorf("the lab's namespace %s is gone (podsphere lab status --dir %s)", vcNS(s.Prefix), dir)
	}
	return path, nil
}
