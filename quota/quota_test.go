package quota

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/podsphere/podsphere/api"
)

const (
	root = "/dc1/host/c1/Resources"
	dev  = root + "/dev"
	web  = dev + "/web"
)

func limits(set func(*Limits)) Limits {
	l := Unlimited()
	set(&l)
	return l
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		levels  []Level
		request Usage
		wantErr string // "" admits
	}{
		{"no levels", nil, Usage{VMs: 1}, ""},
		{"unlimited", []Level{{Pool: dev, Limits: Unlimited(), Used: Usage{VMs: 1 << 40}}}, Usage{VMs: 1}, ""},
		{"within limit", []Level{{Pool: dev, Limits: limits(func(l *Limits) { l.VMs = 10 }), Used: Usage{VMs: 9}}}, Usage{VMs: 1}, ""},
		{"at limit", []Level{{Pool: dev, Limits: limits(func(l *Limits) { l.VMs = 10 }), Used: Usage{VMs: 10}}}, Usage{VMs: 1},
			"quota exceeded in " + dev + ": vms 10 + 1 > 10"},
		{"zero means none allowed", []Level{{Pool: dev, Limits: limits(func(l *Limits) { l.Secrets = 0 })}}, Usage{Secrets: 1},
			"quota exceeded in " + dev + ": secrets 0 + 1 > 0"},
		{"zero does not block other kinds", []Level{{Pool: dev, Limits: limits(func(l *Limits) { l.Secrets = 0 })}}, Usage{ConfigMaps: 3}, ""},
		{"request raises only some fields", []Level{{Pool: dev,
			Limits: limits(func(l *Limits) { l.VMs = 2; l.CPUMHz = 1000 }),
			Used:   Usage{VMs: 5, CPUMHz: 400}}}, // already over a lowered vms quota
			Usage{CPUMHz: 600}, ""},
		{"a release is never refused", []Level{{Pool: dev, Limits: limits(func(l *Limits) { l.MemMB = 100 }), Used: Usage{MemMB: 500}}},
			Usage{MemMB: -200}, ""},
		{"cpu unit", []Level{{Pool: dev, Limits: limits(func(l *Limits) { l.CPUMHz = 3500 }), Used: Usage{CPUMHz: 3000}}}, Usage{CPUMHz: 1000},
			"quota exceeded in " + dev + ": cpu 3000 + 1000 > 3500 MHz"},
		{"memory unit", []Level{{Pool: dev, Limits: limits(func(l *Limits) { l.MemMB = 4096 }), Used: Usage{MemMB: 4000}}}, Usage{MemMB: 512},
			"quota exceeded in " + dev + ": memory 4000 + 512 > 4096 MB"},
		{"storage unit", []Level{{Pool: dev, Limits: limits(func(l *Limits) { l.StorageGB = 100 }), Used: Usage{StorageGB: 90}}}, Usage{StorageGB: 20},
			"quota exceeded in " + dev + ": storage 90 + 20 > 100 GB"},
		{"ancestor quota hit while the nearer pool has room", []Level{
			{Pool: web, Limits: limits(func(l *Limits) { l.VMs = 10 }), Used: Usage{VMs: 1}},
			{Pool: dev, Limits: Unlimited(), Used: Usage{VMs: 4}},
			{Pool: root, Limits: limits(func(l *Limits) { l.VMs = 5 }), Used: Usage{VMs: 5}},
		}, Usage{VMs: 1}, "quota exceeded in " + root + ": vms 5 + 1 > 5"},
		{"nearest pool reported first", []Level{
			{Pool: web, Limits: limits(func(l *Limits) { l.Services = 1 }), Used: Usage{Services: 1}},
			{Pool: dev, Limits: limits(func(l *Limits) { l.VMs = 0 })},
		}, Usage{VMs: 1, Services: 1}, "quota exceeded in " + web + ": services 1 + 1 > 1"},
		{"resources in display order within a pool", []Level{
			{Pool: dev, Limits: limits(func(l *Limits) { l.MemMB = 0; l.VolumeClaims = 0; l.StorageGB = 0 })},
		}, Usage{MemMB: 1, StorageGB: 1, VolumeClaims: 1}, "quota exceeded in " + dev + ": volumeclaims 0 + 1 > 0"},
		{"a VM with everything it brings", []Level{{Pool: dev,
			Limits: Limits{VMs: 10, ReplicaSets: -1, Services: -1, VolumeClaims: 4, ConfigMaps: -1, Secrets: -1, StorageGB: 50, CPUMHz: 8000, MemMB: 16384},
			Used:   Usage{VMs: 3, VolumeClaims: 2, StorageGB: 30, CPUMHz: 6000, MemMB: 8192}}},
			Usage{VMs: 1, VolumeClaims: 1, StorageGB: 20, CPUMHz: 2000, MemMB: 8192}, ""},
		{"no overflow near the int64 maximum", []Level{{Pool: dev, Limits: limits(func(l *Limits) { l.CPUMHz = 1 << 62 }), Used: Usage{CPUMHz: 1 << 62}}},
			Usage{CPUMHz: 1 << 62}, "quota exceeded in " + dev + ": cpu 4611686018427387904 + 4611686018427387904 > 4611686018427387904 MHz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.levels, tt.request)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check = %v, want admitted", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Check = %v\nwant %s", err, tt.wantErr)
			}
			if !errors.Is(err, api.ErrQuotaExceeded) {
				t.Fatalf("Check error does not wrap api.ErrQuotaExceeded")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		l       Limits
		wantErr string
	}{
		{"unlimited", Unlimited(), ""},
		{"zeros", Limits{}, ""},
		{"values", limits(func(l *Limits) { l.VMs = 10; l.MemMB = 4096 }), ""},
		{"vms below -1", limits(func(l *Limits) { l.VMs = -2 }),
			"invalid quota: vms -2 is below -1 (use -1 for no limit, 0 for none allowed)"},
		{"memory below -1", limits(func(l *Limits) { l.MemMB = -100 }),
			"invalid quota: memory -100 is below -1 (use -1 for no limit, 0 for none allowed)"},
		{"first in display order", limits(func(l *Limits) { l.StorageGB = -3; l.Secrets = -3 }),
			"invalid quota: secrets -3 is below -1 (use -1 for no limit, 0 for none allowed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.l.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr || !errors.Is(err, api.ErrInvalid) {
				t.Fatalf("Validate = %v\nwant %s (ErrInvalid)", err, tt.wantErr)
			}
		})
	}
}

