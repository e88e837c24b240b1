package zen

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zen-dev/zen/state"
)

// Metrics reads a run's metrics; MetricsDiff and ParamsDiff compare the
// latest run against the one before it of its pipeline, or the runs named.
func TestMetricsOfRuns(t *testing.T) {
	_, p := appliedRepo(t)
	m, err := p.Metrics("latest")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Steps) != 1 || m.Steps[0].Step != "train" || m.Steps[0].Metrics["score"] != 0.8 || m.Pipeline != "demo" {
		t.Fatalf("metrics: %+v", m)
	}
	first := m.Run
	if _, err := p.MetricsDiff("", ""); err == nil || !strings.Contains(err.Error(), "is the first of pipeline demo") {
		t.Errorf("diff of a single run: %v", err)
	}
	if _, err := p.Metrics("nope"); err == nil || !strings.Contains(err.Error(), `no run "nope"`) {
		t.Errorf("unknown run: %v", err)
	}

	applyOnce(t, p, PlanOptions{ForApply: true, Sets: []string{"demo.quality=9"}})
	d, err := p.ParamsDiff("", "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Old.ID != first || d.New.ID == first || !d.SamePipeline() {
		t.Fatalf("params diff runs: %+v", d)
	}
	if len(d.Rows) != 1 || d.Rows[0].Name != "quality" || d.Rows[0].Old != 8.0 || d.Rows[0].New != 9.0 || *d.Rows[0].Delta != 1 || *d.Rows[0].Percent != 12.5 || d.Rows[0].Change != Changed {
		t.Errorf("params diff: %s", jsonOf(d.Rows))
	}
	d, err = p.MetricsDiff(first, "latest")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Rows) != 1 || d.Rows[0].Step != "train" || d.Rows[0].Change != Unchanged || *d.Rows[0].Delta != 0 {
		t.Errorf("metrics diff: %s", jsonOf(d.Rows))
	}
	// Named the other way round.
	d, err = p.MetricsDiff("latest", first)
	if err != nil || d.Old.ID == first || d.New.ID != first {
		t.Errorf("diff latest against the first: %+v, %v", d, err)
	}
}

// DiffMetrics compares numbers with deltas and percentages, says which
// metrics one run lacks, and steps only one run has.
func TestDiffMetrics(t *testing.T) {
	a := &state.Run{ID: "a", Pipeline: "p", Order: []string{"prep", "train"}, Steps: map[string]*state.StepResult{
		"prep":  {Status: state.StatusSucceeded, Metrics: map[string]float64{"rows": 100}},
		"train": {Status: state.StatusSucceeded, Metrics: map[string]float64{"acc": 0.8, "loss": 0, "old": 1}},
	}}
	b := &state.Run{ID: "b", Pipeline: "q", Order: []string{"train", "eval"}, Steps: map[string]*state.StepResult{
		"train": {Status: state.StatusSucceeded, Metrics: map[string]float64{"acc": 0.9, "loss": 0.5, "new": 2}},
		"eval":  {Status: state.StatusSucceeded, Metrics: map[string]float64{"f1": 0.7}},
	}}
	d := DiffMetrics(a, b)
	if d.SamePipeline() {
		t.Error("runs of p and q: same pipeline")
	}
	var got []string
	for _, r := range d.Rows {
		s := r.Step + "." + r.Name + " " + r.Change + " " + jsonOf(r.Old) + " " + jsonOf(r.New)
		if r.Delta != nil {
			s += " " + jsonOf(*r.Delta)
		}
		if r.Percent != nil {
			s += " " + jsonOf(*r.Percent) + "%"
		}
		got = append(got, s)
	}
	want := []string{
		"train.acc changed 0.8 0.9 0.1 12.5%",
		"train.loss changed 0 0.5 0.5",
		"train.new added null 2",
		"train.old removed 1 null",
		"eval.f1 added null 0.7",
		"prep.rows removed 100 null",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// DiffParams compares numbers as numbers (whatever Go type holds them),
// anything else as text, and struct parameters field by field.
func TestDiffParams(t *testing.T) {
	a := &state.Run{ID: "a", Pipeline: "p", Started: time.Now(), Parameters: map[string]any{
		"lr": 0.1, "epochs": int64(10), "opt": "adam", "net": map[string]any{"depth": 3.0, "act": "relu"}, "tags": []any{"x"}, "gone": true,
	}}
	b := &state.Run{ID: "b", Pipeline: "p", Parameters: map[string]any{
		"lr": 0.05, "epochs": 10.0, "opt": "sgd", "net": map[string]any{"depth": 4, "act": "relu"}, "tags": []any{"x"},
	}}
	var got []string
	for _, r := range DiffParams(a, b).Rows {
		got = append(got, r.Name+" "+r.Change+" "+jsonOf(r.Old)+" "+jsonOf(r.New))
	}
	want := []string{
		`epochs unchanged 10 10`,
		`gone removed "true" null`,
		`lr changed 0.1 0.05`,
		`net.act unchanged "relu" "relu"`,
		`net.depth changed 3 4`,
		`opt changed "adam" "sgd"`,
		`tags unchanged "[\"x\"]" "[\"x\"]"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
