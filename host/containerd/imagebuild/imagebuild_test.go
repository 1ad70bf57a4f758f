package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/internal/testenv"
)

func fakeBusybox(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(p, []byte("#!fake busybox\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func readTar(t *testing.T, b []byte) (map[string][]byte, map[string]*tar.Header) {
	t.Helper()
	files := map[string][]byte{}
	hdrs := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, hdrs
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = data
		hdrs[h.Name] = h
	}
}

func TestBuildLayout(t *testing.T) {
	opts := Options{Name: "docker.io/library/busybox:latest", Busybox: fakeBusybox(t), Applets: []string{"sh", "httpd", "busybox", "[", "sleep"}, Arch: "amd64"}
	var a, b bytes.Buffer
	if err := Build(&a, opts); err != nil {
		t.Fatal(err)
	}
	if err := Build(&b, opts); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two builds of the same inputs differ: archive is not reproducible")
	}

	files, hdrs := readTar(t, a.Bytes())
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci-layout = %q", files["oci-layout"])
	}
	for name, data := range files {
		if hex, ok := strings.CutPrefix(name, "blobs/sha256/"); ok && hex != "" {
			if got := digestHex(data); got != hex {
				t.Errorf("blob %s has digest %s", name, got)
			}
		}
		if !hdrs[name].ModTime.Equal(Epoch) {
			t.Errorf("%s mtime %v, want %v", name, hdrs[name].ModTime, Epoch)
		}
	}

	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("index has %d manifests", len(index.Manifests))
	}
	m := index.Manifests[0]
	if m.Annotations[AnnotationImageName] != opts.Name || m.Annotations[AnnotationRefName] != "latest" {
		t.Fatalf("annotations = %v", m.Annotations)
	}
	var manifest struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	if err := json.Unmarshal(files[blobPath(m.Digest)], &manifest); err != nil {
		t.Fatal(err)
	}
	var cfg imageConfig
	if err := json.Unmarshal(files[blobPath(manifest.Config.Digest)], &cfg); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(files[blobPath(manifest.Layers[0].Digest)]))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if "sha256:"+digestHex(layer) != cfg.RootFS.DiffIDs[0] {
		t.Fatal("diff_id does not match the uncompressed layer")
	}

	lfiles, lhdrs := readTar(t, layer)
	if string(lfiles["bin/busybox"]) != "#!fake busybox\n" || lhdrs["bin/busybox"].Mode != 0o755 {
		t.Fatal("bin/busybox missing or not executable")
	}
	for _, a := range []string{"sh", "httpd", "[", "sleep"} {
		h := lhdrs["bin/"+a]
		if h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("bin/%s is not a symlink to busybox: %+v", a, h)
		}
	}
	if !strings.HasPrefix(string(lfiles["etc/passwd"]), "root:x:0:0:") {
		t.Error("etc/passwd has no root")
	}
	if string(lfiles["www/index.html"]) != DefaultIndexHTML {
		t.Error("www/index.html missing")
	}
	if h := lhdrs["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Error("tmp/ missing or not sticky")
	}
}

func TestListApplets(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		testenv.Unavailable(t, "skipping: /bin/busybox not installed (apt-get install busybox-static)")
	}
	applets, err := ListApplets("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"sh": false, "httpd": false, "wget": false, "sleep": false}
	for _, a := range applets {
		if _, ok := want[a]; ok {
			want[a] = true
		}
	}
	for a, ok := range want {
		if !ok {
			t.Errorf("busybox --list lacks %s", a)
		}
	}
}

func TestRefName(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/library/busybox:latest": "latest",
		"localhost:5000/busybox":           "latest",
		"localhost:5000/busybox:1.36":      "1.36",
	} {
		if got := refName(in); got != want {
			t.Errorf("refName(%q) = %q, want %q", in, got, want)
		}
	}
}

func digestHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func blobPath(digest string) string {
	return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:")
}
