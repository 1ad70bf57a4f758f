package fdm

import (
	"context"
	"fmt"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"

	ctrdriver "github.com/podsphere/podsphere/host/containerd"
)

// RuntimeVMs is what the FDM needs of the host's runtime. It talks to the
// runtime directly, never through the agent, which may be dead.
type RuntimeVMs interface {
	// List is every VM of the host (UID, Path, Desired, Running set).
	List(ctx context.Context) ([]LocalVM, error)
	// Kill SIGKILLs every process of the VM.
	Kill(ctx context.Context, uid string) error
	// Terminate sends SIGTERM to the VM's containers (the fence forwards
	// it to their entry points).
	Terminate(ctx context.Context, uid string) error
}

// Containerd reads and stops the VMs in the host's containerd namespace,
// by the labels the containerd driver puts on them.
type Containerd struct {
	client *containerd.Client
	ns     string
}

var _ RuntimeVMs = (*Containerd)(nil)

// NewContainerd connects to containerd's socket for the namespace.
func NewContainerd(socket, namespace string) (*Containerd, error) {
	c, err := containerd.New(socket, containerd.WithDefaultNamespace(namespace), containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("fdm: connect to containerd at %s: %w", socket, err)
	}
	return &Containerd{client: c, ns: namespace}, nil
}

// Close disconnects; the VMs are not touched.
func (c *Containerd) Close() error { return c.client.Close() }

func (c *Containerd) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, c.ns)
}

// List costs two containerd calls: the containers and the tasks.
func (c *Containerd) List(ctx context.Context) ([]LocalVM, error) {
	ctx = c.ctx(ctx)
	infos, err := c.client.ContainerService().List(ctx, fmt.Sprintf("labels.%q", ctrdriver.LabelVMID))
	if err != nil {
		return nil, fmt.Errorf("fdm: list containers: %w", err)
	}
	resp, err := c.client.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("fdm: list tasks: %w", errdefs.FromGRPC(err))
	}
	alive := map[string]bool{}
	for _, p := range resp.Tasks {
		if p.Status != task.Status_STOPPED && p.Status != task.Status_UNKNOWN {
			alive[p.ID] = true
		}
	}
	byUID := map[string]*LocalVM{}
	var order []string
	for _, info := range infos {
		uid := info.Labels[ctrdriver.LabelVMID]
		vm := byUID[uid]
		if vm == nil {
			vm = &LocalVM{UID: uid, Path: info.Labels[ctrdriver.LabelVMPath]}
			byUID[uid] = vm
			order = append(order, uid)
		}
		vm.Desired = vm.Desired || info.Labels[ctrdriver.LabelDesired] == "running"
		vm.Running = vm.Running || alive[info.ID]
	}
	out := make([]LocalVM, 0, len(order))
	for _, uid := range order {
		out = append(out, *byUID[uid])
	}
	return out, nil
}

func (c *Containerd) Kill(ctx context.Context, uid string) error {
	return c.signal(ctx, uid, syscall.SIGKILL, containerd.WithKillAll)
}

func (c *Containerd) Terminate(ctx context.Context, uid string) error {
	return c.signal(ctx, uid, syscall.SIGTERM)
}

func (c *Containerd) signal(ctx context.Context, uid string, sig syscall.Signal, opts ...containerd.KillOpts) error {
	ctx = c.ctx(ctx)
	cs, err := c.client.Containers(ctx, fmt.Sprintf("labels.%q==%q", ctrdriver.LabelVMID, uid))
	if err != nil {
		return fmt.Errorf("fdm: VM %s: %w", uid, err)
	}
	var first error
	for _, ct := range cs {
		t, err := ct.Task(ctx, nil)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err == nil {
			err = t.Kill(ctx, sig, opts...)
		}
		if err != nil && !errdefs.IsNotFound(err) && first == nil {
			first = fmt.Errorf("fdm: VM %s: container %s: %s: %w", uid, ct.ID(), sig, err)
		}
	}
	return first
}
