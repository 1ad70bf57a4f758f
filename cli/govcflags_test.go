package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podsphere/podsphere/api"
)

// govcFlags reads testdata/govc-flags.txt: verb → govc's flags (no dash).
func govcFlags(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("testdata/govc-flags.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		var flags []string
		for _, fl := range fields[1:] {
			flags = append(flags, strings.TrimPrefix(fl, "-"))
		}
		out[fields[0]] = flags
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// offline runs psc with a client that must not be reached: what these
// tests check is decided before psc talks to vcenter.
func offline(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	e := &Env{Out: &out, Err: &errb, Now: time.Now, Location: time.UTC,
		NewAPI: func(string, string) (API, error) { return nil, errors.New("no vcenter in this test") }}
	vars := map[string]string{"PSC_TOKEN": "t"}
	code := Run(context.Background(), e, func(k string) string { return vars[k] }, args)
	return out.String(), errb.String(), code
}

// TestGovcFlagsAcceptedOrRefused checks that every flag govc's USAGE.md
// lists for a verb psc has is either one of psc's flags or refused by
// name, exit 2, before anything is changed; and that the refused table
// names only flags govc has and psc does not.
func TestGovcFlagsAcceptedOrRefused(t *testing.T) {
	t.Parallel()
	govc := govcFlags(t)
	root := NewRootCommand(&Env{}, func(string) string { return "" })
	verbs := map[string]bool{}
	for _, c := range root.Commands() {
		verbs[c.Name()] = true
	}
	for verb, refused := range govcRefused {
		cmd, _, err := root.Find([]string{verb})
		if err != nil || cmd == root {
			t.Errorf("govcRefused has %s, a verb psc does not have", verb)
			continue
		}
		for _, fl := range refused {
			if !slices.Contains(govc[verb], fl) {
				t.Errorf("govcRefused[%s] has -%s, which govc's %s does not list", verb, fl, verb)
			}
			// A flag psc has gained must leave the table (and docs/cli.md).
			if f := cmd.Flags().Lookup(fl); f != nil {
				if _, ok := f.Value.(*refusedFlag); !ok {
					t.Errorf("govcRefused[%s] has -%s, but psc's %s has that flag now: drop it from the table and docs/cli.md", verb, fl, verb)
				}
			}
		}
	}
	for verb, flags := range govc {
		if verb == "common" || !verbs[verb] {
			continue // a govc verb psc lacks says so as a whole (TestUnknownVerb)
		}
		cmd, _, err := root.Find([]string{verb})
		if err != nil {
			t.Fatal(err)
		}
		for _, fl := range append(flags, govc["common"]...) {
			f := cmd.Flags().Lookup(fl)
			if f == nil && len(fl) == 1 {
				f = cmd.Flags().ShorthandLookup(fl)
			}
			if f == nil {
				f = cmd.InheritedFlags().Lookup(fl)
			}
			if f == nil {
				t.Errorf("%s: govc's flag -%s is neither psc's nor in govcRefused", verb, fl)
				continue
			}
			if _, ok := f.Value.(*refusedFlag); !ok {
				continue
			}
			if !slices.Contains(govcRefused[verb], fl) && !slices.Contains(govcCommonRefused, fl) {
				t.Errorf("%s: -%s is refused but not in govcRefused", verb, fl)
			}
			_, errOut, code := offline(verb, "-"+fl, "x")
			want := "psc: psc does not support govc's flag -" + fl + " of " + verb
			if code != api.ExitUsage || !strings.HasPrefix(errOut, want) {
				t.Errorf("psc %s -%s x: exit %d, %q; want %d, %q", verb, fl, code, errOut, api.ExitUsage, want)
			}
		}
	}
}

// TestGovcFlagsDocumented keeps docs/cli.md's refused-flags table in step
// with govcRefused.
func TestGovcFlagsDocumented(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	for verb := range govcRefused {
		if row := govcFlagDoc(verb); !strings.Contains(string(b), row) {
			t.Errorf("docs/cli.md lacks the row %q", row)
		}
	}
}

func TestUnknownVerb(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"host.esxcli", "-host", "esx-01", "network", "ip"}, `psc: unknown verb "host.esxcli" (psc has no such verb; nearest: host.info)`},
		{[]string{"-u", "http://vc:8989", "vm.craete", "web"}, `psc: unknown verb "vm.craete" (psc has no such verb; nearest: vm.create)`},
		{[]string{"--dc=dc1", "snapshot.tree", "-vm", "web-01"}, `psc: unknown verb "snapshot.tree"`},
	} {
		out, errOut, code := offline(tc.args...)
		if code != api.ExitUsage || !strings.HasPrefix(errOut, tc.want) || out != "" {
			t.Errorf("psc %q: exit %d, %q, %q; want %d, %q", tc.args, code, out, errOut, api.ExitUsage, tc.want)
		}
	}
	if _, errOut, code := offline("guest.run", "-vm", "web-01"); code != api.ExitUsage || !strings.Contains(errOut, "want a command") {
		t.Errorf("guest.run -vm VM without a command: exit %d, %q", code, errOut)
	}
	if out, errOut, code := offline("help", "vm.info"); code != 0 || !strings.Contains(out, "vm.info") {
		t.Errorf("psc help vm.info: exit %d, %q", code, errOut)
	}
	// A verb psc has, with a global flag before it, is not mistaken.
	if _, errOut, code := offline("-u", "http://vc:8989", "vm.info", "-k", "web"); !strings.Contains(errOut, "flag -k of vm.info") {
		t.Errorf("psc -u URL vm.info -k: exit %d, %q", code, errOut)
	}
}

