package zen

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/zen-dev/zen/state"
)

// RunMetrics is what a run's steps recorded as metrics: the steps that
// wrote some, in the run's order.
type RunMetrics struct {
	Run      string        `json:"run"`
	Pipeline string        `json:"pipeline"`
	Steps    []StepMetrics `json:"steps"`
}

// StepMetrics are one step's metrics in a run. A cached step has those of
// the run that made its outputs.
type StepMetrics struct {
	Step    string             `json:"step"`
	Status  string             `json:"status"`
	Metrics map[string]float64 `json:"metrics"`
}

// MetricsOf reads the metrics r's steps recorded.
func MetricsOf(r *state.Run) *RunMetrics {
	m := &RunMetrics{Run: r.ID, Pipeline: r.Pipeline, Steps: []StepMetrics{}}
	for _, name := range runOrder(r) {
		if s := r.Steps[name]; len(s.Metrics) > 0 {
			m.Steps = append(m.Steps, StepMetrics{Step: name, Status: s.Status, Metrics: s.Metrics})
		}
	}
	return m
}

// runOrder is the order of r's steps: the recorded one, else by name.
func runOrder(r *state.Run) []string {
	if len(r.Order) == len(r.Steps) {
		return r.Order
	}
	return slices.Sorted(maps.Keys(r.Steps))
}

// Metrics reads the metrics of the recorded run id names (as Run takes it).
func (p *Project) Metrics(id string) (*RunMetrics, error) {
	r, err := p.Run(id)
	if err != nil {
		return nil, err
	}
	return MetricsOf(r), nil
}

// Changes in a Diff's rows.
const (
	Unchanged = "unchanged"
	Changed   = "changed"
	Added     = "added"
	Removed   = "removed"
)

// RunRef names a run in a Diff.
type RunRef struct {
	ID       string `json:"id"`
	Pipeline string `json:"pipeline"`
	// Preview names the branch whose preview made the run.
	Preview string `json:"preview,omitempty"`
}

func refOf(r *state.Run) RunRef { return RunRef{ID: r.ID, Pipeline: r.Pipeline, Preview: r.Preview} }

// Diff compares the metrics, or the parameters, of run Old against run
// New: a row per step and name that either run has.
type Diff struct {
	// Kind is "metrics" or "parameters".
	Kind string    `json:"kind"`
	Old  RunRef    `json:"old"`
	New  RunRef    `json:"new"`
	Rows []DiffRow `json:"rows"`
}

// SamePipeline says whether the two runs are of one pipeline.
func (d *Diff) SamePipeline() bool { return d.Old.Pipeline == d.New.Pipeline }

// DiffRow is one metric or parameter in both runs. Old or New is nil when
// that run lacks it. Numbers are float64 and have a Delta (New - Old),
// and a Percent of Old when Old is not 0; anything else is compared as
// text (strings as they are, other values as JSON).
type DiffRow struct {
	// Step is the step of a metric, "" for a parameter.
	Step    string   `json:"step,omitempty"`
	Name    string   `json:"name"`
	Old     any      `json:"old"`
	New     any      `json:"new"`
	Delta   *float64 `json:"delta,omitempty"`
	Percent *float64 `json:"percent,omitempty"`
	// Change is Unchanged, Changed, Added (only in New) or Removed (only
	// in Old).
	Change string `json:"change"`
}

// DiffMetrics compares the metrics of run a (the old) against run b.
func DiffMetrics(a, b *state.Run) *Diff {
	d := &Diff{Kind: "metrics", Old: refOf(a), New: refOf(b), Rows: []DiffRow{}}
	steps := runOrder(b)
	for _, s := range runOrder(a) {
		if !slices.Contains(steps, s) {
			steps = append(steps, s)
		}
	}
	for _, step := range steps {
		var om, nm map[string]float64
		if s := a.Steps[step]; s != nil {
			om = s.Metrics
		}
		if s := b.Steps[step]; s != nil {
			nm = s.Metrics
		}
		names := slices.Sorted(maps.Keys(om))
		for k := range nm {
			if _, ok := om[k]; !ok {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		for _, k := range names {
			var ov, nv any
			if v, ok := om[k]; ok {
				ov = v
			}
			if v, ok := nm[k]; ok {
				nv = v
			}
			d.Rows = append(d.Rows, diffRow(step, k, ov, nv))
		}
	}
	return d
}

// DiffParams compares the parameters run a (the old) and run b were
// recorded with (an experiment's overrides applied). A struct parameter
// is compared field by field, named PARAM.FIELD.
func DiffParams(a, b *state.Run) *Diff {
	d := &Diff{Kind: "parameters", Old: refOf(a), New: refOf(b), Rows: []DiffRow{}}
	op, np := map[string]any{}, map[string]any{}
	flatten(op, "", a.Parameters)
	flatten(np, "", b.Parameters)
	names := slices.Sorted(maps.Keys(op))
	for k := range np {
		if _, ok := op[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		d.Rows = append(d.Rows, diffRow("", k, op[k], np[k]))
	}
	return d
}

// flatten puts the leaves of m into out, nested maps' keys joined with dots.
func flatten(out map[string]any, prefix string, m map[string]any) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			flatten(out, prefix+k+".", sub)
			continue
		}
		out[prefix+k] = v
	}
}

