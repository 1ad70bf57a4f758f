package server

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/host/agent"
	"github.com/podsphere/podsphere/host/sim"
	"github.com/podsphere/podsphere/lb"
)

// ruleWatch is an LB consumer of a real agent that makes the host's
// service rules from every state it is handed (what host/svcproxy
// programs, without the packet filter) and notes when each member
// address enters or leaves them.
type ruleWatch struct {
	mu      sync.Mutex
	members map[string]bool // "IP:port" DNAT targets in the last rules
}

func newRuleWatch() *ruleWatch { return &ruleWatch{members: map[string]bool{}} }

func (r *ruleWatch) Name() string { return "rule-watch" }

func (r *ruleWatch) ApplyLB(_ context.Context, st *lb.State) error {
	m := map[string]bool{}
	for _, c := range lb.Rules(st).Chains() {
		for _, rule := range c.Rules {
			if _, to, ok := strings.Cut(rule, "--to-destination "); ok {
				m[to] = true
			}
		}
	}
	r.mu.Lock()
	r.members = m
	r.mu.Unlock()
	return nil
}

func (r *ruleWatch) has(member string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.members[member]
}

// A VM that stops being ready leaves the Service's rules on every host
// within a second (issue 8, part 1), through the whole path: the host's
// probe, its status write, vcenter's endpoints controller, the Service's
// status, every agent's watch and the rules it makes. Five rounds of
// fail and recover; the figures are logged.
func TestNotReadyLeavesTheRulesWithinASecond(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two sim agents with gossip")
	}
	e := startVCenter(t, Config{Gossip: "127.0.0.1:0", Timings: testTimings()})
	e.inventory(t, nil)
	hosts := []string{"esx-01", "esx-02"}
	drivers := map[string]*sim.Driver{}
	watches := map[string]*ruleWatch{}
	for i, n := range hosts {
		drivers[cluster+"/"+n] = sim.New(8000, 16384, sim.IPPrefix(i))
		watches[n] = newRuleWatch()
		a, err := agent.New(agent.Config{Name: n, Cluster: cluster, VCenter: e.url, JoinToken: e.s.JoinToken(),
			Join: []string{e.s.GossipAddr()}, GossipBind: "127.0.0.1:0", Runtime: drivers[cluster+"/"+n],
			Timings: testTimings(), Logger: quietLogger(t), LB: []agent.LBConsumer{watches[n]}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &runningAgent{a: a, cancel: cancel, done: make(chan error, 1)}
		go func() { r.done <- a.Run(ctx) }()
		t.Cleanup(func() { r.stop(t) })
	}
	for _, n := range hosts {
		e.waitState(t, n, api.HostConnected, 30*time.Second)
	}
	web := map[string]string{"app": "web"}
	dep := api.DeploymentSpec{Pool: rootRP, Replicas: 2, Selector: api.LabelSelector{MatchLabels: web},
		Template: api.VMTemplate{Labels: web, Spec: api.VMSpec{NumCPU: 1, MemoryMB: 64, Containers: []api.Container{{Name: "main", Image: "httpd",
			Ports: []api.Port{{Name: "http", ContainerPort: 8080}}}}}}}
	e.mustCreate(t, api.New(api.KindDeployment, dc+"/deployment/web", dep))
	const svc = dc + "/service/web"
	e.mustCreate(t, api.New(api.KindService, svc, api.ServiceSpec{Selector: web,
		Ports: []api.ServicePort{{Name: "http", Port: 80, TargetPort: api.Str("http")}}}))
	var st api.ServiceStatus
	eventually(t, "2 ready endpoints", 30*time.Second, func() bool {
		st = e.serviceStatus(t, svc)
		return st.Ready == 2
	})
	var victim api.EndpointAddress
	for _, a := range readyVMs(st) {
		victim = a
		break
	}
	member := victim.IP + ":8080"
	inAll := func(want bool) bool {
		for _, w := range watches {
			if w.has(member) != want {
				return false
			}
		}
		return true
	}
	eventually(t, member+" in every host's rules", 10*time.Second, func() bool { return inAll(true) })
	uid := mustGet(t, e, victim.VM).UID

	// timeTo polls every millisecond: the figure is the path's, not the poll's.
	timeTo := func(what string, want bool) time.Duration {
		start := time.Now()
		for !inAll(want) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s: not after 10 s", what)
			}
			time.Sleep(time.Millisecond)
		}
		return time.Since(start)
	}
	var leave, back []time.Duration
	for range 5 {
		if err := drivers[victim.Host].FailReadiness(uid, true); err != nil {
			t.Fatal(err)
		}
		leave = append(leave, timeTo(member+" out of every host's rules", false))
		if err := drivers[victim.Host].FailReadiness(uid, false); err != nil {
			t.Fatal(err)
		}
		back = append(back, timeTo(member+" back in every host's rules", true))
	}
	slices.Sort(leave)
	slices.Sort(back)
	t.Logf("readiness failed -> out of both hosts' rules: %v; ready again -> back: %v", leave, back)
	if worst := leave[len(leave)-1]; worst > time.Second {
		t.Errorf("a VM that stopped being ready stayed in a host's rules for %v: want under a second", worst)
	}
}
