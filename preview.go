package zen

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/schema/gate"
	"github.com/zen-dev/zen/state"
)

// A pull-request preview (zen apply --preview) runs what a branch changes
// and records the runs on refs/zen/preview/<branch>, beside the state
// ref: the reviewer sees the metrics and the gates before the merge, and
// the apply after the merge reuses the outputs (the cache key is the
// same), adopting the preview's records onto the state ref. See
// docs/decisions.md, "Pull-request previews".

// pullPreview opens branch's preview ref and brings it up to remote's (""
// for none). For an apply it also records what a stopped preview apply
// had finished, and a remote that cannot be read is an error; for a plan,
// a note for people (warn).
func (p *Project) pullPreview(ctx context.Context, branch, remote string, forApply bool, log io.Writer) (_ *state.Store, remoteHead string, ahead bool, warn string, _ error) {
	ref, err := state.PreviewRef(branch)
	if err != nil {
		return nil, "", false, "", err
	}
	st, err := state.Open(p.ws.Root, ref)
	if err != nil {
		return nil, "", false, "", err
	}
	if remote != "" {
		sync, err := st.Pull(ctx, remote)
		switch {
		case err != nil && forApply:
			return nil, "", false, "", err
		case err != nil:
			warn = fmt.Sprintf("planned against the clone's preview of %s: %v", branch, err)
		default:
			remoteHead, ahead = sync.RemoteHead, sync.Ahead > 0
		}
	}
	if forApply {
		recovered, err := recoverJournals(ctx, st, log)
		if err != nil {
			return nil, "", false, "", err
		}
		ahead = ahead || recovered && remote != ""
	}
	return st, remoteHead, ahead, warn, nil
}

// previewRecords are the records of every preview the clone has, fetched
// from remote first when it is not "": a plan reuses what they made. A
// fetch that fails is a warning: the plan then reuses the clone's own.
func (p *Project) previewRecords(ctx context.Context, remote string) ([]state.Records, string, error) {
	var warn string
	if remote != "" {
		if err := p.state.FetchPreviews(ctx, remote); err != nil {
			warn = fmt.Sprintf("%v: outputs previews made are not reused", err)
		}
	}
	recs, err := p.localPreviews()
	return recs, warn, err
}

// localPreviews are the records of the previews the clone has, its own
// and those fetched, once each.
func (p *Project) localPreviews() ([]state.Records, error) {
	ps, err := p.state.Previews()
	if err != nil {
		return nil, err
	}
	var out []state.Records
	seen := map[string]bool{}
	for _, pv := range ps {
		if seen[pv.Commit] {
			continue
		}
		seen[pv.Commit] = true
		recs, err := p.state.PreviewRecords(pv)
		if err != nil {
			return nil, err
		}
		out = append(out, recs)
	}
	return out, nil
}

// PreviewBranch is the branch a preview is recorded for: name when it is
// not "", else the branch the work tree is on. A detached HEAD (a CI
// job's checkout of a pull request) has none: the job names it.
func (p *Project) PreviewBranch(name string) (string, error) {
	if name == "" {
		head, err := p.ws.Repo.Head()
		if err != nil {
			return "", fmt.Errorf("preview: the work tree has no commit to preview: %w", err)
		}
		if !head.Name().IsBranch() {
			return "", fmt.Errorf("preview: HEAD is detached (at %s), so there is no branch to record the preview under: name it with --branch (in CI: the pull request's source branch)", head.Hash().String()[:12])
		}
		name = head.Name().Short()
	}
	if _, err := state.PreviewRef(name); err != nil {
		return "", err
	}
	return name, nil
}

// PreviewReport is what a pull-request comment shows of a preview beside
// its plan: per pipeline, the preview's run at the plan's commit against
// the state ref's latest, with what failed; and for each stage the merge
// would move, the challenger's metrics against the champion's.
type PreviewReport struct {
	Branch     string             `json:"branch"`
	Pipelines  []*PreviewPipeline `json:"pipelines"`
	Challenges []*Challenge       `json:"challenges,omitempty"`
}

