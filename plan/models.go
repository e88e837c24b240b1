package plan

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/schema/gate"
	"github.com/zen-dev/zen/state"
)

// ModelRecorded is what plan reads of a model's recorded versions and
// stages.
type ModelRecorded interface {
	ModelVersion(model, version string) (*state.ModelVersion, bool, error)
	Stages(model string) (*state.Stages, bool, error)
}

// ModelChange is a model version to produce, or a stage to move.
type ModelChange struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	// Stage is "" for a new version.
	Stage  string `json:"stage,omitempty"`
	Action Action `json:"action"`
	// From is, for a new version, the output that produces it
	// (pipeline.step.output); for a stage, the version it holds now.
	From string `json:"from,omitempty"`
	// Gate is the stage's gate, with each term's result once known.
	Gate        string   `json:"gate,omitempty"`
	GateResults []string `json:"gate_results,omitempty"`
	// GatePending: the version is produced by this apply, so its gate is
	// evaluated after the run.
	GatePending bool `json:"gate_pending,omitempty"`
	// Refused says why the change will not be made.
	Refused string `json:"refused,omitempty"`
	// Unsigned, when not "", says why the version will not be signed, or
	// the stage move not verified: the stack's signer opts out.
	Unsigned string `json:"unsigned,omitempty"`
	// Drift, for a repair, says what the store has instead: the digest
	// its tag points at, or "" when the tag is gone.
	Drift string `json:"drift,omitempty"`
	// Digest, for a repair, is the recorded version's digest.
	Digest string `json:"digest,omitempty"`
	// Rollback, for a stage moving back to a version it held before, is
	// that earlier tenure, with the gate result recorded then. The gate is
	// not evaluated again: the version passed it when it was promoted,
	// and a champion gate, or a gate the promotion loosened and its revert
	// tightens, must not keep a stage from going back.
	Rollback *state.Tenure `json:"rollback,omitempty"`
}

// Delete is the action of a stage that is no longer declared.
const Delete Action = "delete"

// Repair is the action of a stage whose tag in the store no longer points
// at the version the state ref records: moved or removed outside zen.
// Apply tags it back.
const Repair Action = "repair"

// IsVersion reports whether the change produces a version.
func (c *ModelChange) IsVersion() bool { return c.Stage == "" }

