package placement

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/podsphere/podsphere/api"
)

// host is a connected, empty host with 10 GHz and 16 GB.
func host(name string) Host {
	return Host{Name: name, Connected: true, CPUCapacity: 10000, MemCapacity: 16384}
}

func with(h Host, f func(*Host)) Host { f(&h); return h }

var (
	web  = VM{Name: "web-01", CPUReservation: 500, MemReservation: 1024, NumCPU: 2, MemoryMB: 2048}
	bare = VM{Name: "web-01", NumCPU: 1, MemoryMB: 512}
)

func threeHosts() []Host { return []Host{host("esx-01"), host("esx-02"), host("esx-03")} }

func TestPlace(t *testing.T) {
	tests := []struct {
		name    string
		st      State
		vm      VM
		want    string            // chosen host
		reasons map[string]string // host -> exact Reason
	}{
		{
			name: "not responding host rejected",
			st:   State{Hosts: []Host{with(host("esx-01"), func(h *Host) { h.Connected = false }), host("esx-02")}},
			vm:   web, want: "esx-02",
			reasons: map[string]string{"esx-01": "not responding", "esx-02": ""},
		},
		{
			name: "maintenance host rejected even when emptiest",
			st: State{Hosts: []Host{
				with(host("esx-01"), func(h *Host) { h.Maintenance = true }),
				with(host("esx-02"), func(h *Host) { h.CPUReserved = 9000 }),
			}},
			vm: web, want: "esx-02",
			reasons: map[string]string{"esx-01": "in maintenance mode"},
		},
		{
			name: "not enough CPU",
			st:   State{Hosts: []Host{with(host("esx-01"), func(h *Host) { h.CPUReserved = 9700 }), host("esx-02")}},
			vm:   web, want: "esx-02",
			reasons: map[string]string{"esx-01": "not enough unreserved CPU (300 MHz free, 500 MHz asked)"},
		},
		{
			name: "not enough memory",
			st:   State{Hosts: []Host{with(host("esx-01"), func(h *Host) { h.MemReserved = 15872 }), host("esx-02")}},
			vm:   web, want: "esx-02",
			reasons: map[string]string{"esx-01": "not enough unreserved memory (512 MB free, 1024 MB asked)"},
		},
		{
			name: "overcommitted host shows zero free",
			st:   State{Hosts: []Host{with(host("esx-01"), func(h *Host) { h.MemCapacity = 8192; h.MemReserved = 9000 }), host("esx-02")}},
			vm:   web, want: "esx-02",
			reasons: map[string]string{"esx-01": "not enough unreserved memory (0 MB free, 1024 MB asked)"},
		},
		{
			name: "exact fit is a fit",
			st:   State{Hosts: []Host{with(host("esx-01"), func(h *Host) { h.CPUReserved = 9500; h.MemReserved = 15360 })}},
			vm:   web, want: "esx-01",
		},
		{
			name: "zero reservation fits an overcommitted host",
			st:   State{Hosts: []Host{with(host("esx-01"), func(h *Host) { h.MemReserved = 20000 })}},
			vm:   bare, want: "esx-01",
		},
		{
			name: "most free capacity after placement wins, by the scarcer resource",
			st: State{Hosts: []Host{
				with(host("esx-01"), func(h *Host) { h.CPUReserved = 1000; h.MemReserved = 12288 }), // mem 75% used
				with(host("esx-02"), func(h *Host) { h.CPUReserved = 5000; h.MemReserved = 4096 }),  // cpu 50% used
				with(host("esx-03"), func(h *Host) { h.CPUReserved = 7000 }),                        // cpu 70% used
			}},
			vm: web, want: "esx-02",
		},
		{
			name: "tie on score goes to fewer VMs",
			st: State{Hosts: []Host{
				with(host("esx-01"), func(h *Host) { h.VMs = 3 }),
				with(host("esx-02"), func(h *Host) { h.VMs = 1 }),
				with(host("esx-03"), func(h *Host) { h.VMs = 2 }),
			}},
			vm: bare, want: "esx-02",
		},
		{
			name: "tie on score and VMs goes to name",
			st:   State{Hosts: []Host{host("esx-03"), host("esx-01"), host("esx-02")}},
			vm:   bare, want: "esx-01",
		},
		{
			name: "anti-affinity keeps away from running member",
			st: State{
				Hosts:   threeHosts(),
				Rules:   []Rule{{Name: "sep", Enabled: true, Kind: RuleAntiAffinity, Mandatory: true, VMs: []string{"web-01", "db-01", "db-02"}}},
				Running: map[string]string{"db-01": "esx-01", "db-02": "esx-03", "other": "esx-02"},
			},
			vm: web, want: "esx-02",
			reasons: map[string]string{
				"esx-01": `anti-affinity rule "sep" (db-01 runs there)`,
				"esx-03": `anti-affinity rule "sep" (db-02 runs there)`,
			},
		},
		{
			name: "affinity follows running member even to a fuller host",
			st: State{
				Hosts:   []Host{host("esx-01"), with(host("esx-02"), func(h *Host) { h.CPUReserved = 8000; h.VMs = 4 }), host("esx-03")},
				Rules:   []Rule{{Name: "together", Enabled: true, Kind: RuleAffinity, Mandatory: true, VMs: []string{"app-01", "web-01"}}},
				Running: map[string]string{"app-01": "esx-02"},
			},
			vm: web, want: "esx-02",
			reasons: map[string]string{
				"esx-01": `affinity rule "together" (app-01 runs on esx-02)`,
				"esx-03": `affinity rule "together" (app-01 runs on esx-02)`,
			},
		},
		{
			name: "affinity with members on two hosts accepts either",
			st: State{
				Hosts:   threeHosts(),
				Rules:   []Rule{{Name: "together", Enabled: true, Kind: RuleAffinity, Mandatory: true, VMs: []string{"a", "b", "web-01"}}},
				Running: map[string]string{"a": "esx-03", "b": "esx-02"},
			},
			vm: web, want: "esx-02",
			reasons: map[string]string{"esx-01": `affinity rule "together" (a runs on esx-03, b on esx-02)`},
		},
		{
			name: "affinity with no member running places freely",
			st: State{
				Hosts:   threeHosts(),
				Rules:   []Rule{{Name: "together", Enabled: true, Kind: RuleAffinity, Mandatory: true, VMs: []string{"app-01", "web-01"}}},
				Running: map[string]string{"web-01": "esx-03"}, // itself does not count
			},
			vm: web, want: "esx-01",
		},
		{
			name: "vm-host must run on",
			st: State{
				Hosts: threeHosts(),
				Rules: []Rule{{Name: "pin", Enabled: true, Kind: RuleVMHost, Mandatory: true, Affine: true, VMs: []string{"web-01"}, Hosts: []string{"esx-03"}}},
			},
			vm: web, want: "esx-03",
			reasons: map[string]string{
				"esx-01": `vm-host rule "pin" (must run on hosts in its group)`,
				"esx-02": `vm-host rule "pin" (must run on hosts in its group)`,
			},
		},
		{
			name: "vm-host must not run on",
			st: State{
				Hosts: threeHosts(),
				Rules: []Rule{{Name: "avoid", Enabled: true, Kind: RuleVMHost, Mandatory: true, VMs: []string{"web-01"}, Hosts: []string{"esx-01", "esx-02"}}},
			},
			vm: web, want: "esx-03",
			reasons: map[string]string{
				"esx-01": `vm-host rule "avoid" (must not run on hosts in its group)`,
				"esx-02": `vm-host rule "avoid" (must not run on hosts in its group)`,
			},
		},
		{
			name: "vm-host should run on beats a freer host",
			st: State{
				Hosts: []Host{host("esx-01"), with(host("esx-02"), func(h *Host) { h.CPUReserved = 6000 })},
				Rules: []Rule{{Name: "pref", Enabled: true, Kind: RuleVMHost, Affine: true, VMs: []string{"web-01"}, Hosts: []string{"esx-02"}}},
			},
			vm: web, want: "esx-02",
			reasons: map[string]string{"esx-01": `vm-host rule "pref" (should run on hosts in its group)`, "esx-02": ""},
		},
		{
			name: "vm-host should run on yields when its hosts cannot fit",
			st: State{
				Hosts: []Host{host("esx-01"), with(host("esx-02"), func(h *Host) { h.Maintenance = true })},
				Rules: []Rule{{Name: "pref", Enabled: true, Kind: RuleVMHost, Affine: true, VMs: []string{"web-01"}, Hosts: []string{"esx-02"}}},
			},
			vm: web, want: "esx-01",
			reasons: map[string]string{"esx-01": `vm-host rule "pref" (should run on hosts in its group)`, "esx-02": "in maintenance mode"},
		},
		{
			name: "vm-host should not run on",
			st: State{
				Hosts: []Host{host("esx-01"), with(host("esx-02"), func(h *Host) { h.CPUReserved = 6000 })},
				Rules: []Rule{{Name: "away", Enabled: true, Kind: RuleVMHost, VMs: []string{"web-01"}, Hosts: []string{"esx-01"}}},
			},
			vm: web, want: "esx-02",
			reasons: map[string]string{"esx-01": `vm-host rule "away" (should not run on hosts in its group)`},
		},
		{
			name: "fewer broken should rules wins",
			st: State{
				Hosts: threeHosts(),
				Rules: []Rule{
					{Name: "p1", Enabled: true, Kind: RuleVMHost, Affine: true, VMs: []string{"web-01"}, Hosts: []string{"esx-02", "esx-03"}},
					{Name: "p2", Enabled: true, Kind: RuleVMHost, Affine: true, VMs: []string{"web-01"}, Hosts: []string{"esx-03"}},
				},
			},
			vm: web, want: "esx-03",
			reasons: map[string]string{
				"esx-01": `vm-host rule "p1" (should run on hosts in its group); vm-host rule "p2" (should run on hosts in its group)`,
				"esx-02": `vm-host rule "p2" (should run on hosts in its group)`,
			},
		},
		{
			name: "disabled rules are ignored",
			st: State{
				Hosts: threeHosts(),
				Rules: []Rule{
					{Name: "pin", Kind: RuleVMHost, Mandatory: true, Affine: true, VMs: []string{"web-01"}, Hosts: []string{"esx-03"}},
					{Name: "sep", Kind: RuleAntiAffinity, Mandatory: true, VMs: []string{"web-01", "db-01"}},
					{Name: "broken", Kind: "nonsense"}, // disabled: not even validated
				},
				Running: map[string]string{"db-01": "esx-01"},
			},
			vm: web, want: "esx-01",
		},
		{
			name: "rules not naming the VM are ignored",
			st: State{
				Hosts: threeHosts(),
				Rules: []Rule{
					{Name: "pin", Enabled: true, Kind: RuleVMHost, Mandatory: true, Affine: true, VMs: []string{"web-02"}, Hosts: []string{"esx-03"}},
					{Name: "sep", Enabled: true, Kind: RuleAntiAffinity, Mandatory: true, VMs: []string{"web-02", "db-01"}},
				},
				Running: map[string]string{"db-01": "esx-01", "web-02": "esx-01"},
			},
			vm: web, want: "esx-01",
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
			if len(d.Verdicts) != len(tt.st.Hosts) {
				t.Fatalf("%d verdicts for %d hosts", len(d.Verdicts), len(tt.st.Hosts))
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
			}
		})
	}
}

