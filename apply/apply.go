// Package apply carries out a plan: it runs the steps that must run on the
// stack's orchestrator, stores their outputs, and records the runs on the
// state ref.
package apply

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zen-dev/zen/internal/failpoint"

	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/provenance"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/registry/verify"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// Env is what an apply works with.
type Env struct {
	Config  *schema.Config
	Stack   *schema.Stack
	Store   registry.Store
	Sources plan.Sources
	Records plan.Recorded
	State   *state.Store
	// Jobs is how many steps run at once; 0 means one per CPU.
	Jobs int
	// Stream receives step output, prefixed with the step name, and
	// progress lines; nil discards them.
	Stream io.Writer
	// Secret resolves a secret reference; nil uses LookupSecret.
	Secret func(name string) (string, error)
	// Signer signs every artifact and model version apply pushes, and
	// KeyID names its key in their records; Verifier checks a version's
	// signature before a stage moves to it. Nil: unsigned, unchecked.
	Signer   *signature.Signer
	KeyID    string
	Verifier *signature.Verifier
	// Verify, when not nil, checks the signature and provenance of a
	// stored artifact before a step that ran reuses a cache entry (see
	// plan.Options).
	Verify func(ctx context.Context, digest string, made *provenance.Build) error
	// For a Slurm stack: StoreRef names the store for zen on the nodes
	// ("oci:registry.example.com/ml"), and SourceTree writes the files the
	// steps run from into a new folder.
	StoreRef   string
	SourceTree func(dest string) error
	// Detach, on a Slurm stack, returns once the jobs are submitted and
	// records the runs as submitted; Resume collects them later.
	Detach bool
}

// Result is what an apply did.
type Result struct {
	Runs []*state.Run
	// Models lists the model versions produced and the stages moved.
	Models []string
	// StateCommit is the state ref's new commit, "" if nothing was recorded.
	StateCommit string
	// Submission is what a detached apply left on the cluster; its runs
	// are recorded as submitted.
	Submission *state.Submission
	// Baselines names the pipelines whose baseline moved to the source
	// commit although nothing of theirs ran (every step cached).
	Baselines []string
}

// RunError reports runs that did not succeed. They are recorded all the same.
type RunError struct {
	Runs []*state.Run
	// Refused lists the model changes that were not made as a result.
	Refused []string
}

func (e *RunError) Error() string {
	var parts []string
	for _, r := range e.Runs {
		parts = append(parts, fmt.Sprintf("run %s of pipeline %s %s", r.ID, r.Pipeline, r.Status))
	}
	msg := strings.Join(parts, "; ")
	if len(e.Refused) > 0 {
		msg += "\nrefused: " + strings.Join(e.Refused, "; ")
	}
	return msg
}

// Cancelled reports whether a run was cancelled.
func (e *RunError) Cancelled() bool {
	for _, r := range e.Runs {
		if r.Status == state.StatusCancelled {
			return true
		}
	}
	return false
}

// Apply runs what p says must run and records the runs. It returns a
// *RunError, after recording, when a run failed or was cancelled.
func Apply(ctx context.Context, env *Env, p *plan.Plan) (*Result, error) {
	if !p.Changes() {
		return &Result{}, nil
	}
	if env.Secret == nil {
		env.Secret = LookupSecret
	}
	if env.Stream == nil {
		env.Stream = io.Discard
	}
	jobs := env.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	a := &applier{env: env, plan: p, sem: make(chan struct{}, jobs), stream: &lockedWriter{w: env.Stream}, pulled: map[string]*pull{}}
	if err := a.prepare(); err != nil {
		return nil, err
	}
	if err := env.Store.Check(ctx); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "zen-apply-")
	if err != nil {
		return nil, err
	}
	defer removeAll(work)
	a.work = work

	if env.State != nil && len(a.runs) > 0 {
		// Steps that finish are kept here until the runs are recorded:
		// an apply killed on the way loses none of them.
		heads := make([]*state.Run, len(a.runs))
		for i, pr := range a.runs {
			heads[i] = pr.run
		}
		if a.journal, err = env.State.OpenJournal(a.runs[0].run.ID, heads); err != nil {
			return nil, err
		}
		defer a.journal.Close()
	}
	if env.Stack.Orchestrator.Flavor == "slurm" {
		if err := a.executeSlurm(ctx); err != nil {
			return nil, err
		}
		if a.detached() {
			return a.recordSubmission(context.WithoutCancel(ctx))
		}
	} else {
		if env.Detach {
			return nil, fmt.Errorf("stack %s: --detach needs a stack whose orchestrator is slurm; a %s stack runs the steps in this process", env.Stack.Name, env.Stack.Orchestrator.Flavor)
		}
		var wg sync.WaitGroup
		for _, n := range a.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a.execute(ctx, n)
			}()
		}
		wg.Wait()
	}
	return a.finish(ctx)
}

// finish makes the model changes once the steps have their results, and
// records the runs.
func (a *applier) finish(ctx context.Context) (*Result, error) {
	files := map[string][]byte{}
	refused, err := a.applyModels(ctx, files)
	if err != nil {
		return nil, err
	}
	if err := a.env.Store.Close(); err != nil {
		return nil, fmt.Errorf("artifact store %s: %w", a.env.Store, err)
	}
	// Recorded even when ctx ended: a cancelled run is recorded as such,
	// and waiting for the ref's lock is bounded by state.LockTimeout.
	res, err := a.record(context.WithoutCancel(ctx), files)
	if res != nil {
		// Recorded: the journal has nothing the state ref lacks.
		a.journal.Remove()
	}
	var re *RunError
	switch {
	case len(refused) == 0:
	case err == nil:
		err = &RefusedError{Reasons: refused}
	case errors.As(err, &re):
		re.Refused = refused
	}
	return res, err
}

