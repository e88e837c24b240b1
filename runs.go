package zen

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/state"
)

// Refresh brings the state ref up to its remote's before reading it, as a
// plan does, so that a fresh clone reads what was applied without
// fetching refs/zen/* by hand. Without a remote it does nothing. An error
// (offline, say) leaves the local state as it was, which a reader may go
// on with.
func (p *Project) Refresh(ctx context.Context) error {
	remote := p.StateRemote()
	if remote == "" {
		return nil
	}
	_, _, err := p.Pull(ctx, remote)
	return err
}

// RunsQuery picks recorded runs.
type RunsQuery struct {
	// Pipeline keeps only the runs of this pipeline; "" keeps all.
	Pipeline string
	// Limit is the most runs to return; 0 is all.
	Limit int
}

// Runs lists the recorded runs q picks, newest first.
func (p *Project) Runs(q RunsQuery) ([]*state.Run, error) {
	recs, err := p.Records()
	if err != nil {
		return nil, err
	}
	var runs []*state.Run
	if q.Pipeline != "" {
		// The index finds the pipeline's runs; only theirs are read.
		for r, err := range recs.RunsOf(q.Pipeline, "") {
			if err != nil {
				return nil, err
			}
			if runs = append(runs, r); len(runs) == q.Limit {
				break
			}
		}
		return runs, nil
	}
	ids, err := recs.RunIDs()
	if err != nil {
		return nil, err
	}
	for i := len(ids) - 1; i >= 0 && (q.Limit <= 0 || len(runs) < q.Limit); i-- {
		r, _, err := recs.Run(ids[i])
		if err != nil {
			return nil, err
		}
		if q.Pipeline == "" || r.Pipeline == q.Pipeline {
			runs = append(runs, r)
		}
	}
	return runs, nil
}

// RunEntry is a recorded run as a listing shows it: its record, or Err
// when the record cannot be read (a *state.CorruptError names its path).
type RunEntry struct {
	ID  string
	Run *state.Run
	Err error
}

// RunPage lists recorded runs newest first, a page of them: at most
// limit (0: all) after the first offset; total counts every recorded run.
// Each record is read on its own, so that one that cannot be read is an
// entry with its error and the others are still listed; only the page's
// records are read.
func (p *Project) RunPage(offset, limit int) (page []RunEntry, total int, err error) {
	recs, err := p.Records()
	if err != nil {
		return nil, 0, err
	}
	ids, err := recs.RunIDs()
	if err != nil {
		return nil, 0, err
	}
	for i := len(ids) - 1 - offset; i >= 0 && (limit <= 0 || len(page) < limit); i-- {
		r, ok, err := recs.Run(ids[i])
		if err == nil && !ok {
			// Listed but not where zen keeps a run of that id.
			err = fmt.Errorf("run %s: no record at %s on %s", ids[i], state.RunPath(ids[i]), recs.Ref)
		}
		page = append(page, RunEntry{ID: ids[i], Run: r, Err: err})
	}
	return page, len(ids), nil
}

// Run reads the recorded run id names: a run id, a unique prefix of one,
// or "latest".
func (p *Project) Run(id string) (*state.Run, error) {
	recs, err := p.Records()
	if err != nil {
		return nil, err
	}
	return findRun(recs, id)
}

// findRun resolves a run id, a unique prefix of one, or "latest" in recs.
// A whole id is found on the state ref or, failing that, in a preview
// (recs.Previews); a prefix or "latest", on the state ref.
func findRun(recs state.Records, id string) (*state.Run, error) {
	if id != "latest" && id != "" {
		if r, ok, err := recs.Run(id); ok || err != nil {
			return r, err
		}
	}
	ids, err := recs.RunIDs()
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no runs recorded on %s yet: zen apply records one", recs.Ref)
	}
	var match []string
	if id == "latest" {
		match = ids[len(ids)-1:]
	} else {
		for _, x := range ids {
			if x == id {
				match = []string{x}
				break
			}
			if strings.HasPrefix(x, id) {
				match = append(match, x)
			}
		}
	}
	switch {
	case len(match) == 0:
		return nil, fmt.Errorf("no run %q on %s (see zen runs list)", id, recs.Ref)
	case len(match) > 1:
		return nil, fmt.Errorf("run %q is ambiguous: %s", id, strings.Join(match, ", "))
	}
	r, _, err := recs.Run(match[0])
	return r, err
}

