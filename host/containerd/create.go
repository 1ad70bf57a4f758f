package containerd

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/network"
	"github.com/podsphere/podsphere/host/runtime"
)

// Creating a VM: its containers, images, network and OCI specs.

// Create makes the VM's netns, network attachment, cgroup and containers, but
// starts nothing. A VM that already has containers is left as it is (see
// Recreate). The containers carry runtime.SpecHash(spec) in LabelSpecHash.
func (d *Driver) Create(ctx context.Context, spec runtime.VMSpec) error {
	if err := validSpec(spec); err != nil {
		return err
	}
	ctx = d.nsCtx(ctx)
	l := d.vmLock(spec.ID)
	l.Lock()
	defer l.Unlock()

	existing, err := d.vmContainers(ctx, spec.ID)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		return nil
	}
	images, err := d.ensureImages(ctx, spec)
	if err != nil {
		return err
	}
	return d.create(ctx, spec, images)
}

// Recreate replaces the VM's containers and cgroup with ones made from spec,
// after a spec change: the images are made ready first (a missing image
// fails the call with the old containers untouched), then the old
// containers are stopped (SIGKILL after timeout) and deleted with their
// snapshots and cgroup, and the new ones created, not started. The netns,
// the network attachment and so the VM's IP stay, as do its logs. A VM
// without containers is simply created. If making the new containers fails,
// the VM is removed altogether (as a failed Create leaves nothing), and the
// agent creates it afresh on a later pass.
func (d *Driver) Recreate(ctx context.Context, spec runtime.VMSpec, timeout time.Duration) error {
	if err := validSpec(spec); err != nil {
		return err
	}
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	ctx = d.nsCtx(ctx)
	l := d.vmLock(spec.ID)
	l.Lock()
	defer l.Unlock()

	images, err := d.ensureImages(ctx, spec)
	if err != nil {
		return err
	}
	existing, err := d.vmContainers(ctx, spec.ID)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		if err := d.stopAll(ctx, spec.ID, existing, timeout); err != nil {
			return err
		}
		if err := d.removeContainers(ctx, existing); err != nil {
			return err
		}
		if err := removeVMCgroup(d.CgroupPath(spec.ID)); err != nil {
			// create writes every limit again, whatever the cgroup held.
			d.log.Warn("recreate: old VM cgroup kept", "vm", spec.ID, "err", err)
		}
		d.mu.Lock()
		delete(d.fresh, spec.ID)
		delete(d.samples, spec.ID)
		d.mu.Unlock()
	}
	if err := d.create(ctx, spec, images); err != nil {
		return err
	}
	d.log.Info("VM recreated", "vm", spec.ID, "path", spec.Path, "spec", runtime.SpecHash(spec))
	return nil
}

// validSpec checks what Create and Recreate need of a spec.
func validSpec(spec runtime.VMSpec) error {
	if spec.ID == "" || len(spec.Containers) == 0 {
		return fmt.Errorf("containerd: VM needs an id and at least one container: %w", api.ErrInvalid)
	}
	seen := map[string]bool{}
	for _, c := range allContainers(spec) {
		if !containerName.MatchString(c.Name) || seen[c.Name] || c.Image == "" {
			return fmt.Errorf("containerd: VM %s: container %q: name must be a unique DNS label and image set: %w", spec.ID, c.Name, api.ErrInvalid)
		}
		seen[c.Name] = true
		switch c.ImagePullPolicy {
		case "", api.PullIfNotPresent, api.PullAlways, api.PullNever:
		default:
			return fmt.Errorf("containerd: VM %s: container %s: imagePullPolicy %q: %w", spec.ID, c.Name, c.ImagePullPolicy, api.ErrInvalid)
		}
		if c.RunAsUser != nil && (*c.RunAsUser < 0 || *c.RunAsUser > math.MaxUint32) {
			return fmt.Errorf("containerd: VM %s: container %s: runAsUser %d: %w", spec.ID, c.Name, *c.RunAsUser, api.ErrInvalid)
		}
		if len(probesLabel(c)) > maxLabel {
			return fmt.Errorf("containerd: VM %s: container %s: probes and ports take more than %d bytes: %w", spec.ID, c.Name, maxLabel, api.ErrInvalid)
		}
	}
	switch spec.RestartPolicy {
	case "", RestartAlways, RestartOnFailure, RestartNever:
	default:
		return fmt.Errorf("containerd: restart policy %q: %w", spec.RestartPolicy, api.ErrInvalid)
	}
	// Probes, ports, users and the rest, as vcenter is to check them too.
	if err := api.ValidateVMContainers(api.VMSpec{Containers: spec.Containers, InitContainers: spec.InitContainers,
		TerminationGracePeriodSeconds: spec.TerminationGracePeriodSeconds, Hostname: spec.Hostname}); err != nil {
		return fmt.Errorf("containerd: VM %s: %w", spec.ID, err)
	}
	return nil
}