type applier struct {
	env     *Env
	plan    *plan.Plan
	sem     chan struct{}
	stream  io.Writer
	work    string
	runs    []*pipelineRun
	nodes   []*node
	secrets []string // values, for redaction

	mu     sync.Mutex
	pulled map[string]*pull

	moved    map[string]bool // model/stage that moved
	repaired []string        // stage tags put back, for the result

	signer signer

	// On a Slurm stack: the source tree's digest; keepJobs leaves the
	// jobs running when the wait is interrupted (collecting a detached
	// run); sub is the submission being collected.
	source   string
	keepJobs bool
	sub      *state.Submission
	// staleBaseline names the pipelines whose baseline another apply
	// recorded since the collected submission.
	staleBaseline map[string]bool

	// journal keeps the steps that finished until the runs are recorded.
	journal *state.Journal
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

// execute takes one step through to its result.
func (a *applier) execute(ctx context.Context, n *node) {
	defer close(n.done)
	var failed []string
	for _, d := range n.deps {
		<-d.done
		if d.res.Status != state.StatusSucceeded && d.res.Status != state.StatusCached {
			failed = append(failed, d.step.Name)
		}
	}
	switch {
	case len(failed) > 0:
		n.res = &state.StepResult{Status: state.StatusSkipped, Reason: "upstream step " + strings.Join(failed, ", ") + " did not succeed"}
		return
	case !n.planned.Runs():
		n.useCached()
		return
	}
	select {
	case a.sem <- struct{}{}:
		defer func() { <-a.sem }()
	case <-ctx.Done():
	}
	if ctx.Err() != nil {
		n.res = &state.StepResult{Status: state.StatusCancelled, Reason: "apply cancelled before the step started"}
		return
	}
	upstream := n.upstreamDigests()
	fp, err := plan.Fingerprint(n.step, a.env.Sources, upstream)
	if err != nil {
		n.res = &state.StepResult{Status: state.StatusFailed, Reason: err.Error()}
		return
	}
	n.fp = fp
	key := plan.Key(fp)
	cacheable := n.step.Cache && !a.plan.NoCache
	if cacheable && len(upstream) > 0 {
		// An upstream step ran but produced what it had before: reuse.
		if hit, ok := a.cacheHit(ctx, key, fp.Inputs); ok {
			n.res = &state.StepResult{Status: state.StatusCached, Reason: "upstream outputs unchanged", CacheKey: key, CachedFrom: hit.RunID, Outputs: hit.Outputs, Metrics: hit.Metrics, Log: hit.Log}
			a.progress(n, "= %s cached (upstream outputs unchanged)", n.step.Name)
			return
		}
	}
	n.res = a.runStep(ctx, n, key)
	if !cacheable {
		n.res.CacheKey = key
	}
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
		Dirty: run.Dirty, Experiment: run.Experiment, Created: now,
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

func (a *applier) progress(_ *node, format string, args ...any) {
	fmt.Fprintf(a.stream, format+"\n", args...)
}

// prefix is what each line of a step's output starts with on the terminal.
func (n *node) prefix() string {
	if n.pr.prefix {
		return "[" + n.pr.pipeline.Name + "." + n.step.Name + "] "
	}
	return "[" + n.step.Name + "] "
}

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
		if err := put(files, state.RunPath(run.ID), run); err != nil {
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
		if !run.Experiment && !a.staleBaseline[run.Pipeline] {
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
	commit, err := a.env.State.Commit(ctx, a.plan.StateCommit, state.Change{Files: files, Guard: append(guard, keep...), Message: msg})
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
		commit2, err2 := a.env.State.Commit(ctx, a.plan.StateCommit, state.Change{Files: files, Guard: keep, Message: message()})
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
	fmt.Fprintf(&b, "zen apply: %s from %s", strings.Join(summary, ", "), short(src))
	if p.Source.Dirty {
		b.WriteString(" (dirty)")
	}
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "Source-Commit: %s\n", src)
	if p.Source.Dirty {
		fmt.Fprintf(&b, "Source-Dirty: %s\n", p.Source.DirtyDigest)
	}
	fmt.Fprintf(&b, "Stack: %s\n", p.Stack)
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

// LookupSecret resolves a secret from the environment variable
// ZEN_SECRET_<NAME> (upper case, other characters as _) when it is set and
// not empty, else from the file $ZEN_SECRETS_DIR/<name>. The error never
// holds the value.
func LookupSecret(name string) (string, error) {
	env := schema.SecretEnv(name)
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	if dir := os.Getenv("ZEN_SECRETS_DIR"); dir != "" {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			return strings.TrimRight(string(b), "\r\n"), nil
		}
		if !os.IsNotExist(err) {
			return "", fmt.Errorf("secret %s: %v", name, err)
		}
	}
	return "", fmt.Errorf("secret %s is not set: export %s or write it to $ZEN_SECRETS_DIR/%s", name, env, name)
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

// removeAll removes a tree, making read-only folders writable first.
func removeAll(dir string) {
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}
