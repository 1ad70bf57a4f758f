package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/api/manifest"
	"github.com/podsphere/podsphere/host/runtime"
)

// manifestOptions runs `psc apply -f FILE` and `psc delete -f FILE`.
type manifestOptions struct {
	env     *Env
	delete  bool
	prune   bool
	restart bool
	files   []string
}

func newApplyCommand(env *Env) *cobra.Command {
	return newManifestCommand(env, false)
}

func newDeleteCommand(env *Env) *cobra.Command {
	return newManifestCommand(env, true)
}

func newManifestCommand(env *Env, del bool) *cobra.Command {
	o := &manifestOptions{env: env, delete: del}
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update the objects of a YAML manifest (podsphere kinds; Kubernetes Namespace, ResourceQuota, Pod, Service, Deployment, ReplicaSet, DaemonSet, Job, HorizontalPodAutoscaler)",
		Example: `  psc apply -f dev.yaml
  cat dev.yaml | psc apply -f -
  psc apply --prune -f cluster.yaml`,
		Args: exactArgs(0, "no arguments (the manifest comes from -f)"),
		RunE: runE(o),
	}
	if del {
		cmd.Use = "delete -f FILE"
		cmd.Short = "Delete the objects of a YAML manifest, last first (a ResourceQuota only clears the pool's quota)"
		cmd.Example = "  psc delete -f dev.yaml"
	}
	cmd.Flags().StringArrayVarP(&o.files, "f", "f", nil, "manifest file, - for stdin (repeatable)")
	if !del {
		// Without it apply changes only the fields a document gives, as kubectl apply.
		cmd.Flags().BoolVar(&o.prune, "prune", false, "reset the spec fields a document leaves out (a Cluster's rules, groups, ...) instead of keeping them")
		// A running VM's size and allocations change live; anything else needs a restart.
		cmd.Flags().BoolVar(&o.restart, "restart", false, "let a change of a running VM's containers (image, command, env, ...) restart it; without, such a change is refused")
	}
	return cmd
}

func (o *manifestOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *manifestOptions) Validate() error {
	if len(o.files) == 0 {
		return usagef("-f FILE is required")
	}
	return nil
}

func (o *manifestOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	items, err := o.decode(ctx, r)
	if err != nil {
		return err
	}
	if o.delete {
		return o.deleteItems(ctx, r.API, items)
	}
	for _, it := range items {
		if o.prune {
			it.Keep = nil
		}
		result, err := applyItem(ctx, r.API, it, o.restart)
		if result != "" {
			fmt.Fprintf(o.env.Out, "%s %s\n", itemLabel(it), result)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", it, err)
		}
	}
	return nil
}

// itemLabel names an item in apply's and delete's output as the manifest
// does and says where it lands: "Deployment web -> /dc1/deployment/team-a/web",
// or "VirtualMachine /dc1/vm/db" when the manifest gave the path itself.
func itemLabel(it manifest.Item) string {
	if it.Name == "" || it.Name == it.Object.Path {
		return it.Kind + " " + it.Object.Path
	}
	return it.Kind + " " + it.Name + " -> " + it.Object.Path
}

// decode reads every -f file with the datacenter and cluster as context.
func (o *manifestOptions) decode(ctx context.Context, r *Resolver) ([]manifest.Item, error) {
	mctx := manifest.Context{}
	if dc, err := r.dcName(ctx); err == nil {
		mctx.Datacenter = dc
	}
	if cp, err := r.clusterPath(ctx); err == nil {
		ref, _ := api.ParsePath(cp)
		mctx.Cluster = ref.Cluster
		mctx.Datacenter = ref.Datacenter
	}
	var all []manifest.Item
	for _, f := range o.files {
		var in io.Reader
		name := f
		if f == "-" {
			in, name = o.env.In, "stdin"
		} else {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, usageErr(err)
			}
			in = bytes.NewReader(b)
		}
		items, err := manifest.Decode(in, mctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		all = append(all, items...)
	}
	return all, nil
}

