package server

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

func TestTokensWrittenOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	admin, join := s.AdminToken(), s.JoinToken()
	if len(admin) < 32 || len(join) < 32 || admin == join {
		t.Fatalf("tokens %q and %q: want two distinct long random tokens", admin, join)
	}
	for file, want := range map[string]string{"admin.token": admin, "join.token": join} {
		p := filepath.Join(dir, file)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", file, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(p)
		if strings.TrimSpace(string(b)) != want {
			t.Errorf("%s holds %q, the server uses %q", file, b, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	e := startVCenter(t, Config{DataDir: dir})
	if e.s.AdminToken() != admin || e.s.JoinToken() != join {
		t.Fatal("restart on the same data dir made new tokens")
	}
	if _, err := e.admin.About(ctxT(t)); err != nil {
		t.Fatalf("the old admin token no longer works after restart: %v", err)
	}
}

func TestUnauthorized(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	ctx := ctxT(t)
	rev := e.revision(t)

	for name, token := range map[string]string{"no token": "", "wrong token": "not-the-token-at-all-0123456789"} {
		c := newClient(t, e.url, token)
		if _, err := c.About(ctx); !errors.Is(err, api.ErrUnauthorized) {
			t.Errorf("%s: about = %v, want unauthorized", name, err)
		}
		if _, err := c.List(ctx, client.ListOptions{}); !errors.Is(err, api.ErrUnauthorized) {
			t.Errorf("%s: list = %v, want unauthorized", name, err)
		}
		if _, err := c.Create(ctx, api.New(api.KindDatacenter, "/dc9", nil)); !errors.Is(err, api.ErrUnauthorized) {
			t.Errorf("%s: create = %v, want unauthorized", name, err)
		}
		if _, err := c.Join(ctx, api.JoinRequest{Name: "esx-09", Cluster: cluster, CPUCapacity: 1, MemCapacity: 1}); !errors.Is(err, api.ErrUnauthorized) {
			t.Errorf("%s: join = %v, want unauthorized", name, err)
		}
		for _, p := range []string{"/api/v1/about", "/api/v1/list", "/api/v1/watch", "/no/such/api"} {
			if code, _ := rawRequest(t, http.MethodGet, e.url+p, token, nil); code != http.StatusUnauthorized {
				t.Errorf("%s: GET %s = %d, want 401", name, p, code)
			}
		}
	}
	// Bearer scheme only.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/api/v1/about", nil)
	req.Header.Set("Authorization", "Basic "+e.s.AdminToken())
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("Basic auth with the admin token: %v %v, want 401", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}

	// The join token reads and joins, but may not change the inventory.
	if _, err := e.join.Get(ctx, cluster); err != nil {
		t.Errorf("join token get: %v", err)
	}
	_, err := e.join.Create(ctx, api.New(api.KindDatacenter, "/dc9", nil))
	if !errors.Is(err, api.ErrUnauthorized) || !strings.Contains(err.Error(), "join token may not POST") {
		t.Errorf("join token create = %v, want 401 naming the join token", err)
	}
	if err := e.join.Delete(ctx, cluster, client.DeleteOptions{}); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("join token delete = %v, want 401", err)
	}
	if _, err := e.join.Power(ctx, dc+"/vm/x", "on"); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("join token power = %v, want 401", err)
	}
	if got := e.revision(t); got != rev {
		t.Fatalf("refused requests wrote: revision %d -> %d", rev, got)
	}
	if _, err := e.admin.Get(ctx, "/dc9"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("/dc9 was created by an unauthorized request: %v", err)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	e := startVCenter(t, Config{})
	e.inventory(t, nil)
	e.joinHost(t, "esx-01", 10000, 16384)
	e.mustCreate(t, pool(rootRP+"/dev", alloc(0, -1, true), nil))
	web := e.mustCreate(t, vm("web", rootRP+"/dev", 0, api.PoweredOff))

	vmJSON := func(path, spec string) string {
		return `{"kind":"VirtualMachine","path":"` + path + `","spec":` + spec + `}`
	}
	poolJSON := func(path, spec string) string {
		return `{"kind":"ResourcePool","path":"` + path + `","spec":` + spec + `}`
	}
	big := `{"kind":"Datacenter","path":"/dc2","labels":{"pad":"` + strings.Repeat("x", MaxBodyBytes) + `"}}`
	obj := e.url + "/api/v1/object"

	cases := []struct {
		name, method, url, body string
		absent                  string // a path that must still not exist
		want                    []string
	}{
		{"malformed JSON", "POST", obj, `{"kind":"Datacenter","path":"/dc2"`, "/dc2", []string{"request body", "unexpected EOF"}},
		{"not an object", "POST", obj, `[1,2]`, "", []string{"request body"}},
		{"two JSON values", "POST", obj, `{"kind":"Datacenter","path":"/dc2"} {}`, "/dc2", []string{"more than one JSON value"}},
		{"unknown top-level field", "POST", obj, `{"kind":"Datacenter","path":"/dc2","colour":"red"}`, "/dc2", []string{`unknown field "colour"`}},
		{"unknown field in spec", "POST", obj, vmJSON("/dc1/vm/x", `{"pool":"`+rootRP+`","cpus":2}`), "/dc1/vm/x", []string{"spec", `unknown field "cpus"`}},
		{"unknown field in nested spec", "POST", obj, poolJSON(rootRP+"/p", `{"cpu":{"reservaton":5}}`), rootRP + "/p", []string{"spec", `unknown field "reservaton"`}},
		{"wrong type in spec", "POST", obj, vmJSON("/dc1/vm/x", `{"pool":"`+rootRP+`","numCPU":"two"}`), "/dc1/vm/x", []string{"spec", "numCPU"}},
		{"invalid name", "POST", obj, vmJSON("/dc1/vm/bad name", `{"pool":"`+rootRP+`"}`), "", []string{`"bad name"`, "' '"}},
		{"name starting with a dash", "POST", obj, `{"kind":"Datacenter","path":"/-dc"}`, "", []string{`"-dc"`}},
		{"relative path", "POST", obj, `{"kind":"Datacenter","path":"dc2"}`, "", []string{`path "dc2" must be absolute`}},
		{"trailing slash", "POST", obj, `{"kind":"Datacenter","path":"/dc2/"}`, "", []string{"trailing /"}},
		{"unknown folder", "POST", obj, vmJSON("/dc1/folder/x", `{"pool":"`+rootRP+`"}`), "", []string{`unknown folder "folder"`}},
		{"kind and path disagree", "POST", obj, vmJSON(rootRP+"/x", `{"pool":"`+rootRP+`"}`), rootRP + "/x", []string{"kind VirtualMachine does not live at " + rootRP + "/x", "ResourcePool"}},
		{"missing kind", "POST", obj, `{"path":"/dc2"}`, "/dc2", []string{"kind is required"}},
		{"negative pool reservation", "POST", obj, poolJSON(rootRP+"/p", `{"cpu":{"reservation":-100,"limit":-1}}`), rootRP + "/p", []string{"cpu.reservation -100 is negative"}},
		{"negative memory size", "POST", obj, vmJSON("/dc1/vm/x", `{"pool":"`+rootRP+`","memoryMB":-1}`), "/dc1/vm/x", []string{"spec.memoryMB -1"}},
		{"negative vCPUs", "POST", obj, vmJSON("/dc1/vm/x", `{"pool":"`+rootRP+`","numCPU":-2}`), "/dc1/vm/x", []string{"spec.numCPU -2"}},
		{"negative VM reservation", "POST", obj, vmJSON("/dc1/vm/x", `{"pool":"`+rootRP+`","mem":{"reservation":-5,"limit":-1}}`), "/dc1/vm/x", []string{"mem.reservation -5 is negative"}},
		{"negative quota", "POST", obj, poolJSON(rootRP+"/p", `{"quota":{"vms":-5}}`), rootRP + "/p", []string{"spec.quota", "vms -5"}},
		{"limit below reservation", "POST", obj, poolJSON(rootRP+"/p", `{"cpu":{"reservation":500,"limit":100}}`), rootRP + "/p", []string{"spec.cpu.limit 100 is below spec.cpu.reservation 500"}},
		{"memory limit below reservation", "POST", obj, poolJSON(rootRP+"/p", `{"mem":{"reservation":2048,"limit":1024}}`), rootRP + "/p", []string{"spec.mem.limit 1024 is below spec.mem.reservation 2048"}},
		{"VM reservation above its size", "POST", obj, vmJSON("/dc1/vm/x", `{"pool":"`+rootRP+`","memoryMB":512,"mem":{"reservation":1024,"limit":-1}}`), "/dc1/vm/x", []string{"spec.mem.reservation 1024 MB is above"}},
		{"VM without pool", "POST", obj, vmJSON("/dc1/vm/x", `{}`), "/dc1/vm/x", []string{"spec.pool is required"}},
		{"VM in a missing pool", "POST", obj, vmJSON("/dc1/vm/x", `{"pool":"`+rootRP+`/nope"}`), "/dc1/vm/x", []string{"resource pool " + rootRP + "/nope does not exist"}},
		{"bad power state", "POST", obj, vmJSON("/dc1/vm/x", `{"pool":"`+rootRP+`","powerState":"on"}`), "/dc1/vm/x", []string{`spec.powerState "on"`}},
		{"bad shares", "POST", obj, poolJSON(rootRP+"/p", `{"cpu":{"limit":-1,"shares":{"level":"lots"}}}`), rootRP + "/p", []string{`cpu.shares level "lots"`}},
		{"bad label", "POST", obj, `{"kind":"Datacenter","path":"/dc2","labels":{"app":"a b"}}`, "/dc2", []string{`label "app"="a b"`}},
		{"label value with a slash", "POST", obj, `{"kind":"Datacenter","path":"/dc2","labels":{"app":"a/b"}}`, "/dc2", []string{`label "app"="a/b"`, "'/' is only allowed in keys"}},
		{"clients do not write events", "POST", obj, `{"kind":"Event","path":"/events/1"}`, "/events/1", []string{"written by vcenter"}},
		{"hosts come by joining", "POST", obj, `{"kind":"HostSystem","path":"/dc1/host/c1/esx-09"}`, "/dc1/host/c1/esx-09", []string{"created by hosts joining"}},
		{"parent pool missing", "POST", obj, poolJSON(rootRP+"/a/b", `{}`), rootRP + "/a/b", []string{"parent pool " + rootRP + "/a does not exist"}},
		{"bad rule", "POST", obj, `{"kind":"Cluster","path":"/dc1/host/c2","spec":{"rules":[{"name":"r","enabled":true,"kind":"anti-affinity","vms":["a"]}]}}`, "/dc1/host/c2", []string{"spec.rules[0]", "at least 2 VMs"}},
		{"oversized body", "POST", obj, big, "/dc2", []string{"larger than 1048576 bytes"}},
		{"update with unknown field", "PUT", obj, `{"kind":"VirtualMachine","path":"/dc1/vm/web","resourceVersion":` + itoa(web.ResourceVersion) + `,"spec":{"pool":"` + rootRP + `/dev","sockets":2}}`, "", []string{`unknown field "sockets"`}},
		{"update making limit below reservation", "PUT", obj, vmJSON("/dc1/vm/web", `{"pool":"`+rootRP+`/dev","cpu":{"reservation":900,"limit":10}}`), "", []string{"spec.cpu.limit 10 is below spec.cpu.reservation 900"}},
		{"bad label selector", "GET", e.url + "/api/v1/list?selector=" + url.QueryEscape("env in (prod"), "", "", []string{"label selector", `term "env in (prod"`, "'(' without ')'"}},
		{"bad selector term", "GET", e.url + "/api/v1/list?selector=" + url.QueryEscape("app=web,a b"), "", "", []string{"label selector", `term "a b"`}},
		{"bad watch selector", "GET", e.url + "/api/v1/watch?selector=" + url.QueryEscape("app=x/y"), "", "", []string{"label selector", `value "x/y"`}},
		{"bad list kind", "GET", e.url + "/api/v1/list?kind=Bogus", "", "", []string{`kind "Bogus"`}},
		{"relative prefix", "GET", e.url + "/api/v1/list?prefix=dc1", "", "", []string{`prefix "dc1" must be an absolute path`}},
		{"bad get path", "GET", e.url + "/api/v1/object?path=" + url.QueryEscape("/dc1/vm/a b"), "", "", []string{`"a b"`}},
		{"bad watch revision", "GET", e.url + "/api/v1/watch?from=yesterday", "", "", []string{`from "yesterday" is not a revision`}},
		{"bad power action", "POST", e.url + "/api/v1/power", `{"path":"/dc1/vm/web","action":"explode"}`, "", []string{`power action "explode"`}},
		{"power on a pool", "POST", e.url + "/api/v1/power", `{"path":"` + rootRP + `/dev","action":"on"}`, "", []string{"is a ResourcePool, not a VM"}},
		{"bad delete version", "DELETE", obj + "?path=/dc1/vm/web&resourceVersion=x", "", "", []string{`resourceVersion "x" is not a number`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.revision(t)
			code, eb := rawRequest(t, c.method, c.url, e.s.AdminToken(), []byte(c.body))
			if code < 400 || code >= 500 {
				t.Fatalf("status %d (%+v), want 4xx", code, eb)
			}
			for _, w := range c.want {
				if !strings.Contains(eb.Error, w) {
					t.Errorf("message %q does not contain %q", eb.Error, w)
				}
			}
			if eb.Reason == "" {
				t.Errorf("no reason in %+v", eb)
			}
			if after := e.revision(t); after != before {
				t.Errorf("bad input was written: revision %d -> %d", before, after)
			}
			if c.absent != "" {
				if _, err := e.admin.Get(ctxT(t), c.absent); !errors.Is(err, api.ErrNotFound) {
					t.Errorf("%s exists after a refused request: %v", c.absent, err)
				}
			}
		})
	}
	// The VM the updates tried to change is as it was.
	got, err := e.admin.Get(ctxT(t), "/dc1/vm/web")
	if err != nil || got.ResourceVersion != web.ResourceVersion || string(got.Spec) != string(web.Spec) {
		t.Fatalf("web changed by refused updates: %v %+v", err, got)
	}
}

func itoa(v uint64) string { return strings.TrimSpace(string(mustJSON(v))) }

func TestCRUD(t *testing.T) {
	e := startVCenter(t, Config{})
	ctx := ctxT(t)
	e.inventory(t, nil)
	e.joinHost(t, "esx-01", 10000, 16384)

	dev := pool(rootRP+"/dev", alloc(1000, -1, true), nil)
	dev.Labels = map[string]string{"env": "dev"}
	created := e.mustCreate(t, dev)
	if created.UID == "" || created.ResourceVersion == 0 || created.Created.IsZero() || created.Modified.IsZero() {
		t.Fatalf("create answered without uid, resourceVersion or times: %+v", created.Meta)
	}
	prod := pool(rootRP+"/prod", alloc(0, -1, true), nil)
	prod.Labels = map[string]string{"env": "prod"}
	e.mustCreate(t, prod)
	e.mustCreate(t, pool(rootRP+"/dev/web", alloc(0, -1, true), nil))
	for i, name := range []string{"a1", "a2", "b1"} {
		o := vm(name, rootRP+"/dev", 0, api.PoweredOff)
		o.Labels = map[string]string{"app": name[:1], "n": itoa(uint64(i))}
		e.mustCreate(t, o)
	}
	if _, err := e.admin.Create(ctx, pool(rootRP+"/dev", alloc(0, -1, true), nil)); !errors.Is(err, api.ErrConflict) {
		t.Errorf("second create of the same path = %v, want conflict", err)
	}

	got, err := e.admin.Get(ctx, rootRP+"/dev")
	if err != nil {
		t.Fatal(err)
	}
	var spec api.PoolSpec
	if err := got.DecodeSpec(&spec); err != nil || spec.CPU.Reservation != 1000 || got.Labels["env"] != "dev" || got.UID != created.UID {
		t.Fatalf("get dev = %+v %s (%v)", got.Meta, got.Spec, err)
	}
	if _, err := e.admin.Get(ctx, rootRP+"/nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("get of a missing pool = %v, want not found", err)
	}

	list := func(o client.ListOptions) []string {
		t.Helper()
		l, err := e.admin.List(ctx, o)
		if err != nil {
			t.Fatalf("list %+v: %v", o, err)
		}
		if l.Revision == 0 {
			t.Errorf("list %+v without a revision", o)
		}
		var out []string
		for _, o := range l.Items {
			out = append(out, o.Path)
		}
		return out
	}
	for _, c := range []struct {
		opts client.ListOptions
		want string
	}{
		{client.ListOptions{Kind: api.KindResourcePool}, rootRP + " " + rootRP + "/dev " + rootRP + "/dev/web " + rootRP + "/prod"},
		{client.ListOptions{Kind: api.KindResourcePool, Prefix: rootRP + "/dev"}, rootRP + "/dev " + rootRP + "/dev/web"},
		{client.ListOptions{Prefix: rootRP + "/de"}, ""}, // prefixes match whole path elements
		{client.ListOptions{Kind: api.KindResourcePool, Selector: "env=prod"}, rootRP + "/prod"},
		{client.ListOptions{Selector: "env=dev"}, rootRP + "/dev"},
		{client.ListOptions{Kind: api.KindVirtualMachine, Selector: "app=a"}, "/dc1/vm/a1 /dc1/vm/a2"},
		{client.ListOptions{Kind: api.KindVirtualMachine, Selector: "app=a,n=1"}, "/dc1/vm/a2"},
		{client.ListOptions{Selector: "app=c"}, ""},
		{client.ListOptions{Kind: api.KindVirtualMachine, Selector: "app in (a,b),n!=1"}, "/dc1/vm/a1 /dc1/vm/b1"},
		{client.ListOptions{Kind: api.KindResourcePool, Selector: "!env"}, rootRP + " " + rootRP + "/dev/web"},
		{client.ListOptions{Kind: api.KindResourcePool, Selector: "env notin (dev)"}, rootRP + " " + rootRP + "/dev/web " + rootRP + "/prod"},
		{client.ListOptions{Kind: api.KindHost}, cluster + "/esx-01"},
		{client.ListOptions{Kind: api.KindVirtualMachine, Prefix: "/dc1/vm"}, "/dc1/vm/a1 /dc1/vm/a2 /dc1/vm/b1"},
	} {
		if got := strings.Join(list(c.opts), " "); got != c.want {
			t.Errorf("list %+v = %q, want %q", c.opts, got, c.want)
		}
	}

	// Update: the current resourceVersion wins, a stale one is a conflict.
	spec.CPU.Reservation = 1500
	got.SetSpec(spec)
	got.Labels["tier"] = "gold"
	upd, err := e.admin.Update(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	if upd.ResourceVersion <= got.ResourceVersion || upd.Labels["tier"] != "gold" || !upd.Created.Equal(created.Created) {
		t.Fatalf("update answered %+v", upd.Meta)
	}
	before := e.revision(t)
	spec.CPU.Reservation = 9
	got.SetSpec(spec) // got still carries the old resourceVersion
	_, err = e.admin.Update(ctx, got)
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "has been modified") ||
		!strings.Contains(err.Error(), "you sent "+itoa(got.ResourceVersion)) {
		t.Fatalf("stale update = %v, want a conflict naming the versions", err)
	}
	if after := e.revision(t); after != before {
		t.Fatalf("stale update wrote: revision %d -> %d", before, after)
	}
	now, _ := e.admin.Get(ctx, rootRP+"/dev")
	_ = now.DecodeSpec(&spec)
	if spec.CPU.Reservation != 1500 {
		t.Fatalf("stale update changed the pool: reservation %d", spec.CPU.Reservation)
	}

	// VM update and delete, with their events.
	a1, _ := e.admin.Get(ctx, "/dc1/vm/a1")
	var vs api.VMSpec
	_ = a1.DecodeSpec(&vs)
	vs.NumCPU = 4
	a1.SetSpec(vs)
	if _, err := e.admin.Update(ctx, a1); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Delete(ctx, "/dc1/vm/a1", client.DeleteOptions{ResourceVersion: a1.ResourceVersion}); !errors.Is(err, api.ErrConflict) {
		t.Errorf("delete with a stale resourceVersion = %v, want conflict", err)
	}
	if err := e.admin.Delete(ctx, "/dc1/vm/a1", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Get(ctx, "/dc1/vm/a1"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("get after delete = %v", err)
	}
	if err := e.admin.Delete(ctx, "/dc1/vm/a1", client.DeleteOptions{}); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("second delete = %v, want not found", err)
	}

	// A pool with children goes only with -children; its VMs move up.
	if err := e.admin.Delete(ctx, rootRP+"/dev", client.DeleteOptions{}); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "child pool") {
		t.Errorf("destroy of a pool with a child = %v, want conflict", err)
	}
	if err := e.admin.Delete(ctx, rootRP+"/dev", client.DeleteOptions{Children: true}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(list(client.ListOptions{Kind: api.KindResourcePool}), " "); got != rootRP+" "+rootRP+"/prod" {
		t.Errorf("pools after destroy -children: %s", got)
	}
	a2, _ := e.admin.Get(ctx, "/dc1/vm/a2")
	_ = a2.DecodeSpec(&vs)
	if vs.Pool != rootRP {
		t.Errorf("a2 is in %s after its pool was destroyed, want %s", vs.Pool, rootRP)
	}

	// Every create, change and delete left an event and a task.
	for _, c := range []struct{ target, typ, msg string }{
		{dc, "DatacenterCreatedEvent", "created"},
		{cluster, "ClusterCreatedEvent", "created"},
		{cluster + "/esx-01", "HostAddedEvent", "joined cluster"},
		{rootRP + "/dev", "ResourcePoolCreatedEvent", "created"},
		{rootRP + "/dev", "ResourcePoolReconfiguredEvent", "reconfigured"},
		{rootRP + "/dev", "ResourcePoolDestroyedEvent", "removed"},
		{"/dc1/vm/a1", "VmCreatedEvent", "VM /dc1/vm/a1 created"},
		{"/dc1/vm/a1", "VmReconfiguredEvent", "reconfigured"},
		{"/dc1/vm/a1", "VmRemovedEvent", "removed"},
		{"/dc1/vm/a2", "VmResourcePoolMovedEvent", "moved to " + rootRP},
	} {
		evs := e.eventsFor(t, c.target)
		if !hasEvent(evs, c.typ, c.msg) {
			t.Errorf("no %s about %s containing %q; events: %q", c.typ, c.target, c.msg, eventTypes(evs))
		}
		for _, ev := range evs {
			if ev.Time.IsZero() || ev.Key == 0 || ev.User == "" {
				t.Errorf("event without time, key or user: %+v", ev)
			}
		}
	}
	var names []string
	for _, ts := range e.tasksFor(t, "/dc1/vm/a1") {
		if ts.Result != "success" || ts.Initiator != "admin" || ts.Completed.Before(ts.Started) {
			t.Errorf("task %+v", ts)
		}
		names = append(names, ts.Name)
	}
	if strings.Join(names, " ") != "CreateVM_Task ReconfigVM_Task Destroy_Task" {
		t.Errorf("tasks of a1: %v", names)
	}
}

func TestWatchFromRevision(t *testing.T) {
	e := startVCenter(t, Config{})
	ctx := ctxT(t)
	e.inventory(t, nil)
	e.joinHost(t, "esx-01", 10000, 16384)
	from := e.revision(t)

	for _, n := range []string{"p1", "p2", "p3"} {
		e.mustCreate(t, pool(rootRP+"/"+n, alloc(0, -1, true), nil))
	}
	p1, _ := e.admin.Get(ctx, rootRP+"/p1")
	p1.Labels = map[string]string{"x": "y"}
	if _, err := e.admin.Update(ctx, p1); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Delete(ctx, rootRP+"/p2", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.mustCreate(t, vm("v1", rootRP, 0, api.PoweredOff))

	ch, wait, err := e.admin.Watch(ctx, client.ListOptions{Kind: api.KindResourcePool}, from)
	if err != nil {
		t.Fatal(err)
	}
	next := func() api.WatchEvent {
		t.Helper()
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed: %v", wait())
			}
			return ev
		case <-time.After(30 * time.Second):
			t.Fatal("no watch event in 30 s")
		}
		return api.WatchEvent{}
	}
	want := []string{"ADDED p1", "ADDED p2", "ADDED p3", "MODIFIED p1", "DELETED p2"}
	var last uint64 = from
	for _, w := range want {
		ev := next()
		if got := ev.Type + " " + api.Base(ev.Object.Path); got != w {
			t.Fatalf("watch event %q, want %q", got, w)
		}
		if ev.Revision <= last {
			t.Fatalf("revision %d after %d: out of order", ev.Revision, last)
		}
		if ev.Type != api.Deleted && ev.Object.ResourceVersion != ev.Revision {
			t.Errorf("%s carries resourceVersion %d at revision %d", ev.Object.Path, ev.Object.ResourceVersion, ev.Revision)
		}
		last = ev.Revision
	}
	// Live changes follow the replay without a gap.
	e.mustCreate(t, pool(rootRP+"/p4", alloc(0, -1, true), nil))
	if ev := next(); ev.Type != api.Added || ev.Object.Path != rootRP+"/p4" || ev.Revision <= last {
		t.Fatalf("live event %s %s @%d", ev.Type, ev.Object.Path, ev.Revision)
	}

	// A prefix watch from the same revision sees the VM and its events, nothing else.
	ch2, _, err := e.admin.Watch(ctx, client.ListOptions{Prefix: "/dc1/vm"}, from)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-ch2:
		if ev.Type != api.Added || ev.Object.Path != "/dc1/vm/v1" {
			t.Fatalf("prefix watch got %s %s", ev.Type, ev.Object.Path)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("prefix watch: nothing in 30 s")
	}
}

