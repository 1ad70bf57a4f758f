package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// libraryImportOptions runs `psc library.import NAME FILE.tar`.
type libraryImportOptions struct {
	env        *Env
	name, file string
}

func newLibraryImportCommand(env *Env) *cobra.Command {
	o := &libraryImportOptions{env: env}
	return &cobra.Command{
		Use:   "library.import NAME FILE.tar",
		Short: "Store an OCI image archive in vcenter's content library as NAME",
		Long: "Store an OCI image archive (an OCI image layout tar, as `make image` or `ctr images export`\n" +
			"write, or a `docker save` tar) in vcenter's content library. A VM container with\n" +
			"`image: NAME`, or with the image reference recorded in the archive, runs it.",
		Example: "  psc library.import busybox bin/busybox.tar",
		Args:    exactArgs(2, "a library item name and an image archive"),
		RunE:    runE(o),
	}
}

func (o *libraryImportOptions) Complete(_ *cobra.Command, args []string) error {
	o.name, o.file = args[0], args[1]
	return nil
}

func (o *libraryImportOptions) Validate() error {
	if err := api.ValidName(o.name); err != nil {
		return usageErr(fmt.Errorf("library item name: %w", err))
	}
	return nil
}

func (o *libraryImportOptions) Run(ctx context.Context) error {
	f, err := os.Open(o.file)
	if err != nil {
		return usagef("library.import: %v", err)
	}
	defer f.Close()
	c, err := o.env.streamClient()
	if err != nil {
		return err
	}
	body, err := c.Raw(ctx, "POST", "/api/v1/library/import", url.Values{"name": {o.name}}, f)
	if err != nil {
		return err
	}
	defer body.Close()
	var out api.Object
	if err := json.NewDecoder(body).Decode(&out); err != nil {
		return fmt.Errorf("library.import: bad answer from vcenter: %v: %w", err, api.ErrUnavailable)
	}
	if o.env.JSON {
		return writeJSON(o.env.Out, &out)
	}
	var spec api.ImageSpec
	_ = out.DecodeSpec(&spec)
	fmt.Fprintf(o.env.Out, "Imported %s into the content library: %s, %s, %s\n", out.Path, orDash(spec.Ref), sizeString(spec.Size), spec.Digest)
	return nil
}

// libraryLsOptions runs `psc library.ls`.
type libraryLsOptions struct {
	env *Env
}

func newLibraryLsCommand(env *Env) *cobra.Command {
	o := &libraryLsOptions{env: env}
	return &cobra.Command{
		Use:     "library.ls",
		Short:   "List the images in vcenter's content library",
		Example: "  psc library.ls\n  psc library.ls -json",
		Args:    exactArgs(0, "no arguments"),
		RunE:    runE(o),
	}
}

func (o *libraryLsOptions) Complete(*cobra.Command, []string) error { return nil }
func (o *libraryLsOptions) Validate() error                         { return nil }

func (o *libraryLsOptions) Run(ctx context.Context) error {
	c, err := o.env.Client()
	if err != nil {
		return err
	}
	l, err := c.List(ctx, client.ListOptions{Kind: api.KindImage})
	if err != nil {
		return err
	}
	items := l.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Path < items[j].Path })
	if o.env.JSON {
		if items == nil {
			items = []*api.Object{}
		}
		return writeJSON(o.env.Out, items)
	}
	rows := make([][]string, 0, len(items))
	for _, it := range items {
		var spec api.ImageSpec
		_ = it.DecodeSpec(&spec)
		rows = append(rows, []string{it.Name(), orDash(spec.Ref), sizeString(spec.Size),
			shortDigest(spec.Digest), timeString(it.Modified, o.env.Location)})
	}
	return writeTable(o.env.Out, []string{"NAME", "REFERENCE", "SIZE", "DIGEST", "IMPORTED"}, rows)
}

// sizeString prints bytes as B, KiB, MiB or GiB with one decimal.
func sizeString(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	f, suffix := float64(n), "B"
	for _, s := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if f < unit {
			break
		}
		f, suffix = f/unit, s
	}
	return fmt.Sprintf("%.1f%s", f, suffix)
}

// shortDigest is sha256:0123456789ab, as registries print it.
func shortDigest(d string) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return orDash(d)
	}
	return algo + ":" + hex[:12]
}
