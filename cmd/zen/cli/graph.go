package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

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
			names := cfg.PipelineNames()
			if len(args) == 1 {
				if _, ok := cfg.Pipelines[args[0]]; !ok {
					return fmt.Errorf("no pipeline %q (pipelines: %s)", args[0], strings.Join(names, ", "))
				}
				names = args
			}
			if g.output == "json" {
				return writeJSON(g.stdout, graphJSON(cfg, names))
			}
			switch format {
			case "text":
				graphText(g.stdout, cfg, names)
			case "dot":
				graphDot(g.stdout, cfg, names)
			case "mermaid":
				graphMermaid(g.stdout, cfg, names)
			default:
				return fmt.Errorf("--format %q: want text, dot or mermaid", format)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "text, dot or mermaid")
	return cmd
}

type edge struct{ from, output, to, input string }

func edges(p *schema.Pipeline) []edge {
	var out []edge
	for _, name := range p.Order {
		s := p.Steps[name]
		for _, in := range s.InputNames() {
			if i := s.Inputs[in]; i.Kind == schema.InputStep {
				out = append(out, edge{i.Step, i.Output, name, in})
			}
		}
	}
	return out
}

func graphText(w io.Writer, cfg *schema.Config, names []string) {
	for i, pn := range names {
		if i > 0 {
			fmt.Fprintln(w)
		}
		p := cfg.Pipelines[pn]
		fmt.Fprintf(w, "pipeline %s\n", pn)
		width := 0
		for _, s := range p.Order {
			width = max(width, len(s))
		}
		for _, sn := range p.Order {
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

func graphDot(w io.Writer, cfg *schema.Config, names []string) {
	fmt.Fprintln(w, "digraph zen {")
	fmt.Fprintln(w, "  rankdir=LR;")
	for _, pn := range names {
		p := cfg.Pipelines[pn]
		fmt.Fprintf(w, "  subgraph \"cluster_%s\" {\n    label=%q;\n", pn, pn)
		for _, sn := range p.Order {
			fmt.Fprintf(w, "    %q [label=%q];\n", pn+"."+sn, sn)
		}
		fmt.Fprintln(w, "  }")
		for _, e := range edges(p) {
			fmt.Fprintf(w, "  %q -> %q [label=%q];\n", pn+"."+e.from, pn+"."+e.to, e.output)
		}
	}
	fmt.Fprintln(w, "}")
}

// graphMermaid draws the graph for Mermaid. Node ids are made up (p0s1):
// Mermaid reads '-' in an id as part of an arrow, and joining names with
// '_' would give pipeline a's step b_c and pipeline a_b's step c one id.
func graphMermaid(w io.Writer, cfg *schema.Config, names []string) {
	fmt.Fprintln(w, "flowchart LR")
	for i, pn := range names {
		p := cfg.Pipelines[pn]
		id := map[string]string{}
		for j, sn := range p.Order {
			id[sn] = fmt.Sprintf("p%ds%d", i, j)
		}
		fmt.Fprintf(w, "  subgraph p%d [\"%s\"]\n", i, pn)
		for _, sn := range p.Order {
			fmt.Fprintf(w, "    %s[\"%s\"]\n", id[sn], sn)
		}
		fmt.Fprintln(w, "  end")
		for _, e := range edges(p) {
			fmt.Fprintf(w, "  %s -->|%s| %s\n", id[e.from], e.output, id[e.to])
		}
	}
}

func graphJSON(cfg *schema.Config, names []string) any {
	type jsonEdge struct {
		From   string `json:"from"`
		Output string `json:"output"`
		To     string `json:"to"`
		Input  string `json:"input"`
	}
	type jsonPipeline struct {
		Name  string     `json:"name"`
		Steps []string   `json:"steps"`
		Edges []jsonEdge `json:"edges"`
	}
	var out []jsonPipeline
	for _, pn := range names {
		p := cfg.Pipelines[pn]
		jp := jsonPipeline{Name: pn, Steps: p.Order, Edges: []jsonEdge{}}
		for _, e := range edges(p) {
			jp.Edges = append(jp.Edges, jsonEdge{e.from, e.output, e.to, e.input})
		}
		out = append(out, jp)
	}
	return out
}
