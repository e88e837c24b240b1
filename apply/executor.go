package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zen-dev/zen/internal/failpoint"
	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/progress"
	"github.com/zen-dev/zen/registry/verify"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// The executor takes an apply's steps through to their results on the
// stack's orchestrator, the same way whatever the orchestrator:
//
//   - it submits a step once the steps it reads from have their results
//     (at most -j at once), or, on an orchestrator that chains, every
//     step at once after the jobs it reads from;
//   - a step whose upstream step did not succeed is skipped, and one not
//     started when the apply is cancelled (Ctrl-C) is cancelled; the
//     steps running are cancelled on the orchestrator, unless a
//     detached run is being collected (then the jobs go on);
//   - before a step is submitted, its cache key is checked again once an
//     upstream step ran: outputs that came out as before are a cache hit
//     (the early cut-off);
//   - as each step is collected: its cache key, the signatures and
//     provenance of what it stored, its line in the journal (before its
//     success is reported), and its progress line.
//
// Recording the runs is record.go's.

// execute takes every step through to its result.
func (a *applier) execute(ctx context.Context) error {
	var tasks []*Task
	for _, n := range a.nodes {
		if !n.planned.Runs() {
			n.useCached()
			a.report(n, progress.Cached, "")
			continue
		}
		tasks = append(tasks, a.task(n))
		a.report(n, progress.Waiting, "")
	}
	chains := a.orch.Traits().Chains
	if chains {
		// What each step's key is made of, but for the outputs of the
		// steps before it that run too: those are filled in as they are
		// collected.
		for _, t := range tasks {
			n := t.n
			fp, err := n.fingerprint(a.env.Sources, n.upstreamDigests())
			if err != nil {
				return fmt.Errorf("pipeline %s: step %s: %w", n.pr.pipeline.Name, n.step.Name, err)
			}
			n.fp = fp
		}
	}
	if err := a.orch.Start(ctx, tasks); err != nil {
		return err
	}
	if chains {
		return a.submitAll(ctx, tasks)
	}
	sem := make(chan struct{}, a.jobs)
	var wg sync.WaitGroup
	for _, n := range a.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(n.done)
			a.schedule(ctx, n, sem)
		}()
	}
	wg.Wait()
	return a.close()
}

// fingerprint is what the step's key is made of now that its upstream
// steps ran, with the image the plan pinned: a tag that moved since does
// not change what runs.
func (n *node) fingerprint(src plan.Sources, upstream map[string]string) (*state.Fingerprint, error) {
	fp, err := plan.Fingerprint(n.step, src, upstream)
	if err == nil && n.planned.Fingerprint != nil {
		fp.Image = n.planned.Fingerprint.Image
	}
	return fp, err
}

func (a *applier) task(n *node) *Task {
	return &Task{Run: n.pr.run, Pipeline: n.pr.pipeline, Step: n.step, Action: n.planned.Action, Env: n.env, n: n}
}

// schedule takes one step through to its result on an orchestrator that
// takes a step once the steps it reads from have their results.
func (a *applier) schedule(ctx context.Context, n *node, sem chan struct{}) {
	if failed := n.failedUpstream(); len(failed) > 0 {
		n.res = &state.StepResult{Status: state.StatusSkipped, Reason: "upstream step " + strings.Join(failed, ", ") + " did not succeed"}
		a.report(n, progress.NotRun, "")
		return
	}
	if n.res != nil { // cached
		return
	}
	select {
	case sem <- struct{}{}:
		defer func() { <-sem }()
	case <-ctx.Done():
	}
	if ctx.Err() != nil {
		n.res = &state.StepResult{Status: state.StatusCancelled, Reason: "apply cancelled before the step started"}
		a.report(n, progress.NotRun, "")
		return
	}
	upstream := n.upstreamDigests()
	fp, err := n.fingerprint(a.env.Sources, upstream)
	if err != nil {
		n.res = &state.StepResult{Status: state.StatusFailed, Reason: err.Error()}
		a.report(n, progress.Failed, "")
		return
	}
	n.fp = fp
	n.key = plan.Key(fp)
	if n.step.Cache && !a.plan.NoCache && len(upstream) > 0 {
		// An upstream step ran but produced what it had before: reuse.
		if hit, ok := a.cacheHit(ctx, n.key, fp.Inputs); ok {
			n.res = &state.StepResult{Status: state.StatusCached, Reason: "upstream outputs unchanged", CacheKey: n.key, CachedFrom: hit.RunID, Outputs: hit.Outputs, Metrics: hit.Metrics, Log: hit.Log}
			a.report(n, progress.Cached, "= %s cached (upstream outputs unchanged)", n.step.Name)
			return
		}
	}
	t := a.task(n)
	t.Key = n.key
	started := time.Now()
	j, err := a.orch.Submit(ctx, t)
	if err != nil {
		a.collected(ctx, n, &state.StepResult{Status: state.StatusFailed, CacheKey: n.key, Reason: err.Error()}, started)
		return
	}
	n.job = j
	a.await(ctx, n, started)
}

