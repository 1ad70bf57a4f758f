package cli

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// Resolver turns what users type into inventory paths, as govc does:
// absolute paths are taken as given; relative pool paths resolve against
// the datacenter's host folder (C0/Resources/dev); bare pool names (dev,
// dev/web) resolve under the cluster's root pool; names of VMs and
// workloads in the namespace's folder (web-01 is /DC/vm/web-01, or
// /DC/vm/NS/web-01 with -namespace NS; team/web-01 is /DC/vm/team/web-01
// whatever the namespace); host names under the cluster; globs expand
// against the inventory.
//
// DC and Cluster come from -dc/PSC_DATACENTER and -cluster/PSC_CLUSTER; when
// unset and the inventory holds exactly one, that one is used (govc's default
// datacenter rule). Namespace comes from -namespace/PSC_NAMESPACE; unset (or
// "default") is the default namespace, the top of each folder.
type Resolver struct {
	DC        string
	Cluster   string
	Namespace string
	API       API // for defaults and globs; may be nil when DC and Cluster are set
}

// namespace is the namespace bare names resolve in, "" for the default one.
func (r *Resolver) namespace() (string, error) {
	ns := r.Namespace
	if ns == "" || ns == api.DefaultNamespace {
		return "", nil
	}
	if err := api.ValidName(ns); err != nil {
		return "", usageErr(fmt.Errorf("-namespace %q: %w", ns, err))
	}
	return ns, nil
}

// dcName is the datacenter relative paths resolve in.
func (r *Resolver) dcName(ctx context.Context) (string, error) {
	if r.DC == "" && strings.HasPrefix(r.Cluster, "/") {
		if ref, err := api.ParsePath(r.Cluster); err == nil {
			return ref.Datacenter, nil
		}
	}
	if r.DC != "" {
		dc := strings.Trim(r.DC, "/")
		if err := api.ValidName(dc); err != nil {
			return "", usageErr(fmt.Errorf("datacenter %q: %w", r.DC, err))
		}
		return dc, nil
	}
	only, err := r.onlyOne(ctx, api.KindDatacenter, "/")
	if err != nil {
		return "", err
	}
	if only == "" {
		return "", usagef("no datacenter given: set PSC_DATACENTER or pass -dc")
	}
	r.DC = api.Base(only)
	return r.DC, nil
}

// clusterPath is /DC/host/CLUSTER for bare pool and host names.
func (r *Resolver) clusterPath(ctx context.Context) (string, error) {
	if strings.HasPrefix(r.Cluster, "/") {
		ref, err := api.ParsePath(r.Cluster)
		if err != nil || ref.Kind != api.KindCluster {
			return "", usagef("cluster %q is not a cluster path (/DC/host/CLUSTER)", r.Cluster)
		}
		return r.Cluster, nil
	}
	dc, err := r.dcName(ctx)
	if err != nil {
		return "", err
	}
	if r.Cluster != "" {
		if err := api.ValidName(r.Cluster); err != nil {
			return "", usageErr(fmt.Errorf("cluster %q: %w", r.Cluster, err))
		}
		return "/" + dc + "/host/" + r.Cluster, nil
	}
	only, err := r.onlyOne(ctx, api.KindCluster, "/"+dc+"/host/")
	if err != nil {
		return "", err
	}
	if only == "" {
		return "", usagef("no cluster given: set PSC_CLUSTER or pass -cluster")
	}
	r.Cluster = only
	return only, nil
}

// onlyOne returns the single object of kind under prefix, or "" if there
// are none or several.
func (r *Resolver) onlyOne(ctx context.Context, kind, prefix string) (string, error) {
	if r.API == nil {
		return "", nil
	}
	l, err := r.API.List(ctx, client.ListOptions{Kind: kind, Prefix: prefix})
	if err != nil {
		return "", err
	}
	if len(l.Items) != 1 {
		return "", nil
	}
	return l.Items[0].Path, nil
}

// Path resolves one argument naming an object of kind, without globbing
// (for verbs that create objects).
func (r *Resolver) Path(ctx context.Context, kind, arg string) (string, error) {
	if arg == "" {
		return "", usagef("empty %s name", kindWord(kind))
	}
	p, err := r.expandName(ctx, kind, arg)
	if err != nil {
		return "", err
	}
	p = path.Clean(p)
	ref, err := api.ParsePath(p)
	if err != nil {
		return "", usageErr(err)
	}
	if kind != "" && ref.Kind != kind {
		return "", usagef("%s is a %s, not a %s", p, kindWord(ref.Kind), kindWord(kind))
	}
	return p, nil
}

