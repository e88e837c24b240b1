package zen

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zen-dev/zen/state"
)

// modelsCUE declares a pipeline of two steps whose second makes a model
// version, which a gated stage holds.
const modelsCUE = `package zen

pipelines: demo: {
	parameters: quality: 8
	steps: {
		prep: {
			run: ["sh", "-c", "echo preparing; echo data > $ZEN_OUTPUTS/data"]
			outputs: data: type: "file"
		}
		train: {
			run: ["sh", "-c", "mkdir $ZEN_OUTPUTS/model && echo weights > $ZEN_OUTPUTS/model/weights.bin && echo '{\"score\": 0.8}' > $ZEN_METRICS"]
			inputs: data: steps.prep.outputs.data
			parameters: quality: pipelines.demo.parameters.quality
			outputs: model: {type: "model", model: "scorer"}
		}
	}
}

models: scorer: {
	versions: {"1.0.0": {}}
	stages: production: "1.0.0"
	gates: production: "score >= 0.5"
}
`

// appliedRepo is a repository of modelsCUE, committed and applied once:
// one run, model scorer 1.0.0 in stage production, signed with the
// repository's key pair.
func appliedRepo(t *testing.T) (string, *Project) {
	t.Helper()
	dir := testRepo(t)
	files := map[string]string{"zen.cue": modelsCUE, ".gitignore": "/cosign.pub\n/other.*\n"}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runGit(t, dir, "add", "-A")
	runGit(t, dir, "commit", "-q", "-m", "model 1.0.0 to production")
	p, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	applyOnce(t, p, PlanOptions{ForApply: true})
	return dir, p
}

// applyOnce plans with opts and applies the plan.
func applyOnce(t *testing.T, p *Project, opts PlanOptions) {
	t.Helper()
	ctx := context.Background()
	pl, err := p.Plan(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Apply(ctx, pl, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Runs lists runs newest first; Run finds one by id, unique prefix or
// "latest", and says when it cannot.
func TestRuns(t *testing.T) {
	_, p := appliedRepo(t)
	runs, err := p.Runs(RunsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Pipeline != "demo" || runs[0].Status != state.StatusSucceeded {
		t.Fatalf("runs: %+v", runs)
	}
	first := runs[0].ID
	if none, err := p.Runs(RunsQuery{Pipeline: "other"}); err != nil || len(none) != 0 {
		t.Errorf("runs of another pipeline: %v, %v", none, err)
	}
	for _, id := range []string{"latest", first, first[:len(first)-3]} {
		r, err := p.Run(id)
		if err != nil || r.ID != first {
			t.Errorf("Run(%q): %v, %v", id, r, err)
		}
	}
	if _, err := p.Run("nope"); err == nil || err.Error() != `no run "nope" on refs/zen/state (see zen runs list)` {
		t.Errorf("Run(nope): %v", err)
	}

	// An experiment records a second run, the newest.
	applyOnce(t, p, PlanOptions{ForApply: true, Sets: []string{"demo.quality=9"}})
	runs, err = p.Runs(RunsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[1].ID != first || !runs[0].Experiment {
		t.Fatalf("after an experiment: %+v", runs)
	}
	if limited, _ := p.Runs(RunsQuery{Limit: 1}); len(limited) != 1 || limited[0].ID != runs[0].ID {
		t.Errorf("limit 1: %+v", limited)
	}
	// A pipeline's runs, found through the index of runs by pipeline.
	if demo, err := p.Runs(RunsQuery{Pipeline: "demo"}); err != nil || len(demo) != 2 || demo[0].ID != runs[0].ID || demo[1].ID != first {
		t.Errorf("runs of demo: %+v, %v", demo, err)
	}
	if demo, err := p.Runs(RunsQuery{Pipeline: "demo", Limit: 1}); err != nil || len(demo) != 1 || demo[0].ID != runs[0].ID {
		t.Errorf("runs of demo, limit 1: %+v, %v", demo, err)
	}
	if r, err := p.Run("latest"); err != nil || r.ID != runs[0].ID {
		t.Errorf("latest: %v, %v", r, err)
	}
	if _, err := p.Run(first[:2]); err == nil || !strings.Contains(err.Error(), "is ambiguous: "+runs[1].ID+", "+runs[0].ID) {
		t.Errorf("a prefix of both: %v", err)
	}
	if subs, err := p.Submitted(""); err != nil || len(subs) != 0 {
		t.Errorf("submissions of a local stack: %v, %v", subs, err)
	}
}

// A project with no runs says how to record one.
func TestRunsNone(t *testing.T) {
	p, err := Open(testRepo(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if runs, err := p.Runs(RunsQuery{}); err != nil || len(runs) != 0 {
		t.Errorf("runs: %v, %v", runs, err)
	}
	if _, err := p.Run("latest"); err == nil || err.Error() != "no runs recorded on refs/zen/state yet: zen apply records one" {
		t.Errorf("Run(latest): %v", err)
	}
	if err := p.Refresh(context.Background()); err != nil {
		t.Errorf("Refresh without a remote: %v", err)
	}
}

// A step's log and outputs come from the store of the run's stack.
func TestStepLogAndOutput(t *testing.T) {
	_, p := appliedRepo(t)
	ctx := context.Background()
	log, err := p.StepLog(ctx, "latest", "prep", "")
	if err != nil {
		t.Fatal(err)
	}
	if string(log) != "preparing\n" {
		t.Errorf("log: %q", log)
	}
	if _, err := p.StepLog(ctx, "latest", "nope", ""); err == nil || !strings.Contains(err.Error(), `has no step "nope" (steps: prep, train)`) {
		t.Errorf("no such step: %v", err)
	}
	r, a, err := p.StepOutput("latest", "prep", "data")
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "data")
	if err := p.PullArtifact(ctx, r, "", a.Digest, dest); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(dest); err != nil || string(b) != "data\n" {
		t.Errorf("pulled %q, %v", b, err)
	}
	if _, _, err := p.StepOutput("latest", "prep", "nope"); err == nil || !strings.Contains(err.Error(), `step prep has no output "nope" (outputs: data)`) {
		t.Errorf("no such output: %v", err)
	}
	if err := p.PullArtifact(ctx, r, "elsewhere", a.Digest, dest+"2"); err == nil || !strings.Contains(err.Error(), `unknown stack "elsewhere"`) {
		t.Errorf("an unknown stack: %v", err)
	}
}
