package zen

import (
	"testing"
)

// History lists the version recorded and the stage moved, with the gate
// the move passed and the source commit's subject.
func TestHistory(t *testing.T) {
	_, p := appliedRepo(t)
	events, err := p.History("scorer")
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Fatalf("events: %+v", events)
	}
	v, s := events[0], events[1]
	if v.Kind != EventVersion || v.Version != "1.0.0" || v.Digest == "" || v.Source != "model 1.0.0 to production" {
		t.Errorf("version event: %+v", v)
	}
	if s.Kind != EventStage || s.Stage != "production" || s.From != "" || s.Version != "1.0.0" || s.Gate == nil || s.Rollback != nil {
		t.Errorf("stage event: %+v", s)
	}
	if none, err := p.History("other"); err != nil || len(none) != 0 {
		t.Errorf("another model: %v, %v", none, err)
	}
}
