package containerd

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/runtime"
	"github.com/podsphere/podsphere/lb"
)

// A VM's name service: every VM gets its own /etc/resolv.conf and
// /etc/hosts, written into the VM's state directory and bind-mounted into
// each of its containers (the CRI's sandbox files, the kubelet's way).
// Bind-mounting rather than writing into the rootfs: the VM's containers
// share one file each, the image's own files are left alone, a container
// with a read-only root file system gets them too, and removing the VM's
// state directory removes them.

// Defaults, in one place.
const (
	DefaultHostResolvConf = "/etc/resolv.conf" // what dnsPolicy Default copies
	// DefaultNdots is Kubernetes' ndots: a name with fewer than 5 dots is
	// tried against the search path first, so `my-nginx.datagrand` finds
	// my-nginx.datagrand.svc.cluster.local before going out.
	DefaultNdots = 5
	dnsDirName   = "dns" // StateDir/dns/<vmID>/{resolv.conf,hosts}
)

// SetClusterDomain sets the domain of the search path in the resolv.conf
// of the VMs created from now on ("" = cluster.local). The agent sets it
// from the cluster's configuration before it creates VMs, and again when
// it changes; running VMs keep theirs until they are recreated, as Pods
// keep their resolv.conf in Kubernetes.
func (d *Driver) SetClusterDomain(domain string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clusterDomain = lb.ClusterDomain(api.ClusterSpec{ClusterDomain: domain})
}

func (d *Driver) domain() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.clusterDomain == "" {
		return lb.DefaultClusterDomain
	}
	return d.clusterDomain
}

// Nameserver is the address VMs' resolv.conf names under dnsPolicy
// ClusterFirst: the host's resolver on the VM bridge's gateway; "" before
// the host network exists.
func (d *Driver) Nameserver() string {
	if n := d.network(); n != nil {
		return n.Gateway().String()
	}
	return ""
}

func (d *Driver) dnsDir(vmID string) string {
	return filepath.Join(d.cfg.StateDir, dnsDirName, vmID)
}

// writeDNSFiles writes the VM's resolv.conf and hosts and returns the
// mounts that put them in a container. A VM without a network (no pod
// subnet yet) gets none: no resolver reaches it, and it keeps the image's.
func (d *Driver) writeDNSFiles(spec runtime.VMSpec, ip string) (map[string]string, error) {
	ns := d.Nameserver()
	if ns == "" || ip == "" {
		return nil, nil
	}
	var host []byte
	if spec.DNSPolicy == api.DNSDefault {
		host, _ = os.ReadFile(d.hostResolvConf()) // unreadable: an empty one, dnsConfig may fill it
	}
	ref, _ := api.ParsePath(spec.Path)
	files := map[string]string{
		"/etc/resolv.conf": ResolvConf(spec.DNSPolicy, spec.DNSConfig, ns, lb.SearchPath(ref.Namespace, d.domain()), host),
		"/etc/hosts":       HostsFile(ip, hostname(spec), vmLabel(spec)),
	}
	dir := d.dnsDir(spec.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("containerd: VM %s: %w", spec.ID, err)
	}
	mounts := map[string]string{}
	for dst, content := range files {
		src := filepath.Join(dir, filepath.Base(dst))
		// Renamed into place: a container of the old spec (Recreate) is gone
		// by now, and no reader ever sees half a file.
		tmp := src + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("containerd: VM %s: %w", spec.ID, err)
		}
		if err := os.Rename(tmp, src); err != nil {
			return nil, fmt.Errorf("containerd: VM %s: %w", spec.ID, err)
		}
		mounts[dst] = src
	}
	return mounts, nil
}

func (d *Driver) hostResolvConf() string {
	if d.cfg.HostResolvConf != "" {
		return d.cfg.HostResolvConf
	}
	return DefaultHostResolvConf
}

