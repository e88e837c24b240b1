package zen

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zen-dev/zen/registry/verify"
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
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "model 1.0.0 to production")
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

// Models lists versions with their stages; a reference names a version
// by number, stage or (bare) as the newest.
func TestModels(t *testing.T) {
	_, p := appliedRepo(t)
	rows, err := p.Models()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].ModelVersion.ModelVersion != "1.0.0" || !slices.Equal(rows[0].Stages, []string{"production"}) || rows[0].SignedBy == "" {
		t.Fatalf("models: %+v", rows)
	}
	for _, ref := range []string{"scorer", "scorer:1.0.0", "scorer@production"} {
		mv, err := p.ModelVersion(ParseModelRef(ref))
		if err != nil || mv.ModelVersion != "1.0.0" {
			t.Errorf("%s: %v, %v", ref, mv, err)
			continue
		}
		if got := p.VersionStages(mv); !slices.Equal(got, []string{"production"}) {
			t.Errorf("%s: stages %v", ref, got)
		}
		run, err := p.RecordedRun(mv.RunID)
		if err != nil || run == nil {
			t.Fatalf("run %s: %v, %v", mv.RunID, run, err)
		}
		if commit, dirty := RunSource(mv, run); commit != run.SourceCommit || dirty != "" {
			t.Errorf("run source %q %q, want %s", commit, dirty, run.SourceCommit)
		}
	}
	for ref, want := range map[string]string{
		"scorer@staging": "model scorer has no version in stage staging",
		"scorer:9":       "model scorer has no recorded version 9",
		"other":          "model other has no recorded version",
	} {
		if _, err := p.ModelVersion(ParseModelRef(ref)); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %s", ref, err, want)
		}
	}
	for _, s := range []string{"m", "m:1", "m@prod"} {
		if got := ParseModelRef(s).String(); got != s {
			t.Errorf("ParseModelRef(%q).String() = %q", s, got)
		}
	}
}

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

// Verification checks a model version and every artifact of a run
// against the stack's key; another key fails with a typed error.
func TestVerify(t *testing.T) {
	dir, p := appliedRepo(t)
	ctx := context.Background()
	mv, err := p.VerifyModel(ctx, ParseModelRef("scorer@production"), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mv.Version.ModelVersion != "1.0.0" || mv.KeyID == "" || mv.Key != "key "+mv.KeyID {
		t.Errorf("model: %+v", mv)
	}
	rv, err := p.VerifyRun(ctx, "latest", VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range rv.Artifacts {
		got = append(got, c.Step+"."+c.Artifact)
		if !c.OK || c.Run != rv.Run.ID {
			t.Errorf("%s.%s: %+v", c.Step, c.Artifact, c)
		}
	}
	if want := []string{"prep.data", "prep.log", "train.model", "train.log"}; !slices.Equal(got, want) {
		t.Errorf("artifacts %v, want %v", got, want)
	}
	if rv.Err() != nil || rv.Key != mv.Key {
		t.Errorf("run: %v, key %q", rv.Err(), rv.Key)
	}

	// Another key: the model and each artifact are signed, but not by it.
	if _, _, err := GenerateKeys(dir, filepath.Join(dir, "other"), nil); err != nil {
		t.Fatal(err)
	}
	other := VerifyOptions{Key: filepath.Join(dir, "other.pub"), KeyName: "other.pub"}
	_, err = p.VerifyModel(ctx, ParseModelRef("scorer:1.0.0"), other)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Kind != verify.OtherKey || !strings.HasPrefix(err.Error(), "model scorer 1.0.0 (sha256:") {
		t.Errorf("model, another key: %v", err)
	}
	rv, err = p.VerifyRun(ctx, "latest", other)
	if err != nil {
		t.Fatal(err)
	}
	if rv.Key != "other.pub" || rv.Failed() != 4 {
		t.Errorf("run, another key: key %q, %d failed", rv.Key, rv.Failed())
	}
	if err := rv.Err(); !errors.As(err, &ve) || ve.Kind != verify.OtherKey || err.Error() != "run "+rv.Run.ID+": 4 of 4 artifacts do not verify" {
		t.Errorf("run, another key: %v", err)
	}

	// A stack that is not declared.
	if _, err := p.VerifyRun(ctx, "latest", VerifyOptions{Stack: "elsewhere"}); err == nil || !strings.Contains(err.Error(), `unknown stack "elsewhere"`) {
		t.Errorf("an unknown stack: %v", err)
	}
}

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

// Watch with nothing submitted collects nothing; it takes the clone's
// apply lock, and refuses while an apply holds it.
func TestWatchNothing(t *testing.T) {
	p, err := Open(testRepo(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := p.Watch(ctx, WatchOptions{Run: "2026"})
	if err != nil || w.Pending != 0 || w.Pushed || w.Remote != "" {
		t.Errorf("Watch: %+v, %v", w, err)
	}
	pl, err := p.Plan(ctx, PlanOptions{ForApply: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Release()
	if w, err := p.Watch(ctx, WatchOptions{}); err == nil || w != nil {
		t.Errorf("Watch while a plan for an apply holds the lock: %+v, %v", w, err)
	}
}
