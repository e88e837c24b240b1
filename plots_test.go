package zen

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// runWith is a run of pipeline p whose steps recorded metrics.
func runWith(id string, steps map[string]map[string]float64) *state.Run {
	r := &state.Run{ID: id, Pipeline: "p", Steps: map[string]*state.StepResult{}}
	for s, m := range steps {
		r.Steps[s] = &state.StepResult{Status: state.StatusSucceeded, Metrics: m}
	}
	return r
}

// points lists a series' points as X:Y, and @LABEL where they have one.
func points(s Series) string {
	var out []string
	for _, p := range s.Points {
		pt := jsonNum(p.X) + ":" + jsonNum(p.Y)
		if p.Label != "" {
			pt += "@" + p.Label
		}
		out = append(out, pt)
	}
	return strings.Join(out, " ")
}

func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }

// RunsPlot draws a line per metric across runs, numbered from the
// pipeline's first; a run without a metric has no point on its line.
func TestRunsPlot(t *testing.T) {
	runs := []*state.Run{
		runWith("r1", map[string]map[string]float64{"prep": {"rows": 150}, "train": {"accuracy": 0.9, "loss.train": 0.2}}),
		runWith("r2", map[string]map[string]float64{"prep": {"rows": 150}, "train": {"accuracy": 0.75, "loss.train": 0.5, "momentum": 0.9}}),
		runWith("r3", map[string]map[string]float64{"prep": {"rows": 140}}),
		runWith("r4", map[string]map[string]float64{"prep": {"rows": 150}, "train": {"accuracy": 0.95, "loss.train": 0.1}}),
	}
	pl, err := RunsPlot("p", runs, []string{"accuracy", "train.momentum", "train.accuracy", "loss.train"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if pl.Name != "p" || pl.Title != "pipeline p" || pl.XLabel != "run of p (oldest first)" || pl.YLabel != "value" {
		t.Errorf("plot: %+v", pl)
	}
	got := map[string]string{}
	var names []string
	for _, s := range pl.Series {
		names = append(names, s.Name)
		got[s.Name] = points(s)
	}
	// Names resolve to STEP.METRIC; one named twice is one line.
	if want := []string{"train.accuracy", "train.momentum", "train.loss.train"}; !reflect.DeepEqual(names, want) {
		t.Errorf("series %v, want %v", names, want)
	}
	for name, want := range map[string]string{
		"train.accuracy":   "1:0.9@r1 2:0.75@r2 4:0.95@r4",
		"train.momentum":   "2:0.9@r2",
		"train.loss.train": "1:0.2@r1 2:0.5@r2 4:0.1@r4",
	} {
		if got[name] != want {
			t.Errorf("%s: %s, want %s", name, got[name], want)
		}
	}
	if len(pl.Ticks) != 4 || pl.Ticks[3] != (Tick{X: 4, Label: "4"}) {
		t.Errorf("ticks: %+v", pl.Ticks)
	}

	// The last two keep their numbers; one metric labels the y axis.
	pl, err = RunsPlot("p", runs, []string{"prep.rows"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := points(pl.Series[0]); got != "3:140@r3 4:150@r4" || pl.YLabel != "prep.rows" || len(pl.Ticks) != 2 || pl.Ticks[0].X != 3 {
		t.Errorf("last 2: %s, y label %q, ticks %+v", got, pl.YLabel, pl.Ticks)
	}

	for _, tt := range []struct {
		metric string
		last   int
		want   string
	}{
		{"f1", 0, `no metric "f1" in the 4 runs of pipeline p (metrics: prep.rows, train.accuracy, train.loss.train, train.momentum)`},
		// momentum is in run 2 only.
		{"momentum", 2, `no metric "momentum" in the 2 runs of pipeline p (metrics: prep.rows, train.accuracy, train.loss.train)`},
		{"train.rows", 0, `no metric "train.rows" in the 4 runs of pipeline p (metrics: prep.rows, train.accuracy, train.loss.train, train.momentum)`},
	} {
		if _, err := RunsPlot("p", runs, []string{tt.metric}, tt.last); err == nil || err.Error() != tt.want {
			t.Errorf("%s: err = %v\nwant %s", tt.metric, err, tt.want)
		}
	}
	twice := append(runs, runWith("r5", map[string]map[string]float64{"eval": {"accuracy": 0.5}}))
	if _, err := RunsPlot("p", twice, []string{"accuracy"}, 0); err == nil || err.Error() != `metric "accuracy" is recorded by more than one step: name one of eval.accuracy, train.accuracy` {
		t.Errorf("ambiguous: %v", err)
	}
	if pl, err := RunsPlot("p", twice, []string{"eval.accuracy"}, 0); err != nil || points(pl.Series[0]) != "5:0.5@r5" {
		t.Errorf("eval.accuracy: %v", err)
	}
	none := []*state.Run{runWith("r1", nil)}
	if _, err := RunsPlot("p", none, []string{"accuracy"}, 0); err == nil || err.Error() != `no metric "accuracy": the 1 run of pipeline p recorded no metrics (a step records some by writing a JSON object of numbers to $ZEN_METRICS)` {
		t.Errorf("no metrics: %v", err)
	}
}

// VersionsPlot draws across a model's versions, labelled with them.
func TestVersionsPlot(t *testing.T) {
	vs := []*state.ModelVersion{
		{Model: "m", ModelVersion: "1.0.0", Metrics: map[string]float64{"train.score": 0.8}},
		{Model: "m", ModelVersion: "1.1.0", Metrics: map[string]float64{"train.score": 0.85, "eval.f1": 0.7}},
		{Model: "m", ModelVersion: "2.0.0", Metrics: map[string]float64{"train.score": 0.9, "eval.f1": 0.75}},
	}
	pl, err := VersionsPlot("m", vs, []string{"score", "f1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if pl.Title != "model m" || pl.XLabel != "version of m" || len(pl.Series) != 2 {
		t.Fatalf("plot: %+v", pl)
	}
	if got := points(pl.Series[0]); got != "1:0.8@1.0.0 2:0.85@1.1.0 3:0.9@2.0.0" {
		t.Errorf("train.score: %s", got)
	}
	if got := points(pl.Series[1]); pl.Series[1].Name != "eval.f1" || got != "2:0.7@1.1.0 3:0.75@2.0.0" {
		t.Errorf("eval.f1: %s", got)
	}
	if want := []Tick{{1, "1.0.0"}, {2, "1.1.0"}, {3, "2.0.0"}}; !reflect.DeepEqual(pl.Ticks, want) {
		t.Errorf("ticks %+v", pl.Ticks)
	}
	pl, err = VersionsPlot("m", vs, []string{"f1"}, 1)
	if err != nil || points(pl.Series[0]) != "1:0.75@2.0.0" {
		t.Errorf("last 1: %+v, %v", pl, err)
	}
	if _, err := VersionsPlot("m", vs, []string{"loss"}, 0); err == nil || err.Error() != `no metric "loss" in the 3 versions of model m (metrics: eval.f1, train.score)` {
		t.Errorf("unknown: %v", err)
	}
}

// ReadPlot reads CSV and JSON points, and says which row and column is
// not a number.
func TestReadPlot(t *testing.T) {
	roc := schema.PlotSpec{X: "fpr", Y: []string{"tpr"}}
	for _, tt := range []struct {
		name, src string
		spec      schema.PlotSpec
		want      string // series: "name=points; ..."
		xLabel    string
	}{
		{"csv", "fpr,tpr,threshold\n0,0,1\n0.1,0.6,0.5\n1,1,0\n", roc, "tpr=0:0 0.1:0.6 1:1", "fpr"},
		{"csv spaces and CRLF", "\ufefffpr, tpr\r\n0, 0\r\n 1 , 1\r\n", roc, "tpr=0:0 1:1", "fpr"},
		{"csv every column by row", "train,val\n0.9,1.1\n0.5,0.8\n", schema.PlotSpec{}, "train=1:0.9 2:0.5; val=1:1.1 2:0.8", "row"},
		{"csv every column but x", "epoch,loss,acc\n1,0.9,0.5\n2,0.5,0.7\n", schema.PlotSpec{X: "epoch"}, "loss=1:0.9 2:0.5; acc=1:0.5 2:0.7", "epoch"},
		{"json list", `[{"fpr": 0, "tpr": 0}, {"fpr": 0.5, "tpr": "0.75"}]`, roc, "tpr=0:0 0.5:0.75", "fpr"},
		{"json as dvc writes it", `{"roc": [{"fpr": 0, "tpr": 0, "t": 1}, {"fpr": 1, "tpr": 1, "t": 0}]}`, roc, "tpr=0:0 1:1", "fpr"},
		{"json keys sorted", `[{"val": 2, "train": 1}]`, schema.PlotSpec{}, "train=1:1; val=1:2", "row"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := ReadPlot([]byte(tt.src), tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range pl.Series {
				var pts []string
				for _, p := range s.Points {
					pts = append(pts, jsonNum(p.X)+":"+jsonNum(p.Y))
				}
				got = append(got, s.Name+"="+strings.Join(pts, " "))
			}
			if g := strings.Join(got, "; "); g != tt.want || pl.XLabel != tt.xLabel {
				t.Errorf("got %s (x %s), want %s (x %s)", g, pl.XLabel, tt.want, tt.xLabel)
			}
		})
	}
}

func TestReadPlotErrors(t *testing.T) {
	roc := schema.PlotSpec{X: "fpr", Y: []string{"tpr"}}
	for _, tt := range []struct {
		name, src string
		spec      schema.PlotSpec
		want      string
	}{
		{"empty", "", roc, "empty file: want a CSV header and a row per point, or a JSON list of objects"},
		{"blank", " \n\n", roc, "empty file: want a CSV header and a row per point, or a JSON list of objects"},
		{"header only", "fpr,tpr\n", roc, "no rows under the CSV header"},
		{"not a number", "fpr,tpr\n0,0\n0.5,high\n", roc, `row 2, column "tpr": "high" is not a number`},
		{"empty cell", "fpr,tpr\n0,\n", roc, `row 1, column "tpr": "" is not a number`},
		{"x not a number", "fpr,tpr\nlow,0\n", roc, `row 1, column "fpr": "low" is not a number`},
		{"NaN", "fpr,tpr\n0,NaN\n", roc, `row 1, column "tpr": "NaN" is not a finite number`},
		{"missing y column", "fpr,recall\n0,0\n", roc, `no column "tpr", which y names (columns: fpr, recall)`},
		{"missing x column", "x,tpr\n0,0\n", roc, `no column "fpr", which x names (columns: x, tpr)`},
		{"a text column drawn by default", "epoch,note\n1,warmup\n", schema.PlotSpec{X: "epoch"}, `row 1, column "note": "warmup" is not a number`},
		{"only x", "epoch\n1\n", schema.PlotSpec{X: "epoch"}, `no column to draw: the only column is x, "epoch"`},
		{"ragged", "fpr,tpr\n0,0\n1\n", roc, "read CSV: record on line 3: wrong number of fields"},
		{"column twice", "fpr,tpr,tpr\n0,0,0\n", roc, `the CSV header names column "tpr" twice`},
		{"json not a list", `{"a": 1, "b": 2}`, roc, "a JSON object with 2 keys: want a list of objects, or an object holding one under its only key"},
		{"json list of numbers", `[1, 2]`, roc, "want a JSON list of objects, a point each"},
		{"json broken", `[{"fpr": 0,`, roc, "not JSON: unexpected end of JSON input"},
		{"json empty list", `[]`, roc, "an empty JSON list: no points"},
		{"json null", `[{"fpr": 0, "tpr": null}]`, roc, `row 1, column "tpr": null is not a number`},
		{"json string", `[{"fpr": 0, "tpr": "n/a"}]`, roc, `row 1, column "tpr": "n/a" is not a number`},
		{"json key missing", `[{"fpr": 0, "tpr": 0}, {"fpr": 1}]`, roc, `row 2 has no column "tpr"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadPlot([]byte(tt.src), tt.spec)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant %s", err, tt.want)
			}
		})
	}
}

// plotsCUE declares a pipeline whose train step records metrics and a
// loss curve, and whose version of model scorer keeps the metrics.
const plotsCUE = `package zen

pipelines: demo: {
	parameters: lr: 1
	steps: train: {
		run: ["sh", "steps/train.sh"]
		parameters: lr: pipelines.demo.parameters.lr
		outputs: {
			model: {type: "model", model: "scorer"}
			loss: {type: "plot", x: "epoch", y: ["train", "val"], title: "loss by epoch"}
			raw: type: "plot"
		}
	}
}

models: scorer: versions: {"1.0.0": {}}
`

const trainSH = `lr=$(tr -d '\n ' < "$ZEN_PARAMS" | sed -n 's/.*"lr":\([0-9]*\).*/\1/p')
echo "{\"score\": 0.$lr, \"loss\": {\"final\": $lr}}" > "$ZEN_METRICS"
echo weights > "$ZEN_OUTPUTS/model"
printf 'epoch,train,val\n1,%s,2\n2,1,1.5\n' "$lr" > "$ZEN_OUTPUTS/loss"
printf 'a,b\n1,%s\n' "$lr" > "$ZEN_OUTPUTS/raw"
`

// Plots reads the runs of a pipeline and the versions of a model;
// PlotOutputs fetches a run's plot outputs and reads them as the CUE
// says.
func TestPlotsOfProject(t *testing.T) {
	dir := testRepo(t)
	for name, data := range map[string]string{"zen.cue": plotsCUE, "steps/train.sh": trainSH, ".gitignore": "/cosign.pub\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runGit(t, dir, "add", "-A")
	runGit(t, dir, "commit", "-q", "-m", "plots")
	p, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Plots(PlotsQuery{Metrics: []string{"score"}}); err == nil || err.Error() != "no runs recorded on refs/zen/state yet: zen apply records one" {
		t.Errorf("no runs: %v", err)
	}
	applyOnce(t, p, PlanOptions{ForApply: true})
	applyOnce(t, p, PlanOptions{ForApply: true, Sets: []string{"demo.lr=3"}})
	applyOnce(t, p, PlanOptions{ForApply: true, Sets: []string{"demo.lr=5"}})

	pl, err := p.Plots(PlotsQuery{Metrics: []string{"score", "train.loss.final"}, Last: 2})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := p.Runs(RunsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "2:0.3@" + runs[1].ID + " 3:0.5@" + runs[0].ID; pl.Name != "demo" || len(pl.Series) != 2 || points(pl.Series[0]) != want {
		t.Errorf("plot: %s\nwant train.score %s", jsonOf(pl), want)
	}
	if pl.Series[1].Name != "train.loss.final" || len(pl.Series[1].Points) != 2 || pl.Series[1].Points[1].Y != 5 {
		t.Errorf("train.loss.final: %s", jsonOf(pl.Series[1]))
	}
	pl, err = p.Plots(PlotsQuery{Model: "scorer", Metrics: []string{"score"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Series) != 1 || points(pl.Series[0]) != "1:0.1@1.0.0" {
		t.Errorf("model plot: %s", jsonOf(pl))
	}
	for q, want := range map[*PlotsQuery]string{
		{Pipeline: "nope", Metrics: []string{"score"}}:                  "pipeline nope has no recorded runs (pipelines with runs: demo)",
		{Model: "nope", Metrics: []string{"score"}}:                     "model nope has no recorded version",
		{Model: "scorer", Pipeline: "demo", Metrics: []string{"score"}}: "draw across a pipeline's runs or a model's versions, not both",
		{Pipeline: "demo"}:                 "no metric to draw: name one or more, as zen metrics show prints them (STEP.METRIC)",
		{Metrics: []string{"x"}, Last: -1}: "last -1: want a count of runs or versions, or 0 for all",
	} {
		if _, err := p.Plots(*q); err == nil || err.Error() != want {
			t.Errorf("%+v: err = %v, want %s", *q, err, want)
		}
	}

	ctx := context.Background()
	r, plots, err := p.PlotOutputs(ctx, "latest", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(plots) != 2 {
		t.Fatalf("%d plots: %s", len(plots), jsonOf(plots))
	}
	loss, raw := plots[0], plots[1]
	if loss.Name != "train.loss" || loss.Run != r.ID || loss.Title != "loss by epoch" || loss.XLabel != "epoch" || len(loss.Series) != 2 || points(loss.Series[0]) != "1:5 2:1" || points(loss.Series[1]) != "1:2 2:1.5" {
		t.Errorf("loss: %s", jsonOf(loss))
	}
	if raw.Name != "train.raw" || raw.Title != "train.raw" || raw.XLabel != "row" || len(raw.Series) != 2 || points(raw.Series[1]) != "1:5" {
		t.Errorf("raw: %s", jsonOf(raw))
	}

	// A run whose plot is not numeric, and one without plot outputs.
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("steps/train.sh", strings.Replace(trainSH, `1,%s,2`, `1,%s,oops`, 1))
	runGit(t, dir, "commit", "-qam", "a broken plot")
	applyOnce(t, p, PlanOptions{ForApply: true})
	_, _, err = p.PlotOutputs(ctx, "latest", "")
	if last, _ := p.Run("latest"); err == nil || err.Error() != "run "+last.ID+`: step train output loss: row 1, column "val": "oops" is not a number` {
		t.Errorf("a broken plot: %v", err)
	}
	write("zen.cue", strings.NewReplacer(`type: "plot", x: "epoch", y: ["train", "val"], title: "loss by epoch"`, `type: "file"`, `raw: type: "plot"`, `raw: type: "file"`).Replace(plotsCUE))
	runGit(t, dir, "commit", "-qam", "no plots")
	// A Project keeps the CUE it loaded: open the commit anew.
	if p, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	applyOnce(t, p, PlanOptions{ForApply: true})
	_, _, err = p.PlotOutputs(ctx, "latest", "")
	if last, _ := p.Run("latest"); err == nil || err.Error() != "run "+last.ID+` of demo recorded no plot outputs: a step declares one as outputs: NAME: {type: "plot", x: COLUMN, y: COLUMN}` {
		t.Errorf("no plots: %v", err)
	}
	// The older run's plots are still read, drawn as the CUE now says:
	// loss is no plot there, so every column against the row number.
	_, plots, err = p.PlotOutputs(ctx, r.ID, "")
	if err != nil || len(plots) != 2 || plots[0].XLabel != "row" || len(plots[0].Series) != 3 {
		t.Errorf("an older run's plots: %s, %v", jsonOf(plots), err)
	}
}

// keySources are fixed digests for a step's files and program.
type keySources struct{}

func (keySources) File(p string) (string, error) { return "sha256:file-" + p, nil }
func (keySources) Dir(p string) (string, error)  { return "sha256:dir-" + p, nil }
func (keySources) Code(*schema.Step) (map[string]string, error) {
	return map[string]string{"steps/train.sh": "sha256:code"}, nil
}
func (keySources) Executable(name string) (string, error) { return name + "@sha256:exe", nil }

const keyCUE = `package zen

pipelines: demo: {
	parameters: lr: 0.1
	steps: train: {
		run: ["sh", "steps/train.sh"]
		inputs: data: file: "data.csv"
		parameters: lr: pipelines.demo.parameters.lr
		env: MODE: "fast"
		outputs: {
			model: {type: "model", model: "m"}
			report: type: "json"
		}
	}
}

models: m: versions: {"1.0.0": {}}
`

// stepKey loads cue and returns the cache key of demo's train step.
func stepKey(t *testing.T, cue string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{"zen.cue": cue, "data.csv": "a\n1\n", "steps/train.sh": "true\n"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := schema.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := plan.Fingerprint(cfg.Pipelines["demo"].Steps["train"], keySources{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return plan.Key(fp)
}

// A plot output's x, y and title draw it, and stay out of the cache key:
// changing them reuses the step's outputs. The key of a step without plot
// outputs is the one zen gave it before plot outputs were added.
func TestPlotSpecNotInKey(t *testing.T) {
	if got, want := stepKey(t, keyCUE), "5e43a7755284d56d849e83bd1072fd9edfbc855ff05cbc39d5013e77dc7eef63"; got != want {
		t.Errorf("the key of a step without plots changed: %s, was %s", got, want)
	}
	withPlot := func(decl string) string {
		return strings.Replace(keyCUE, `report: type: "json"`, `report: `+decl, 1)
	}
	a := stepKey(t, withPlot(`{type: "plot", x: "epoch", y: "loss"}`))
	for _, decl := range []string{`{type: "plot", x: "step", y: ["loss", "acc"], title: "Loss"}`, `type: "plot"`} {
		if b := stepKey(t, withPlot(decl)); b != a {
			t.Errorf("%s: key %s, want %s as with x: epoch, y: loss", decl, b, a)
		}
	}
	// The type is in the key, as every output's is.
	if a == stepKey(t, keyCUE) {
		t.Error("a plot output has the key of a json one")
	}
}

// ReadPlot reads what a step wrote: whatever it is, it either fails or
// gives series of finite points, a point per row in each.
func FuzzReadPlot(f *testing.F) {
	for _, seed := range []string{
		"fpr,tpr\n0,0\n1,1\n", "a\n1\n", `[{"fpr": 0, "tpr": "1"}]`, `{"k": [{"fpr": 1, "tpr": 2}]}`,
		"fpr,tpr\n0,NaN\n", "\ufeff\"fpr\",tpr\r\n1e308,-1e308\r\n", `[null, {"fpr": true}]`,
	} {
		f.Add([]byte(seed), "fpr", "tpr")
		f.Add([]byte(seed), "", "")
	}
	f.Fuzz(func(t *testing.T, b []byte, x, y string) {
		spec := schema.PlotSpec{X: x}
		if y != "" {
			spec.Y = []string{y}
		}
		pl, err := ReadPlot(b, spec)
		if err != nil {
			return
		}
		if len(pl.Series) == 0 {
			t.Fatal("no series and no error")
		}
		n := len(pl.Series[0].Points)
		for _, s := range pl.Series {
			if len(s.Points) != n || n == 0 {
				t.Fatalf("series %s: %d points, the first series %d", s.Name, len(s.Points), n)
			}
			for _, p := range s.Points {
				if math.IsNaN(p.X) || math.IsInf(p.X, 0) || math.IsNaN(p.Y) || math.IsInf(p.Y, 0) {
					t.Fatalf("series %s: point %v", s.Name, p)
				}
			}
		}
	})
}
