package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
)

// aboutOptions runs `psc about`: who vcenter is and how big the cluster of members is.
type aboutOptions struct{ env *Env }

func newAboutCommand(env *Env) *cobra.Command {
	o := &aboutOptions{env: env}
	return &cobra.Command{
		Use:   "about",
		Short: "Show vcenter's name, version and API version",
		Args:  exactArgs(0, "no arguments"),
		RunE:  runE(o),
	}
}

func (o *aboutOptions) Complete(*cobra.Command, []string) error { return nil }
func (o *aboutOptions) Validate() error                         { return nil }

func (o *aboutOptions) Run(ctx context.Context) error {
	c, err := o.env.Client()
	if err != nil {
		return err
	}
	a, err := c.About(ctx)
	if err != nil {
		return err
	}
	if o.env.JSON {
		// Every field the table shows, vcenter's own beside the two psc adds.
		return writeJSON(o.env.Out, struct {
			FullName string `json:"fullName"`
			*api.About
			URL string `json:"url"`
		}{a.Name + " " + a.Version, a, o.env.URL})
	}
	_, err = fmt.Fprintf(o.env.Out, "FullName:     %s %s\nName:         %s\nVersion:      %s\nAPI version:  %s\nRevision:     %d\nMembers:      %d\nURL:          %s\n",
		a.Name, a.Version, a.Name, a.Version, a.APIVersion, a.Revision, a.Members, o.env.URL)
	return err
}
