package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/state"
)

// A detached apply (zen apply --detach, on a Slurm stack) submits the
// jobs and returns. It records a submission (submitted/<id>.json) with the
// plan it applied and the source tree the jobs run from, and each run with
// the status "submitted", its steps' job ids and what their keys are made
// of so far. Resume, from zen runs watch or the next zen apply, waits for
// the jobs, collects their results from the store, and records the runs
// as an attached apply would have, removing the submission in the same
// commit: whoever collects first records the runs, once.

// ErrStopped is returned by Resume when the wait was interrupted: the
// jobs go on, and the runs stay submitted.
var ErrStopped = errors.New("stopped waiting; the jobs go on")

// detached reports whether the Slurm jobs were submitted and left to run
// on: a detached apply that submitted any.
func (a *applier) detached() bool {
	return slices.ContainsFunc(a.nodes, func(n *node) bool { return n.res != nil && n.res.Status == state.StatusSubmitted })
}

// recordSubmission records the runs of a detached apply as submitted.
func (a *applier) recordSubmission(ctx context.Context) (*Result, error) {
	var ids []string
	for _, n := range a.nodes {
		if n.res != nil && n.res.Job != "" {
			ids = append(ids, n.res.Job)
		}
	}
	// Jobs nobody can collect are not left on the cluster.
	cancel := func(err error) (*Result, error) {
		scancel(ids)
		return nil, fmt.Errorf("%w (the submitted jobs were cancelled)", err)
	}
	planJSON, err := json.Marshal(a.plan)
	if err != nil {
		return cancel(err)
	}
	now := time.Now().UTC()
	sub := &state.Submission{Version: state.RecordVersion, ID: a.runs[0].run.ID, Stack: a.plan.Stack, Source: a.source, Store: a.env.StoreRef, Plan: planJSON, Submitted: now, Jobs: len(ids)}
	files := map[string][]byte{}
	res := &Result{Submission: sub}
	var summary []string
	for _, pr := range a.runs {
		run := pr.run
		run.Status = state.StatusSubmitted
		jobs := 0
		for name, n := range pr.nodes {
			if n.res.Status == state.StatusSubmitted {
				n.res.Fingerprint = n.fp
				jobs++
			}
			run.Steps[name] = n.res
		}
		sub.Runs = append(sub.Runs, run.ID)
		res.Runs = append(res.Runs, run)
		if err := state.AddRun(files, run); err != nil {
			return cancel(err)
		}
		summary = append(summary, fmt.Sprintf("%s run %s submitted (%d jobs)", run.Pipeline, run.ID, jobs))
	}
	if err := put(files, state.SubmissionPath(sub.ID), sub); err != nil {
		return cancel(err)
	}
	commit, err := a.env.State.Commit(ctx, a.plan.StateCommit, state.Change{Files: files, Message: commitMessage(a.plan, summary, res.Runs, nil)})
	if err != nil {
		return cancel(fmt.Errorf("record the submission: %w", err))
	}
	res.StateCommit = commit
	a.journal.Remove()
	return res, nil
}

// Resume waits for the jobs of a detached apply, collects their results,
// makes the model changes its plan holds, and records the runs, removing
// the submission. env is as for Apply, with Config loaded from the
// submission's source tree (with its plan's overrides); recs are the
// state ref's head. Interrupted (ctx), it returns ErrStopped and leaves
// the jobs running.
func Resume(ctx context.Context, env *Env, recs state.Records, sub *state.Submission) (*Result, error) {
	env.Records = recs
	var p plan.Plan
	dec := json.NewDecoder(bytes.NewReader(sub.Plan))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: its plan: %w", state.SubmissionPath(sub.ID), err)
	}
	if env.Stream == nil {
		env.Stream = io.Discard
	}
	if env.Secret == nil {
		env.Secret = LookupSecret
	}
	submittedOn := p.StateCommit
	head := recs.Snapshot.Commit()
	p.StateCommit = head
	a := &applier{env: env, plan: &p, stream: &lockedWriter{w: env.Stream}, pulled: map[string]*pull{}, keepJobs: true, sub: sub}
	a.orch = newOrchestrator(a)
	if !a.orch.Traits().Detaches {
		return nil, fmt.Errorf("%s: stack %s runs its steps in this process: there are no jobs to collect", state.SubmissionPath(sub.ID), env.Stack.Name)
	}
	if err := a.prepare(); err != nil {
		return nil, fmt.Errorf("%s: %w", state.SubmissionPath(sub.ID), err)
	}
	byPipeline := map[string]*state.Run{}
	for _, id := range sub.Runs {
		run, ok, err := recs.Run(id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s names run %s, which is not recorded", state.SubmissionPath(sub.ID), id)
		}
		byPipeline[run.Pipeline] = run
	}
	for _, pr := range a.runs {
		rec := byPipeline[pr.pipeline.Name]
		if rec == nil {
			return nil, fmt.Errorf("%s: no run of pipeline %s", state.SubmissionPath(sub.ID), pr.pipeline.Name)
		}
		run := *rec
		run.Steps = map[string]*state.StepResult{}
		pr.run = &run
	}
	jobs := 0
	for _, n := range a.nodes {
		if !n.planned.Runs() {
			n.useCached()
			continue
		}
		st := byPipeline[n.pr.pipeline.Name].Steps[n.step.Name]
		if st == nil || st.Job == "" {
			return nil, fmt.Errorf("run %s: step %s has no job id on record", n.pr.run.ID, n.step.Name)
		}
		n.fp = st.Fingerprint
		j, err := a.orch.Reattach(a.task(n), st.Job)
		if err != nil {
			return nil, fmt.Errorf("run %s: step %s: %w", n.pr.run.ID, n.step.Name, err)
		}
		n.job = j
		jobs++
	}
	// A pipeline recorded by another apply since the submission keeps the
	// baseline that apply gave it.
	a.staleBaseline = map[string]bool{}
	if submittedOn != "" {
		then, err := env.State.At(submittedOn)
		if err != nil {
			return nil, err
		}
		// The pipelines with a run, and those whose baseline the plan
		// moves with every step cached.
		var names []string
		runOf := map[string]string{}
		for _, pr := range a.runs {
			names = append(names, pr.pipeline.Name)
			runOf[pr.pipeline.Name] = pr.run.ID
		}
		for _, pp := range p.Pipelines {
			if pp.Baseline != nil {
				names = append(names, pp.Name)
				runOf[pp.Name] = sub.Runs[0]
			}
		}
		for _, name := range names {
			path := state.PipelinePath(name)
			old, _, err := then.Read(path)
			if err != nil {
				return nil, err
			}
			now, _, err := recs.Snapshot.Read(path)
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(old, now) {
				a.staleBaseline[name] = true
				a.progress(nil, "  pipeline %s was applied again since run %s was submitted: its baseline stays as that apply left it", name, runOf[name])
			}
		}
	}
	if err := env.Store.Check(ctx); err != nil {
		return nil, err
	}
	a.progress(nil, "  waiting for %d jobs of %s", jobs, strings.Join(sub.Runs, ", "))
	if err := a.awaitAll(ctx); err != nil {
		return nil, err
	}
	return a.finish(ctx)
}
