package apply

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/state"
)

// record writes the runs, their cache entries and the pipelines' latest
// fingerprints to the state ref in one commit.
func (a *applier) record(ctx context.Context, files map[string][]byte) (*Result, error) {
	finished := time.Now().UTC()
	res := &Result{}
	var guard []string
	var failed []*state.Run
	var summary []string
	for _, pr := range a.runs {
		run := pr.run
		run.Finished = finished
		run.Status = state.StatusSucceeded
		for name, n := range pr.nodes {
			run.Steps[name] = n.res
			n.lineage(n.res)
			switch n.res.Status {
			case state.StatusFailed:
				run.Status = state.StatusFailed
				if run.Error == "" || name < strings.SplitN(run.Error, ":", 2)[0] {
					run.Error = name + ": " + n.res.Reason
				}
			case state.StatusCancelled:
				if run.Status != state.StatusFailed {
					run.Status = state.StatusCancelled
				}
			}
		}
		if run.Status != state.StatusSucceeded {
			failed = append(failed, run)
		}
		res.Runs = append(res.Runs, run)
		if err := state.AddRun(files, run); err != nil {
			return nil, err
		}
		for _, n := range pr.nodes {
			if n.res.Status != state.StatusSucceeded || !n.step.Cache || a.plan.NoCache {
				continue
			}
			c := a.cacheEntry(n, n.res, finished)
			if err := put(files, state.CachePath(c.Key), c); err != nil {
				return nil, err
			}
		}
		if !run.Experiment && run.Preview == "" && !a.staleBaseline[run.Pipeline] {
			rec, err := a.pipelineRecord(pr, finished)
			if err != nil {
				return nil, err
			}
			p := state.PipelinePath(run.Pipeline)
			if err := put(files, p, rec); err != nil {
				return nil, err
			}
			guard = append(guard, p)
		}
		summary = append(summary, fmt.Sprintf("%s run %s %s", run.Pipeline, run.ID, run.Status))
	}
	for _, pp := range a.plan.Pipelines {
		if pp.Baseline == nil || a.staleBaseline[pp.Name] {
			continue
		}
		p := state.PipelinePath(pp.Name)
		if err := put(files, p, a.baselineRecord(pp, finished)); err != nil {
			return nil, err
		}
		guard = append(guard, p)
		res.Baselines = append(res.Baselines, pp.Name)
	}
	if err := a.adopt(files); err != nil {
		return nil, err
	}
	res.Models = append(res.Models, a.repaired...)
	if len(files) == 0 {
		return res, nil
	}
	for _, c := range a.plan.Models {
		if _, ok := files[state.ModelVersionPath(c.Model, c.Version)]; ok && c.IsVersion() {
			res.Models = append(res.Models, fmt.Sprintf("model %s %s", c.Model, c.Version)+unsignedNote(c))
		}
		if _, ok := files[state.StagesPath(c.Model)]; ok && !c.IsVersion() && c.Refused == "" && a.moved[c.Model+"/"+c.Stage] {
			res.Models = append(res.Models, fmt.Sprintf("stage %s/%s → %s", c.Model, c.Stage, c.Version)+unsignedNote(c))
		}
	}
	summary = append(summary, res.Models[len(a.repaired):]...)
	message := func() string {
		sum := summary
		for _, name := range res.Baselines {
			sum = append(sum, name+" baseline (all cached, none ran)")
		}
		msg := commitMessage(a.plan, sum, res.Runs, res.Baselines)
		for _, ad := range a.adopted {
			msg += "Adopted: " + ad + "\n"
		}
		if a.sub != nil {
			msg = strings.Replace(msg, "zen apply: ", "zen apply: collected from Slurm: ", 1)
		}
		return msg
	}
	var keep []string // guarded when the change is made again
	if a.sub != nil {
		// Collected once: by whoever removes the submission first.
		p := state.SubmissionPath(a.sub.ID)
		files[p] = nil
		keep = []string{p}
	}
	msg := message()
	base := a.plan.StateCommit
	if a.plan.Preview != nil {
		base = a.plan.Preview.StateCommit
	}
	commit, err := a.env.State.Commit(ctx, base, state.Change{Files: files, Guard: append(guard, keep...), Message: msg})
	if errors.Is(err, state.ErrStateMoved) {
		if a.sub != nil {
			if head, herr := a.env.State.Head(); herr == nil {
				if _, ok, _ := head.Read(keep[0]); !ok {
					return nil, fmt.Errorf("run %s was collected and recorded meanwhile by another zen: nothing recorded here (zen runs show %s)", a.sub.Runs[0], a.sub.Runs[0])
				}
			}
		}
		// Another apply recorded the same pipeline meanwhile. The runs and
		// cache entries are facts and are kept; the pipeline fingerprints
		// are theirs to keep.
		for _, p := range guard {
			delete(files, p)
		}
		res.Baselines = nil
		if len(files) == 0 {
			// Only baselines, which are the other apply's to keep.
			return res, fmt.Errorf("%w: %v (nothing was recorded)", state.ErrStateMoved, err)
		}
		commit2, err2 := a.env.State.Commit(ctx, base, state.Change{Files: files, Guard: keep, Message: message()})
		if err2 != nil {
			return nil, fmt.Errorf("record runs: %w", err2)
		}
		res.StateCommit = commit2
		return res, fmt.Errorf("%w: %v (the runs were recorded in %s; their pipelines' baselines were not)", state.ErrStateMoved, err, short(commit2))
	}
	if err != nil {
		return nil, fmt.Errorf("record runs: %w", err)
	}
	res.StateCommit = commit
	if len(failed) > 0 {
		return res, &RunError{Runs: failed}
	}
	return res, nil
}