// applyItem makes one object as its manifest says and reports created,
// configured or unchanged. The result is set even when a later step (a
// refused power-on) fails, so the user sees what did happen.
// A running VM whose change needs a restart (runtime.NeedsRestart) is
// refused unless restart; the result says "configured (live)" or
// "configured (restarted)" for a running VM.
func applyItem(ctx context.Context, c API, it manifest.Item, restart bool) (string, error) {
	want := it.Object
	cur, err := c.Get(ctx, want.Path)
	switch {
	case errors.Is(err, api.ErrNotFound) && it.Merge == manifest.MergeQuota:
		return "", fmt.Errorf("pool %s does not exist (create the Namespace or ResourcePool first): %w", want.Path, api.ErrNotFound)
	case errors.Is(err, api.ErrNotFound):
		return createItem(ctx, c, want)
	case err != nil:
		return "", err
	}
	if it.Merge == manifest.MergeQuota {
		return applyQuota(ctx, c, want)
	}
	if cur.Kind != want.Kind {
		return "", fmt.Errorf("%s is a %s, not a %s: %w", want.Path, cur.Kind, want.Kind, api.ErrConflict)
	}
	changed := false
	spec, err := keepServerFields(it, cur)
	if err != nil {
		return "", err
	}
	how := ""
	if !sameJSON(spec, cur.Spec) || !sameLabels(want.Labels, cur.Labels) {
		_, err := modify(ctx, c, want.Path, func(o *api.Object) error {
			s, err := keepServerFields(it, o)
			if err != nil {
				return err
			}
			if o.Kind == api.KindVirtualMachine && vmSpec(o).PowerState == api.PoweredOn && vmSpec(want).PowerState == api.PoweredOn {
				var next api.VMSpec
				_ = json.Unmarshal(s, &next)
				switch {
				case !runtime.NeedsRestart(vmSpec(o), next):
					how = " (live)"
				case !restart:
					return fmt.Errorf("%s is running and this change (containers, init containers, restart policy, hostname, DNS or grace period) restarts it: apply again with --restart to let it, or power it off first: %w", o.Path, api.ErrConflict)
				default:
					how = " (restarted)"
				}
			}
			o.Spec, o.Labels = s, want.Labels
			return nil
		})
		if err != nil {
			return "", err
		}
		changed = true
	}
	if want.Kind == api.KindVirtualMachine {
		action := powerAction(vmSpec(cur).PowerState, vmSpec(want).PowerState)
		if action != "" {
			if _, err := c.Power(ctx, want.Path, action); err != nil {
				return resultWord(changed), err
			}
			changed, how = true, ""
		}
	}
	return resultWord(changed) + how, nil
}

func resultWord(changed bool) string {
	if changed {
		return "configured"
	}
	return "unchanged"
}

// createItem creates a missing object; VMs are created powered off and then
// powered on as the manifest asks, as vm.create does.
func createItem(ctx context.Context, c API, want *api.Object) (string, error) {
	o := want.Clone()
	var power string
	if o.Kind == api.KindVirtualMachine {
		s := vmSpec(o)
		power = powerAction(api.PoweredOff, s.PowerState)
		s.PowerState = api.PoweredOff
		o.SetSpec(s)
	}
	if _, err := c.Create(ctx, o); err != nil {
		return "", err
	}
	if power != "" {
		if _, err := c.Power(ctx, o.Path, power); err != nil {
			return "created", err
		}
	}
	return "created", nil
}

