package cli

// The VM template flags that vm.create shares with the workload create
// verbs, and where a new VM or workload of a namespace goes.

import (
	"context"
	"strings"

	"github.com/spf13/pflag"

	"github.com/podsphere/podsphere/api"
)

// templateFlags are the flags that make a VM spec, shared by vm.create and
// the workload create verbs: size, image, command, environment, ports and
// resource allocation (govc's vm.create flags).
type templateFlags struct {
	fs      *pflag.FlagSet
	cpus    int
	memMB   int64
	image   string
	command string
	envs    []string
	ports   []int
	alloc   allocFlags
}

func (t *templateFlags) register(f *pflag.FlagSet) {
	t.fs = f
	f.IntVarP(&t.cpus, "c", "c", 1, "number of vCPUs")
	f.Int64VarP(&t.memMB, "m", "m", 1024, "memory in MB")
	f.StringVar(&t.image, "image", "busybox", "container image")
	f.StringVar(&t.command, "cmd", "", "command line (default '"+defaultCommand+"' for the default busybox image; '' keeps the image's own)")
	f.StringArrayVarP(&t.envs, "e", "e", nil, "environment variable KEY=VAL (repeatable)")
	f.IntSliceVar(&t.ports, "port", nil, "container port (repeatable)")
	t.alloc.register(f, true, false)
}

// spec checks the flags and makes the VM spec they describe: one container
// named main, powered off, in no pool yet.
func (t *templateFlags) spec(restartPolicy string) (api.VMSpec, error) {
	if t.cpus < 1 {
		return api.VMSpec{}, usagef("-c %d: a VM needs at least one vCPU", t.cpus)
	}
	if t.memMB < 1 {
		return api.VMSpec{}, usagef("-m %d: a VM needs memory (MB)", t.memMB)
	}
	if t.image == "" {
		return api.VMSpec{}, usagef("-image is required")
	}
	command := t.command
	if !t.fs.Changed("cmd") && !t.fs.Changed("image") {
		command = defaultCommand // busybox's own default, sh, exits at once
	}
	argv, err := splitCommand(command)
	if err != nil {
		return api.VMSpec{}, usagef("-cmd: %v", err)
	}
	c := api.Container{Name: "main", Image: t.image, Command: argv}
	for _, kv := range t.envs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return api.VMSpec{}, usagef("-e %q: want KEY=VAL", kv)
		}
		c.Env = append(c.Env, api.EnvVar{Name: k, Value: v})
	}
	for _, p := range t.ports {
		if p < 1 || p > 65535 {
			return api.VMSpec{}, usagef("-port %d: want 1-65535", p)
		}
		c.Ports = append(c.Ports, api.Port{ContainerPort: p, Protocol: "TCP"})
	}
	s := api.VMSpec{
		NumCPU: t.cpus, MemoryMB: t.memMB,
		CPU: vmAllocation(), Mem: vmAllocation(),
		PowerState:    api.PoweredOff,
		Containers:    []api.Container{c},
		RestartPolicy: restartPolicy,
	}
	return s, t.alloc.apply(&s.CPU, &s.Mem, true)
}

// createName checks a create verb's NAME: a name, NS/NAME or a path.
func createName(verb, name string) error {
	if !strings.HasPrefix(name, "/") && strings.Count(name, "/") > 1 {
		return usagef("%s: NAME %q: give NAME, NAMESPACE/NAME or an absolute path", verb, name)
	}
	return nil
}

// namespacePool resolves the -pool of an object at p (its namespace's pool
// when not given) and checks that it is in p's namespace, as vcenter will.
func namespacePool(ctx context.Context, r *Resolver, p, pool string) (string, error) {
	ref, err := api.ParsePath(p)
	if err != nil {
		return "", usageErr(err)
	}
	if pool == "" {
		pool = api.RootPoolName
		if ref.Namespace != "" {
			pool = api.RootPoolName + "/" + ref.Namespace
		}
	}
	pp, err := r.Path(ctx, api.KindResourcePool, pool)
	if err != nil {
		return "", err
	}
	if ref.Namespace != "" && api.NamespaceOfPool(pp) != ref.Namespace {
		return "", usagef("-pool %s is not in namespace %s: %s must run in the namespace's pool (%s/%s) or one below it",
			pp, ref.Namespace, p, api.RootPoolName, ref.Namespace)
	}
	return pp, nil
}
