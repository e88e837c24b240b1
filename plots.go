package zen

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// Plot is what a chart draws: lines of points against one x axis. zen
// makes one from metrics across runs or model versions (Plots), or from a
// run's plot outputs (PlotOutputs); package view/chart draws it as SVG or
// PNG.
type Plot struct {
	// Name names the chart, for a file: the pipeline or the model of a
	// metrics plot, STEP.OUTPUT of a plot output.
	Name   string `json:"name"`
	Title  string `json:"title"`
	XLabel string `json:"x_label"`
	YLabel string `json:"y_label"`
	// Run, Step and Output name the plot output it was read from; ""
	// for a metrics plot.
	Run    string `json:"run,omitempty"`
	Step   string `json:"step,omitempty"`
	Output string `json:"output,omitempty"`
	// Ticks label the x axis where X counts runs or versions; none where
	// X is a value of its own.
	Ticks  []Tick   `json:"ticks,omitempty"`
	Series []Series `json:"series"`
}

// Tick labels one place on a Plot's x axis.
type Tick struct {
	X     float64 `json:"x"`
	Label string  `json:"label"`
}

// Series is one line of a Plot: a metric, or a column of a plot output.
type Series struct {
	Name   string  `json:"name"`
	Points []Point `json:"points"`
}

// Point is one point of a Series. Label names what X stands for where it
// counts runs or versions: the run id or the version.
type Point struct {
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	Label string  `json:"label,omitempty"`
}

// PlotsQuery picks the metrics Plots draws, and across what.
type PlotsQuery struct {
	// Pipeline draws across this pipeline's runs; "" is the pipeline of
	// the latest run.
	Pipeline string
	// Model draws across this model's versions instead, from the metrics
	// each version record keeps.
	Model string
	// Metrics are named as zen metrics show prints them: STEP.METRIC, or
	// METRIC alone where one step has it.
	Metrics []string
	// Last keeps the newest Last runs or versions; 0 keeps all.
	Last int
}

// Plots draws the metrics q names across a pipeline's runs (x: the run's
// number in its pipeline, oldest first) or across a model's versions (x:
// the version, oldest first): a line per metric. A run or version without
// a metric has no point on that line.
func (p *Project) Plots(q PlotsQuery) (*Plot, error) {
	if len(q.Metrics) == 0 {
		return nil, errors.New("no metric to draw: name one or more, as zen metrics show prints them (STEP.METRIC)")
	}
	if q.Last < 0 {
		return nil, fmt.Errorf("last %d: want a count of runs or versions, or 0 for all", q.Last)
	}
	if q.Pipeline != "" && q.Model != "" {
		return nil, errors.New("draw across a pipeline's runs or a model's versions, not both")
	}
	recs, err := p.Records()
	if err != nil {
		return nil, err
	}
	if q.Model != "" {
		vs, err := modelVersions(recs, q.Model)
		if err != nil {
			return nil, err
		}
		return VersionsPlot(q.Model, vs, q.Metrics, q.Last)
	}
	pipeline := q.Pipeline
	if pipeline == "" {
		latest, err := findRun(recs, "latest")
		if err != nil {
			return nil, err
		}
		pipeline = latest.Pipeline
	}
	// The pipeline's runs, through the state ref's index of runs by
	// pipeline: the others' records are not read.
	var runs []*state.Run
	for r, err := range recs.RunsOf(pipeline, "") {
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	slices.Reverse(runs)
	if len(runs) == 0 {
		have := map[string]bool{}
		ids, err := recs.RunIDs()
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			r, ok, err := recs.Run(id)
			if err != nil {
				return nil, err
			}
			if ok {
				have[r.Pipeline] = true
			}
		}
		return nil, fmt.Errorf("pipeline %s has no recorded runs (pipelines with runs: %s)", pipeline, strings.Join(slices.Sorted(maps.Keys(have)), ", "))
	}
	return RunsPlot(pipeline, runs, q.Metrics, q.Last)
}

// modelVersions reads the recorded versions of model, oldest first.
func modelVersions(recs state.Records, model string) ([]*state.ModelVersion, error) {
	names, err := recs.ModelVersions(model)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("model %s has no recorded version", model)
	}
	vs := make([]*state.ModelVersion, 0, len(names))
	for _, n := range names {
		mv, _, err := recs.ModelVersion(model, n)
		if err != nil {
			return nil, err
		}
		vs = append(vs, mv)
	}
	// Records are listed by name, and "1.10.0" sorts before "1.2.0".
	slices.SortStableFunc(vs, func(a, b *state.ModelVersion) int { return a.Created.Compare(b.Created) })
	return vs, nil
}

