package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// govc's flag forms, added to every verb after the tree is built so that a
// govc user's command lines either work or say plainly what psc lacks,
// instead of failing with pflag's "unknown flag".

// govcObjectFlags are the verbs where govc (or a govc habit) names the
// object with a flag: `vm.change -vm web-01`, `host.info -host esx-01`. The
// flag's value joins the positional arguments, first, so both forms work
// and mean the same. govc's -vm.ipath / -host.ipath ("find by inventory
// path") are the same thing in podsphere, where every object has one path.
// guest.run has its own -vm (its command follows the VM).
var govcObjectFlags = map[string]string{
	"vm.change":              "vm",
	"vm.info":                "vm",
	"vm.power":               "vm",
	"vm.ip":                  "vm",
	"vm.destroy":             "vm",
	"vm.migrate":             "vm",
	"vm.logs":                "vm",
	"host.info":              "host",
	"host.maintenance.enter": "host",
	"host.maintenance.exit":  "host",
}

// govcCommonRefused are govc's options common to every verb that psc has no
// use for (SOAP, TLS, sessions) or no way to honour (finding objects by
// UUID, DNS name or IP). -u, -json and -dc are psc's own global flags.
var govcCommonRefused = []string{
	"k", "debug", "dump", "xml", "cert", "key", "trace", "verbose", "persist-session",
	"tls-ca-certs", "tls-known-hosts", "vim-namespace", "vim-version",
	"host.dns", "host.ip", "host.uuid", "vm.dns", "vm.ip", "vm.path", "vm.uuid",
	// By inventory path is what -vm / -host mean in psc, on the verbs that
	// take a VM or host (govcObjectFlags); elsewhere refused.
	"host.ipath", "vm.ipath",
}

// govcRefused lists, per verb psc shares with govc, govc's flags psc does
// not support (testdata/govc-flags.txt holds govc's whole list; the test
// keeps the two in step). docs/cli.md lists them with the reason.
var govcRefused = map[string][]string{
	"about":                   {"c", "l"},
	"cluster.change":          {"drs-vmotion-rate", "vsan-autoclaim", "vsan-enabled"},
	"cluster.create":          {"folder"},
	"cluster.group.ls":        {"l"},
	"cluster.override.change": {"drs-enabled", "drs-mode", "ha-additional-delay", "ha-ready-condition"},
	"cluster.rule.create":     {"host-affine-group", "host-anti-affine-group", "l", "vm-group"},
	"cluster.rule.ls":         {"l", "name"},
	"cluster.rule.remove":     {"l"},
	"datacenter.create":       {"folder"},
	"events":                  {"force", "l"},
	"find":                    {"I", "i", "l", "maxdepth", "p"},
	"guest.run":               {"C", "d", "e", "i", "l"},
	"host.maintenance.exit":   {"timeout"},
	"library.import":          {"m", "n", "pull", "t"},
	"ls":                      {"I", "L", "i"},
	"pool.info":               {"a", "p"},
	"tasks":                   {"b", "e", "l", "s"},
	"tree":                    {"C", "l"},
	"vm.change": {"annotation", "cpu-hot-add-enabled", "e", "f", "ft-encryption-mode", "g", "iommu-enabled",
		"latency", "managed-by", "memory-hot-add-enabled", "memory-pin", "migrate-encryption", "name",
		"nested-hv-enabled", "scheduled-hw-upgrade-policy", "sync-time-with-host", "uuid", "vpmc-enabled"},
	"vm.create": {"annotation", "datastore-cluster", "disk", "disk-datastore", "disk.controller",
		"disk.eager", "disk.thick", "ds", "firmware", "folder", "force", "g", "iso", "iso-datastore", "link",
		"net", "net.adapter", "net.address", "net.protocol", "profile", "version"},
	"vm.info":    {"e", "g", "t"},
	"vm.ip":      {"a", "esxcli", "n", "v4"},
	"vm.migrate": {"folder", "net.adapter", "net.address", "net.protocol"},
	"vm.power":   {"M", "standby"},
}

// installGovcFlags adds govc's object flags and the refused flags to every
// verb under root.
func installGovcFlags(root *cobra.Command) {
	for _, cmd := range root.Commands() {
		if cmd.Name() == "help" {
			continue
		}
		installGovcFlagsOn(cmd)
		installGovcFlags(cmd)
	}
}

