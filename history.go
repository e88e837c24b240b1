package zen

import (
	"maps"
	"slices"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/zen-dev/zen/state"
)

// ModelEvent is one change to a model: a version recorded, or a stage
// moved.
type ModelEvent struct {
	When         time.Time `json:"when"`
	Kind         string    `json:"kind"` // version, stage
	Version      string    `json:"version,omitempty"`
	Digest       string    `json:"digest,omitempty"`
	Stage        string    `json:"stage,omitempty"`
	From         string    `json:"from,omitempty"` // a stage's previous version
	StateCommit  string    `json:"state_commit"`
	AppliedBy    string    `json:"applied_by"`
	SourceCommit string    `json:"source_commit,omitempty"`
	Source       string    `json:"source_subject,omitempty"` // e.g. "Merge pull request #12 from ..."
	// Gate is the gate a stage move was checked against, with its values
	// and verdict (for a rollback, the result of the tenure it returned
	// to); absent when the stage had none, or the record is older than
	// zen recording it.
	Gate *state.GateResult `json:"gate,omitempty"`
	// Rollback, for a stage moved back to a version it held before, is
	// that earlier tenure.
	Rollback *state.Tenure `json:"rollback,omitempty"`
}

// The kinds of ModelEvent.
const (
	EventVersion = "version"
	EventStage   = "stage"
)

// History walks the state ref's commits and lists, oldest first, each
// version of model recorded and each change of its stages: when, which
// state commit, who applied it, and the source commit it was applied
// from, with its subject from this clone's history.
func (p *Project) History(model string) ([]ModelEvent, error) {
	log, err := p.state.Log(0)
	if err != nil {
		return nil, err
	}
	var events []ModelEvent
	versions := map[string]bool{}
	stages := map[string]string{}
	for i := len(log) - 1; i >= 0; i-- {
		entry := log[i]
		sn, err := p.state.At(entry.Commit)
		if err != nil {
			return nil, err
		}
		recs := state.Records{Snapshot: sn, Ref: p.state.Ref()}
		vs, err := recs.ModelVersions(model)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			if versions[v] {
				continue
			}
			versions[v] = true
			mv, _, err := recs.ModelVersion(model, v)
			if err != nil {
				return nil, err
			}
			events = append(events, ModelEvent{When: entry.When, Kind: EventVersion, Version: v, Digest: mv.Digest, StateCommit: entry.Commit, AppliedBy: entry.Author, SourceCommit: mv.SourceCommit})
		}
		st, _, err := recs.Stages(model)
		if err != nil {
			return nil, err
		}
		now := map[string]string{}
		var src string
		if st != nil {
			for name, s := range st.Stages {
				now[name] = s.ModelVersion
				src = s.SourceCommit
			}
		}
		all := maps.Clone(now)
		maps.Copy(all, stages)
		for _, name := range slices.Sorted(maps.Keys(all)) {
			if now[name] != stages[name] {
				e := ModelEvent{When: entry.When, Kind: EventStage, Stage: name, Version: now[name], From: stages[name], StateCommit: entry.Commit, AppliedBy: entry.Author}
				if st != nil && st.Stages[name] != nil {
					s := st.Stages[name]
					e.SourceCommit, e.Digest, e.Gate, e.Rollback = s.SourceCommit, s.Digest, s.Gate, s.Rollback
				} else {
					e.SourceCommit = src
				}
				events = append(events, e)
			}
		}
		stages = now
	}
	for i := range events {
		if c, err := p.ws.Repo.CommitObject(plumbing.NewHash(events[i].SourceCommit)); err == nil {
			events[i].Source = subject(c.Message)
		}
	}
	return events, nil
}
