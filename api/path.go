package api

import (
	"fmt"
	"path"
	"strings"
)

// Inventory paths follow govc:
//
//	/DC                         Datacenter
//	/DC/host/CLUSTER            Cluster
//	/DC/host/CLUSTER/HOST       HostSystem
//	/DC/host/CLUSTER/Resources  root ResourcePool (made with the cluster)
//	/DC/host/CLUSTER/Resources/a/b  nested ResourcePools
//	/DC/vm/NAME                 VirtualMachine (default namespace)
//	/DC/vm/NS/NAME              VirtualMachine in namespace NS
//	/DC/replicaset/[NS/]NAME    ReplicaSet, and likewise deployment,
//	                            daemonset, job, hpa, service (see workloads.go)
//	/DC/drill/NAME              HADrill (a failover drill's report)
//	/library/NAME               Image (Content Library)
//	/events/KEY, /tasks/KEY     Event, Task
//
// RootPoolName is the fixed name of every cluster's root resource pool.
const RootPoolName = "Resources"

// MaxNameLen is vSphere's limit on an inventory object's name.
const MaxNameLen = 80

// Ref is a parsed inventory path.
type Ref struct {
	Kind       string
	Path       string
	Datacenter string
	Cluster    string   // set for clusters, hosts and pools
	Pools      []string // pool names below Resources; empty for the root pool
	// Namespace is the namespace folder of a VM or workload, "" for the
	// default namespace (the folder's top).
	Namespace string
	Name      string // last element
}

// ClusterPath is /DC/host/CLUSTER for refs inside a cluster.
func (r Ref) ClusterPath() string {
	if r.Cluster == "" {
		return ""
	}
	return "/" + r.Datacenter + "/host/" + r.Cluster
}

// ValidName checks one path element.
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("name is empty: %w", ErrInvalid)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("name %q is longer than %d characters: %w", name, MaxNameLen, ErrInvalid)
	}
	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '-' || c == '_' || c == '.')
		if !ok {
			return fmt.Errorf("name %q: character %q at %d is not allowed (letters, digits, and - _ . after the first): %w", name, c, i, ErrInvalid)
		}
	}
	return nil
}

// ParsePath validates p and says what kind of object lives there.
func ParsePath(p string) (Ref, error) {
	if p == "" || p[0] != '/' {
		return Ref{}, fmt.Errorf("path %q must be absolute (start with /): %w", p, ErrInvalid)
	}
	if len(p) > 1 && p[len(p)-1] == '/' {
		return Ref{}, fmt.Errorf("path %q has a trailing /: %w", p, ErrInvalid)
	}
	parts := strings.Split(p[1:], "/")
	for _, e := range parts {
		if err := ValidName(e); err != nil {
			return Ref{}, fmt.Errorf("path %q: %w", p, err)
		}
	}
	r := Ref{Path: p, Name: parts[len(parts)-1]}
	bad := func(why string) (Ref, error) {
		return Ref{}, fmt.Errorf("path %q: %s: %w", p, why, ErrInvalid)
	}
	switch parts[0] {
	case "library", "events", "tasks":
		if len(parts) != 2 {
			return bad("expected /" + parts[0] + "/NAME")
		}
		r.Kind = map[string]string{"library": KindImage, "events": KindEvent, "tasks": KindTask}[parts[0]]
		return r, nil
	}
	r.Datacenter = parts[0]
	if len(parts) == 1 {
		r.Kind = KindDatacenter
		return r, nil
	}
	folderKind, namespaced := workloadFolders[parts[1]]
	if parts[1] == "vm" {
		folderKind, namespaced = KindVirtualMachine, true
	}
	switch {
	case namespaced:
		switch len(parts) {
		case 3:
		case 4:
			if parts[2] == DefaultNamespace {
				return bad(fmt.Sprintf("the default namespace is the folder itself: use /%s/%s/%s", parts[0], parts[1], parts[3]))
			}
			r.Namespace = parts[2]
		default:
			return bad(fmt.Sprintf("expected /DC/%s/NAME or /DC/%s/NAMESPACE/NAME", parts[1], parts[1]))
		}
		r.Kind = folderKind
		return r, nil
	case parts[1] == "drill":
		if len(parts) != 3 {
			return bad("expected /DC/drill/NAME")
		}
		r.Kind = KindHADrill
		return r, nil
	case parts[1] == "host":
		if len(parts) < 3 {
			return bad("expected /DC/host/CLUSTER")
		}
	default:
		return bad(fmt.Sprintf("unknown folder %q (want host, vm, replicaset, deployment, daemonset, job, hpa, service, ingress or drill)", parts[1]))
	}
	r.Cluster = parts[2]
	switch {
	case len(parts) == 3:
		r.Kind = KindCluster
	case parts[3] == RootPoolName:
		r.Kind = KindResourcePool
		r.Pools = parts[4:]
	case len(parts) == 4:
		r.Kind = KindHost
	default:
		return bad("hosts have no children; pools live under " + RootPoolName)
	}
	return r, nil
}

// Base is the last element of a path.
func Base(p string) string { return path.Base(p) }

// Parent is the path one level up ("" for "/" and top-level objects' parent "/").
func Parent(p string) string {
	d := path.Dir(p)
	if d == p {
		return ""
	}
	return d
}

// Join joins path elements.
func Join(elem ...string) string { return path.Join(elem...) }

// ParentPool is the pool a pool hangs off, "" for a root pool.
func (r Ref) ParentPool() string {
	if r.Kind != KindResourcePool || len(r.Pools) == 0 {
		return ""
	}
	return Parent(r.Path)
}

// RootPool is the cluster's root pool path.
func (r Ref) RootPool() string {
	if r.Cluster == "" {
		return ""
	}
	return r.ClusterPath() + "/" + RootPoolName
}
