package fdm

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// refreshEvery is how many heartbeat ticks pass between two full reads of
// the cluster's settings, VM overrides and peers (5 s by default). The
// host's own state is read every tick when self-fencing: vcenter's word
// that the host is connected is what keeps the renewals going then.
const refreshEvery = 10

// watchVCenter reads from vcenter, while it answers, what the FDM must know
// when it no longer does, and caches it in the state directory.
func (f *FDM) watchVCenter(ctx context.Context) {
	tick := time.NewTicker(f.t.DatastoreHeartbeat)
	defer tick.Stop()
	sim, _ := f.cfg.VMs.(*SimVMs)
	for n := 0; ; n++ {
		if n%refreshEvery == 0 {
			f.refresh(ctx)
		} else {
			if sim != nil {
				f.refreshSim(ctx, sim)
			}
			if f.locks.SelfFencing() {
				f.refreshHostState(ctx)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (f *FDM) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 4*f.t.DatastoreHeartbeat)
}

// refreshSim reads the VMs vcenter places on this simulated host.
func (f *FDM) refreshSim(ctx context.Context, sim *SimVMs) {
	cctx, cancel := f.call(ctx)
	defer cancel()
	if vms, err := f.vc.List(cctx, client.ListOptions{Kind: api.KindVirtualMachine, Host: f.host}); err == nil {
		sim.observe(vms.Items, f.host)
	}
}

// refreshHostState reads vcenter's state of this host.
func (f *FDM) refreshHostState(ctx context.Context) {
	cctx, cancel := f.call(ctx)
	defer cancel()
	o, err := f.vc.Get(cctx, f.host)
	if err != nil {
		return // unknown: the last answer stands
	}
	var st api.HostStatus
	if o.DecodeStatus(&st) != nil {
		return
	}
	f.mu.Lock()
	changed := f.cache.HostState != st.State
	f.cache.HostState = st.State
	if st.State != api.HostNotResponding {
		f.cache.Confirmed = time.Now()
	}
	c := f.cache
	f.mu.Unlock()
	if !changed {
		return
	}
	if err := writeCache(f.cfg.StateDir, c); err != nil {
		f.log.Printf("save host state: %v", err)
	}
	if f.locks.SelfFencing() {
		if st.State == api.HostNotResponding {
			f.log.Printf("vSphere HA: vcenter reports %s not responding: VM locks are no longer renewed (the fences stop the VMs %s after the last renewal)", f.host, f.locks.Lease())
		} else {
			f.log.Printf("vSphere HA: vcenter reports %s %s", f.host, st.State)
		}
	}
}

// refresh reads the cluster's HA settings, the isolation response
// overrides of this host's VMs and the peer hosts' addresses.
func (f *FDM) refresh(ctx context.Context) {
	f.refreshHostState(ctx)
	cctx, cancel := f.call(ctx)
	defer cancel()
	co, err := f.vc.Get(cctx, f.cfg.Cluster)
	if err != nil {
		return
	}
	var cs api.ClusterSpec
	if co.DecodeSpec(&cs) != nil {
		return
	}
	vms, err := f.vc.List(cctx, client.ListOptions{Kind: api.KindVirtualMachine, Host: f.host})
	if err != nil {
		return
	}
	if sim, ok := f.cfg.VMs.(*SimVMs); ok {
		sim.observe(vms.Items, f.host)
	}
	responses := map[string]string{}
	for _, o := range vms.Items {
		var s api.VMSpec
		if o.DecodeSpec(&s) == nil && s.HA.IsolationResponse != "" {
			responses[o.UID] = s.HA.IsolationResponse
		}
	}
	hosts, err := f.vc.List(cctx, client.ListOptions{Kind: api.KindHost, Prefix: f.cfg.Cluster + "/"})
	if err != nil {
		return
	}
	peers := map[string]string{}
	for _, o := range hosts.Items {
		var st api.HostStatus
		if o.Path != f.host && o.DecodeStatus(&st) == nil && st.Address != "" {
			peers[o.Path] = st.Address
		}
	}
	f.mu.Lock()
	before := f.cache
	f.cache.Fetched, f.cache.HA, f.cache.Responses, f.cache.Peers = time.Now().UTC(), cs.HA, responses, peers
	c := f.cache
	f.mu.Unlock()
	if !sameSettings(before, c) {
		if err := writeCache(f.cfg.StateDir, c); err != nil {
			f.log.Printf("save cluster settings: %v", err)
		}
	}
}

// sameSettings says whether a refresh changed nothing worth saving.
func sameSettings(a, b cache) bool {
	a.Fetched, b.Fetched = time.Time{}, time.Time{}
	a.Confirmed, b.Confirmed = time.Time{}, time.Time{}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
