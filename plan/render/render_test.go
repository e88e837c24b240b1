package render

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/zen-dev/zen/plan"
)

func example() *plan.Plan {
	return &plan.Plan{
		Version: plan.Version, Stack: "local", Store: "oci-layout .zen/store",
		Source:    plan.Source{Commit: "1a2b3c4d5e6f7a8b9c0d", Dirty: true, DirtyDigest: "sha256:abcdef0123456789", Changed: []string{"zen.cue"}},
		Overrides: []plan.Override{{Path: "training.n_estimators", Value: 200.0}},
		Pipelines: []*plan.Pipeline{{Name: "training", Steps: []*plan.Step{
			{Name: "load", Action: plan.Cached, Key: "3f2a9c1d7e4b5a6b", CachedFrom: "20261123-101500.123-3fa2c1"},
			{Name: "train", Action: plan.Run, Reasons: []plan.Reason{{Kind: plan.ReasonCode, Subject: "steps/train.py", Old: "a", New: "b"}, {Kind: plan.ReasonParameter, Subject: "n_estimators", Old: "100", New: "200"}}},
			{Name: "evaluate", Action: plan.Create, Reasons: []plan.Reason{{Kind: plan.ReasonUpstream, Subject: "train"}}},
		}}},
	}
}

func TestText(t *testing.T) {
	var b bytes.Buffer
	Text(&b, example(), Style{})
	want := `stack local (artifact store oci-layout .zen/store), source 1a2b3c4d5e6f
! the work tree has uncommitted changes (1 path): runs will be recorded as dirty (abcdef012345)
! experiment: training.n_estimators=200 (recorded as an experiment; the pipeline's baseline is not updated)

pipeline training: run 2 of 3 steps
  = load      cached (key 3f2a9c1d7e4b, from run 20261123-101500.123-3fa2c1)
  ~ train     code changed: steps/train.py; parameter changed: n_estimators 100 → 200
  + evaluate  upstream re-runs: train
Plan: 1 pipeline to run, 2 steps to run, 1 cached.
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	Text(&b, example(), Style{Color: true})
	if !strings.Contains(b.String(), "\x1b[33m~\x1b[0m train") {
		t.Fatalf("no colour on a terminal:\n%q", b.String())
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, example()); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Version   int  `json:"format_version"`
		Changes   bool `json:"changes"`
		Summary   plan.Summary
		Pipelines []struct {
			Steps []struct {
				Name    string
				Action  string
				Reasons []plan.Reason
			}
		}
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || !got.Changes || got.Summary.Run != 2 || got.Summary.Cached != 1 {
		t.Fatalf("header: %+v", got)
	}
	if s := got.Pipelines[0].Steps[1]; s.Action != "run" || s.Reasons[1].Kind != plan.ReasonParameter || s.Reasons[1].Old != "100" {
		t.Fatalf("step: %+v", s)
	}
}

func TestSummaryNothingToDo(t *testing.T) {
	p := example()
	for _, s := range p.Pipelines[0].Steps {
		s.Action = plan.Cached
	}
	if got := Summary(p); got != "No changes. 3 steps cached; nothing to run." {
		t.Fatalf("got %q", got)
	}
}

func TestMarkdown(t *testing.T) {
	p := example()
	p.StateCommit = "9f8e7d6c5b4a39281706"
	p.Pipelines = append(p.Pipelines, &plan.Pipeline{Name: "nightly", Steps: []*plan.Step{
		{Name: "report", Action: plan.Cached, Key: "aaaabbbbccccdddd", CachedFrom: "r1"},
	}})
	p.Models = []*plan.ModelChange{
		{Model: "fraud", Version: "1.1.0", Action: plan.Create, From: "training.train.model"},
		{Model: "fraud", Version: "1.1.0", Stage: "production", Action: plan.Run, From: "1.0.0", Gate: "roc_auc >= 0.85", GateResults: []string{"roc_auc >= 0.85: 0.91 ✓"}},
		{Model: "fraud", Version: "0.9.0", Stage: "canary", Action: plan.Run, From: "1.0.0", GateResults: []string{"f1 > 0.5: 0.4 ✗"}, Refused: "gate failed"},
	}
	var b bytes.Buffer
	Markdown(&b, p)
	want := "### Plan: 1 pipeline to run, 2 steps to run, 2 cached, 1 new version, 1 stage change, 1 refused.\n" +
		"\n" +
		"Stack `local` (oci-layout .zen/store) · source `1a2b3c4d5e6f` · state `9f8e7d6c5b4a`\n" +
		"\n" +
		"> **!** the work tree has uncommitted changes (1 path): runs will be recorded as dirty\n" +
		"> **!** experiment: \\`training.n\\_estimators=200\\`\n" +
		"\n" +
		"<details open><summary>pipeline <b>training</b>: run 2 of 3 steps</summary>\n" +
		"\n" +
		"| | step | why |\n" +
		"|---|---|---|\n" +
		"| `=` | load | cached (key 3f2a9c1d7e4b, from run 20261123-101500.123-3fa2c1) |\n" +
		"| `~` | train | code changed: steps/train.py; parameter changed: n\\_estimators 100 → 200 |\n" +
		"| `+` | evaluate | upstream re-runs: train |\n" +
		"\n" +
		"</details>\n" +
		"\n" +
		"<details><summary>pipeline <b>nightly</b>: 1 step cached</summary>\n" +
		"\n" +
		"| | step | why |\n" +
		"|---|---|---|\n" +
		"| `=` | report | cached (key aaaabbbbcccc, from run r1) |\n" +
		"\n" +
		"</details>\n" +
		"\n" +
		"**Models**\n" +
		"\n" +
		"| | change |\n" +
		"|---|---|\n" +
		"| `+` | model fraud 1.1.0 from training.train.model |\n" +
		"| `~` | stage fraud/production 1.0.0 → 1.1.0, gate roc\\_auc &gt;= 0.85: 0.91 ✓ |\n" +
		"| `!` | stage fraud/canary 1.0.0 → 0.9.0, gate f1 &gt; 0.5: 0.4 ✗: refused: gate failed |\n"
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if strings.Contains(b.String(), "\x1b") {
		t.Error("terminal codes in markdown")
	}
}
