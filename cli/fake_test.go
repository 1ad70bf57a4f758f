package cli

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// fakeAPI is an in-memory vcenter for command tests: objects by path with
// resource versions, canned pool and quota figures, scripted power refusals.
type fakeAPI struct {
	mu       sync.Mutex
	objs     map[string]*api.Object
	rev      uint64
	pools    map[string]*api.PoolInfo
	quotas   map[string]*api.QuotaInfo
	powerErr map[string]error
	calls    []string
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{objs: map[string]*api.Object{}, pools: map[string]*api.PoolInfo{},
		quotas: map[string]*api.QuotaInfo{}, powerErr: map[string]error{}}
}

func (f *fakeAPI) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// put stores an object as if vcenter had it already.
func (f *fakeAPI) put(kind, path string, spec, status any) *api.Object {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := api.New(kind, path, spec)
	if status != nil {
		o.SetStatus(status)
	}
	f.rev++
	o.ResourceVersion = f.rev
	o.UID = fmt.Sprintf("uid-%d", f.rev)
	f.objs[path] = o
	return o
}

func (f *fakeAPI) About(context.Context) (*api.About, error) {
	return &api.About{Name: "podsphere vcenter", Version: "0.1.0", APIVersion: "v1", Revision: f.rev, Members: 4}, nil
}

func (f *fakeAPI) Get(_ context.Context, p string) (*api.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objs[p]
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, api.ErrNotFound)
	}
	return o.Clone(), nil
}

func (f *fakeAPI) List(_ context.Context, opts client.ListOptions) (*api.List, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := &api.List{Revision: f.rev, Items: []*api.Object{}}
	for _, o := range f.objs {
		if (opts.Kind == "" || o.Kind == opts.Kind) && strings.HasPrefix(o.Path, opts.Prefix) {
			l.Items = append(l.Items, o.Clone())
		}
	}
	slices.SortFunc(l.Items, func(a, b *api.Object) int { return strings.Compare(a.Path, b.Path) })
	return l, nil
}

func (f *fakeAPI) Create(_ context.Context, o *api.Object) (*api.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("create %s %s", o.Kind, o.Path)
	if _, ok := f.objs[o.Path]; ok {
		return nil, fmt.Errorf("%s already exists: %w", o.Path, api.ErrConflict)
	}
	c := o.Clone()
	f.rev++
	c.ResourceVersion = f.rev
	f.objs[o.Path] = c
	return c.Clone(), nil
}

func (f *fakeAPI) Update(_ context.Context, o *api.Object) (*api.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("update %s", o.Path)
	cur, ok := f.objs[o.Path]
	if !ok {
		return nil, fmt.Errorf("%s: %w", o.Path, api.ErrNotFound)
	}
	if cur.ResourceVersion != o.ResourceVersion {
		return nil, fmt.Errorf("%s changed: %w", o.Path, api.ErrConflict)
	}
	c := o.Clone()
	c.Status = cur.Status
	f.rev++
	c.ResourceVersion = f.rev
	f.objs[o.Path] = c
	return c.Clone(), nil
}

func (f *fakeAPI) Delete(_ context.Context, p string, opts client.DeleteOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("delete %s children=%t", p, opts.Children)
	if _, ok := f.objs[p]; !ok {
		return fmt.Errorf("%s: %w", p, api.ErrNotFound)
	}
	delete(f.objs, p)
	return nil
}

func (f *fakeAPI) Power(_ context.Context, p, action string) (*api.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("power %s %s", p, action)
	if err := f.powerErr[p]; err != nil {
		return nil, err
	}
	o, ok := f.objs[p]
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, api.ErrNotFound)
	}
	s := vmSpec(o)
	st := vmStatus(o)
	switch action {
	case "on":
		s.PowerState, st.PowerState = api.PoweredOn, api.PoweredOn
		if s.Host == "" {
			s.Host = "/dc1/host/c1/esx-01"
		}
		st.Host = s.Host
	case "off", "shutdown":
		s.PowerState, st.PowerState = api.PoweredOff, api.PoweredOff
	case "suspend":
		s.PowerState, st.PowerState = api.Suspended, api.Suspended
	}
	o.SetSpec(s)
	o.SetStatus(st)
	f.rev++
	o.ResourceVersion = f.rev
	return o.Clone(), nil
}

