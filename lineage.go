package zen

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// Lineage is where a model version came from, all of it read from the
// state ref and the repository's history.
type Lineage struct {
	Model      string     `json:"model"`
	Version    string     `json:"version"`
	Digest     string     `json:"digest"`
	Repository string     `json:"repository"`
	SignedBy   string     `json:"signed_by,omitempty"`
	Output     string     `json:"output"` // pipeline.step.output
	Run        LineageRun `json:"run"`
	// Source is the commit that declares the version, whose apply made it.
	Source Commit `json:"source"`
	// Steps are the step that made the output, then every step upstream
	// of it, breadth first.
	Steps []LineageStep `json:"steps"`
}

// LineageRun is the run that made a version's output.
type LineageRun struct {
	ID       string    `json:"id"`
	Pipeline string    `json:"pipeline"`
	Status   string    `json:"status"`
	Stack    string    `json:"stack"`
	Started  time.Time `json:"started"`
	// Source is the commit the run ran from, which may be another than
	// the one that declares the version (Source of the lineage), with
	// its uncommitted changes and its experiment's overrides.
	Source      Commit         `json:"source"`
	DirtyDigest string         `json:"dirty_digest,omitempty"`
	Overrides   map[string]any `json:"overrides,omitempty"`
}

// Commit is a source commit, with what this clone's history says of it.
type Commit struct {
	Commit  string    `json:"commit"`
	Subject string    `json:"subject,omitempty"`
	Author  string    `json:"author,omitempty"`
	When    time.Time `json:"when,omitzero"`
	Missing bool      `json:"missing_from_clone,omitempty"`
}

// LineageStep is a step upstream of a version's output, as its run
// recorded it.
type LineageStep struct {
	Name       string                     `json:"name"`
	CacheKey   string                     `json:"cache_key,omitempty"`
	RunID      string                     `json:"run_id,omitempty"` // the run that produced its outputs, when reused
	Command    []string                   `json:"command,omitempty"`
	Parameters map[string]json.RawMessage `json:"parameters,omitempty"`
	Code       map[string]string          `json:"code,omitempty"`
	Inputs     []LineageInput             `json:"inputs,omitempty"`
	Outputs    map[string]state.Artifact  `json:"outputs,omitempty"`
}

// LineageInput is one input of a step.
type LineageInput struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Digest string `json:"digest"`
	Step   string `json:"step,omitempty"` // the upstream step, when the input is another step's output
	// Data: the input is data zen data push stored, in the artifact store
	// under Digest; Source is "data NAME@sha256:…".
	Data bool `json:"data,omitempty"`
}

// SameSource reports whether the run ran from the commit that declares
// the version, clean and with no overrides.
func (l *Lineage) SameSource() bool {
	return l.Run.Source.Commit == l.Source.Commit && l.Run.DirtyDigest == "" && len(l.Run.Overrides) == 0
}

// Lineage follows the recorded version ref names back to its run, its
// source commit and every step upstream of the output it came from.
func (p *Project) Lineage(ref ModelRef) (*Lineage, error) {
	recs, err := p.Records()
	if err != nil {
		return nil, err
	}
	mv, err := resolveVersion(recs, ref)
	if err != nil {
		return nil, err
	}
	return p.traceLineage(recs, mv)
}

// traceLineage follows a version back to its run, its source commit and
// every step upstream of the output it came from.
func (p *Project) traceLineage(recs state.Records, mv *state.ModelVersion) (*Lineage, error) {
	run, ok, err := recs.Run(mv.RunID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("model %s %s: run %s is not on %s", mv.Model, mv.ModelVersion, mv.RunID, recs.Ref)
	}
	runCommit, runDirty := RunSource(mv, run)
	l := &Lineage{
		Model: mv.Model, Version: mv.ModelVersion, Digest: mv.Digest, Repository: mv.Repository, SignedBy: mv.SignedBy,
		Output: mv.Pipeline + "." + mv.Step + "." + mv.Output,
		Run: LineageRun{ID: run.ID, Pipeline: run.Pipeline, Status: run.Status, Stack: run.Stack, Started: run.Started,
			Source: p.CommitInfo(runCommit), DirtyDigest: runDirty, Overrides: run.Overrides},
		Source: p.CommitInfo(mv.SourceCommit),
	}
	queue, seen := []string{mv.Step}, map[string]bool{}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		res, ok := run.Steps[name]
		if !ok {
			return nil, fmt.Errorf("run %s has no step %s", run.ID, name)
		}
		st := LineageStep{Name: name, CacheKey: res.CacheKey, RunID: res.CachedFrom, Outputs: res.Outputs}
		if fp := res.Fingerprint; fp != nil {
			st.Command, st.Parameters, st.Code = fp.Command, fp.Parameters, fp.Code
			for _, in := range slices.Sorted(maps.Keys(fp.Inputs)) {
				li := LineageInput{Name: in, Source: res.Sources[in], Digest: fp.Inputs[in]}
				// Data zen data push stored: fetchable by its digest.
				if _, d, err := schema.ParseDataRef(li.Source); err == nil && d == li.Digest {
					li.Source, li.Data = "data "+li.Source, true
				}
				if up, _, ok := sourceStep(run, li.Source); ok {
					li.Step = up
					queue = append(queue, up)
				}
				st.Inputs = append(st.Inputs, li)
			}
		}
		l.Steps = append(l.Steps, st)
	}
	return l, nil
}

// CommitInfo is a commit with its subject, author and time from this
// clone's history, or marked missing when the clone lacks it.
func (p *Project) CommitInfo(commit string) Commit {
	c := Commit{Commit: commit}
	if obj, err := p.ws.Repo.CommitObject(plumbing.NewHash(commit)); err == nil && commit != "" {
		c.Subject = subject(obj.Message)
		c.Author = obj.Author.Name + " <" + obj.Author.Email + ">"
		c.When = obj.Author.When
	} else {
		c.Missing = true
	}
	return c
}

// subject is a commit message's first line.
func subject(message string) string { return strings.SplitN(message, "\n", 2)[0] }