func TestNamesGetSet(t *testing.T) {
	want := []string{"vms", "replicasets", "services", "volumeclaims", "configmaps", "secrets", "storage", "cpu", "memory"}
	if got := Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	var l Limits
	for i, name := range Names() {
		if err := l.Set(name, int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	u := Usage{VMs: 1, ReplicaSets: 2, Services: 3, VolumeClaims: 4, ConfigMaps: 5, Secrets: 6, StorageGB: 7, CPUMHz: 8, MemMB: 9}
	if l != (Limits{1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("Set by name filled %+v", l)
	}
	for i, name := range Names() {
		if l.Get(name) != int64(i+1) || u.Get(name) != int64(i+1) {
			t.Errorf("Get(%q) = %d / %d, want %d", name, l.Get(name), u.Get(name), i+1)
		}
	}
	if l.Get("pods") != NoLimit || u.Get("pods") != 0 {
		t.Errorf("unknown name: limit %d usage %d, want -1 and 0", l.Get("pods"), u.Get("pods"))
	}
	if err := l.Set("pods", 1); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("Set(unknown) = %v, want ErrInvalid", err)
	}
	units := map[string]string{"vms": "", "storage": "GB", "cpu": "MHz", "memory": "MB"}
	for name, unit := range units {
		if Unit(name) != unit {
			t.Errorf("Unit(%q) = %q, want %q", name, Unit(name), unit)
		}
	}
}

func TestUsageAdd(t *testing.T) {
	a := Usage{VMs: 1, ReplicaSets: 2, Services: 3, VolumeClaims: 4, ConfigMaps: 5, Secrets: 6, StorageGB: 7, CPUMHz: 8, MemMB: 9}
	got := a.Add(a).Add(Usage{VMs: -2})
	want := Usage{VMs: 0, ReplicaSets: 4, Services: 6, VolumeClaims: 8, ConfigMaps: 10, Secrets: 12, StorageGB: 14, CPUMHz: 16, MemMB: 18}
	if got != want {
		t.Fatalf("Add = %+v, want %+v", got, want)
	}
}

func TestApply(t *testing.T) {
	ten, zero, unset := int64(10), int64(0), int64(-1)
	base := limits(func(l *Limits) { l.VMs = 5; l.CPUMHz = 4000 })
	tests := []struct {
		name string
		c    Change
		want Limits
	}{
		{"nothing given changes nothing", Change{}, base},
		{"only vms", Change{VMs: &ten}, limits(func(l *Limits) { l.VMs = 10; l.CPUMHz = 4000 })},
		{"zero is a value, not absence", Change{Secrets: &zero}, limits(func(l *Limits) { l.VMs = 5; l.CPUMHz = 4000; l.Secrets = 0 })},
		{"-1 unsets", Change{CPUMHz: &unset}, limits(func(l *Limits) { l.VMs = 5 })},
		{"every field", Change{&ten, &ten, &ten, &ten, &ten, &ten, &ten, &ten, &ten}, Limits{10, 10, 10, 10, 10, 10, 10, 10, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := base.Apply(tt.c); got != tt.want {
				t.Fatalf("Apply = %+v, want %+v", got, tt.want)
			}
		})
	}
	var c Change
	if err := json.Unmarshal([]byte(`{"vms":10,"secrets":0}`), &c); err != nil {
		t.Fatal(err)
	}
	if got := base.Apply(c); got != limits(func(l *Limits) { l.VMs = 10; l.CPUMHz = 4000; l.Secrets = 0 }) {
		t.Fatalf("Apply(JSON change) = %+v", got)
	}
}

func TestLimitsJSON(t *testing.T) {
	var l Limits
	if err := json.Unmarshal([]byte(`{"vms":10,"memMB":0}`), &l); err != nil {
		t.Fatal(err)
	}
	if want := limits(func(l *Limits) { l.VMs = 10; l.MemMB = 0 }); l != want {
		t.Fatalf("absent fields must decode as no limit: got %+v, want %+v", l, want)
	}
	b, err := json.Marshal(Unlimited())
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"vms":-1,"replicasets":-1,"services":-1,"volumeclaims":-1,"configmaps":-1,"secrets":-1,"storageGB":-1,"cpuMHz":-1,"memMB":-1}`
	if string(b) != want {
		t.Fatalf("json = %s\nwant %s", b, want)
	}
	if err := json.Unmarshal([]byte(`{"vms":"x"}`), &l); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

func TestLimitsConvertFromAPI(t *testing.T) {
	in := api.QuotaLimits{VMs: 1, MemMB: 9}
	if got := Limits(in); got.VMs != 1 || got.MemMB != 9 {
		t.Fatalf("Limits(api.QuotaLimits) = %+v", got)
	}
}
