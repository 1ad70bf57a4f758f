package admission

import (
	"errors"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/labels"
	"github.com/podsphere/podsphere/vcenter/placement"
)

const (
	clusterPath = "/dc1/host/c1"
	rootPool    = clusterPath + "/Resources"
)

// snapshot is a cluster of connected, empty 10 GHz / 16 GB hosts with the
// given labels (host name -> "k=v,k2=v2").
func snapshot(hosts map[string]string) Cluster {
	c := Cluster{Path: clusterPath, Pools: map[string]Pool{rootPool: {}}, Hosts: map[string]Host{}}
	for name, ls := range hosts {
		c.Hosts[clusterPath+"/"+name] = Host{
			Status: api.HostStatus{State: api.HostConnected, CPUCapacity: 10000, MemCapacity: 16384},
			Labels: lbl(ls),
		}
	}
	return c
}

func lbl(s string) map[string]string {
	if s == "" {
		return nil
	}
	m := map[string]string{}
	for kv := range strings.SplitSeq(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func vmSpec() api.VMSpec {
	a := api.Allocation{Limit: -1, Shares: api.Shares{Level: "normal"}}
	return api.VMSpec{Pool: rootPool, NumCPU: 1, MemoryMB: 512, CPU: a, Mem: a}
}

func match(kv ...string) api.LabelSelector {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return api.LabelSelector{MatchLabels: m}
}

// load makes a host look fuller, so the emptier ones win unless a rule says otherwise.
func load(c Cluster, host string, mhz int64) {
	h := c.Hosts[clusterPath+"/"+host]
	h.CPUReserved = mhz
	c.Hosts[clusterPath+"/"+host] = h
}

func TestPowerOnHostSelector(t *testing.T) {
	c := snapshot(map[string]string{"esx-01": "gpu=false", "esx-02": "gpu=true", "esx-03": ""})
	load(c, "esx-02", 9000)
	spec := vmSpec()
	spec.HostSelector = map[string]string{"gpu": "true"}
	d, err := PowerOn(c, nil, "/dc1/vm/ml", nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	if d.Host != "esx-02" {
		t.Fatalf("host %s, want the only gpu host esx-02\n%s", d.Host, d.Explain())
	}
	if got, want := ChosenWhy(d), "score 0.100 of 3 candidate hosts, 1 of which could run it"; got != want {
		t.Errorf("ChosenWhy = %q, want %q", got, want)
	}

	// No gpu host left: the refusal names the selector for every host.
	delete(c.Hosts, clusterPath+"/esx-02")
	_, err = PowerOn(c, nil, "/dc1/vm/ml", nil, spec)
	want := "no host can run ml: esx-01: host labels do not match hostSelector gpu=true; esx-03: host labels do not match hostSelector gpu=true"
	if !errors.Is(err, api.ErrInsufficientResources) || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestPowerOnHostAffinity(t *testing.T) {
	c := snapshot(map[string]string{"esx-01": "zone=a", "esx-02": "zone=b,disk=ssd", "esx-03": "zone=c,disk=ssd"})
	spec := vmSpec()
	spec.Affinity = &api.Affinity{
		HostRequired: []api.LabelSelector{{MatchExpressions: []api.LabelSelectorRequirement{{Key: "disk", Operator: "Exists"}}}},
		HostPreferred: []api.WeightedSelector{
			{Weight: 10, Selector: match("zone", "c")},
		},
	}
	d, err := PowerOn(c, nil, "/dc1/vm/db", nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	if d.Host != "esx-03" {
		t.Fatalf("host %s, want esx-03 (has disk, preferred zone)\n%s", d.Host, d.Explain())
	}
	if got, want := ChosenWhy(d), "host preference 10, score 1.000 of 3 candidate hosts, 2 of which could run it"; got != want {
		t.Errorf("ChosenWhy = %q, want %q", got, want)
	}
	if v := d.Verdicts[0]; v.Fits || v.Reason != "host labels do not match hostRequired disk" {
		t.Errorf("esx-01 verdict %+v", v)
	}
}

func TestPowerOnVMAffinity(t *testing.T) {
	c := snapshot(map[string]string{"esx-01": "", "esx-02": "", "esx-03": ""})
	load(c, "esx-02", 5000)
	c.Neighbours = []placement.RunningVM{
		{Name: "db-01", Namespace: "shop", Host: "esx-01", Labels: lbl("app=db")},
		{Name: "cache-01", Namespace: "shop", Host: "esx-02", Labels: lbl("app=cache")},
		{Name: "db-02", Namespace: "", Host: "esx-03", Labels: lbl("app=db")}, // default namespace
	}
	spec := vmSpec()
	spec.Affinity = &api.Affinity{VMAntiAffinity: []api.VMAffinityTerm{{Selector: match("app", "db"), Required: true}}}

	// In shop, db-01 keeps it off esx-01; db-02 of the default namespace does not count.
	d, err := PowerOn(c, nil, "/dc1/vm/shop/web-01", lbl("app=web"), spec)
	if err != nil {
		t.Fatal(err)
	}
	if d.Host != "esx-03" || d.Verdicts[0].Reason != "vmAntiAffinity app=db (db-01 runs there)" {
		t.Errorf("host %s, want esx-03\n%s", d.Host, d.Explain())
	}
	// In the default namespace, db-02 is the one to avoid.
	d, err = PowerOn(c, nil, "/dc1/vm/web-01", lbl("app=web"), spec)
	if err != nil {
		t.Fatal(err)
	}
	if d.Host != "esx-01" || d.Verdicts[2].Reason != "vmAntiAffinity app=db (db-02 runs there)" {
		t.Errorf("host %s, want esx-01\n%s", d.Host, d.Explain())
	}

	// Required affinity to the cache follows it to the fuller esx-02.
	spec.Affinity = &api.Affinity{VMAffinity: []api.VMAffinityTerm{{Selector: match("app", "cache"), Required: true}}}
	d, err = PowerOn(c, nil, "/dc1/vm/shop/web-01", lbl("app=web"), spec)
	if err != nil || d.Host != "esx-02" {
		t.Fatalf("host %s, err %v, want esx-02\n%s", d.Host, err, d.Explain())
	}
	// To VMs that do not run: allowed anywhere only if the VM matches its own term.
	spec.Affinity.VMAffinity[0].Selector = match("app", "web")
	if d, err = PowerOn(c, nil, "/dc1/vm/shop/web-01", lbl("app=web"), spec); err != nil || d.Host != "esx-01" {
		t.Errorf("first of its kind: host %s, err %v, want esx-01", d.Host, err)
	}
	if _, err = PowerOn(c, nil, "/dc1/vm/shop/web-01", lbl("app=api"), spec); !errors.Is(err, api.ErrInsufficientResources) ||
		!strings.Contains(err.Error(), "vmAffinity app=web (no matching VM runs in the cluster, and this VM does not match it itself)") {
		t.Errorf("affinity to nothing, not matching itself: err = %v", err)
	}

	// A running VM's required anti-affinity keeps a VM it selects away, rules or not.
	c.Neighbours = append(c.Neighbours, placement.RunningVM{Name: "solo", Namespace: "shop", Host: "esx-01",
		Labels: lbl("app=solo"), AntiAffinity: []labels.Selector{labels.MustParse("app=web")}})
	d, err = PowerOn(c, nil, "/dc1/vm/shop/web-02", lbl("app=web"), vmSpec())
	if err != nil || d.Host != "esx-03" || d.Verdicts[0].Reason != "solo runs there and its vmAntiAffinity app=web selects this VM" {
		t.Errorf("host %s, err %v, want esx-03\n%s", d.Host, err, d.Explain())
	}
}

func TestChosenWhyPreferences(t *testing.T) {
	c := snapshot(map[string]string{"esx-01": "", "esx-02": ""})
	load(c, "esx-02", 5000)
	c.Neighbours = []placement.RunningVM{{Name: "web-02", Namespace: "", Host: "esx-01", Labels: lbl("app=web")}}
	spec := vmSpec()
	spec.Affinity = &api.Affinity{VMAffinity: []api.VMAffinityTerm{{Selector: match("app", "web"), Weight: 30}}}
	d, err := PowerOn(c, nil, "/dc1/vm/web-01", lbl("app=web"), spec)
	if err != nil || d.Host != "esx-01" {
		t.Fatalf("host %s, err %v", d.Host, err)
	}
	if got, want := ChosenWhy(d), "VM preference 30, score 1.000 of 2 candidate hosts"; got != want {
		t.Errorf("ChosenWhy = %q, want %q", got, want)
	}
	spec.Affinity = &api.Affinity{VMAntiAffinity: []api.VMAffinityTerm{{Selector: match("app", "web"), Weight: 30}}}
	load(c, "esx-02", 10000) // esx-02 has no room for even a tiny reservation
	spec.CPU.Reservation = 100
	d, err = PowerOn(c, nil, "/dc1/vm/web-01", lbl("app=web"), spec)
	if err != nil || d.Host != "esx-01" {
		t.Fatalf("host %s, err %v", d.Host, err)
	}
	want := "VM preference -30, score 0.990 of 2 candidate hosts, 1 of which could run it; not preferred: vmAntiAffinity app=web, weight 30 (web-02 runs there)"
	if got := ChosenWhy(d); got != want {
		t.Errorf("ChosenWhy = %q, want %q", got, want)
	}
}

func TestVMRulesErrors(t *testing.T) {
	exists := api.LabelSelectorRequirement{Key: "k", Operator: "Exists"}
	tests := []struct {
		name string
		spec func(*api.VMSpec)
		want string
	}{
		{"hostSelector value", func(s *api.VMSpec) { s.HostSelector = map[string]string{"gpu": "a b"} },
			`spec.hostSelector["gpu"]: `},
		{"hostRequired operator", func(s *api.VMSpec) {
			s.Affinity = &api.Affinity{HostRequired: []api.LabelSelector{{MatchExpressions: []api.LabelSelectorRequirement{exists, {Key: "k", Operator: "Gt"}}}}}
		}, `spec.affinity.hostRequired[0].matchExpressions[1].operator: "Gt": want In, NotIn, Exists or DoesNotExist`},
		{"hostPreferred weight", func(s *api.VMSpec) {
			s.Affinity = &api.Affinity{HostPreferred: []api.WeightedSelector{{Weight: 101, Selector: match("a", "b")}}}
		}, "spec.affinity.hostPreferred[0].weight 101: want 1 to 100 for a preferred term (or required: true)"},
		{"hostPreferred selector", func(s *api.VMSpec) {
			s.Affinity = &api.Affinity{HostPreferred: []api.WeightedSelector{{Weight: 1, Selector: api.LabelSelector{MatchExpressions: []api.LabelSelectorRequirement{{Key: "k", Operator: "In"}}}}}}
		}, "spec.affinity.hostPreferred[0].selector.matchExpressions[0].values: operator In needs at least one value"},
		{"vmAffinity preferred without weight", func(s *api.VMSpec) {
			s.Affinity = &api.Affinity{VMAffinity: []api.VMAffinityTerm{{Selector: match("a", "b")}}}
		}, "spec.affinity.vmAffinity[0].weight 0: want 1 to 100 for a preferred term (or required: true)"},
		{"vmAntiAffinity required with weight", func(s *api.VMSpec) {
			s.Affinity = &api.Affinity{VMAntiAffinity: []api.VMAffinityTerm{{Selector: match("a", "b"), Required: true, Weight: 5}}}
		}, "spec.affinity.vmAntiAffinity[0].weight 5: a required term takes no weight (weights rank preferred terms)"},
		{"vmAntiAffinity matchLabels", func(s *api.VMSpec) {
			s.Affinity = &api.Affinity{VMAntiAffinity: []api.VMAffinityTerm{{Required: true}, {Selector: match("-bad", "x"), Required: true}}}
		}, `spec.affinity.vmAntiAffinity[1].selector.matchLabels["-bad"]: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := vmSpec()
			tt.spec(&s)
			_, err := VMRules("spec", s)
			if !errors.Is(err, api.ErrInvalid) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to begin %q", err, tt.want)
			}
			if _, err := PowerOn(snapshot(map[string]string{"esx-01": ""}), nil, "/dc1/vm/x", nil, s); !errors.Is(err, api.ErrInvalid) {
				t.Errorf("PowerOn err = %v, want ErrInvalid", err)
			}
		})
	}
	s := vmSpec()
	s.HostSelector = map[string]string{"gpu": "true"}
	s.Affinity = &api.Affinity{
		HostRequired:   []api.LabelSelector{{MatchExpressions: []api.LabelSelectorRequirement{exists}}},
		HostPreferred:  []api.WeightedSelector{{Weight: 100, Selector: match("a", "b")}},
		VMAffinity:     []api.VMAffinityTerm{{Selector: match("a", "b"), Required: true}, {Selector: match("c", "d"), Weight: 1}},
		VMAntiAffinity: []api.VMAffinityTerm{{Selector: match("e", "f"), Weight: 50}},
	}
	r, err := VMRules("spec", s)
	if err != nil {
		t.Fatal(err)
	}
	if r.HostSelector.String() != "gpu=true" || len(r.HostRequired) != 1 || r.HostPreferred[0].Weight != 100 ||
		len(r.VMAffinity) != 2 || !r.VMAffinity[0].Required || r.VMAntiAffinity[0].Weight != 50 {
		t.Errorf("VMRules = %+v", r)
	}
	if !HasVMTerms(s) || HasVMTerms(vmSpec()) {
		t.Error("HasVMTerms")
	}
}
