package server

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/vcenter/inventory"
	"github.com/podsphere/podsphere/vcenter/store"
)

// MaxImageBytes bounds one Content Library archive.
const MaxImageBytes = 2 << 30

// Annotations that name the image in an OCI archive's index.json.
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = "org.opencontainers.image.ref.name"
)

func (s *Server) libraryFile(name, digest string) string { return s.inv.LibraryFile(name, digest) }

// handleLibraryImport stores the request body, an OCI (or docker save)
// image archive, as library item ?name=: streamed to a temp file with its
// sha256, fsynced, checked, renamed into place and recorded as /library/NAME.
func (s *Server) handleLibraryImport(w http.ResponseWriter, r *http.Request, user string) error {
	started := s.now()
	name := r.URL.Query().Get("name")
	if err := api.ValidName(name); err != nil {
		return fmt.Errorf("library item name: %w", err)
	}
	path := "/library/" + name
	if err := os.MkdirAll(s.library, 0o700); err != nil {
		return fmt.Errorf("content library %s: %v: %w", s.library, err, api.ErrUnavailable)
	}
	tmp, err := os.CreateTemp(s.library, "."+name+".*.tmp")
	if err != nil {
		return fmt.Errorf("content library: %v: %w", err, api.ErrUnavailable)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // a no-op once renamed
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r.Body, MaxImageBytes+1))
	if err != nil {
		return fmt.Errorf("receiving image archive for %s: %v: %w", path, err, api.ErrInvalid)
	}
	if n > MaxImageBytes {
		return fmt.Errorf("image archive for %s is larger than %d bytes: %w", path, int64(MaxImageBytes), api.ErrInvalid)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("content library: %v: %w", err, api.ErrUnavailable)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("content library: %v: %w", err, api.ErrUnavailable)
	}
	ref, err := archiveRef(tmp)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	spec := api.ImageSpec{Name: name, Ref: ref, Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: n}
	file := s.libraryFile(name, spec.Digest)
	s.libMu.Lock()
	defer s.libMu.Unlock()
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("content library: %v: %w", err, api.ErrUnavailable)
	}
	syncDir(s.library)
	var out *api.Object
	var old api.ImageSpec
	err = s.inv.Update(user, func(t *inventory.Txn) error {
		cur, err := t.Get(path)
		if err != nil && !isNotFound(err) {
			return err
		}
		if cur != nil {
			_ = cur.DecodeSpec(&old)
		}
		if cur == nil {
			out, err = t.Create(api.New(api.KindImage, path, spec))
		} else {
			cur.SetSpec(spec)
			out, err = t.Update(cur)
		}
		if err != nil {
			return err
		}
		if err := t.Event("info", "LibraryItemImportedEvent", path, "Image %s imported into the content library (%s, %s, %d bytes)", name, orNone(ref), spec.Digest, n); err != nil {
			return err
		}
		return t.Task("ImportLibraryItem_Task", path, started, nil)
	})
	if err != nil {
		if !s.libraryUses(path, spec.Digest) {
			os.Remove(file) // the inventory still points at the old archive
		}
		return err
	}
	if old.Digest != "" && old.Digest != spec.Digest {
		os.Remove(s.libraryFile(name, old.Digest))
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func orNone(ref string) string {
	if ref == "" {
		return "no image name in the archive"
	}
	return ref
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// archiveRef reads an image archive's index.json (OCI layout) or
// manifest.json (docker save) and returns the image reference it records
// ("" when it records none). Anything else is refused as invalid.
func archiveRef(r io.Reader) (string, error) {
	tr := tar.NewReader(r)
	var index, manifest []byte
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("not an image archive (want an OCI image layout or docker save tar): %v: %w", err, api.ErrInvalid)
		}
		var dst *[]byte
		switch strings.TrimPrefix(hdr.Name, "./") {
		case "index.json":
			dst = &index
		case "manifest.json":
			dst = &manifest
		default:
			continue
		}
		if *dst, err = io.ReadAll(io.LimitReader(tr, 4<<20)); err != nil {
			return "", fmt.Errorf("image archive: %s: %v: %w", hdr.Name, err, api.ErrInvalid)
		}
	}
	switch {
	case index != nil:
		var idx struct {
			Manifests []struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		if err := json.Unmarshal(index, &idx); err != nil {
			return "", fmt.Errorf("image archive: index.json: %v: %w", err, api.ErrInvalid)
		}
		if len(idx.Manifests) == 0 {
			return "", fmt.Errorf("image archive: index.json lists no image: %w", api.ErrInvalid)
		}
		a := idx.Manifests[0].Annotations
		if n := a[annotationImageName]; n != "" {
			return n, nil
		}
		if n := a[annotationRefName]; strings.ContainsAny(n, "/:") {
			return n, nil // a full reference; a bare tag names no image
		}
		return "", nil
	case manifest != nil:
		var m []struct {
			RepoTags []string `json:"RepoTags"`
		}
		if err := json.Unmarshal(manifest, &m); err != nil {
			return "", fmt.Errorf("image archive: manifest.json: %v: %w", err, api.ErrInvalid)
		}
		if len(m) > 0 && len(m[0].RepoTags) > 0 {
			return m[0].RepoTags[0], nil
		}
		return "", nil
	}
	return "", fmt.Errorf("not an image archive: no index.json (OCI image layout) or manifest.json (docker save) in the tar: %w", api.ErrInvalid)
}

// handleLibraryBlob streams library item ?name='s archive (hosts fetch images here).
func (s *Server) handleLibraryBlob(w http.ResponseWriter, r *http.Request, _ string) error {
	name := r.URL.Query().Get("name")
	if err := api.ValidName(name); err != nil {
		return fmt.Errorf("library item name: %w", err)
	}
	o, err := s.store.Get("/library/" + name)
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("content library has no image %q (psc library.ls lists them): %w", name, api.ErrNotFound)
		}
		return err
	}
	var spec api.ImageSpec
	_ = o.DecodeSpec(&spec)
	f, err := os.Open(s.libraryFile(name, spec.Digest))
	if err != nil {
		return fmt.Errorf("content library item %s: archive missing on vcenter: %v: %w", name, err, api.ErrUnavailable)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("content library item %s: %v: %w", name, err, api.ErrUnavailable)
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("X-Podsphere-Digest", spec.Digest)
	http.ServeContent(w, r, name+".tar", st.ModTime(), f)
	return nil
}

// libraryUses says whether library item path currently records digest.
func (s *Server) libraryUses(path, digest string) bool {
	o, err := s.store.Get(path)
	if err != nil {
		return false
	}
	var spec api.ImageSpec
	_ = o.DecodeSpec(&spec)
	return spec.Digest == digest
}

// sweepLibrary removes, at start-up, archives no library item points at and
// unfinished uploads: what a crash between a file change and its inventory
// write left behind.
func (s *Server) sweepLibrary() {
	entries, err := os.ReadDir(s.library)
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for _, o := range s.store.List(store.Query{Kind: api.KindImage}).Items {
		var spec api.ImageSpec
		_ = o.DecodeSpec(&spec)
		keep[filepath.Base(s.libraryFile(o.Name(), spec.Digest))] = true
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.Remove(filepath.Join(s.library, e.Name())); err == nil {
				s.log.Printf("content library: removed %s, which no library item uses", e.Name())
			}
		}
	}
}
