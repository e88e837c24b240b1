package ui

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/state"
)

// metricsView is the metrics page: a chart of metrics across the runs of
// a pipeline.
type metricsView struct {
	Pipelines []string
	Pipeline  string
	// Metrics are those the pipeline's latest run recorded (STEP.METRIC),
	// Chosen those drawn.
	Metrics []string
	Chosen  []string
	Plot    *zen.Plot
	Rows    []chartRow
	// Problem says why there is no chart.
	Problem string
}

func (u *UI) metricsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := metricsView{Pipeline: q.Get("pipeline"), Chosen: q["metric"]}
	if cfg, err := u.p.Config(); err == nil {
		v.Pipelines = cfg.PipelineNames()
	}
	var latest *state.Run
	if v.Pipeline == "" {
		runs, err := u.p.Runs(zen.RunsQuery{Limit: 1})
		if err != nil {
			u.fail(w, r, http.StatusInternalServerError, "cannot read the latest run", err)
			return
		}
		if len(runs) == 0 {
			v.Problem = "No runs are recorded on the state ref yet: zen apply records one."
			u.render(w, r, "metrics", "Metrics", "metrics", v)
			return
		}
		latest, v.Pipeline = runs[0], runs[0].Pipeline
	} else {
		runs, err := u.p.Runs(zen.RunsQuery{Pipeline: v.Pipeline, Limit: 1})
		if err != nil {
			u.fail(w, r, http.StatusInternalServerError, "cannot read the runs of pipeline "+v.Pipeline, err)
			return
		}
		if len(runs) == 0 {
			v.Problem = "Pipeline " + v.Pipeline + " has no recorded runs."
			u.render(w, r, "metrics", "Metrics", "metrics", v)
			return
		}
		latest = runs[0]
	}
	if !slices.Contains(v.Pipelines, v.Pipeline) {
		v.Pipelines = append(v.Pipelines, v.Pipeline)
	}
	for _, s := range zen.MetricsOf(latest).Steps {
		for _, m := range sortedKeys(s.Metrics) {
			v.Metrics = append(v.Metrics, s.Step+"."+m)
		}
	}
	if len(v.Chosen) == 0 && len(v.Metrics) > 0 {
		v.Chosen = v.Metrics[:1]
	}
	if len(v.Chosen) == 0 {
		v.Problem = "The latest run of " + v.Pipeline + " recorded no metrics."
	} else {
		plot, err := u.p.Plots(zen.PlotsQuery{Pipeline: v.Pipeline, Metrics: v.Chosen})
		if err != nil {
			v.Problem = err.Error()
		} else {
			v.Plot, v.Rows = plot, chartRows(plot)
		}
	}
	u.render(w, r, "metrics", "Metrics of "+v.Pipeline, "metrics", v)
}

// compareView compares two runs' parameters and metrics.
type compareView struct {
	A, B    string // as asked
	Old     *state.Run
	New     *state.Run
	Params  *zen.Diff
	Metrics *zen.Diff
	Problem string
}

func (u *UI) comparePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := compareView{A: q.Get("a"), B: q.Get("b")}
	old, cur, err := u.p.RunPair(v.A, v.B)
	if err != nil {
		v.Problem = err.Error()
		status := http.StatusOK // nothing to compare yet
		if v.A != "" || v.B != "" {
			status = http.StatusNotFound
		}
		u.renderStatus(w, r, status, "compare", page{Title: "Compare runs", Nav: "compare", Data: v})
		return
	}
	v.Old, v.New = old, cur
	v.Params, v.Metrics = zen.DiffParams(old, cur), zen.DiffMetrics(old, cur)
	u.render(w, r, "compare", "Compare runs", "compare", v)
}

// chartRow is a run of the metrics page's table: the chart's numbers.
type chartRow struct {
	X      float64
	Run    string
	Values []string // by series; "" where the run lacks the metric
}

// chartRows lays a plot of metrics across runs out as a table, a row per
// run that has a point, oldest first.
func chartRows(pl *zen.Plot) []chartRow {
	var rows []chartRow
	at := map[float64]int{}
	for i, s := range pl.Series {
		for _, pt := range s.Points {
			k, ok := at[pt.X]
			if !ok {
				k = len(rows)
				at[pt.X] = k
				rows = append(rows, chartRow{X: pt.X, Run: pt.Label, Values: make([]string, len(pl.Series))})
			}
			rows[k].Values[i] = num(pt.Y)
		}
	}
	slices.SortFunc(rows, func(a, b chartRow) int { return cmp.Compare(a.X, b.X) })
	return rows
}
