package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/cli"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/internal/hads"
	"github.com/podsphere/podsphere/lab"
)

// labInjector makes ha.drill's failures real in a lab: the lab's fault
// verbs crash, isolate or partition its hosts, and its sampler reads every
// host's containerd namespace directly (on simulated hosts, each agent's
// GET /vms from inside the host's network namespace).
type labInjector struct {
	opts    lab.Options
	sampler *lab.Sampler
}

// labFromEnv is the injector of the lab PSC_LAB names (set by . DIR/env).
func labFromEnv(context.Context) (cli.Injector, error) {
	dir := os.Getenv("PSC_LAB")
	if dir == "" {
		return nil, fmt.Errorf("ha.drill runs in a lab: PSC_LAB is not set (. DIR/env after podsphere lab up): %w", api.ErrUnavailable)
	}
	s, err := lab.NewSampler(dir)
	if err != nil {
		return nil, fmt.Errorf("ha.drill: reading the lab's runtimes in %s: %w", dir, err)
	}
	return &labInjector{opts: lab.Options{Dir: dir, Out: io.Discard}, sampler: s}, nil
}

func (l *labInjector) Inject(ctx context.Context, mode string, hosts []string) error {
	switch mode {
	case api.DrillCrash:
		return lab.CrashHost(ctx, l.opts, hosts[0])
	case api.DrillIsolate:
		return lab.IsolateHost(ctx, l.opts, hosts[0])
	case api.DrillPartition:
		return lab.PartitionHosts(ctx, l.opts, hosts)
	}
	return fmt.Errorf("the lab cannot inject a %q failure: %w", mode, api.ErrInvalid)
}

func (l *labInjector) Heal(ctx context.Context, mode string, hosts []string) error {
	for _, h := range hosts {
		heal := lab.HealHost
		if mode == api.DrillCrash {
			heal = lab.RestartHost
		}
		if err := heal(ctx, l.opts, h); err != nil {
			return err
		}
	}
	return nil
}

// Heartbeats reads the hosts' HA heartbeats on the lab's shared heartbeat
// datastore, by host name.
func (l *labInjector) Heartbeats(context.Context) (map[string]hads.Heartbeat, error) {
	hbs, err := hads.ReadHeartbeats(filepath.Join(l.opts.Dir, lab.SharedDir))
	if err != nil {
		return nil, err
	}
	out := make(map[string]hads.Heartbeat, len(hbs))
	for path, hb := range hbs {
		out[api.Base(path)] = hb
	}
	return out, nil
}

func (l *labInjector) Running(ctx context.Context) (map[string][]string, error) {
	s, err := l.sampler.Sample(ctx)
	if err != nil {
		return nil, err
	}
	return s.Running, nil
}

// DialFromVM opens ha.drill's ClusterIP requests inside the VM's own
// network namespace (/run/netns/ps-UID, pinned by its host's agent on this
// machine), each on a thread switched into it: the socket stays there, so
// the requests leave through the VM's eth0 and its host's Service rules,
// as the VM's own traffic does, with no process started in the VM.
func (l *labInjector) DialFromVM(uid string) (cli.Dialer, error) {
	ns := filepath.Join(network.NetNSDir, network.DefaultNetNSPrefix+uid)
	if _, err := os.Stat(ns); err != nil {
		return nil, fmt.Errorf("its network namespace %s: %w", ns, err)
	}
	return netnsDialer(ns), nil
}

// netnsDialer dials from inside the network namespace at ns.
func netnsDialer(ns string) cli.Dialer {
	return func(ctx context.Context, nw, addr string) (net.Conn, error) {
		var c net.Conn
		err := network.InNetNS(ns, func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, nw, addr)
			return err
		})
		return c, err
	}
}

// labDrillProber sends ha.drill's requests from inside the lab PSC_LAB
// names: psc runs in the machine's root namespace, which has no route to
// the lab's management network, so each connection is opened on a thread
// switched into the lab's client namespace (and stays there).
func labDrillProber(env *cli.Env) func(ctx context.Context, cluster string, vms []string) (cli.Prober, error) {
	dir := os.Getenv("PSC_LAB")
	if dir == "" {
		return nil
	}
	return func(ctx context.Context, cluster string, vms []string) (cli.Prober, error) {
		ns, err := lab.ClientNetNS(dir)
		if err != nil {
			return nil, fmt.Errorf("ha.drill: where to send requests from: %w", err)
		}
		return cli.ServiceProber(env, "lab namespace "+filepath.Base(ns), netnsDialer(ns))(ctx, cluster, vms)
	}
}
