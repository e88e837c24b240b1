package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/state"
)

func newModels(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List and show model versions and stages",
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List recorded model versions and the stages they hold",
		Example: "  zen models list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := openRead(cmd, g, true)
			if err != nil {
				return err
			}
			rows, err := sess.Models()
			if err != nil {
				return err
			}
			if g.output == "json" {
				if rows == nil {
					rows = []zen.ModelListing{}
				}
				return writeJSON(g.stdout, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(g.stderr, "no model versions recorded yet: declare one in models: and zen apply")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MODEL\tVERSION\tSTAGES\tDIGEST\tRUN\tSIGNED")
			for _, r := range rows {
				signed := "no"
				if r.SignedBy != "" {
					signed = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Model, r.ModelVersion.ModelVersion, strings.Join(r.Stages, ","), short(strings.TrimPrefix(r.Digest, "sha256:")), r.RunID, signed)
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:     "show MODEL[:VERSION|@STAGE]",
		Short:   "Show a model version: digest, stages, run, metrics, signature",
		Example: "  zen models show fraud-detector@production\n  zen models show fraud-detector:1.0.0 --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := openRead(cmd, g, false)
			if err != nil {
				return err
			}
			mv, err := sess.ModelVersion(zen.ParseModelRef(args[0]))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, mv)
			}
			w := g.stdout
			fmt.Fprintf(w, "model %s %s\n", mv.Model, mv.ModelVersion)
			fmt.Fprintf(w, "  digest:     %s\n", mv.Digest)
			fmt.Fprintf(w, "  repository: %s\n", mv.Repository)
			if in := sess.VersionStages(mv); len(in) > 0 {
				fmt.Fprintf(w, "  stages:     %s\n", strings.Join(in, ", "))
			}
			run, err := sess.RecordedRun(mv.RunID)
			if err != nil {
				return err
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
			return nil
		},
	}
	cmd.AddCommand(list, show)
	return cmd
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

// setsText is an experiment's overrides as --set would give them, sorted:
// "demo.quality=9, demo.kind=\"rf\"".
func setsText(overrides map[string]any) string {
	var sets []string
	for _, k := range slices.Sorted(maps.Keys(overrides)) {
		b, _ := json.Marshal(overrides[k])
		sets = append(sets, k+"="+string(b))
	}
	return strings.Join(sets, ", ")
}
