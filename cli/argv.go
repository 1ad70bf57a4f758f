package cli

import "strings"

// NormalizeArgs rewrites govc-style single-dash long flags (-name, -name=value)
// into the --name form pflag understands, so `psc pool.create -cpu.limit=-1 dev`
// and `psc vm.power -on web-01` work as they do with govc. Single letters
// (-u, -c, -n) stay shorthands, negative numbers (-1) stay values, and
// everything after "--" is passed through untouched.
func NormalizeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if isSingleDashLong(a) {
			a = "-" + a
		}
		out = append(out, a)
	}
	return out
}

// isSingleDashLong says whether a is -name or -name=value with a name of two
// or more characters that starts with a letter.
func isSingleDashLong(a string) bool {
	if len(a) < 3 || a[0] != '-' || a[1] == '-' {
		return false
	}
	name := a[1:]
	if i := strings.IndexByte(name, '='); i >= 0 {
		name = name[:i]
	}
	if len(name) < 2 || !isLetter(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !isLetter(c) && !(c >= '0' && c <= '9') && c != '-' && c != '.' && c != '_' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
