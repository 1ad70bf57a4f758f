package main

import (
	"context"
	"log"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/lab"
)

// labCmd is `podsphere lab up|status|down`, the fault verbs for HA drills
// (host.crash, host.isolate, host.heal, host.restart, partition), and the
// lab's internal `proxy`.
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

	// Faults for HA drills: each acts at once and records the fault in DIR/state.json.
	hostVerb := func(use, short string, do func(context.Context, lab.Options, string) error) *cobra.Command {
		return &cobra.Command{
			Use:   use + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				opts.Out = cmd.OutOrStdout()
				return do(cmd.Context(), opts, args[0])
			},
		}
	}
	crash := hostVerb("host.crash", "power a host off: SIGKILL its daemons and every VM task at once, management link down", lab.CrashHost)
	isolate := hostVerb("host.isolate", "put a host's management link down; its daemons, VMs and storage stay", lab.IsolateHost)
	heal := hostVerb("host.heal", "end a host's isolation or partition: back on the management network", lab.HealHost)
	restart := hostVerb("host.restart", "boot a crashed host (a running one is power-cycled): link up, its daemons started again", lab.RestartHost)
	partition := &cobra.Command{
		Use:   "partition NAME[,NAME...]",
		Short: "cut the named hosts off together: they reach each other, not vcenter nor the other hosts (host.heal each to end it)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Out = cmd.OutOrStdout()
			var names []string
			for _, a := range args {
				for _, n := range strings.Split(a, ",") {
					if n = strings.TrimSpace(n); n != "" {
						names = append(names, n)
					}
				}
			}
			return lab.PartitionHosts(cmd.Context(), opts, names)
		},
	}

	cmd.AddCommand(up, status, down, proxy, crash, isolate, heal, restart, partition)
	return cmd
}
