package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// eventsOptions runs `psc events [-n 25] [-f] [-type T]... [PATH]`.
type eventsOptions struct {
	env    *Env
	n      int
	follow bool
	types  []string // govc's -type: only these event types
	target string
}

func newEventsCommand(env *Env) *cobra.Command {
	o := &eventsOptions{env: env}
	cmd := &cobra.Command{
		Use:   "events [-n 25] [-f] [PATH]",
		Short: "Show recent events, optionally only those about PATH and below; -f follows",
		Example: `  psc events
  psc events -n 100 /dc1/host/c1/Resources/dev
  psc events -f web-01
  psc events -type VmPoweredOffEvent -type VmPoweredOnEvent`,
		Args: maxArgs(1, "one PATH"),
		RunE: runE(o),
	}
	cmd.Flags().IntVarP(&o.n, "n", "n", 25, "number of recent events to show")
	cmd.Flags().BoolVarP(&o.follow, "f", "f", false, "follow: keep printing new events")
	cmd.Flags().StringArrayVar(&o.types, "type", nil, "only events of this type (VmPoweredOnEvent, ...; repeat for more)")
	return cmd
}

// wants says whether e is of a type -type asks for (any, without -type).
func (o *eventsOptions) wants(e api.EventSpec) bool {
	return len(o.types) == 0 || slices.Contains(o.types, e.Type)
}

func (o *eventsOptions) Complete(_ *cobra.Command, args []string) error {
	if len(args) == 1 {
		o.target = args[0]
	}
	return nil
}

func (o *eventsOptions) Validate() error {
	if o.n < 0 {
		return usagef("-n %d is negative", o.n)
	}
	return nil
}

func (o *eventsOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	prefix := ""
	if o.target != "" {
		if prefix, err = r.targetPath(ctx, o.target); err != nil {
			return err
		}
	}
	l, err := r.API.List(ctx, client.ListOptions{Kind: api.KindEvent})
	if err != nil {
		return err
	}
	var evs []api.EventSpec
	for _, obj := range l.Items {
		if e, ok := eventOf(obj, prefix); ok && o.wants(e) {
			evs = append(evs, e)
		}
	}
	slices.SortFunc(evs, func(a, b api.EventSpec) int { return cmpKey(a.Key, b.Key) })
	if len(evs) > o.n {
		evs = evs[len(evs)-o.n:]
	}
	if o.env.JSON && !o.follow {
		if evs == nil {
			evs = []api.EventSpec{}
		}
		return writeJSON(o.env.Out, evs)
	}
	var last uint64
	for _, e := range evs {
		if err := o.print(e); err != nil {
			return err
		}
		last = e.Key
	}
	if !o.follow {
		return nil
	}
	return follow(ctx, r.API, api.KindEvent, l.Revision, func(obj *api.Object, typ string) error {
		e, ok := eventOf(obj, prefix)
		if !ok || !o.wants(e) || typ != api.Added || e.Key <= last {
			return nil
		}
		last = e.Key
		return o.print(e)
	})
}

// print writes one event: a line for people, a JSON line with -json -f.
func (o *eventsOptions) print(e api.EventSpec) error {
	if o.env.JSON {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(o.env.Out, "%s\n", b)
		return err
	}
	return writeEvent(o.env.Out, e, o.env.Location)
}

// writeEvent prints govc's event line: [time] [category] [key] [type]
// message; an automatic action (a controller's, vcenter's, a host's) says
// who did it at the end, "(by controller:replicaset)".
func writeEvent(w io.Writer, e api.EventSpec, loc *time.Location) error {
	by := ""
	if e.User != "" && e.User != "admin" {
		by = " (by " + e.User + ")"
	}
	_, err := fmt.Fprintf(w, "[%s] [%s] [%d] [%s] %s%s\n", timeString(e.Time, loc), e.Category, e.Key, e.Type, e.Message, by)
	return err
}

// eventOf decodes an event object and says whether its target is prefix or below.
func eventOf(obj *api.Object, prefix string) (api.EventSpec, bool) {
	var e api.EventSpec
	if obj == nil || obj.Kind != api.KindEvent || obj.DecodeSpec(&e) != nil {
		return e, false
	}
	return e, prefix == "" || within(e.Target, prefix)
}

