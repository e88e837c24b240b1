package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/view"
)

func newLineage(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "lineage MODEL[:VERSION|@STAGE]",
		Short: "Trace a model version to its run, source commit, steps, parameters and inputs",
		Long: `Lineage prints where a model version came from: its digest and signing
key, the run that produced it, the source commit (subject and author, from
this clone's history), and every step upstream of its output with the
step's command, parameters, code files and input digests.

It reads only the state ref and the git history, so it works from a fresh
clone after git fetch origin 'refs/zen/*:refs/zen/*'.`,
		Example: "  zen lineage iris-classifier:1.0.0\n  zen lineage iris-classifier@production --output json\n  zen lineage iris-classifier@production --format dot | dot -Tsvg > lineage.svg",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := openRead(cmd, g, false)
			if err != nil {
				return err
			}
			found, err := sess.Lineage(zen.ParseModelRef(args[0]))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, found)
			}
			switch format {
			case "text":
				return view.LineageText(g.stdout, found)
			case "dot":
				return view.LineageDot(g.stdout, found)
			case "mermaid":
				return view.LineageMermaid(g.stdout, found)
			}
			return fmt.Errorf("--format %q: want text, dot or mermaid", format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "text, dot or mermaid")
	return cmd
}
