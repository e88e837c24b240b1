package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/view"
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
			return view.ModelTable(g.stdout, rows)
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
			run, err := sess.RecordedRun(mv.RunID)
			if err != nil {
				return err
			}
			return view.ModelVersion(g.stdout, mv, sess.VersionStages(mv), run)
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}
