package zen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/zen-dev/zen/apply"
	"github.com/zen-dev/zen/internal/wait"
	"github.com/zen-dev/zen/plan/render"
	"github.com/zen-dev/zen/progress"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/state"
)

// ApplyOptions say how to apply a plan.
type ApplyOptions struct {
	// Jobs is how many steps run at once; 0 is the number of CPUs.
	Jobs int
	// Detach, on a slurm stack, returns once the jobs are submitted,
	// recording the runs as submitted: Collect records them later.
	Detach bool
	// Log receives the steps' output, prefixed with their names, and
	// progress. Nil discards it.
	Log io.Writer
	// Progress, when not nil, receives the progress of the steps instead
	// of Log (see apply.Env.Progress).
	Progress progress.Sink
}

// Apply carries out a plan made with PlanOptions.ForApply: it runs the
// steps that must run on the plan's stack, stores their outputs and logs
// in its artifact store, records the runs on the state ref, and pushes
// the state ref to the remote it was pulled from (pl.Pushed says whether
// it did). It releases the plan's apply lock.
//
// A plan with nothing to do runs nothing: it pushes records an earlier
// apply could not, and returns an *apply.RefusedError when a declared
// model change cannot be made. Otherwise the result is returned with the
// error of a run that failed (*apply.RunError), a refused model change
// or a state ref another apply moved (state.ErrStateMoved); on any other
// error the result is nil.
func (p *Project) Apply(ctx context.Context, pl *Planned, opts ApplyOptions) (*apply.Result, error) {
	defer pl.Release()
	if pl.lock == nil {
		return nil, errors.New("apply: the plan was not made for an apply (PlanOptions.ForApply)")
	}
	if opts.Detach {
		if err := pl.Detachable(); err != nil {
			return nil, err
		}
	}
	pn := pl.Plan
	if pl.preview != nil {
		return p.applyPreview(ctx, pl, opts)
	}
	if !pn.StateChanges() {
		if pl.Remote != "" && pl.ahead {
			// Records an earlier apply could not push.
			if err := p.Push(ctx, pl.Remote, pl.remoteHead); err != nil {
				return nil, err
			}
		}
		var err error
		if refused := Refused(pl); len(refused) > 0 {
			// Nothing to record, but a declared change cannot be made:
			// that is worth a failing CI job.
			err = &apply.RefusedError{Reasons: refused}
		}
		if len(pn.Deployments) == 0 {
			return nil, err
		}
		res := &apply.Result{}
		var derr error
		res.Deployments, derr = p.applyDeployments(ctx, pl, pl.verifier, opts.Log)
		return res, errors.Join(err, derr)
	}
	// The signing key is loaded only when there is something to
	// do (decrypting a cosign key takes a third of a second), and
	// before anything runs, so that a missing key or a wrong
	// password fails with nothing done. The local stack's key pair
	// is made here, on first use.
	// An apply that only moves baselines signs and checks nothing.
	var signer *signature.Signer
	var keyID string
	var verifier *signature.Verifier
	if sum := pn.Summary(); sum.Run > 0 || sum.Versions > 0 || sum.Promotions > 0 || sum.Repairs > 0 {
		var err error
		if signer, keyID, verifier, err = p.Signer(pl.Stack); err != nil {
			return nil, err
		}
	}
	env := p.applyEnv(pl, opts, signer, keyID, verifier)
	res, err := apply.Apply(ctx, env, pn)
	if pl.checker != nil {
		_ = pl.checker.Save()
	}
	var re *apply.RunError
	var refused *apply.RefusedError
	if err != nil && !errors.As(err, &re) && !errors.As(err, &refused) && !errors.Is(err, state.ErrStateMoved) {
		return nil, err
	}
	if pl.Remote != "" && res != nil && (res.StateCommit != "" || pl.ahead) {
		if perr := p.Push(ctx, pl.Remote, pl.remoteHead); perr != nil {
			err = errors.Join(err, perr)
		} else {
			pl.Pushed = true
		}
		// A push after another apply's writes the records again on
		// top of theirs: report the commit that holds them now.
		if head, herr := p.state.Head(); herr == nil && res.StateCommit != "" {
			res.StateCommit = head.Commit()
		}
	}
	if res != nil && len(pn.Deployments) > 0 {
		// After the records, whatever the runs gave: a deployment serves
		// what the state ref says, and one that fails is retried by the
		// next apply.
		if verifier == nil {
			verifier = pl.verifier
		}
		var derr error
		res.Deployments, derr = p.applyDeployments(ctx, pl, verifier, opts.Log)
		err = errors.Join(err, derr)
	}
	return res, err
}

