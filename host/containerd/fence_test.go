package containerd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/ha"
	"github.com/podsphere/podsphere/host/halock"
)

func TestWithFenceWrapsTheResolvedEntryPoint(t *testing.T) {
	ds := t.TempDir()
	locks, err := halock.New(halock.Config{Host: "/dc1/host/c1/esx-01", Datastores: []string{ds}, Timings: ha.DefaultTimings()})
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), FenceBinaryName)
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Locks: locks, FenceBinary: bin}
	if err := checkFence(cfg); err != nil {
		t.Fatal(err)
	}
	d := &Driver{cfg: cfg}
	s := &oci.Spec{Process: &specs.Process{Args: []string{"/bin/httpd", "-f"}}}
	if err := d.withFence("uid-1")(context.Background(), nil, nil, s); err != nil {
		t.Fatal(err)
	}
	want := []string{FenceMount, "-lock", "/.podsphere/locks/uid-1.json", "-host", "/dc1/host/c1/esx-01", "-lease", "3s", "--", "/bin/httpd", "-f"}
	if !slices.Equal(s.Process.Args, want) {
		t.Fatalf("args %q, want %q", s.Process.Args, want)
	}
	var fence, lockDir bool
	for _, m := range s.Mounts {
		ro := slices.Contains(m.Options, "ro")
		switch m.Destination {
		case FenceMount:
			fence = m.Source == bin && ro
		case LocksMount:
			lockDir = m.Source == locks.Dir() && ro
		}
	}
	if !fence || !lockDir {
		t.Fatalf("mounts %+v: want the fence and the lock folder bound read-only", s.Mounts)
	}
	if err := d.withFence("uid-1")(context.Background(), nil, nil, &oci.Spec{Process: &specs.Process{}}); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("no entry point: %v", err)
	}
	if err := checkFence(Config{Locks: locks, FenceBinary: filepath.Join(t.TempDir(), "missing")}); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("missing fence binary: %v", err)
	}
}
