// Package imagebuild writes a small, reproducible OCI image archive around a
// static busybox binary: the image podsphere's data-plane tests and labs run
// when no registry is reachable. The archive is an OCI image layout tar
// (oci-layout, index.json, blobs/sha256/...) that `ctr images import` and the
// containerd client's Import both accept.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Epoch is the fixed timestamp of every file and of the image config, so the
// same inputs always give the same archive bytes.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Media types and annotations of the OCI image spec and containerd.
const (
	MediaTypeLayout   = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"

	AnnotationRefName   = "org.opencontainers.image.ref.name"
	AnnotationImageName = "io.containerd.image.name"
)

// DefaultIndexHTML is what /www/index.html holds unless Options says otherwise.
const DefaultIndexHTML = "<html><body><h1>podsphere busybox</h1></body></html>\n"

// Options says what goes into the image.
type Options struct {
	// Name is the full image reference, e.g. docker.io/library/busybox:latest.
	Name string
	// Busybox is the static busybox binary; default /bin/busybox.
	Busybox string
	// Applets are the names symlinked to busybox in /bin; default `busybox --list`.
	Applets []string
	// IndexHTML is the content of /www/index.html; default DefaultIndexHTML.
	IndexHTML string
	// Arch is the image platform's architecture; default the build machine's.
	Arch string
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type imageConfig struct {
	Created      string `json:"created"`
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Env        []string `json:"Env"`
		Cmd        []string `json:"Cmd"`
		WorkingDir string   `json:"WorkingDir"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// Build writes the image archive to w.
func Build(w io.Writer, opts Options) error {
	if opts.Name == "" {
		return fmt.Errorf("imagebuild: image name is required")
	}
	if opts.Busybox == "" {
		opts.Busybox = "/bin/busybox"
	}
	if opts.IndexHTML == "" {
		opts.IndexHTML = DefaultIndexHTML
	}
	if opts.Arch == "" {
		opts.Arch = runtime.GOARCH
	}
	bin, err := os.ReadFile(opts.Busybox)
	if err != nil {
		return fmt.Errorf("imagebuild: read busybox: %w", err)
	}
	if opts.Applets == nil {
		if opts.Applets, err = ListApplets(opts.Busybox); err != nil {
			return err
		}
	}

	layer, err := Layer(bin, opts.Applets, opts.IndexHTML)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return err
	}
	// The gzip header carries no name and a zero mtime: reproducible.
	if _, err := zw.Write(layer); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}

	var cfg imageConfig
	cfg.Created = Epoch.Format(time.RFC3339)
	cfg.Architecture = opts.Arch
	cfg.OS = "linux"
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cfg.Config.Cmd = []string{"sh"}
	cfg.Config.WorkingDir = "/www" // so a bare `httpd -f -p 80` serves the index page
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = []string{digestOf(layer)}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return err
	}

	manifest := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Config        descriptor   `json:"config"`
		Layers        []descriptor `json:"layers"`
	}{
		SchemaVersion: 2,
		MediaType:     MediaTypeManifest,
		Config:        descriptor{MediaType: MediaTypeConfig, Digest: digestOf(cfgJSON), Size: int64(len(cfgJSON))},
		Layers:        []descriptor{{MediaType: MediaTypeLayer, Digest: digestOf(gz.Bytes()), Size: int64(gz.Len())}},
	}
	manJSON, err := json.Marshal(manifest)
	if err != nil {
		return err
	}

	index := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}{
		SchemaVersion: 2,
		MediaType:     MediaTypeLayout,
		Manifests: []descriptor{{
			MediaType: MediaTypeManifest,
			Digest:    digestOf(manJSON),
			Size:      int64(len(manJSON)),
			Annotations: map[string]string{
				AnnotationImageName: opts.Name,
				AnnotationRefName:   refName(opts.Name),
			},
			Platform: &platform{Architecture: opts.Arch, OS: "linux"},
		}},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	entries := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", indexJSON},
	}
	for _, blob := range [][]byte{cfgJSON, manJSON, gz.Bytes()} {
		entries = append(entries, struct {
			name string
			data []byte
		}{"blobs/sha256/" + strings.TrimPrefix(digestOf(blob), "sha256:"), blob})
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: Epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if err := writeFile(tw, e.name, 0o644, e.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// Layer returns the uncompressed root filesystem tar: /bin/busybox and its
// applet symlinks, /etc/passwd and /etc/group, /tmp, /root, /www/index.html.
func Layer(busybox []byte, applets []string, indexHTML string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := []struct {
		name string
		mode int64
	}{{"bin/", 0o755}, {"etc/", 0o755}, {"proc/", 0o555}, {"root/", 0o700}, {"sys/", 0o555}, {"tmp/", 0o1777}, {"dev/", 0o755}, {"www/", 0o755}}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: Epoch, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	if err := writeFile(tw, "bin/busybox", 0o755, busybox); err != nil {
		return nil, err
	}
	names := append([]string(nil), applets...)
	sort.Strings(names)
	seen := map[string]bool{"busybox": true}
	for _, a := range names {
		if a == "" || seen[a] || strings.Contains(a, "/") {
			continue
		}
		seen[a] = true
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: Epoch, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data string
	}{
		{"etc/group", 0o644, "root:x:0:\nnogroup:x:65534:\n"},
		{"etc/hostname", 0o644, "busybox\n"},
		{"etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
		{"www/index.html", 0o644, indexHTML},
	}
	for _, f := range files {
		if err := writeFile(tw, f.name, f.mode, []byte(f.data)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ListApplets asks the busybox binary which applets it has.
func ListApplets(busybox string) ([]string, error) {
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("imagebuild: %s --list: %w", busybox, err)
	}
	return strings.Fields(string(out)), nil
}

func writeFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: Epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// refName is the tag part of a reference, as containerd's exporter writes
// org.opencontainers.image.ref.name ("latest" for ".../busybox:latest").
func refName(name string) string {
	if i := strings.LastIndex(name, "@"); i >= 0 {
		return name
	}
	slash := strings.LastIndex(name, "/")
	if i := strings.LastIndex(name, ":"); i > slash {
		return name[i+1:]
	}
	return "latest"
}
