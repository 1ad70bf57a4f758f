// Package cli is psc, the govc look-alike admins use to drive vcenter. Each
// verb group lives in its own file as an Options struct with Complete,
// Validate and Run, writing to injected writers so output can be tested
// without a terminal; Main wires it to the process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
)

// DefaultURL is where a local vcenter listens unless PSC_URL or -u says otherwise.
const DefaultURL = "http://127.0.0.1:8989"

// API is the part of the vcenter client psc uses; *client.Client implements
// it and the tests run it against a real vcenter.
type API interface {
	About(ctx context.Context) (*api.About, error)
	Get(ctx context.Context, path string) (*api.Object, error)
	List(ctx context.Context, opts client.ListOptions) (*api.List, error)
	Create(ctx context.Context, o *api.Object) (*api.Object, error)
	Update(ctx context.Context, o *api.Object) (*api.Object, error)
	Delete(ctx context.Context, path string, opts client.DeleteOptions) error
	Power(ctx context.Context, path, action string) (*api.Object, error)
	Migrate(ctx context.Context, path, host string) (*api.Object, error)
	Pool(ctx context.Context, path string) (*api.PoolInfo, error)
	Quota(ctx context.Context, path string) (*api.QuotaInfo, error)
	HAPlan(ctx context.Context, cluster string, fail []string) (*api.HAPlan, error)
	HACapacity(ctx context.Context, cluster string) (*api.HACapacity, error)
	Watch(ctx context.Context, opts client.ListOptions, from uint64) (<-chan api.WatchEvent, func() error, error)
}

// Env is what every verb shares: the streams, the global flags and the
// connection to vcenter, made on first use.
type Env struct {
	In       io.Reader
	Out, Err io.Writer

	URL        string // -u, PSC_URL
	Token      string // -token, PSC_TOKEN
	Datacenter string // -dc, PSC_DATACENTER
	Cluster    string // -cluster, PSC_CLUSTER
	Namespace  string // -namespace, PSC_NAMESPACE: where bare names of VMs and workloads resolve
	JSON       bool   // -json

	// Now and Location make times in output reproducible in tests.
	Now      func() time.Time
	Location *time.Location
	// NewAPI connects to vcenter; tests replace it.
	NewAPI func(url, token string) (API, error)
	// Injector makes ha.drill's failures real (the lab's, set by cmd/psc
	// when PSC_LAB names a lab); nil where there is none.
	Injector func(ctx context.Context) (Injector, error)
	// DrillProber, when set, gives ha.drill a Prober sending requests
	// through a Service that selects the protected VMs (paths) of cluster;
	// nil prober: none selects them; a *NoStream error: one does, but it
	// cannot be reached from outside (the report says why).
	DrillProber func(ctx context.Context, cluster string, vms []string) (Prober, error)

	api API
}

// Client returns the vcenter client, refusing to go on without a token.
func (e *Env) Client() (API, error) {
	if e.api != nil {
		return e.api, nil
	}
	if e.Token == "" {
		return nil, errNoToken
	}
	c, err := e.NewAPI(e.URL, e.Token)
	if err != nil {
		return nil, err
	}
	e.api = c
	return c, nil
}

var errNoToken error = &cliError{
	msg: "PSC_TOKEN is not set: vcenter writes the admin token to DIR/admin.token, where DIR is its --data-dir " +
		"(export PSC_TOKEN=$(cat DIR/admin.token) or pass -token)",
	sentinel: api.ErrUnauthorized,
}

// Resolver turns the names users type into inventory paths.
func (e *Env) Resolver() (*Resolver, error) {
	c, err := e.Client()
	if err != nil {
		return nil, err
	}
	return &Resolver{DC: e.Datacenter, Cluster: e.Cluster, Namespace: e.Namespace, API: c}, nil
}

func newClient(url, token string) (API, error) { return client.New(url, token) }

// Main runs psc with args (without the program name) and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &Env{
		In: os.Stdin, Out: stdout, Err: stderr,
		Now: time.Now, Location: time.Local, NewAPI: newClient, Injector: DefaultInjector,
	}
	if DefaultDrillProber != nil {
		env.DrillProber = DefaultDrillProber(env)
	}
	return Run(ctx, env, os.Getenv, args)
}