// allContainers is the VM's init containers, then its containers: the
// order of their index labels.
func allContainers(spec runtime.VMSpec) []api.Container {
	return append(append([]api.Container(nil), spec.InitContainers...), spec.Containers...)
}

// maxLabel is what containerd takes of one label, key and value.
const maxLabel = 4096 - len(LabelProbes)

// probesLabel is the LabelProbes value of c ("" without probes).
func probesLabel(c api.Container) string {
	if c.LivenessProbe == nil && c.ReadinessProbe == nil && c.StartupProbe == nil {
		return ""
	}
	b, _ := json.Marshal(api.Container{Name: c.Name, Ports: c.Ports,
		LivenessProbe: c.LivenessProbe, ReadinessProbe: c.ReadinessProbe, StartupProbe: c.StartupProbe})
	return string(b)
}

// ensureImages makes every container's image ready, init containers
// first, as its pull policy says.
func (d *Driver) ensureImages(ctx context.Context, spec runtime.VMSpec) ([]containerd.Image, error) {
	all := allContainers(spec)
	images := make([]containerd.Image, len(all))
	for i, c := range all {
		var err error
		if images[i], err = d.imageFor(ctx, c.Image, c.ImagePullPolicy); err != nil {
			return nil, fmt.Errorf("containerd: VM %s: container %s: %w", spec.ID, c.Name, err)
		}
	}
	return images, nil
}

// create is Create for a VM without containers, its images ready, under
// the VM's lock. On an error it removes everything of the VM.
func (d *Driver) create(ctx context.Context, spec runtime.VMSpec, images []containerd.Image) (err error) {
	defer func() {
		if err != nil {
			_ = d.remove(context.WithoutCancel(ctx), spec.ID)
		}
	}()
	netns, ip, err := d.ensureNetwork(ctx, spec.ID)
	if err != nil {
		return err
	}
	dnsFiles, err := d.writeDNSFiles(spec, ip)
	if err != nil {
		return err
	}
	limits := LimitsFor(spec, d.cfg.MHzPerCore)
	cgroup := d.CgroupPath(spec.ID)
	if err := setupVMCgroup(cgroup, limits); err != nil {
		return fmt.Errorf("containerd: VM %s: %w", spec.ID, err)
	}
	if err := os.MkdirAll(filepath.Join(d.cfg.LogDir, spec.ID), 0o755); err != nil {
		return err
	}
	policy := spec.RestartPolicy
	if policy == "" {
		policy = RestartAlways
	}
	hash := runtime.SpecHash(spec)
	for i, c := range allContainers(spec) {
		ports, _ := json.Marshal(c.Ports)
		labels := map[string]string{
			LabelVMID:          spec.ID,
			LabelVMPath:        spec.Path,
			LabelContainer:     c.Name,
			LabelIndex:         strconv.Itoa(i),
			LabelRestartPolicy: policy,
			LabelDesired:       desiredStopped,
			LabelRestarts:      "0",
			LabelIP:            ip,
			LabelNetNS:         netns,
			LabelCgroup:        cgroup,
			LabelPorts:         string(ports),
			LabelSpecHash:      hash,
			LabelShapeHash:     runtime.ShapeHash(spec),
		}
		if i < len(spec.InitContainers) {
			labels[LabelInit] = "true"
		}
		if p := probesLabel(c); p != "" {
			labels[LabelProbes] = p
		}
		if g := spec.TerminationGracePeriodSeconds; g != nil {
			labels[LabelGrace] = strconv.FormatInt(*g, 10)
		}
		if c.ImagePullPolicy != "" {
			labels[LabelPullPolicy] = c.ImagePullPolicy
		}
		opts := specOpts(c, images[i], netns, cgroup, hostname(spec), limits)
		if len(dnsFiles) > 0 {
			opts = append(opts, oci.WithMounts(dnsMounts(dnsFiles, c.ReadOnlyRootFilesystem)))
		}
		if d.cfg.Locks != nil {
			labels[LabelFence] = "true"
			opts = append(opts, d.withFence(spec.ID)) // last: it wraps the resolved args
		}
		cid := ContainerID(spec.ID, c.Name)
		_, err := d.client.NewContainer(ctx, cid,
			containerd.WithImage(images[i]),
			containerd.WithSnapshotter(d.cfg.Snapshotter),
			containerd.WithNewSnapshot(cid, images[i]),
			containerd.WithRuntime(d.cfg.Runtime, nil),
			containerd.WithNewSpec(opts...),
			containerd.WithContainerLabels(labels),
		)
		if err != nil {
			return fmt.Errorf("containerd: VM %s: container %s: %w", spec.ID, c.Name, err)
		}
	}
	d.mu.Lock()
	d.fresh[spec.ID] = ip
	d.mu.Unlock()
	d.log.Info("VM created", "vm", spec.ID, "path", spec.Path, "ip", ip, "containers", len(spec.Containers), "initContainers", len(spec.InitContainers))
	return nil
}

