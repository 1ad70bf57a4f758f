package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/api/labels"
)

// memAPI is a vcenter that stores objects and nothing else: enough for
// apply and delete of the kinds vcenter does not accept yet (workloads),
// and for the workload verbs, whose controllers the tests play by writing
// status (setStatus) and owned objects (put). Like vcenter it counts spec
// changes in Generation, keeps the status on updates, deletes what an object
// owns with it, lists by kind, prefix and selector, and watches.
type memAPI struct {
	mu       sync.Mutex
	objs     map[string]*api.Object
	version  uint64
	calls    []string
	log      []api.WatchEvent
	watchers map[*memWatch]bool
	now      func() time.Time // Created of new objects and psc's clock (default time.Now)
}

type memWatch struct {
	opts client.ListOptions
	sel  labels.Selector
	ch   chan api.WatchEvent
}

func newMemAPI() *memAPI {
	return &memAPI{objs: map[string]*api.Object{}, watchers: map[*memWatch]bool{}, now: time.Now}
}

var errNotInFake = errors.New("not in the fake API")

// exitNotFound is psc's "not found" exit code (docs/cli.md), spelled out so
// this file does not depend on which package holds the constant.
const exitNotFound = 3

func (m *memAPI) About(context.Context) (*api.About, error) { return nil, errNotInFake }

func (m *memAPI) Get(_ context.Context, path string) (*api.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[path]
	if !ok {
		return nil, fmt.Errorf("%s: %w", path, api.ErrNotFound)
	}
	return o.Clone(), nil
}

func (w *memWatch) matches(o *api.Object) bool {
	return (w.opts.Kind == "" || o.Kind == w.opts.Kind) && strings.HasPrefix(o.Path, w.opts.Prefix) && w.sel.Matches(o.Labels)
}

func (m *memAPI) List(_ context.Context, opts client.ListOptions) (*api.List, error) {
	sel, err := labels.Parse(opts.Selector)
	if err != nil {
		return nil, err
	}
	w := &memWatch{opts: opts, sel: sel}
	m.mu.Lock()
	defer m.mu.Unlock()
	l := &api.List{Revision: m.version, Items: []*api.Object{}}
	for _, p := range slices.Sorted(maps.Keys(m.objs)) {
		if o := m.objs[p]; w.matches(o) {
			l.Items = append(l.Items, o.Clone())
		}
	}
	return l, nil
}

// commit stores o (nil: deletes path) as the next revision and tells the watchers; m.mu is held.
func (m *memAPI) commit(typ, path string, o *api.Object) *api.Object {
	m.version++
	if o == nil {
		o = m.objs[path]
		delete(m.objs, path)
	} else {
		o = o.Clone()
		o.ResourceVersion = m.version
		m.objs[path] = o
	}
	ev := api.WatchEvent{Type: typ, Revision: m.version, Object: o.Clone()}
	m.log = append(m.log, ev)
	for w := range m.watchers {
		if w.matches(o) {
			w.ch <- ev
		}
	}
	return o.Clone()
}

func (m *memAPI) Create(_ context.Context, o *api.Object) (*api.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "create "+o.Path)
	if _, ok := m.objs[o.Path]; ok {
		return nil, fmt.Errorf("%s exists: %w", o.Path, api.ErrConflict)
	}
	c := o.Clone()
	c.Generation, c.Created, c.Status = 1, m.now().UTC(), nil
	return m.commit(api.Added, o.Path, c), nil
}

func (m *memAPI) Update(_ context.Context, o *api.Object) (*api.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "update "+o.Path)
	cur, ok := m.objs[o.Path]
	if !ok {
		return nil, fmt.Errorf("%s: %w", o.Path, api.ErrNotFound)
	}
	if o.ResourceVersion != cur.ResourceVersion {
		return nil, fmt.Errorf("%s changed: %w", o.Path, api.ErrConflict)
	}
	c := o.Clone()
	c.Status, c.Created, c.Generation = cur.Status, cur.Created, cur.Generation
	if !sameJSON(c.Spec, cur.Spec) {
		c.Generation++
	}
	return m.commit(api.Modified, o.Path, c), nil
}

// put stores o as its controller would (a replica set a Deployment made),
// as it is; setStatus writes an object's status as its controller does.
func (m *memAPI) put(o *api.Object) {
	m.mu.Lock()
	defer m.mu.Unlock()
	typ := api.Modified
	if _, ok := m.objs[o.Path]; !ok {
		typ = api.Added
	}
	m.commit(typ, o.Path, o)
}

func (m *memAPI) setStatus(path string, status any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.objs[path].Clone()
	o.SetStatus(status)
	m.commit(api.Modified, path, o)
}

func (m *memAPI) Delete(_ context.Context, path string, _ client.DeleteOptions) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "delete "+path)
	if _, ok := m.objs[path]; !ok {
		return fmt.Errorf("%s: %w", path, api.ErrNotFound)
	}
	m.deleteOwned(path)
	m.commit(api.Deleted, path, nil)
	return nil
}