// diffRow compares one value; a nil is missing.
func diffRow(step, name string, ov, nv any) DiffRow {
	r := DiffRow{Step: step, Name: name}
	of, oNum := number(ov)
	nf, nNum := number(nv)
	if oNum {
		r.Old = of
	} else if ov != nil {
		r.Old = ValueText(ov)
	}
	if nNum {
		r.New = nf
	} else if nv != nil {
		r.New = ValueText(nv)
	}
	switch {
	case ov == nil && nv == nil:
		r.Change = Unchanged
	case ov == nil:
		r.Change = Added
	case nv == nil:
		r.Change = Removed
	case oNum && nNum:
		delta := round(nf - of)
		r.Delta = &delta
		if of != 0 {
			pct := round(delta / abs(of) * 100)
			r.Percent = &pct
		}
		r.Change = Changed
		if delta == 0 {
			r.Change = Unchanged
		}
	default:
		r.Old, r.New = ValueText(ov), ValueText(nv)
		r.Change = Changed
		if r.Old == r.New {
			r.Change = Unchanged
		}
	}
	return r
}

// round drops the noise of float arithmetic (0.9-0.8 is
// 0.09999999999999998): 12 significant digits.
func round(f float64) float64 {
	r, err := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 12, 64), 64)
	if err != nil {
		return f
	}
	return r
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// number reads v as a number: a run record read back holds float64, one
// made in memory may hold Go integers.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// ValueText is a parameter's or metric's value as zen shows it and
// compares it as text: a string as it is, anything else (a nested struct
// from params.yaml) as JSON.
func ValueText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// MetricsDiff compares the metrics of two recorded runs (see RunPair).
func (p *Project) MetricsDiff(a, b string) (*Diff, error) {
	ra, rb, err := p.RunPair(a, b)
	if err != nil {
		return nil, err
	}
	return DiffMetrics(ra, rb), nil
}

// ParamsDiff compares the parameters of two recorded runs (see RunPair).
func (p *Project) ParamsDiff(a, b string) (*Diff, error) {
	ra, rb, err := p.RunPair(a, b)
	if err != nil {
		return nil, err
	}
	return DiffParams(ra, rb), nil
}

// RunPair reads the two runs a diff compares, named as Run takes them.
// When b is "", it is the latest run of the work tree's branch's preview
// if that is newer than the state ref's latest run, else the state ref's
// latest. When a is "", it is, for a preview's run, the state ref's latest
// run of its pipeline (what the branch changes), else the run before b of
// b's pipeline.
func (p *Project) RunPair(a, b string) (*state.Run, *state.Run, error) {
	recs, err := p.Records()
	if err != nil {
		return nil, nil, err
	}
	var rb *state.Run
	if b == "" {
		// The work tree's latest: its branch's preview when that ran
		// after the state ref's latest run.
		if rb, err = p.branchPreviewRun(recs); err != nil {
			return nil, nil, err
		}
	}
	if rb == nil {
		if b == "" {
			b = "latest"
		}
		if rb, err = findRun(recs, b); err != nil {
			return nil, nil, err
		}
	}
	if a == "" && rb.Preview != "" {
		// A preview against the state ref's latest run of its pipeline:
		// what the branch changes.
		for ra, err := range recs.RunsOf(rb.Pipeline, "") {
			if err != nil {
				return nil, nil, err
			}
			if ra.ID != rb.ID {
				return ra, rb, nil
			}
		}
		return nil, nil, fmt.Errorf("run %s, the preview of %s, has no run of pipeline %s on %s to compare with; name both runs (A B)", rb.ID, rb.Preview, rb.Pipeline, recs.Ref)
	}
	if a != "" {
		ra, err := findRun(recs, a)
		if err != nil {
			return nil, nil, err
		}
		return ra, rb, nil
	}
	for ra, err := range recs.RunsOf(rb.Pipeline, rb.ID) {
		if err != nil {
			return nil, nil, err
		}
		return ra, rb, nil
	}
	return nil, nil, fmt.Errorf("run %s is the first of pipeline %s: there is no run before it to compare with; name both runs (A B)", rb.ID, rb.Pipeline)
}