// PreviewPipeline is one pipeline of a preview.
type PreviewPipeline struct {
	Pipeline string `json:"pipeline"`
	// Run is the preview's run of the pipeline from the plan's source
	// commit, and its status; "" when none ran (every step was cached).
	Run    string `json:"run,omitempty"`
	Status string `json:"status,omitempty"`
	// Base is the state ref's latest run of the pipeline (experiments
	// aside), "" when it has none.
	Base string `json:"base,omitempty"`
	// Metrics and Params compare Base (old) with Run (new).
	Metrics *Diff `json:"metrics,omitempty"`
	Params  *Diff `json:"parameters,omitempty"`
	// Failures are the steps of Run that failed, with their logs' tails.
	Failures []StepFailure `json:"failures,omitempty"`
	// Plots are Run's plot outputs (PlotOutputs); PlotError says why
	// they could not be read.
	Plots     []*Plot `json:"plots,omitempty"`
	PlotError string  `json:"plot_error,omitempty"`
}

// StepFailure is a step that did not succeed in a preview.
type StepFailure struct {
	Step   string `json:"step"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// LogTail is the last lines of its log; LogError says why there are
	// none.
	LogTail  []string `json:"log_tail,omitempty"`
	LogError string   `json:"log_error,omitempty"`
}

// Challenge compares the version a stage would move to (the challenger)
// with the one it holds (the champion), metric by metric (Old is the
// champion's).
type Challenge struct {
	Model      string    `json:"model"`
	Stage      string    `json:"stage"`
	Champion   string    `json:"champion"`
	Challenger string    `json:"challenger"`
	Rows       []DiffRow `json:"rows"`
	// Gate is the gate's result on the challenger's metrics, as plan
	// shows it; Refused says why the move would not be made.
	Gate    []string `json:"gate,omitempty"`
	Refused string   `json:"refused,omitempty"`
}

// logTailLines is how much of a failed step's log a report keeps.
const logTailLines = 20

// PreviewReport reads what pl, a preview's plan (PlanOptions.Preview),
// shows beside itself. Call it after the preview's apply, with the plan
// made again: the runs it made are then on the preview's ref.
func (p *Project) PreviewReport(ctx context.Context, pl *Planned) (*PreviewReport, error) {
	pn := pl.Plan
	if pn.Preview == nil || len(pl.Records.Previews) == 0 {
		return nil, fmt.Errorf("preview report: the plan is not a preview's")
	}
	main := state.Records{Snapshot: pl.Records.Snapshot, Ref: pl.Records.Ref}
	own := pl.Records.Previews[0]
	rep := &PreviewReport{Branch: pn.Preview.Branch, Pipelines: []*PreviewPipeline{}}
	for _, pp := range pn.Pipelines {
		pv := &PreviewPipeline{Pipeline: pp.Name}
		run, err := latestRun(own, pp.Name, func(r *state.Run) bool {
			return r.SourceCommit == pn.Source.Commit && r.Dirty == pn.Source.Dirty
		})
		if err != nil {
			return nil, err
		}
		if run == nil {
			// Pushed again with nothing new to run: the preview's run
			// whose outputs the plan reuses.
			if run, err = reusedPreviewRun(own, pp, pn.Preview.Branch); err != nil {
				return nil, err
			}
		}
		base, err := latestRun(main, pp.Name, func(r *state.Run) bool {
			return !r.Experiment && r.Status == state.StatusSucceeded
		})
		if err != nil {
			return nil, err
		}
		if base != nil {
			pv.Base = base.ID
		}
		if run != nil {
			pv.Run, pv.Status = run.ID, run.Status
			if base != nil {
				pv.Metrics, pv.Params = DiffMetrics(base, run), DiffParams(base, run)
				// A step that did not run in the preview (it failed, or
				// one it reads did) has no metrics: not removed ones.
				pv.Metrics.Rows = slices.DeleteFunc(pv.Metrics.Rows, func(r DiffRow) bool {
					s := run.Steps[r.Step]
					return s != nil && s.Status != state.StatusSucceeded && s.Status != state.StatusCached
				})
			}
			for _, name := range runOrder(run) {
				s := run.Steps[name]
				if s.Status != state.StatusFailed && s.Status != state.StatusCancelled {
					continue
				}
				f := StepFailure{Step: name, Status: s.Status, Reason: s.Reason}
				if log, err := p.StepLog(ctx, run.ID, name, pl.Stack.Name); err != nil {
					f.LogError = err.Error()
				} else {
					f.LogTail = tail(string(log), logTailLines)
				}
				pv.Failures = append(pv.Failures, f)
			}
			if hasPlots(run) {
				if _, plots, err := p.PlotOutputs(ctx, run.ID, pl.Stack.Name); err != nil {
					pv.PlotError = err.Error()
				} else {
					pv.Plots = plots
				}
			}
		}
		rep.Pipelines = append(rep.Pipelines, pv)
	}
	for _, c := range pn.Models {
		if c.IsVersion() || c.From == "" || c.Action == plan.Delete || c.Action == plan.Repair || c.Rollback != nil {
			continue
		}
		champ, ok, err := main.ModelVersion(c.Model, c.From)
		if err != nil || !ok {
			continue
		}
		var challenger map[string]float64
		if mv, ok, err := main.ModelVersion(c.Model, c.Version); err != nil {
			return nil, err
		} else if ok {
			challenger = mv.Metrics
		} else if challenger = newVersionMetrics(pl, c.Model); challenger == nil {
			continue // its steps have not run yet
		}
		rep.Challenges = append(rep.Challenges, &Challenge{Model: c.Model, Stage: c.Stage, Champion: c.From, Challenger: c.Version,
			Rows: metricRows(champ.Metrics, challenger), Gate: c.GateResults, Refused: c.Refused})
	}
	return rep, nil
}

// branchPreviewRun is the latest run of the work tree's branch's preview
// when it is newer than the state ref's latest run; nil otherwise, or on
// a detached HEAD.
func (p *Project) branchPreviewRun(recs state.Records) (*state.Run, error) {
	branch, err := p.PreviewBranch("")
	if err != nil {
		return nil, nil // no branch: no preview of it
	}
	ps, err := p.state.Previews()
	if err != nil {
		return nil, err
	}
	mainIDs, err := recs.RunIDs()
	if err != nil {
		return nil, err
	}
	var best *state.Run
	for _, pv := range ps {
		if pv.Branch != branch {
			continue
		}
		pr, err := p.state.PreviewRecords(pv)
		if err != nil {
			return nil, err
		}
		ids, err := pr.RunIDs()
		if err != nil || len(ids) == 0 {
			if err != nil {
				return nil, err
			}
			continue
		}
		id := ids[len(ids)-1]
		if len(mainIDs) > 0 && id <= mainIDs[len(mainIDs)-1] || best != nil && id <= best.ID {
			continue
		}
		r, ok, err := pr.Run(id)
		if err != nil {
			return nil, err
		}
		if ok {
			best = r
		}
	}
	return best, nil
}

// hasPlots says whether a step of r recorded a plot output.
func hasPlots(r *state.Run) bool {
	for _, s := range r.Steps {
		for _, a := range s.Outputs {
			if a.Type == "plot" {
				return true
			}
		}
	}
	return false
}

// reusedPreviewRun is the newest of the branch's preview runs that the
// plan of pp reuses outputs of, nil for none.
func reusedPreviewRun(own state.Records, pp *plan.Pipeline, branch string) (*state.Run, error) {
	newest := ""
	for _, s := range pp.Steps {
		if s.Action == plan.Cached && s.Preview == branch && s.CachedFrom > newest {
			newest = s.CachedFrom
		}
	}
	if newest == "" {
		return nil, nil
	}
	r, _, err := own.Run(newest)
	return r, err
}

// latestRun is the newest run of pipeline in recs that match accepts, nil
// for none. It reads the records of the pipeline's runs only (see
// state.Records.RunsOf).
func latestRun(recs state.Records, pipeline string, match func(*state.Run) bool) (*state.Run, error) {
	for r, err := range recs.RunsOf(pipeline, "") {
		if err != nil {
			return nil, err
		}
		if match(r) {
			return r, nil
		}
	}
	return nil, nil
}

// newVersionMetrics are the metrics model's new version would be made
// with, as apply gathers them (step.metric, every step of the pipeline
// that makes it): nil while one of those steps must run.
func newVersionMetrics(pl *Planned, model string) map[string]float64 {
	m := pl.Config.Models[model]
	if m == nil {
		return nil
	}
	for _, pp := range pl.Plan.Pipelines {
		if pp.Name != m.Pipeline || pp.ToRun() > 0 {
			continue
		}
		out := map[string]float64{}
		for _, s := range pp.Steps {
			for k, v := range s.Metrics {
				out[s.Name+"."+k] = v
			}
		}
		return out
	}
	return nil
}

// metricRows compares two versions' metrics (step.metric), names sorted.
func metricRows(old, new map[string]float64) []DiffRow {
	names := map[string]bool{}
	for k := range old {
		names[k] = true
	}
	for k := range new {
		names[k] = true
	}
	rows := []DiffRow{}
	for _, k := range slices.Sorted(maps.Keys(names)) {
		var ov, nv any
		if v, ok := old[k]; ok {
			ov = v
		}
		if v, ok := new[k]; ok {
			nv = v
		}
		step, name, _ := strings.Cut(k, ".")
		rows = append(rows, diffRow(step, name, ov, nv))
	}
	return rows
}

// tail is the last n lines of s.
func tail(s string, n int) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// PreviewInfo is one branch's preview as the clone sees it.
type PreviewInfo struct {
	Branch string `json:"branch"`
	Ref    string `json:"ref"`
	// OnRemote says the remote has the preview (Remote names it); Local,
	// that the clone has its own ref.
	Remote   string `json:"remote,omitempty"`
	OnRemote bool   `json:"on_remote"`
	Local    bool   `json:"local"`
	Commit   string `json:"commit"`
	// Runs counts the preview's runs; Latest is the newest.
	Runs   int        `json:"runs"`
	Latest *state.Run `json:"latest,omitempty"`
	// Gone says the branch is no longer on the remote (merged and
	// deleted, or closed), or, for a preview never shared, in the clone.
	// zen preview clean --gone removes such previews.
	Gone bool `json:"gone"`
}

// ListPreviews lists the previews, fetched from the state's remote first
// (see StateRemote), with whether their branches are gone from it.
func (p *Project) ListPreviews(ctx context.Context) ([]*PreviewInfo, error) {
	remote := p.StateRemote()
	var heads map[string]bool
	if remote != "" {
		if err := p.state.FetchPreviews(ctx, remote); err != nil {
			return nil, err
		}
		var err error
		if heads, err = p.state.RemoteBranches(ctx, remote); err != nil {
			return nil, err
		}
	}
	return p.previewList(remote, heads)
}

// ClonePreviews lists the previews the clone has, as ListPreviews does
// but without reaching the remote: nothing is fetched, and Gone is told
// only of previews never shared (whether a shared preview's branch is
// still on the remote takes asking it).
func (p *Project) ClonePreviews() ([]*PreviewInfo, error) {
	return p.previewList(p.StateRemote(), nil)
}

// previewList lists the previews the clone has, those of remote (the
// state's) and its own; heads are remote's branches, nil when unknown.
func (p *Project) previewList(remote string, heads map[string]bool) ([]*PreviewInfo, error) {
	ps, err := p.state.Previews()
	if err != nil {
		return nil, err
	}
	byBranch := map[string]*PreviewInfo{}
	var out []*PreviewInfo
	for _, pv := range ps {
		if pv.Remote != "" && pv.Remote != remote {
			continue // fetched from another remote once
		}
		in := byBranch[pv.Branch]
		if in == nil {
			ref, _ := state.PreviewRef(pv.Branch)
			in = &PreviewInfo{Branch: pv.Branch, Ref: ref, Commit: pv.Commit}
			byBranch[pv.Branch] = in
			out = append(out, in)
		}
		if pv.Remote != "" {
			in.Remote, in.OnRemote, in.Commit = pv.Remote, true, pv.Commit // the shared one counts
		} else {
			in.Local = true
		}
	}
	for _, in := range out {
		recs, err := p.state.PreviewRecords(state.Preview{Branch: in.Branch, Ref: in.Ref, Commit: in.Commit})
		if err != nil {
			return nil, err
		}
		ids, err := recs.RunIDs()
		if err != nil {
			return nil, err
		}
		in.Runs = len(ids)
		if len(ids) > 0 {
			if in.Latest, _, err = recs.Run(ids[len(ids)-1]); err != nil {
				return nil, err
			}
		}
		if in.OnRemote {
			in.Gone = heads != nil && !heads[in.Branch]
		} else {
			// A preview made here and never shared: gone with the
			// clone's branch.
			_, err := p.ws.Repo.Reference(plumbing.NewBranchReferenceName(in.Branch), false)
			in.Gone = err != nil
		}
	}
	return out, nil
}

// CleanPreviews removes the previews of the branches named, and with gone
// those whose branches are gone from the remote, on the remote and in the
// clone; with dryRun it removes nothing. It returns the branches removed
// (or that would be). A branch named that has no preview is an error, and
// nothing is removed. The state ref keeps what an apply adopted from a
// preview (the runs whose outputs it reused), so removing one loses only
// the runs nothing on the state ref reuses.
func (p *Project) CleanPreviews(ctx context.Context, branches []string, gone, dryRun bool) ([]string, error) {
	if len(branches) == 0 && !gone {
		return nil, fmt.Errorf("name the branches whose previews to remove, or --gone for those whose branches are gone from the remote")
	}
	list, err := p.ListPreviews(ctx)
	if err != nil {
		return nil, err
	}
	byBranch := map[string]*PreviewInfo{}
	for _, in := range list {
		byBranch[in.Branch] = in
	}
	var pick []*PreviewInfo
	for _, b := range branches {
		in := byBranch[b]
		if in == nil {
			return nil, fmt.Errorf("branch %s has no preview (zen preview list shows those there are)", b)
		}
		pick = append(pick, in)
	}
	if gone {
		for _, in := range list {
			if in.Gone && !slices.Contains(branches, in.Branch) {
				pick = append(pick, in)
			}
		}
	}
	var done []string
	for _, in := range pick {
		if !dryRun {
			remote := ""
			if in.OnRemote {
				remote = in.Remote
			}
			if err := p.state.DeletePreview(ctx, remote, in.Branch); err != nil {
				return done, err
			}
		}
		done = append(done, in.Branch)
	}
	return done, nil
}

// PreviewGate is a stage's gate evaluated on a run's metrics, as a
// version the run made would meet it: a preview's verdict before the
// merge.
type PreviewGate struct {
	Model string `json:"model"`
	Stage string `json:"stage"`
	Gate  string `json:"gate"`
	// Results are the gate's comparisons with their values and verdicts,
	// as plan prints them; Passed, whether all hold. Error says why the
	// gate could not be evaluated (a metric the run lacks).
	Results []string `json:"results,omitempty"`
	Passed  bool     `json:"passed"`
	Error   string   `json:"error,omitempty"`
}

// PreviewGates evaluates, for each model the work tree's CUE has made by
// run r's pipeline, each of its stages' gates on r's metrics (every
// step's, as STEP.METRIC, as apply records a version's), against the
// versions the state ref's stages hold now. Models by name, stages by
// name.
func (p *Project) PreviewGates(r *state.Run) ([]PreviewGate, error) {
	cfg, err := p.Config()
	if err != nil {
		return nil, err
	}
	recs, err := p.Records()
	if err != nil {
		return nil, err
	}
	metrics := gate.Metrics{}
	for name, s := range r.Steps {
		for k, v := range s.Metrics {
			metrics[name+"."+k] = v
		}
	}
	var out []PreviewGate
	for _, name := range slices.Sorted(maps.Keys(cfg.Models)) {
		m := cfg.Models[name]
		if m.Pipeline != r.Pipeline {
			continue
		}
		stages, _, err := recs.Stages(name)
		if err != nil {
			return nil, err
		}
		held := func(stage string) gate.Metrics {
			if stages == nil || stages.Stages[stage] == nil {
				return nil
			}
			mv, ok, err := recs.ModelVersion(name, stages.Stages[stage].ModelVersion)
			if err != nil || !ok {
				return nil
			}
			return mv.Metrics
		}
		for _, stage := range slices.Sorted(maps.Keys(m.Gates)) {
			g := m.Gates[stage]
			pg := PreviewGate{Model: name, Stage: stage, Gate: g.Source}
			results, pass, err := g.Eval(metrics, held)
			if err != nil {
				pg.Error = err.Error()
			} else {
				pg.Passed = pass
				for _, res := range results {
					pg.Results = append(pg.Results, res.String())
				}
			}
			out = append(out, pg)
		}
	}
	return out, nil
}