func TestGovcTypeNames(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ClusterComputeResource": api.KindCluster, "c": api.KindCluster, "r": api.KindCluster,
		"HostSystem": api.KindHost, "VirtualMachine": api.KindVirtualMachine, "ResourcePool": api.KindResourcePool,
		"Folder": KindFolder, "Datacenter": api.KindDatacenter, "m": api.KindVirtualMachine,
	} {
		if got, err := parseType(in); err != nil || got != want {
			t.Errorf("parseType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := parseType("Datastore")
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "podsphere has no Datastore objects") {
		t.Errorf("parseType(Datastore) = %v", err)
	}
}

// TestGovcForms runs govc's own command lines against a lab inventory:
// web-01 (on, dev, esx-01), web-02 (on, dev/web, esx-02), db-01 (off).
func TestGovcForms(t *testing.T) {
	t.Parallel()
	l := labInventory(t)
	// Heartbeat times move between two runs; the rest must be the same.
	steady := func(s string) string {
		var keep []string
		for _, line := range strings.Split(s, "\n") {
			if !strings.Contains(line, "Last seen:") {
				keep = append(keep, line)
			}
		}
		return strings.Join(keep, "\n")
	}
	same := func(a, b []string) {
		t.Helper()
		if x, y := steady(l.ok(a...)), steady(l.ok(b...)); x != y || x == "" {
			t.Errorf("psc %q printed\n%s\npsc %q printed\n%s", a, x, b, y)
		}
	}
	same([]string{"vm.info", "-vm", "web-01"}, []string{"vm.info", "web-01"})
	same([]string{"vm.info", "-vm.ipath", "/dc1/vm/web-01"}, []string{"vm.info", "web-01"})
	same([]string{"host.info", "-host", "esx-01"}, []string{"host.info", "esx-01"})
	same([]string{"vm.info", "-waitip", "web-01"}, []string{"vm.info", "web-01"})

	if out := l.ok("ls", "-t", "ClusterComputeResource", "host"); out != labCluster+"\n" {
		t.Errorf("ls -t ClusterComputeResource host = %q, want %s", out, labCluster)
	}
	finds := []struct {
		args []string
		want string
	}{
		{[]string{"find", ".", "-type", "m", "-runtime.powerState", "poweredOn"}, "/dc1/vm/web-01\n/dc1/vm/web-02\n"},
		{[]string{"find", "-type", "VirtualMachine", "-runtime.powerState", "poweredOff"}, "/dc1/vm/db-01\n"},
		{[]string{"find", "-type", "m", "-runtime.host", "esx-02"}, "/dc1/vm/web-02\n"},
		{[]string{"find", "-resourcePool", "dev"}, "/dc1/vm/web-01\n"},
		{[]string{"find", "-type", "h", "-runtime.connectionState", "connected"}, labCluster + "/esx-01\n" + labCluster + "/esx-02\n"},
		{[]string{"find", "-type", "ClusterComputeResource", "-type", "h"}, labCluster + "\n" + labCluster + "/esx-01\n" + labCluster + "/esx-02\n" + labCluster + "/esx-03\n"},
		{[]string{"find", "-name", "web-*", "-runtime.powerState", "powered*", "-resourcePool", labDev + "/web"}, "/dc1/vm/web-02\n"},
	}
	for _, f := range finds {
		if out := l.ok(f.args...); out != f.want {
			t.Errorf("psc %q = %q, want %q", f.args, out, f.want)
		}
	}
	if _, errOut, code := l.psc("", nil, "find", "-type", "h", "-runtime.powerState", "poweredOn"); code != api.ExitUsage || !strings.Contains(errOut, "VM properties") {
		t.Errorf("find -type h -runtime.powerState: exit %d, %q", code, errOut)
	}

	// tree -L 2 /dc1/host/c1: the cluster, its hosts and root pool, the
	// root pool's children; not their VMs.
	if out := l.ok("tree", "-p", "-L", "2", labCluster); strings.Contains(out, "web-01") || !strings.Contains(out, "esx-01 [host") || !strings.Contains(out, "dev [pool") {
		t.Errorf("tree -L 2 %s:\n%s", labCluster, out)
	}
	if out := l.ok("tree", "-L", "0", labCluster); !strings.Contains(out, "web-01") {
		t.Errorf("tree -L 0 (all) %s lacks web-01:\n%s", labCluster, out)
	}

	// events -type keeps only those types; tasks PATH only that object's.
	out := l.ok("events", "-n", "100", "-type", "VmPoweredOnEvent")
	if !strings.Contains(out, "[VmPoweredOnEvent]") {
		t.Errorf("events -type VmPoweredOnEvent printed no such event:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(line, "[VmPoweredOnEvent]") {
			t.Errorf("events -type VmPoweredOnEvent printed %q", line)
		}
	}
	out = l.ok("tasks", "web-01")
	if !strings.Contains(out, "PowerOnVM_Task") {
		t.Errorf("tasks web-01 lacks its power-on:\n%s", out)
	}
	if strings.Contains(out, "web-02") || strings.Contains(out, "db-01") {
		t.Errorf("tasks web-01 shows other objects' tasks:\n%s", out)
	}

	// vm.power -force: a reset of a powered-off VM is skipped, not an
	// error; -off of an off VM is nothing to do.
	before := l.get("/dc1/vm/db-01")
	if _, errOut, code := l.psc("", nil, "vm.power", "-r", "-force", "db-01"); code != 0 || !strings.Contains(errOut, "ignored (-force)") {
		t.Errorf("vm.power -r -force on a powered-off VM: exit %d, %q", code, errOut)
	}
	if _, errOut, code := l.psc("", nil, "vm.power", "-reset", "db-01"); code != api.ExitConflict {
		t.Errorf("vm.power -reset without -force on a powered-off VM: exit %d, %q; want %d", code, errOut, api.ExitConflict)
	}
	l.ok("vm.power", "-off", "-force", "-wait", "-vm", "db-01")
	if _, errOut, code := l.psc("", nil, "vm.power", "-on", "-wait=false", "db-01"); code != api.ExitUsage || !strings.Contains(errOut, "-wait=false") {
		t.Errorf("vm.power -wait=false: exit %d, %q", code, errOut)
	}
	if got := l.get("/dc1/vm/db-01"); vmSpec(got).PowerState != api.PoweredOff || vmSpec(got).ResetGeneration != vmSpec(before).ResetGeneration {
		t.Errorf("db-01 after -force: %+v", vmSpec(got))
	}

	// A refused govc flag changes nothing.
	if _, errOut, code := l.psc("", nil, "vm.change", "-vm", "web-01", "-c", "4", "-annotation", "x"); code != api.ExitUsage || !strings.Contains(errOut, "-annotation of vm.change") {
		t.Errorf("vm.change -annotation: exit %d, %q", code, errOut)
	}
	if n := vmSpec(l.get("/dc1/vm/web-01")).NumCPU; n != 1 {
		t.Errorf("a refused vm.change changed web-01 to %d vCPU", n)
	}
	l.ok("vm.change", "-vm", "web-01", "-m", "2048")
	if m := vmSpec(l.get("/dc1/vm/web-01")).MemoryMB; m != 2048 {
		t.Errorf("vm.change -vm web-01 -m 2048: %d MB", m)
	}
}