func cmpKey(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// targetPath resolves an events filter: an inventory path, or a bare name
// resolved as other verbs do, of whichever kind has an object of that name
// (VM, host, pool, cluster, workload, Service...). A name that no object has
// is not found, and one that several kinds have is ambiguous: both say so
// rather than print no events.
func (r *Resolver) targetPath(ctx context.Context, arg string) (string, error) {
	if strings.HasPrefix(arg, "/") || strings.Contains(arg, "/") {
		return r.inventoryPath(ctx, arg, "/")
	}
	var found []string
	for _, kind := range eventTargetKinds {
		p, err := r.Path(ctx, kind, arg)
		if err != nil {
			continue // no datacenter or cluster to resolve this kind in
		}
		if slices.Contains(found, p) {
			continue
		}
		_, err = r.API.Get(ctx, p)
		switch {
		case err == nil:
			found = append(found, p)
		case !errors.Is(err, api.ErrNotFound):
			return "", err
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no VM, host, pool, cluster or workload is named %q (give a path for anything else): %w", arg, api.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return "", usagef("%q is ambiguous: %s (give the path)", arg, strings.Join(found, ", "))
}

// eventTargetKinds are the kinds a bare events name may name, most likely first.
var eventTargetKinds = []string{api.KindVirtualMachine, api.KindHost, api.KindResourcePool, api.KindCluster,
	api.KindDeployment, api.KindReplicaSet, api.KindDaemonSet, api.KindJob, api.KindService, api.KindIngress, api.KindDatacenter}

// follow watches kind from revision and hands every change to fn until ctx
// ends (Ctrl-C), picking the watch up again when the stream breaks.
func follow(ctx context.Context, c API, kind string, revision uint64, fn func(*api.Object, string) error) error {
	for {
		ch, wait, err := c.Watch(ctx, client.ListOptions{Kind: kind}, revision)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for ev := range ch {
			revision = max(revision, ev.Revision)
			if err := fn(ev.Object, ev.Type); err != nil {
				return err
			}
		}
		err = wait()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, client.ErrGone) {
			revision = 0 // compacted: carry on from now; fn drops what it has seen
			continue
		}
		if err != nil {
			return err
		}
	}
}

// tasksOptions runs `psc tasks [-n 25] [-f] [-r] [PATH]`.
type tasksOptions struct {
	env      *Env
	n        int
	follow   bool
	children bool   // govc's -r: PATH's children's tasks too
	target   string // govc's PATH: only tasks of this object
}

func newTasksCommand(env *Env) *cobra.Command {
	o := &tasksOptions{env: env}
	cmd := &cobra.Command{
		Use:   "tasks [-n 25] [-f] [-r] [PATH]",
		Short: "Show recent tasks, optionally only PATH's (-r: and its children's); -f follows",
		Example: `  psc tasks
  psc tasks web-01
  psc tasks -r /dc1/host/c1
  psc tasks -f`,
		Args: maxArgs(1, "one PATH"),
		RunE: runE(o),
	}
	cmd.Flags().IntVarP(&o.n, "n", "n", 25, "number of recent tasks to show")
	cmd.Flags().BoolVarP(&o.follow, "f", "f", false, "follow: keep printing tasks as they change")
	cmd.Flags().BoolVarP(&o.children, "r", "r", false, "with PATH: include tasks of the objects below PATH")
	return cmd
}

func (o *tasksOptions) Complete(_ *cobra.Command, args []string) error {
	if len(args) == 1 {
		o.target = args[0]
	}
	return nil
}

// wants says whether a task is about the object -r/PATH ask for: PATH
// itself, or with -r PATH and below, as govc's tasks PATH.
func (o *tasksOptions) wants(t api.TaskSpec, target string) bool {
	switch {
	case target == "":
		return true
	case o.children:
		return within(t.Target, target)
	}
	return t.Target == target
}

func (o *tasksOptions) Validate() error {
	if o.n < 0 {
		return usagef("-n %d is negative", o.n)
	}
	return nil
}

// taskHeader are govc's tasks columns.
var taskHeader = []string{"Task", "Target", "Initiator", "Queued", "Started", "Completed", "Result"}

func (o *tasksOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	c := r.API
	target := ""
	if o.target != "" {
		if target, err = r.targetPath(ctx, o.target); err != nil {
			return err
		}
	} else if o.children {
		return usagef("tasks: -r wants a PATH")
	}
	l, err := c.List(ctx, client.ListOptions{Kind: api.KindTask})
	if err != nil {
		return err
	}
	var tasks []api.TaskSpec
	for _, obj := range l.Items {
		var t api.TaskSpec
		if obj.DecodeSpec(&t) == nil && o.wants(t, target) {
			tasks = append(tasks, t)
		}
	}
	slices.SortStableFunc(tasks, func(a, b api.TaskSpec) int { return a.Queued.Compare(b.Queued) })
	if len(tasks) > o.n {
		tasks = tasks[len(tasks)-o.n:]
	}
	if o.env.JSON && !o.follow {
		if tasks == nil {
			tasks = []api.TaskSpec{}
		}
		return writeJSON(o.env.Out, tasks)
	}
	if !o.env.JSON {
		if err := writeTasks(o.env.Out, tasks, o.env.Location); err != nil {
			return err
		}
	}
	if !o.follow {
		return nil
	}
	return follow(ctx, c, api.KindTask, l.Revision, func(obj *api.Object, typ string) error {
		var t api.TaskSpec
		if obj == nil || typ == api.Deleted || obj.DecodeSpec(&t) != nil || !o.wants(t, target) {
			return nil
		}
		if o.env.JSON {
			b, err := json.Marshal(t)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(o.env.Out, "%s\n", b)
			return err
		}
		_, err := fmt.Fprintln(o.env.Out, strings.Join(taskRow(t, o.env.Location), "   "))
		return err
	})
}

func writeTasks(w io.Writer, tasks []api.TaskSpec, loc *time.Location) error {
	rows := make([][]string, 0, len(tasks))
	for _, t := range tasks {
		rows = append(rows, taskRow(t, loc))
	}
	return writeTable(w, taskHeader, rows)
}

func taskRow(t api.TaskSpec, loc *time.Location) []string {
	result := orDash(t.Result)
	if t.Error != "" {
		result += ": " + t.Error
	}
	return []string{t.Name, t.Target, orDash(t.Initiator), timeString(t.Queued, loc), timeString(t.Started, loc), timeString(t.Completed, loc), result}
}
