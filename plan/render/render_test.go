package render

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/state"
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

// TestRollback draws a stage moving back to a version it held: the line
// names the earlier tenure and the gate result recorded then, in text and
// markdown alike, and the JSON plan carries the tenure.
func TestRollback(t *testing.T) {
	from := time.Date(2026, 11, 23, 10, 15, 30, 0, time.UTC)
	held := &state.Tenure{ModelVersion: "1.0.0", Digest: "sha256:aa", SourceCommit: "1a2b", From: from, To: from.Add(26 * time.Hour),
		Gate: &state.GateResult{Expression: "accuracy >= 0.8", Results: []string{"accuracy >= 0.8: 0.963 ✓"}, Passed: true}}
	p := example()
	p.Models = []*plan.ModelChange{
		{Model: "fraud", Version: "1.0.0", Stage: "production", Action: plan.Run, From: "1.1.0", Gate: "accuracy > production.accuracy", Rollback: held},
		{Model: "fraud", Version: "0.9.0", Stage: "canary", Action: plan.Run, From: "1.0.0", Rollback: &state.Tenure{From: from, To: from.Add(time.Minute)}},
	}
	want := []string{
		"  ~ stage fraud/production 1.1.0 → 1.0.0: rollback to a version this stage held from 2026-11-23 10:15 UTC to 2026-11-24 12:15 UTC; gate passed then: accuracy >= 0.8: 0.963 ✓\n",
		"  ~ stage fraud/canary 1.0.0 → 0.9.0: rollback to a version this stage held from 2026-11-23 10:15 UTC to 2026-11-23 10:16 UTC; no gate result recorded then\n",
	}
	var b bytes.Buffer
	Text(&b, p, Style{})
	for _, w := range want {
		if !strings.Contains(b.String(), w) {
			t.Errorf("text: no %q in\n%s", w, b.String())
		}
	}
	b.Reset()
	Markdown(&b, p)
	if w := "| `~` | stage fraud/production 1.1.0 → 1.0.0: rollback to a version this stage held from 2026-11-23 10:15 UTC to 2026-11-24 12:15 UTC; gate passed then: accuracy &gt;= 0.8: 0.963 ✓ |\n"; !strings.Contains(b.String(), w) {
		t.Errorf("markdown: no %q in\n%s", w, b.String())
	}
	b.Reset()
	if err := JSON(&b, p); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Models []struct {
			Rollback *state.Tenure `json:"rollback"`
		}
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if r := got.Models[0].Rollback; r == nil || !r.From.Equal(held.From) || !r.To.Equal(held.To) || r.Gate == nil || !r.Gate.Passed || r.Gate.Results[0] != held.Gate.Results[0] {
		t.Errorf("JSON rollback = %+v, want %+v", r, held)
	}
	if !strings.Contains(b.String(), `"rollback": {`) || !strings.Contains(b.String(), `"expression": "accuracy \u003e= 0.8"`) {
		t.Errorf("JSON:\n%s", b.String())
	}
}

// TestBaselineMove draws a pipeline that runs nothing but moves its
// baseline: the pipeline line says so and why, and the summary counts it
// as a change, in text and markdown.
func TestBaselineMove(t *testing.T) {
	p := &plan.Plan{Version: plan.Version, Stack: "local", Store: "oci-layout .zen/store", Source: plan.Source{Commit: "0b3d372c4f49aa"},
		Pipelines: []*plan.Pipeline{{Name: "demo", Baseline: &plan.Baseline{From: "c66bb95ef01f4d", Steps: []string{"double", "report"}}, Steps: []*plan.Step{
			{Name: "double", Action: plan.Cached, Key: "aa78282475eaff", CachedFrom: "r1"},
			{Name: "report", Action: plan.Cached, Key: "0e841b370857ff", CachedFrom: "r1"},
		}}}}
	var b bytes.Buffer
	Text(&b, p, Style{})
	for _, want := range []string{
		"\npipeline demo: all 2 steps cached; baseline moves (from c66bb95ef01f; other keys: double, report)\n",
		"\nPlan: 1 baseline to move; 2 steps cached, none to run.\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	Markdown(&b, p)
	if !strings.Contains(b.String(), "<summary>pipeline <b>demo</b>: all 2 steps cached; baseline moves (from c66bb95ef01f; other keys: double, report)</summary>") {
		t.Errorf("markdown:\n%s", b.String())
	}
	p.Pipelines[0].Baseline.From = ""
	if got := BaselineNote(p.Pipelines[0].Baseline); got != "; baseline moves (none recorded; other keys: double, report)" {
		t.Errorf("no baseline yet: %q", got)
	}
}
