package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/distribution/reference"
	"github.com/opencontainers/image-spec/identity"

	"github.com/podsphere/podsphere/api"
)

// NormalizeImage turns "busybox" into "docker.io/library/busybox:latest", the
// name containerd stores.
func NormalizeImage(name string) (string, error) {
	ref, err := reference.ParseDockerRef(name)
	if err != nil {
		return "", fmt.Errorf("image %q: %v: %w", name, err, api.ErrInvalid)
	}
	return ref.String(), nil
}

// EnsureImage makes the image present and unpacked in the driver's namespace:
// from the namespace itself, else from the content library (Images), else,
// when the library does not have it, pulled from its registry.
func (d *Driver) EnsureImage(ctx context.Context, name string) (containerd.Image, error) {
	ref, err := NormalizeImage(name)
	if err != nil {
		return nil, err
	}
	ctx = d.nsCtx(ctx)
	// The common case, an image that is there and unpacked, needs no lock:
	// VMs being created side by side do not wait for each other here.
	if img, err := d.client.GetImage(ctx, ref); err == nil {
		if ok, err := img.IsUnpacked(ctx, d.cfg.Snapshotter); err == nil && ok {
			return img, nil
		}
	}
	d.importMu.Lock()
	defer d.importMu.Unlock()

	img, err := d.client.GetImage(ctx, ref)
	if err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	if err != nil {
		img, err = d.importImage(ctx, name, ref)
		if isNotFound(err) {
			img, err = d.client.Pull(ctx, ref, containerd.WithPullUnpack, containerd.WithPullSnapshotter(d.cfg.Snapshotter))
			if err != nil {
				return nil, fmt.Errorf("image %s: not in the content library, pull failed: %v: %w", ref, err, api.ErrNotFound)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	unpacked, err := img.IsUnpacked(ctx, d.cfg.Snapshotter)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	if !unpacked {
		if err := img.Unpack(ctx, d.cfg.Snapshotter); err != nil {
			return nil, fmt.Errorf("image %s: unpack: %w", ref, err)
		}
	}
	return img, nil
}

// imageFor makes an image ready as a container's imagePullPolicy says:
// IfNotPresent ("") is EnsureImage; Never takes only an image already on
// the host (unpacked in the namespace), api.ErrNotFound otherwise; Always
// fetches it again from the content library (else pulls it), even when
// the host has it, so a library item replaced under the same name is
// picked up.
func (d *Driver) imageFor(ctx context.Context, name, policy string) (containerd.Image, error) {
	switch policy {
	case api.PullNever:
		ref, err := NormalizeImage(name)
		if err != nil {
			return nil, err
		}
		ctx = d.nsCtx(ctx)
		img, err := d.client.GetImage(ctx, ref)
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("image %s is not on this host and imagePullPolicy is Never: %w", ref, api.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		if ok, err := img.IsUnpacked(ctx, d.cfg.Snapshotter); err != nil || !ok {
			if err := img.Unpack(ctx, d.cfg.Snapshotter); err != nil {
				return nil, fmt.Errorf("image %s: unpack: %w", ref, err)
			}
		}
		return img, nil
	case api.PullAlways:
		return d.fetchImage(ctx, name)
	default:
		return d.EnsureImage(ctx, name)
	}
}

// fetchImage imports the image from the content library (pulls it when
// the library has none) whether or not the host has it, and unpacks it.
func (d *Driver) fetchImage(ctx context.Context, name string) (containerd.Image, error) {
	ref, err := NormalizeImage(name)
	if err != nil {
		return nil, err
	}
	ctx = d.nsCtx(ctx)
	d.importMu.Lock()
	defer d.importMu.Unlock()
	img, err := d.importImage(ctx, name, ref)
	if isNotFound(err) {
		img, err = d.client.Pull(ctx, ref, containerd.WithPullUnpack, containerd.WithPullSnapshotter(d.cfg.Snapshotter))
		if err != nil {
			return nil, fmt.Errorf("image %s: imagePullPolicy Always: not in the content library, pull failed: %v: %w", ref, err, api.ErrNotFound)
		}
	}
	if err != nil {
		return nil, err
	}
	if ok, err := img.IsUnpacked(ctx, d.cfg.Snapshotter); err != nil || !ok {
		if err := img.Unpack(ctx, d.cfg.Snapshotter); err != nil {
			return nil, fmt.Errorf("image %s: unpack: %w", ref, err)
		}
	}
	return img, nil
}

// refreshRootFS is imagePullPolicy Always at a container's start: it
// fetches the image again and, when its layers changed, replaces the
// container's root filesystem snapshot with one of the new image (what
// the container wrote to the old one is lost, as with a new Kubernetes
// container). The container must have no task. The OCI spec (command,
// environment from the image config) stays the one made at create.
func (d *Driver) refreshRootFS(ctx context.Context, c containerd.Container) error {
	info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return err
	}
	img, err := d.fetchImage(ctx, info.Image)
	if err != nil {
		return err
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		return err
	}
	parent := identity.ChainID(diffIDs).String()
	sn := d.client.SnapshotService(info.Snapshotter)
	cur, err := sn.Stat(ctx, info.SnapshotKey)
	if err == nil && cur.Parent == parent {
		return nil
	}
	if err == nil {
		if err := sn.Remove(ctx, info.SnapshotKey); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("image %s: replace root filesystem: %w", info.Image, err)
		}
	}
	if _, err := sn.Prepare(ctx, info.SnapshotKey, parent); err != nil {
		return fmt.Errorf("image %s: new root filesystem: %w", info.Image, err)
	}
	d.log.Info("root filesystem replaced by the image's new version (imagePullPolicy Always)", "container", c.ID(), "image", info.Image)
	return nil
}

func (d *Driver) importImage(ctx context.Context, name, ref string) (containerd.Image, error) {
	if d.cfg.Images == nil {
		return nil, fmt.Errorf("image %s: no content library: %w", ref, api.ErrNotFound)
	}
	rc, err := d.cfg.Images.Fetch(ctx, name)
	if err != nil && name != ref && isNotFound(err) {
		rc, err = d.cfg.Images.Fetch(ctx, ref)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: content library: %w", ref, err)
	}
	defer rc.Close()
	imgs, err := d.client.Import(ctx, rc)
	if err != nil {
		return nil, fmt.Errorf("image %s: import: %w", ref, err)
	}
	for _, i := range imgs {
		if i.Name == ref {
			return containerd.NewImage(d.client, i), nil
		}
	}
	if len(imgs) == 1 {
		// The archive names its image differently: record it under the name asked for.
		i, err := d.client.ImageService().Create(ctx, images.Image{Name: ref, Target: imgs[0].Target})
		if err != nil && !errdefs.IsAlreadyExists(err) {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		if err != nil {
			i, err = d.client.ImageService().Get(ctx, ref)
			if err != nil {
				return nil, err
			}
		}
		return containerd.NewImage(d.client, i), nil
	}
	return nil, fmt.Errorf("image %s: archive holds %d images, none named so: %w", ref, len(imgs), api.ErrNotFound)
}

func isNotFound(err error) bool {
	return err != nil && (errors.Is(err, api.ErrNotFound) || errdefs.IsNotFound(err) || errors.Is(err, os.ErrNotExist))
}
