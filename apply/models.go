package apply

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/plan/render"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/provenance"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/registry/verify"
	"github.com/zen-dev/zen/schema/gate"
	"github.com/zen-dev/zen/state"
)

// RefusedError lists model changes apply did not make, each with its
// reason. What could be made was made and recorded.
type RefusedError struct{ Reasons []string }

func (e *RefusedError) Error() string { return "refused: " + strings.Join(e.Reasons, "; ") }

// producer is the step result a new version comes from.
type producer struct {
	// runID is the run that made the output; runCommit and runDirty
	// the commit it ran from and its uncommitted changes.
	runID     string
	runCommit string
	runDirty  string
	result    *state.StepResult
	fp        *state.Fingerprint
	metrics   map[string]float64
	params    map[string]any
}

// findProducer locates the result of the step that produces a version,
// whether it ran in this apply or was reused.
func (a *applier) findProducer(c *plan.ModelChange) (*producer, error) {
	parts := strings.SplitN(c.From, ".", 3)
	pipeline, step := parts[0], parts[1]
	for _, pr := range a.runs {
		if pr.pipeline.Name != pipeline {
			continue
		}
		p := &producer{runID: pr.run.ID, metrics: map[string]float64{}, params: pr.run.Parameters}
		for name, n := range pr.nodes {
			for k, v := range n.res.Metrics {
				p.metrics[name+"."+k] = v
			}
			if n.res.Status != state.StatusSucceeded && n.res.Status != state.StatusCached {
				return nil, fmt.Errorf("run %s of %s did not succeed: step %s %s", pr.run.ID, pipeline, name, n.res.Status)
			}
		}
		n := pr.nodes[step]
		if n.res.Status != state.StatusSucceeded && n.res.Status != state.StatusCached {
			return nil, fmt.Errorf("step %s.%s %s", pipeline, step, n.res.Status)
		}
		p.result, p.fp = n.res, n.fp
		if n.res.CachedFrom != "" {
			p.runID = n.res.CachedFrom
		}
		return p, nil
	}
	for _, pl := range a.plan.Pipelines {
		if pl.Name != pipeline {
			continue
		}
		p := &producer{metrics: map[string]float64{}, params: a.env.Config.Pipelines[pipeline].Parameters}
		for _, s := range pl.Steps {
			for k, v := range s.Metrics {
				p.metrics[s.Name+"."+k] = v
			}
			if s.Name == step {
				p.runID, p.fp = s.CachedFrom, s.Fingerprint
				p.result = &state.StepResult{Status: state.StatusCached, Outputs: s.Outputs, Metrics: s.Metrics}
			}
		}
		if p.result != nil {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no result for %s", c.From)
}

// producingRun finds the commit the run that made a version's output ran
// from, and its uncommitted changes: a run of this apply, or one the
// state ref records (the output was reused).
func (a *applier) producingRun(p *producer) error {
	for _, pr := range a.runs {
		if pr.run.ID == p.runID {
			p.runCommit, p.runDirty = pr.run.SourceCommit, pr.run.DirtyDigest
			return nil
		}
	}
	if runs, ok := a.env.Records.(verify.Runs); ok {
		run, found, err := runs.Run(p.runID)
		if err != nil {
			return err
		}
		if found {
			p.runCommit, p.runDirty = run.SourceCommit, run.DirtyDigest
			return nil
		}
	}
	return fmt.Errorf("run %s, which made the output, is not recorded", p.runID)
}

// applyModels produces the new versions and moves the stages of the plan,
// adding their records to files. It returns the changes it refused.
func (a *applier) applyModels(ctx context.Context, files map[string][]byte) ([]string, error) {
	if len(a.plan.Models) == 0 {
		return nil, nil
	}
	ms, ok := a.env.Store.(registry.ModelStore)
	if !ok {
		return nil, fmt.Errorf("artifact store %s cannot hold model versions", a.env.Store)
	}
	var refused []string
	a.moved = map[string]bool{}
	produced := map[string]*state.ModelVersion{} // model/version
	now := time.Now().UTC()
	for _, c := range a.plan.Models {
		if !c.IsVersion() {
			continue
		}
		if c.Refused != "" {
			why := c.Refused
			if plan.SourceRefuses(a.plan) {
				// Said again with what ran: the commit's apply reuses it.
				why = plan.SourceRefusal(a.plan, a.rerun(c))
			}
			refused = append(refused, fmt.Sprintf("model %s %s: %s", c.Model, c.Version, why))
			continue
		}
		mv, err := a.produce(ctx, ms, c, now)
		if err != nil {
			refused = append(refused, fmt.Sprintf("model %s %s: %v", c.Model, c.Version, err))
			continue
		}
		produced[c.Model+"/"+c.Version] = mv
		if err := put(files, state.ModelVersionPath(c.Model, c.Version), mv); err != nil {
			return nil, err
		}
		a.progress(nil, "+ model %s %s %s", c.Model, c.Version, mv.Digest)
	}
	stages := map[string]*state.Stages{}
	for _, c := range a.plan.Models {
		if c.IsVersion() {
			continue
		}
		if c.Refused != "" {
			refused = append(refused, fmt.Sprintf("stage %s/%s → %s: %s", c.Model, c.Stage, c.Version, c.Refused))
			continue
		}
		st, ok := stages[c.Model]
		if !ok {
			rec, found, err := a.modelRecords().Stages(c.Model)
			if err != nil {
				return nil, err
			}
			if !found {
				rec = &state.Stages{Version: state.RecordVersion, Model: c.Model}
			}
			if rec.Stages == nil {
				rec.Stages = map[string]*state.Stage{}
			}
			st, stages[c.Model] = rec, rec
		}
		if c.Action == plan.Delete {
			st.Leave(c.Stage, now)
			delete(st.Stages, c.Stage)
			a.moved[c.Model+"/"+c.Stage] = true
			continue
		}
		if c.Action == plan.Repair {
			if err := a.repair(ctx, ms, c); err != nil {
				refused = append(refused, fmt.Sprintf("repair stage %s/%s → %s: %v", c.Model, c.Stage, c.Version, err))
				continue
			}
			a.repaired = append(a.repaired, fmt.Sprintf("repaired stage %s/%s → %s", c.Model, c.Stage, c.Version))
			a.progress(nil, "~ repaired stage %s/%s → %s (%s)", c.Model, c.Stage, c.Version, c.Digest)
			continue
		}
		if err := a.promote(ctx, ms, c, st, produced, now); err != nil {
			refused = append(refused, fmt.Sprintf("stage %s/%s → %s: %v", c.Model, c.Stage, c.Version, err))
			continue
		}
		a.moved[c.Model+"/"+c.Stage] = true
		a.progress(nil, "~ stage %s/%s → %s%s", c.Model, c.Stage, c.Version, moveNote(st.Stages[c.Stage]))
	}
	for _, name := range slices.Sorted(maps.Keys(stages)) {
		moved := false
		for k := range a.moved {
			moved = moved || strings.HasPrefix(k, name+"/")
		}
		if !moved {
			continue // every change to it was refused
		}
		if err := put(files, state.StagesPath(name), stages[name]); err != nil {
			return nil, err
		}
	}
	return refused, nil
}

// rerun lists, once the steps have their results, the steps a version's
// output depends on that an apply of a commit of this experiment or
// dirty tree would run: those with no output stored under their key
// (failed, skipped, cancelled; cache: false, or --no-cache, which store
// none). The others' outputs are reused, having the commit's keys.
func (a *applier) rerun(c *plan.ModelChange) []string {
	parts := strings.SplitN(c.From, ".", 3)
	pl := a.env.Config.Pipelines[parts[0]]
	steps := plan.VersionSteps(pl, parts[1])
	var out []string
	for _, pr := range a.runs {
		if pr.pipeline.Name != parts[0] {
			continue
		}
		for _, name := range steps {
			n := pr.nodes[name]
			stored := n != nil && n.res != nil && (n.res.Status == state.StatusCached ||
				n.res.Status == state.StatusSucceeded && n.step.Cache && !a.plan.NoCache)
			if !stored {
				out = append(out, name)
			}
		}
		return out
	}
	// Nothing of the pipeline ran: every step was cached.
	return nil
}

func (a *applier) modelRecords() plan.ModelRecorded {
	return a.env.Records.(plan.ModelRecorded)
}

// produce packages a version, pushes, tags, signs and attests it.
func (a *applier) produce(ctx context.Context, ms registry.ModelStore, c *plan.ModelChange, now time.Time) (*state.ModelVersion, error) {
	p, err := a.findProducer(c)
	if err == nil {
		err = a.producingRun(p)
	}
	if err != nil {
		return nil, fmt.Errorf("not produced: %w", err)
	}
	output := strings.SplitN(c.From, ".", 3)[2]
	art, ok := p.result.Outputs[output]
	if !ok {
		return nil, fmt.Errorf("not produced: no output %s", c.From)
	}
	tmp, err := os.MkdirTemp("", "zen-model-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	files := filepath.Join(tmp, output)
	if err := a.env.Store.Pull(ctx, art.Digest, files); err != nil {
		return nil, err
	}
	commit := a.plan.Source.Commit
	info := a.env.Config.Models[c.Model].VersionInfo(c.Version)
	meta := registry.ModelMeta{
		Name: c.Model, Version: c.Version, Revision: commit,
		Description: info.Description, Authors: info.Authors, Licenses: info.Licenses, Card: info.Card,
		Compress: a.env.Stack.ArtifactStore.String("compression") == "gzip",
	}
	desc, err := ms.PushModel(ctx, files, meta)
	if err != nil {
		return nil, err
	}
	if err := ms.Tag(ctx, c.Model, c.Version, desc.Digest); err != nil {
		return nil, err
	}
	m := a.env.Config.Models[c.Model]
	mv := &state.ModelVersion{
		Version: state.RecordVersion, Model: c.Model, ModelVersion: c.Version, Digest: desc.Digest,
		Repository: ms.ModelRepository(c.Model).Reference(), Stack: a.env.Stack.Name,
		Pipeline: m.Pipeline, Step: m.Step, Output: m.Output, OutputDigest: art.Digest,
		RunID: p.runID, SourceCommit: commit, RunCommit: p.runCommit, RunDirty: p.runDirty,
		Metrics: p.metrics, Declared: m.Versions[c.Version], Created: now,
	}
	if s := a.env.Signer; s != nil {
		repo := ms.ModelRepository(c.Model)
		if err := signature.Sign(ctx, repo, desc.Digest, s); err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		b := &provenance.Build{Entry: mv.Pipeline + "." + mv.Step + "." + mv.Output, Run: p.runID, Commit: mv.SourceCommit, RunCommit: mv.RunCommit, RunDirty: mv.RunDirty}
		fingerprinted(b, p.fp)
		b.Parameters = p.params
		pred, err := b.Predicate()
		if err != nil {
			return nil, err
		}
		if err := signature.Attest(ctx, repo, desc.Digest, provenance.Type, pred, s); err != nil {
			return nil, fmt.Errorf("attest: %w", err)
		}
		mv.SignedBy = a.env.KeyID
	}
	return mv, nil
}

// repair points a stage's tag back at the recorded version, which must
// still be in the store and, with a verifier, verify as a stage move does
// (signature, provenance, content): the record is right, the store
// drifted. A version whose manifest is gone cannot be restored from git,
// and is refused.
func (a *applier) repair(ctx context.Context, ms registry.ModelStore, c *plan.ModelChange) error {
	mv, ok, err := a.modelRecords().ModelVersion(c.Model, c.Version)
	if err != nil {
		return err
	}
	if !ok || mv.Digest != c.Digest {
		return fmt.Errorf("the state ref has no record of version %s at %s", c.Version, c.Digest)
	}
	if err := a.verifyVersion(ctx, ms, mv, "", true); err != nil {
		if verify.KindOf(err) == verify.Missing {
			return fmt.Errorf("the recorded version %s is gone from the store: it cannot be restored from git; produce a new version", c.Digest)
		}
		return fmt.Errorf("the recorded version does not verify, so it is not tagged again: %w", err)
	}
	if err := ms.Tag(ctx, c.Model, c.Stage, c.Digest); err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			return fmt.Errorf("the recorded version %s is gone from the store: it cannot be restored from git; produce a new version", c.Digest)
		}
		return err
	}
	return nil
}

// verifyStageInput checks, before a step reads it, the version a {model,
// stage} input resolved to when planned, as a stage move would (its
// content is checked as it is pulled).
func (a *applier) verifyStageInput(ctx context.Context, ms registry.ModelStore, model, stage, digest string) error {
	mv, err := a.recordedVersion(model, stage, digest)
	if err != nil {
		return err
	}
	if err := a.verifyVersion(ctx, ms, mv, "", false); err != nil {
		return fmt.Errorf("model %s %s in stage %s: %w", model, mv.ModelVersion, stage, err)
	}
	return nil
}

// recordedVersion finds the record of the version with digest that stage
// holds, or held: the record of a version is kept for good.
func (a *applier) recordedVersion(model, stage, digest string) (*state.ModelVersion, error) {
	mr := a.modelRecords()
	if st, ok, err := mr.Stages(model); err != nil {
		return nil, err
	} else if ok && st.Stages[stage] != nil && st.Stages[stage].Digest == digest {
		if mv, ok, err := mr.ModelVersion(model, st.Stages[stage].ModelVersion); err != nil || ok {
			return mv, err
		}
	}
	return nil, fmt.Errorf("model %s: no recorded version of stage %s is %s", model, stage, digest)
}

// verifyVersion checks a recorded version as zen verify does: that tag
// (if not "") points at it, that it is signed and attested by the key with
// provenance naming its record, and, with content, that its blobs still
// match their digests. Without a verifier (a stack that signs nothing)
// only the tag and content are checked.
func (a *applier) verifyVersion(ctx context.Context, ms registry.ModelStore, mv *state.ModelVersion, tag string, content bool) error {
	if a.env.Verifier == nil {
		if tag != "" {
			if got, err := ms.Resolve(ctx, mv.Model, tag); err != nil {
				return fmt.Errorf("version tag: %w", err)
			} else if got != mv.Digest {
				return fmt.Errorf("the store's %s:%s is %s, the record says %s: tampered, or the tag moved outside zen", mv.Model, tag, got, mv.Digest)
			}
		}
		if !content {
			return nil
		}
		return checkContent(ctx, ms, mv.Model, mv.Digest)
	}
	runs, _ := a.env.Records.(verify.Runs)
	want, err := verify.ModelBuild(runs, mv)
	if err != nil {
		return err
	}
	v := &verify.Verifier{Key: a.env.Verifier}
	return v.Model(ctx, ms, mv.Model, tag, mv.Digest, want, content)
}

// moveNote is what the progress line of a stage move adds: the rollback
// it was, or its gate's results.
func moveNote(s *state.Stage) string {
	switch {
	case s == nil:
		return ""
	case s.Rollback != nil:
		return ", " + render.RollbackNote(s.Rollback)
	case s.Gate != nil:
		return ", gate " + s.Gate.String()
	}
	return ""
}

// promote checks a stage move's gate and signature, then moves the tag
// and records the move with its gate result. A move back to a version the
// stage held before is a rollback: its gate is not evaluated again, and
// the record keeps the result the version had then.
func (a *applier) promote(ctx context.Context, ms registry.ModelStore, c *plan.ModelChange, st *state.Stages, produced map[string]*state.ModelVersion, now time.Time) error {
	mv := produced[c.Model+"/"+c.Version]
	if mv == nil {
		rec, ok, err := a.modelRecords().ModelVersion(c.Model, c.Version)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("version %s was not produced", c.Version)
		}
		mv = rec
	}
	// Rollback is decided from the record apply writes to, not from the
	// plan: the two read the same state commit, and the record is what
	// the next plan reads.
	held := st.Held(c.Stage, c.Version, mv.Digest)
	var passed *state.GateResult
	if held != nil {
		passed = held.Gate
	} else if g := a.env.Config.Models[c.Model].Gates[c.Stage]; g != nil {
		stageMetrics := func(s string) gate.Metrics {
			cur := st.Stages[s]
			if cur == nil {
				return nil
			}
			if v := produced[c.Model+"/"+cur.ModelVersion]; v != nil {
				return v.Metrics
			}
			if v, ok, _ := a.modelRecords().ModelVersion(c.Model, cur.ModelVersion); ok {
				return v.Metrics
			}
			return nil
		}
		results, pass, err := g.Eval(mv.Metrics, stageMetrics)
		if err != nil {
			return err
		}
		passed = &state.GateResult{Expression: g.Source, Passed: pass}
		for _, r := range results {
			passed.Results = append(passed.Results, r.String())
		}
		if !pass {
			var failed []string
			for _, r := range results {
				if !r.OK {
					failed = append(failed, r.String())
				}
			}
			return fmt.Errorf("gate failed: %s", strings.Join(failed, " && "))
		}
	}
	// The version's tag, signature, provenance and content must still be
	// what apply made: anything else was done outside zen, and is not
	// promoted. A version this apply pushed was hashed as it was pushed;
	// one made before is read whole, once, as zen verify does: an altered
	// blob is refused here rather than found by whatever pulls the stage.
	if err := a.verifyVersion(ctx, ms, mv, c.Version, produced[c.Model+"/"+c.Version] == nil); err != nil {
		return err
	}
	if err := ms.Tag(ctx, c.Model, c.Stage, mv.Digest); err != nil {
		return err
	}
	st.Leave(c.Stage, now)
	st.Stages[c.Stage] = &state.Stage{ModelVersion: c.Version, Digest: mv.Digest, SourceCommit: a.plan.Source.Commit, Updated: now, Gate: passed, Rollback: held}
	return nil
}

// checkContent pulls a model version into a temporary folder, which
// checks every blob against its digest, and removes it.
func checkContent(ctx context.Context, ms registry.ModelStore, model, digest string) error {
	tmp, err := os.MkdirTemp("", "zen-promote-")
	if err != nil {
		return err
	}
	defer removeAll(tmp)
	if err := ms.PullModel(ctx, digest, model, filepath.Join(tmp, "model")); err != nil {
		if errors.Is(err, registry.ErrDigestMismatch) {
			return fmt.Errorf("stored content was altered: %w", err)
		}
		return fmt.Errorf("content: %w", err)
	}
	return nil
}
