package view

import (
	"strings"
	"testing"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/state"
)

// diffRuns are two runs of pipeline p: a number changed, one new, one
// gone, a metric at 0 before, and a step of the old run only.
func diffRuns() (*state.Run, *state.Run) {
	a := &state.Run{ID: "r1", Pipeline: "p", Order: []string{"prep", "train"},
		Parameters: map[string]any{"lr": 0.1, "opt": "adam", "seed": 7.0},
		Steps: map[string]*state.StepResult{
			"prep":  {Status: state.StatusSucceeded, Metrics: map[string]float64{"rows": 100}},
			"train": {Status: state.StatusSucceeded, Metrics: map[string]float64{"acc": 0.8, "loss": 0, "old": 1}},
		}}
	b := &state.Run{ID: "r2", Pipeline: "p", Order: []string{"prep", "train"},
		Parameters: map[string]any{"lr": 0.05, "opt": "sgd", "seed": 7.0, "new|p": "x"},
		Steps: map[string]*state.StepResult{
			"prep":  {Status: state.StatusCached, Metrics: map[string]float64{"rows": 100}},
			"train": {Status: state.StatusSucceeded, Metrics: map[string]float64{"acc": 0.9, "loss": 0.25, "new": 2}},
		}}
	return a, b
}

func TestMetrics(t *testing.T) {
	_, b := diffRuns()
	m := zen.MetricsOf(b)
	golden(t, "text", draw(t, func(w *strings.Builder) error { return Metrics(w, m) }), `metrics of run r2 (pipeline p)
STEP           METRIC  VALUE
prep (cached)  rows    100
train          acc     0.9
train          loss    0.25
train          new     2
`)
	golden(t, "markdown", draw(t, func(w *strings.Builder) error { return MetricsMarkdown(w, m) }), mdq(`**Metrics** of run 'r2' (pipeline 'p')

| Step | Metric | Value |
| --- | --- | ---: |
| prep | rows | 100 |
| train | acc | 0.9 |
| train | loss | 0.25 |
| train | new | 2 |
`))
	none := zen.MetricsOf(&state.Run{ID: "r3", Pipeline: "p", Steps: map[string]*state.StepResult{"a": {Status: state.StatusSucceeded}}})
	golden(t, "none", draw(t, func(w *strings.Builder) error { return Metrics(w, none) }), `no metrics recorded in run r3 of p: a step records some by writing a JSON object of numbers to $ZEN_METRICS
`)
	golden(t, "none markdown", draw(t, func(w *strings.Builder) error { return MetricsMarkdown(w, none) }), `no metrics recorded in run r3 of p: a step records some by writing a JSON object of numbers to $ZEN_METRICS
`)
}

func TestDiff(t *testing.T) {
	a, b := diffRuns()
	md, pd := zen.DiffMetrics(a, b), zen.DiffParams(a, b)
	golden(t, "metrics", draw(t, func(w *strings.Builder) error { return Diff(w, md) }), `metrics of pipeline p: run r2 against run r1
   STEP   METRIC  OLD  NEW   DELTA    %
=  prep   rows    100  100   +0       +0.0%
~  train  acc     0.8  0.9   +0.1     +12.5%
~  train  loss    0    0.25  +0.25    —
+  train  new     —    2     added    —
-  train  old     1    —     removed  —
`)
	golden(t, "metrics markdown", draw(t, func(w *strings.Builder) error { return DiffMarkdown(w, md) }), mdq(`**metrics** of pipeline 'p': run 'r2' against run 'r1'

| Step | Metric | Old | New | Δ | % |
| --- | --- | ---: | ---: | ---: | ---: |
| prep | rows | 100 | 100 | +0 | +0.0% |
| train | acc | 0.8 | **0.9** | +0.1 | +12.5% |
| train | loss | 0 | **0.25** | +0.25 | — |
| train | new | — | **2** | added | — |
| train | old | 1 | — | removed | — |
`))
	golden(t, "params", draw(t, func(w *strings.Builder) error { return Diff(w, pd) }), `parameters of pipeline p: run r2 against run r1
   PARAMETER  OLD   NEW   DELTA    %
~  lr         0.1   0.05  -0.05    -50.0%
+  new|p      —     x     added    —
~  opt        adam  sgd   changed  —
=  seed       7     7     +0       +0.0%
`)
	golden(t, "params markdown", draw(t, func(w *strings.Builder) error { return DiffMarkdown(w, pd) }), mdq(`**parameters** of pipeline 'p': run 'r2' against run 'r1'

| Parameter | Old | New | Δ | % |
| --- | ---: | ---: | ---: | ---: |
| lr | 0.1 | **0.05** | -0.05 | -50.0% |
| new\|p | — | **x** | added | — |
| opt | adam | **sgd** | changed | — |
| seed | 7 | 7 | +0 | +0.0% |
`))
	b.Pipeline = "q"
	b.Steps = map[string]*state.StepResult{}
	a.Steps = nil
	other := zen.DiffMetrics(a, b)
	golden(t, "other pipeline", draw(t, func(w *strings.Builder) error { return Diff(w, other) }), `metrics of run r2 (pipeline q) against run r1 (pipeline p): runs of different pipelines
no metrics recorded in either run
`)
	golden(t, "other pipeline markdown", draw(t, func(w *strings.Builder) error { return DiffMarkdown(w, other) }), mdq(`**metrics** of run 'r2' (pipeline 'q') against run 'r1' (pipeline 'p'): runs of different pipelines

no metrics recorded in either run
`))
}

// mdq is markdown written with ' for its backquotes, which a Go raw
// string cannot hold.
func mdq(s string) string { return strings.ReplaceAll(s, "'", "`") }

// The metrics renderers return the first write error.
func TestMetricsWriteError(t *testing.T) {
	a, b := diffRuns()
	for name, render := range map[string]func() error{
		"metrics":          func() error { return Metrics(failing{}, zen.MetricsOf(b)) },
		"metrics markdown": func() error { return MetricsMarkdown(failing{}, zen.MetricsOf(b)) },
		"diff":             func() error { return Diff(failing{}, zen.DiffMetrics(a, b)) },
		"diff markdown":    func() error { return DiffMarkdown(failing{}, zen.DiffParams(a, b)) },
	} {
		if err := render(); err == nil || err.Error() != "disk full" {
			t.Errorf("%s: %v", name, err)
		}
	}
}
