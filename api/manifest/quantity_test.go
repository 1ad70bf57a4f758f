package manifest

import (
	"strings"
	"testing"
)

func TestQuantityConversions(t *testing.T) {
	tests := []struct {
		in   string
		conv string // MHz, MB, GB, Count
		want int64
	}{
		{"500m", "MHz", 500},
		{"1", "MHz", 1000},
		{"2.5", "MHz", 2500},
		{"0.1", "MHz", 100},
		{".5", "MHz", 500},
		{"0.5m", "MHz", 1}, // rounds up
		{"1500000u", "MHz", 1500},
		{"100n", "MHz", 1},
		{"1e3", "MHz", 1_000_000},
		{"2E-1", "MHz", 200},
		{"+3", "MHz", 3000},
		{"0", "MHz", 0},
		{"512Mi", "MB", 512},
		{"1Gi", "MB", 1024},
		{"1G", "MB", 954}, // 10^9 bytes is 953.67 MiB
		{"1000M", "MB", 954},
		{"128974848", "MB", 123},
		{"128974849", "MB", 124},
		{"129e6", "MB", 124},
		{"1Ki", "MB", 1},
		{"1Ti", "MB", 1 << 20},
		{"2k", "MB", 1},
		{"1.5Gi", "MB", 1536},
		{"10Gi", "GB", 10},
		{"10G", "GB", 10}, // 9.31 GiB, rounded up
		{"1Ti", "GB", 1024},
		{"1Pi", "GB", 1 << 20},
		{"1Ei", "GB", 1 << 30},
		{"1E", "GB", 931322575},
		{"10", "Count", 10},
		{"1k", "Count", 1000},
		{"2e2", "Count", 200},
	}
	for _, tt := range tests {
		q, err := ParseQuantity(tt.in)
		if err != nil {
			t.Errorf("ParseQuantity(%q): %v", tt.in, err)
			continue
		}
		got, err := convert(q, tt.conv)
		if err != nil || got != tt.want {
			t.Errorf("%q.%s() = %d, %v; want %d", tt.in, tt.conv, got, err, tt.want)
		}
		if q.String() != tt.in {
			t.Errorf("String() = %q, want %q", q.String(), tt.in)
		}
	}
}

func convert(q Quantity, conv string) (int64, error) {
	switch conv {
	case "MHz":
		return q.MHz()
	case "MB":
		return q.MB()
	case "GB":
		return q.GB()
	}
	return q.Count()
}

func TestQuantityErrors(t *testing.T) {
	tests := []struct {
		in, conv, want string
	}{
		{"", "", `"" is not a quantity: it is empty`},
		{"abc", "", `"abc" is not a quantity: want a number`},
		{"1.2.3", "", `"1.2.3" is not a quantity: unknown suffix ".3"`},
		{"1mi", "", `unknown suffix "mi"`},
		{"1KB", "", `unknown suffix "KB"`},
		{"1 Gi", "", `unknown suffix " Gi"`},
		{"-", "", `want a number`},
		{".", "", `want a number`},
		{"1e", "", `unknown suffix "e"`},
		{"1e+", "", `unknown suffix "e+"`},
		{"1e99", "", `exponent is beyond ±40`},
		{"1e99999999999999999999", "", `exponent is beyond ±40`},
		{strings.Repeat("9", 65), "", `longer than 64 characters`},
		{"-1", "MHz", `"-1" is negative`},
		{"-500Mi", "MB", `"-500Mi" is negative`},
		{"1.5", "Count", `"1.5" is not a whole number`},
		{"500m", "Count", `"500m" is not a whole number`},
		{"1e40", "MB", `is too large`},
		{"9223372036854775808", "Count", `is too large`},
		{"9300000000000000", "MHz", `is too large`},
	}
	for _, tt := range tests {
		q, err := ParseQuantity(tt.in)
		if err == nil && tt.conv != "" {
			_, err = convert(q, tt.conv)
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q (%s): error %v, want it to contain %q", tt.in, tt.conv, err, tt.want)
		}
	}
}
