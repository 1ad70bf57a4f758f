package fdm

import (
	"context"
	"sync"

	"github.com/podsphere/podsphere/api"
)

// SimVMs stands in for the runtime on a host whose agent runs `--runtime
// sim`: its VMs live only inside the agent, so the FDM takes the ones
// vcenter reports powered on here (read every tick while vcenter answers,
// the last answer kept while it does not) as running. Locks, heartbeats
// and isolation then behave as on a real host, which is what HA drills on
// simulated hosts need; stopping a VM can only be recorded (its lock
// released), not done.
type SimVMs struct {
	mu  sync.Mutex
	vms map[string]*LocalVM
}

var _ RuntimeVMs = (*SimVMs)(nil)

// NewSimVMs is an empty simulated runtime, filled from vcenter.
func NewSimVMs() *SimVMs { return &SimVMs{vms: map[string]*LocalVM{}} }

func (s *SimVMs) List(context.Context) ([]LocalVM, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]LocalVM, 0, len(s.vms))
	for _, vm := range s.vms {
		out = append(out, *vm)
	}
	return out, nil
}

// Kill and Terminate record the VM stopped until vcenter next reports it.
func (s *SimVMs) Kill(_ context.Context, uid string) error { return s.stopped(uid) }

func (s *SimVMs) Terminate(_ context.Context, uid string) error { return s.stopped(uid) }

func (s *SimVMs) stopped(uid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if vm := s.vms[uid]; vm != nil {
		vm.Running = false
	}
	return nil
}

// observe takes vcenter's list of the VMs placed on host.
func (s *SimVMs) observe(items []*api.Object, host string) {
	vms := map[string]*LocalVM{}
	for _, o := range items {
		var spec api.VMSpec
		var st api.VMStatus
		if o.DecodeSpec(&spec) != nil || spec.Host != host {
			continue
		}
		_ = o.DecodeStatus(&st)
		on := st.PowerState == api.PoweredOn && st.Host == host
		vms[o.UID] = &LocalVM{UID: o.UID, Path: o.Path, Desired: spec.PowerState == api.PoweredOn, Running: on}
	}
	s.mu.Lock()
	s.vms = vms
	s.mu.Unlock()
}
