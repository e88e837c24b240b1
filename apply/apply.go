package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/progress"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/provenance"
	"github.com/zen-dev/zen/registry/signature"
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
	// Progress, when not nil, receives the steps' progress instead of
	// Stream: each step's state as it changes, with the line Stream
	// would have had (a progress.Terminal shows them live).
	Progress progress.Sink
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
	// Deployments says what the deployments changed to, a line each
	// (filled by zen's apply after the records, not by Apply).
	Deployments []string
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
	if !p.StateChanges() {
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
	a := &applier{env: env, plan: p, jobs: jobs, stream: &lockedWriter{w: env.Stream}, pulled: map[string]*pull{}}
	a.orch = newOrchestrator(a)
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
	if env.Detach && !a.orch.Traits().Detaches {
		return nil, fmt.Errorf("stack %s: --detach needs a stack whose orchestrator is slurm; a %s stack runs the steps in this process", env.Stack.Name, env.Stack.Orchestrator.Flavor)
	}
	if err := a.execute(ctx); err != nil {
		return nil, err
	}
	if a.detached() {
		return a.recordSubmission(context.WithoutCancel(ctx))
	}
	return a.finish(ctx)
}

// finish makes the model changes once the steps have their results, and
// records the runs.
func (a *applier) finish(ctx context.Context) (*Result, error) {
	files := map[string][]byte{}
	var refused []string
	if a.plan.Preview == nil {
		// A preview makes no model version and moves no stage: its plan
		// shows what the apply after the merge will.
		var err error
		if refused, err = a.applyModels(ctx, files); err != nil {
			return nil, err
		}
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
