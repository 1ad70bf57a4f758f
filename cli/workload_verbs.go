package cli

import (
	"context"
	"fmt"
	"path"
	"slices"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// The verbs every workload kind has: PREFIX.ls, PREFIX.info, PREFIX.destroy.

// workloadLsOptions runs `psc PREFIX.ls [-all-namespaces] [-selector SEL] [NAME...]`.
type workloadLsOptions struct {
	env   *Env
	wk    *workloadKind
	all   bool
	sel   selectorFlag
	names []string
}

func (wk *workloadKind) lsCommand(env *Env) *cobra.Command {
	o := &workloadLsOptions{env: env, wk: wk}
	cmd := &cobra.Command{
		Use:   wk.prefix + ".ls [-all-namespaces] [-selector SEL] [NAME...]",
		Short: "List " + wk.noun + " of the namespace (-namespace), or of all namespaces",
		Example: fmt.Sprintf(`  psc %[1]s.ls
  psc %[1]s.ls -namespace team
  psc %[1]s.ls -all-namespaces -selector app=web
  psc %[1]s.ls 'web-*'`, wk.prefix),
		RunE: runE(o),
	}
	cmd.Flags().BoolVar(&o.all, "all-namespaces", false, "list every namespace's, with a Namespace column")
	o.sel.register(cmd)
	return wk.verb(cmd, "ls")
}

func (o *workloadLsOptions) Complete(_ *cobra.Command, args []string) error {
	o.names = args
	return nil
}

func (o *workloadLsOptions) Validate() error {
	if o.all && len(o.names) > 0 {
		return usagef("%s.ls: give NAMEs or -all-namespaces, not both", o.wk.prefix)
	}
	return o.sel.parse()
}

func (o *workloadLsOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	dc, err := r.dcName(ctx)
	if err != nil {
		return err
	}
	ns, err := r.namespace()
	if err != nil {
		return err
	}
	l, err := r.API.List(ctx, client.ListOptions{Kind: o.wk.kind, Prefix: "/" + dc + "/" + api.FolderOf(o.wk.kind) + "/", Selector: o.sel.text})
	if err != nil {
		return err
	}
	keep := func(obj *api.Object) bool {
		ref, err := api.ParsePath(obj.Path)
		return err == nil && (o.all || ref.Namespace == ns)
	}
	if len(o.names) > 0 {
		var patterns []string
		for _, n := range o.names {
			p, err := r.expandName(ctx, o.wk.kind, n)
			if err != nil {
				return err
			}
			if !hasGlob(p) {
				if p, err = r.Path(ctx, o.wk.kind, n); err != nil {
					return err
				}
			}
			patterns = append(patterns, path.Clean(p))
		}
		for _, p := range patterns {
			if !hasGlob(p) && !slices.ContainsFunc(l.Items, func(obj *api.Object) bool { return obj.Path == p }) {
				return fmt.Errorf("%s %s: %w", o.wk.kind, p, api.ErrNotFound)
			}
		}
		keep = func(obj *api.Object) bool {
			return slices.ContainsFunc(patterns, func(p string) bool { return matchPath(p, obj.Path) })
		}
	}
	objs := []*api.Object{}
	for _, obj := range l.Items {
		if keep(obj) {
			objs = append(objs, obj)
		}
	}
	slices.SortFunc(objs, byNamespace)
	if o.env.JSON {
		return writeJSON(o.env.Out, objs)
	}
	return o.wk.writeTable(o.env, objs, o.all || len(o.names) > 0 && spansNamespaces(objs))
}

func spansNamespaces(objs []*api.Object) bool {
	for _, obj := range objs {
		if namespaceOf(obj.Path) != namespaceOf(objs[0].Path) {
			return true
		}
	}
	return false
}

// writeTable prints the kind's ls table: Name, the kind's columns, Age;
// with withNS a Namespace column first.
func (wk *workloadKind) writeTable(env *Env, objs []*api.Object, withNS bool) error {
	now := env.Now()
	header := append(append([]string{"Name"}, wk.header...), "Age")
	if withNS {
		header = append([]string{"Namespace"}, header...)
	}
	rows := make([][]string, 0, len(objs))
	for _, obj := range objs {
		row := append(append([]string{obj.Name()}, wk.row(obj, now)...), age(obj.Created, now))
		if withNS {
			row = append([]string{namespaceOf(obj.Path)}, row...)
		}
		rows = append(rows, row)
	}
	return writeTable(env.Out, header, rows)
}

// workloadInfoOptions runs `psc PREFIX.info NAME...`.
type workloadInfoOptions struct {
	env   *Env
	wk    *workloadKind
	names []string
}

func (wk *workloadKind) infoCommand(env *Env) *cobra.Command {
	o := &workloadInfoOptions{env: env, wk: wk}
	short := "Show " + wk.noun + ": spec and what the controller reports"
	if len(wk.owns) > 0 {
		short += ", with their VMs"
	}
	cmd := &cobra.Command{
		Use:   wk.prefix + ".info NAME...",
		Short: short,
		Example: fmt.Sprintf(`  psc %[1]s.info web
  psc %[1]s.info team/web '/dc1/%[2]s/*'`, wk.prefix, api.FolderOf(wk.kind)),
		Args: minArgs(1, "at least one NAME"),
		RunE: runE(o),
	}
	return wk.verb(cmd, "info")
}

func (o *workloadInfoOptions) Complete(_ *cobra.Command, args []string) error {
	o.names = args
	return nil
}

func (o *workloadInfoOptions) Validate() error { return nil }

func (o *workloadInfoOptions) Run(ctx context.Context) error {
	r, paths, err := o.env.resolvePaths(ctx, o.wk.kind, o.names)
	if err != nil {
		return err
	}
	objs := make([]*api.Object, 0, len(paths))
	for _, p := range paths {
		obj, err := r.API.Get(ctx, p)
		if err != nil {
			return err
		}
		objs = append(objs, obj)
	}
	if o.env.JSON {
		return writeJSON(o.env.Out, objs)
	}
	for _, obj := range objs {
		b := &block{name: obj.Name()}
		b.add("Path", "%s", obj.Path)
		b.add("Namespace", "%s", namespaceOf(obj.Path))
		b.add("Created", "%s", timeString(obj.Created, o.env.Location))
		if obj.Owner != "" {
			b.add("Owner", "%s", ownerText(ctx, r.API, obj.Owner))
		}
		b.add("Labels", "%s", labelsText(obj.Labels))
		if err := o.wk.info(ctx, r.API, obj, b, o.env.Location); err != nil {
			return err
		}
		if err := b.write(o.env.Out); err != nil {
			return err
		}
	}
	return nil
}

// workloadDestroyOptions runs `psc PREFIX.destroy NAME...`.
type workloadDestroyOptions struct {
	env   *Env
	wk    *workloadKind
	names []string
}

func (wk *workloadKind) destroyCommand(env *Env) *cobra.Command {
	o := &workloadDestroyOptions{env: env, wk: wk}
	short := "Destroy " + wk.noun
	if len(wk.owns) > 0 {
		short += " with the VMs they keep"
	}
	cmd := &cobra.Command{
		Use:     wk.prefix + ".destroy NAME...",
		Short:   short,
		Example: fmt.Sprintf("  psc %s.destroy web 'test-*'", wk.prefix),
		Args:    minArgs(1, "at least one NAME"),
		RunE:    runE(o),
	}
	return wk.verb(cmd, "destroy")
}

func (o *workloadDestroyOptions) Complete(_ *cobra.Command, args []string) error {
	o.names = args
	return nil
}

func (o *workloadDestroyOptions) Validate() error { return nil }

func (o *workloadDestroyOptions) Run(ctx context.Context) error {
	r, paths, err := o.env.resolvePaths(ctx, o.wk.kind, o.names)
	if err != nil {
		return err
	}
	for _, p := range paths {
		obj, err := r.API.Get(ctx, p)
		if err != nil {
			return err
		}
		if err := refuseOwned(obj, "destroy", "it would be made again"); err != nil {
			return err
		}
		counts, err := ownedCounts(ctx, r.API, obj.Path, o.wk.owns)
		if err != nil {
			return err
		}
		if err := r.API.Delete(ctx, p, client.DeleteOptions{}); err != nil {
			return err
		}
		fmt.Fprintf(o.env.Out, "Destroyed %s %s%s\n", o.wk.kind, p, counts)
	}
	return nil
}