// deleteOwned deletes what owner owns, and what that owns; m.mu is held.
func (m *memAPI) deleteOwned(owner string) {
	for _, p := range slices.Sorted(maps.Keys(m.objs)) {
		if o, ok := m.objs[p]; ok && o.Owner == owner {
			m.deleteOwned(p)
			m.commit(api.Deleted, p, nil)
		}
	}
}

func (m *memAPI) Power(_ context.Context, path, action string) (*api.Object, error) {
	m.calls = append(m.calls, "power "+action+" "+path)
	return nil, errNotInFake
}

func (m *memAPI) Migrate(context.Context, string, string) (*api.Object, error) {
	return nil, errNotInFake
}

func (m *memAPI) Pool(context.Context, string) (*api.PoolInfo, error)   { return nil, errNotInFake }
func (m *memAPI) Quota(context.Context, string) (*api.QuotaInfo, error) { return nil, errNotInFake }
func (m *memAPI) HAPlan(context.Context, string, []string) (*api.HAPlan, error) {
	return nil, errNotInFake
}
func (m *memAPI) HACapacity(context.Context, string) (*api.HACapacity, error) {
	return nil, errNotInFake
}

// Watch sends the changes after revision from that opts select, until ctx ends.
func (m *memAPI) Watch(ctx context.Context, opts client.ListOptions, from uint64) (<-chan api.WatchEvent, func() error, error) {
	sel, err := labels.Parse(opts.Selector)
	if err != nil {
		return nil, nil, err
	}
	w := &memWatch{opts: opts, sel: sel, ch: make(chan api.WatchEvent, 1024)}
	m.mu.Lock()
	for _, ev := range m.log {
		if ev.Revision > from && w.matches(ev.Object) {
			w.ch <- ev
		}
	}
	m.watchers[w] = true
	m.mu.Unlock()
	go func() {
		<-ctx.Done()
		m.mu.Lock()
		delete(m.watchers, w)
		close(w.ch)
		m.mu.Unlock()
	}()
	return w.ch, ctx.Err, nil
}

