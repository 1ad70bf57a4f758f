// Command mkimage writes a small OCI image archive around Debian's static
// busybox, for labs and tests that cannot reach a registry:
//
//	go run ./cmd/mkimage -o busybox.tar -name docker.io/library/busybox:latest
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/podsphere/podsphere/host/containerd/imagebuild"
)

func main() {
	out := flag.String("o", "busybox.tar", "archive to write (- for stdout)")
	name := flag.String("name", "docker.io/library/busybox:latest", "image reference recorded in the archive")
	busybox := flag.String("busybox", "/bin/busybox", "static busybox binary to package")
	index := flag.String("index", "", "file whose content becomes /www/index.html")
	flag.Parse()

	if err := run(*out, *name, *busybox, *index); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(out, name, busybox, index string) error {
	opts := imagebuild.Options{Name: name, Busybox: busybox}
	if index != "" {
		b, err := os.ReadFile(index)
		if err != nil {
			return err
		}
		opts.IndexHTML = string(b)
	}
	if out == "-" {
		w := bufio.NewWriter(os.Stdout)
		if err := imagebuild.Build(w, opts); err != nil {
			return err
		}
		return w.Flush()
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := imagebuild.Build(f, opts); err != nil {
		f.Close()
		os.Remove(out)
		return err
	}
	return f.Close()
}
