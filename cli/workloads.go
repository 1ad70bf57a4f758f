package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/api/labels"
)

// Workloads: objects that keep VMs running for the admin (ReplicaSet,
// Deployment, DaemonSet, Job, HorizontalPodAutoscaler). Each kind has the
// same ls, info and destroy verbs (workloadKind describes the kind to them);
// rs.go and deployment.go add the verbs that write replica sets and
// deployments. vcenter's controllers make and keep the VMs.

const groupWorkload = "workload"

// workloadKind is what the shared verbs need to know of one workload kind.
type workloadKind struct {
	kind   string   // api.KindReplicaSet
	prefix string   // verb prefix: rs
	alias  string   // another prefix the verbs answer to: replicaset
	noun   string   // in help texts: replica sets
	header []string // the ls columns between Name and Age
	row    func(o *api.Object, now time.Time) []string
	// info adds the kind's fields to an info block (after Path, Namespace and Created).
	info func(ctx context.Context, c API, o *api.Object, b *block, loc *time.Location) error
	// summary is the ls -l line; state is the tree label's.
	summary func(o *api.Object) string
	state   func(o *api.Object) string
	// owns are the kinds of what the workload makes (and its destroy takes with it).
	owns []string
}

// workloadKinds holds every kind's description, by kind; the kinds register
// themselves in their files' init.
var workloadKinds = map[string]*workloadKind{}

func registerWorkload(wk *workloadKind) *workloadKind {
	workloadKinds[wk.kind] = wk
	return wk
}

// addWorkloadCommands registers the workload verbs under their own help group.
func addWorkloadCommands(env *Env, root *cobra.Command) {
	root.AddGroup(&cobra.Group{ID: groupWorkload, Title: "Workloads (VMs kept running by vcenter's controllers):"})
	var cmds []*cobra.Command
	cmds = append(cmds, newRSCommands(env)...)
	cmds = append(cmds, newDeploymentCommands(env)...)
	for _, k := range []string{api.KindDaemonSet, api.KindJob, api.KindAutoscaler} {
		wk := workloadKinds[k]
		cmds = append(cmds, wk.lsCommand(env), wk.infoCommand(env), wk.destroyCommand(env))
	}
	for _, cmd := range cmds {
		cmd.GroupID = groupWorkload
		root.AddCommand(cmd)
	}
}

// verb names a verb of the kind (rs.ls), with its alias (replicaset.ls).
func (wk *workloadKind) verb(cmd *cobra.Command, name string) *cobra.Command {
	if wk.alias != "" {
		cmd.Aliases = append(cmd.Aliases, wk.alias+"."+name)
	}
	return cmd
}

// specOf and statusOf decode an object's spec and status; a workload whose
// controller has not reported yet has a zero status.
func specOf[T any](o *api.Object) T {
	var s T
	_ = o.DecodeSpec(&s)
	return s
}

func statusOf[T any](o *api.Object) T {
	var s T
	_ = o.DecodeStatus(&s)
	return s
}

// namespaceOf is the namespace of an object at p, "default" for the default one.
func namespaceOf(p string) string {
	if ref, err := api.ParsePath(p); err == nil && ref.Namespace != "" {
		return ref.Namespace
	}
	return api.DefaultNamespace
}

// dcRelative is p without its datacenter, as psc takes it back:
// deployment/team/web for /dc1/deployment/team/web.
func dcRelative(p string) string {
	if ref, err := api.ParsePath(p); err == nil && ref.Datacenter != "" {
		return strings.TrimPrefix(p, "/"+ref.Datacenter+"/")
	}
	return p
}

// age is kubectl's AGE: how long ago t was, in two units at most.
func age(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return shortDuration(now.Sub(t))
}

// shortDuration prints d as kubectl does: 45s, 3m20s, 25m, 4h10m, 30h, 3d4h, 40d, 3y.
func shortDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 0:
		s = 0
		fallthrough
	case s < 120:
		return fmt.Sprintf("%ds", s)
	case s < 10*60:
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	case s < 3*3600:
		return fmt.Sprintf("%dm", s/60)
	case s < 8*3600:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	case s < 48*3600:
		return fmt.Sprintf("%dh", s/3600)
	case s < 8*86400:
		return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
	case s < 2*365*86400:
		return fmt.Sprintf("%dd", s/86400)
	}
	return fmt.Sprintf("%dy", s/(365*86400))
}

