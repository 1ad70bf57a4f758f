package placement

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/labels"
)

var sel = labels.MustParse

// lbl is a label set from "k=v,k2=v2".
func lbl(s string) map[string]string {
	m := map[string]string{}
	for kv := range strings.SplitSeq(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func labelled(name, labels string) Host {
	return with(host(name), func(h *Host) { h.Labels = lbl(labels) })
}

// nb is a running VM of namespace shop.
func nb(name, host, labels string) RunningVM {
	return RunningVM{Name: name, Namespace: "shop", Host: host, Labels: lbl(labels)}
}

// shopVM is web in namespace shop, labelled app=web, with rules r.
func shopVM(r VMRules) VM {
	vm := web
	vm.Namespace, vm.Labels, vm.Rules = "shop", lbl("app=web"), r
	return vm
}

// labelledVM is vm with labels ls.
func labelledVM(vm VM, ls string) VM { vm.Labels = lbl(ls); return vm }

func req(s string) VMTerm                    { return VMTerm{Selector: sel(s), Required: true} }
func pref(s string, w int) VMTerm            { return VMTerm{Selector: sel(s), Weight: w} }
func hpref(s string, w int) WeightedSelector { return WeightedSelector{Weight: w, Selector: sel(s)} }

// fuller reserves CPU on a host so it scores worse than an empty one.
func fuller(h Host, mhz int64) Host { h.CPUReserved = mhz; return h }

func TestPlaceVMRules(t *testing.T) {
	tests := []struct {
		name    string
		st      State
		vm      VM
		want    string
		reasons map[string]string // host -> exact Reason
		weights map[string][2]int // host -> HostWeight, VMWeight
	}{
		{
			name: "hostSelector: only the matching host",
			st:   State{Hosts: []Host{labelled("esx-01", "gpu=false"), fuller(labelled("esx-02", "gpu=true,zone=a"), 8000), host("esx-03")}},
			vm:   shopVM(VMRules{HostSelector: sel("gpu=true")}), want: "esx-02",
			reasons: map[string]string{
				"esx-01": "host labels do not match hostSelector gpu=true",
				"esx-02": "",
				"esx-03": "host labels do not match hostSelector gpu=true",
			},
		},
		{
			name: "hostSelector with several labels needs them all",
			st:   State{Hosts: []Host{labelled("esx-01", "gpu=true"), fuller(labelled("esx-02", "gpu=true,zone=a"), 8000)}},
			vm:   shopVM(VMRules{HostSelector: sel("gpu=true,zone=a")}), want: "esx-02",
			reasons: map[string]string{"esx-01": "host labels do not match hostSelector gpu=true,zone=a"},
		},
		{
			name: "hostRequired terms are ORed",
			st:   State{Hosts: []Host{labelled("esx-01", "zone=b"), fuller(labelled("esx-02", "disk=ssd"), 5000), fuller(labelled("esx-03", "zone=a"), 2000)}},
			vm:   shopVM(VMRules{HostRequired: []labels.Selector{sel("zone in (a)"), sel("disk=ssd")}}), want: "esx-03",
			reasons: map[string]string{"esx-01": "host labels match no hostRequired term (zone in (a) or disk=ssd)", "esx-02": "", "esx-03": ""},
		},
		{
			name: "one hostRequired term",
			st:   State{Hosts: []Host{labelled("esx-01", "zone=b"), fuller(labelled("esx-02", "zone=a"), 5000)}},
			vm:   shopVM(VMRules{HostRequired: []labels.Selector{sel("zone notin (b)")}}), want: "esx-02",
			reasons: map[string]string{"esx-01": "host labels do not match hostRequired zone notin (b)"},
		},
		{
			name: "hostSelector and hostRequired must both hold",
			st:   State{Hosts: []Host{labelled("esx-01", "gpu=true,zone=b"), labelled("esx-02", "zone=a"), fuller(labelled("esx-03", "gpu=true,zone=a"), 6000)}},
			vm:   shopVM(VMRules{HostSelector: sel("gpu=true"), HostRequired: []labels.Selector{sel("zone=a")}}), want: "esx-03",
			reasons: map[string]string{
				"esx-01": "host labels do not match hostRequired zone=a",
				"esx-02": "host labels do not match hostSelector gpu=true",
			},
		},
		{
			name: "hostPreferred: the sum of matching weights wins over headroom",
			st: State{Hosts: []Host{
				labelled("esx-01", "zone=a"),
				fuller(labelled("esx-02", "zone=b"), 6000),
				fuller(labelled("esx-03", "zone=a,disk=ssd"), 8000),
				host("esx-04"),
			}},
			vm: shopVM(VMRules{HostPreferred: []WeightedSelector{hpref("zone=a", 20), hpref("zone=b", 50), hpref("disk=ssd", 40)}}), want: "esx-03",
			weights: map[string][2]int{"esx-01": {20, 0}, "esx-02": {50, 0}, "esx-03": {60, 0}, "esx-04": {0, 0}},
			reasons: map[string]string{
				"esx-01": "hostPreferred zone=b, weight 50 (host labels do not match); hostPreferred disk=ssd, weight 40 (host labels do not match)",
				"esx-03": "hostPreferred zone=b, weight 50 (host labels do not match)",
			},
		},
		{
			name: "cluster should rules outrank hostPreferred",
			st: State{
				Hosts: []Host{labelled("esx-01", "zone=a"), labelled("esx-02", "zone=b")},
				Rules: []Rule{{Name: "pref", Enabled: true, Kind: RuleVMHost, Affine: true, VMs: []string{"web-01"}, Hosts: []string{"esx-02"}}},
			},
			vm: shopVM(VMRules{HostPreferred: []WeightedSelector{hpref("zone=a", 100)}}), want: "esx-02",
			reasons: map[string]string{
				"esx-01": `vm-host rule "pref" (should run on hosts in its group)`,
				"esx-02": "hostPreferred zone=a, weight 100 (host labels do not match)",
			},
		},
		{
			name: "hostPreferred yields to a mandatory rule",
			st:   State{Hosts: []Host{with(labelled("esx-01", "zone=a"), func(h *Host) { h.Maintenance = true }), labelled("esx-02", "zone=b,gpu=true"), labelled("esx-03", "zone=a")}},
			vm:   shopVM(VMRules{HostSelector: sel("gpu=true"), HostPreferred: []WeightedSelector{hpref("zone=a", 100)}}), want: "esx-02",
			reasons: map[string]string{"esx-01": "in maintenance mode", "esx-03": "host labels do not match hostSelector gpu=true"},
		},
		{
			name: "hostPreferred outranks peers",
			st:   State{Hosts: []Host{host("esx-01"), with(labelled("esx-02", "zone=a"), func(h *Host) { h.Peers = 3 })}},
			vm:   shopVM(VMRules{HostPreferred: []WeightedSelector{hpref("zone=a", 1)}}), want: "esx-02",
		},
		{
			name: "required anti-affinity keeps away from a matching VM",
			st: State{
				Hosts:      threeHosts(),
				Neighbours: []RunningVM{nb("db-01", "esx-01", "app=db"), nb("db-02", "esx-02", "app=db"), nb("db-03", "esx-02", "app=db"), nb("cache-01", "esx-03", "app=cache")},
			},
			vm: shopVM(VMRules{VMAntiAffinity: []VMTerm{req("app=db")}}), want: "esx-03",
			reasons: map[string]string{
				"esx-01": "vmAntiAffinity app=db (db-01 runs there)",
				"esx-02": "vmAntiAffinity app=db (db-02 and 1 more run there)",
				"esx-03": "",
			},
		},
		{
			name: "required anti-affinity ignores other namespaces and the VM itself",
			st: State{
				Hosts: threeHosts(),
				Neighbours: []RunningVM{
					{Name: "db-01", Namespace: "other", Host: "esx-01", Labels: lbl("app=db")},
					{Name: "web-01", Namespace: "shop", Host: "esx-01", Labels: lbl("app=db")},
					nb("db-02", "esx-02", "app=db"),
				},
			},
			vm: shopVM(VMRules{VMAntiAffinity: []VMTerm{req("app=db")}}), want: "esx-01",
			reasons: map[string]string{"esx-01": "", "esx-02": "vmAntiAffinity app=db (db-02 runs there)", "esx-03": ""},
		},
		{
			name: "required anti-affinity of a running VM selecting this VM",
			st: State{
				Hosts: threeHosts(),
				Neighbours: []RunningVM{
					{Name: "db-02", Namespace: "shop", Host: "esx-01", Labels: lbl("app=db"), AntiAffinity: []labels.Selector{sel("app in (web)")}},
					{Name: "db-01", Namespace: "shop", Host: "esx-01", Labels: lbl("app=db"), AntiAffinity: []labels.Selector{sel("app=cache"), sel("app=web")}},
					{Name: "db-03", Namespace: "shop", Host: "esx-02", Labels: lbl("app=db"), AntiAffinity: []labels.Selector{sel("app=cache")}},
					{Name: "db-04", Namespace: "other", Host: "esx-03", Labels: lbl("app=db"), AntiAffinity: []labels.Selector{sel("app=web")}},
				},
			},
			vm: shopVM(VMRules{}), want: "esx-02",
			reasons: map[string]string{"esx-01": "db-01 runs there and its vmAntiAffinity app=web selects this VM", "esx-02": "", "esx-03": ""},
		},
		{
			name: "required affinity follows a matching VM to a fuller host",
			st: State{
				Hosts:      []Host{host("esx-01"), fuller(host("esx-02"), 8000), host("esx-03")},
				Neighbours: []RunningVM{nb("cache-01", "esx-02", "app=cache"), nb("db-01", "esx-03", "app=db")},
			},
			vm: shopVM(VMRules{VMAffinity: []VMTerm{req("app=cache")}}), want: "esx-02",
			reasons: map[string]string{
				"esx-01": "vmAffinity app=cache (cache-01 runs on esx-02)",
				"esx-03": "vmAffinity app=cache (cache-01 runs on esx-02)",
			},
		},
		{
			name: "required affinity: the host must run a VM matching every term",
			st: State{
				Hosts: threeHosts(),
				Neighbours: []RunningVM{
					nb("cache-01", "esx-01", "app=cache"),
					nb("cache-03", "esx-03", "app=cache,tier=hot"),
					nb("cache-02", "esx-03", "app=cache,tier=hot"),
					nb("hot-01", "esx-02", "tier=hot"),
				},
			},
			vm: shopVM(VMRules{VMAffinity: []VMTerm{req("app=cache"), req("tier=hot")}}), want: "esx-03",
			reasons: map[string]string{
				"esx-01": "vmAffinity app=cache and tier=hot (cache-02 runs on esx-03)",
				"esx-02": "vmAffinity app=cache and tier=hot (cache-02 runs on esx-03)",
			},
		},
		{
			name: "required affinity to VMs on several hosts accepts each",
			st: State{
				Hosts:      []Host{host("esx-01"), fuller(host("esx-02"), 3000), fuller(host("esx-03"), 6000)},
				Neighbours: []RunningVM{nb("cache-02", "esx-03", "app=cache"), nb("cache-01", "esx-02", "app=cache")},
			},
			vm: shopVM(VMRules{VMAffinity: []VMTerm{req("app=cache")}}), want: "esx-02",
			reasons: map[string]string{"esx-01": "vmAffinity app=cache (cache-01 runs on esx-02, cache-02 on esx-03)"},
		},
		{
			name: "required affinity with no match anywhere: a VM matching its own term goes anywhere",
			st: State{
				Hosts:      []Host{fuller(host("esx-01"), 3000), host("esx-02")},
				Neighbours: []RunningVM{nb("db-01", "esx-01", "app=db"), {Name: "web-02", Namespace: "other", Host: "esx-01", Labels: lbl("app=web")}},
			},
			vm: shopVM(VMRules{VMAffinity: []VMTerm{req("app=web")}}), want: "esx-02",
			reasons: map[string]string{"esx-01": "", "esx-02": ""},
		},
		{
			name: "required affinity with a partial match only: the VM's own match decides",
			st: State{
				Hosts:      []Host{fuller(host("esx-01"), 3000), host("esx-02")},
				Neighbours: []RunningVM{nb("web-02", "esx-01", "app=web")},
			},
			// web-02 matches app=web but not tier=hot: no running VM matches both
			// terms, and this VM matches them itself, so any host will do.
			vm: labelledVM(shopVM(VMRules{VMAffinity: []VMTerm{req("app=web"), req("tier=hot")}}), "app=web,tier=hot"), want: "esx-02",
		},
		{
			name: "required affinity follows its own kind once one runs",
			st: State{
				Hosts:      []Host{fuller(host("esx-01"), 3000), host("esx-02")},
				Neighbours: []RunningVM{nb("web-02", "esx-01", "app=web")},
			},
			vm: shopVM(VMRules{VMAffinity: []VMTerm{req("app=web")}}), want: "esx-01",
			reasons: map[string]string{"esx-02": "vmAffinity app=web (web-02 runs on esx-01)"},
		},
		{
			name: "preferred anti-affinity: fewer matching VMs, weighted, beats headroom",
			st: State{
				Hosts:      []Host{host("esx-01"), host("esx-02"), fuller(host("esx-03"), 9000)},
				Neighbours: []RunningVM{nb("web-03", "esx-01", "app=web"), nb("web-02", "esx-01", "app=web"), nb("web-04", "esx-02", "app=web"), nb("db-01", "esx-03", "app=db")},
			},
			vm: shopVM(VMRules{VMAntiAffinity: []VMTerm{pref("app=web", 10)}}), want: "esx-03",
			weights: map[string][2]int{"esx-01": {0, -20}, "esx-02": {0, -10}, "esx-03": {0, 0}},
			reasons: map[string]string{
				"esx-01": "vmAntiAffinity app=web, weight 10 (web-02 and 1 more run there)",
				"esx-02": "vmAntiAffinity app=web, weight 10 (web-04 runs there)",
				"esx-03": "",
			},
		},
		{
			name: "preferred affinity: more matching VMs, weighted, wins",
			st: State{
				Hosts: []Host{host("esx-01"), fuller(host("esx-02"), 6000), host("esx-03")},
				Neighbours: []RunningVM{
					nb("cache-01", "esx-01", "app=cache"),
					nb("cache-02", "esx-02", "app=cache"), nb("cache-03", "esx-02", "app=cache"),
					nb("db-01", "esx-01", "app=db"),
				},
			},
			// esx-01: 10 - 5 = 5; esx-02: 20; esx-03: 0.
			vm: shopVM(VMRules{VMAffinity: []VMTerm{pref("app=cache", 10)}, VMAntiAffinity: []VMTerm{pref("app=db", 5)}}), want: "esx-02",
			weights: map[string][2]int{"esx-01": {0, 5}, "esx-02": {0, 20}, "esx-03": {0, 0}},
			reasons: map[string]string{
				"esx-01": "vmAntiAffinity app=db, weight 5 (db-01 runs there)",
				"esx-03": "vmAffinity app=cache, weight 10 (no matching VM runs there)",
			},
		},
		{
			name: "host preference outranks VM preference",
			st: State{
				Hosts:      []Host{labelled("esx-01", "zone=a"), host("esx-02")},
				Neighbours: []RunningVM{nb("cache-01", "esx-02", "app=cache")},
			},
			vm: shopVM(VMRules{HostPreferred: []WeightedSelector{hpref("zone=a", 1)}, VMAffinity: []VMTerm{pref("app=cache", 100)}}), want: "esx-01",
		},
		{
			name: "VM preference outranks peers",
			st: State{
				Hosts:      []Host{host("esx-01"), with(host("esx-02"), func(h *Host) { h.Peers = 2 })},
				Neighbours: []RunningVM{nb("cache-01", "esx-02", "app=cache")},
			},
			vm: shopVM(VMRules{VMAffinity: []VMTerm{pref("app=cache", 1)}}), want: "esx-02",
		},
		{
			name: "preferred VM terms ignore other namespaces",
			st: State{
				Hosts:      []Host{host("esx-01"), fuller(host("esx-02"), 5000)},
				Neighbours: []RunningVM{{Name: "cache-01", Namespace: "other", Host: "esx-02", Labels: lbl("app=cache")}},
			},
			vm: shopVM(VMRules{VMAffinity: []VMTerm{pref("app=cache", 100)}}), want: "esx-01",
			weights: map[string][2]int{"esx-01": {0, 0}, "esx-02": {0, 0}},
		},
		{
			name: "empty selector selects every VM of the namespace",
			st: State{
				Hosts:      []Host{host("esx-01"), fuller(host("esx-02"), 5000)},
				Neighbours: []RunningVM{nb("db-01", "esx-01", "")},
			},
			vm: shopVM(VMRules{VMAntiAffinity: []VMTerm{{Required: true}}}), want: "esx-02",
			reasons: map[string]string{"esx-01": "vmAntiAffinity (every VM) (db-01 runs there)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Place(&tt.st, tt.vm)
			if err != nil {
				t.Fatalf("Place: %v", err)
			}
			if d.Host != tt.want {
				t.Errorf("Host = %q, want %q\n%s", d.Host, tt.want, d.Explain())
			}
			for i, v := range d.Verdicts {
				if v.Host != tt.st.Hosts[i].Name {
					t.Errorf("verdict %d is for %q, want %q", i, v.Host, tt.st.Hosts[i].Name)
				}
				if !v.Fits && v.Reason == "" {
					t.Errorf("%s rejected without a reason", v.Host)
				}
				if want, ok := tt.reasons[v.Host]; ok && v.Reason != want {
					t.Errorf("%s reason = %q, want %q", v.Host, v.Reason, want)
				}
				if want, ok := tt.weights[v.Host]; ok && [2]int{v.HostWeight, v.VMWeight} != want {
					t.Errorf("%s weights = %d, %d, want %v", v.Host, v.HostWeight, v.VMWeight, want)
				}
			}
			// The same neighbours in another order give the same decision.
			rev := tt.st
			rev.Neighbours = slices.Clone(tt.st.Neighbours)
			slices.Reverse(rev.Neighbours)
			if d2, _ := Place(&rev, tt.vm); !reflect.DeepEqual(d2, d) {
				t.Errorf("neighbours reversed:\n%s\nvs\n%s", d2.Explain(), d.Explain())
			}
		})
	}
}

func TestPlaceVMRulesNothingFits(t *testing.T) {
	st := State{
		Hosts: []Host{
			labelled("esx-01", "gpu=false"),
			labelled("esx-02", "gpu=true"),
			with(labelled("esx-03", "gpu=true"), func(h *Host) { h.Connected = false }),
		},
		Neighbours: []RunningVM{nb("db-01", "esx-02", "app=db")},
	}
	_, err := Place(&st, shopVM(VMRules{HostSelector: sel("gpu=true"), VMAntiAffinity: []VMTerm{req("app=db")}}))
	if !errors.Is(err, api.ErrInsufficientResources) {
		t.Fatalf("err = %v, want ErrInsufficientResources", err)
	}
	want := "no host can run web-01: esx-01: host labels do not match hostSelector gpu=true; " +
		"esx-02: vmAntiAffinity app=db (db-01 runs there); esx-03: not responding: insufficient resources"
	if err.Error() != want {
		t.Errorf("err =\n%s\nwant\n%s", err, want)
	}

	// Required affinity to VMs that do not run, and the VM does not match its own term.
	_, err = Place(&State{Hosts: threeHosts()}, shopVM(VMRules{VMAffinity: []VMTerm{req("app=cache")}}))
	want = "vmAffinity app=cache (no matching VM runs in the cluster, and this VM does not match it itself)"
	if err == nil || !strings.Contains(err.Error(), "esx-01: "+want+"; esx-02: "+want) {
		t.Errorf("err = %v, want every host rejected with %q", err, want)
	}
}

func TestPlaceVMRulesInvalid(t *testing.T) {
	for _, tc := range []struct {
		r    VMRules
		want string
	}{
		{VMRules{HostPreferred: []WeightedSelector{hpref("a=b", 0)}}, "placing web-01: hostPreferred[0]: weight 0 is not from 1 to 100: invalid"},
		{VMRules{VMAffinity: []VMTerm{req("a=b"), pref("a=b", 101)}}, "placing web-01: vmAffinity[1]: weight 101 is not from 1 to 100: invalid"},
		{VMRules{VMAntiAffinity: []VMTerm{{Selector: sel("a=b")}}}, "placing web-01: vmAntiAffinity[0]: weight 0 is not from 1 to 100: invalid"},
	} {
		_, err := Place(&State{Hosts: threeHosts()}, shopVM(tc.r))
		if !errors.Is(err, api.ErrInvalid) || err.Error() != tc.want {
			t.Errorf("err = %v, want %s", err, tc.want)
		}
	}
}

func TestExplainPreferences(t *testing.T) {
	st := State{
		Hosts:      []Host{labelled("esx-01", "zone=a"), fuller(host("esx-02"), 5000), labelled("esx-03", "gpu=true")},
		Neighbours: []RunningVM{nb("web-02", "esx-01", "app=web")},
	}
	d, err := Place(&st, shopVM(VMRules{
		HostSelector:   sel("gpu notin (true)"),
		HostPreferred:  []WeightedSelector{hpref("zone=a", 30)},
		VMAntiAffinity: []VMTerm{pref("app=web", 10)},
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"esx-01: chosen, host preference 30, VM preference -10, score 0.938, not preferred: vmAntiAffinity app=web, weight 10 (web-02 runs there)",
		"esx-02: fits, host preference 0, VM preference 0, score 0.450, not preferred: hostPreferred zone=a, weight 30 (host labels do not match)",
		"esx-03: rejected: host labels do not match hostSelector gpu notin (true)",
		"",
	}, "\n")
	if got := d.Explain(); got != want {
		t.Errorf("Explain =\n%s\nwant\n%s", got, want)
	}
}

// A VM with no rules and no neighbours is placed exactly as before.
func TestNoVMRulesNoPlan(t *testing.T) {
	st := &State{Hosts: threeHosts()}
	if p, err := planVM(st, &web); p != nil || err != nil {
		t.Errorf("planVM = %v, %v, want nil", p, err)
	}
}
