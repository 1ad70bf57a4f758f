package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// treeOptions runs `psc tree [-L DEPTH] [PATH]`.
type treeOptions struct {
	env   *Env
	depth int // govc's -L: levels shown below the top; 0 for all
	types bool
	root  string
}

func newTreeCommand(env *Env) *cobra.Command {
	o := &treeOptions{env: env}
	cmd := &cobra.Command{
		Use:   "tree [-L DEPTH] [PATH]",
		Short: "Show the inventory as a tree: datacenters, clusters, hosts, pools, their workloads and VMs",
		Example: `  psc tree
  psc tree -L 2 /dc1
  psc tree /dc1/host/c1/Resources/dev`,
		Args: maxArgs(1, "one PATH"),
		RunE: runE(o),
	}
	cmd.Flags().IntVarP(&o.depth, "L", "L", 0, "show only this many levels below the top (0: all), as govc's -L")
	// govc's -p prints each object's type; psc's tree always does.
	cmd.Flags().BoolVarP(&o.types, "p", "p", false, "print the object type (always printed; accepted for govc)")
	return cmd
}

func (o *treeOptions) Complete(_ *cobra.Command, args []string) error {
	if len(args) == 1 {
		o.root = args[0]
	}
	return nil
}

func (o *treeOptions) Validate() error {
	if o.depth < 0 {
		return usagef("-L %d is negative", o.depth)
	}
	return nil
}

// prune keeps levels levels below n: tree -L 1 shows the top and what is
// directly in it.
func prune(n *treeNode, levels int) {
	if levels == 0 {
		n.Children = nil
		return
	}
	for _, c := range n.Children {
		prune(c, levels-1)
	}
}

// treeNode is one line of the tree, and the -json form of it.
type treeNode struct {
	Name     string      `json:"name"`
	Path     string      `json:"path"`
	Kind     string      `json:"kind"`
	State    string      `json:"state,omitempty"` // power state of VMs, connection state of hosts, workloads' readiness
	Host     string      `json:"host,omitempty"`  // where a VM runs
	Children []*treeNode `json:"children,omitempty"`
}

func (o *treeOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	root, err := r.inventoryPath(ctx, o.root, "/")
	if err != nil {
		return err
	}
	if hasGlob(root) {
		return usagef("tree takes one path, not a pattern")
	}
	inv, err := loadInventory(ctx, r.API, "/")
	if err != nil {
		return err
	}
	if _, err := inv.lookup(root); err != nil {
		return err
	}
	nodes := buildTree(inv, root)
	if o.depth > 0 {
		for _, n := range nodes {
			prune(n, o.depth)
		}
	}
	if o.env.JSON {
		if nodes == nil {
			nodes = []*treeNode{}
		}
		return writeJSON(o.env.Out, nodes)
	}
	return writeTree(o.env.Out, nodes)
}