// selectorText prints a label selector in kubectl's grammar, "-" when empty.
func selectorText(ls api.LabelSelector) string {
	sel, err := labels.FromLabelSelector(ls)
	if err != nil || sel.Empty() {
		return "-"
	}
	return sel.String()
}

// labelsText prints labels as k=v,k=v sorted by key, "-" when none.
func labelsText(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// imagesOf are the images of a template's containers: the image alone for
// one container, NAME=IMAGE for several (as deployment.set.image takes them).
func imagesOf(t api.VMTemplate) string {
	cs := t.Spec.Containers
	if len(cs) == 1 {
		return cs[0].Image
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Name + "=" + c.Image
	}
	return orDash(strings.Join(parts, ","))
}

// addTemplate adds the lines of a workload's template: its labels, image,
// size, and the HA settings its members get (the template's own win).
func addTemplate(b *block, pool string, sel api.LabelSelector, t api.VMTemplate, ha api.HAPolicy) {
	b.add("Pool", "%s", orDash(pool))
	b.add("Selector", "%s", selectorText(sel))
	b.add("Template labels", "%s", labelsText(t.Labels))
	b.add("Image", "%s", imagesOf(t))
	b.add("CPU", "%d vCPU(s)", t.Spec.NumCPU)
	b.add("Memory", "%dMB", t.Spec.MemoryMB)
	prio, iso := ha.RestartPriority, ha.IsolationResponse
	if t.Spec.HA.RestartPriority != "" {
		prio = t.Spec.HA.RestartPriority
	}
	if t.Spec.HA.IsolationResponse != "" {
		iso = t.Spec.HA.IsolationResponse
	}
	if prio == "" {
		prio = "cluster default"
	}
	if iso == "" {
		iso = "cluster default"
	}
	b.add("HA", "restart priority %s, isolation response %s", prio, iso)
}

// addConditions adds the controller's conditions, Type=Status Reason: message.
func addConditions(b *block, cs []api.Condition) {
	var lines []string
	for _, c := range cs {
		l := c.Type + "=" + c.Status
		if c.Reason != "" {
			l += " " + c.Reason
		}
		if c.Message != "" {
			l += ": " + c.Message
		}
		lines = append(lines, l)
	}
	b.list("Conditions", lines)
}

// addWaiting adds why members do not run, one a line; nothing when all do.
func addWaiting(b *block, ws []api.MemberWait, loc *time.Location) {
	if len(ws) == 0 {
		return
	}
	var lines []string
	for _, w := range ws {
		l := fmt.Sprintf("%s: %s (%s)", api.Base(w.VM), w.Message, w.Reason)
		if !w.RetryAt.IsZero() {
			l += ", retry at " + timeString(w.RetryAt, loc)
		}
		lines = append(lines, l)
	}
	b.list("Waiting", lines)
}

// addMembers adds the VMs the workload owns, one a line with their state.
func addMembers(ctx context.Context, c API, b *block, owner string) error {
	vms, err := owned(ctx, c, api.KindVirtualMachine, owner)
	if err != nil {
		return err
	}
	lines := make([]string, 0, len(vms))
	for _, vm := range vms {
		lines = append(lines, memberLine(vm))
	}
	b.list("VMs", lines)
	return nil
}

// memberLine is one member VM: name (power state on host, ready).
func memberLine(vm *api.Object) string {
	s, st := vmSpec(vm), vmStatus(vm)
	parts := []string{vmPowerState(vm)}
	if h := vmHost(vm); h != "" {
		parts[0] += " on " + api.Base(h)
	}
	switch {
	case st.Phase != "":
		parts = append(parts, st.Phase)
	case st.Ready:
		parts = append(parts, "ready")
	default:
		parts = append(parts, "not ready")
	}
	if s.Removing {
		parts = append(parts, "removing")
	}
	return fmt.Sprintf("%s (%s)", vm.Name(), strings.Join(parts, ", "))
}

// owned lists, by path, the objects of kind in owner's datacenter that owner owns.
func owned(ctx context.Context, c API, kind, owner string) ([]*api.Object, error) {
	ref, err := api.ParsePath(owner)
	if err != nil {
		return nil, usageErr(err)
	}
	l, err := c.List(ctx, client.ListOptions{Kind: kind, Prefix: "/" + ref.Datacenter + "/" + api.FolderOf(kind) + "/"})
	if err != nil {
		return nil, err
	}
	var out []*api.Object
	for _, o := range l.Items {
		if o.Owner == owner {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b *api.Object) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// byNamespace orders objects by namespace (the default one first), then name.
func byNamespace(a, b *api.Object) int {
	na, nb := namespaceOf(a.Path), namespaceOf(b.Path)
	if na != nb {
		switch {
		case na == api.DefaultNamespace:
			return -1
		case nb == api.DefaultNamespace:
			return 1
		}
		return strings.Compare(na, nb)
	}
	return strings.Compare(a.Name(), b.Name())
}

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

// refuseOwned refuses to act on a workload another one keeps (a
// Deployment's replica set): the owner would undo it.
func refuseOwned(obj *api.Object, what, why string) error {
	if obj.Owner == "" {
		return nil
	}
	ref, _ := api.ParsePath(obj.Owner)
	return &cliError{
		msg: fmt.Sprintf("%s is kept by %s %s: %s; %s that instead (psc %s.%s %s)",
			obj.Path, ref.Kind, obj.Owner, why, what, verbPrefix(ref.Kind), what, dcRelative(obj.Owner)),
		sentinel: api.ErrConflict,
	}
}

// verbPrefix is the prefix of a kind's verbs (rs, deployment, ...).
func verbPrefix(kind string) string {
	if wk := workloadKinds[kind]; wk != nil {
		return wk.prefix
	}
	return strings.ToLower(kind)
}

// ownedCounts says what destroying owner takes with it, for destroy's
// message: " with its 3 VM(s)", " with its 2 ReplicaSet(s) and their 3 VM(s)".
func ownedCounts(ctx context.Context, c API, owner string, kinds []string) (string, error) {
	owners := map[string]bool{owner: true}
	var parts []string
	for i, k := range kinds {
		objs, err := c.List(ctx, client.ListOptions{Kind: k, Prefix: "/" + strings.Split(owner, "/")[1] + "/" + api.FolderOf(k) + "/"})
		if err != nil {
			return "", err
		}
		n := 0
		next := map[string]bool{}
		for _, o := range objs.Items {
			if owners[o.Owner] {
				n++
				next[o.Path] = true
			}
		}
		owners = next
		word := "its"
		if i > 0 {
			word = "their"
		}
		unit := k
		if k == api.KindVirtualMachine {
			unit = "VM"
		}
		parts = append(parts, fmt.Sprintf("%s %d %s(s)", word, n, unit))
		if n == 0 {
			break
		}
	}
	if len(parts) == 0 {
		return "", nil
	}
	return " with " + strings.Join(parts, " and "), nil
}

// parseLabels reads -l values: KEY=VAL, several comma-separated or the flag
// repeated, each checked as vcenter checks labels.
func parseLabels(vals []string) (map[string]string, error) {
	m := map[string]string{}
	for _, val := range vals {
		for kv := range strings.SplitSeq(val, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				return nil, usagef("-l %q: want KEY=VAL[,KEY=VAL]", val)
			}
			if err := labels.Validate(k, v); err != nil {
				return nil, usageErr(fmt.Errorf("-l %q: %w", val, err))
			}
			m[k] = v
		}
	}
	return m, nil
}

// workloadFlags are what rs.create and deployment.create share: the
// template flags, -replicas, -pool, -l and -min-ready-seconds.
type workloadFlags struct {
	tmpl     templateFlags
	replicas int
	pool     string
	labels   []string
	minReady int
}

func (w *workloadFlags) register(f *pflag.FlagSet) {
	w.tmpl.register(f)
	f.IntVar(&w.replicas, "replicas", 1, "number of VMs to keep running")
	f.StringVar(&w.pool, "pool", "", "resource pool of the VMs (default: the namespace's pool, the cluster's root pool for the default namespace)")
	f.StringArrayVarP(&w.labels, "l", "l", nil, "labels KEY=VAL[,KEY=VAL] of the set and its VMs, also its selector (default app=NAME)")
	f.IntVar(&w.minReady, "min-ready-seconds", 0, "how long a VM must be ready to count as available")
}

// shape checks the flags and makes the parts of a workload spec: its
// labels (also the selector) and VM template.
func (w *workloadFlags) shape(name string) (map[string]string, api.VMTemplate, error) {
	if w.replicas < 0 {
		return nil, api.VMTemplate{}, usagef("-replicas %d is negative: want 0 or more VMs", w.replicas)
	}
	if w.minReady < 0 {
		return nil, api.VMTemplate{}, usagef("-min-ready-seconds %d is negative", w.minReady)
	}
	lbls, err := parseLabels(w.labels)
	if err != nil {
		return nil, api.VMTemplate{}, err
	}
	if len(lbls) == 0 {
		lbls = map[string]string{"app": api.Base(name)}
		if err := labels.Validate("app", api.Base(name)); err != nil {
			return nil, api.VMTemplate{}, usagef("NAME %q cannot be the label app=%s: give -l KEY=VAL", name, api.Base(name))
		}
	}
	spec, err := w.tmpl.spec("Always") // a set's VMs are kept running
	if err != nil {
		return nil, api.VMTemplate{}, err
	}
	spec.PowerState = "" // the controller's to set
	return lbls, api.VMTemplate{Labels: maps.Clone(lbls), Spec: spec}, nil
}

// sameJSONValue compares two values by their JSON form (nil and empty agree).
func sameJSONValue(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && sameJSON(x, y)
}

// The kinds that have only ls, info and destroy here.
var (
	daemonSetKind = registerWorkload(&workloadKind{
		kind: api.KindDaemonSet, prefix: "daemonset", alias: "ds", noun: "daemon sets",
		header: []string{"Desired", "Current", "Ready", "Host selector"},
		row: func(o *api.Object, _ time.Time) []string {
			s, st := specOf[api.DaemonSetSpec](o), statusOf[api.DaemonSetStatus](o)
			return []string{itoa(st.DesiredNumberScheduled), itoa(st.CurrentNumberScheduled), itoa(st.NumberReady), labelsText(s.Template.Spec.HostSelector)}
		},
		info: func(ctx context.Context, c API, o *api.Object, b *block, loc *time.Location) error {
			s, st := specOf[api.DaemonSetSpec](o), statusOf[api.DaemonSetStatus](o)
			addTemplate(b, s.Pool, s.Selector, s.Template, s.HA)
			b.add("Host selector", "%s", labelsText(s.Template.Spec.HostSelector))
			b.add("Hosts", "%d desired, %d current, %d ready", st.DesiredNumberScheduled, st.CurrentNumberScheduled, st.NumberReady)
			addConditions(b, st.Conditions)
			addWaiting(b, st.Waiting, loc)
			return addMembers(ctx, c, b, o.Path)
		},
		summary: func(o *api.Object) string {
			st := statusOf[api.DaemonSetStatus](o)
			return fmt.Sprintf("%d desired, %d current, %d ready", st.DesiredNumberScheduled, st.CurrentNumberScheduled, st.NumberReady)
		},
		state: func(o *api.Object) string {
			st := statusOf[api.DaemonSetStatus](o)
			return fmt.Sprintf("%d/%d ready", st.NumberReady, st.DesiredNumberScheduled)
		},
		owns: []string{api.KindVirtualMachine},
	})

	jobKind = registerWorkload(&workloadKind{
		kind: api.KindJob, prefix: "job", noun: "jobs",
		header: []string{"Status", "Completions", "Duration"},
		row: func(o *api.Object, now time.Time) []string {
			s, st := specOf[api.JobSpec](o), statusOf[api.JobStatus](o)
			return []string{jobState(st), fmt.Sprintf("%d/%d", st.Succeeded, s.Completions), jobDuration(st, now)}
		},
		info: func(ctx context.Context, c API, o *api.Object, b *block, loc *time.Location) error {
			s, st := specOf[api.JobSpec](o), statusOf[api.JobStatus](o)
			addTemplate(b, s.Pool, s.Selector, s.Template, api.HAPolicy{})
			b.add("State", "%s", jobState(st))
			b.add("Completions", "%d of %d succeeded (parallelism %d)", st.Succeeded, s.Completions, s.Parallelism)
			b.add("Active", "%d", st.Active)
			b.add("Failed", "%d (backoff limit %d)", st.Failed, s.BackoffLimit)
			if s.ActiveDeadlineSeconds > 0 {
				b.add("Deadline", "%ds", s.ActiveDeadlineSeconds)
			}
			b.add("Start time", "%s", timeString(st.StartTime, loc))
			b.add("Completion time", "%s", timeString(st.CompletionTime, loc))
			addConditions(b, st.Conditions)
			addWaiting(b, st.Waiting, loc)
			return addMembers(ctx, c, b, o.Path)
		},
		summary: func(o *api.Object) string {
			s, st := specOf[api.JobSpec](o), statusOf[api.JobStatus](o)
			return fmt.Sprintf("%s, %d/%d succeeded", jobState(st), st.Succeeded, s.Completions)
		},
		state: func(o *api.Object) string {
			s, st := specOf[api.JobSpec](o), statusOf[api.JobStatus](o)
			return fmt.Sprintf("%s %d/%d", jobState(st), st.Succeeded, s.Completions)
		},
		owns: []string{api.KindVirtualMachine},
	})

	autoscalerKind = registerWorkload(&workloadKind{
		kind: api.KindAutoscaler, prefix: "hpa", noun: "autoscalers (HorizontalPodAutoscaler)",
		header: []string{"Target", "CPU", "Min", "Max", "Replicas"},
		row: func(o *api.Object, _ time.Time) []string {
			s, st := specOf[api.AutoscalerSpec](o), statusOf[api.AutoscalerStatus](o)
			return []string{dcRelative(s.Target), cpuTarget(s, st), itoa(s.MinReplicas), itoa(s.MaxReplicas), itoa(st.CurrentReplicas)}
		},
		info: func(_ context.Context, _ API, o *api.Object, b *block, loc *time.Location) error {
			s, st := specOf[api.AutoscalerSpec](o), statusOf[api.AutoscalerStatus](o)
			b.add("Target", "%s", orDash(s.Target))
			b.add("Replicas", "%d current, %d desired (min %d, max %d)", st.CurrentReplicas, st.DesiredReplicas, s.MinReplicas, s.MaxReplicas)
			if st.CurrentCPUUtilization != nil {
				b.add("CPU", "%d%% of the reservation (target %d%%)", *st.CurrentCPUUtilization, s.TargetCPUUtilization)
			} else {
				b.add("CPU", "not measured yet (target %d%% of the reservation)", s.TargetCPUUtilization)
			}
			up, down := 0, 300
			if s.ScaleUpStabilizationSeconds != nil {
				up = *s.ScaleUpStabilizationSeconds
			}
			if s.ScaleDownStabilizationSeconds != nil {
				down = *s.ScaleDownStabilizationSeconds
			}
			b.add("Stabilization", "up %ds, down %ds", up, down)
			b.add("Last scale", "%s", timeString(st.LastScaleTime, loc))
			addConditions(b, st.Conditions)
			return nil
		},
		summary: func(o *api.Object) string {
			s, st := specOf[api.AutoscalerSpec](o), statusOf[api.AutoscalerStatus](o)
			return fmt.Sprintf("%s, %d replica(s) (%d-%d), CPU %s", dcRelative(s.Target), st.CurrentReplicas, s.MinReplicas, s.MaxReplicas, cpuTarget(s, st))
		},
		state: func(o *api.Object) string {
			s, st := specOf[api.AutoscalerSpec](o), statusOf[api.AutoscalerStatus](o)
			return fmt.Sprintf("%d replica(s) (%d-%d), CPU %s", st.CurrentReplicas, s.MinReplicas, s.MaxReplicas, cpuTarget(s, st))
		},
	})
)

func itoa(i int) string { return strconv.Itoa(i) }

// jobState is Complete or Failed by the Job's conditions, else Running or Pending.
func jobState(st api.JobStatus) string {
	for _, c := range st.Conditions {
		if c.Status == "True" && (c.Type == "Complete" || c.Type == "Failed") {
			return c.Type
		}
	}
	if st.Active > 0 {
		return "Running"
	}
	return "Pending"
}

// jobDuration is how long the Job ran (so far), "-" before it started.
func jobDuration(st api.JobStatus, now time.Time) string {
	if st.StartTime.IsZero() {
		return "-"
	}
	end := st.CompletionTime
	if end.IsZero() {
		end = now
	}
	return shortDuration(end.Sub(st.StartTime))
}

// cpuTarget is kubectl's TARGETS: current/target CPU utilization, -/80% before a measurement.
func cpuTarget(s api.AutoscalerSpec, st api.AutoscalerStatus) string {
	cur := "-"
	if st.CurrentCPUUtilization != nil {
		cur = strconv.Itoa(*st.CurrentCPUUtilization) + "%"
	}
	return fmt.Sprintf("%s/%d%%", cur, s.TargetCPUUtilization)
}
