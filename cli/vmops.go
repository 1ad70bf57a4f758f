package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// Data-plane verbs: a VM's logs, commands in its guest, the Content Library.
// vcenter relays logs and commands to the VM's host agent.

const groupDataPlane = "dataplane"

// addDataPlaneCommands registers vm.logs, guest.run and library.* under their own help group.
func addDataPlaneCommands(env *Env, root *cobra.Command) {
	root.AddGroup(&cobra.Group{ID: groupDataPlane, Title: "Guest operations and the content library:"})
	for _, newCmd := range []func(*Env) *cobra.Command{newVMLogsCommand, newGuestRunCommand, newLibraryImportCommand, newLibraryLsCommand} {
		cmd := newCmd(env)
		cmd.GroupID = groupDataPlane
		root.AddCommand(cmd)
	}
}

// streamAPI is what the data-plane verbs need of the client beyond API:
// requests on their own endpoints, some of them streams.
type streamAPI interface {
	Raw(ctx context.Context, method, path string, q url.Values, body io.Reader) (io.ReadCloser, error)
	Do(ctx context.Context, method, path string, q url.Values, body, out any) error
}

func (e *Env) streamClient() (streamAPI, error) {
	c, err := e.Client()
	if err != nil {
		return nil, err
	}
	s, ok := c.(streamAPI)
	if !ok {
		return nil, fmt.Errorf("this vcenter connection cannot stream: %w", api.ErrUnavailable)
	}
	return s, nil
}

// exitStatus ends psc with a status of the verb's own (guest.run passes on
// the guest command's), printing nothing more.
type exitStatus int

func (e exitStatus) Error() string   { return fmt.Sprintf("exit status %d", int(e)) }
func (e exitStatus) ExitStatus() int { return int(e) }

// vmLogsOptions runs `psc vm.logs [-f] VM [-c CONTAINER]`.
type vmLogsOptions struct {
	env       *Env
	follow    bool
	container string
	vm        string
}

func newVMLogsCommand(env *Env) *cobra.Command {
	o := &vmLogsOptions{env: env}
	cmd := &cobra.Command{
		Use:   "vm.logs [-f] VM [-c CONTAINER]",
		Short: "Print a VM container's output (stdout and stderr)",
		Example: `  psc vm.logs web-01
  psc vm.logs -f web-01 -c sidecar`,
		Args: exactArgs(1, "one VM"),
		RunE: runE(o),
	}
	cmd.Flags().BoolVarP(&o.follow, "follow", "f", false, "keep printing new output until interrupted")
	cmd.Flags().StringVarP(&o.container, "container", "c", "", "container name (default: the VM's first)")
	return cmd
}

func (o *vmLogsOptions) Complete(_ *cobra.Command, args []string) error {
	o.vm = args[0]
	return nil
}

func (o *vmLogsOptions) Validate() error { return nil }

func (o *vmLogsOptions) Run(ctx context.Context) error {
	_, p, err := o.env.resolvePath(ctx, api.KindVirtualMachine, o.vm)
	if err != nil {
		return err
	}
	c, err := o.env.streamClient()
	if err != nil {
		return err
	}
	q := url.Values{"path": {p}}
	if o.container != "" {
		q.Set("container", o.container)
	}
	if o.follow {
		q.Set("follow", "true")
	}
	body, err := c.Raw(ctx, "GET", "/api/v1/vm/logs", q, nil)
	if err != nil {
		return err
	}
	defer body.Close()
	if _, err := io.Copy(o.env.Out, body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of %s: stream broke: %v: %w", p, err, api.ErrUnavailable)
	}
	return nil
}

// guestRunOptions runs `psc guest.run VM [-c CONTAINER] -- CMD ARGS...`
// or, as govc, `psc guest.run -vm VM CMD ARGS...`.
type guestRunOptions struct {
	env       *Env
	container string
	vmFlag    string // govc's -vm: then every argument is the command
	vm        string
	command   []string
}

func newGuestRunCommand(env *Env) *cobra.Command {
	o := &guestRunOptions{env: env}
	cmd := &cobra.Command{
		Use:   "guest.run VM [-c CONTAINER] -- CMD [ARGS...]",
		Short: "Run a command in a VM's container; print its output and exit with its status",
		Example: `  psc guest.run web-01 -- wget -q -O- http://10.244.1.3/
  psc guest.run web-01 -c sidecar -- sh -c 'echo $HOSTNAME'
  psc guest.run -vm web-01 hostname`,
		Args: func(cmd *cobra.Command, args []string) error {
			if o.vmFlag != "" {
				return minArgs(1, "a command (psc guest.run -vm VM CMD ARGS...)")(cmd, args)
			}
			return minArgs(2, "a VM and a command (psc guest.run VM -- CMD ARGS...)")(cmd, args)
		},
		RunE: runE(o),
	}
	cmd.Flags().StringVarP(&o.container, "container", "c", "", "container name (default: the VM's first)")
	cmd.Flags().StringVar(&o.vmFlag, "vm", "", "the VM (govc's form: every argument is then the command; put -- before the command's own flags)")
	cmd.Flags().StringVar(&o.vmFlag, "vm.ipath", "", "the VM by inventory path (govc's form)")
	_ = cmd.Flags().MarkHidden("vm.ipath")
	return cmd
}

func (o *guestRunOptions) Complete(cmd *cobra.Command, args []string) error {
	if o.vmFlag != "" {
		if dash := cmd.ArgsLenAtDash(); dash > 0 {
			return usagef("guest.run: with -vm the command comes first; -- may only precede it")
		}
		o.vm, o.command = o.vmFlag, args
		return nil
	}
	if dash := cmd.ArgsLenAtDash(); dash >= 0 {
		if dash != 1 {
			return usagef("guest.run: want one VM before --, got %d", dash)
		}
	}
	o.vm, o.command = args[0], args[1:]
	return nil
}

func (o *guestRunOptions) Validate() error {
	if len(o.command) == 0 || o.command[0] == "" {
		return usagef("guest.run: no command given (psc guest.run VM -- CMD ARGS...)")
	}
	return nil
}

func (o *guestRunOptions) Run(ctx context.Context) error {
	_, p, err := o.env.resolvePath(ctx, api.KindVirtualMachine, o.vm)
	if err != nil {
		return err
	}
	c, err := o.env.streamClient()
	if err != nil {
		return err
	}
	var res api.ExecResult
	if err := c.Do(ctx, "POST", "/api/v1/vm/exec", nil, api.ExecRequest{Path: p, Container: o.container, Command: o.command}, &res); err != nil {
		return err
	}
	if o.env.JSON {
		if err := writeJSON(o.env.Out, res); err != nil {
			return err
		}
	} else {
		_, _ = io.WriteString(o.env.Out, res.Stdout)
		_, _ = io.WriteString(o.env.Err, res.Stderr)
	}
	if res.ExitCode != 0 {
		return exitStatus(res.ExitCode)
	}
	return nil
}

// asExitStatus reports a verb's own exit status, if err carries one.
func asExitStatus(err error) (int, bool) {
	var es interface{ ExitStatus() int }
	if errors.As(err, &es) {
		return es.ExitStatus(), true
	}
	return 0, false
}