// applyQuota sets only the quota of an existing pool (a Kubernetes ResourceQuota).
func applyQuota(ctx context.Context, c API, want *api.Object) (string, error) {
	var q struct {
		Quota *api.QuotaLimits `json:"quota"`
	}
	if err := want.DecodeSpec(&q); err != nil {
		return "", fmt.Errorf("quota of %s: %v: %w", want.Path, err, api.ErrInvalid)
	}
	result := "unchanged"
	_, err := modify(ctx, c, want.Path, func(o *api.Object) error {
		var s api.PoolSpec
		if err := o.DecodeSpec(&s); err != nil {
			return err
		}
		if reflect.DeepEqual(s.Quota, q.Quota) {
			return errUnchanged
		}
		s.Quota = q.Quota
		o.SetSpec(s)
		result = "configured"
		return nil
	})
	if errors.Is(err, errUnchanged) {
		err = nil
	}
	return result, err
}

// errUnchanged stops a modify that has nothing to write.
var errUnchanged = errors.New("unchanged")

// keepServerFields returns want's spec with the fields vcenter owns taken
// from cur, so an apply of an unchanged manifest compares equal: a VM's
// placement (spec.host, when the manifest pins none), its power state
// (changed through power operations instead) and reset generation; a
// cluster's pod CIDR when the manifest gives none. A Kubernetes Namespace
// leaves its pool's quota alone: that belongs to ResourceQuota documents.
// The spec fields the manifest left out and asks to keep (it.Keep: the
// replicas of a Deployment an autoscaler scales) are cur's.
func keepServerFields(it manifest.Item, cur *api.Object) (json.RawMessage, error) {
	spec, err := keepKindFields(it, cur)
	if err != nil || len(it.Keep) == 0 {
		return spec, err
	}
	return keepFields(spec, cur.Spec, it.Keep)
}

// keepKindFields is keepServerFields for the fields each kind's vcenter owns.
func keepKindFields(it manifest.Item, cur *api.Object) (json.RawMessage, error) {
	want := it.Object
	switch want.Kind {
	case api.KindResourcePool:
		if it.Kind != "Namespace" {
			return want.Spec, nil
		}
		var w, c api.PoolSpec
		if err := want.DecodeSpec(&w); err != nil {
			return nil, err
		}
		_ = cur.DecodeSpec(&c)
		w.Quota = c.Quota
		return json.Marshal(w)
	case api.KindVirtualMachine:
		w, c := vmSpec(want), vmSpec(cur)
		if w.Host == "" {
			// The manifest leaves placement to vcenter: keep where the VM is
			// registered and whether an admin pinned it there.
			w.Host, w.Pinned = c.Host, c.Pinned
		}
		w.PowerState, w.ResetGeneration = c.PowerState, c.ResetGeneration
		return json.Marshal(w)
	case api.KindCluster:
		var w, c api.ClusterSpec
		if err := want.DecodeSpec(&w); err != nil {
			return nil, err
		}
		_ = cur.DecodeSpec(&c)
		if w.PodCIDR == "" {
			w.PodCIDR = c.PodCIDR
		}
		// What vcenter filled in stays, as it would on write.
		if w.ServiceCIDR == "" {
			w.ServiceCIDR = c.ServiceCIDR
		}
		if w.NodePortRange == "" {
			w.NodePortRange = c.NodePortRange
		}
		if w.ClusterDomain == "" {
			w.ClusterDomain = c.ClusterDomain
		}
		return json.Marshal(w)
	case api.KindService:
		var w, c api.ServiceSpec
		if err := want.DecodeSpec(&w); err != nil {
			return nil, err
		}
		_ = cur.DecodeSpec(&c)
		keepServiceAllocations(&w, c)
		return json.Marshal(w)
	}
	return want.Spec, nil
}

