package view

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/state"
)

// ModelTable draws recorded model versions as a table, a row each: model,
// version, the stages it holds, its digest, the run that made it, and
// whether it is signed.
func ModelTable(w io.Writer, rows []zen.ModelListing) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tVERSION\tSTAGES\tDIGEST\tRUN\tSIGNED")
	for _, r := range rows {
		signed := "no"
		if r.SignedBy != "" {
			signed = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Model, r.ModelVersion.ModelVersion, strings.Join(r.Stages, ","), Short(strings.TrimPrefix(r.Digest, "sha256:")), r.RunID, signed)
	}
	return tw.Flush()
}

// ModelVersion draws a model version in detail: its digest, repository,
// the stages that hold it, the output and run that made it (run is that
// run's record, nil when the state ref has none), the commit that
// declares it, its signature and its metrics.
func ModelVersion(out io.Writer, mv *state.ModelVersion, stages []string, run *state.Run) error {
	w := &writer{w: out}
	fmt.Fprintf(w, "model %s %s\n", mv.Model, mv.ModelVersion)
	fmt.Fprintf(w, "  digest:     %s\n", mv.Digest)
	fmt.Fprintf(w, "  repository: %s\n", mv.Repository)
	if len(stages) > 0 {
		fmt.Fprintf(w, "  stages:     %s\n", strings.Join(stages, ", "))
	}
	fmt.Fprintf(w, "  produced:   %s.%s.%s in run %s, %s\n", mv.Pipeline, mv.Step, mv.Output, mv.RunID, mv.Created.Local().Format(time.DateTime))
	if from := runFrom(mv, run); from != "" {
		fmt.Fprintf(w, "  run:        %s ran from %s\n", mv.RunID, from)
	}
	fmt.Fprintf(w, "  declared:   by commit %s, whose apply made the version\n", mv.SourceCommit)
	signed := "unsigned"
	if mv.SignedBy != "" {
		signed = "signed by key " + mv.SignedBy
	}
	fmt.Fprintf(w, "  signature:  %s\n", signed)
	for _, k := range slices.Sorted(maps.Keys(mv.Metrics)) {
		fmt.Fprintf(w, "  metric %s = %g\n", k, mv.Metrics[k])
	}
	return w.err
}

// runFrom says what the run that made a version's output ran from: "commit
// 1a2b…" (whole), then ", with uncommitted changes sha256:…" and ", an
// experiment: p.x=1" as the run was. The commit is the version record's,
// else (a record made before zen kept it) the run's own record's; "" when
// neither says.
func runFrom(mv *state.ModelVersion, run *state.Run) string {
	commit, dirty := zen.RunSource(mv, run)
	if commit == "" && dirty == "" {
		return ""
	}
	out := "commit " + cmp.Or(commit, "(none)")
	if dirty != "" {
		out += ", with uncommitted changes " + dirty
	}
	if run != nil && run.Experiment {
		out += ", an experiment: " + setsText(run.Overrides)
	}
	return out
}
