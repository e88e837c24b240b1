package view

import (
	"fmt"
	"io"
	"strings"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/schema"
)

// GraphText draws each pipeline's steps in the order they can run, with
// the inputs each step reads (as cfg declares them) and its outputs.
func GraphText(out io.Writer, cfg *schema.Config, graphs []zen.PipelineGraph) error {
	w := &writer{w: out}
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
	return w.err
}

// GraphDot draws the step graphs for Graphviz, a cluster per pipeline.
func GraphDot(out io.Writer, graphs []zen.PipelineGraph) error {
	w := &writer{w: out}
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
	return w.err
}

// GraphMermaid draws the step graphs for Mermaid, a subgraph per
// pipeline. Node ids are made up (p0s1): Mermaid reads '-' in an id as
// part of an arrow, and joining names with '_' would give pipeline a's
// step b_c and pipeline a_b's step c one id.
func GraphMermaid(out io.Writer, graphs []zen.PipelineGraph) error {
	w := &writer{w: out}
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
	return w.err
}
