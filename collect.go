package zen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zen-dev/zen/apply"
	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// A detached apply leaves its runs submitted on the state ref; Collect
// (zen runs watch) and the next apply collect them (see apply.Resume).

// pendingNote is plan's warning about a submission not collected yet.
func pendingNote(sub *state.Submission) string {
	return fmt.Sprintf("run %s (%d jobs on stack %s, submitted %s) is not collected yet: zen runs watch %s records it, as does the next zen apply",
		strings.Join(sub.Runs, ", "), sub.Jobs, sub.Stack, sub.Submitted.Local().Format("2006-01-02 15:04"), sub.Runs[0])
}

// Collect waits for the jobs of a detached apply and records its runs on
// the local state ref, with the stack, store and CUE they were submitted
// with; progress goes to log. The caller holds the apply lock.
// Interrupted (ctx), it returns an error that wraps apply.ErrStopped and
// leaves the jobs running.
func (p *Project) Collect(ctx context.Context, sub *state.Submission, log io.Writer) (*apply.Result, error) {
	if log == nil {
		log = io.Discard
	}
	recs, err := p.Records()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("squeue"); err != nil {
		return nil, fmt.Errorf("run %s: Slurm's squeue is not on PATH here: collect it where Slurm is (zen runs watch %s)", sub.Runs[0], sub.Runs[0])
	}
	store, err := OpenStoreRef(sub.Store)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", state.SubmissionPath(sub.ID), err)
	}
	work, err := os.MkdirTemp("", "zen-collect-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	tree := filepath.Join(work, "source")
	if err := store.Pull(ctx, sub.Source, tree); err != nil {
		return nil, fmt.Errorf("run %s: its source tree %s: %w", sub.Runs[0], sub.Source, err)
	}
	var sp struct {
		Overrides []plan.Override `json:"overrides"`
	}
	if err := json.Unmarshal(sub.Plan, &sp); err != nil {
		return nil, fmt.Errorf("%s: its plan: %w", state.SubmissionPath(sub.ID), err)
	}
	sets, err := apply.Sets(sp.Overrides)
	if err != nil {
		return nil, err
	}
	overrides, err := schema.ParseOverrides(sets)
	if err != nil {
		return nil, err
	}
	cfg, err := schema.Load(tree, overrides...)
	if err != nil {
		return nil, fmt.Errorf("run %s: the CUE it was submitted with: %w", sub.Runs[0], err)
	}
	st := Stacks(cfg)[sub.Stack]
	if st == nil {
		return nil, fmt.Errorf("run %s: stack %s is not in the CUE it was submitted with", sub.Runs[0], sub.Stack)
	}
	signer, keyID, verifier, err := p.Signer(st)
	if err != nil {
		return nil, err
	}
	env := &apply.Env{
		Signer:   signer,
		KeyID:    keyID,
		Verifier: verifier,
		Config:   cfg,
		Stack:    st,
		Store:    store,
		State:    p.state,
		Stream:   log,
		Secret:   p.secret,
		StoreRef: sub.Store,
	}
	fmt.Fprintf(log, "collecting run %s from Slurm\n", strings.Join(sub.Runs, ", "))
	return apply.Resume(ctx, env, recs, sub)
}

// Collected is a submission collected, or tried: Result is nil when
// nothing was recorded, Err what went wrong (a *apply.RunError for a run
// that failed).
type Collected struct {
	Result *apply.Result
	Err    error
}

// CollectPending collects every submission on the state ref, oldest
// first. A submission that cannot be collected here stays submitted, with
// a warning on log; an interrupted wait (ctx) stops, leaving the jobs
// running, with an error that wraps apply.ErrStopped. The caller holds
// the apply lock.
func (p *Project) CollectPending(ctx context.Context, log io.Writer) ([]Collected, error) {
	if log == nil {
		log = io.Discard
	}
	var done []Collected
	seen := map[string]bool{}
	for {
		recs, err := p.Records()
		if err != nil {
			return done, err
		}
		subs, err := recs.Submissions()
		if err != nil {
			return done, err
		}
		i := slices.IndexFunc(subs, func(s *state.Submission) bool { return !seen[s.ID] })
		if i < 0 {
			return done, nil
		}
		sub := subs[i]
		seen[sub.ID] = true
		res, err := p.Collect(ctx, sub, log)
		var re *apply.RunError
		var refused *apply.RefusedError
		switch {
		case errors.Is(err, apply.ErrStopped):
			return done, fmt.Errorf("run %s: %w: zen runs watch %s records it later", sub.Runs[0], err, sub.Runs[0])
		case err != nil && !errors.As(err, &re) && !errors.As(err, &refused):
			fmt.Fprintf(log, "zen: %v; run %s stays submitted\n", err, sub.Runs[0])
		}
		done = append(done, Collected{Result: res, Err: err})
	}
}
