package zen

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// PipelineGraph is a pipeline's step graph.
type PipelineGraph struct {
	Name  string      `json:"name"`
	Steps []string    `json:"steps"` // in the order they can run
	Edges []GraphEdge `json:"edges"`
}

// GraphEdge is an input of step To that reads step From's output.
type GraphEdge struct {
	From   string `json:"from"`
	Output string `json:"output"`
	To     string `json:"to"`
	Input  string `json:"input"`
}

// Graph gives the step graphs of the pipelines named, or of all of cfg's
// pipelines, by name.
func Graph(cfg *schema.Config, pipelines ...string) ([]PipelineGraph, error) {
	names := cfg.PipelineNames()
	for _, pn := range pipelines {
		if _, ok := cfg.Pipelines[pn]; !ok {
			return nil, fmt.Errorf("no pipeline %q (pipelines: %s)", pn, strings.Join(names, ", "))
		}
	}
	if len(pipelines) > 0 {
		names = pipelines
	}
	var out []PipelineGraph
	for _, pn := range names {
		p := cfg.Pipelines[pn]
		out = append(out, PipelineGraph{Name: pn, Steps: p.Order, Edges: Edges(p)})
	}
	return out, nil
}

// Edges lists the edges of a pipeline's step graph, by step in run order
// then input name; empty, not nil, for none.
func Edges(p *schema.Pipeline) []GraphEdge {
	out := []GraphEdge{}
	for _, name := range p.Order {
		s := p.Steps[name]
		for _, in := range s.InputNames() {
			if i := s.Inputs[in]; i.Kind == schema.InputStep {
				out = append(out, GraphEdge{From: i.Step, Output: i.Output, To: name, Input: in})
			}
		}
	}
	return out
}

// RunGraph is the step graph of a recorded run, as its record has it: the
// steps in the run's order, and an edge for each input a step read from
// another step's output (the input's recorded source). It needs no CUE,
// so it draws runs of pipelines the work tree no longer declares.
func RunGraph(r *state.Run) PipelineGraph {
	g := PipelineGraph{Name: r.Pipeline, Steps: runOrder(r), Edges: []GraphEdge{}}
	for _, name := range g.Steps {
		s := r.Steps[name]
		for _, in := range slices.Sorted(maps.Keys(s.Sources)) {
			if up, out, ok := sourceStep(r, s.Sources[in]); ok {
				g.Edges = append(g.Edges, GraphEdge{From: up, Output: out, To: name, Input: in})
			}
		}
	}
	return g
}

// sourceStep reads an input's recorded source as STEP.OUTPUT of a step of
// run r; ok is false for any other source (a file or folder of the
// repository, data, a model).
func sourceStep(r *state.Run, source string) (step, output string, ok bool) {
	up, out, ok := strings.Cut(source, ".")
	if !ok || strings.Contains(source, "/") || r.Steps[up] == nil {
		return "", "", false
	}
	return up, out, true
}