func (f *fakeAPI) Pool(_ context.Context, p string) (*api.PoolInfo, error) {
	if pi, ok := f.pools[p]; ok {
		return pi, nil
	}
	return nil, fmt.Errorf("pool %s: %w", p, api.ErrNotFound)
}

func (f *fakeAPI) Quota(_ context.Context, p string) (*api.QuotaInfo, error) {
	if qi, ok := f.quotas[p]; ok {
		return qi, nil
	}
	return nil, fmt.Errorf("pool %s: %w", p, api.ErrNotFound)
}

func (f *fakeAPI) Watch(context.Context, client.ListOptions, uint64) (<-chan api.WatchEvent, func() error, error) {
	ch := make(chan api.WatchEvent)
	close(ch)
	return ch, func() error { return nil }, nil
}

// testTime is the clock of every command test.
var testTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// runPsc runs one psc command line against fake and returns stdout, stderr and the exit code.
func runPsc(t *testing.T, fake API, stdin string, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &Env{
		In: strings.NewReader(stdin), Out: &out, Err: &errb,
		Now: func() time.Time { return testTime }, Location: time.UTC,
		NewAPI: func(string, string) (API, error) { return fake, nil },
	}
	vars := map[string]string{"PSC_TOKEN": "t", "PSC_DATACENTER": "dc1", "PSC_CLUSTER": "c1"}
	for k, v := range env {
		vars[k] = v
	}
	code := Run(context.Background(), e, func(k string) string { return vars[k] }, args)
	return out.String(), errb.String(), code
}

// labInventory is dc1/c1 with three hosts, pools dev and dev/web, and VMs.
func labInventory() *fakeAPI {
	f := newFakeAPI()
	f.put(api.KindDatacenter, "/dc1", api.DatacenterSpec{}, nil)
	f.put(api.KindCluster, "/dc1/host/c1", newClusterSpec(), nil)
	for i, st := range []string{api.HostConnected, api.HostConnected, api.HostNotResponding} {
		f.put(api.KindHost, fmt.Sprintf("/dc1/host/c1/esx-0%d", i+1), api.HostSpec{}, api.HostStatus{
			State: st, Runtime: "sim", CPUCapacity: 20000, MemCapacity: 65536, CPUUsage: 1000 * int64(i), MemUsage: 2048,
			LastSeen: testTime.Add(-3 * time.Second),
		})
	}
	def := api.Allocation{Limit: -1, Expandable: true, Shares: api.Shares{Level: "normal"}}
	f.put(api.KindResourcePool, "/dc1/host/c1/Resources", api.PoolSpec{CPU: def, Mem: def}, nil)
	dev := api.PoolSpec{CPU: api.Allocation{Reservation: 6000, Limit: -1, Shares: api.Shares{Level: "normal"}}, Mem: def}
	f.put(api.KindResourcePool, "/dc1/host/c1/Resources/dev", dev, nil)
	f.put(api.KindResourcePool, "/dc1/host/c1/Resources/dev/web", api.PoolSpec{CPU: def, Mem: def}, nil)
	f.put(api.KindResourcePool, "/dc1/host/c1/Resources/test", api.PoolSpec{CPU: def, Mem: def}, nil)
	vm := func(name, pool, host, power string) {
		spec := api.VMSpec{Pool: pool, Host: host, NumCPU: 1, MemoryMB: 1024, CPU: vmAllocation(), Mem: vmAllocation(), PowerState: power,
			Containers: []api.Container{{Name: "main", Image: "busybox"}}}
		var st *api.VMStatus
		if power == api.PoweredOn {
			st = &api.VMStatus{PowerState: power, Host: host, IP: "10.244.0.2", BootTime: testTime.Add(-time.Hour)}
		}
		if st != nil {
			f.put(api.KindVirtualMachine, "/dc1/vm/"+name, spec, st)
		} else {
			f.put(api.KindVirtualMachine, "/dc1/vm/"+name, spec, nil)
		}
	}
	vm("web-01", "/dc1/host/c1/Resources/dev", "/dc1/host/c1/esx-01", api.PoweredOn)
	vm("web-02", "/dc1/host/c1/Resources/dev/web", "/dc1/host/c1/esx-02", api.PoweredOn)
	vm("db-01", "/dc1/host/c1/Resources", "", api.PoweredOff)
	return f
}
