package zen

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/zen-dev/zen/state"
)

// ModelRef names a model version: MODEL (its newest recorded version),
// MODEL:VERSION or MODEL@STAGE (the version the stage holds).
type ModelRef struct{ Model, Version, Stage string }

// ParseModelRef reads MODEL, MODEL:VERSION or MODEL@STAGE.
func ParseModelRef(s string) ModelRef {
	if m, st, ok := strings.Cut(s, "@"); ok {
		return ModelRef{Model: m, Stage: st}
	}
	if m, v, ok := strings.Cut(s, ":"); ok {
		return ModelRef{Model: m, Version: v}
	}
	return ModelRef{Model: s}
}

func (r ModelRef) String() string {
	switch {
	case r.Stage != "":
		return r.Model + "@" + r.Stage
	case r.Version != "":
		return r.Model + ":" + r.Version
	}
	return r.Model
}

// ModelVersion reads the recorded version ref names.
func (p *Project) ModelVersion(ref ModelRef) (*state.ModelVersion, error) {
	recs, err := p.Records()
	if err != nil {
		return nil, err
	}
	return resolveVersion(recs, ref)
}

// resolveVersion finds the recorded version a reference names; a bare
// model names its newest recorded version.
func resolveVersion(recs state.Records, ref ModelRef) (*state.ModelVersion, error) {
	v := ref.Version
	if ref.Stage != "" {
		st, _, err := recs.Stages(ref.Model)
		if err != nil {
			return nil, err
		}
		if st == nil || st.Stages[ref.Stage] == nil {
			return nil, fmt.Errorf("model %s has no version in stage %s", ref.Model, ref.Stage)
		}
		v = st.Stages[ref.Stage].ModelVersion
	}
	if v == "" {
		vs, err := recs.ModelVersions(ref.Model)
		if err != nil {
			return nil, err
		}
		if len(vs) == 0 {
			return nil, fmt.Errorf("model %s has no recorded version", ref.Model)
		}
		var newest *state.ModelVersion
		for _, name := range vs {
			mv, _, err := recs.ModelVersion(ref.Model, name)
			if err != nil {
				return nil, err
			}
			if newest == nil || mv.Created.After(newest.Created) {
				newest = mv
			}
		}
		return newest, nil
	}
	mv, ok, err := recs.ModelVersion(ref.Model, v)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("model %s has no recorded version %s", ref.Model, v)
	}
	return mv, nil
}

// ModelListing is a recorded model version and the stages that hold it.
type ModelListing struct {
	*state.ModelVersion
	Stages []string `json:"stages"` // sorted; empty, not nil, for none
}

// Models lists the recorded versions of the models the CUE declares,
// models by name, each model's versions in the record's order.
func (p *Project) Models() ([]ModelListing, error) {
	cfg, err := p.Config()
	if err != nil {
		return nil, err
	}
	recs, err := p.Records()
	if err != nil {
		return nil, err
	}
	var rows []ModelListing
	for _, name := range slices.Sorted(maps.Keys(cfg.Models)) {
		st, _, err := recs.Stages(name)
		if err != nil {
			return nil, err
		}
		vs, err := recs.ModelVersions(name)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			mv, _, err := recs.ModelVersion(name, v)
			if err != nil {
				return nil, err
			}
			rows = append(rows, ModelListing{ModelVersion: mv, Stages: stagesHolding(st, v)})
		}
	}
	return rows, nil
}

// VersionStages lists, sorted, the stages that hold the recorded version
// mv; none when the model's stages cannot be read.
func (p *Project) VersionStages(mv *state.ModelVersion) []string {
	recs, err := p.Records()
	if err != nil {
		return []string{}
	}
	st, _, _ := recs.Stages(mv.Model)
	return stagesHolding(st, mv.ModelVersion)
}

// stagesHolding lists, sorted, the stages of st that hold version.
func stagesHolding(st *state.Stages, version string) []string {
	out := []string{}
	if st == nil {
		return out
	}
	for _, s := range slices.Sorted(maps.Keys(st.Stages)) {
		if st.Stages[s].ModelVersion == version {
			out = append(out, s)
		}
	}
	return out
}

// RecordedRun reads the run of that id, nil when the state ref has none.
func (p *Project) RecordedRun(id string) (*state.Run, error) {
	recs, err := p.Records()
	if err != nil {
		return nil, err
	}
	r, _, err := recs.Run(id)
	return r, err
}

// RunSource is what the run that made a version's output ran from: the
// version record's commit and dirty digest, else (a record made before
// zen kept them) the run's own record's; both "" when neither says.
func RunSource(mv *state.ModelVersion, run *state.Run) (commit, dirty string) {
	commit, dirty = mv.RunCommit, mv.RunDirty
	if commit == "" && dirty == "" && run != nil {
		commit, dirty = run.SourceCommit, run.DirtyDigest
	}
	return commit, dirty
}