// buildTree returns the forest below root: datacenters hold clusters (the
// host and vm folders are implied), clusters hold hosts then the root pool,
// pools hold child pools, then the workloads that run in them, then their
// VMs. A workload holds the autoscalers that scale it and what it keeps (a
// Deployment its replica sets, a set its VMs). VMs and workloads whose pool
// (or an autoscaler whose target) is missing hang off their datacenter so
// nothing is hidden.
func buildTree(inv *inventory, root string) []*treeNode {
	scalers := map[string][]*api.Object{} // target -> its autoscalers
	for _, h := range inv.objects(api.KindAutoscaler, "/") {
		t := specOf[api.AutoscalerSpec](h).Target
		scalers[t] = append(scalers[t], h)
	}
	isWorkload := func(o *api.Object) bool { return workloadKinds[o.Kind] != nil && o.Kind != api.KindAutoscaler }
	inPool := map[string][]*api.Object{} // pool -> the workloads that run there and no owner keeps
	for _, w := range inv.objects("", "/") {
		if isWorkload(w) && !inv.kept(w) {
			inPool[workloadPool(w)] = append(inPool[workloadPool(w)], w)
		}
	}
	var node func(o *api.Object) *treeNode
	node = func(o *api.Object) *treeNode {
		n := &treeNode{Name: o.Name(), Path: o.Path, Kind: o.Kind}
		add := func(objs ...*api.Object) {
			for _, c := range objs {
				n.Children = append(n.Children, node(c))
			}
		}
		switch o.Kind {
		case api.KindDatacenter:
			add(inv.children(o.Path + "/host")...)
			for _, w := range inv.objects("", o.Path) {
				switch {
				case inv.kept(w):
				case isWorkload(w) || w.Kind == api.KindVirtualMachine:
					if p := workloadPool(w); p == "" || inv.byPath[p] == nil {
						add(w)
					}
				case w.Kind == api.KindAutoscaler:
					if t := specOf[api.AutoscalerSpec](w).Target; inv.byPath[t] == nil {
						add(w)
					}
				}
			}
		case api.KindCluster:
			kids := inv.children(o.Path)
			slices.SortStableFunc(kids, func(a, b *api.Object) int { // hosts first
				return boolInt(a.Kind == api.KindResourcePool) - boolInt(b.Kind == api.KindResourcePool)
			})
			add(kids...)
		case api.KindHost:
			n.State = hostState(o)
		case api.KindResourcePool:
			var pools, vms []*api.Object
			for _, c := range inv.children(o.Path) {
				switch {
				case c.Kind == api.KindVirtualMachine && !inv.kept(c):
					vms = append(vms, c)
				case c.Kind != api.KindVirtualMachine:
					pools = append(pools, c)
				}
			}
			add(pools...)
			add(inPool[o.Path]...)
			add(vms...)
		case api.KindVirtualMachine:
			n.State = vmPowerState(o)
			if h := vmHost(o); h != "" {
				n.Host = api.Base(h)
			}
		case KindFolder:
			add(inv.children(o.Path)...)
		default:
			if wk := workloadKinds[o.Kind]; wk != nil {
				n.State = wk.state(o)
				add(scalers[o.Path]...)
				add(inv.owned[o.Path]...)
			}
		}
		return n
	}
	if root == "/" {
		var out []*treeNode
		for _, dc := range inv.objects(api.KindDatacenter, "/") {
			out = append(out, node(dc))
		}
		return out
	}
	return []*treeNode{node(inv.byPath[root])}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// writeTree draws the forest with box-drawing branches, one object a line:
//
//	dc1 [datacenter]
//	└── c1 [cluster]
//	    ├── esx-01 [host connected]
//	    └── Resources [pool]
//	        └── web-01 [vm poweredOn on esx-01]
func writeTree(w io.Writer, nodes []*treeNode) error {
	var b strings.Builder
	var walk func(n *treeNode, prefix string, last, top bool)
	walk = func(n *treeNode, prefix string, last, top bool) {
		branch, next := "├── ", "│   "
		if last {
			branch, next = "└── ", "    "
		}
		if top {
			branch, next = "", ""
		}
		fmt.Fprintf(&b, "%s%s%s [%s]\n", prefix, branch, n.Name, treeLabel(n))
		for i, c := range n.Children {
			walk(c, prefix+next, i == len(n.Children)-1, false)
		}
	}
	for _, n := range nodes {
		walk(n, "", true, true)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func treeLabel(n *treeNode) string {
	word := map[string]string{
		api.KindDatacenter: "datacenter", api.KindCluster: "cluster", api.KindHost: "host",
		api.KindResourcePool: "pool", api.KindVirtualMachine: "vm", KindFolder: "folder",
		api.KindReplicaSet: "replicaset", api.KindDeployment: "deployment", api.KindDaemonSet: "daemonset",
		api.KindJob: "job", api.KindAutoscaler: "hpa",
	}[n.Kind]
	if word == "" {
		word = n.Kind
	}
	parts := []string{word}
	if n.State != "" {
		parts = append(parts, n.State)
	}
	if n.Host != "" {
		parts = append(parts, "on "+n.Host)
	}
	return strings.Join(parts, " ")
}
