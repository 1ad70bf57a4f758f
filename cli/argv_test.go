package cli

import (
	"slices"
	"testing"
)

func TestNormalizeArgs(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"empty", nil, []string{}},
		{"verb only", []string{"ls"}, []string{"ls"}},
		{"long flag with value", []string{"pool.create", "-cpu.reservation=1000", "dev"}, []string{"pool.create", "--cpu.reservation=1000", "dev"}},
		{"negative value stays", []string{"pool.create", "-mem.limit", "-1", "dev"}, []string{"pool.create", "--mem.limit", "-1", "dev"}},
		{"negative in equals", []string{"-cpu.limit=-1"}, []string{"--cpu.limit=-1"}},
		{"bool long", []string{"vm.power", "-on", "web-01"}, []string{"vm.power", "--on", "web-01"}},
		{"json", []string{"ls", "-json"}, []string{"ls", "--json"}},
		{"shorthand stays", []string{"-u", "http://x", "vm.power", "-s", "-r"}, []string{"-u", "http://x", "vm.power", "-s", "-r"}},
		{"shorthand with value stays", []string{"vm.create", "-c=2", "-m=2048"}, []string{"vm.create", "-c=2", "-m=2048"}},
		{"already double dash", []string{"--json", "--dc=dc1"}, []string{"--json", "--dc=dc1"}},
		{"dashed names", []string{"-drs-enabled=false", "-ha-admission-control-enabled"}, []string{"--drs-enabled=false", "--ha-admission-control-enabled"}},
		{"stdin dash stays", []string{"apply", "-f", "-"}, []string{"apply", "-f", "-"}},
		{"negative numbers", []string{"-1", "-10", "-1.5", "-.5"}, []string{"-1", "-10", "-1.5", "-.5"}},
		{"value with spaces", []string{"-cmd=httpd -f -p 80"}, []string{"--cmd=httpd -f -p 80"}},
		{"after double dash untouched", []string{"vm.create", "--", "-json", "-1"}, []string{"vm.create", "--", "-json", "-1"}},
		{"odd characters stay", []string{"-a/b", "-x!"}, []string{"-a/b", "-x!"}},
		{"digit first stays", []string{"-9x"}, []string{"-9x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NormalizeArgs(tt.in)
			if !slices.Equal(got, tt.want) {
				t.Errorf("NormalizeArgs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