// adopt adds to files the records of the preview runs whose outputs the
// apply reuses, and their cache entries, that the state ref lacks (see
// state.Records.Adopt). A preview's own apply adopts nothing: its runs
// are recorded on its own ref.
func (a *applier) adopt(files map[string][]byte) error {
	ad, ok := a.env.Records.(interface {
		Adopt(key, id string) (map[string][]byte, error)
	})
	if !ok || a.plan.Preview != nil {
		return nil
	}
	reused := map[string]string{} // key → run
	for _, pp := range a.plan.Pipelines {
		for _, s := range pp.Steps {
			if s.Action == plan.Cached {
				reused[s.Key] = s.CachedFrom
			}
		}
	}
	// A step that was to run but found its key cached once its upstream
	// ran (the early cut-off).
	for _, pr := range a.runs {
		for _, n := range pr.nodes {
			if n.res.Status == state.StatusCached && n.res.CachedFrom != "" {
				reused[n.res.CacheKey] = n.res.CachedFrom
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(reused)) {
		got, err := ad.Adopt(key, reused[key])
		if err != nil {
			return fmt.Errorf("adopt the records of run %s: %w", reused[key], err)
		}
		for p, data := range got {
			if _, ok := files[p]; ok {
				continue
			}
			files[p] = data
			if p == state.RunPath(reused[key]) {
				var run state.Run
				if err := json.Unmarshal(data, &run); err != nil {
					return fmt.Errorf("adopt run %s: %w", reused[key], err)
				}
				a.adopted = append(a.adopted, fmt.Sprintf("%s %s (preview of %s)", run.ID, run.Pipeline, run.Preview))
			}
		}
	}
	return nil
}

// pipelineRecord updates the pipeline's latest fingerprints with the steps
// that ran or were reused; skipped and cancelled steps keep their previous
// state.
func (a *applier) pipelineRecord(pr *pipelineRun, now time.Time) (*state.Pipeline, error) {
	prev, _, err := a.env.Records.Pipeline(pr.pipeline.Name)
	if err != nil {
		return nil, err
	}
	rec := &state.Pipeline{Version: state.RecordVersion, Pipeline: pr.pipeline.Name, Steps: map[string]*state.StepState{}}
	if prev != nil {
		for name, s := range prev.Steps {
			if _, ok := pr.pipeline.Steps[name]; ok {
				rec.Steps[name] = s
			}
		}
	}
	rec.RunID, rec.SourceCommit, rec.Dirty, rec.Updated = pr.run.ID, pr.run.SourceCommit, pr.run.Dirty, now
	for name, n := range pr.nodes {
		switch n.res.Status {
		case state.StatusSucceeded, state.StatusCached, state.StatusFailed, state.StatusCancelled:
			if n.fp == nil {
				continue
			}
			st := &state.StepState{Fingerprint: n.fp, Key: n.res.CacheKey, Status: n.res.Status, Reason: n.res.Reason, RunID: pr.run.ID,
				Outputs: n.res.Outputs, Metrics: n.res.Metrics, Log: n.res.Log}
			if n.res.CachedFrom != "" {
				st.RunID = n.res.CachedFrom
			}
			rec.Steps[name] = st
		}
	}
	return rec, nil
}

// baselineRecord is the baseline of a pipeline of which no step ran:
// what the plan applied, each step reused from the run that made its
// outputs. It names no run of its own, since none ran.
func (a *applier) baselineRecord(pp *plan.Pipeline, now time.Time) *state.Pipeline {
	rec := &state.Pipeline{Version: state.RecordVersion, Pipeline: pp.Name, SourceCommit: a.plan.Source.Commit, Dirty: a.plan.Source.Dirty, Updated: now, Steps: map[string]*state.StepState{}}
	// The plan holds every declared step, so nothing of the old baseline
	// is kept: a step no longer declared leaves it, as it does a run's.
	for _, s := range pp.Steps {
		rec.Steps[s.Name] = &state.StepState{Fingerprint: s.Fingerprint, Key: s.Key, Status: state.StatusCached, RunID: s.CachedFrom,
			Outputs: s.Outputs, Metrics: s.Metrics, Log: s.Log}
	}
	return rec
}

func commitMessage(p *plan.Plan, summary []string, runs []*state.Run, baselines []string) string {
	src := p.Source.Commit
	if src == "" {
		src = "(no commit)"
	}
	var b strings.Builder
	verb := "zen apply"
	if p.Preview != nil {
		verb = "zen apply --preview " + p.Preview.Branch
	}
	fmt.Fprintf(&b, "%s: %s from %s", verb, strings.Join(summary, ", "), short(src))
	if p.Source.Dirty {
		b.WriteString(" (dirty)")
	}
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "Source-Commit: %s\n", src)
	if p.Source.Dirty {
		fmt.Fprintf(&b, "Source-Dirty: %s\n", p.Source.DirtyDigest)
	}
	fmt.Fprintf(&b, "Stack: %s\n", p.Stack)
	if p.Preview != nil {
		fmt.Fprintf(&b, "Preview: %s\n", p.Preview.Branch)
	}
	for _, r := range runs {
		fmt.Fprintf(&b, "Run: %s %s %s\n", r.ID, r.Pipeline, r.Status)
	}
	for _, name := range baselines {
		fmt.Fprintf(&b, "Baseline: %s\n", name)
	}
	for _, o := range p.Overrides {
		v, _ := json.Marshal(o.Value)
		fmt.Fprintf(&b, "Experiment: %s=%s\n", o.Path, v)
	}
	return b.String()
}

func put(files map[string][]byte, path string, rec any) error {
	b, err := state.Encode(rec)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	files[path] = b
	return nil
}

// NewRunID returns a run id: the UTC start time and six random hex digits,
// so ids sort by time (to the millisecond).
func NewRunID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102-150405.000") + "-" + hex.EncodeToString(b[:])
}

// unsignedNote marks, in apply's summary and the state commit's message,
// a model change the stack did not sign.
func unsignedNote(c *plan.ModelChange) string {
	if c.Unsigned == "" {
		return ""
	}
	return " (UNSIGNED: " + c.Unsigned + ")"
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
