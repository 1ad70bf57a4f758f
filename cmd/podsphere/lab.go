package main

import (
	"log"
	"os"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/lab"
)

// labCmd is `podsphere lab up|status|down` (and the lab's internal `proxy`).
func labCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "a datacenter on this machine: vcenter and hosts in network namespaces",
		Long: `The lab builds a vcenter and N hosts on this machine, each in its own
network namespace, joined by a management bridge in a namespace of its own.
It never changes the root namespace's addresses, routes or iptables rules:
psc reaches vcenter through a loopback forwarder. See docs/lab.md.`,
	}
	var opts lab.Options
	pf := cmd.PersistentFlags()
	pf.StringVar(&opts.Dir, "dir", lab.DefaultDir(), "the lab's directory: state, logs, env, datastore, vcenter data")
	pf.StringVar(&opts.Prefix, "prefix", lab.DefaultPrefix, "name prefix of the lab's network and containerd namespaces (down: used when DIR/state.json is gone)")

	up := &cobra.Command{
		Use:   "up",
		Short: "build the lab: namespaces, vcenter, hosts, inventory, the busybox image; writes DIR/env",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = cmd.OutOrStdout()
			ctx, stop := signalContext()
			defer stop()
			_, err := lab.Up(ctx, opts)
			return err
		},
	}
	f := up.Flags()
	f.IntVar(&opts.Hosts, "hosts", lab.DefaultHosts, "number of hosts (esx-01...)")
	f.StringVar(&opts.Runtime, "runtime", "containerd", "host runtime: containerd (real containers) or sim")
	f.StringVar(&opts.ContainerdSocket, "containerd-socket", lab.SystemSocket, "the machine's containerd, used when it answers")
	f.BoolVar(&opts.PrivateContainerd, "private-containerd", false, "start the lab's own containerd even if the machine's answers")
	f.Int64Var(&opts.HostCPU, "host-cpu", 0, "CPU capacity each host reports, MHz (0 = measured; sim: 20000)")
	f.Int64Var(&opts.HostMem, "host-mem", 0, "memory capacity each host reports, MB (0 = measured; sim: 65536)")
	f.BoolVar(&opts.Keep, "keep", false, "on failure, leave what was built for inspection instead of tearing it down")

	status := &cobra.Command{
		Use:   "status",
		Short: "show the lab's processes, namespaces, vcenter URL and hosts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = cmd.OutOrStdout()
			return lab.Status(cmd.Context(), opts)
		},
	}
	down := &cobra.Command{
		Use:   "down",
		Short: "remove everything the lab made; safe to run twice or after a crash",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = cmd.OutOrStdout()
			return lab.Down(cmd.Context(), opts)
		},
	}

	var p struct{ listen, netns, to, addrFile string }
	proxy := &cobra.Command{
		Use:    "proxy",
		Short:  "forward a loopback port to an address inside a network namespace (started by lab up)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			return lab.Proxy(ctx, p.listen, p.netns, p.to, p.addrFile, log.New(os.Stderr, "lab proxy: ", log.LstdFlags))
		},
	}
	pfl := proxy.Flags()
	pfl.StringVar(&p.listen, "listen", "127.0.0.1:0", "loopback address to accept on")
	pfl.StringVar(&p.netns, "netns", "", "path of the network namespace to dial from (/run/netns/NAME)")
	pfl.StringVar(&p.to, "to", "", "address to dial inside that namespace")
	pfl.StringVar(&p.addrFile, "addr-file", "", "file to write the bound address to")

	cmd.AddCommand(up, status, down, proxy)
	return cmd
}