// RunsPlot draws metrics across runs, which are one pipeline's, oldest
// first: x is a run's number among them (from 1), and last keeps the
// newest last runs (0: all) with their numbers.
func RunsPlot(pipeline string, runs []*state.Run, metrics []string, last int) (*Plot, error) {
	first := 0
	if last > 0 && last < len(runs) {
		first = len(runs) - last
	}
	var xs []mark
	var have []map[string]float64
	for i, r := range runs[first:] {
		m := map[string]float64{}
		for _, step := range runOrder(r) {
			for k, v := range r.Steps[step].Metrics {
				m[step+"."+k] = v
			}
		}
		xs = append(xs, mark{x: float64(first + i + 1), label: r.ID, tick: strconv.Itoa(first + i + 1)})
		have = append(have, m)
	}
	what := fmt.Sprintf("%s of pipeline %s", count(len(xs), "run"), pipeline)
	return metricsPlot(pipeline, "pipeline "+pipeline, "run of "+pipeline+" (oldest first)", what, xs, have, metrics)
}

// VersionsPlot draws metrics across the versions of a model, oldest
// first, from the metrics each version record keeps (STEP.METRIC of the
// run that made it): x counts the versions, each labelled with its
// version, and last keeps the newest last (0: all).
func VersionsPlot(model string, versions []*state.ModelVersion, metrics []string, last int) (*Plot, error) {
	if last > 0 && last < len(versions) {
		versions = versions[len(versions)-last:]
	}
	var xs []mark
	var have []map[string]float64
	for i, v := range versions {
		xs = append(xs, mark{x: float64(i + 1), label: v.ModelVersion, tick: v.ModelVersion})
		have = append(have, v.Metrics)
	}
	what := fmt.Sprintf("%s of model %s", count(len(xs), "version"), model)
	return metricsPlot(model, "model "+model, "version of "+model, what, xs, have, metrics)
}

// mark is a place on the x axis of a metrics plot: a run or a version.
type mark struct {
	x     float64
	label string // on its points: the run id, the version
	tick  string // on the axis
}

// metricsPlot draws the named metrics: have[i] holds the metrics, by
// STEP.METRIC, at xs[i]. what names the runs or versions for errors.
func metricsPlot(name, title, xLabel, what string, xs []mark, have []map[string]float64, metrics []string) (*Plot, error) {
	known := map[string]bool{}
	for _, m := range have {
		for k := range m {
			known[k] = true
		}
	}
	var names []string
	for _, want := range metrics {
		full, err := resolveMetric(want, known, what)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(names, full) {
			names = append(names, full)
		}
	}
	pl := &Plot{Name: name, Title: title, XLabel: xLabel, YLabel: "value", Series: []Series{}}
	if len(names) == 1 {
		pl.YLabel = names[0]
	}
	for _, m := range xs {
		pl.Ticks = append(pl.Ticks, Tick{X: m.x, Label: m.tick})
	}
	for _, n := range names {
		s := Series{Name: n, Points: []Point{}}
		for i, m := range xs {
			if v, ok := have[i][n]; ok {
				s.Points = append(s.Points, Point{X: m.x, Y: v, Label: m.label})
			}
		}
		pl.Series = append(pl.Series, s)
	}
	return pl, nil
}