// dnsMounts are the bind mounts of a VM's DNS files, read-only in a
// container whose root file system is.
func dnsMounts(files map[string]string, readOnly bool) []specs.Mount {
	mode := "rw"
	if readOnly {
		mode = "ro"
	}
	dsts := make([]string, 0, len(files))
	for dst := range files {
		dsts = append(dsts, dst)
	}
	slices.Sort(dsts)
	var out []specs.Mount
	for _, dst := range dsts {
		out = append(out, specs.Mount{Destination: dst, Type: "bind", Source: files[dst], Options: []string{"rbind", mode}})
	}
	return out
}

// vmLabel is the VM's inventory name made a DNS label ("" if it is one
// only after changes hostname already made).
func vmLabel(spec runtime.VMSpec) string {
	return hostname(runtime.VMSpec{ID: spec.ID, Path: spec.Path})
}

// ResolvConf is a VM's resolv.conf under policy (api.DNS*; "" is
// ClusterFirst), as the kubelet builds it:
//   - ClusterFirst: nameserver, the cluster search path, ndots:5;
//   - Default: the host's resolv.conf (host), without loopback
//     nameservers, which a VM cannot reach;
//   - None: nothing but cfg.
//
// cfg's nameservers and searches are appended (duplicates dropped,
// nameservers capped at resolv.conf's 3), its options replace those of
// the same name.
func ResolvConf(policy string, cfg *api.PodDNSConfig, nameserver string, search []string, host []byte) string {
	var servers, searches []string
	var options []api.PodDNSConfigOption
	switch policy {
	case "", api.DNSClusterFirst:
		servers, searches = []string{nameserver}, slices.Clone(search)
		ndots := fmt.Sprint(DefaultNdots)
		options = []api.PodDNSConfigOption{{Name: "ndots", Value: &ndots}}
	case api.DNSDefault:
		servers, searches, options = parseResolvConf(host)
	}
	if cfg != nil {
		servers = append(servers, cfg.Nameservers...)
		searches = append(searches, cfg.Searches...)
		for _, o := range cfg.Options {
			if i := slices.IndexFunc(options, func(p api.PodDNSConfigOption) bool { return p.Name == o.Name }); i >= 0 {
				options[i] = o
			} else {
				options = append(options, o)
			}
		}
	}
	servers = dedup(servers)
	if len(servers) > api.MaxDNSNameservers {
		servers = servers[:api.MaxDNSNameservers]
	}
	var b strings.Builder
	b.WriteString("# written by podsphere for this VM (dnsPolicy " + cmp.Or(policy, api.DNSClusterFirst) + ")\n")
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if s := dedup(searches); len(s) > 0 {
		b.WriteString("search " + strings.Join(s, " ") + "\n")
	}
	if len(options) > 0 {
		b.WriteString("options")
		for _, o := range options {
			b.WriteString(" " + o.Name)
			if o.Value != nil {
				b.WriteString(":" + *o.Value)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// parseResolvConf reads the lines ResolvConf keeps of a host's resolv.conf.
func parseResolvConf(raw []byte) (servers, searches []string, options []api.PodDNSConfigOption) {
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if ip, err := netip.ParseAddr(f[1]); err == nil && !ip.IsLoopback() {
				servers = append(servers, f[1])
			}
		case "search", "domain":
			searches = f[1:] // the last one wins, as in the resolver
		case "options":
			options = nil
			for _, o := range f[1:] {
				name, value, ok := strings.Cut(o, ":")
				opt := api.PodDNSConfigOption{Name: name}
				if ok {
					opt.Value = &value
				}
				options = append(options, opt)
			}
		}
	}
	return servers, searches, options
}

// HostsFile is a VM's /etc/hosts: localhost, and its own names on its
// address (its host name, and its inventory name when that differs).
func HostsFile(ip, hostname, vmName string) string {
	names := hostname
	if vmName != "" && vmName != hostname {
		names += " " + vmName
	}
	return "# written by podsphere for this VM\n" +
		"127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"fe00::0\tip6-mcastprefix\n" +
		"fe00::1\tip6-allnodes\n" +
		"fe00::2\tip6-allrouters\n" +
		ip + "\t" + names + "\n"
}

func dedup(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