// expandName applies the per-kind relative rules to arg.
func (r *Resolver) expandName(ctx context.Context, kind, arg string) (string, error) {
	if strings.HasPrefix(arg, "/") {
		return arg, nil
	}
	arg = strings.TrimRight(arg, "/")
	elems := strings.Split(arg, "/")
	switch kind {
	case api.KindDatacenter:
		return "/" + arg, nil
	case api.KindResourcePool:
		if len(elems) >= 2 && elems[1] == api.RootPoolName {
			dc, err := r.dcName(ctx)
			return "/" + dc + "/host/" + arg, err
		}
		cp, err := r.clusterPath(ctx)
		if err != nil {
			return "", err
		}
		if elems[0] == api.RootPoolName {
			return cp + "/" + arg, nil
		}
		return cp + "/" + api.RootPoolName + "/" + arg, nil
	case api.KindHost:
		if len(elems) == 1 {
			cp, err := r.clusterPath(ctx)
			return cp + "/" + arg, err
		}
		dc, err := r.dcName(ctx)
		return "/" + dc + "/host/" + arg, err
	case api.KindCluster:
		dc, err := r.dcName(ctx)
		if len(elems) >= 2 && elems[0] == "host" {
			return "/" + dc + "/" + arg, err
		}
		return "/" + dc + "/host/" + arg, err
	}
	if folder := api.FolderOf(kind); folder != "" {
		return r.namespacedName(ctx, kind, folder, arg, elems)
	}
	dc, err := r.dcName(ctx)
	if len(elems) >= 2 && elems[1] == api.RootPoolName {
		return "/" + dc + "/host/" + arg, err // C0/Resources/dev, as for pools
	}
	return "/" + dc + "/" + arg, err
}

// namespacedName resolves the name of a VM or workload: NAME in the
// namespace (-namespace), NS/NAME in namespace NS (default/NAME in the
// default one), and FOLDER/... (vm/web-01, replicaset/team/web) as a path
// relative to the datacenter.
func (r *Resolver) namespacedName(ctx context.Context, kind, folder, arg string, elems []string) (string, error) {
	dc, err := r.dcName(ctx)
	if err != nil {
		return "", err
	}
	switch {
	case len(elems) >= 2 && elems[0] == folder:
		return "/" + dc + "/" + arg, nil
	case len(elems) == 1:
		ns, err := r.namespace()
		return api.NamespacedPath(kind, dc, ns, arg), err
	case len(elems) == 2:
		return api.NamespacedPath(kind, dc, elems[0], elems[1]), nil
	}
	return "/" + dc + "/" + folder + "/" + arg, nil // too deep: ParsePath says why
}

// Paths resolves arguments naming existing objects of kind, expanding globs
// element-wise against the inventory as ls does. A glob that matches
// nothing is an error.
func (r *Resolver) Paths(ctx context.Context, kind string, args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if !hasGlob(a) {
			p, err := r.Path(ctx, kind, a)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
			continue
		}
		pattern, err := r.expandName(ctx, kind, a)
		if err != nil {
			return nil, err
		}
		matches, err := r.Glob(ctx, kind, path.Clean(pattern))
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("no %s matches %s: %w", kindWord(kind), pattern, api.ErrNotFound)
		}
		out = append(out, matches...)
	}
	return out, nil
}

// Glob lists the paths of objects of kind (any kind if "") matching the
// absolute pattern element by element, sorted.
func (r *Resolver) Glob(ctx context.Context, kind, pattern string) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, usagef("bad pattern %q: %v", pattern, err)
	}
	if r.API == nil {
		return nil, fmt.Errorf("cannot expand %q without vcenter: %w", pattern, api.ErrUnavailable)
	}
	l, err := r.API.List(ctx, client.ListOptions{Kind: kind, Prefix: globPrefix(pattern)})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range l.Items {
		if matchPath(pattern, o.Path) {
			out = append(out, o.Path)
		}
	}
	slices.Sort(out)
	return out, nil
}

// globPrefix is the literal part of pattern before its first wildcard
// element, ending in "/", to narrow the list request.
func globPrefix(pattern string) string {
	elems := strings.Split(pattern, "/")
	var b strings.Builder
	for _, e := range elems[1:] {
		if hasGlob(e) {
			break
		}
		b.WriteString("/" + e)
	}
	return b.String() + "/"
}

// matchPath matches p against pattern with path.Match per element, so *
// never crosses a /.
func matchPath(pattern, p string) bool {
	pe, ee := strings.Split(pattern, "/"), strings.Split(p, "/")
	if len(pe) != len(ee) {
		return false
	}
	for i := range pe {
		if ok, _ := path.Match(pe[i], ee[i]); !ok {
			return false
		}
	}
	return true
}

func hasGlob(s string) bool { return strings.ContainsAny(s, "*?[") }

// kindWord is how messages name a kind.
func kindWord(kind string) string {
	switch kind {
	case api.KindResourcePool:
		return "pool"
	case api.KindVirtualMachine:
		return "VM"
	case api.KindHost:
		return "host"
	case api.KindCluster:
		return "cluster"
	case api.KindDatacenter:
		return "datacenter"
	case api.KindReplicaSet, api.KindDeployment, api.KindDaemonSet, api.KindJob, api.KindAutoscaler, api.KindService, api.KindIngress:
		return kind
	case "":
		return "object"
	}
	return strings.ToLower(kind)
}

// resolvePaths makes a Resolver and expands patterns (names, paths, globs)
// to the paths of objects of kind they name; see Resolver.Paths.
func (e *Env) resolvePaths(ctx context.Context, kind string, patterns []string) (*Resolver, []string, error) {
	r, err := e.Resolver()
	if err != nil {
		return nil, nil, err
	}
	paths, err := r.Paths(ctx, kind, patterns)
	return r, paths, err
}

// resolvePath makes a Resolver and resolves one name to the path of an
// object of kind; see Resolver.Path.
func (e *Env) resolvePath(ctx context.Context, kind, name string) (*Resolver, string, error) {
	r, err := e.Resolver()
	if err != nil {
		return nil, "", err
	}
	p, err := r.Path(ctx, kind, name)
	return r, p, err
}
