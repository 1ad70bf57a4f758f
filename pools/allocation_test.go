package pools

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/podsphere/podsphere/api"
)

func TestDefaultAllocation(t *testing.T) {
	got := DefaultAllocation()
	want := Allocation{Reservation: 0, Limit: -1, Expandable: true, Shares: Shares{Level: "normal"}}
	if got != want {
		t.Fatalf("DefaultAllocation() = %+v, want %+v (govc pool.create defaults)", got, want)
	}
	if err := got.Validate("cpu"); err != nil {
		t.Fatalf("default allocation is invalid: %v", err)
	}
}

func TestAllocationConvertsFromAPI(t *testing.T) {
	in := api.Allocation{Reservation: 10, Limit: 20, Expandable: true, Shares: api.Shares{Level: "custom", Value: 7}}
	got := Allocation(in)
	if got.Reservation != 10 || got.Limit != 20 || !got.Expandable || got.Shares.Value != 7 {
		t.Fatalf("Allocation(api.Allocation) = %+v", got)
	}
}

func TestAllocationValidate(t *testing.T) {
	normal := Shares{Level: "normal"}
	tests := []struct {
		name    string
		field   string
		a       Allocation
		wantErr string // "" means valid
	}{
		{"defaults", "cpu", DefaultAllocation(), ""},
		{"fixed with limit", "cpu", Allocation{Reservation: 1000, Limit: 1000, Shares: normal}, ""},
		{"limit zero", "mem", Allocation{Limit: 0, Shares: normal}, ""},
		{"empty shares level means normal", "cpu", Allocation{Limit: -1}, ""},
		{"custom shares", "cpu", Allocation{Limit: -1, Shares: Shares{Level: "custom", Value: 1}}, ""},
		{"negative reservation", "cpu", Allocation{Reservation: -1, Limit: -1, Shares: normal},
			"cpu.reservation -1 is negative"},
		{"limit below -1", "mem", Allocation{Limit: -2, Shares: normal},
			"mem.limit -2 is invalid: use -1 for unlimited or a value >= 0"},
		{"limit below reservation", "cpu", Allocation{Reservation: 1000, Limit: 500, Shares: normal},
			"cpu.limit 500 is below cpu.reservation 1000"},
		{"bad shares level", "mem", Allocation{Limit: -1, Shares: Shares{Level: "medium"}},
			`mem.shares level "medium" is not low, normal, high or a number`},
		{"custom shares zero", "cpu", Allocation{Limit: -1, Shares: Shares{Level: "custom"}},
			"cpu.shares custom value 0 must be positive"},
		{"custom shares negative", "cpu", Allocation{Limit: -1, Shares: Shares{Level: "custom", Value: -5}},
			"cpu.shares custom value -5 must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.a.Validate(tt.field)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
			if !errors.Is(err, api.ErrInvalid) {
				t.Fatalf("Validate() error %v does not wrap api.ErrInvalid", err)
			}
		})
	}
}

func TestSharesValue(t *testing.T) {
	tests := []struct {
		name   string
		s      Shares
		r      Resource
		numCPU int
		memMB  int64
		isPool bool
		want   int64
	}{
		{"vm cpu low 2 vCPU", Shares{Level: "low"}, CPU, 2, 4096, false, 1000},
		{"vm cpu normal 2 vCPU", Shares{Level: "normal"}, CPU, 2, 4096, false, 2000},
		{"vm cpu high 2 vCPU", Shares{Level: "high"}, CPU, 2, 4096, false, 4000},
		{"vm mem low 4096 MB", Shares{Level: "low"}, Memory, 2, 4096, false, 20480},
		{"vm mem normal 4096 MB", Shares{Level: "normal"}, Memory, 2, 4096, false, 40960},
		{"vm mem high 4096 MB", Shares{Level: "high"}, Memory, 2, 4096, false, 81920},
		{"vm empty level is normal", Shares{}, CPU, 1, 0, false, 1000},
		{"pool cpu low", Shares{Level: "low"}, CPU, 0, 0, true, 2000},
		{"pool cpu normal", Shares{Level: "normal"}, CPU, 0, 0, true, 4000},
		{"pool cpu high", Shares{Level: "high"}, CPU, 0, 0, true, 8000},
		{"pool mem low", Shares{Level: "low"}, Memory, 0, 0, true, 81920},
		{"pool mem normal", Shares{Level: "normal"}, Memory, 0, 0, true, 163840},
		{"pool mem high", Shares{Level: "high"}, Memory, 0, 0, true, 327680},
		{"pool ignores vm sizing", Shares{Level: "normal"}, CPU, 64, 1 << 20, true, 4000},
		{"custom vm", Shares{Level: "custom", Value: 1234}, CPU, 8, 0, false, 1234},
		{"custom pool", Shares{Level: "custom", Value: 99}, Memory, 0, 0, true, 99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SharesValue(tt.s, tt.r, tt.numCPU, tt.memMB, tt.isPool); got != tt.want {
				t.Fatalf("SharesValue() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseShares(t *testing.T) {
	tests := []struct {
		in      string
		want    Shares
		wantErr bool
	}{
		{"low", Shares{Level: "low"}, false},
		{"normal", Shares{Level: "normal"}, false},
		{"high", Shares{Level: "high"}, false},
		{"2500", Shares{Level: "custom", Value: 2500}, false},
		{"0", Shares{}, true},
		{"-3", Shares{}, true},
		{"custom", Shares{}, true},
		{"", Shares{}, true},
	}
	for _, tt := range tests {
		got, err := ParseShares(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseShares(%q) = %+v, %v; want %+v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, api.ErrInvalid) {
			t.Errorf("ParseShares(%q) error %v does not wrap api.ErrInvalid", tt.in, err)
		}
	}
}

func TestResourceString(t *testing.T) {
	if CPU.String() != "cpu" || Memory.String() != "memory" {
		t.Fatalf("String() = %q, %q", CPU, Memory)
	}
	if CPU.Unit() != "MHz" || Memory.Unit() != "MB" {
		t.Fatalf("Unit() = %q, %q", CPU.Unit(), Memory.Unit())
	}
}

func TestAllocationJSON(t *testing.T) {
	b, err := json.Marshal(DefaultAllocation())
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"reservation":0,"limit":-1,"expandable":true,"shares":{"level":"normal"}}`
	if string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
}