// planModels lists the versions to produce and the stages to move.
func planModels(cfg *schema.Config, p *Plan, rec Recorded) ([]*ModelChange, error) {
	mr, ok := rec.(ModelRecorded)
	if !ok {
		return nil, nil
	}
	var out []*ModelChange
	for _, name := range slices.Sorted(maps.Keys(cfg.Models)) {
		m := cfg.Models[name]
		recorded := map[string]*state.ModelVersion{}
		var fresh []*ModelChange
		for _, v := range m.VersionNames() {
			mv, ok, err := mr.ModelVersion(name, v)
			if err != nil {
				return nil, err
			}
			if ok {
				if string(mv.Declared) != string(m.Versions[v]) {
					return nil, fmt.Errorf("model %s version %s is recorded (%s, run %s): a recorded version is immutable; declare a new version instead of changing it", name, v, short(strings.TrimPrefix(mv.Digest, "sha256:")), mv.RunID)
				}
				recorded[v] = mv
				continue
			}
			if m.Output == "" {
				return nil, fmt.Errorf("model %s version %s: no step output produces it: bind one with outputs: NAME: {type: \"model\", model: %q}", name, v, name)
			}
			c := &ModelChange{Model: name, Version: v, Action: Create, From: m.Pipeline + "." + m.Step + "." + m.Output}
			c.Refused = versionRefusal(p, cfg, m)
			fresh = append(fresh, c)
		}
		if len(fresh) > 1 {
			var vs []string
			for _, c := range fresh {
				vs = append(vs, c.Version)
			}
			return nil, fmt.Errorf("model %s: versions %s are all new: declare one new version per apply", name, strings.Join(vs, ", "))
		}
		out = append(out, fresh...)
		newVersion := ""
		if len(fresh) == 1 && fresh[0].Refused == "" {
			newVersion = fresh[0].Version
		}
		stages, _, err := mr.Stages(name)
		if err != nil {
			return nil, err
		}
		current := map[string]*state.Stage{}
		if stages != nil {
			current = stages.Stages
		}
		stageMetrics := func(s string) gate.Metrics {
			if st := current[s]; st != nil {
				if mv, ok := recorded[st.ModelVersion]; ok {
					return mv.Metrics
				}
				if mv, ok, _ := mr.ModelVersion(name, st.ModelVersion); ok {
					return mv.Metrics
				}
			}
			return nil
		}
		for _, stage := range m.StageNames() {
			v := m.Stages[stage]
			was := ""
			if st := current[stage]; st != nil {
				was = st.ModelVersion
			}
			if was == v {
				continue
			}
			c := &ModelChange{Model: name, Version: v, Stage: stage, Action: Run, From: was}
			if was == "" {
				c.Action = Create
			}
			g := m.Gates[stage]
			if g != nil {
				c.Gate = g.Source
			}
			mv, ok := recorded[v]
			switch {
			case ok && stages.Held(stage, v, mv.Digest) != nil:
				// Back to a version the stage held: a rollback, which
				// apply makes without the gate.
				c.Rollback = stages.Held(stage, v, mv.Digest)
			case ok:
				if g != nil {
					results, pass, err := g.Eval(mv.Metrics, stageMetrics)
					if err != nil {
						return nil, fmt.Errorf("model %s stage %s: %w", name, stage, err)
					}
					c.GateResults = render(results)
					if !pass {
						c.Refused = "gate failed"
					}
				}
			case v == newVersion && g != nil:
				// Made from outputs this apply reuses (a preview's, an
				// experiment's): their metrics are known now.
				cm, known := cachedMetrics(p, m.Pipeline)
				if !known {
					c.GatePending = true
					break
				}
				results, pass, err := g.Eval(cm, stageMetrics)
				if err != nil {
					return nil, fmt.Errorf("model %s stage %s: %w", name, stage, err)
				}
				c.GateResults = render(results)
				if !pass {
					c.Refused = "gate failed"
				}
			case v == newVersion:
			default:
				c.Refused = fmt.Sprintf("version %s is not produced", v)
			}
			out = append(out, c)
		}
		for _, stage := range slices.Sorted(maps.Keys(current)) {
			if _, ok := m.Stages[stage]; !ok {
				out = append(out, &ModelChange{Model: name, Version: current[stage].ModelVersion, Stage: stage, Action: Delete})
			}
		}
	}
	return out, nil
}

// cachedMetrics are the metrics a version made by pipeline in p is
// recorded with, as apply gathers them (step.metric, every step's), when
// none of its steps runs; known is false when one does.
func cachedMetrics(p *Plan, pipeline string) (m gate.Metrics, known bool) {
	for _, pl := range p.Pipelines {
		if pl.Name != pipeline || pl.ToRun() > 0 {
			continue
		}
		m = gate.Metrics{}
		for _, s := range pl.Steps {
			for k, v := range s.Metrics {
				m[s.Name+"."+k] = v
			}
		}
		return m, true
	}
	return nil, false
}

// versionRefusal says why this apply cannot produce a model version, or "".
//
// A clean commit's apply makes the version from the output its keys give,
// whether a step runs now or its output is reused, even from an
// experiment or a dirty run: the cache key covers the code, parameters,
// inputs and program, so an output with the commit's key is what the
// commit would make. Only an apply that is itself an experiment or dirty
// is refused, since its keys are not its commit's.
func versionRefusal(p *Plan, cfg *schema.Config, m *schema.Model) string {
	var pp *Pipeline
	for _, pl := range p.Pipelines {
		if pl.Name == m.Pipeline {
			pp = pl
		}
	}
	switch {
	case SourceRefuses(p):
		if pp == nil {
			return SourceRefusal(p, nil)
		}
		var rerun []string
		for _, name := range VersionSteps(cfg.Pipelines[m.Pipeline], m.Step) {
			for _, s := range pp.Steps {
				if s.Name == name && s.Runs() {
					rerun = append(rerun, name)
				}
			}
		}
		return SourceRefusal(p, rerun)
	case p.Source.Commit == "":
		return "a model version is produced only from a commit: commit first"
	case pp == nil:
		return fmt.Sprintf("pipeline %s, which produces it, is not part of this plan", m.Pipeline)
	}
	return ""
}

