package agent

import (
	"context"
	"sync"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/host/runtime"
)

// metricsParallel bounds concurrent metrics samples (each may take a short
// second sample the first time it sees a VM).
const metricsParallel = 8

// usage holds the latest measured use of each running VM, by runtime ID.
type usage struct {
	mu  sync.Mutex
	vms map[string]runtime.Metrics
}

func (u *usage) get(id string) runtime.Metrics {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.vms[id]
}

// sample measures every running VM; VMs that are not running drop out.
func (u *usage) sample(ctx context.Context, rt runtime.Runtime) (total runtime.Metrics, err error) {
	vms, err := rt.List(ctx)
	if err != nil {
		return total, err
	}
	got := make(map[string]runtime.Metrics, len(vms))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, metricsParallel)
	for _, vm := range vms {
		if vm.PowerState != api.PoweredOn {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m, err := rt.Metrics(ctx, vm.ID)
			if err != nil {
				return // gone meanwhile, or not measurable: report nothing
			}
			mu.Lock()
			got[vm.ID] = m
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, m := range got {
		total.CPUUsageMHz += m.CPUUsageMHz
		total.MemUsageMB += m.MemUsageMB
	}
	u.mu.Lock()
	u.vms = got
	u.mu.Unlock()
	return total, nil
}

// reportUsage samples the VMs every StatusInterval (the reconciler puts the
// figures in each VM's status) and writes the host's totals and agent
// address into the host's status when they changed.
func (a *Agent) reportUsage(ctx context.Context, c *client.Client, agentAddr string) {
	var last *api.HostStatus
	for {
		total, err := a.usage.sample(ctx, a.cfg.Runtime)
		if err != nil && ctx.Err() == nil {
			a.log.Printf("usage: %v", err)
		}
		if err == nil {
			if st, err := a.writeHostUsage(ctx, c, total, agentAddr, last); err == nil {
				last = st
			} else if ctx.Err() == nil {
				a.log.Printf("usage: report host status: %v", err)
			}
		}
		if !sleep(ctx, a.cfg.Timings.StatusInterval) {
			return
		}
	}
}

// writeHostUsage puts the usage figures on the host's status; vcenter keeps
// the connection state and pod subnet it owns.
func (a *Agent) writeHostUsage(ctx context.Context, c *client.Client, total runtime.Metrics, agentAddr string, last *api.HostStatus) (*api.HostStatus, error) {
	if last != nil && last.CPUUsage == total.CPUUsageMHz && last.MemUsage == total.MemUsageMB && last.AgentAddress == agentAddr {
		return last, nil
	}
	o, err := c.Get(ctx, a.host)
	if err != nil {
		return nil, err
	}
	var st api.HostStatus
	_ = o.DecodeStatus(&st)
	st.CPUUsage, st.MemUsage, st.AgentAddress = total.CPUUsageMHz, total.MemUsageMB, agentAddr
	o.SetStatus(st)
	o.ResourceVersion = 0 // status only: no need to win a race with vcenter's heartbeat writes
	if _, err := c.UpdateStatus(ctx, o); err != nil {
		return nil, err
	}
	return &st, nil
}