// DefaultInjector is ha.drill's fault injector for Main; cmd/psc sets it
// to the lab's when PSC_LAB names one (the cli package itself does not
// link the lab and containerd).
var DefaultInjector func(ctx context.Context) (Injector, error)

// Run executes one psc command line against env and returns the exit code;
// errors are printed as "psc: message".
func Run(ctx context.Context, env *Env, getenv func(string) string, args []string) int {
	root := NewRootCommand(env, getenv)
	args = NormalizeArgs(args)
	root.SetArgs(args)
	err := unknownVerb(root, args)
	if err == nil {
		err = root.ExecuteContext(ctx)
	}
	if err == nil {
		return 0
	}
	if code, ok := asExitStatus(err); ok {
		return code
	}
	fmt.Fprintf(env.Err, "psc: %s\n", strings.TrimSpace(err.Error()))
	return ExitCode(err)
}

// ExitCode maps an error onto psc's exit codes (api.ExitOK...) by the
// sentinel it wraps (api.Sentinels); one that wraps none exits api.ExitError.
func ExitCode(err error) int {
	if err == nil {
		return api.ExitOK
	}
	if s, ok := api.FindSentinel(err); ok {
		return s.ExitCode
	}
	return api.ExitError
}

// cliError is a message of psc's own that still matches a sentinel (and so
// an exit code) without the sentinel's text tacked on.
type cliError struct {
	msg      string
	sentinel error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.sentinel }

// usagef reports a mistake on the command line; it exits 2.
func usagef(format string, args ...any) error {
	return &cliError{msg: fmt.Sprintf(format, args...), sentinel: api.ErrInvalid}
}

// Command groups in `psc help`; data-plane verbs (vm.logs, guest.run,
// library.*) join them later through the same table.
const (
	groupInventory = "inventory"
	groupCluster   = "cluster"
	groupPool      = "pool"
	groupVM        = "vm"
	groupMonitor   = "monitor"
	groupManifest  = "manifest"
)

// commands lists every verb constructor with its help group.
var commands = []struct {
	group string
	new   func(*Env) *cobra.Command
}{
	{groupInventory, newAboutCommand},
	{groupInventory, newLsCommand},
	{groupInventory, newFindCommand},
	{groupInventory, newTreeCommand},
	{groupInventory, newDatacenterCreateCommand},
	{groupCluster, newClusterCreateCommand},
	{groupCluster, newClusterChangeCommand},
	{groupCluster, newClusterInfoCommand},
	{groupCluster, newClusterRuleCreateCommand},
	{groupCluster, newClusterRuleLsCommand},
	{groupCluster, newClusterRuleRemoveCommand},
	{groupCluster, newClusterGroupCreateCommand},
	{groupCluster, newClusterGroupLsCommand},
	{groupCluster, newClusterGroupChangeCommand},
	{groupCluster, newClusterGroupRemoveCommand},
	{groupCluster, newClusterOverrideChangeCommand},
	{groupCluster, newClusterOverrideInfoCommand},
	{groupCluster, newClusterOverrideRemoveCommand},
	{groupCluster, newHostInfoCommand},
	{groupCluster, newHostMaintenanceCommand(true)},
	{groupCluster, newHostMaintenanceCommand(false)},
	{groupCluster, newHAPlanCommand},
	{groupCluster, newHADrillCommand},
	{groupCluster, newHADrillLsCommand},
	{groupCluster, newHADrillInfoCommand},
	{groupPool, newPoolCreateCommand},
	{groupPool, newPoolChangeCommand},
	{groupPool, newPoolInfoCommand},
	{groupPool, newPoolDestroyCommand},
	{groupPool, newQuotaSetCommand},
	{groupPool, newQuotaInfoCommand},
	{groupVM, newVMCreateCommand},
	{groupVM, newVMChangeCommand},
	{groupVM, newVMPowerCommand},
	{groupVM, newVMMigrateCommand},
	{groupVM, newVMInfoCommand},
	{groupVM, newVMIPCommand},
	{groupVM, newVMDestroyCommand},
	{groupMonitor, newEventsCommand},
	{groupMonitor, newTasksCommand},
	{groupManifest, newApplyCommand},
	{groupManifest, newDeleteCommand},
}

