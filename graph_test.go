package zen

import (
	"slices"
	"testing"

	"github.com/zen-dev/zen/state"
)

// The step graph has an edge for each input that reads another step's
// output.
func TestGraph(t *testing.T) {
	_, p := appliedRepo(t)
	cfg, err := p.Config()
	if err != nil {
		t.Fatal(err)
	}
	graphs, err := Graph(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(graphs) != 1 || graphs[0].Name != "demo" || !slices.Equal(graphs[0].Steps, []string{"prep", "train"}) {
		t.Fatalf("graphs: %+v", graphs)
	}
	if e := graphs[0].Edges; len(e) != 1 || e[0] != (GraphEdge{From: "prep", Output: "data", To: "train", Input: "data"}) {
		t.Errorf("edges: %+v", e)
	}
	if _, err := Graph(cfg, "nope"); err == nil || err.Error() != `no pipeline "nope" (pipelines: demo)` {
		t.Errorf("an unknown pipeline: %v", err)
	}
}

// A run's graph comes from its record: an edge for each input read from
// another step of the run, none for files or steps it lacks.
func TestRunGraph(t *testing.T) {
	r := &state.Run{Pipeline: "p", Order: []string{"load", "train"}, Steps: map[string]*state.StepResult{
		"load":  {Sources: map[string]string{"raw": "data/iris.csv"}},
		"train": {Sources: map[string]string{"data": "load.train", "extra": "gone.x", "model": "model m@production"}},
	}}
	g := RunGraph(r)
	want := []GraphEdge{{From: "load", Output: "train", To: "train", Input: "data"}}
	if g.Name != "p" || !slices.Equal(g.Steps, r.Order) || !slices.Equal(g.Edges, want) {
		t.Fatalf("RunGraph: %+v", g)
	}
}
