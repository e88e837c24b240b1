package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/schema"
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
				graphText(g.stdout, cfg, graphs)
			case "dot":
				graphDot(g.stdout, graphs)
			case "mermaid":
				graphMermaid(g.stdout, graphs)
			default:
				return fmt.Errorf("--format %q: want text, dot or mermaid", format)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "text, dot or mermaid")
	return cmd
}

func graphText(w io.Writer, cfg *schema.Config, graphs []zen.PipelineGraph) {
	for i, pg := range graphs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		p := cfg.Pipelines[pg.Name]
		fmt.Fprintf(w, "pipeline %s\n", pg.Name)
		width := 0
		for _, s := range pg.Steps {
			width = max(width, len(s))
		}
		for _, sn := range pg.Steps {
			s := p.Steps[sn]
			var ins []string
			for _, in := range s.InputNames() {
				ins = append(ins, s.Inputs[in].Source())
			}
			line := fmt.Sprintf("  %-*s", width, sn)
			if len(ins) > 0 {
				line += "  ← " + strings.Join(ins, ", ")
			}
			if outs := s.OutputNames(); len(outs) > 0 {
				line += "  → " + strings.Join(outs, ", ")
			}
			fmt.Fprintln(w, strings.TrimRight(line, " "))
		}
	}
}

func graphDot(w io.Writer, graphs []zen.PipelineGraph) {
	fmt.Fprintln(w, "digraph zen {")
	fmt.Fprintln(w, "  rankdir=LR;")
	for _, pg := range graphs {
		pn := pg.Name
		fmt.Fprintf(w, "  subgraph \"cluster_%s\" {\n    label=%q;\n", pn, pn)
		for _, sn := range pg.Steps {
			fmt.Fprintf(w, "    %q [label=%q];\n", pn+"."+sn, sn)
		}
		fmt.Fprintln(w, "  }")
		for _, e := range pg.Edges {
			fmt.Fprintf(w, "  %q -> %q [label=%q];\n", pn+"."+e.From, pn+"."+e.To, e.Output)
		}
	}
	fmt.Fprintln(w, "}")
}

// graphMermaid draws the graph for Mermaid. Node ids are made up (p0s1):
// Mermaid reads '-' in an id as part of an arrow, and joining names with
// '_' would give pipeline a's step b_c and pipeline a_b's step c one id.
func graphMermaid(w io.Writer, graphs []zen.PipelineGraph) {
	fmt.Fprintln(w, "flowchart LR")
	for i, pg := range graphs {
		id := map[string]string{}
		for j, sn := range pg.Steps {
			id[sn] = fmt.Sprintf("p%ds%d", i, j)
		}
		fmt.Fprintf(w, "  subgraph p%d [\"%s\"]\n", i, pg.Name)
		for _, sn := range pg.Steps {
			fmt.Fprintf(w, "    %s[\"%s\"]\n", id[sn], sn)
		}
		fmt.Fprintln(w, "  end")
		for _, e := range pg.Edges {
			fmt.Fprintf(w, "  %s -->|%s| %s\n", id[e.From], e.Output, id[e.To])
		}
	}
}