// takeFresh says whether Create attached the VM in this driver's life and
// it was not started since (then its containers have no tasks and its
// attachment needs no CHECK), and returns its IP. It is true once.
func (d *Driver) takeFresh(vmID string) (ip string, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ip, ok = d.fresh[vmID]
	delete(d.fresh, vmID)
	return ip, ok
}

// specOpts builds a container's OCI spec the Kubernetes way: Command replaces
// the image's entrypoint, Args alone replace its cmd.
func specOpts(c api.Container, img containerd.Image, netns, cgroup, host string, l Limits) []oci.SpecOpts {
	var opts []oci.SpecOpts
	switch {
	case len(c.Command) > 0:
		opts = append(opts, oci.WithImageConfig(img), oci.WithProcessArgs(append(append([]string{}, c.Command...), c.Args...)...))
	case len(c.Args) > 0:
		opts = append(opts, oci.WithImageConfigArgs(img, c.Args))
	default:
		opts = append(opts, oci.WithImageConfig(img))
	}
	if len(c.Env) > 0 {
		env := make([]string, 0, len(c.Env))
		for _, e := range c.Env {
			env = append(env, e.Name+"="+e.Value)
		}
		opts = append(opts, oci.WithEnv(env))
	}
	if c.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(c.WorkingDir))
	}
	if c.RunAsUser != nil {
		// The uid's group comes from the image's /etc/passwd (0 if it has none), as with the CRI.
		opts = append(opts, oci.WithUserID(uint32(*c.RunAsUser)))
	}
	if c.ReadOnlyRootFilesystem {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	opts = append(opts,
		oci.WithHostname(host),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns}),
		oci.WithCgroup(cgroup+"/"+c.Name),
	)
	// The VM cgroup enforces the allocation for all containers together; each
	// container also carries it, so its own cgroup shows the VM's limits.
	if l.CPUQuota > 0 {
		opts = append(opts, oci.WithCPUCFS(l.CPUQuota, cfsPeriod))
	}
	if l.CPUShares > 0 {
		opts = append(opts, oci.WithCPUShares(l.CPUShares))
	}
	if l.MemLimit > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(l.MemLimit)))
	}
	return opts
}

var notHostname = regexp.MustCompile(`[^a-z0-9-]+`)

// hostname is the VM's UTS host name: spec.Hostname, else its name made a
// DNS label.
func hostname(spec runtime.VMSpec) string {
	if spec.Hostname != "" {
		return spec.Hostname
	}
	name := spec.ID
	if spec.Path != "" {
		name = filepath.Base(spec.Path)
	}
	name = strings.Trim(notHostname.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	if name == "" {
		return "vm"
	}
	return name
}

// ensureNetwork pins the VM's netns and attaches it; both steps are idempotent.
func (d *Driver) ensureNetwork(ctx context.Context, vmID string) (netns, ip string, err error) {
	n := d.network()
	if n == nil {
		netns, err = network.CreateNamedNetNS(network.DefaultNetNSPrefix + vmID)
		return netns, "", err
	}
	if netns, err = n.CreateNetNS(vmID); err != nil {
		return "", "", fmt.Errorf("containerd: VM %s: %w", vmID, err)
	}
	if ip, err = n.Setup(ctx, vmID, netns); err != nil {
		return "", "", fmt.Errorf("containerd: VM %s: %w", vmID, err)
	}
	return netns, ip, nil
}