func TestPlaceNothingFits(t *testing.T) {
	st := State{
		Hosts: []Host{
			with(host("esx-01"), func(h *Host) { h.Maintenance = true }),
			with(host("esx-02"), func(h *Host) { h.MemReserved = 15872 }),
			with(host("esx-03"), func(h *Host) { h.Connected = false }),
			host("esx-04"),
		},
		Rules:   []Rule{{Name: "sep", Enabled: true, Kind: RuleAntiAffinity, Mandatory: true, VMs: []string{"db-01", "web-01"}}},
		Running: map[string]string{"db-01": "esx-04"},
	}
	d, err := Place(&st, web)
	if !errors.Is(err, api.ErrInsufficientResources) {
		t.Fatalf("err = %v, want ErrInsufficientResources", err)
	}
	want := `no host can run web-01: esx-01: in maintenance mode; esx-02: not enough unreserved memory (512 MB free, 1024 MB asked); ` +
		`esx-03: not responding; esx-04: anti-affinity rule "sep" (db-01 runs there): insufficient resources`
	if err.Error() != want {
		t.Errorf("err =\n%s\nwant\n%s", err, want)
	}
	if d.Host != "" || len(d.Verdicts) != 4 {
		t.Errorf("decision = %+v, want no host and 4 verdicts", d)
	}
}