// failedUpstream waits for the steps n reads from, and names those that
// did not succeed.
func (n *node) failedUpstream() []string {
	var failed []string
	for _, d := range n.deps {
		<-d.done
		if d.res.Status != state.StatusSucceeded && d.res.Status != state.StatusCached {
			failed = append(failed, d.step.Name)
		}
	}
	return failed
}

// submitAll submits every step at once, on an orchestrator that chains,
// and waits for them unless the apply detaches.
func (a *applier) submitAll(ctx context.Context, tasks []*Task) error {
	start := time.Now()
	var mu sync.Mutex
	var jobs []Job
	submit := func(t *Task) error {
		mu.Lock()
		for _, up := range t.Step.Upstream() {
			if j := t.n.pr.nodes[up].job; j != nil && !slices.Contains(t.After, j) {
				t.After = append(t.After, j)
			}
		}
		mu.Unlock()
		j, err := a.orch.Submit(ctx, t)
		if err != nil {
			return err
		}
		mu.Lock()
		t.n.job = j
		jobs = append(jobs, j)
		mu.Unlock()
		return nil
	}
	// In waves: the steps whose upstream jobs are all submitted go at
	// once, since submitting takes a while each.
	left := tasks
	for len(left) > 0 {
		var wave, rest []*Task
		for _, t := range left {
			ready := true
			for _, up := range t.Step.Upstream() {
				if u := t.n.pr.nodes[up]; u.planned.Runs() && u.job == nil {
					ready = false
				}
			}
			if ready {
				wave = append(wave, t)
			} else {
				rest = append(rest, t)
			}
		}
		// Every one is tried: the error names each that failed.
		errs := make([]error, len(wave))
		var g errgroup.Group
		g.SetLimit(submitConcurrency)
		for i, t := range wave {
			g.Go(func() error {
				errs[i] = submit(t)
				return nil
			})
		}
		g.Wait()
		if err := errors.Join(errs...); err != nil {
			a.orch.Cancel(jobs...)
			return err
		}
		if ctx.Err() != nil {
			// Ctrl-C while submitting: cancel what was submitted; the
			// run is recorded as cancelled.
			a.orch.Cancel(jobs...)
			break
		}
		left = rest
	}
	for _, t := range tasks {
		if t.n.job == nil {
			t.n.res = &state.StepResult{Status: state.StatusCancelled, Reason: "apply cancelled before the step was submitted"}
			a.report(t.n, progress.NotRun, "")
		}
	}
	if len(jobs) > 0 {
		a.progress(nil, "  submitted %d jobs in %s", len(jobs), time.Since(start).Round(time.Millisecond))
	}
	if a.env.Detach && ctx.Err() == nil {
		// Collected later, by zen runs watch or the next apply.
		for _, t := range tasks {
			t.n.res = &state.StepResult{Status: state.StatusSubmitted, Job: t.n.job.ID()}
		}
		return nil
	}
	return a.awaitAll(ctx)
}

// awaitAll waits for the steps submitted at once and collects each as it
// ends, after the steps it reads from.
func (a *applier) awaitAll(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, n := range a.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(n.done)
			failed := n.failedUpstream()
			switch {
			case n.res != nil: // cached, or never submitted
			case a.halted() != nil:
				n.res = &state.StepResult{Status: state.StatusCancelled, Job: n.job.ID()}
				a.report(n, progress.Failed, "")
			case len(failed) > 0:
				// Slurm drops such a job itself (afterok); this makes sure.
				a.orch.Cancel(n.job)
				n.res = &state.StepResult{Status: state.StatusSkipped, Reason: "upstream step " + strings.Join(failed, ", ") + " did not succeed", Job: n.job.ID()}
				a.report(n, progress.NotRun, "- %s not run: %s", stepLabel(n), n.res.Reason)
			default:
				a.await(ctx, n, time.Now())
			}
		}()
	}
	wg.Wait()
	return a.close()
}

