package zen

import (
	"slices"
	"strings"
	"testing"

	"github.com/zen-dev/zen/state"
)

// Lineage follows a version to its run, source commit and every step
// upstream of its output.
func TestLineage(t *testing.T) {
	_, p := appliedRepo(t)
	l, err := p.Lineage(ParseModelRef("scorer@production"))
	if err != nil {
		t.Fatal(err)
	}
	if l.Output != "demo.train.model" || l.Run.Status != state.StatusSucceeded || !l.SameSource() {
		t.Errorf("lineage: %+v", l)
	}
	if l.Source.Subject != "model 1.0.0 to production" || l.Source.Author != "Zen Test <test@zen.invalid>" || l.Source.Missing {
		t.Errorf("source commit: %+v", l.Source)
	}
	var names []string
	for _, st := range l.Steps {
		names = append(names, st.Name)
	}
	if !slices.Equal(names, []string{"train", "prep"}) {
		t.Fatalf("steps %v", names)
	}
	in := l.Steps[0].Inputs
	if len(in) != 1 || in[0].Name != "data" || in[0].Source != "prep.data" || in[0].Step != "prep" || in[0].Digest != l.Steps[1].Outputs["data"].Digest {
		t.Errorf("train's inputs: %+v", in)
	}
	if c := p.CommitInfo(strings.Repeat("0", 40)); !c.Missing {
		t.Errorf("a commit the clone lacks: %+v", c)
	}
}