func TestPlaceNoHosts(t *testing.T) {
	_, err := Place(&State{}, web)
	if !errors.Is(err, api.ErrInsufficientResources) {
		t.Fatalf("err = %v, want ErrInsufficientResources", err)
	}
	if want := "no host can run web-01: cluster has no hosts: insufficient resources"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestPlaceInvalid(t *testing.T) {
	tests := []struct {
		name string
		st   *State
		vm   VM
		want string
	}{
		{"nil state", nil, web, "placing web-01: no cluster state: invalid"},
		{"no name", &State{}, VM{}, "placing a VM: name is empty: invalid"},
		{"negative reservation", &State{}, VM{Name: "x", MemReservation: -1}, "placing x: reservations must not be negative (cpu 0 MHz, mem -1 MB): invalid"},
		{
			"invalid enabled rule naming the VM",
			&State{Hosts: threeHosts(), Rules: []Rule{{Name: "solo", Enabled: true, Kind: RuleAffinity, Mandatory: true, VMs: []string{"web-01"}}}},
			web, `placing web-01: rule "solo": vms: affinity rule needs at least 2 VMs, has 1: invalid`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Place(tt.st, tt.vm)
			if !errors.Is(err, api.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if err.Error() != tt.want {
				t.Errorf("err = %q, want %q", err, tt.want)
			}
		})
	}
}

// place runs Place and books the VM onto the chosen host, as the power-on path would.
func place(t *testing.T, st *State, vm VM) string {
	t.Helper()
	d, err := Place(st, vm)
	if err != nil {
		t.Fatalf("Place(%s): %v", vm.Name, err)
	}
	for i := range st.Hosts {
		if h := &st.Hosts[i]; h.Name == d.Host {
			h.CPUReserved += vm.CPUReservation
			h.MemReserved += vm.MemReservation
			h.VMs++
		}
	}
	if st.Running == nil {
		st.Running = map[string]string{}
	}
	st.Running[vm.Name] = d.Host
	return d.Host
}

func TestSpread(t *testing.T) {
	for _, tmpl := range []VM{web, bare} {
		t.Run(fmt.Sprintf("reservation %d MHz %d MB", tmpl.CPUReservation, tmpl.MemReservation), func(t *testing.T) {
			st := &State{Hosts: threeHosts()}
			seen := map[string]bool{}
			for i := range 3 {
				vm := tmpl
				vm.Name = fmt.Sprintf("web-%02d", i+1)
				seen[place(t, st, vm)] = true
			}
			if len(seen) != 3 {
				t.Errorf("3 VMs landed on %d hosts, want 3: %v", len(seen), seen)
			}
			// Six more keep the hosts even.
			for i := 3; i < 9; i++ {
				vm := tmpl
				vm.Name = fmt.Sprintf("web-%02d", i+1)
				place(t, st, vm)
			}
			for _, h := range st.Hosts {
				if h.VMs != 3 {
					t.Errorf("%s runs %d VMs, want 3", h.Name, h.VMs)
				}
			}
		})
	}
}

// TestPeers: Peers (powered-on members of the VM's own workload) order the
// hosts that fit right after the broken should rules and before the score,
// so a replica set spreads even onto a fuller host.
func TestPeers(t *testing.T) {
	peers := func(h Host, n int) Host { h.Peers = n; return h }
	pref := func(hosts ...string) Rule {
		return Rule{Name: "pref", Enabled: true, Kind: RuleVMHost, Affine: true, VMs: []string{"web-01"}, Hosts: hosts}
	}
	tests := []struct {
		name  string
		hosts []Host
		rules []Rule
		want  string
	}{
		{"fewer peers wins between equal hosts", []Host{peers(host("esx-01"), 1), host("esx-02")}, nil, "esx-02"},
		{"fewer peers beats a higher score", []Host{
			peers(host("esx-01"), 1),
			with(host("esx-02"), func(h *Host) { h.CPUReserved = 8000; h.MemReserved = 12288 }),
		}, nil, "esx-02"},
		{"fewer peers beats fewer VMs", []Host{
			peers(with(host("esx-01"), func(h *Host) { h.VMs = 1 }), 1),
			with(host("esx-02"), func(h *Host) { h.VMs = 6 }),
		}, nil, "esx-02"},
		{"fewer peers beats the name", []Host{peers(host("esx-01"), 3), peers(host("esx-02"), 2)}, nil, "esx-02"},
		{"equal peers: the score decides", []Host{
			peers(with(host("esx-01"), func(h *Host) { h.CPUReserved = 5000 }), 2),
			peers(with(host("esx-02"), func(h *Host) { h.CPUReserved = 1000 }), 2),
		}, nil, "esx-02"},
		{"fewer broken should rules beat fewer peers", []Host{peers(host("esx-01"), 4), host("esx-02")},
			[]Rule{pref("esx-01")}, "esx-01"},
		{"between hosts breaking the same should rules, fewer peers wins", []Host{
			peers(host("esx-01"), 2), peers(host("esx-02"), 1), with(host("esx-03"), func(h *Host) { h.Maintenance = true }),
		}, []Rule{pref("esx-03")}, "esx-02"},
		{"a host that does not fit gives no peer advantage", []Host{
			with(host("esx-01"), func(h *Host) { h.CPUReserved = 9800 }),
			peers(host("esx-02"), 5),
		}, nil, "esx-02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := State{Hosts: tt.hosts, Rules: tt.rules}
			d, err := Place(&st, web)
			if err != nil {
				t.Fatalf("Place: %v", err)
			}
			if d.Host != tt.want {
				t.Fatalf("Host = %s, want %s\n%s", d.Host, tt.want, d.Explain())
			}
			// Peers order hosts; they are not part of the score.
			for i, v := range d.Verdicts {
				if v.Fits && v.Score != score(&st.Hosts[i], &web) {
					t.Errorf("%s score %.3f, want %.3f", v.Host, v.Score, score(&st.Hosts[i], &web))
				}
			}
			// The host order does not matter.
			rev := clone(st)
			for i, j := 0, len(rev.Hosts)-1; i < j; i, j = i+1, j-1 {
				rev.Hosts[i], rev.Hosts[j] = rev.Hosts[j], rev.Hosts[i]
			}
			if d, _ := Place(&rev, web); d.Host != tt.want {
				t.Errorf("reversed hosts: Host = %s, want %s", d.Host, tt.want)
			}
		})
	}

	t.Run("a set spreads as its members start", func(t *testing.T) {
		// esx-01 is much bigger: without Peers every replica would go there.
		st := &State{Hosts: []Host{
			with(host("esx-01"), func(h *Host) { h.CPUCapacity, h.MemCapacity = 100000, 262144 }),
			host("esx-02"), host("esx-03"),
		}}
		per := map[string]int{}
		for i := range 6 {
			vm := web
			vm.Name = fmt.Sprintf("web-%02d", i+1)
			h := place(t, st, vm)
			per[h]++
			for k := range st.Hosts {
				if st.Hosts[k].Name == h {
					st.Hosts[k].Peers++
				}
			}
		}
		if per["esx-01"] != 2 || per["esx-02"] != 2 || per["esx-03"] != 2 {
			t.Fatalf("6 replicas landed %v, want 2 on each host", per)
		}
	})
}

