package ui

import (
	"net/http"
	"slices"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/state"
)

func (u *UI) previewsPage(w http.ResponseWriter, r *http.Request) {
	ps, err := u.p.ClonePreviews()
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, "cannot list the previews", err)
		return
	}
	u.render(w, r, "previews", "Pull-request previews", "previews", ps)
}

// previewView is a branch's preview: per pipeline, its latest run beside
// the state ref's latest, with the metrics compared and the gates'
// verdicts on the preview's metrics.
type previewView struct {
	Info      *zen.PreviewInfo
	Pipelines []previewPipeline
	// Runs are the preview's runs, newest first.
	Runs []*state.Run
}

type previewPipeline struct {
	Pipeline string
	Run      *state.Run // the preview's latest
	Base     *state.Run // the state ref's latest; nil for none
	Metrics  *zen.Diff
	Params   *zen.Diff
	Gates    []zen.PreviewGate
	Error    string
}

func (u *UI) previewPage(w http.ResponseWriter, r *http.Request) {
	branch := r.PathValue("branch")
	ps, err := u.p.ClonePreviews()
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, "cannot list the previews", err)
		return
	}
	i := slices.IndexFunc(ps, func(p *zen.PreviewInfo) bool { return p.Branch == branch })
	if i < 0 {
		u.fail(w, r, http.StatusNotFound, "preview of branch "+branch+" not found", nil)
		return
	}
	v := previewView{Info: ps[i]}
	recs, err := u.p.State().PreviewRecords(state.Preview{Branch: v.Info.Branch, Ref: v.Info.Ref, Commit: v.Info.Commit})
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, "cannot read the preview of "+branch, err)
		return
	}
	ids, err := recs.RunIDs()
	if err != nil {
		u.fail(w, r, http.StatusInternalServerError, "cannot read the preview of "+branch, err)
		return
	}
	seen := map[string]bool{}
	for k := len(ids) - 1; k >= 0; k-- {
		run, _, err := recs.Run(ids[k])
		if err != nil {
			v.Pipelines = append(v.Pipelines, previewPipeline{Error: err.Error()})
			continue
		}
		v.Runs = append(v.Runs, run)
		if seen[run.Pipeline] {
			continue
		}
		seen[run.Pipeline] = true
		pp := previewPipeline{Pipeline: run.Pipeline, Run: run}
		base, err := u.p.Runs(zen.RunsQuery{Pipeline: run.Pipeline, Limit: 1})
		if err != nil {
			pp.Error = err.Error()
		} else if len(base) > 0 {
			pp.Base = base[0]
			pp.Metrics, pp.Params = zen.DiffMetrics(pp.Base, run), zen.DiffParams(pp.Base, run)
		}
		if pp.Gates, err = u.p.PreviewGates(run); err != nil {
			pp.Error = err.Error()
		}
		v.Pipelines = append(v.Pipelines, pp)
	}
	u.render(w, r, "preview", "Preview of "+branch, "previews", v)
}
