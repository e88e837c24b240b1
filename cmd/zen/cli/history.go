package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/view"
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
			return view.History(g.stdout, events)
		},
	}
}