// NewRootCommand builds psc's command tree. getenv supplies PSC_* defaults.
func NewRootCommand(env *Env, getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:   "psc",
		Short: "psc drives a podsphere vcenter the way govc drives vSphere",
		Long: "psc drives a podsphere vcenter the way govc drives vSphere.\n\n" +
			"Flags take one dash as in govc (-json, -cpu.limit=-1) or two.\n" +
			"Environment: PSC_URL, PSC_TOKEN, PSC_DATACENTER, PSC_CLUSTER, PSC_NAMESPACE.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown verb %q (psc help lists the verbs)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetIn(env.In)
	root.SetOut(env.Out)
	root.SetErr(env.Err)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usagef("%s: %v (see psc %s -h)", cmd.Name(), err, cmd.Name())
	})

	url := getenv("PSC_URL")
	if url == "" {
		url = DefaultURL
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&env.URL, "url", "u", url, "vcenter URL [PSC_URL]")
	pf.StringVar(&env.Token, "token", getenv("PSC_TOKEN"), "API token, DIR/admin.token of vcenter's --data-dir [PSC_TOKEN]")
	pf.StringVar(&env.Datacenter, "dc", getenv("PSC_DATACENTER"), "datacenter for relative paths [PSC_DATACENTER]")
	pf.StringVar(&env.Cluster, "cluster", getenv("PSC_CLUSTER"), "cluster for bare pool and host names [PSC_CLUSTER]")
	// No -n shorthand (kubectl's): -n is a count in govc and psc (events -n 25).
	pf.StringVar(&env.Namespace, "namespace", getenv("PSC_NAMESPACE"), "namespace for bare VM and workload names (default: the default namespace) [PSC_NAMESPACE]")
	pf.BoolVar(&env.JSON, "json", false, "print JSON (indented) instead of tables")

	root.AddGroup(
		&cobra.Group{ID: groupInventory, Title: "Inventory:"},
		&cobra.Group{ID: groupCluster, Title: "Clusters and hosts:"},
		&cobra.Group{ID: groupPool, Title: "Resource pools and quotas:"},
		&cobra.Group{ID: groupVM, Title: "Virtual machines:"},
		&cobra.Group{ID: groupMonitor, Title: "Events and tasks:"},
		&cobra.Group{ID: groupManifest, Title: "Manifests:"},
	)
	for _, c := range commands {
		cmd := c.new(env)
		cmd.GroupID = c.group
		root.AddCommand(cmd)
	}
	addWorkloadCommands(env, root)
	addLBCommands(env, root)
	addDataPlaneCommands(env, root)
	installGovcFlags(root)
	return root
}

// Args validators that fail as usage errors (exit 2).
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s: want %s, got %d argument(s)", cmd.Name(), what, len(args))
		}
		return nil
	}
}

func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s: want %s", cmd.Name(), what)
		}
		return nil
	}
}

func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef("%s: want at most %s, got %d arguments", cmd.Name(), what, len(args))
		}
		return nil
	}
}

// usageErr turns an ErrInvalid from a validator into a usage error
// without the trailing ": invalid" the sentinel adds.
func usageErr(err error) error {
	return usagef("%s", strings.TrimSuffix(err.Error(), ": "+api.ErrInvalid.Error()))
}

// runner is the Complete/Validate/Run life cycle every verb's Options follow.
type runner interface {
	Complete(cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// runE adapts a runner to cobra.
func runE(o runner) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}

// changed says whether the user set flag name on the command line.
func changed(fs *pflag.FlagSet, name string) bool { return fs.Changed(name) }

// updateRetries bounds get-modify-update loops that lose races to other writers.
const updateRetries = 5

// modify reads the object at path, lets fn change it and writes it back,
// retrying when another writer got there first.
func modify(ctx context.Context, c API, path string, fn func(*api.Object) error) (*api.Object, error) {
	var err error
	for range updateRetries {
		var o *api.Object
		o, err = c.Get(ctx, path)
		if err != nil {
			return nil, err
		}
		if err = fn(o); err != nil {
			return nil, err
		}
		var out *api.Object
		out, err = c.Update(ctx, o)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, api.ErrConflict) {
			return nil, err
		}
	}
	return nil, err
}
