package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	ctrd "github.com/podsphere/podsphere/host/containerd"
	"github.com/podsphere/podsphere/host/containerd/daemon"
	"github.com/podsphere/podsphere/host/network"
)

// answering says whether a containerd serves the socket.
func answering(ctx context.Context, sock string) bool {
	if _, err := os.Stat(sock); err != nil {
		return false
	}
	c, err := containerd.New(sock, containerd.WithTimeout(2*time.Second))
	if err != nil {
		return false
	}
	defer c.Close()
	vctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = c.Version(vctx)
	return err == nil
}

// privateContainerd describes the lab's own containerd under DIR/containerd.
func privateContainerd(dir string) *Containerd {
	root := filepath.Join(dir, "containerd")
	return &Containerd{Socket: daemon.Socket(root), Private: true, Root: root, Config: daemon.ConfigFile(root)}
}

// writeConfig writes a containerd config that keeps everything under Root.
func (c *Containerd) writeConfig() error { return daemon.WriteConfig(c.Config, c.Root, c.Socket) }

// startPrivateContainerd starts (or restarts, for down after a crash) the
// lab's containerd in the root network namespace and waits until it answers.
func startPrivateContainerd(ctx context.Context, c *Containerd, logPath string) (Process, error) {
	p, err := startDaemon("containerd", "", []string{"containerd", "--config", c.Config}, logPath)
	if err != nil {
		return p, err
	}
	deadline := time.Now().Add(ContainerdStart)
	for time.Now().Before(deadline) {
		if answering(ctx, c.Socket) {
			return p, nil
		}
		if !p.Alive() {
			return p, fmt.Errorf("containerd exited at start: see %s", logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p, fmt.Errorf("containerd did not answer on %s within %s: see %s", c.Socket, ContainerdStart, logPath)
}

// cleanNamespaces removes everything in the given containerd namespaces plus
// those named with the lab's prefix: tasks, containers, snapshots, images,
// leases, content, the namespace itself, and the VM netns and cgroups the
// containers used. It returns what it could not remove.
func cleanNamespaces(ctx context.Context, sock, prefix string, known []string) error {
	client, err := containerd.New(sock, containerd.WithTimeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("containerd at %s: %w", sock, err)
	}
	defer client.Close()
	all, err := client.NamespaceService().List(ctx)
	if err != nil {
		return fmt.Errorf("containerd at %s: list namespaces: %w", sock, err)
	}
	var errs []error
	for _, ns := range all {
		if !strings.HasPrefix(ns, prefix+"-") && !contains(known, ns) {
			continue
		}
		if err := cleanNamespace(ctx, client, ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func cleanNamespace(ctx context.Context, client *containerd.Client, ns string) error {
	ctx = namespaces.WithNamespace(ctx, ns)
	var errs []error
	note := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("containerd namespace %s: %s: %w", ns, what, err))
		}
	}
	containers, err := client.Containers(ctx)
	note("list containers", err)
	var netnsPaths, cgroups []string
	for _, c := range containers {
		info, err := c.Info(ctx)
		if err == nil {
			netnsPaths = append(netnsPaths, info.Labels[ctrd.LabelNetNS])
			cgroups = append(cgroups, info.Labels[ctrd.LabelCgroup])
		}
		if spec, err := c.Spec(ctx); err == nil && spec.Linux != nil {
			for _, n := range spec.Linux.Namespaces {
				if n.Type == specs.NetworkNamespace {
					netnsPaths = append(netnsPaths, n.Path)
				}
			}
			cgroups = append(cgroups, spec.Linux.CgroupsPath)
		}
		if task, err := c.Task(ctx, nil); err == nil {
			kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if st, err := task.Wait(kctx); err == nil {
				_ = task.Kill(kctx, syscall.SIGKILL, containerd.WithKillAll)
				select {
				case <-st:
				case <-kctx.Done():
				}
			}
			cancel()
			_, err = task.Delete(ctx, containerd.WithProcessKill)
			note("delete task "+c.ID(), err)
		}
		note("delete container "+c.ID(), c.Delete(ctx, containerd.WithSnapshotCleanup))
	}
	is := client.ImageService()
	if imgs, err := is.List(ctx); err == nil {
		for _, img := range imgs {
			note("delete image "+img.Name, is.Delete(ctx, img.Name, images.SynchronousDelete()))
		}
	}
	ls := client.LeasesService()
	if list, err := ls.List(ctx); err == nil {
		for _, l := range list {
			note("delete lease "+l.ID, ls.Delete(ctx, l, leases.SynchronousDelete))
		}
	}
	removeSnapshots(ctx, client, note)
	cs := client.ContentStore()
	var blobs []digest.Digest
	_ = cs.Walk(ctx, func(i content.Info) error { blobs = append(blobs, i.Digest); return nil })
	for _, d := range blobs {
		note("delete content "+d.String(), cs.Delete(ctx, d))
	}
	note("delete namespace", client.NamespaceService().Delete(ctx, ns))

	for _, p := range netnsPaths {
		if p != "" && filepath.Dir(p) == network.NetNSDir {
			note("delete netns "+p, network.DeleteNamedNetNS(filepath.Base(p)))
		}
	}
	for _, cg := range cgroups {
		removeCgroupTree(cg)
	}
	removeCgroupTree("/podsphere/" + ns) // the driver's default CgroupRoot
	removeCgroupTree("/podsphere/")      // only if now empty
	// The runc shim keeps per-namespace state in /run/containerd/runc/<ns> whatever containerd's state dir is.
	_ = os.RemoveAll(filepath.Join("/run/containerd/runc", ns))
	return errors.Join(errs...)
}

// removeSnapshots removes every snapshot of every snapshotter used here,
// leaves first (a parent cannot go before its children).
func removeSnapshots(ctx context.Context, client *containerd.Client, note func(string, error)) {
	for _, name := range []string{ctrd.DefaultSnapshotter, "native"} {
		ss := client.SnapshotService(name)
		for round := 0; round < 20; round++ {
			var keys []string
			if err := ss.Walk(ctx, func(_ context.Context, i snapshots.Info) error { keys = append(keys, i.Name); return nil }); err != nil || len(keys) == 0 {
				break
			}
			removed := 0
			for _, k := range keys {
				if ss.Remove(ctx, k) == nil {
					removed++
				}
			}
			if removed == 0 {
				note("snapshots in "+name, fmt.Errorf("%d left that will not go", len(keys)))
				break
			}
		}
	}
}

// removeCgroupTree removes a cgroup directory and its children (deepest
// first) in every hierarchy. rmdir only succeeds on cgroups without
// processes, so a busy cgroup is left alone. A trailing "/" means: only the
// directory itself, and only if empty.
func removeCgroupTree(path string) {
	if path == "" || path == "/" {
		return
	}
	onlySelf := strings.HasSuffix(path, "/")
	path = strings.TrimSuffix(path, "/")
	const fs = "/sys/fs/cgroup"
	roots := []string{fs}
	if _, err := os.Stat(filepath.Join(fs, "cgroup.controllers")); err != nil { // v1: one tree per controller
		roots = nil
		entries, _ := os.ReadDir(fs)
		for _, e := range entries {
			roots = append(roots, filepath.Join(fs, e.Name()))
		}
	}
	for _, r := range roots {
		top := filepath.Join(r, path)
		if onlySelf {
			_ = syscall.Rmdir(top)
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			_ = syscall.Rmdir(d)
		}
	}
}