// resolveMetric finds the STEP.METRIC a name means among known: itself,
// else the one known name whose METRIC it is. Steps' names hold no dots,
// so STEP.METRIC splits at its first.
func resolveMetric(name string, known map[string]bool, what string) (string, error) {
	if known[name] {
		return name, nil
	}
	var steps []string
	for k := range known {
		if _, m, _ := strings.Cut(k, "."); m == name {
			steps = append(steps, k)
		}
	}
	slices.Sort(steps)
	switch {
	case len(steps) == 1:
		return steps[0], nil
	case len(steps) > 1:
		return "", fmt.Errorf("metric %q is recorded by more than one step: name one of %s", name, strings.Join(steps, ", "))
	case len(known) == 0:
		return "", fmt.Errorf("no metric %q: the %s recorded no metrics (a step records some by writing a JSON object of numbers to $ZEN_METRICS)", name, what)
	}
	return "", fmt.Errorf("no metric %q in the %s (metrics: %s)", name, what, strings.Join(slices.Sorted(maps.Keys(known)), ", "))
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// MaxPlotSource bounds the plot output zen reads: a chart of a million
// points is no longer one a person reads.
const MaxPlotSource = 16 << 20

// PlotOutputs reads the outputs of type plot that run id (as Run names
// it) recorded, each fetched from the artifact store as PullArtifact
// fetches it (stack: as there), and makes a Plot of each: steps in the
// run's order, outputs by name. How an output is drawn (x, y, title) is
// read from the CUE's declaration of it; where the CUE no longer declares
// it as a plot, every column is drawn against the row number.
func (p *Project) PlotOutputs(ctx context.Context, id, stack string) (*state.Run, []*Plot, error) {
	r, err := p.Run(id)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := p.Config()
	if err != nil {
		return nil, nil, err
	}
	type source struct{ step, output, digest string }
	var srcs []source
	for _, step := range runOrder(r) {
		s := r.Steps[step]
		for _, o := range slices.Sorted(maps.Keys(s.Outputs)) {
			if a := s.Outputs[o]; a.Type == "plot" {
				srcs = append(srcs, source{step, o, a.Digest})
			}
		}
	}
	if len(srcs) == 0 {
		return nil, nil, fmt.Errorf("run %s of %s recorded no plot outputs: a step declares one as outputs: NAME: {type: \"plot\", x: COLUMN, y: COLUMN}", r.ID, r.Pipeline)
	}
	dir, err := os.MkdirTemp("", "zen-plots-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	var plots []*Plot
	for i, src := range srcs {
		path := filepath.Join(dir, strconv.Itoa(i))
		if err := p.PullArtifact(ctx, r, stack, src.digest, path); err != nil {
			return nil, nil, fmt.Errorf("run %s: step %s output %s: %w", r.ID, src.step, src.output, err)
		}
		b, err := readBounded(path, MaxPlotSource)
		if err != nil {
			return nil, nil, fmt.Errorf("run %s: step %s output %s: %w", r.ID, src.step, src.output, err)
		}
		pl, err := ReadPlot(b, plotSpec(cfg, r.Pipeline, src.step, src.output))
		if err != nil {
			return nil, nil, fmt.Errorf("run %s: step %s output %s: %w", r.ID, src.step, src.output, err)
		}
		pl.Name, pl.Run, pl.Step, pl.Output = src.step+"."+src.output, r.ID, src.step, src.output
		if pl.Title == "" {
			pl.Title = pl.Name
		}
		plots = append(plots, pl)
	}
	return r, plots, nil
}

// plotSpec is how the CUE says to draw an output; the defaults where it
// does not declare it as a plot.
func plotSpec(cfg *schema.Config, pipeline, step, output string) schema.PlotSpec {
	if pl := cfg.Pipelines[pipeline]; pl != nil {
		if s := pl.Steps[step]; s != nil {
			if o := s.Outputs[output]; o != nil && o.Plot != nil {
				return *o.Plot
			}
		}
	}
	return schema.PlotSpec{}
}

// readBounded reads the file at path, refusing one over max bytes.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("more than %d MiB: zen draws plots of at most that", max>>20)
	}
	return b, nil
}

