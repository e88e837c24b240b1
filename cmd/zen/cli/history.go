package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/plan/render"
)

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
			events, err := sess.History(model)
			if err != nil {
				return err
			}
			if g.output == "json" {
				if events == nil {
					events = []zen.ModelEvent{}
				}
				return writeJSON(g.stdout, events)
			}
			if len(events) == 0 {
				return fmt.Errorf("no history for model %q on %s", model, sess.state.Ref())
			}
			for _, e := range events {
				var what string
				switch {
				case e.Kind == zen.EventVersion:
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