// close ends the orchestrator's part once every step has its result.
func (a *applier) close() error {
	if err := a.halted(); err != nil {
		return err
	}
	a.orch.Close()
	return nil
}

// halted is why the steps stopped before all were collected, nil if
// they did not.
func (a *applier) halted() error {
	a.haltMu.Lock()
	defer a.haltMu.Unlock()
	return a.halt
}

func (a *applier) stop(err error) {
	a.haltMu.Lock()
	defer a.haltMu.Unlock()
	if a.halt == nil {
		a.halt = err
	}
}

// await waits for a submitted step to end and collects it. Cancelled
// (ctx), it cancels the job first, unless the jobs are to go on.
func (a *applier) await(ctx context.Context, n *node, started time.Time) {
	if err := a.orch.Wait(ctx, n.job); err != nil {
		switch {
		case ctx.Err() == nil:
			a.stop(err)
		case a.keepJobs:
			a.stop(ErrStopped)
		default:
			a.orch.Cancel(n.job)
		}
		if a.halted() != nil {
			n.res = &state.StepResult{Status: state.StatusCancelled, Job: n.job.ID()}
			a.report(n, progress.Failed, "")
			return
		}
	}
	ctx = context.WithoutCancel(ctx)
	a.collected(ctx, n, a.orch.Collect(ctx, n.job), started)
}

// collected finishes a step's result res: its cache key, the signatures
// of what it stored, its journal line; then it reports it.
func (a *applier) collected(ctx context.Context, n *node, res *state.StepResult, started time.Time) {
	if n.job != nil {
		res.Job = n.job.ID()
	}
	ran := res.Status == state.StatusSucceeded || res.Status == state.StatusFailed
	switch {
	case n.key != "":
		res.CacheKey = n.key
	case n.fp != nil && ran:
		// Submitted before its upstream outputs were known: the key, now
		// that they are.
		if n.fp.Inputs == nil {
			n.fp.Inputs = map[string]string{}
		}
		maps.Copy(n.fp.Inputs, n.upstreamDigests())
		res.CacheKey = plan.Key(n.fp)
	default:
		n.fp = nil
	}
	// Signed here, where the key is: a node or container holds none.
	if res.Status == state.StatusSucceeded {
		for _, name := range slices.Sorted(maps.Keys(res.Outputs)) {
			if err := a.signArtifact(ctx, res.Outputs[name].Digest, n.build(name)); err != nil {
				res.Status, res.Reason, res.Outputs = state.StatusFailed, fmt.Sprintf("sign output %s: %v", name, err), nil
				break
			}
		}
	}
	if res.Log != nil {
		if err := a.signArtifact(ctx, res.Log.Digest, n.build("log")); err != nil && res.Status == state.StatusSucceeded {
			res.Status, res.Reason, res.Outputs = state.StatusFailed, "sign log: "+err.Error(), nil
		}
	}
	if res.Status == state.StatusSucceeded {
		a.journalStep(n, res)
	}
	res.Reason = Redact(res.Reason, a.secrets)
	n.res = res
	// A process of this zen is timed here; a job is named by its id
	// and node.
	reason := res.Reason
	switch {
	case res.Job == "" && res.Status == state.StatusSucceeded:
		a.report(n, progress.Succeeded, "✓ %s succeeded in %s", stepLabel(n), time.Since(started).Round(time.Millisecond))
	case res.Job == "" && res.Status == state.StatusCancelled:
		a.report(n, progress.Failed, "✗ %s cancelled", stepLabel(n))
	case res.Job == "":
		a.report(n, progress.Failed, "✗ %s failed after %s: %s", stepLabel(n), time.Since(started).Round(time.Millisecond), reason)
	case res.Status == state.StatusSucceeded:
		a.report(n, progress.Succeeded, "✓ %s succeeded on %s (job %s)", stepLabel(n), res.Node, res.Job)
	case res.Status == state.StatusSkipped:
		a.report(n, progress.NotRun, "- %s not run: %s", stepLabel(n), reason)
	default:
		a.report(n, progress.Failed, "✗ %s %s: %s", stepLabel(n), res.Status, reason)
	}
}

