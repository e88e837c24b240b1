package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// A step that runs on another machine (a Slurm node) gets everything from
// the artifact store, so that no shared filesystem is assumed: the source
// tree, pushed once per apply; its spec; the outputs of the steps before
// it, through their results. It writes back its outputs, its log and its
// result, which the apply that submitted it collects.

// StepSpec tells the step runner on a node which step to run.
type StepSpec struct {
	Version  int    `json:"version"`
	RunID    string `json:"run_id"`
	Pipeline string `json:"pipeline"`
	Step     string `json:"step"`
	// Source is the digest of the source tree artifact; SourceCommit the
	// commit it was made from.
	Source       string `json:"source"`
	SourceCommit string `json:"source_commit,omitempty"`
	// Inputs gives the digest of each input known at submission: outputs
	// of cached steps, model versions. Inputs from steps that run in the
	// same apply are read from their results.
	Inputs map[string]string `json:"inputs,omitempty"`
	// Env holds the step's environment values (never secrets).
	Env []string `json:"env,omitempty"`
	// Sets are the experiment's --set overrides, PATH=VALUE.
	Sets []string `json:"sets,omitempty"`
	// Image is the image the plan pinned for a step with image:
	// name@sha256:…, never the tag, so that the node runs what was
	// planned even if the tag moved since.
	Image string `json:"image,omitempty"`
}

// specVersion is the version of StepSpec and of results this zen writes:
// 2 since a spec carries the step's pinned image, which a node reading
// version 1 would not run.
const specVersion = 2

// resultTag is the tag, in the store's artifacts repository, of a step's
// result in a run; specTag that of its spec.
func resultTag(runID, pipeline, step string) string {
	return tagSafe("zen-result-" + runID + "-" + pipeline + "-" + step)
}

func specTag(runID, pipeline, step string) string {
	return tagSafe("zen-spec-" + runID + "-" + pipeline + "-" + step)
}

// tagSafe maps a name onto OCI tag characters ([A-Za-z0-9_.-], at most 128).
func tagSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			return r
		}
		return '_'
	}, s)
	if len(s) > 128 {
		// Long names keep a digest of the whole: two never share a tag.
		sum := sha256.Sum256([]byte(s))
		s = s[:111] + "-" + hex.EncodeToString(sum[:8])
	}
	return s
}

// putJSON stores v as a file artifact and points tag at it. Another
// process sees the tag once the store is closed (a layout's index.json).
func putJSON(ctx context.Context, store registry.Store, tag, typ string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "zen-json-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	f := filepath.Join(dir, typ+".json")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		return err
	}
	d, err := store.Push(ctx, f, typ)
	if err != nil {
		return err
	}
	repo := store.ArtifactRepository()
	raw, err := repo.Manifest(ctx, d.Digest)
	if err != nil {
		return err
	}
	return repo.PutManifest(ctx, tag, raw)
}

