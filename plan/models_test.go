package plan

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/schema/gate"
	"github.com/zen-dev/zen/state"
)

// modelState is a state ref's model records, for ModelRecorded.
type modelState struct {
	recorded
	versions map[string]*state.ModelVersion // model/version
	stages   map[string]*state.Stages
}

func (m *modelState) ModelVersion(model, version string) (*state.ModelVersion, bool, error) {
	mv, ok := m.versions[model+"/"+version]
	return mv, ok, nil
}

func (m *modelState) Stages(model string) (*state.Stages, bool, error) {
	st, ok := m.stages[model]
	return st, ok, nil
}

// TestPlanRollback plans stage moves to recorded versions under gates
// they no longer pass: a move back to a version the stage held is a
// rollback, its gate not evaluated; a move to a version the stage never
// held, or held under another digest, meets its gate.
func TestPlanRollback(t *testing.T) {
	a, b := "sha256:"+strings.Repeat("aa", 32), "sha256:"+strings.Repeat("bb", 32)
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	then := &state.GateResult{Expression: "score >= 0.5", Results: []string{"score >= 0.5: 0.8 ✓"}, Passed: true}
	held := &state.Tenure{ModelVersion: "1.0.0", Digest: a, SourceCommit: "c1", From: t0, To: t0.Add(time.Hour), Gate: then}
	stages := []string{"production", "staging", "canary"}
	parse := func(src string) *gate.Expr {
		g, err := gate.Parse(src, stages)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	cfg := &schema.Config{Models: map[string]*schema.Model{"scorer": {
		Name:     "scorer",
		Versions: map[string]json.RawMessage{"1.0.0": json.RawMessage(`{}`), "1.1.0": json.RawMessage(`{}`)},
		Stages:   map[string]string{"production": "1.0.0", "staging": "1.0.0", "canary": "1.0.0"},
		Gates: map[string]*gate.Expr{
			"production": parse("score > production.score"),
			"staging":    parse("score >= 0.85"),
			"canary":     parse("score >= 0.85"),
		},
	}}}
	rec := &modelState{
		versions: map[string]*state.ModelVersion{
			"scorer/1.0.0": {ModelVersion: "1.0.0", Digest: a, Declared: json.RawMessage(`{}`), Metrics: map[string]float64{"train.score": 0.8}},
			"scorer/1.1.0": {ModelVersion: "1.1.0", Digest: b, Declared: json.RawMessage(`{}`), Metrics: map[string]float64{"train.score": 0.9}},
		},
		stages: map[string]*state.Stages{"scorer": {Model: "scorer",
			Stages: map[string]*state.Stage{
				"production": {ModelVersion: "1.1.0", Digest: b, Updated: t0.Add(time.Hour)},
				"staging":    {ModelVersion: "1.1.0", Digest: b, Updated: t0},
				"canary":     {ModelVersion: "1.1.0", Digest: b, Updated: t0.Add(time.Hour)},
			},
			History: map[string][]*state.Tenure{
				"production": {held},
				// 1.0.0 by name, but not the recorded version's digest.
				"canary": {{ModelVersion: "1.0.0", Digest: b, From: t0, To: t0.Add(time.Hour), Gate: then}},
			},
		}},
	}
	changes, err := planModels(cfg, &Plan{}, rec)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*ModelChange{}
	for _, c := range changes {
		got[c.Stage] = c
	}
	if c := got["production"]; c == nil || c.Rollback != held || c.Refused != "" || len(c.GateResults) != 0 || c.From != "1.1.0" {
		t.Errorf("production: %+v, want a rollback to %+v with no gate evaluated", c, held)
	}
	for _, stage := range []string{"staging", "canary"} {
		c := got[stage]
		if c == nil || c.Rollback != nil || c.Refused != "gate failed" || strings.Join(c.GateResults, " && ") != "score >= 0.85: 0.8 ✗" {
			t.Errorf("%s: %+v, want its gate evaluated and failed", stage, c)
		}
	}

	// A version whose record is gone is refused, rollback or not.
	delete(rec.versions, "scorer/1.0.0")
	cfg.Models["scorer"].Versions = map[string]json.RawMessage{"1.1.0": json.RawMessage(`{}`)}
	changes, err = planModels(cfg, &Plan{}, rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Stage == "production" && (c.Rollback != nil || c.Refused != "version 1.0.0 is not produced") {
			t.Errorf("production without 1.0.0's record: %+v", c)
		}
	}
}