// applier is one apply (or the collection of a detached one): its steps,
// as nodes of each pipeline's graph, and what the executor, the step
// runner and recording share.
type applier struct {
	env     *Env
	plan    *plan.Plan
	orch    Orchestrator
	jobs    int // steps at once, on an orchestrator that does not chain
	stream  io.Writer
	work    string
	runs    []*pipelineRun
	nodes   []*node
	secrets []string // values, for redaction

	mu     sync.Mutex
	pulled map[string]*pull

	moved    map[string]bool // model/stage that moved
	repaired []string        // stage tags put back, for the result
	adopted  []string        // preview runs recorded with the apply: "ID (preview of BRANCH)"

	signer signer

	// For steps that run elsewhere: the source tree's digest. keepJobs
	// leaves the jobs running when the wait is interrupted (collecting a
	// detached run); sub is the submission being collected.
	source   string
	keepJobs bool
	sub      *state.Submission
	// staleBaseline names the pipelines whose baseline another apply
	// recorded since the collected submission.
	staleBaseline map[string]bool

	// journal keeps the steps that finished until the runs are recorded.
	journal *state.Journal

	// halt is why the steps stopped before all were collected: an
	// orchestrator's error, or ErrStopped.
	haltMu sync.Mutex
	halt   error
}

type pull struct {
	once sync.Once
	path string
	err  error
}

type pipelineRun struct {
	pipeline *schema.Pipeline
	planned  *plan.Pipeline
	run      *state.Run
	nodes    map[string]*node
	prefix   bool
}

type node struct {
	pr      *pipelineRun
	step    *schema.Step
	planned *plan.Step
	deps    []*node
	done    chan struct{}
	env     []string // resolved environment additions (secrets included)

	res    *state.StepResult
	fp     *state.Fingerprint
	key    string // its cache key, when known at submission
	job    Job    // nil when it was not submitted
	outDir string // where its fresh outputs are, when it ran here
}

// prepare builds the nodes of every pipeline that has steps to run and
// resolves secrets, so that a missing secret fails before anything runs.
func (a *applier) prepare() error {
	started := time.Now().UTC()
	for _, pp := range a.plan.Pipelines {
		if pp.ToRun() == 0 {
			continue
		}
		pl := a.env.Config.Pipelines[pp.Name]
		if pl == nil {
			return fmt.Errorf("pipeline %s is not declared", pp.Name)
		}
		for _, ps := range pp.Steps {
			if pl.Steps[ps.Name] == nil {
				return fmt.Errorf("pipeline %s: step %s is not declared", pp.Name, ps.Name)
			}
		}
		pr := &pipelineRun{pipeline: pl, planned: pp, nodes: map[string]*node{}, prefix: len(a.plan.Pipelines) > 1}
		pr.run = &state.Run{
			Version:      state.RecordVersion,
			ID:           NewRunID(started),
			Pipeline:     pl.Name,
			SourceCommit: a.plan.Source.Commit,
			Dirty:        a.plan.Source.Dirty,
			DirtyDigest:  a.plan.Source.DirtyDigest,
			Stack:        a.plan.Stack,
			Orchestrator: a.env.Stack.Orchestrator.Flavor,
			Store:        a.env.Store.String(),
			Parameters:   pl.Parameters,
			Order:        pl.Order,
			Started:      started,
			Steps:        map[string]*state.StepResult{},
		}
		if a.env.Signer != nil {
			pr.run.SignedBy = a.env.KeyID
		}
		if a.plan.Preview != nil {
			pr.run.Preview = a.plan.Preview.Branch
		}
		if len(a.plan.Overrides) > 0 {
			pr.run.Experiment = true
			pr.run.Overrides = map[string]any{}
			for _, o := range a.plan.Overrides {
				pr.run.Overrides[o.Path] = o.Value
			}
		}
		for _, ps := range pp.Steps {
			n := &node{pr: pr, step: pl.Steps[ps.Name], planned: ps, done: make(chan struct{})}
			for _, up := range n.step.Upstream() {
				n.deps = append(n.deps, pr.nodes[up])
			}
			if ps.Runs() {
				for _, name := range slices.Sorted(maps.Keys(n.step.Env)) {
					ev := n.step.Env[name]
					v := ev.Value
					if ev.Secret != "" {
						s, err := a.env.Secret(ev.Secret)
						if err != nil {
							return fmt.Errorf("pipeline %s: step %s: env %s: %w", pl.Name, ps.Name, name, err)
						}
						v = s
						a.secrets = append(a.secrets, s)
					}
					n.env = append(n.env, name+"="+v)
				}
			}
			pr.nodes[ps.Name] = n
			a.nodes = append(a.nodes, n)
		}
		a.runs = append(a.runs, pr)
	}
	return nil
}

