package server

import (
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/store"
)

// join registers (or re-registers) a host that presented the join token.
func (s *Server) join(req api.JoinRequest) (*api.JoinReply, error) {
	cref, err := api.ParsePath(req.Cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if cref.Kind != api.KindCluster {
		return nil, fmt.Errorf("cluster %q is a %s path, want /DC/host/CLUSTER: %w", req.Cluster, cref.Kind, api.ErrInvalid)
	}
	if err := api.ValidName(req.Name); err != nil {
		return nil, fmt.Errorf("host name: %w", err)
	}
	if req.Name == api.RootPoolName {
		return nil, fmt.Errorf("host name %q is reserved for the cluster's root pool: %w", req.Name, api.ErrInvalid)
	}
	if req.CPUCapacity <= 0 || req.MemCapacity <= 0 {
		return nil, fmt.Errorf("host capacity must be positive (cpu %d MHz, memory %d MB): %w", req.CPUCapacity, req.MemCapacity, api.ErrInvalid)
	}
	path := req.Cluster + "/" + req.Name
	now := s.now()
	var out *api.Object
	err = s.update("host:"+req.Name, func(t *txn) error {
		cobj, err := t.Get(req.Cluster)
		if err != nil {
			if isNotFound(err) {
				return fmt.Errorf("cluster %s does not exist: create it with psc cluster.create first: %w", req.Cluster, api.ErrNotFound)
			}
			return err
		}
		var cspec api.ClusterSpec
		_ = cobj.DecodeSpec(&cspec)
		cur, err := t.Get(path)
		if err != nil && !isNotFound(err) {
			return err
		}
		var spec api.HostSpec
		var st api.HostStatus
		if cur != nil {
			_ = cur.DecodeSpec(&spec)
			_ = cur.DecodeStatus(&st)
		}
		st.Address, st.Runtime, st.AgentAddress = req.Address, req.Runtime, req.AgentAddress
		st.CPUCapacity, st.MemCapacity = req.CPUCapacity, req.MemCapacity
		st.State = api.HostConnected
		if spec.Maintenance {
			st.State = api.HostMaintenance
		}
		st.LastSeen, st.Joined = now, now
		if st.PodSubnet == "" {
			if st.PodSubnet, err = s.allocSubnet(t, cspec.PodCIDR, req.Cluster); err != nil {
				return err
			}
		}
		if cur == nil {
			o := api.New(api.KindHost, path, spec)
			o.SetStatus(st)
			if out, err = t.Create(o); err != nil {
				return err
			}
			return t.event("info", "HostAddedEvent", path, "Host %s joined cluster %s (%d MHz, %d MB, %s runtime, pod subnet %s)", req.Name, req.Cluster, req.CPUCapacity, req.MemCapacity, req.Runtime, st.PodSubnet)
		}
		cur.SetStatus(st)
		if out, err = t.Update(cur); err != nil {
			return err
		}
		return t.event("info", "HostConnectedEvent", path, "Host %s rejoined cluster %s", req.Name, req.Cluster)
	})
	if err != nil {
		return nil, err
	}
	reply := &api.JoinReply{Host: out, Joined: now}
	if s.member != nil {
		reply.GossipSeed = []string{s.member.Addr()}
	}
	var st api.HostStatus
	_ = out.DecodeStatus(&st)
	reply.PodSubnet = st.PodSubnet
	return reply, nil
}

// allocSubnet gives a host the lowest /24 of the cluster's pod CIDR that no
// other host of the cluster holds.
func (s *Server) allocSubnet(t *txn, cidr, cluster string) (string, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return "", fmt.Errorf("cluster %s pod CIDR %q: %v: %w", cluster, cidr, err, api.ErrInvalid)
	}
	used := map[string]bool{}
	for _, h := range t.List(store.Query{Kind: api.KindHost, Prefix: cluster}) {
		var st api.HostStatus
		_ = h.DecodeStatus(&st)
		used[st.PodSubnet] = true
	}
	ones, _ := n.Mask.Size()
	base := binary.BigEndian.Uint32(n.IP.To4())
	for i := uint32(0); i < 1<<(24-ones); i++ {
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, base+i<<8)
		sub := (&net.IPNet{IP: ip, Mask: net.CIDRMask(24, 32)}).String()
		if !used[sub] {
			return sub, nil
		}
	}
	return "", fmt.Errorf("cluster %s pod CIDR %s has no free /24 left for another host: %w", cluster, cidr, api.ErrInsufficientResources)
}

