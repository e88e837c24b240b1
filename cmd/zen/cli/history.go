package cli

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/plan/render"
	"github.com/zen-dev/zen/state"
)

// event is one change to a model: a version recorded, or a stage moved.
type event struct {
	When         time.Time `json:"when"`
	Kind         string    `json:"kind"` // version, stage
	Version      string    `json:"version,omitempty"`
	Digest       string    `json:"digest,omitempty"`
	Stage        string    `json:"stage,omitempty"`
	From         string    `json:"from,omitempty"` // a stage's previous version
	StateCommit  string    `json:"state_commit"`
	AppliedBy    string    `json:"applied_by"`
	SourceCommit string    `json:"source_commit,omitempty"`
	Source       string    `json:"source_subject,omitempty"` // e.g. "Merge pull request #12 from ..."
	// Gate is the gate a stage move was checked against, with its values
	// and verdict (for a rollback, the result of the tenure it returned
	// to); absent when the stage had none, or the record is older than
	// zen recording it.
	Gate *state.GateResult `json:"gate,omitempty"`
	// Rollback, for a stage moved back to a version it held before, is
	// that earlier tenure.
	Rollback *state.Tenure `json:"rollback,omitempty"`
}

func newHistory(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "history MODEL",
		Short: "List every version and stage change of a model, from git history",
		Long: `History walks the state ref's commits and lists, oldest first, each
version recorded and each stage change of the model: when, which state
commit, who applied it, and the source commit it was applied from (with
its subject, which names the pull request when it is a merge). Under a
stage change is the gate it passed, with its values, or, for a rollback,
the earlier tenure it went back to and the gate result recorded then.`,
		Example: "  zen history iris-classifier\n  zen history iris-classifier --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := openRead(cmd, g, false)
			if err != nil {
				return err
			}
			model := args[0]
			log, err := sess.state.Log(0)
			if err != nil {
				return err
			}
			var events []event
			versions := map[string]bool{}
			stages := map[string]string{}
			for i := len(log) - 1; i >= 0; i-- {
				entry := log[i]
				sn, err := sess.state.At(entry.Commit)
				if err != nil {
					return err
				}
				recs := state.Records{Snapshot: sn, Ref: sess.state.Ref()}
				vs, err := recs.ModelVersions(model)
				if err != nil {
					return err
				}
				for _, v := range vs {
					if versions[v] {
						continue
					}
					versions[v] = true
					mv, _, err := recs.ModelVersion(model, v)
					if err != nil {
						return err
					}
					events = append(events, event{When: entry.When, Kind: "version", Version: v, Digest: mv.Digest, StateCommit: entry.Commit, AppliedBy: entry.Author, SourceCommit: mv.SourceCommit})
				}
				st, _, err := recs.Stages(model)
				if err != nil {
					return err
				}
				now := map[string]string{}
				var src string
				if st != nil {
					for name, s := range st.Stages {
						now[name] = s.ModelVersion
						src = s.SourceCommit
					}
				}
				for _, name := range slices.Sorted(maps.Keys(merge(now, stages))) {
					if now[name] != stages[name] {
						e := event{When: entry.When, Kind: "stage", Stage: name, Version: now[name], From: stages[name], StateCommit: entry.Commit, AppliedBy: entry.Author}
						if st != nil && st.Stages[name] != nil {
							s := st.Stages[name]
							e.SourceCommit, e.Digest, e.Gate, e.Rollback = s.SourceCommit, s.Digest, s.Gate, s.Rollback
						} else {
							e.SourceCommit = src
						}
						events = append(events, e)
					}
				}
				stages = now
			}
			for i := range events {
				if c, err := sess.ws.Repo.CommitObject(plumbing.NewHash(events[i].SourceCommit)); err == nil {
					events[i].Source = strings.SplitN(c.Message, "\n", 2)[0]
				}
			}
			if g.output == "json" {
				if events == nil {
					events = []event{}
				}
				return writeJSON(g.stdout, events)
			}
			if len(events) == 0 {
				return fmt.Errorf("no history for model %q on %s", model, sess.state.Ref())
			}
			for _, e := range events {
				var what string
				switch {
				case e.Kind == "version":
					what = fmt.Sprintf("+ version %s %s", e.Version, short(strings.TrimPrefix(e.Digest, "sha256:")))
				case e.Version == "":
					what = fmt.Sprintf("- stage %s (was %s)", e.Stage, e.From)
				default:
					from := e.From
					if from == "" {
						from = "(none)"
					}
					what = fmt.Sprintf("~ stage %s %s → %s", e.Stage, from, e.Version)
					if e.Rollback != nil {
						what += " (rollback)"
					}
				}
				src := short(e.SourceCommit)
				if e.Source != "" {
					src += fmt.Sprintf(" %q", e.Source)
				}
				fmt.Fprintf(g.stdout, "%s  %-36s  state %s by %s, source %s\n", e.When.Local().Format("2006-01-02 15:04"), what, short(e.StateCommit), e.AppliedBy, src)
				// The gate a move passed, or the tenure a rollback went
				// back to, under the move: lines stay greppable by stage.
				switch {
				case e.Rollback != nil:
					fmt.Fprintf(g.stdout, "%18s%s\n", "", render.RollbackNote(e.Rollback))
				case e.Gate != nil:
					fmt.Fprintf(g.stdout, "%18sgate %s\n", "", e.Gate.String())
				}
			}
			return nil
		},
	}
}

func merge(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}