// journalStep writes a step that succeeded to the journal, before its
// success is reported.
func (a *applier) journalStep(n *node, res *state.StepResult) {
	if a.journal == nil {
		return
	}
	n.lineage(res)
	var c *state.Cache
	if n.step.Cache && !a.plan.NoCache {
		c = a.cacheEntry(n, res, time.Now().UTC())
	}
	if err := a.journal.Add(n.pr.run.ID, n.step.Name, res, c); err != nil {
		a.progress(n, "! %s: %v", stepLabel(n), err)
	}
	failpoint.Hit(failpoint.Journaled)
}

// lineage puts what the step's key was made of, and where each input came
// from, in its result res.
func (n *node) lineage(res *state.StepResult) {
	if n.fp == nil {
		return
	}
	res.Fingerprint = n.fp
	res.Sources = map[string]string{}
	for in, i := range n.step.Inputs {
		res.Sources[in] = i.Source()
	}
}

// cacheEntry is the cache entry of the step's result res, a success.
func (a *applier) cacheEntry(n *node, res *state.StepResult, now time.Time) *state.Cache {
	run := n.pr.run
	return &state.Cache{
		Version: state.RecordVersion, Key: res.CacheKey, Pipeline: run.Pipeline, Step: n.step.Name, RunID: run.ID,
		Dirty: run.Dirty, Experiment: run.Experiment, Preview: run.Preview, Created: now,
		Outputs: res.Outputs, Metrics: res.Metrics, Log: res.Log,
	}
}

// useCached takes the step's recorded outputs, as the plan found them.
func (n *node) useCached() {
	n.fp = n.planned.Fingerprint
	n.res = &state.StepResult{Status: state.StatusCached, CacheKey: n.planned.Key, CachedFrom: n.planned.CachedFrom, Outputs: n.planned.Outputs, Metrics: n.planned.Metrics, Log: n.planned.Log}
}

// upstreamDigests maps the step's inputs from other steps and models to
// their digests, once the steps before it have their results.
func (n *node) upstreamDigests() map[string]string {
	upstream := map[string]string{}
	for _, in := range n.step.Inputs {
		switch in.Kind {
		case schema.InputStep:
			if u := n.pr.nodes[in.Step]; u.res != nil {
				upstream[in.Name] = u.res.Outputs[in.Output].Digest
			}
		case schema.InputModel:
			upstream[in.Name] = n.planned.Fingerprint.Inputs[in.Name]
		}
	}
	return upstream
}

func (a *applier) cacheHit(ctx context.Context, key string, inputs map[string]string) (*state.Cache, bool) {
	hit, ok, err := a.env.Records.Cache(key)
	if err != nil || !ok {
		return nil, false
	}
	for name, o := range hit.Outputs {
		if has, err := a.env.Store.Has(ctx, o.Digest); err != nil || !has {
			return nil, false
		}
		if a.env.Verify != nil && a.env.Verify(ctx, o.Digest, verify.CacheBuild(hit, name, inputs)) != nil {
			return nil, false
		}
	}
	return hit, true
}

// progress reports a line about step n, or the apply when n is nil,
// that changes no step's state.
func (a *applier) progress(n *node, format string, args ...any) {
	a.report(n, progress.Note, format, args...)
}

// report reports that step n took state st, with its line ("" for
// none) to Env.Progress, else as a plain line on the stream.
func (a *applier) report(n *node, st progress.State, format string, args ...any) {
	e := progress.Event{State: st}
	if n != nil {
		e.Step = stepLabel(n)
	}
	if format != "" {
		e.Line = fmt.Sprintf(format, args...)
	}
	var sink progress.Sink = progress.Plain{W: a.stream}
	if a.env.Progress != nil {
		sink = a.env.Progress
	}
	sink.Report(e)
}

// prefix is what each line of a step's output starts with on the terminal.
func (n *node) prefix() string {
	if n.pr.prefix {
		return "[" + n.pr.pipeline.Name + "." + n.step.Name + "] "
	}
	return "[" + n.step.Name + "] "
}