// Submitted lists the submissions on the state ref (detached applies not
// collected yet) that hold a run whose id starts with run; all of them
// for "".
func (p *Project) Submitted(run string) ([]*state.Submission, error) {
	recs, err := p.Records()
	if err != nil {
		return nil, err
	}
	subs, err := recs.Submissions()
	if err != nil {
		return nil, err
	}
	var out []*state.Submission
	for _, sub := range subs {
		if run == "" || slices.ContainsFunc(sub.Runs, func(id string) bool { return strings.HasPrefix(id, run) }) {
			out = append(out, sub)
		}
	}
	return out, nil
}

// RunStep reads a recorded run (as Run names it) and one of its steps.
func (p *Project) RunStep(runID, step string) (*state.Run, *state.StepResult, error) {
	r, err := p.Run(runID)
	if err != nil {
		return nil, nil, err
	}
	s, ok := r.Steps[step]
	if !ok {
		return nil, nil, fmt.Errorf("run %s of %s has no step %q (steps: %s)", r.ID, r.Pipeline, step, strings.Join(slices.Sorted(maps.Keys(r.Steps)), ", "))
	}
	return r, s, nil
}

// StepOutput reads a recorded run, and the artifact one of its steps
// recorded for an output.
func (p *Project) StepOutput(runID, step, output string) (*state.Run, state.Artifact, error) {
	r, s, err := p.RunStep(runID, step)
	if err != nil {
		return nil, state.Artifact{}, err
	}
	a, ok := s.Outputs[output]
	if !ok {
		return nil, state.Artifact{}, fmt.Errorf("run %s: step %s has no output %q (outputs: %s)", r.ID, step, output, strings.Join(slices.Sorted(maps.Keys(s.Outputs)), ", "))
	}
	return r, a, nil
}

// StepLog reads what a step of a recorded run wrote to stdout and stderr
// from the artifact store (see PullArtifact). For a cached step it is the
// log of the run that produced its outputs.
func (p *Project) StepLog(ctx context.Context, runID, step, stack string) ([]byte, error) {
	r, s, err := p.RunStep(runID, step)
	if err != nil {
		return nil, err
	}
	if s.Log == nil {
		return nil, fmt.Errorf("run %s: step %s has no log (%s)", r.ID, step, s.Status)
	}
	dir, err := os.MkdirTemp("", "zen-logs-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "log")
	if err := p.PullArtifact(ctx, r, stack, s.Log.Digest, path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// PullArtifact fetches an artifact of run r to dest from the artifact
// store of stack, else of the run's stack while the CUE declares it, else
// of the stack SelectStack picks.
func (p *Project) PullArtifact(ctx context.Context, r *state.Run, stack, digest, dest string) error {
	store, err := p.runStore(r, stack)
	if err != nil {
		return err
	}
	defer store.Close()
	return store.Pull(ctx, digest, dest)
}

// StoredArtifacts says, for each of digests, whether the artifact store
// PullArtifact reads run r's artifacts from (stack as it takes it) holds
// the artifact and all its blobs; store names that store.
func (p *Project) StoredArtifacts(ctx context.Context, r *state.Run, stack string, digests []string) (store string, has map[string]bool, err error) {
	s, err := p.runStore(r, stack)
	if err != nil {
		return "", nil, err
	}
	defer s.Close()
	has = map[string]bool{}
	for _, d := range digests {
		ok, err := s.Has(ctx, d)
		if err != nil {
			return s.String(), nil, fmt.Errorf("%s: %s: %w", s, d, err)
		}
		has[d] = ok
	}
	return s.String(), has, nil
}

// runStore opens the artifact store of stack, else of run r's stack while
// the CUE declares it, else of the stack SelectStack picks.
func (p *Project) runStore(r *state.Run, stack string) (registry.Store, error) {
	cfg, err := p.Config()
	if err != nil {
		return nil, err
	}
	name := stack
	if name == "" {
		if _, ok := Stacks(cfg)[r.Stack]; ok {
			name = r.Stack
		}
	}
	st, err := p.selectStack(cfg, name)
	if err != nil {
		return nil, err
	}
	return p.OpenStore(st)
}
