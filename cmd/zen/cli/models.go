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

	"github.com/zen-dev/zen/state"
)

// Exit codes of zen verify, one per way a model can fail to verify.
const (
	exitUnsigned     = 10 // no signature
	exitBadSignature = 11 // a signature or attestation does not verify
	exitOtherKey     = 12 // signed, but not by this key
	exitDigest       = 13 // the registry's digest differs from the record
	exitContent      = 14 // stored content does not match its digest
	exitMissing      = 15 // not in the store at all
	exitProvenance   = 16 // the attestation names another run, commit, entry point or inputs
)

// modelRef is MODEL, MODEL:VERSION or MODEL@STAGE.
type modelRef struct{ model, version, stage string }

func parseModelRef(s string) modelRef {
	if m, st, ok := strings.Cut(s, "@"); ok {
		return modelRef{model: m, stage: st}
	}
	if m, v, ok := strings.Cut(s, ":"); ok {
		return modelRef{model: m, version: v}
	}
	return modelRef{model: s}
}

// resolveVersion finds the recorded version a reference names; a bare
// model names its newest recorded version.
func resolveVersion(recs state.Records, ref modelRef) (*state.ModelVersion, error) {
	v := ref.version
	if ref.stage != "" {
		st, _, err := recs.Stages(ref.model)
		if err != nil {
			return nil, err
		}
		if st == nil || st.Stages[ref.stage] == nil {
			return nil, fmt.Errorf("model %s has no version in stage %s", ref.model, ref.stage)
		}
		v = st.Stages[ref.stage].ModelVersion
	}
	if v == "" {
		vs, err := recs.ModelVersions(ref.model)
		if err != nil {
			return nil, err
		}
		if len(vs) == 0 {
			return nil, fmt.Errorf("model %s has no recorded version", ref.model)
		}
		var newest *state.ModelVersion
		for _, name := range vs {
			mv, _, err := recs.ModelVersion(ref.model, name)
			if err != nil {
				return nil, err
			}
			if newest == nil || mv.Created.After(newest.Created) {
				newest = mv
			}
		}
		return newest, nil
	}
	mv, ok, err := recs.ModelVersion(ref.model, v)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("model %s has no recorded version %s", ref.model, v)
	}
	return mv, nil
}

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
			sess, recs, err := openRecords(cmd, g, true)
			if err != nil {
				return err
			}
			type row struct {
				*state.ModelVersion
				Stages []string `json:"stages"`
			}
			var rows []row
			for _, name := range slices.Sorted(maps.Keys(sess.cfg.Models)) {
				st, _, err := recs.Stages(name)
				if err != nil {
					return err
				}
				vs, err := recs.ModelVersions(name)
				if err != nil {
					return err
				}
				for _, v := range vs {
					mv, _, err := recs.ModelVersion(name, v)
					if err != nil {
						return err
					}
					r := row{ModelVersion: mv, Stages: []string{}}
					if st != nil {
						for _, s := range slices.Sorted(maps.Keys(st.Stages)) {
							if st.Stages[s].ModelVersion == v {
								r.Stages = append(r.Stages, s)
							}
						}
					}
					rows = append(rows, r)
				}
			}
			if g.output == "json" {
				if rows == nil {
					rows = []row{}
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
			_, recs, err := openRecords(cmd, g, false)
			if err != nil {
				return err
			}
			mv, err := resolveVersion(recs, parseModelRef(args[0]))
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
			if st, _, _ := recs.Stages(mv.Model); st != nil {
				var in []string
				for _, s := range slices.Sorted(maps.Keys(st.Stages)) {
					if st.Stages[s].ModelVersion == mv.ModelVersion {
						in = append(in, s)
					}
				}
				if len(in) > 0 {
					fmt.Fprintf(w, "  stages:     %s\n", strings.Join(in, ", "))
				}
			}
			run, _, err := recs.Run(mv.RunID)
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
	commit, dirty := mv.RunCommit, mv.RunDirty
	if commit == "" && dirty == "" && run != nil {
		commit, dirty = run.SourceCommit, run.DirtyDigest
	}
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
