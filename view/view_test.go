package view

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/apply"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// t0 is in the local zone, as the renderers show times.
var t0 = time.Date(2026, 11, 23, 10, 15, 0, 0, time.Local)

const (
	commitA = "c0ffee0000000000000000000000000000000000"
	commitB = "beef000000000000000000000000000000000000"
)

// draw runs a renderer into a string.
func draw(t *testing.T, render func(*strings.Builder) error) string {
	t.Helper()
	var b strings.Builder
	if err := render(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// golden compares a drawing with what it should be, line by line in the
// failure message.
func golden(t *testing.T, name, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

// lineage is a version whose output a run of another commit made, in an
// experiment, from two steps.
func lineage() *zen.Lineage {
	return &zen.Lineage{
		Model: "iris", Version: "1.0.0", Digest: "sha256:aaa", SignedBy: "k1", Output: "train.fit.model",
		Run: zen.LineageRun{
			ID: "r1", Pipeline: "train", Status: state.StatusSucceeded, Stack: "local", Started: t0,
			Source:    zen.Commit{Commit: commitA, Subject: "tune", Author: "Ann", When: t0},
			Overrides: map[string]any{"train.n": 3},
		},
		Source: zen.Commit{Commit: commitB, Missing: true},
		Steps: []zen.LineageStep{
			{
				Name: "fit", Command: []string{"python", "fit.py"},
				Parameters: map[string]json.RawMessage{"n": json.RawMessage("3")},
				Code:       map[string]string{"fit.py": "sha256:c1"},
				Inputs:     []zen.LineageInput{{Name: "data", Source: "prep.data", Digest: "sha256:d1", Step: "prep"}},
				Outputs:    map[string]state.Artifact{"model": {Digest: "sha256:m1"}},
			},
			{Name: "prep", RunID: "r0", Inputs: []zen.LineageInput{{Name: "raw", Source: "data/iris.csv", Digest: "sha256:f1"}}},
		},
	}
}

func TestLineage(t *testing.T) {
	l := lineage()
	golden(t, "text", draw(t, func(b *strings.Builder) error { return LineageText(b, l) }), `model iris 1.0.0 sha256:aaa
├─ signed by key k1
├─ from train.fit.model in run r1 (succeeded, stack local, 2026-11-23 10:15:00)
├─ run r1 ran from commit c0ffee0000000000000000000000000000000000 "tune" by Ann, 2026-11-23 10:15:00, an experiment: train.n=3
├─ source commit beef000000000000000000000000000000000000 (not in this clone: git fetch it) (declares the version)
├─ step fit
│  ├─ command: python fit.py
│  ├─ parameter n = 3
│  ├─ code fit.py sha256:c1
│  ├─ input data ← prep.data sha256:d1
│  └─ output model sha256:m1
└─ step prep (reused from run r0)
   └─ input raw ← data/iris.csv sha256:f1
`)
	golden(t, "dot", draw(t, func(b *strings.Builder) error { return LineageDot(b, l) }), `digraph lineage {
  rankdir=LR;
  "step fit" -> "model iris 1.0.0" [label="model"];
  "step prep" -> "step fit" [label="data"];
  "data/iris.csv" -> "step prep" [label="raw"];
  "commit c0ffee000000" -> "run r1" [label="source"];
  "run r1" -> "model iris 1.0.0" [label="produced"];
  "commit beef00000000" -> "model iris 1.0.0" [label="declared"];
}
`)
	golden(t, "mermaid", draw(t, func(b *strings.Builder) error { return LineageMermaid(b, l) }), `flowchart LR
  n0["step fit"] -->|model| n1["model iris 1.0.0"]
  n2["step prep"] -->|data| n0["step fit"]
  n3["data/iris.csv"] -->|raw| n2["step prep"]
  n4["commit c0ffee000000"] -->|source| n5["run r1"]
  n5["run r1"] -->|produced| n1["model iris 1.0.0"]
  n6["commit beef00000000"] -->|declared| n1["model iris 1.0.0"]
`)

	// A version made by a clean run of its own commit: no "ran from"
	// line, and no separate declaring commit in the graph.
	l.Run.Source, l.Run.Overrides = l.Source, nil
	text := draw(t, func(b *strings.Builder) error { return LineageText(b, l) })
	if strings.Contains(text, "ran from") {
		t.Errorf("same source, yet:\n%s", text)
	}
	if dot := draw(t, func(b *strings.Builder) error { return LineageDot(b, l) }); strings.Contains(dot, "declared") {
		t.Errorf("same source, yet:\n%s", dot)
	}
}

// config declares pipeline eval, one step, and train, two steps the
// second of which reads the first's output.
func config() *schema.Config {
	return &schema.Config{Pipelines: map[string]*schema.Pipeline{
		"eval": {Name: "eval", Order: []string{"score"}, Steps: map[string]*schema.Step{"score": {Name: "score"}}},
		"train": {Name: "train", Order: []string{"prep", "fit"}, Steps: map[string]*schema.Step{
			"prep": {
				Name:    "prep",
				Inputs:  map[string]*schema.Input{"raw": {Name: "raw", Kind: schema.InputFile, Path: "data/iris.csv"}},
				Outputs: map[string]*schema.Output{"data": {Name: "data"}},
			},
			"fit": {
				Name:    "fit",
				Inputs:  map[string]*schema.Input{"data": {Name: "data", Kind: schema.InputStep, Step: "prep", Output: "data"}},
				Outputs: map[string]*schema.Output{"model": {Name: "model"}, "metrics": {Name: "metrics"}},
			},
		}},
	}}
}

func TestGraph(t *testing.T) {
	cfg := config()
	graphs, err := zen.Graph(cfg)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "text", draw(t, func(b *strings.Builder) error { return GraphText(b, cfg, graphs) }), `pipeline eval
  score

pipeline train
  prep  ← data/iris.csv  → data
  fit   ← prep.data  → metrics, model
`)
	golden(t, "dot", draw(t, func(b *strings.Builder) error { return GraphDot(b, graphs) }), `digraph zen {
  rankdir=LR;
  subgraph "cluster_eval" {
    label="eval";
    "eval.score" [label="score"];
  }
  subgraph "cluster_train" {
    label="train";
    "train.prep" [label="prep"];
    "train.fit" [label="fit"];
  }
  "train.prep" -> "train.fit" [label="data"];
}
`)
	golden(t, "mermaid", draw(t, func(b *strings.Builder) error { return GraphMermaid(b, graphs) }), `flowchart LR
  subgraph p0 ["eval"]
    p0s0["score"]
  end
  subgraph p1 ["train"]
    p1s0["prep"]
    p1s1["fit"]
  end
  p1s0 -->|data| p1s1
`)
}

// run is a failed experiment from a dirty tree: one step reused, one
// failed on a cluster node after a retry.
func run() *state.Run {
	fitStart, fitEnd := t0, t0.Add(1234*time.Millisecond)
	return &state.Run{
		ID: "r1", Pipeline: "train", Status: state.StatusFailed, Error: "step fit failed",
		SourceCommit: commitA, Dirty: true, DirtyDigest: "sha256:dd",
		Experiment: true, Overrides: map[string]any{"train.n": 3},
		Stack: "local", Orchestrator: "local", Store: "oci-layout",
		Parameters: map[string]any{"n": 3, "kind": "rf", "opt": map[string]any{"lr": 0.1}},
		Started:    t0, Finished: t0.Add(1500 * time.Millisecond),
		Order: []string{"prep", "fit"},
		Steps: map[string]*state.StepResult{
			"prep": {Status: state.StatusCached, CachedFrom: "r0", Outputs: map[string]state.Artifact{"data": {Type: "file", Size: 10, Digest: "sha256:d1"}}},
			"fit": {
				Status: state.StatusFailed, Started: &fitStart, Finished: &fitEnd, Attempts: 2,
				Job: "42", Node: "n1", Reason: "exit status 1", Metrics: map[string]float64{"acc": 0.5},
			},
		},
	}
}

func TestRun(t *testing.T) {
	golden(t, "detail", draw(t, func(b *strings.Builder) error { return Run(b, run()) }), `run r1
  pipeline:  train
  status:    failed
  error:     step fit failed
  source:    c0ffee0000000000000000000000000000000000 with uncommitted changes sha256:dd
  experiment: train.n=3
  stack:     local (orchestrator local, artifact store oci-layout)
  started:   2026-11-23 10:15:00 (1.5s)
  parameters:
    kind = rf
    n = 3
    opt = {"lr":0.1}
  steps:
    prep: cached (from run r0)
      output data (file, 10 bytes) sha256:d1
    fit: failed in 1.234s after 2 attempts on n1 (job 42): exit status 1
      metric acc = 0.5
`)

	submitted := &state.Run{ID: "r2", Pipeline: "train", Status: state.StatusSubmitted, Stack: "hpc", Orchestrator: "slurm", Store: "oci", Started: t0,
		Steps: map[string]*state.StepResult{"b": {Status: state.StatusSubmitted, Job: "7"}, "a": {Status: state.StatusCached}}}
	golden(t, "submitted", draw(t, func(b *strings.Builder) error { return Run(b, submitted) }), `run r2
  pipeline:  train
  status:    submitted
  source:    (no commit)
  stack:     hpc (orchestrator slurm, artifact store oci)
  started:   2026-11-23 10:15:00 (on the cluster, not collected yet: zen runs watch r2)
  steps:
    a: cached
    b: submitted (job 7)
`)

	golden(t, "table", draw(t, func(b *strings.Builder) error { return RunTable(b, []*state.Run{run(), submitted}) }), ""+
		"RUN  PIPELINE  STATUS     STEPS                  SOURCE                           STARTED\n"+
		"r1   train     failed     1 cached, 1 failed     c0ffee000000+dirty (experiment)  2026-11-23 10:15:00\n"+
		"r2   train     submitted  1 cached, 1 submitted  -                                2026-11-23 10:15:00\n")
}

func TestApplied(t *testing.T) {
	r := run()
	res := &apply.Result{Runs: []*state.Run{r}, Baselines: []string{"eval"}, Models: []string{"+ iris 1.0.0"}, StateCommit: commitB}
	golden(t, "failed", draw(t, func(b *strings.Builder) error { return Applied(b, res, "refs/zen/state") }), `
run r1 of train failed: 0 ran, 1 cached, 1 did not complete (dirty, experiment)
  step fit failed
baseline of eval moved: every step cached, none ran
+ iris 1.0.0
recorded on refs/zen/state at beef00000000
`)

	sub := &state.Run{ID: "r2", Pipeline: "train", Status: state.StatusSubmitted,
		Steps: map[string]*state.StepResult{"a": {Status: state.StatusSubmitted}, "b": {Status: state.StatusSubmitted}, "c": {Status: state.StatusCached}}}
	res = &apply.Result{Runs: []*state.Run{sub}, StateCommit: commitB, Submission: &state.Submission{Runs: []string{"r2"}, Jobs: 2}}
	golden(t, "detached", draw(t, func(b *strings.Builder) error { return Applied(b, res, "refs/zen/state") }), `
run r2 of train submitted: 2 jobs, 1 cached
recorded on refs/zen/state at beef00000000
the jobs run on without zen: zen runs watch r2 waits for them and records the run, as does the next zen apply
`)
}

func TestHistory(t *testing.T) {
	events := []zen.ModelEvent{
		{When: t0, Kind: zen.EventVersion, Version: "1.0.0", Digest: "sha256:abcdef1234567890", StateCommit: commitB, AppliedBy: "ann", SourceCommit: commitA, Source: "Merge pull request #1"},
		{When: t0, Kind: zen.EventStage, Stage: "production", Version: "1.0.0", StateCommit: commitB, AppliedBy: "ann", SourceCommit: commitA},
		{When: t0, Kind: zen.EventStage, Stage: "staging", From: "1.0.0", StateCommit: commitB, AppliedBy: "bob"},
	}
	golden(t, "history", draw(t, func(b *strings.Builder) error { return History(b, events) }), ""+
		`2026-11-23 10:15  + version 1.0.0 abcdef123456          state beef00000000 by ann, source c0ffee000000 "Merge pull request #1"`+"\n"+
		"2026-11-23 10:15  ~ stage production (none) → 1.0.0     state beef00000000 by ann, source c0ffee000000\n"+
		"2026-11-23 10:15  - stage staging (was 1.0.0)           state beef00000000 by bob, source \n")
}

func TestModels(t *testing.T) {
	mv := &state.ModelVersion{Model: "iris", ModelVersion: "1.0.0", Digest: "sha256:abcdef1234567890", Repository: "oci-layout:.zen/store",
		Pipeline: "train", Step: "fit", Output: "model", RunID: "r1", Created: t0, SourceCommit: commitB, RunCommit: commitA,
		SignedBy: "k1", Metrics: map[string]float64{"acc": 0.97}}
	golden(t, "table", draw(t, func(b *strings.Builder) error {
		return ModelTable(b, []zen.ModelListing{{ModelVersion: mv, Stages: []string{"production", "staging"}}})
	}), ""+
		"MODEL  VERSION  STAGES              DIGEST        RUN  SIGNED\n"+
		"iris   1.0.0    production,staging  abcdef123456  r1   yes\n")
	golden(t, "show", draw(t, func(b *strings.Builder) error { return ModelVersion(b, mv, []string{"production"}, run()) }), `model iris 1.0.0
  digest:     sha256:abcdef1234567890
  repository: oci-layout:.zen/store
  stages:     production
  produced:   train.fit.model in run r1, 2026-11-23 10:15:00
  run:        r1 ran from commit c0ffee0000000000000000000000000000000000, an experiment: train.n=3
  declared:   by commit beef000000000000000000000000000000000000, whose apply made the version
  signature:  signed by key k1
  metric acc = 0.97
`)
}

func TestVerify(t *testing.T) {
	mv := &state.ModelVersion{Model: "iris", ModelVersion: "1.0.0", Digest: "sha256:aaa", RunID: "r1", SourceCommit: commitB}
	golden(t, "model", draw(t, func(b *strings.Builder) error {
		return VerifiedModel(b, &zen.ModelVerification{Version: mv, Key: "cosign.pub"})
	}),
		"verified model iris 1.0.0 sha256:aaa: signature and provenance (run r1, commit beef00000000) by cosign.pub\n")
	mv.RunCommit, mv.RunDirty = commitA, "sha256:dd"
	golden(t, "model from another commit", draw(t, func(b *strings.Builder) error {
		return VerifiedModel(b, &zen.ModelVerification{Version: mv, Key: "cosign.pub"})
	}),
		"verified model iris 1.0.0 sha256:aaa: signature and provenance (run r1 from commit c0ffee000000 with uncommitted changes, declared by commit beef00000000) by cosign.pub\n")

	rv := &zen.RunVerification{Run: run(), Key: "key 1a2b", Artifacts: []*zen.ArtifactCheck{
		{Step: "prep", Artifact: "data", Digest: "sha256:d1", Run: "r0", SameAs: "load.data of run r0", OK: true},
		{Step: "fit", Artifact: "log", Digest: "sha256:l1", Run: "r1", Error: "no signature"},
	}}
	golden(t, "run", draw(t, func(b *strings.Builder) error { return ArtifactChecks(b, rv) }), `✓ prep.data sha256:d1 (from run r0) (same bytes as load.data of run r0)
✗ fit.log sha256:l1
    no signature
`)
	golden(t, "run verified", draw(t, func(b *strings.Builder) error { return VerifiedRun(b, rv) }),
		"verified run r1 of train: 2 artifacts, signature and provenance by key 1a2b\n")
}

func TestStacks(t *testing.T) {
	stacks := map[string]*schema.Stack{
		"local":  {Name: "local", Orchestrator: schema.Component{Flavor: "local"}, ArtifactStore: schema.Component{Flavor: "oci-layout"}},
		"shared": {Name: "shared", Description: "the team's registry", Orchestrator: schema.Component{Flavor: "slurm", Settings: map[string]any{"partition": "gpu", "account": "ml"}}, ArtifactStore: schema.Component{Flavor: "oci", Settings: map[string]any{"repository": "ghcr.io/acme/zen"}}},
	}
	golden(t, "list", draw(t, func(b *strings.Builder) error { return StackList(b, stacks, "shared") }), ""+
		"  local        orchestrator local  artifact store oci-layout .zen/store\n"+
		"* shared       orchestrator slurm  artifact store oci ghcr.io/acme/zen\n")
	golden(t, "show", draw(t, func(b *strings.Builder) error { return Stack(b, stacks["shared"]) }), `stack shared
  the team's registry
  orchestrator:   slurm (account=ml, partition=gpu)
  artifact_store: oci (repository=ghcr.io/acme/zen)
`)
}

// failing is a writer that fails every write.
type failing struct{}

func (failing) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// A renderer returns the first write error, and writes no more.
func TestWriteError(t *testing.T) {
	for name, render := range map[string]func() error{
		"lineage": func() error { return LineageText(failing{}, lineage()) },
		"run":     func() error { return Run(failing{}, run()) },
		"runs":    func() error { return RunTable(failing{}, []*state.Run{run()}) },
		"graph":   func() error { return GraphDot(failing{}, nil) },
	} {
		if err := render(); err == nil || err.Error() != "disk full" {
			t.Errorf("%s: %v", name, err)
		}
	}
}
