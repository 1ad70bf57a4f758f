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

// KindFolder marks the host and vm folders psc shows under a datacenter;
// vcenter stores no object for them.
const KindFolder = "Folder"

// inventoryKinds are the kinds ls, find and tree show.
var inventoryKinds = []string{api.KindDatacenter, api.KindCluster, api.KindHost, api.KindResourcePool, api.KindVirtualMachine}

// typeAliases are govc's -t / -type letters and the words users type.
var typeAliases = map[string]string{
	"d": api.KindDatacenter, "datacenter": api.KindDatacenter,
	"c": api.KindCluster, "cluster": api.KindCluster,
	"h": api.KindHost, "host": api.KindHost, "hostsystem": api.KindHost,
	"p": api.KindResourcePool, "pool": api.KindResourcePool, "resourcepool": api.KindResourcePool,
	"m": api.KindVirtualMachine, "vm": api.KindVirtualMachine, "virtualmachine": api.KindVirtualMachine,
	"f": KindFolder, "folder": KindFolder,
}

// parseType reads a -t / -type value.
func parseType(t string) (string, error) {
	if t == "" {
		return "", nil
	}
	if k, ok := typeAliases[strings.ToLower(t)]; ok {
		return k, nil
	}
	return "", usagef("unknown type %q (want d, c, h, p, m, f or datacenter, cluster, host, pool, vm, folder)", t)
}

// inventory is a snapshot of the inventory objects under one prefix, with
// the datacenters' host and vm folders added.
type inventory struct {
	byPath map[string]*api.Object
	paths  []string // sorted
}

// loadInventory lists every inventory kind below root ("/" for all).
func loadInventory(ctx context.Context, c API, root string) (*inventory, error) {
	inv := &inventory{byPath: map[string]*api.Object{}}
	prefix := root
	if root != "/" {
		// /dc1 also names /dc1/...; the store matches plain prefixes, so
		// drop /dc10 ourselves below. Host and vm folders of a datacenter
		// need the whole datacenter.
		prefix = "/" + strings.Split(strings.TrimPrefix(root, "/"), "/")[0]
		if hasGlob(prefix) {
			prefix = "/"
		}
	}
	for _, kind := range inventoryKinds {
		l, err := c.List(ctx, client.ListOptions{Kind: kind, Prefix: prefix})
		if err != nil {
			return nil, err
		}
		for _, o := range l.Items {
			if within(o.Path, prefix) {
				inv.add(o)
			}
		}
	}
	for _, p := range inv.paths {
		if o := inv.byPath[p]; o.Kind == api.KindDatacenter {
			for _, f := range []string{"host", "vm"} {
				inv.add(&api.Object{Meta: api.Meta{Kind: KindFolder, Path: p + "/" + f}})
			}
		}
	}
	slices.Sort(inv.paths)
	return inv, nil
}

func (inv *inventory) add(o *api.Object) {
	if _, dup := inv.byPath[o.Path]; !dup {
		inv.paths = append(inv.paths, o.Path)
	}
	inv.byPath[o.Path] = o
}

// within says whether p is root or below it.
func within(p, root string) bool {
	return root == "/" || p == root || strings.HasPrefix(p, root+"/")
}

// objects returns the objects of kind (all kinds if "") below root, by path.
func (inv *inventory) objects(kind, root string) []*api.Object {
	var out []*api.Object
	for _, p := range inv.paths {
		o := inv.byPath[p]
		if within(p, root) && (kind == "" || o.Kind == kind) {
			out = append(out, o)
		}
	}
	return out
}

