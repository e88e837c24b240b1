package view

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/zen-dev/zen/deploy"
)

// Deployments draws deployments as a table, a row each: name, the model
// and stage it serves, the version and digest it serves, its URL, and
// its state (running, unhealthy, exited or stopped).
func Deployments(w io.Writer, rows []*deploy.Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tMODEL\tSTAGE\tVERSION\tDIGEST\tURL\tSTATUS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Model, r.Stage, dash(r.Version),
			dash(Short(strings.TrimPrefix(r.Digest, "sha256:"))), dash(r.URL), r.State)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
