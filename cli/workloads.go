package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
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
