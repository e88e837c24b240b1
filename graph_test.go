package zen

import (
	"slices"
	"testing"
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