func installGovcFlagsOn(cmd *cobra.Command) {
	f := cmd.Flags()
	var objects []string
	if name := govcObjectFlags[cmd.Name()]; name != "" && f.Lookup(name) == nil {
		what := map[string]string{"vm": "VM", "host": "host"}[name]
		f.StringArrayVar(&objects, name, nil, "the "+what+" (govc's form; the same as giving it as an argument)")
		f.StringArrayVar(&objects, name+".ipath", nil, "the "+what+" by inventory path (govc's form)")
		_ = f.MarkHidden(name + ".ipath")
	}
	var refused []*refusedFlag
	for _, name := range append(append([]string{}, govcCommonRefused...), govcRefused[cmd.Name()]...) {
		if registered(cmd, name) {
			continue // psc has it (a verb may gain a flag before this table loses it)
		}
		r := &refusedFlag{name: name}
		shorthand := ""
		if len(name) == 1 {
			shorthand = name
		}
		fl := f.VarPF(r, name, shorthand, "govc's flag, not supported by psc")
		fl.NoOptDefVal = "true" // -force alone, -maxdepth=2 both parse
		fl.Hidden = true
		refused = append(refused, r)
	}
	args := cmd.Args
	cmd.Args = func(c *cobra.Command, a []string) error {
		for _, r := range refused {
			if r.set {
				return usagef("psc does not support govc's flag -%s of %s (docs/cli.md lists what psc leaves out)", r.name, c.Name())
			}
		}
		if args == nil {
			return nil
		}
		return args(c, append(append([]string{}, objects...), a...))
	}
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, a []string) error {
			return run(c, append(append([]string{}, objects...), a...))
		}
	}
}

// registered says whether cmd (or a parent, for global flags) has a flag
// of that name or, for one letter, that shorthand.
func registered(cmd *cobra.Command, name string) bool {
	for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
		if fs.Lookup(name) != nil {
			return true
		}
		if len(name) == 1 && fs.ShorthandLookup(name) != nil {
			return true
		}
	}
	return false
}

// refusedFlag is a govc flag psc parses only to refuse it by name.
type refusedFlag struct {
	name string
	set  bool
}

func (r *refusedFlag) String() string   { return "" }
func (r *refusedFlag) Set(string) error { r.set = true; return nil }
func (r *refusedFlag) Type() string     { return "string" }

// unknownVerb reports a verb psc does not have, before cobra would parse
// the flags given with it as the root command's ("unknown flag: --host").
// args are normalized; nil when the first word names a verb or there is
// none.
func unknownVerb(root *cobra.Command, args []string) error {
	verb := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") {
			// A global flag's value is not the verb: -u URL, --dc DC.
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			var fl *pflag.Flag
			if strings.HasPrefix(a, "--") {
				fl = root.PersistentFlags().Lookup(name)
			} else if len(name) == 1 {
				fl = root.PersistentFlags().ShorthandLookup(name)
			}
			if fl != nil && fl.NoOptDefVal == "" {
				i++
			}
			continue
		}
		verb = a
		break
	}
	if verb == "" {
		return nil
	}
	root.InitDefaultHelpCmd() // cobra adds "help" only when it executes
	var names []string
	for _, c := range root.Commands() {
		if c.Name() == verb || c.HasAlias(verb) {
			return nil
		}
		if !c.Hidden {
			names = append(names, c.Name())
		}
	}
	return usagef("unknown verb %q (psc has no such verb; nearest: %s)", verb, nearest(verb, names))
}

// nearest is the name closest to word by edit distance, ties going to the
// one sharing the longest prefix (host.esxcli → host.info, not ha.plan).
func nearest(word string, names []string) string {
	sort.Strings(names)
	best, bestD, bestP := "", -1, -1
	for _, n := range names {
		d := editDistance(word, n)
		p := commonPrefix(word, n)
		if bestD < 0 || d < bestD || d == bestD && p > bestP {
			best, bestD, bestP = n, d, p
		}
	}
	return best
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// editDistance is Levenshtein's distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// govcFlagDoc is one line of docs/cli.md's refused-flags table.
func govcFlagDoc(verb string) string {
	fl := govcRefused[verb]
	out := make([]string, len(fl))
	for i, f := range fl {
		out[i] = "-" + f
	}
	return fmt.Sprintf("| %s | %s |", verb, strings.Join(out, " "))
}
