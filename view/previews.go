package view

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/zen-dev/zen"
)

// Previews draws the previews a clone sees, a row per branch.
func Previews(out io.Writer, ps []*zen.PreviewInfo) error {
	w := &writer{w: out}
	if len(ps) == 0 {
		fmt.Fprintln(w, "no previews (zen apply --preview records one for a branch)")
		return w.err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BRANCH\tRUNS\tLATEST\tSTATUS\tWHERE")
	for _, p := range ps {
		latest, status := missing, missing
		if p.Latest != nil {
			latest, status = p.Latest.ID, p.Latest.Status
		}
		where := "here"
		switch {
		case p.OnRemote && p.Local:
			where = p.Remote + ", here"
		case p.OnRemote:
			where = p.Remote
		}
		if p.Gone {
			where += " (branch gone)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", p.Branch, p.Runs, latest, status, where)
	}
	tw.Flush()
	return w.err
}
