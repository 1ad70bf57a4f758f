package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/podsphere/podsphere/api"
)

// The fence (cmd/podsphere-fence) in a protected VM's containers: PID 1,
// bind-mounted read-only from the host, with the host's lock folder beside
// it (read-only: the VM can read locks, never write them).
const (
	FenceMount = "/.podsphere/fence"
	LocksMount = "/.podsphere/locks"
	// FenceBinaryName is the fence's file name beside the agent's executable.
	FenceBinaryName = "podsphere-fence"
)

// LabelFence marks a container made with the fence as its PID 1 ("true"):
// its starts need the VM's lock, even after the driver lost Config.Locks.
const LabelFence = "podsphere.fence"

// checkFence says whether Config's fence settings can work.
func checkFence(cfg Config) error {
	if cfg.Locks == nil {
		return nil
	}
	if cfg.FenceBinary == "" {
		return fmt.Errorf("containerd: HA locks need the fence binary (%s): %w", FenceBinaryName, api.ErrInvalid)
	}
	fi, err := os.Stat(cfg.FenceBinary)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("containerd: fence binary %s: not an executable file (%v): %w", cfg.FenceBinary, err, api.ErrInvalid)
	}
	return nil
}

// withFence makes the fence the container's process, the VM's own entry
// point (as the image config and the spec resolved it) its child. It must
// come after every option that sets the process args.
func (d *Driver) withFence(vmID string) oci.SpecOpts {
	l := d.cfg.Locks
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil || len(s.Process.Args) == 0 {
			return fmt.Errorf("containerd: VM %s: no entry point to fence: %w", vmID, api.ErrInvalid)
		}
		args := []string{FenceMount, "-lock", path.Join(LocksMount, vmID+".json"), "-host", l.Host(),
			"-lease", l.Lease().String(), "--"}
		s.Process.Args = append(args, s.Process.Args...)
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: FenceMount, Type: "bind", Source: d.cfg.FenceBinary, Options: []string{"rbind", "ro", "nosuid", "nodev"}},
			// The folder, not the file: every renewal replaces the file (rename),
			// and a bind mount of a file would keep showing the first one.
			specs.Mount{Destination: LocksMount, Type: "bind", Source: l.Dir(), Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}},
		)
		return nil
	}
}

// lockRefused is a start refused for the VM's lock: no use retrying
// alone, only the agent (with vcenter's word) may take the lock again.
type lockRefused struct{ error }

func (e lockRefused) Unwrap() error { return e.error }

// fenced says whether the container was made with the fence.
func fenced(labels map[string]string) bool { return labels[LabelFence] == "true" }

// lockForStart takes the VM's lock before one of its fenced containers
// starts: the fence would refuse a lock that is not this host's and live,
// and a restart the driver decides alone must not take one that lapsed or
// was released (that needs vcenter, through the agent's Acquire).
func (d *Driver) lockForStart(ctx context.Context, c containerd.Container, labels map[string]string) error {
	if !fenced(labels) {
		return nil
	}
	if d.cfg.Locks == nil {
		return lockRefused{fmt.Errorf("containerd: container %s has the HA fence but this agent has no HA locks (start it with --ha-datastore): %w", c.ID(), api.ErrConflict)}
	}
	if err := d.cfg.Locks.Acquire(labels[LabelVMID], labels[LabelVMPath], time.Now(), false); err != nil {
		if errors.Is(err, api.ErrConflict) {
			return lockRefused{err}
		}
		return err
	}
	return nil
}
