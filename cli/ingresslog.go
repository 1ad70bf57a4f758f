package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// ingress.log prints the Ingress proxies' access logs. Each host keeps the
// requests it answered (in memory, the last 1000); vcenter relays each
// host's, and psc merges them by time.

type ingressLogOptions struct {
	env   *Env
	hosts []string
	n     int
}

func newIngressLogCommand(env *Env) *cobra.Command {
	o := &ingressLogOptions{env: env}
	cmd := &cobra.Command{
		Use:   "ingress.log [-n 20] [HOST...]",
		Short: "Print the requests the hosts' Ingress proxies served (newest last)",
		Example: `  psc ingress.log
  psc ingress.log -n 100 esx-01`,
		RunE: runE(o),
	}
	cmd.Flags().IntVarP(&o.n, "n", "n", 20, "how many requests to print (0: all the hosts keep)")
	return cmd
}

func (o *ingressLogOptions) Complete(_ *cobra.Command, args []string) error {
	o.hosts = args
	return nil
}

func (o *ingressLogOptions) Validate() error {
	if o.n < 0 {
		return fmt.Errorf("-n %d: want a count, 0 for all: %w", o.n, api.ErrInvalid)
	}
	return nil
}

// ingressLogLine is one request with the host that served it (in JSON
// "hostSystem": "host" is the request's Host).
type ingressLogLine struct {
	Host string `json:"hostSystem"`
	api.IngressLogEntry
}

func (o *ingressLogOptions) Run(ctx context.Context) error {
	r, err := o.env.Resolver()
	if err != nil {
		return err
	}
	paths, err := r.hostPaths(ctx, o.hosts)
	if err != nil {
		return err
	}
	c, err := o.env.streamClient()
	if err != nil {
		return err
	}
	var lines []ingressLogLine
	var skipped []string
	for _, p := range paths {
		body, err := c.Raw(ctx, "GET", "/api/v1/ingress/log", url.Values{"host": {p}, "n": {strconv.Itoa(o.n)}}, nil)
		if err != nil {
			// A host that is down or runs no proxy leaves the others' logs readable.
			if len(o.hosts) > 0 || !(errors.Is(err, api.ErrUnavailable) || errors.Is(err, api.ErrNotFound)) {
				return err
			}
			skipped = append(skipped, fmt.Sprintf("%s (%v)", api.Base(p), api.Message(err)))
			continue
		}
		var l api.IngressLog
		err = json.NewDecoder(body).Decode(&l)
		body.Close()
		if err != nil {
			return fmt.Errorf("Ingress log of %s: %v: %w", api.Base(p), err, api.ErrUnavailable)
		}
		for _, e := range l.Entries {
			lines = append(lines, ingressLogLine{Host: api.Base(p), IngressLogEntry: e})
		}
	}
	slices.SortStableFunc(lines, func(a, b ingressLogLine) int { return a.Time.Compare(b.Time) })
	if o.n > 0 && len(lines) > o.n {
		lines = lines[len(lines)-o.n:]
	}
	if o.env.JSON {
		if lines == nil {
			lines = []ingressLogLine{}
		}
		return writeJSON(o.env.Out, lines)
	}
	loc := o.env.Location
	if loc == nil {
		loc = time.Local
	}
	for _, l := range lines {
		fmt.Fprintf(o.env.Out, "[%s] %s %s %s %s%s %d %dB %s -> %s %s\n",
			l.Time.In(loc).Format("2006-01-02 15:04:05.000"), l.Host, l.Client, l.Method, l.IngressLogEntry.Host, l.Path,
			l.Status, l.Bytes, l.Duration.Round(time.Microsecond), orDash(l.Upstream), orDash(dcRelative(l.Ingress)))
	}
	for _, s := range skipped {
		fmt.Fprintf(o.env.Err, "psc: no Ingress log from %s\n", s)
	}
	return nil
}
