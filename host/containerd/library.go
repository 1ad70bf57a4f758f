package containerd

import (
	"context"
	"fmt"
	"io"
	"net/url"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// VCenterLibrary is the ImageSource of a host agent: vcenter's Content
// Library, read with the join token.
type VCenterLibrary struct {
	c *client.Client
}

// NewVCenterLibrary reads the library of the vcenter at url.
func NewVCenterLibrary(url, joinToken string) (*VCenterLibrary, error) {
	c, err := client.New(url, joinToken)
	if err != nil {
		return nil, err
	}
	return &VCenterLibrary{c: c}, nil
}

// Fetch streams the archive of the library item that name means: the item
// called name (a container's `image: busybox`), else the item whose image
// reference is name once both are normalized (docker.io/library/busybox:latest).
func (l *VCenterLibrary) Fetch(ctx context.Context, name string) (io.ReadCloser, error) {
	item, err := l.resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	return l.c.Raw(ctx, "GET", "/api/v1/library/blob", url.Values{"name": {item}}, nil)
}

func (l *VCenterLibrary) resolve(ctx context.Context, name string) (string, error) {
	if api.ValidName(name) == nil {
		if _, err := l.c.Get(ctx, "/library/"+name); err == nil {
			return name, nil
		} else if !isNotFound(err) {
			return "", err
		}
	}
	want, err := NormalizeImage(name)
	if err != nil {
		return "", fmt.Errorf("content library has no image %q: %w", name, api.ErrNotFound)
	}
	items, err := l.c.List(ctx, client.ListOptions{Kind: api.KindImage})
	if err != nil {
		return "", err
	}
	for _, o := range items.Items {
		var spec api.ImageSpec
		if o.DecodeSpec(&spec) != nil || spec.Ref == "" {
			continue
		}
		if ref, err := NormalizeImage(spec.Ref); err == nil && ref == want {
			return o.Name(), nil
		}
	}
	return "", fmt.Errorf("content library has no image named %q or with reference %s: %w", name, want, api.ErrNotFound)
}
