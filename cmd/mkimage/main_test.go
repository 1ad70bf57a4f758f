package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRunWritesArchive(t *testing.T) {
	bb := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(bb, []byte("#!/bin/sh\necho sh httpd\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "img.tar")
	if err := run(out, "docker.io/library/busybox:latest", bb, ""); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(out)
	if err != nil || st.Size() == 0 {
		t.Fatalf("archive not written: %v", err)
	}
	if err := run(filepath.Join(t.TempDir(), "x.tar"), "x", "/nonexistent/busybox", ""); err == nil {
		t.Fatal("want an error for a missing busybox")
	}
}