func TestWatchCompactedIsGone(t *testing.T) {
	e := startVCenter(t, Config{LogRetention: 10})
	ctx := ctxT(t)
	e.inventory(t, nil)
	for i := range 10 {
		e.mustCreate(t, api.New(api.KindDatacenter, "/d"+itoa(uint64(i)), nil))
	}
	before := e.revision(t)
	_, _, err := e.admin.Watch(ctx, client.ListOptions{}, 1)
	if !errors.Is(err, client.ErrGone) || !strings.Contains(err.Error(), "compacted") || !strings.Contains(err.Error(), "re-list") {
		t.Fatalf("watch from a compacted revision = %v, want gone (re-list)", err)
	}
	code, eb := rawRequest(t, http.MethodGet, e.url+"/api/v1/watch?from=1", e.s.AdminToken(), nil)
	if code != http.StatusGone || eb.Reason != "Gone" {
		t.Fatalf("raw watch from 1 = %d %+v, want 410 Gone", code, eb)
	}
	if after := e.revision(t); after != before {
		t.Fatalf("a refused watch wrote: %d -> %d", before, after)
	}
	// The answer's advice works: list, then watch from the list's revision.
	l, err := e.admin.List(ctx, client.ListOptions{Kind: api.KindDatacenter})
	if err != nil {
		t.Fatal(err)
	}
	ch, _, err := e.admin.Watch(ctx, client.ListOptions{Kind: api.KindDatacenter}, l.Revision)
	if err != nil {
		t.Fatalf("watch from the list's revision: %v", err)
	}
	e.mustCreate(t, api.New(api.KindDatacenter, "/late", nil))
	select {
	case ev := <-ch:
		if ev.Object.Path != "/late" {
			t.Fatalf("got %s", ev.Object.Path)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("nothing after re-list")
	}
}