// keepServiceAllocations fills in what vcenter allocated and the manifest
// leaves out (cluster, cluster IP, node ports, health check port), as
// vcenter keeps them on write, so re-applying a manifest is unchanged.
func keepServiceAllocations(w *api.ServiceSpec, c api.ServiceSpec) {
	if w.Cluster == "" || w.Cluster == c.Cluster {
		w.Cluster = c.Cluster
	}
	if w.ClusterIP == "" && w.Type != api.ServiceExternalName && c.Type != api.ServiceExternalName {
		w.ClusterIP = c.ClusterIP
	}
	if w.Type == api.ServiceNodePort || w.Type == api.ServiceLoadBalancer {
		held := map[string]int{}
		for _, p := range c.Ports {
			held[fmt.Sprintf("%d/%s", p.Port, p.Protocol)] = p.NodePort
		}
		for i := range w.Ports {
			if p := &w.Ports[i]; p.NodePort == 0 {
				p.NodePort = held[fmt.Sprintf("%d/%s", p.Port, p.Protocol)]
			}
		}
	}
	if w.HealthCheckNodePort == 0 && w.Type == api.ServiceLoadBalancer && w.ExternalTrafficPolicy == "Local" {
		w.HealthCheckNodePort = c.HealthCheckNodePort
	}
}

// keepFields returns want with the top-level fields keep taken from cur
// (left as they are in want when cur has none).
func keepFields(want, cur json.RawMessage, keep []string) (json.RawMessage, error) {
	var w, c map[string]json.RawMessage
	if err := json.Unmarshal(want, &w); err != nil {
		return nil, err
	}
	if len(cur) > 0 {
		if err := json.Unmarshal(cur, &c); err != nil {
			return nil, fmt.Errorf("spec of the existing object: %v: %w", err, api.ErrInvalid)
		}
	}
	for _, k := range keep {
		if v, ok := c[k]; ok {
			w[k] = v
		}
	}
	return json.Marshal(w)
}

// powerAction is the power operation that takes a VM from cur to want, "" if none.
func powerAction(cur, want string) string {
	if cur == "" {
		cur = api.PoweredOff
	}
	if want == "" || want == cur {
		return ""
	}
	switch want {
	case api.PoweredOn:
		return "on"
	case api.PoweredOff:
		return "off"
	case api.Suspended:
		return "suspend"
	}
	return ""
}

// sameJSON compares two JSON documents by value, not by bytes.
func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if len(a) == 0 {
		a = json.RawMessage("null")
	}
	if len(b) == 0 {
		b = json.RawMessage("null")
	}
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func sameLabels(a, b map[string]string) bool { return maps.Equal(a, b) }

// deleteItems deletes the manifest's objects last first, so VMs go before
// their pools and pools before their cluster. A workload's VMs and replica
// sets go with it (vcenter deletes what an object owns).
func (o *manifestOptions) deleteItems(ctx context.Context, c API, items []manifest.Item) error {
	missing := 0
	for _, it := range slices.Backward(items) {
		err := deleteItem(ctx, c, it)
		switch {
		case errors.Is(err, api.ErrNotFound):
			missing++
			fmt.Fprintf(o.env.Out, "%s not found\n", itemLabel(it))
		case err != nil:
			return fmt.Errorf("%s: %w", it, err)
		default:
			fmt.Fprintf(o.env.Out, "%s deleted\n", itemLabel(it))
		}
	}
	if missing > 0 {
		return fmt.Errorf("%d object(s) of the manifest were not found: %w", missing, api.ErrNotFound)
	}
	return nil
}

func deleteItem(ctx context.Context, c API, it manifest.Item) error {
	p := it.Object.Path
	if it.Merge == manifest.MergeQuota {
		_, err := modify(ctx, c, p, func(o *api.Object) error {
			var s api.PoolSpec
			if err := o.DecodeSpec(&s); err != nil {
				return err
			}
			s.Quota = nil
			o.SetSpec(s)
			return nil
		})
		return err
	}
	if it.Object.Kind == api.KindVirtualMachine {
		cur, err := c.Get(ctx, p)
		if err != nil {
			return err
		}
		if vmSpec(cur).PowerState == api.PoweredOn {
			if _, err := c.Power(ctx, p, "off"); err != nil {
				return err
			}
		}
	}
	// Deleting a Kubernetes Namespace deletes what is in it, as kubectl does.
	return c.Delete(ctx, p, client.DeleteOptions{Namespace: it.Kind == "Namespace"})
}
