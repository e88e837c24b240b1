package view

import (
	"strings"
	"testing"

	"github.com/zen-dev/zen"
)

func previewReport() *zen.PreviewReport {
	a, b := diffRuns()
	b.Preview = "feat"
	return &zen.PreviewReport{Branch: "feat", Pipelines: []*zen.PreviewPipeline{
		{Pipeline: "p", Run: "r2", Status: "failed", Base: "r1", Metrics: zen.DiffMetrics(a, b), Params: zen.DiffParams(a, b),
			Failures: []zen.StepFailure{{Step: "train", Status: "failed", Reason: "exited with code 3", LogTail: []string{"loading", "``` boom"}}},
			Plots:    []*zen.Plot{{Name: "eval.roc", Title: "ROC"}}},
		{Pipeline: "q"},
		{Pipeline: "r", Run: "r3", Status: "succeeded", PlotError: "row 2, column \"tpr\": \"high\" is not a number"},
	}, Challenges: []*zen.Challenge{{Model: "m", Stage: "production", Champion: "1.0.0", Challenger: "1.1.0",
		Rows: zen.DiffMetrics(a, b).Rows, Gate: []string{"acc >= 0.85: 0.9 ✓"}}}}
}

func TestPreviewReport(t *testing.T) {
	var b strings.Builder
	if err := PreviewReport(&b, previewReport()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\npreview of branch feat:\n",
		"pipeline p: preview run r2 failed, against run r1, the state ref's latest\n",
		"  ~  train  acc     0.8   0.9      +0.1     +12.5%\n",
		"  ~  lr         0.1   0.05     -0.05    -50.0%\n",
		"  ✗ step train failed: exited with code 3\n    | loading\n    | ``` boom\n",
		"  plot eval.roc: ROC (zen plots r2 draws it)\n",
		"pipeline q: nothing ran in the preview (every step was cached); no run of it on the state ref to compare with\n",
		"pipeline r: preview run r3 succeeded; no run of it on the state ref to compare with\n  plots: row 2, column \"tpr\": \"high\" is not a number\n",
		"challenger m 1.1.0 against champion 1.0.0 in production:\n",
		"  gate acc >= 0.85: 0.9 ✓\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
	// Unchanged parameters are left out.
	if strings.Contains(b.String(), "seed") {
		t.Errorf("text report shows an unchanged parameter:\n%s", b.String())
	}

	b.Reset()
	link := func(pipeline string, p *zen.Plot) string { return "https://ci/" + pipeline + "." + p.Name + ".svg" }
	if err := PreviewReportMarkdown(&b, previewReport(), link); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\n#### Preview of `feat`\n",
		"<details open><summary>pipeline <b>p</b>: preview run <code>r2</code> failed, against run <code>r1</code>, the state ref's latest</summary>\n",
		"**✗ step `train` failed**: exited with code 3\n\n````text\nloading\n``` boom\n````\n",
		"| train | acc | 0.8 | **0.9** | +0.1 | +12.5% |\n",
		"| lr | 0.1 | **0.05** | -0.05 | -50.0% |\n",
		"- [ROC](https://ci/p.eval.roc.svg) (`eval.roc`)\n",
		"<details><summary>pipeline <b>q</b>: nothing ran",
		"**Plots**: row 2, column \"tpr\": \"high\" is not a number\n",
		"**Challenger** `m` 1.1.0 against **champion** 1.0.0 in `production`: gate acc >= 0.85: 0.9 ✓\n\n| Step | Metric | Champion | Challenger | Δ | % |\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown report lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := PreviewReportMarkdown(&b, previewReport(), nil); err != nil {
		t.Fatal(err)
	}
	if want := "- ROC (`eval.roc`; zen plots r2 draws it)\n"; !strings.Contains(b.String(), want) {
		t.Errorf("markdown report without links lacks %q:\n%s", want, b.String())
	}
}

func TestPreviews(t *testing.T) {
	var b strings.Builder
	if err := Previews(&b, nil); err != nil || b.String() != "no previews (zen apply --preview records one for a branch)\n" {
		t.Errorf("no previews: %q, %v", b.String(), err)
	}
	b.Reset()
	err := Previews(&b, []*zen.PreviewInfo{
		{Branch: "a", Runs: 2, Remote: "origin", OnRemote: true, Local: true},
		{Branch: "b", Runs: 0, Local: true, Gone: true},
	})
	want := "BRANCH  RUNS  LATEST  STATUS  WHERE\n" +
		"a       2     —       —       origin, here\n" +
		"b       0     —       —       here (branch gone)\n"
	if err != nil || b.String() != want {
		t.Errorf("Previews:\n%s\nwant:\n%s", b.String(), want)
	}
}