// psc runs a psc command line against the fake.
func (m *memAPI) psc(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &Env{In: strings.NewReader(stdin), Out: &out, Err: &errb, Now: m.now, Location: time.UTC,
		NewAPI: func(string, string) (API, error) { return m, nil }}
	vars := map[string]string{"PSC_URL": "http://fake", "PSC_TOKEN": "t", "PSC_DATACENTER": "dc1", "PSC_CLUSTER": "c1"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code := Run(ctx, e, func(k string) string { return vars[k] }, args)
	return out.String(), errb.String(), code
}

func k8sFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../api/manifest/testdata/k8s/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestApplyWorkloads applies and deletes the Kubernetes workload kinds
// against a fake vcenter: what apply creates, replaces and prints.
func TestApplyWorkloads(t *testing.T) {
	t.Parallel()
	m := newMemAPI()
	manifest := k8sFile(t, "deployment.yaml") + "---\n" + k8sFile(t, "replicaset.yaml") + "---\n" + k8sFile(t, "daemonset.yaml") +
		"---\n" + k8sFile(t, "job.yaml") + "---\n" + k8sFile(t, "hpa.yaml")
	labels := []string{
		"Deployment web -> /dc1/deployment/team-a/web",
		"ReplicaSet frontend -> /dc1/replicaset/team-a/frontend",
		"DaemonSet node-exporter -> /dc1/daemonset/monitoring/node-exporter",
		"Job pi -> /dc1/job/pi",
		"HorizontalPodAutoscaler php-apache -> /dc1/hpa/team-a/php-apache",
	}
	lines := func(word string, reverse bool) string {
		var b strings.Builder
		for i := range labels {
			l := labels[i]
			if reverse {
				l = labels[len(labels)-1-i]
			}
			b.WriteString(l + " " + word + "\n")
		}
		return b.String()
	}
	out, errOut, code := m.psc(t, manifest, "apply", "-f", "-")
	if code != 0 {
		t.Fatalf("apply: exit %d: %s", code, errOut)
	}
	if want := lines("created", false); out != want {
		t.Errorf("apply:\n%s\nwant:\n%s", out, want)
	}
	var d api.DeploymentSpec
	if err := m.objs["/dc1/deployment/team-a/web"].DecodeSpec(&d); err != nil || d.Replicas != 3 || d.Pool != "/dc1/host/c1/Resources/team-a" {
		t.Errorf("deployment spec %+v, %v", d, err)
	}
	if l := m.objs["/dc1/deployment/team-a/web"].Labels; l["app"] != "web" {
		t.Errorf("deployment labels %v", l)
	}
	for _, c := range m.calls {
		if strings.HasPrefix(c, "power") {
			t.Errorf("a workload was powered: %s", c)
		}
	}

	out, _, code = m.psc(t, manifest, "apply", "-f", "-")
	if want := lines("unchanged", false); code != 0 || out != want {
		t.Errorf("second apply: exit %d\n%s\nwant:\n%s", code, out, want)
	}

	// A changed template replaces the spec.
	out, _, code = m.psc(t, strings.Replace(manifest, "image: nginx:1.27", "image: nginx:1.28", 1), "apply", "-f", "-")
	if code != 0 || !strings.Contains(out, "Deployment web -> /dc1/deployment/team-a/web configured\n") || !strings.Contains(out, "Job pi -> /dc1/job/pi unchanged\n") {
		t.Errorf("apply of a new image: exit %d\n%s", code, out)
	}
	if err := m.objs["/dc1/deployment/team-a/web"].DecodeSpec(&d); err != nil || d.Template.Spec.Containers[0].Image != "nginx:1.28" {
		t.Errorf("deployment template after the change: %+v, %v", d.Template.Spec.Containers, err)
	}

	out, errOut, code = m.psc(t, manifest, "delete", "-f", "-")
	if want := lines("deleted", true); code != 0 || out != want {
		t.Errorf("delete: exit %d %s\n%s\nwant:\n%s", code, errOut, out, want)
	}
	if len(m.objs) != 0 {
		t.Errorf("left after delete: %v", m.objs)
	}
	out, _, code = m.psc(t, manifest, "delete", "-f", "-")
	if code != exitNotFound || !strings.Contains(out, "Job pi -> /dc1/job/pi not found\n") {
		t.Errorf("second delete: exit %d\n%s", code, out)
	}
}

// TestApplyKeepsScaledReplicas: a Deployment whose manifest leaves replicas
// out keeps what an autoscaler set; one that gives replicas resets them.
func TestApplyKeepsScaledReplicas(t *testing.T) {
	t.Parallel()
	m := newMemAPI()
	const noReplicas = `apiVersion: apps/v1
kind: Deployment
metadata: {name: php-apache, namespace: team-a}
spec:
  selector: {matchLabels: {run: php-apache}}
  template:
    metadata: {labels: {run: php-apache}}
    spec:
      containers:
      - name: php-apache
        image: registry.k8s.io/hpa-example
        resources: {requests: {cpu: 200m}, limits: {cpu: 500m}}
`
	const path = "/dc1/deployment/team-a/php-apache"
	if out, errOut, code := m.psc(t, noReplicas, "apply", "-f", "-"); code != 0 || out != "Deployment php-apache -> "+path+" created\n" {
		t.Fatalf("apply: exit %d %s\n%s", code, errOut, out)
	}
	replicas := func() int {
		var s api.DeploymentSpec
		if err := m.objs[path].DecodeSpec(&s); err != nil {
			t.Fatal(err)
		}
		return s.Replicas
	}
	if r := replicas(); r != 1 {
		t.Errorf("created with %d replicas, want the default 1", r)
	}
	// The autoscaler scales it to 4.
	o := m.objs[path]
	var s api.DeploymentSpec
	_ = o.DecodeSpec(&s)
	s.Replicas = 4
	o.SetSpec(s)

	if out, _, code := m.psc(t, noReplicas, "apply", "-f", "-"); code != 0 || out != "Deployment php-apache -> "+path+" unchanged\n" {
		t.Errorf("apply again: exit %d\n%s", code, out)
	}
	if r := replicas(); r != 4 {
		t.Errorf("replicas %d after apply, want the autoscaler's 4", r)
	}
	// A new image is configured, still with the scaled replicas.
	if out, _, code := m.psc(t, strings.Replace(noReplicas, "hpa-example", "hpa-example:v2", 1), "apply", "-f", "-"); code != 0 || !strings.Contains(out, "configured") {
		t.Errorf("apply of a new image: exit %d\n%s", code, out)
	}
	if r := replicas(); r != 4 {
		t.Errorf("replicas %d after a new image, want 4", r)
	}
	// A manifest that says replicas means them.
	withReplicas := strings.Replace(noReplicas, "spec:\n  selector", "spec:\n  replicas: 2\n  selector", 1)
	if out, _, code := m.psc(t, withReplicas, "apply", "-f", "-"); code != 0 || !strings.Contains(out, "configured") {
		t.Errorf("apply with replicas: exit %d\n%s", code, out)
	}
	if r := replicas(); r != 2 {
		t.Errorf("replicas %d, want the manifest's 2", r)
	}
}

func TestItemLabel(t *testing.T) {
	m := newMemAPI()
	in := "apiVersion: podsphere.io/v1\nkind: VirtualMachine\nmetadata: {path: /dc1/vm/team-a/db}\nspec: {pool: team-a}\n---\n" +
		"apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: team-a}\nspec: {containers: [{name: c, image: i}]}\n"
	out, _, _ := m.psc(t, in, "apply", "-f", "-")
	// The fake refuses power operations: apply stops after the first VM, which it did create.
	if want := "VirtualMachine /dc1/vm/team-a/db created\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if _, ok := m.objs["/dc1/vm/team-a/db"]; !ok {
		t.Error("VM not created")
	}
	out, _, code := m.psc(t, in, "delete", "-f", "-")
	if want := "Pod web -> /dc1/vm/team-a/web not found\nVirtualMachine /dc1/vm/team-a/db deleted\n"; code != exitNotFound || out != want {
		t.Errorf("delete: exit %d %q, want %q", code, out, want)
	}
}
