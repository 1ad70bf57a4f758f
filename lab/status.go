package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/podsphere/podsphere/api/client"
)

// Status prints the lab's processes, namespaces, vcenter URLs and hosts
// (with their connection state as vcenter sees it). It reads only.
func Status(ctx context.Context, opts Options) error {
	if err := opts.complete(); err != nil {
		return err
	}
	s, err := LoadState(opts.Dir)
	if err != nil {
		return err
	}
	out := opts.Out
	if s == nil {
		fmt.Fprintf(out, "No lab in %s.", opts.Dir)
		if left := labNetNS(opts.Prefix); len(left) > 0 {
			fmt.Fprintf(out, " But namespaces with prefix %q exist (%s): podsphere lab down --prefix %s --dir %s",
				opts.Prefix, strings.Join(left, " "), opts.Prefix, opts.Dir)
		}
		fmt.Fprintln(out)
		return nil
	}
	state := "up"
	if !s.Ready {
		state = "incomplete (lab up did not finish)"
	}
	fmt.Fprintf(out, "Lab %q in %s: %s, created %s\n", s.Prefix, s.Dir, state, s.Created.Local().Format(time.DateTime))
	if s.LocalURL != "" {
		fmt.Fprintf(out, "vcenter:  %s (inside the lab), %s (from this machine: . %s)\n", s.VCenterURL, s.LocalURL, filepath.Join(s.Dir, "env"))
	}
	if c := s.Containerd; c != nil {
		kind := "the machine's"
		if c.Private {
			kind = "the lab's own"
		}
		fmt.Fprintf(out, "containerd: %s, %s, namespaces %s\n", kind, c.Socket, strings.Join(s.CtrdNamespaces, " "))
	}
	fmt.Fprintf(out, "datastore: %s\nheartbeat datastore (HA): %s\n\n", filepath.Join(s.Dir, "datastore"), filepath.Join(s.Dir, SharedDir))

	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tSTATE\tNETNS\tLOG")
	for _, p := range s.Processes {
		st := "dead"
		if p.Alive() {
			st = "running"
		}
		ns := p.NetNS
		if ns == "" {
			ns = "(root)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", p.Name, p.PID, st, ns, p.Log)
	}
	tw.Flush()

	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NETNS\tPRESENT")
	for _, n := range s.NetNS {
		fmt.Fprintf(tw, "%s\t%v\n", n, netNSExists(n))
	}
	tw.Flush()

	states := map[string]string{}
	var apiErr error
	if tok := readToken(s.Dir); s.LocalURL != "" && tok != "" {
		if c, err := client.New(s.LocalURL, tok); err == nil {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			states, apiErr = hostStates(cctx, c)
			cancel()
		}
	}
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tADDRESS\tNETNS\tCONTAINERD NS\tSTATE\tFAULT")
	for _, h := range s.Hosts {
		st := states[h.Name]
		switch {
		case apiErr != nil:
			st = "(vcenter unreachable)"
		case st == "":
			st = "(not joined)"
		}
		ns := h.Namespace
		if ns == "" {
			ns = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.Address, h.NetNS, ns, st, s.faultText(h))
	}
	tw.Flush()
	if apiErr != nil {
		fmt.Fprintf(out, "vcenter: %v\n", apiErr)
	}
	return nil
}

func readToken(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "vcenter", "admin.token"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// faultText is the FAULT column: what the lab did to the host, since when.
func (s *State) faultText(h Host) string {
	if h.Fault == "" {
		if h.Partition != "" {
			return "partitioned (" + h.Partition + ")"
		}
		return "-"
	}
	t := h.Fault
	if h.Partition != "" {
		var with []string
		for _, o := range s.Hosts {
			if o.Partition == h.Partition && o.Name != h.Name {
				with = append(with, o.Name)
			}
		}
		t += " (" + h.Partition
		if len(with) > 0 {
			t += " with " + strings.Join(with, ",")
		}
		t += ")"
	}
	if !h.FaultSince.IsZero() {
		t += fmt.Sprintf(", %s ago", time.Since(h.FaultSince).Round(time.Second))
	}
	return t
}