// ReadPlot reads a plot output's points as spec says: a CSV file (a
// header of column names, then a row per point) or a JSON list of
// objects (or an object holding one such list, as DVC takes it). Each y
// column is a Series against the x column, or against the row number
// (from 1) where spec has no x; without y columns, every column but x is
// drawn, in the header's order (JSON's keys sorted). Every cell
// drawn must be a finite number (in JSON, a number or a string holding
// one); an error names the row (from 1, below the header) and column.
func ReadPlot(b []byte, spec schema.PlotSpec) (*Plot, error) {
	t, err := readTable(b)
	if err != nil {
		return nil, err
	}
	col := map[string]int{}
	for i, c := range t.columns {
		if _, dup := col[c]; dup {
			// Only a CSV header can: JSON's are an object's keys.
			return nil, fmt.Errorf("the CSV header names column %q twice", c)
		}
		col[c] = i
	}
	need := func(c, field string) (int, error) {
		i, ok := col[c]
		if !ok {
			return 0, fmt.Errorf("no column %q, which %s names (columns: %s)", c, field, strings.Join(t.columns, ", "))
		}
		return i, nil
	}
	xi := -1
	if spec.X != "" {
		if xi, err = need(spec.X, "x"); err != nil {
			return nil, err
		}
	}
	ys := spec.Y
	if len(ys) == 0 {
		for _, c := range t.columns {
			if c != spec.X {
				ys = append(ys, c)
			}
		}
		if len(ys) == 0 {
			return nil, fmt.Errorf("no column to draw: the only column is x, %q", spec.X)
		}
	}
	yi := make([]int, len(ys))
	for k, c := range ys {
		if yi[k], err = need(c, "y"); err != nil {
			return nil, err
		}
	}
	num := func(row, i int) (float64, error) {
		cell := t.rows[row][i]
		if cell.missing {
			return 0, fmt.Errorf("row %d has no column %q", row+1, t.columns[i])
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(cell.text), 64)
		if err != nil {
			return 0, fmt.Errorf("row %d, column %q: %s is not a number", row+1, t.columns[i], cell.shown)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("row %d, column %q: %s is not a finite number", row+1, t.columns[i], cell.shown)
		}
		return f, nil
	}
	pl := &Plot{XLabel: "row", Series: make([]Series, len(ys))}
	if xi >= 0 {
		pl.XLabel = spec.X
	}
	if len(ys) == 1 {
		pl.YLabel = ys[0]
	}
	pl.Title = spec.Title
	for k, c := range ys {
		pl.Series[k] = Series{Name: c, Points: make([]Point, 0, len(t.rows))}
	}
	for row := range t.rows {
		x := float64(row + 1)
		if xi >= 0 {
			if x, err = num(row, xi); err != nil {
				return nil, err
			}
		}
		for k, i := range yi {
			y, err := num(row, i)
			if err != nil {
				return nil, err
			}
			pl.Series[k].Points = append(pl.Series[k].Points, Point{X: x, Y: y})
		}
	}
	return pl, nil
}

// table is a plot output's cells by row and column, as text.
type table struct {
	columns []string
	rows    [][]cell
}

type cell struct {
	text    string
	shown   string // the cell as a message quotes it
	missing bool   // a JSON object without the key
}

// readTable reads a CSV or JSON plot output; JSON is told by its first
// character, [ or {.
func readTable(b []byte) (*table, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, errors.New("empty file: want a CSV header and a row per point, or a JSON list of objects")
	}
	if trimmed[0] == '[' || trimmed[0] == '{' {
		return readJSONTable(trimmed)
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.TrimLeadingSpace = true
	r.ReuseRecord = false
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read CSV: %w", err)
	}
	t := &table{columns: recs[0]}
	if len(recs) == 1 {
		return nil, errors.New("no rows under the CSV header")
	}
	for _, rec := range recs[1:] {
		row := make([]cell, len(rec))
		for i, s := range rec {
			row[i] = cell{text: s, shown: strconv.Quote(s)}
		}
		t.rows = append(t.rows, row)
	}
	return t, nil
}

// readJSONTable reads a JSON list of objects, or an object holding one
// such list under its only key.
func readJSONTable(b []byte) (*table, error) {
	var list []map[string]json.RawMessage
	if b[0] == '{' {
		var outer map[string]json.RawMessage
		if err := json.Unmarshal(b, &outer); err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		if len(outer) != 1 {
			return nil, fmt.Errorf("a JSON object with %d keys: want a list of objects, or an object holding one under its only key", len(outer))
		}
		for k, v := range outer {
			if err := json.Unmarshal(v, &list); err != nil {
				return nil, fmt.Errorf("key %q: want a list of objects, a point each", k)
			}
		}
	} else if err := json.Unmarshal(b, &list); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		return nil, errors.New("want a JSON list of objects, a point each")
	}
	if len(list) == 0 {
		return nil, errors.New("an empty JSON list: no points")
	}
	keys := map[string]bool{}
	for _, obj := range list {
		for k := range obj {
			keys[k] = true
		}
	}
	t := &table{columns: slices.Sorted(maps.Keys(keys))}
	for _, obj := range list {
		row := make([]cell, len(t.columns))
		for i, c := range t.columns {
			v, ok := obj[c]
			if !ok {
				row[i] = cell{missing: true}
				continue
			}
			row[i] = cell{text: string(v), shown: string(v)}
			var s string
			if json.Unmarshal(v, &s) == nil {
				// A string holding a number is taken, as in CSV.
				row[i].text = s
			}
		}
		t.rows = append(t.rows, row)
	}
	return t, nil
}
