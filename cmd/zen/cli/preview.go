package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/view"
)

func newPreview(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "preview",
		Short: "List and remove pull-request previews",
		Long: `A preview is what zen apply --preview ran for a branch: its runs and their
cache entries, recorded on refs/zen/preview/BRANCH and pushed beside the
state ref, never in it. zen plan --preview shows it for the pull request
(metrics against the state ref's latest run, the gates the merge would
check); the apply after the merge reuses its outputs, running nothing
the preview ran, and records the runs it reused on the state ref.

Previews of merged or closed branches are removed with zen preview clean:
what the state ref reused is kept there.`,
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the previews, fetched from the remote",
		Long: `List fetches the previews from the state's remote and lists them: the
branch, its runs, the newest run and its status, and "gone" when the branch
is no longer on the remote (merged and deleted, or closed).`,
		Example: "  zen preview list\n  zen preview list --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := open(g, false)
			if err != nil {
				return err
			}
			ps, err := sess.ListPreviews(cmd.Context())
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, ps)
			}
			return view.Previews(g.stdout, ps)
		},
	}
	var gone, dryRun bool
	clean := &cobra.Command{
		Use:   "clean [BRANCH...]",
		Short: "Remove the previews of merged or closed branches",
		Long: `Clean removes the previews of the branches named, and with --gone those of
every branch no longer on the remote (merged and deleted, or closed), on
the remote and in the clone. The runs the state ref reused from a preview
were recorded on it by the apply that reused them, and stay there; the
rest of the preview's runs are removed with it. --dry-run lists what would
be removed.

The apply job after a merge runs zen preview clean --gone once it has
applied (zen init --ci writes it so).`,
		Example: "  zen preview clean --gone\n  zen preview clean feature/lr-sweep\n  zen preview clean --gone --dry-run",
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := open(g, false)
			if err != nil {
				return err
			}
			done, err := sess.CleanPreviews(cmd.Context(), args, gone, dryRun)
			verb := "removed"
			if dryRun {
				verb = "would remove"
			}
			if g.output == "json" {
				if jerr := writeJSON(g.stdout, map[string]any{"removed": done, "dry_run": dryRun}); jerr != nil {
					return jerr
				}
			} else {
				for _, b := range done {
					fmt.Fprintf(g.stdout, "%s the preview of %s\n", verb, b)
				}
				if len(done) == 0 && err == nil {
					fmt.Fprintln(g.stdout, "no preview to remove")
				}
			}
			if err != nil && len(done) > 0 {
				err = fmt.Errorf("%w (removed before it: %s)", err, strings.Join(done, ", "))
			}
			return err
		},
	}
	clean.Flags().BoolVar(&gone, "gone", false, "also remove the previews of branches no longer on the remote")
	clean.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be removed, and remove nothing")
	cmd.AddCommand(list, clean)
	return cmd
}
