// Package scenario runs data-driven test scripts, in the style of etcd
// raft's and CockroachDB's testdata files: each command line is followed
// by "----" and the output it must produce, up to a blank line; lines
// starting with # are comments. The HA planner's and the controllers'
// scenario tests share it.
package scenario

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// Run runs the script in file: do gets each command line and returns its
// output ("" prints as "ok"). Outputs that differ are test errors; with
// rewrite, the file is rewritten with what do produced instead.
func Run(t *testing.T, file string, rewrite bool, do func(line string) string) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	var out strings.Builder
	changed := false
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		out.WriteString(line + "\n")
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		j := i + 1
		if j >= len(lines) || lines[j] != "----" {
			t.Fatalf("%s:%d: %q has no ---- block", file, i+1, line)
		}
		var want []string
		for j++; j < len(lines) && lines[j] != ""; j++ {
			want = append(want, lines[j])
		}
		got := strings.TrimRight(do(line), "\n")
		if got == "" {
			got = "ok"
		}
		if got != strings.Join(want, "\n") {
			changed = true
			if !rewrite {
				t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, i+1, line, got, strings.Join(want, "\n"))
			}
		}
		out.WriteString("----\n" + got + "\n")
		i = j - 1
	}
	if rewrite && changed {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
