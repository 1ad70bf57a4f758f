package lab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"

	"github.com/podsphere/podsphere/api"
	ctrd "github.com/podsphere/podsphere/host/containerd"
)

// Sampler reads which VMs run on each of the lab's hosts straight from
// containerd (each host's namespace), not through the host agents, which a
// fault may have killed or cut off. One Sampler keeps one containerd
// connection and remembers which VM each container belongs to, so a sample
// costs one task list per host (run side by side): cheap enough to take
// every 100 ms during a drill. It is safe for concurrent use.
//
// In a lab of simulated hosts (--runtime sim) there is no containerd: a
// sim host's VMs live only in its agent, so the Sampler asks each agent's
// GET /vms from inside the host's network namespace instead (agentReader).
type Sampler struct {
	client *containerd.Client      // containerd labs
	agents map[string]*agentReader // sim labs, by host name
	hosts  []Host

	mu    sync.Mutex
	owner map[string]vmRef // "namespace/container ID" -> its VM
}

type vmRef struct{ uid, path string }

// Sample is what ran where at one moment.
type Sample struct {
	Time time.Time
	// Running maps each host name to the UIDs of the VMs that have at least
	// one task running (or paused) in its containerd namespace, or, on a
	// simulated host, that its agent has not powered off; sorted.
	// Every lab host has an entry, empty when nothing runs there.
	Running map[string][]string
	// Paths maps each VM UID in Running to its inventory path.
	Paths map[string]string
}

// Duplicates maps each VM seen running on more than one host to those hosts
// (sorted): the split brain an HA drill must never see.
func (s Sample) Duplicates() map[string][]string {
	where := map[string][]string{}
	for host, uids := range s.Running {
		for _, u := range uids {
			where[u] = append(where[u], host)
		}
	}
	dup := map[string][]string{}
	for u, hosts := range where {
		if len(hosts) > 1 {
			slices.Sort(hosts)
			dup[u] = hosts
		}
	}
	return dup
}

// NewSampler connects to the containerd of the lab in labDir, or, in a lab
// of simulated hosts, prepares to ask each host's agent. A lab whose hosts
// can be read neither way is ErrUnavailable.
func NewSampler(labDir string) (*Sampler, error) {
	s, err := LoadState(labDir)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("no lab in %s: %w", labDir, api.ErrNotFound)
	}
	if s.Runtime == "sim" {
		agents, err := newAgentReaders(s)
		if err != nil {
			return nil, err
		}
		return &Sampler{agents: agents, hosts: s.Hosts}, nil
	}
	if s.Containerd == nil || len(s.CtrdNamespaces) == 0 {
		return nil, fmt.Errorf("the lab in %s runs %s hosts: no containerd to sample VMs from: %w", labDir, s.Runtime, api.ErrUnavailable)
	}
	c, err := containerd.New(s.Containerd.Socket, containerd.WithTimeout(2*time.Second))
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: %w: %w", s.Containerd.Socket, err, api.ErrUnavailable)
	}
	return &Sampler{client: c, hosts: s.Hosts, owner: map[string]vmRef{}}, nil
}

// Close drops the containerd connection (or the agents' idle connections).
func (sm *Sampler) Close() error {
	for _, r := range sm.agents {
		r.close()
	}
	if sm.client == nil {
		return nil
	}
	return sm.client.Close()
}

// Sample reads every host's namespace (or sim agent). It fails as a whole
// when any host cannot be read: a drill must not mistake "could not look"
// for "not running".
func (sm *Sampler) Sample(ctx context.Context) (Sample, error) {
	out := Sample{Time: time.Now(), Running: make(map[string][]string, len(sm.hosts)), Paths: map[string]string{}}
	type result struct {
		refs []vmRef
		err  error
	}
	res := make([]result, len(sm.hosts))
	var wg sync.WaitGroup
	for i, h := range sm.hosts {
		agent := sm.agents[h.Name]
		if h.Namespace == "" && agent == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if agent != nil {
				res[i].refs, res[i].err = agent.running(ctx)
				return
			}
			res[i].refs, res[i].err = sm.running(ctx, h.Namespace)
		}()
	}
	wg.Wait()
	var errs []error
	for i, h := range sm.hosts {
		if res[i].err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.Name, res[i].err))
			continue
		}
		uids := []string{}
		for _, r := range res[i].refs {
			if !slices.Contains(uids, r.uid) {
				uids = append(uids, r.uid)
			}
			out.Paths[r.uid] = r.path
		}
		slices.Sort(uids)
		out.Running[h.Name] = uids
	}
	return out, errors.Join(errs...)
}

// running lists the VMs with a live task in namespace ns: one task list,
// plus one container list when a task's container is new to the sampler.
func (sm *Sampler) running(ctx context.Context, ns string) ([]vmRef, error) {
	ctx = namespaces.WithNamespace(ctx, ns)
	resp, err := sm.client.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("containerd namespace %s: list tasks: %w", ns, errdefs.FromGRPC(err))
	}
	var live []string
	for _, t := range resp.Tasks {
		if t.Status == task.Status_RUNNING || t.Status == task.Status_PAUSED || t.Status == task.Status_PAUSING {
			live = append(live, t.ID)
		}
	}
	refs := make([]vmRef, 0, len(live))
	for pass := 0; pass < 2; pass++ {
		refs = refs[:0]
		missing := false
		sm.mu.Lock()
		for _, id := range live {
			r, ok := sm.owner[ns+"/"+id]
			switch {
			case !ok:
				missing = true
			case r.uid != "": // "" = a container that is not a VM's
				refs = append(refs, r)
			}
		}
		sm.mu.Unlock()
		if !missing || pass == 1 {
			break
		}
		if err := sm.learn(ctx, ns); err != nil {
			return nil, err
		}
	}
	return refs, nil
}

// learn records which VM every container of the namespace belongs to. A
// container ID is never reused for another VM (it starts with the VM's UID),
// so what is learnt stays true.
func (sm *Sampler) learn(ctx context.Context, ns string) error {
	infos, err := sm.client.ContainerService().List(ctx)
	if err != nil {
		return fmt.Errorf("containerd namespace %s: list containers: %w", ns, errdefs.FromGRPC(err))
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	for _, c := range infos {
		sm.owner[ns+"/"+c.ID] = vmRef{uid: c.Labels[ctrd.LabelVMID], path: c.Labels[ctrd.LabelVMPath]}
	}
	return nil
}

// RunningVMs is one Sample of the lab in labDir: host name -> UIDs of the
// VMs running there. It connects for this one call; a drill sampling every
// 100 ms keeps a Sampler instead.
func RunningVMs(ctx context.Context, labDir string) (map[string][]string, error) {
	sm, err := NewSampler(labDir)
	if err != nil {
		return nil, err
	}
	defer sm.Close()
	s, err := sm.Sample(ctx)
	return s.Running, err
}

// String is a one-line view of a sample, for logs: "esx-01=[UID] esx-02=[]".
func (s Sample) String() string {
	hosts := make([]string, 0, len(s.Running))
	for h := range s.Running {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	parts := make([]string, len(hosts))
	for i, h := range hosts {
		parts[i] = fmt.Sprintf("%s=%v", h, s.Running[h])
	}
	return strings.Join(parts, " ")
}
