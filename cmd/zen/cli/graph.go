package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/view"
)

func newGraph(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "graph [PIPELINE]",
		Short: "Print the step graph of pipelines",
		Long: `Graph prints each pipeline's steps in the order they can run, with the
inputs each step reads. An edge comes from an input that references
another step's output. --format dot and mermaid draw the same graph for
Graphviz and Mermaid.`,
		Example: `  zen graph
  zen graph training --format dot | dot -Tsvg > training.svg
  zen graph --format mermaid`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(g)
			if err != nil {
				return err
			}
			graphs, err := zen.Graph(cfg, args...)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, graphs)
			}
			switch format {
			case "text":
				return view.GraphText(g.stdout, cfg, graphs)
			case "dot":
				return view.GraphDot(g.stdout, graphs)
			case "mermaid":
				return view.GraphMermaid(g.stdout, graphs)
			}
			return fmt.Errorf("--format %q: want text, dot or mermaid", format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "text, dot or mermaid")
	return cmd
}