func TestAntiAffinitySequential(t *testing.T) {
	st := &State{
		Hosts: threeHosts(),
		Rules: []Rule{{Name: "sep", Enabled: true, Kind: RuleAntiAffinity, Mandatory: true, VMs: []string{"db-01", "db-02", "db-03", "db-04"}}},
	}
	// Make the spread rule, not load, decide: esx-01 is always the freest.
	st.Hosts[1].CPUReserved, st.Hosts[2].CPUReserved = 3000, 6000
	for i, want := range []string{"esx-01", "esx-02", "esx-03"} {
		if got := place(t, st, VM{Name: fmt.Sprintf("db-%02d", i+1), CPUReservation: 100}); got != want {
			t.Errorf("db-%02d on %s, want %s", i+1, got, want)
		}
	}
	_, err := Place(st, VM{Name: "db-04"})
	want := `no host can run db-04: esx-01: anti-affinity rule "sep" (db-01 runs there); esx-02: anti-affinity rule "sep" (db-02 runs there); ` +
		`esx-03: anti-affinity rule "sep" (db-03 runs there): insufficient resources`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

// TestShouldVMRules: VM-VM rules that are not mandatory are vSphere's
// "should": honoured while a host can, never a reason to refuse a power-on.
func TestShouldVMRules(t *testing.T) {
	st := &State{
		Hosts: threeHosts(),
		Rules: []Rule{{Name: "sep", Enabled: true, Kind: RuleAntiAffinity, VMs: []string{"db-01", "db-02", "db-03", "db-04"}}},
	}
	st.Hosts[1].CPUReserved, st.Hosts[2].CPUReserved = 3000, 6000
	for i, want := range []string{"esx-01", "esx-02", "esx-03"} {
		if got := place(t, st, VM{Name: fmt.Sprintf("db-%02d", i+1), CPUReservation: 100}); got != want {
			t.Errorf("db-%02d on %s, want %s (the rule spreads them while it can)", i+1, got, want)
		}
	}
	if got := place(t, st, VM{Name: "db-04"}); got == "" {
		t.Error("a should anti-affinity rule refused db-04's power-on")
	}
	together := &State{
		Hosts:   threeHosts(),
		Rules:   []Rule{{Name: "together", Enabled: true, Kind: RuleAffinity, VMs: []string{"app-01", "web-01"}}},
		Running: map[string]string{"app-01": "esx-03"},
	}
	together.Hosts[2].Maintenance = true
	if got := place(t, together, web); got == "" || got == "esx-03" {
		t.Errorf("should affinity with its partner's host in maintenance: placed on %q, want another host", got)
	}
}

func TestDeterministic(t *testing.T) {
	st := State{
		Hosts: []Host{
			with(host("esx-05"), func(h *Host) { h.CPUReserved = 2000; h.VMs = 2 }),
			with(host("esx-02"), func(h *Host) { h.CPUReserved = 2000; h.VMs = 2 }),
			with(host("esx-04"), func(h *Host) { h.CPUReserved = 2000; h.VMs = 1 }),
			with(host("esx-01"), func(h *Host) { h.CPUReserved = 2000; h.VMs = 1 }),
			with(host("esx-03"), func(h *Host) { h.Maintenance = true }),
		},
		Rules:   []Rule{{Name: "sep", Enabled: true, Kind: RuleAntiAffinity, Mandatory: true, VMs: []string{"web-01", "web-02"}}},
		Running: map[string]string{"web-02": "esx-04"},
	}
	before := clone(st)
	first, err := Place(&st, web)
	if err != nil {
		t.Fatal(err)
	}
	if first.Host != "esx-01" {
		t.Fatalf("Host = %s, want esx-01\n%s", first.Host, first.Explain())
	}
	if !reflect.DeepEqual(st, before) {
		t.Error("Place changed its input")
	}
	for range 20 {
		d, _ := Place(&st, web)
		if !reflect.DeepEqual(d, first) {
			t.Fatalf("second decision differs:\n%s\nvs\n%s", d.Explain(), first.Explain())
		}
	}
	// Any host order gives the same host.
	for r := range len(st.Hosts) {
		rot := clone(st)
		rot.Hosts = append(rot.Hosts[r:], rot.Hosts[:r]...)
		rev := clone(rot)
		for i, j := 0, len(rev.Hosts)-1; i < j; i, j = i+1, j-1 {
			rev.Hosts[i], rev.Hosts[j] = rev.Hosts[j], rev.Hosts[i]
		}
		for _, s := range []State{rot, rev} {
			if d, _ := Place(&s, web); d.Host != first.Host {
				t.Errorf("order %v: Host = %s, want %s", hostNames(s.Hosts), d.Host, first.Host)
			}
		}
	}
}

func clone(st State) State {
	c := st
	c.Hosts = append([]Host(nil), st.Hosts...)
	c.Rules = append([]Rule(nil), st.Rules...)
	c.Running = make(map[string]string, len(st.Running))
	for k, v := range st.Running {
		c.Running[k] = v
	}
	return c
}

func hostNames(hs []Host) []string {
	var n []string
	for _, h := range hs {
		n = append(n, h.Name)
	}
	return n
}

// Large rule groups switch to a map lookup; results must not change.
func TestLargeGroups(t *testing.T) {
	var hosts []Host
	var group []string
	running := map[string]string{}
	var members []string
	for i := range 40 {
		name := fmt.Sprintf("esx-%02d", i)
		hosts = append(hosts, host(name))
		if i%2 == 1 {
			group = append(group, name)
		}
		if i < 30 {
			m := fmt.Sprintf("db-%02d", i)
			members = append(members, m)
			running[m] = name
		}
	}
	hosts[39].CPUReserved = 100 // among the allowed hosts, a fuller one
	st := State{
		Hosts: hosts,
		Rules: []Rule{
			{Name: "odd", Enabled: true, Kind: RuleVMHost, Mandatory: true, Affine: true, VMs: []string{"web-01"}, Hosts: group},
			{Name: "sep", Enabled: true, Kind: RuleAntiAffinity, Mandatory: true, VMs: append([]string{"web-01"}, members...)},
		},
		Running: running,
	}
	d, err := Place(&st, web)
	if err != nil {
		t.Fatal(err)
	}
	if d.Host != "esx-31" {
		t.Errorf("Host = %s, want esx-31\n%s", d.Host, d.Explain())
	}
	for _, tc := range []struct{ host, reason string }{
		{"esx-00", `vm-host rule "odd" (must run on hosts in its group)`},
		{"esx-29", `anti-affinity rule "sep" (db-29 runs there)`},
		{"esx-32", `vm-host rule "odd" (must run on hosts in its group)`},
	} {
		for _, v := range d.Verdicts {
			if v.Host == tc.host && v.Reason != tc.reason {
				t.Errorf("%s reason = %q, want %q", v.Host, v.Reason, tc.reason)
			}
		}
	}

	st.Rules = []Rule{{Name: "together", Enabled: true, Kind: RuleAffinity, Mandatory: true, VMs: append([]string{"web-01"}, members...)}}
	d, err = Place(&st, web)
	if err != nil {
		t.Fatal(err)
	}
	if d.Host != "esx-00" {
		t.Errorf("Host = %s, want esx-00", d.Host)
	}
	want := `affinity rule "together" (db-00 runs on esx-00, db-01 on esx-01, db-02 on esx-02 and 27 more hosts)`
	if r := d.Verdicts[35].Reason; r != want {
		t.Errorf("esx-35 reason = %q, want %q", r, want)
	}
}

func TestExplain(t *testing.T) {
	st := State{
		Hosts: []Host{
			with(host("esx-01"), func(h *Host) { h.Maintenance = true }),
			with(host("esx-02"), func(h *Host) { h.CPUReserved = 4500 }),
			with(host("esx-03"), func(h *Host) { h.CPUReserved = 2000 }),
			host("esx-04"),
		},
		Rules: []Rule{{Name: "pref", Enabled: true, Kind: RuleVMHost, Affine: true, VMs: []string{"web-01"}, Hosts: []string{"esx-02", "esx-03"}}},
	}
	d, err := Place(&st, web)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"esx-01: rejected: in maintenance mode",
		"esx-02: fits, score 0.500",
		"esx-03: chosen, score 0.750",
		`esx-04: fits, score 0.938, not preferred: vm-host rule "pref" (should run on hosts in its group)`,
		"",
	}, "\n")
	if got := d.Explain(); got != want {
		t.Errorf("Explain =\n%s\nwant\n%s", got, want)
	}
}