// applyPreview runs what a preview's plan runs, records the runs on the
// preview's ref and pushes that ref; the state ref is left as it is.
func (p *Project) applyPreview(ctx context.Context, pl *Planned, opts ApplyOptions) (*apply.Result, error) {
	if !pl.Plan.Changes() {
		if pl.Remote != "" && pl.previewAhead {
			// Runs an earlier preview could not push.
			return nil, push(ctx, pl.preview, pl.Remote, pl.previewRemoteHead, pushRetry, wait.Sleep)
		}
		return nil, nil
	}
	signer, keyID, verifier, err := p.Signer(pl.Stack)
	if err != nil {
		return nil, err
	}
	env := p.applyEnv(pl, opts, signer, keyID, verifier)
	env.State = pl.preview
	res, err := apply.Apply(ctx, env, pl.Plan)
	if pl.checker != nil {
		_ = pl.checker.Save()
	}
	var re *apply.RunError
	if err != nil && !errors.As(err, &re) {
		return nil, err
	}
	if pl.Remote != "" && res != nil && (res.StateCommit != "" || pl.previewAhead) {
		if perr := push(ctx, pl.preview, pl.Remote, pl.previewRemoteHead, pushRetry, wait.Sleep); perr != nil {
			err = errors.Join(err, perr)
		} else {
			pl.Pushed = true
		}
	}
	return res, err
}

// Detachable says why the plan's stack cannot apply detached (Detach),
// nil when it can: only a slurm stack's jobs run on without zen.
func (pl *Planned) Detachable() error {
	if pl.preview != nil {
		return errors.New("--detach: a preview runs attached, so that the plan made after it shows its results")
	}
	if pl.Stack.Orchestrator.Flavor != "slurm" {
		return fmt.Errorf("--detach: stack %s runs its steps in this process (orchestrator %s); only a slurm stack's jobs run on without zen", pl.Stack.Name, pl.Stack.Orchestrator.Flavor)
	}
	return nil
}

// Refused lists, as plan's text shows them, the model changes the plan
// declares but cannot make.
func Refused(pl *Planned) []string {
	var refused []string
	for _, c := range pl.Plan.Models {
		if c.Refused != "" {
			refused = append(refused, render.ModelLine(c, render.Style{}))
		}
	}
	return refused
}

// applyEnv is what apply.Apply works with for pl: the plan's stack,
// store and records, signing with signer.
func (p *Project) applyEnv(pl *Planned, opts ApplyOptions, signer *signature.Signer, keyID string, verifier *signature.Verifier) *apply.Env {
	if pl.checker == nil && verifier != nil {
		pl.checker = p.Checker(pl.Store, verifier, keyID, pl.Records)
	}
	env := &apply.Env{
		Signer:   signer,
		KeyID:    keyID,
		Verifier: verifier,
		Config:   pl.Config,
		Stack:    pl.Stack,
		Store:    pl.Store,
		Sources:  p.ws,
		Records:  pl.Records,
		State:    p.state,
		Jobs:     opts.Jobs,
		Stream:   opts.Log,
		Progress: opts.Progress,
		Secret:   p.secret,
	}
	if pl.checker != nil {
		env.Verify = pl.checker.Verify
	}
	if pl.Stack.Orchestrator.Flavor == "slurm" {
		env.StoreRef = StoreRef(pl.Store)
		if st := pl.Stack.ArtifactStore; st.Flavor == "oci-layout" {
			// The nodes are given the folder by its full path.
			path := st.String("path")
			if !filepath.IsAbs(path) {
				path = filepath.Join(p.ws.Root, path)
			}
			env.StoreRef = "oci-layout:" + path
		}
		env.SourceTree = p.ws.Snapshot
		env.Detach = opts.Detach
	}
	return env
}