// SourceRefuses reports whether p, an experiment (--set) or a plan of a
// work tree with uncommitted changes, makes no model version.
func SourceRefuses(p *Plan) bool {
	return len(p.Overrides) > 0 || p.Source.Commit != "" && p.Source.Dirty
}

// SourceRefusal is why an apply of p, which SourceRefuses, makes no model
// version, and what will: a commit of what it tried, then an apply of that
// commit, which gives the same keys and so reuses every output this apply
// stores. rerun lists the steps the version's output depends on that have
// no output with these keys (yet): the ones that apply runs.
func SourceRefusal(p *Plan, rerun []string) string {
	var what, commit string
	switch {
	case len(p.Overrides) > 0 && p.Source.Dirty:
		what, commit = "an experiment (--set) from a work tree with uncommitted changes", "commit the changes and the values it sets"
	case len(p.Overrides) > 0:
		what, commit = "an experiment (--set)", "commit the values it sets"
	default:
		what, commit = "a work tree with uncommitted changes", "commit them"
	}
	then := "which makes it from these outputs and re-runs no step (the commit gives the same keys)"
	if len(rerun) > 0 {
		then = "which re-runs only the steps whose keys have no outputs yet: " + joinNames(rerun)
	}
	return fmt.Sprintf("%s makes no model version: %s, then zen apply, %s", what, commit, then)
}

// VersionSteps lists the steps whose outputs a model version made by the
// output of step depends on: step and every step upstream of it, in the
// order the pipeline runs them.
func VersionSteps(pl *schema.Pipeline, step string) []string {
	if pl == nil {
		return nil
	}
	need := map[string]bool{}
	queue := []string{step}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		s := pl.Steps[name]
		if need[name] || s == nil {
			continue
		}
		need[name] = true
		queue = append(queue, s.Upstream()...)
	}
	var out []string
	for _, name := range pl.Order {
		if need[name] {
			out = append(out, name)
		}
	}
	return out
}

func render(rs []gate.Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

// planDrift compares the stage tags in the store with the recorded stages
// that the plan leaves where they are, and adds a repair for each tag
// that moved or went away outside zen.
func planDrift(ctx context.Context, cfg *schema.Config, p *Plan, rec Recorded, tags func(ctx context.Context, model, tag string) (string, bool, error)) error {
	mr, ok := rec.(ModelRecorded)
	if !ok || tags == nil {
		return nil
	}
	moving := map[string]bool{}
	for _, c := range p.Models {
		if !c.IsVersion() {
			moving[c.Model+"/"+c.Stage] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Models)) {
		st, _, err := mr.Stages(name)
		if err != nil || st == nil {
			if err != nil {
				return err
			}
			continue
		}
		for _, stage := range slices.Sorted(maps.Keys(st.Stages)) {
			rs := st.Stages[stage]
			if moving[name+"/"+stage] || otherStack(mr, rec, name, rs.ModelVersion, p.Stack) {
				continue
			}
			got, found, err := tags(ctx, name, stage)
			if err != nil {
				return fmt.Errorf("model %s stage %s: %w", name, stage, err)
			}
			if found && got == rs.Digest {
				continue
			}
			p.Models = append(p.Models, &ModelChange{Model: name, Version: rs.ModelVersion, Stage: stage, Action: Repair, From: rs.ModelVersion, Drift: got, Digest: rs.Digest})
		}
	}
	return nil
}

// otherStack reports whether a version was produced on another stack than
// stack: its tags live in that stack's store, not in the one planned for.
func otherStack(mr ModelRecorded, rec Recorded, model, version, stack string) bool {
	runs, ok := rec.(interface {
		Run(id string) (*state.Run, bool, error)
	})
	if !ok {
		return false
	}
	mv, found, err := mr.ModelVersion(model, version)
	if err != nil || !found {
		return false
	}
	run, found, err := runs.Run(mv.RunID)
	return err == nil && found && run.Stack != stack
}