func TestValidateRule(t *testing.T) {
	tests := []struct {
		name string
		r    Rule
		want string // "" = valid
	}{
		{"affinity ok", Rule{Name: "a", Kind: RuleAffinity, VMs: []string{"x", "y"}}, ""},
		{"anti-affinity ok", Rule{Name: "a", Kind: RuleAntiAffinity, VMs: []string{"x", "y", "z"}}, ""},
		{"vm-host ok", Rule{Name: "a", Kind: RuleVMHost, VMs: []string{"x"}, Hosts: []string{"h"}}, ""},
		{"no name", Rule{Kind: RuleAffinity, VMs: []string{"x", "y"}}, "rule name is required: invalid"},
		{"unknown kind", Rule{Name: "a", Kind: "vm-vm"}, `rule "a": kind "vm-vm" is unknown (want affinity, anti-affinity or vm-host): invalid`},
		{"empty kind", Rule{Name: "a"}, `rule "a": kind "" is unknown (want affinity, anti-affinity or vm-host): invalid`},
		{"affinity one VM", Rule{Name: "a", Kind: RuleAffinity, VMs: []string{"x"}}, `rule "a": vms: affinity rule needs at least 2 VMs, has 1: invalid`},
		{"anti-affinity no VM", Rule{Name: "a", Kind: RuleAntiAffinity}, `rule "a": vms: anti-affinity rule needs at least 2 VMs, has 0: invalid`},
		{"vm-host no VM", Rule{Name: "a", Kind: RuleVMHost, Hosts: []string{"h"}}, `rule "a": vms: vm-host rule needs at least 1 VM: invalid`},
		{"vm-host no host", Rule{Name: "a", Kind: RuleVMHost, VMs: []string{"x"}}, `rule "a": hosts: vm-host rule needs at least 1 host: invalid`},
		{"empty VM name", Rule{Name: "a", Kind: RuleAffinity, VMs: []string{"x", ""}}, `rule "a": vms[1]: VM name is empty: invalid`},
		{"empty host name", Rule{Name: "a", Kind: RuleVMHost, VMs: []string{"x"}, Hosts: []string{""}}, `rule "a": hosts[0]: host name is empty: invalid`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateRule(tt.r)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, api.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if err.Error() != tt.want {
				t.Errorf("err = %q, want %q", err, tt.want)
			}
		})
	}
}