// HostAlive is memberlist telling us a host gossips (joined or came back).
func (s *Server) HostAlive(name, addr string) { s.setConnection(name, true) }

// HostFailed is memberlist declaring a host dead or gone.
func (s *Server) HostFailed(name string) { s.setConnection(name, false) }

// setConnection records a connection-state transition with an event.
func (s *Server) setConnection(path string, alive bool) {
	ref, err := api.ParsePath(path)
	if err != nil || ref.Kind != api.KindHost {
		return // not a host of ours (vcenter itself, or a foreign node)
	}
	err = s.update("vcenter", func(t *txn) error {
		cur, err := t.Get(path)
		if err != nil {
			if isNotFound(err) {
				return nil // gossip can arrive before the join request
			}
			return err
		}
		var spec api.HostSpec
		var st api.HostStatus
		_ = cur.DecodeSpec(&spec)
		_ = cur.DecodeStatus(&st)
		want := api.HostNotResponding
		if alive {
			want = api.HostConnected
			if spec.Maintenance {
				want = api.HostMaintenance
			}
			st.LastSeen = s.now()
		}
		if st.State == want {
			return nil
		}
		old := st.State
		st.State = want
		cur.SetStatus(st)
		if _, err := t.Update(cur); err != nil {
			return err
		}
		if alive {
			return t.event("info", "HostConnectedEvent", path, "Host %s is %s again (was %s)", api.Base(path), want, old)
		}
		return t.event("error", "HostNotRespondingEvent", path, "Host %s is not responding: it stopped gossiping (last seen %s)", api.Base(path), st.LastSeen.Format(time.RFC3339))
	})
	if err != nil {
		s.log.Printf("recording connection state of %s: %v", path, err)
	}
}

// hostLoop records lastSeen of live hosts every LastSeenInterval, in one
// transaction and without events: it is a heartbeat, not a change. It also
// catches hosts the inventory calls connected that gossip never reported
// after a vcenter restart: once the detection bound has passed since start,
// such a host is notResponding.
func (s *Server) hostLoop() {
	if s.member == nil {
		return
	}
	every := s.cfg.Timings.LastSeenInterval
	if every <= 0 {
		every = time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	start := s.now()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		alive := map[string]bool{}
		for _, p := range s.member.Alive() {
			alive[p] = true
		}
		now := s.now()
		var stale []string
		err := s.update("vcenter", func(t *txn) error {
			for _, h := range t.List(store.Query{Kind: api.KindHost}) {
				var st api.HostStatus
				_ = h.DecodeStatus(&st)
				if !alive[h.Path] {
					if st.State != api.HostNotResponding {
						stale = append(stale, h.Path)
					}
					continue
				}
				st.LastSeen = now
				h.SetStatus(st)
				if _, err := t.Update(h); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			s.log.Printf("recording lastSeen: %v", err)
		}
		if now.Sub(start) > 2*s.cfg.Timings.DetectionBound(len(alive)+1) {
			for _, p := range stale {
				s.setConnection(p, false)
			}
		}
	}
}

// rejoinHosts asks gossip to contact every host the inventory knows, so a
// restarted vcenter finds its hosts again without waiting for them.
func (s *Server) rejoinHosts() {
	var addrs []string
	for _, h := range s.store.List(store.Query{Kind: api.KindHost}).Items {
		var st api.HostStatus
		_ = h.DecodeStatus(&st)
		if st.Address != "" {
			addrs = append(addrs, st.Address)
		}
	}
	if len(addrs) == 0 {
		return
	}
	if n, err := s.member.Join(addrs); err != nil && n == 0 {
		s.log.Printf("rejoining %d known hosts: %v (they will rejoin on their own)", len(addrs), err)
	}
}
