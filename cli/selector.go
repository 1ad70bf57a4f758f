package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/podsphere/podsphere/api"
	"github.com/podsphere/podsphere/api/client"
	"github.com/podsphere/podsphere/api/labels"
)

// selectorFlag is the -selector flag of ls and find: a label selector in
// kubectl's grammar (docs/cli.md), which vcenter evaluates.
type selectorFlag struct {
	text string
	sel  labels.Selector
}

func (f *selectorFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.text, "selector", "",
		"only objects whose labels match this selector, e.g. 'env in (prod,qa),tier!=db,!canary'")
}

// parse checks the selector, so a typo is a usage error before vcenter is asked.
func (f *selectorFlag) parse() (err error) {
	if f.sel, err = labels.Parse(f.text); err != nil {
		return usageErr(err)
	}
	return nil
}

// keep returns, in order, the objects of objs that the selector selects.
// The selector is passed to vcenter as given: one list per kind among
// objs. Folders are not stored in vcenter and have no labels; they are
// kept when the selector selects an object without labels (!canary does,
// env=prod does not).
func (f *selectorFlag) keep(ctx context.Context, c API, objs []*api.Object) ([]*api.Object, error) {
	if f.sel.Empty() {
		return objs, nil
	}
	selected := map[string]bool{}
	asked := map[string]bool{}
	for _, o := range objs {
		if o.Kind == KindFolder || asked[o.Kind] {
			continue
		}
		asked[o.Kind] = true
		l, err := c.List(ctx, client.ListOptions{Kind: o.Kind, Selector: f.text})
		if err != nil {
			return nil, err
		}
		for _, m := range l.Items {
			selected[m.Path] = true
		}
	}
	var out []*api.Object
	for _, o := range objs {
		if selected[o.Path] || o.Kind == KindFolder && f.sel.Matches(nil) {
			out = append(out, o)
		}
	}
	return out, nil
}
