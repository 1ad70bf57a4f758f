package server

import (
	"archive/tar"
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// ociArchive is a minimal OCI image layout tar naming ref, with filler so
// two archives of the same ref differ.
func ociArchive(t *testing.T, ref, filler string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name, body string) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	add("oci-layout", `{"imageLayoutVersion":"1.0.0"}`)
	add("index.json", `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:00","size":1,"annotations":{"io.containerd.image.name":"`+ref+`"}}]}`)
	add("filler", filler)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (e *env) libraryArchives(t *testing.T) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(e.dir, "library", "*.tar"))
	return m
}

func TestContentLibrary(t *testing.T) {
	e := startVCenter(t, Config{})
	importURL := e.url + "/api/v1/library/import?name=busybox"
	if code, eb := rawRequest(t, http.MethodPost, importURL, e.s.AdminToken(), ociArchive(t, "docker.io/library/busybox:latest", "one")); code != http.StatusCreated {
		t.Fatalf("import: %d %s", code, eb.Error)
	}
	o, err := e.admin.Get(ctxT(t), "/library/busybox")
	if err != nil {
		t.Fatal(err)
	}
	var spec api.ImageSpec
	_ = o.DecodeSpec(&spec)
	if spec.Ref != "docker.io/library/busybox:latest" || !strings.HasPrefix(spec.Digest, "sha256:") {
		t.Errorf("library item: %+v", spec)
	}
	first := e.libraryArchives(t)
	if len(first) != 1 {
		t.Fatalf("archives on disk after one import: %v", first)
	}

	// A new archive under the same name replaces the old one, on disk too,
	// and hosts fetch the new one.
	second := ociArchive(t, "docker.io/library/busybox:latest", "two")
	if code, eb := rawRequest(t, http.MethodPost, importURL, e.s.AdminToken(), second); code != http.StatusCreated {
		t.Fatalf("re-import: %d %s", code, eb.Error)
	}
	if now := e.libraryArchives(t); len(now) != 1 || now[0] == first[0] {
		t.Errorf("archives after re-import: %v (before %v)", now, first)
	}
	blob, err := e.join.Raw(ctxT(t), http.MethodGet, "/api/v1/library/blob", map[string][]string{"name": {"busybox"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(blob)
	blob.Close()
	if !bytes.Equal(got, second) {
		t.Errorf("hosts fetch %d bytes, not the re-imported archive (%d bytes)", len(got), len(second))
	}

	// Not an image archive: refused, nothing written.
	before := e.revision(t)
	code, eb := rawRequest(t, http.MethodPost, e.url+"/api/v1/library/import?name=junk", e.s.AdminToken(), []byte("not a tar at all"))
	if code != http.StatusBadRequest || !strings.Contains(eb.Error, "not an image archive") {
		t.Errorf("junk import: %d %q", code, eb.Error)
	}
	if e.revision(t) != before || len(e.libraryArchives(t)) != 1 {
		t.Errorf("a refused import wrote something")
	}

	// Deleting the item removes its archive.
	if err := e.admin.Delete(ctxT(t), "/library/busybox", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if left := e.libraryArchives(t); len(left) != 0 {
		t.Errorf("archives left after delete: %v", left)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "library")); err != nil {
		t.Errorf("library dir: %v", err)
	}
}

func TestContentLibrarySweepsOrphansAtStart(t *testing.T) {
	dir := t.TempDir()
	e := startVCenter(t, Config{DataDir: dir})
	if code, eb := rawRequest(t, http.MethodPost, e.url+"/api/v1/library/import?name=busybox", e.s.AdminToken(), ociArchive(t, "docker.io/library/busybox:latest", "x")); code != http.StatusCreated {
		t.Fatalf("import: %d %s", code, eb.Error)
	}
	kept := e.libraryArchives(t)
	// What a crash can leave: an upload never committed, a half-written temp file.
	for _, f := range []string{"busybox-0123456789abcdef.tar", ".busybox.123.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, "library", f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	startVCenter(t, Config{DataDir: dir})
	left, _ := filepath.Glob(filepath.Join(dir, "library", "*"))
	hidden, _ := filepath.Glob(filepath.Join(dir, "library", ".*"))
	if len(left) != 1 || left[0] != kept[0] || len(hidden) != 0 {
		t.Errorf("library files after restart: %v %v, want only %v", left, hidden, kept)
	}
}