// children lists what ls shows inside p: datacenters under /, the folders
// of a datacenter, clusters in the host folder, VMs in the vm folder, hosts
// and the root pool of a cluster, child pools and member VMs of a pool.
func (inv *inventory) children(p string) []*api.Object {
	var out []*api.Object
	o := inv.byPath[p]
	for _, q := range inv.paths {
		c := inv.byPath[q]
		if api.Parent(q) == p && !(p == "/" && c.Kind != api.KindDatacenter) && c.Kind != api.KindVirtualMachine {
			out = append(out, c)
		}
	}
	if p == "/" {
		return out
	}
	if o != nil && o.Kind == api.KindResourcePool {
		out = append(out, inv.poolVMs(p)...)
	}
	if o != nil && o.Kind == KindFolder && api.Base(p) == "vm" {
		out = inv.objects(api.KindVirtualMachine, p)
	}
	return out
}

// poolVMs are the VMs whose spec puts them in pool p.
func (inv *inventory) poolVMs(p string) []*api.Object {
	var out []*api.Object
	for _, vm := range inv.objects(api.KindVirtualMachine, "/") {
		if vmSpec(vm).Pool == p {
			out = append(out, vm)
		}
	}
	return out
}

// hostVMs are the VMs that run on (or are pinned to) host h.
func (inv *inventory) hostVMs(h string) []*api.Object {
	var out []*api.Object
	for _, vm := range inv.objects(api.KindVirtualMachine, "/") {
		if vmHost(vm) == h {
			out = append(out, vm)
		}
	}
	return out
}

func vmSpec(o *api.Object) api.VMSpec {
	var s api.VMSpec
	_ = o.DecodeSpec(&s)
	return s
}

func vmStatus(o *api.Object) api.VMStatus {
	var s api.VMStatus
	_ = o.DecodeStatus(&s)
	return s
}

// vmPowerState is the observed power state, falling back to the desired one.
func vmPowerState(o *api.Object) string {
	if st := vmStatus(o); st.PowerState != "" {
		return st.PowerState
	}
	if s := vmSpec(o).PowerState; s != "" {
		return s
	}
	return api.PoweredOff
}

// vmHost is where the VM runs, or where it is placed or pinned.
func vmHost(o *api.Object) string {
	if st := vmStatus(o); st.Host != "" {
		return st.Host
	}
	return vmSpec(o).Host
}

// resolveInventoryPath resolves an ls/find/tree/events argument: "" means
// root, relative paths resolve in the datacenter.
func (r *Resolver) inventoryPath(ctx context.Context, arg, root string) (string, error) {
	if arg == "" || arg == "." {
		return root, nil
	}
	p, err := r.expandName(ctx, "", arg)
	if err != nil {
		return "", err
	}
	p = path.Clean(p)
	if hasGlob(p) {
		return p, nil
	}
	if p == "/" {
		return p, nil
	}
	elems := strings.Split(p[1:], "/")
	if len(elems) == 2 && (elems[1] == "host" || elems[1] == "vm") {
		if err := api.ValidName(elems[0]); err != nil {
			return "", usageErr(err)
		}
		return p, nil
	}
	if _, err := api.ParsePath(p); err != nil {
		// Not a datacenter-relative path: a bare pool name (dev, dev/web)
		// under the cluster's root pool, as pool verbs take it.
		if !strings.HasPrefix(arg, "/") {
			if pp, perr := r.Path(ctx, api.KindResourcePool, arg); perr == nil {
				return pp, nil
			}
		}
		return "", usageErr(err)
	}
	return p, nil
}

// lookup resolves arg against inv: one path, or every match of a glob.
func (inv *inventory) lookup(p string) ([]*api.Object, error) {
	if hasGlob(p) {
		var out []*api.Object
		for _, q := range inv.paths {
			if matchPath(p, q) {
				out = append(out, inv.byPath[q])
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%s: no match: %w", p, api.ErrNotFound)
		}
		return out, nil
	}
	if p == "/" {
		return []*api.Object{{Meta: api.Meta{Kind: KindFolder, Path: "/"}}}, nil
	}
	o, ok := inv.byPath[p]
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, api.ErrNotFound)
	}
	return []*api.Object{o}, nil
}
