package agent

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/host/runtime"
)

// PeerRoutes is the kubenet routing table a host wants: every other host of
// its cluster with a pod subnet, reached via the IP of its address, whatever
// its connection state: a host whose agent is restarting (not responding for
// a moment) still runs its VMs, and their traffic must keep flowing. A host
// removed from the inventory loses its route. Sorted by subnet; pure.
func PeerRoutes(self string, hosts []*api.Object) []runtime.Peer {
	var peers []runtime.Peer
	for _, h := range hosts {
		if h.Path == self || h.Kind != api.KindHost {
			continue
		}
		var st api.HostStatus
		if h.DecodeStatus(&st) != nil || st.PodSubnet == "" {
			continue
		}
		ip := st.Address
		if host, _, err := net.SplitHostPort(st.Address); err == nil {
			ip = host
		}
		if net.ParseIP(ip) == nil {
			continue
		}
		peers = append(peers, runtime.Peer{Host: h.Path, Subnet: st.PodSubnet, Via: ip})
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].Subnet < peers[j].Subnet })
	return peers
}

// keepPeerRoutes watches the cluster's hosts and keeps the runtime's routes
// to their pod subnets current, retrying failed updates every StatusInterval.
func (a *Agent) keepPeerRoutes(ctx context.Context, c *client.Client, nw runtime.Networker) {
	opts := client.ListOptions{Kind: api.KindHost, Prefix: a.cfg.Cluster}
	var applied []runtime.Peer
	ok := false
	hosts := map[string]*api.Object{}
	apply := func() {
		list := make([]*api.Object, 0, len(hosts))
		for _, h := range hosts {
			list = append(list, h)
		}
		want := PeerRoutes(a.host, list)
		if ok && slices.Equal(want, applied) {
			return
		}
		if err := nw.SetPeerRoutes(want); err != nil {
			a.log.Printf("peer routes: %v (retrying in %v)", err, a.cfg.Timings.StatusInterval)
			ok = false
			return
		}
		a.log.Printf("peer routes: %s", describePeers(want))
		applied, ok = want, true
	}
	for attempt := 0; ; attempt++ {
		err := func() error {
			l, err := c.List(ctx, opts)
			if err != nil {
				return err
			}
			clear(hosts)
			for _, h := range l.Items {
				hosts[h.Path] = h
			}
			apply()
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			events, wait, err := c.Watch(wctx, opts, l.Revision)
			if err != nil {
				return err
			}
			attempt = 0
			tick := time.NewTicker(a.cfg.Timings.StatusInterval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
					if !ok {
						apply()
					}
				case ev, more := <-events:
					if !more {
						if err := wait(); err != nil {
							return err
						}
						return fmt.Errorf("host watch closed: %w", api.ErrUnavailable)
					}
					if ev.Object == nil {
						continue
					}
					if ev.Type == api.Deleted {
						delete(hosts, ev.Object.Path)
					} else {
						hosts[ev.Object.Path] = ev.Object
					}
					apply()
				}
			}
		}()
		if ctx.Err() != nil {
			return
		}
		d := a.backoff(attempt)
		a.log.Printf("peer routes: watch hosts: %v (re-listing in %v)", err, d.Round(time.Millisecond))
		if !sleep(ctx, d) {
			return
		}
	}
}

func describePeers(peers []runtime.Peer) string {
	if len(peers) == 0 {
		return "none"
	}
	s := ""
	for i, p := range peers {
		if i > 0 {
			s += ", "
		}
		s += p.Subnet + " via " + p.Via + " (" + api.Base(p.Host) + ")"
	}
	return s
}
