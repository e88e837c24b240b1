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
			c.Refused = versionRefusal(p, m, rec)
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
			case v == newVersion:
				c.GatePending = g != nil
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

// versionRefusal says why this apply cannot produce a model version, or "".
func versionRefusal(p *Plan, m *schema.Model, rec Recorded) string {
	switch {
	case len(p.Overrides) > 0:
		return "an experiment (--set) cannot produce a model version"
	case p.Source.Commit == "":
		return "a model version is produced only from a commit: commit first"
	case p.Source.Dirty:
		return "the work tree has uncommitted changes: a model version is produced only from a clean commit"
	}
	for _, pl := range p.Pipelines {
		if pl.Name != m.Pipeline {
			continue
		}
		for _, s := range pl.Steps {
			if s.Name != m.Step || s.Action != Cached {
				continue
			}
			if c, ok, _ := rec.Cache(s.Key); ok && (c.Dirty || c.Experiment) {
				return fmt.Sprintf("the output was produced by run %s, a dirty or experiment run: apply with --no-cache to produce it from this commit", c.RunID)
			}
		}
		return ""
	}
	return fmt.Sprintf("pipeline %s, which produces it, is not part of this plan", m.Pipeline)
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
