package plan

import (
	"context"
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

// TestVersionFromExperimentOutput plans a version whose output's key was
// first stored by an experiment: a clean commit that gives that key makes
// the version from it, running nothing; an experiment or a dirty plan is
// refused, naming the steps a commit of it would re-run, from the keys.
func TestVersionFromExperimentOutput(t *testing.T) {
	src := files{"data.csv": "sha256:d1", "load.py": "sha256:l1", "train.py": "sha256:t1", "exe:python3": "sha256:py"}
	cfg := pipeline()
	cfg.Models = map[string]*schema.Model{"m": {Name: "m", Versions: map[string]json.RawMessage{"1.0.0": json.RawMessage(`{}`)}, Pipeline: "p", Step: "train", Output: "model"}}
	rec := &modelState{recorded: recorded{cache: map[string]*state.Cache{}, pipelines: map[string]*state.Pipeline{}}}
	st := store{}
	record(t, cfg, src, &rec.recorded, st)
	for _, c := range rec.cache {
		c.Experiment, c.RunID = true, "exp"
	}
	version := func(p *Plan) *ModelChange {
		t.Helper()
		for _, c := range p.Models {
			if c.IsVersion() {
				return c
			}
		}
		t.Fatal("no version planned")
		return nil
	}
	commit := Source{Commit: "c2"}

	p, err := Compute(context.Background(), cfg, rec, src, st, Options{Source: commit})
	if err != nil {
		t.Fatal(err)
	}
	if c := version(p); c.Refused != "" || p.Summary().Run != 0 {
		t.Errorf("clean commit with the experiment's keys: refused %q, %d steps to run; want the version, nothing run", c.Refused, p.Summary().Run)
	}

	// An experiment of other values: train has no output with its key.
	cfg.Pipelines["p"].Steps["train"].Parameters["lr"] = json.Number("0.3")
	exp := Options{Source: commit, Overrides: []Override{{Path: "p.lr", Value: 0.3}}}
	p, err = Compute(context.Background(), cfg, rec, src, st, exp)
	if err != nil {
		t.Fatal(err)
	}
	want := "an experiment (--set) makes no model version: commit the values it sets, then zen apply, which re-runs only the steps whose keys have no outputs yet: train"
	if got := version(p).Refused; got != want {
		t.Errorf("experiment: %q, want %q", got, want)
	}
	// Dirty, with the keys cached: a commit of it re-runs nothing.
	cfg.Pipelines["p"].Steps["train"].Parameters["lr"] = json.Number("0.1")
	p, err = Compute(context.Background(), cfg, rec, src, st, Options{Source: Source{Commit: "c2", Dirty: true, DirtyDigest: "sha256:dd"}})
	if err != nil {
		t.Fatal(err)
	}
	want = "a work tree with uncommitted changes makes no model version: commit them, then zen apply, which makes it from these outputs and re-runs no step (the commit gives the same keys)"
	if got := version(p).Refused; got != want {
		t.Errorf("dirty: %q, want %q", got, want)
	}
	// No commit at all: commit first.
	p, err = Compute(context.Background(), cfg, rec, src, st, Options{Source: Source{Dirty: true}})
	if err != nil {
		t.Fatal(err)
	}
	if got := version(p).Refused; got != "a model version is produced only from a commit: commit first" {
		t.Errorf("no commit: %q", got)
	}
}

// TestVersionSteps lists a step and what it depends on, in run order,
// leaving out the steps it does not read from.
func TestVersionSteps(t *testing.T) {
	step := func(name string, from ...string) *schema.Step {
		s := &schema.Step{Name: name, Inputs: map[string]*schema.Input{}}
		for _, f := range from {
			s.Inputs[f] = &schema.Input{Name: f, Kind: schema.InputStep, Step: f, Output: "o"}
		}
		return s
	}
	pl := &schema.Pipeline{Name: "p", Order: []string{"a", "b", "side", "c", "d"}, Steps: map[string]*schema.Step{
		"a": step("a"), "b": step("b", "a"), "side": step("side"), "c": step("c", "a", "b"), "d": step("d", "c", "side"),
	}}
	for step, want := range map[string]string{"c": "a,b,c", "d": "a,b,side,c,d", "a": "a", "nope": ""} {
		if got := strings.Join(VersionSteps(pl, step), ","); got != want {
			t.Errorf("VersionSteps(%s) = %q, want %q", step, got, want)
		}
	}
}

// TestPreviewPlan plans a preview whose outputs a branch's preview made:
// its steps are cached from the preview, no baseline moves, only steps to
// run count as changes, and a new version's gate is evaluated on the
// reused outputs' metrics. The plan on the default branch after the merge
// reuses them the same way, and moves the baseline.
func TestPreviewPlan(t *testing.T) {
	src := files{"data.csv": "sha256:d1", "load.py": "sha256:l1", "train.py": "sha256:t1", "exe:python3": "sha256:py"}
	cfg := pipeline()
	g, err := gate.Parse("score >= 0.5", []string{"production"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Models = map[string]*schema.Model{"m": {Name: "m", Versions: map[string]json.RawMessage{"1.0.0": json.RawMessage(`{}`)},
		Stages: map[string]string{"production": "1.0.0"}, Gates: map[string]*gate.Expr{"production": g}, Pipeline: "p", Step: "train", Output: "model"}}
	rec := &modelState{recorded: recorded{cache: map[string]*state.Cache{}, pipelines: map[string]*state.Pipeline{}}}
	st := store{}
	record(t, cfg, src, &rec.recorded, st)
	rec.pipelines = map[string]*state.Pipeline{} // the base branch never ran p
	for _, c := range rec.cache {
		c.Preview, c.RunID = "feat", "pr1"
		if c.Step == "train" {
			c.Metrics = map[string]float64{"score": 0.9}
		}
	}
	pv := &Preview{Branch: "feat", Ref: "refs/zen/preview/feat"}
	p, err := Compute(context.Background(), cfg, rec, src, st, Options{Source: Source{Commit: "c2"}, Preview: pv})
	if err != nil {
		t.Fatal(err)
	}
	if p.Preview != pv || p.Pipelines[0].Baseline != nil || p.Changes() {
		t.Errorf("preview plan: preview %v, baseline %+v, changes %v; want the preview, no baseline, no changes", p.Preview, p.Pipelines[0].Baseline, p.Changes())
	}
	for _, s := range p.Pipelines[0].Steps {
		if s.Action != Cached || s.Preview != "feat" || s.CachedFrom != "pr1" {
			t.Errorf("step %s: %s from %q (preview %q); want cached from the preview's run", s.Name, s.Action, s.CachedFrom, s.Preview)
		}
	}
	var stage *ModelChange
	for _, c := range p.Models {
		if c.Stage == "production" {
			stage = c
		}
	}
	if stage == nil || stage.GatePending || strings.Join(stage.GateResults, "") != "score >= 0.5: 0.9 ✓" || stage.Refused != "" {
		t.Fatalf("production: %+v; want the gate evaluated on the preview's metrics and passed", stage)
	}
	if sum := p.Summary(); sum.Versions != 1 || sum.Promotions != 1 {
		t.Errorf("summary %+v: want the version and the stage move the merge makes", sum)
	}

	// A failing gate is refused before the merge.
	for _, c := range rec.cache {
		if c.Step == "train" {
			c.Metrics = map[string]float64{"score": 0.3}
		}
	}
	if p, err = Compute(context.Background(), cfg, rec, src, st, Options{Source: Source{Commit: "c2"}, Preview: pv}); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Models {
		if c.Stage == "production" && (c.Refused != "gate failed" || strings.Join(c.GateResults, "") != "score >= 0.5: 0.3 ✗") {
			t.Errorf("production with score 0.3: %+v; want the gate failed", c)
		}
	}

	// After the merge: the same keys, cached from the preview; the
	// baseline moves; that is a change.
	p, err = Compute(context.Background(), cfg, rec, src, st, Options{Source: Source{Commit: "c3"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Summary().Run != 0 || p.Pipelines[0].Baseline == nil || !p.Changes() {
		t.Errorf("after the merge: %d to run, baseline %+v, changes %v; want nothing to run and the baseline moving", p.Summary().Run, p.Pipelines[0].Baseline, p.Changes())
	}
}