// getJSON reads the artifact tag points at into v. Its error wraps
// registry.ErrNotFound when there is no such tag.
func getJSON(ctx context.Context, store registry.Store, tag string, v any) error {
	repo := store.ArtifactRepository()
	raw, err := repo.Manifest(ctx, tag)
	if err != nil {
		return err
	}
	var m struct {
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil || len(m.Layers) != 1 {
		return fmt.Errorf("%s: not a zen artifact", tag)
	}
	data, err := repo.Blob(ctx, m.Layers[0].Digest)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// remoteResult is what a step runner reports: the step's result, and
// where it ran.
type remoteResult struct {
	Version int               `json:"version"`
	Node    string            `json:"node,omitempty"`
	Result  *state.StepResult `json:"result"`
	// Started and Finished bound the runner's own work on the node, for
	// its overhead beyond the step.
	Started  time.Time `json:"runner_started"`
	Finished time.Time `json:"runner_finished"`
}

// RunRemoteStep runs the step a spec names, as the step runner on a node
// does: it pulls the source tree, reads the repository's CUE from it,
// links the inputs (pulling them by digest), runs the step with the same
// contract and retries as on the local stack, pushes its outputs and log,
// and stores its result under the run's result tag. The returned error is
// for what kept the result from being stored; a step that failed is a
// stored result.
func RunRemoteStep(ctx context.Context, store registry.Store, specTagName string, stream io.Writer) (*state.StepResult, error) {
	start := time.Now().UTC()
	var spec StepSpec
	if err := getJSON(ctx, store, specTagName, &spec); err != nil {
		return nil, fmt.Errorf("step spec %s: %w", specTagName, err)
	}
	if spec.Version != specVersion {
		return nil, fmt.Errorf("step spec %s: version %d, this zen reads %d: install the same zen on the nodes", specTagName, spec.Version, specVersion)
	}
	work, err := os.MkdirTemp("", "zen-step-")
	if err != nil {
		return nil, err
	}
	defer removeAll(work)
	node, _ := os.Hostname()
	if n := os.Getenv("SLURMD_NODENAME"); n != "" {
		node = n
	}
	res, err := runRemote(ctx, store, &spec, work, stream)
	if err != nil {
		// The step never started: report why, as its result.
		end := time.Now().UTC()
		res = &state.StepResult{Status: state.StatusFailed, Reason: err.Error(), Started: &start, Finished: &end}
	}
	out := &remoteResult{Version: specVersion, Node: node, Result: res, Started: start, Finished: time.Now().UTC()}
	err = putJSON(ctx, store, resultTag(spec.RunID, spec.Pipeline, spec.Step), "step-result", out)
	if err == nil {
		err = store.Close()
	}
	if err != nil {
		if res.Status != state.StatusSucceeded && res.Reason != "" {
			// What went wrong first is what the user needs to read.
			return res, fmt.Errorf("step %s.%s %s: %s; its result could not be stored either: %w", spec.Pipeline, spec.Step, res.Status, res.Reason, err)
		}
		return res, fmt.Errorf("store the result of %s.%s: %w", spec.Pipeline, spec.Step, err)
	}
	return res, nil
}

func runRemote(ctx context.Context, store registry.Store, spec *StepSpec, work string, stream io.Writer) (*state.StepResult, error) {
	src := filepath.Join(work, "source")
	if err := store.Pull(ctx, spec.Source, src); err != nil {
		return nil, fmt.Errorf("source tree: %w", err)
	}
	overrides, err := schema.ParseOverrides(spec.Sets)
	if err != nil {
		return nil, err
	}
	cfg, err := schema.Load(src, overrides...)
	if err != nil {
		return nil, fmt.Errorf("source tree: %w", err)
	}
	pl := cfg.Pipelines[spec.Pipeline]
	if pl == nil || pl.Steps[spec.Step] == nil {
		return nil, fmt.Errorf("source tree: no step %s.%s", spec.Pipeline, spec.Step)
	}
	step := pl.Steps[spec.Step]
	a := &applier{env: &Env{Config: cfg, Store: store, Stream: stream}, stream: &lockedWriter{w: stream}, work: filepath.Join(work, "run"), pulled: map[string]*pull{}}
	pr := &pipelineRun{pipeline: pl, run: &state.Run{ID: spec.RunID, SourceCommit: spec.SourceCommit}, nodes: map[string]*node{}}
	fp := &state.Fingerprint{Inputs: map[string]string{}}
	for _, in := range step.Inputs {
		if d, ok := spec.Inputs[in.Name]; ok {
			fp.Inputs[in.Name] = d
			if in.Kind == schema.InputStep {
				up := pr.nodes[in.Step]
				if up == nil {
					up = &node{res: &state.StepResult{Outputs: map[string]state.Artifact{}}}
					pr.nodes[in.Step] = up
				}
				up.res.Outputs[in.Output] = state.Artifact{Digest: d}
			}
			continue
		}
		if in.Kind != schema.InputStep {
			continue
		}
		var up remoteResult
		if err := getJSON(ctx, store, resultTag(spec.RunID, spec.Pipeline, in.Step), &up); err != nil {
			return nil, fmt.Errorf("input %s: the result of step %s: %w", in.Name, in.Step, err)
		}
		if up.Result == nil || up.Result.Outputs[in.Output].Digest == "" {
			return nil, fmt.Errorf("input %s: step %s has no output %s", in.Name, in.Step, in.Output)
		}
		pr.nodes[in.Step] = &node{res: up.Result}
	}
	// The step runner runs the plan's pinned image, as on the local stack
	// (runStep refuses a step with image: and no pinned reference).
	fp.Image = spec.Image
	n := &node{pr: pr, step: step, planned: &plan.Step{Name: step.Name, Action: plan.Run, Fingerprint: fp}, env: spec.Env}
	if err := os.MkdirAll(a.work, 0o755); err != nil {
		return nil, err
	}
	return a.runStep(ctx, n, ""), nil
}

// storeSpecs readies steps that zen step-run runs on another machine: it
// stores the source tree they run from, once for the whole apply, and
// each step's spec, and verifies the {model, stage} inputs here, since
// the nodes hold no key. Another process sees the specs once it returns.
func (a *applier) storeSpecs(ctx context.Context, tasks []*Task) (map[*node]*StepSpec, error) {
	specs := map[*node]*StepSpec{}
	src, err := os.MkdirTemp("", "zen-source-")
	if err != nil {
		return nil, err
	}
	defer removeAll(src)
	tree := src + "/tree"
	if err := a.env.SourceTree(tree); err != nil {
		return nil, fmt.Errorf("source tree: %w", err)
	}
	sd, err := a.env.Store.Push(ctx, tree, "source")
	if err != nil {
		return nil, fmt.Errorf("push the source tree: %w", err)
	}
	sets, err := Sets(a.plan.Overrides)
	if err != nil {
		return nil, err
	}
	a.source = sd.Digest
	// A {model, stage} or {data} input is verified here, as a local apply
	// does before the step reads it: the nodes hold no key, and check only
	// its content (a data input's digest is in the source tree's CUE).
	verified := map[string]bool{}
	for _, t := range tasks {
		n := t.n
		for _, in := range n.step.Inputs {
			d := n.planned.Fingerprint.Inputs[in.Name]
			if verified[d] {
				continue
			}
			if in.Kind == schema.InputData {
				if err := a.verifyData(ctx, in); err != nil {
					return nil, fmt.Errorf("step %s.%s: input %s (data %s): %w", n.pr.pipeline.Name, n.step.Name, in.Name, in.Source(), err)
				}
				verified[d] = true
				continue
			}
			if in.Kind != schema.InputModel {
				continue
			}
			ms, ok := a.env.Store.(registry.ModelStore)
			if !ok {
				return nil, fmt.Errorf("step %s.%s: input %s: artifact store %s holds no models", n.pr.pipeline.Name, n.step.Name, in.Name, a.env.Store)
			}
			if err := a.verifyStageInput(ctx, ms, in.Model, in.Stage, d); err != nil {
				return nil, fmt.Errorf("step %s.%s: input %s: %w", n.pr.pipeline.Name, n.step.Name, in.Name, err)
			}
			verified[d] = true
		}
	}
	// The specs, stored a few at once; every one is tried, and the error names
	// each that failed.
	for _, t := range tasks {
		n := t.n
		spec := &StepSpec{Version: specVersion, RunID: t.Run.ID, Pipeline: t.Pipeline.Name, Step: t.Step.Name, Source: sd.Digest, SourceCommit: t.Run.SourceCommit, Inputs: map[string]string{}, Env: t.Env, Sets: sets, Image: n.planned.Fingerprint.Image}
		for _, in := range n.step.Inputs {
			switch in.Kind {
			case schema.InputStep:
				if up := n.pr.nodes[in.Step]; !up.planned.Runs() {
					spec.Inputs[in.Name] = up.res.Outputs[in.Output].Digest
				}
			case schema.InputModel:
				spec.Inputs[in.Name] = n.planned.Fingerprint.Inputs[in.Name]
			}
		}
		specs[n] = spec
	}
	errs := make([]error, len(tasks))
	var g errgroup.Group
	g.SetLimit(submitConcurrency)
	for i, t := range tasks {
		g.Go(func() error {
			spec := specs[t.n]
			if err := putJSON(ctx, a.env.Store, specTag(spec.RunID, spec.Pipeline, spec.Step), "step-spec", spec); err != nil {
				errs[i] = fmt.Errorf("step %s.%s: store its spec: %w", spec.Pipeline, spec.Step, err)
			}
			return nil
		})
	}
	g.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Once for all the specs: the nodes read them from the store.
	if err := a.env.Store.Close(); err != nil {
		return nil, fmt.Errorf("store the step specs: %w", err)
	}
	return specs, nil
}

// readResult reads the result zen step-run stored for n; its error wraps
// registry.ErrNotFound when there is none.
func (a *applier) readResult(ctx context.Context, n *node) (*remoteResult, error) {
	var rr remoteResult
	if err := getJSON(ctx, a.env.Store, resultTag(n.pr.run.ID, n.pr.pipeline.Name, n.step.Name), &rr); err != nil {
		return nil, err
	}
	if rr.Result == nil {
		return nil, fmt.Errorf("%s: no result", resultTag(n.pr.run.ID, n.pr.pipeline.Name, n.step.Name))
	}
	return &rr, nil
}

// Sets gives a plan's overrides back as --set arguments, PATH=VALUE, for
// schema.ParseOverride.
func Sets(overrides []plan.Override) ([]string, error) {
	var sets []string
	for _, o := range overrides {
		v, err := json.Marshal(o.Value)
		if err != nil {
			return nil, err
		}
		sets = append(sets, o.Path+"="+string(v))
	}
	return sets, nil
}
