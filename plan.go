package zen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/zen-dev/zen/internal/trust"
	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// PlanOptions say what to plan.
type PlanOptions struct {
	// Stack names the stack; "" selects it as SelectStack does.
	Stack string
	// Pipelines are the pipelines to plan; none is all of them.
	Pipelines []string
	// NoCache plans every step to run, reusing nothing.
	NoCache bool
	// Sets override parameters for one experiment:
	// PIPELINE.PARAM=VALUE, PIPELINE.PARAM.FIELD=VALUE or
	// PIPELINE.STEP.PARAM=VALUE.
	Sets []string
	// ForApply makes the plan for Apply: the clone's apply lock is taken
	// (waiting up to LockTimeout for another apply) and held until Apply
	// or Release, the state ref must come from the remote (not merely
	// tried), and what stopped applies had finished, and the runs
	// detached applies left on a cluster, are recorded first.
	ForApply    bool
	LockTimeout time.Duration
	// Preview plans a pull-request preview of the branch it names: the
	// steps that must run against the state ref's baselines and cache
	// (and the branch's earlier previews'), to be recorded by Apply on
	// refs/zen/preview/<branch> alone. No baseline, model version or
	// stage moves; the plan's model changes are what the apply after the
	// merge would make.
	Preview string
	// Log receives progress: the wait for the lock, the runs recovered
	// and collected. Nil discards it.
	Log io.Writer
}

// Planned is a computed plan with what it was computed against.
type Planned struct {
	Plan    *plan.Plan
	Config  *schema.Config
	Stack   *schema.Stack
	Store   registry.Store
	Records state.Records
	// Remote is the git remote the state ref was pulled from, "" for
	// none.
	Remote string
	// Collected are the detached runs collected before the plan
	// (ForApply only), oldest first.
	Collected []Collected
	// Pushed says that Apply pushed the state ref to Remote.
	Pushed bool

	// The remote's commit when pulled, and whether local commits are
	// not on it yet.
	remoteHead string
	ahead      bool

	// The stack's public key, its id, and what checks cached artifacts
	// against it (nil for a stack that does not sign).
	keyID    string
	verifier *signature.Verifier
	checker  *trust.Checker

	// The clone's apply lock (ForApply only).
	lock *state.ApplyLock

	// A preview's ref, its remote's commit when pulled, and whether it
	// has commits the remote lacks.
	preview           *state.Store
	previewRemoteHead string
	previewAhead      bool
}

// Release releases the clone's apply lock a plan for Apply holds, if it
// is held. Apply releases it too.
func (pl *Planned) Release() {
	if pl.lock != nil {
		pl.lock.Release()
		pl.lock = nil
	}
}

// config is the project's CUE with sets applied.
func (p *Project) config(sets []string) (*schema.Config, error) {
	overrides, err := schema.ParseOverrides(sets)
	if err != nil {
		return nil, err
	}
	if len(overrides) == 0 {
		return p.Config()
	}
	return schema.Load(p.ws.Root, overrides...)
}

// Plan loads the repository and computes the plan for opts.Pipelines,
// checking cached outputs' signatures with the stack's public key. It
// brings the state ref up to the remote's first (see StateRemote); a
// plan not for an apply that cannot says so in its warnings.
func (p *Project) Plan(ctx context.Context, opts PlanOptions) (_ *Planned, err error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	cfg, err := p.config(opts.Sets)
	if err != nil {
		return nil, err
	}
	st, err := p.selectStack(cfg, opts.Stack)
	if err != nil {
		return nil, err
	}
	store, err := p.OpenStore(st)
	if err != nil {
		return nil, err
	}
	pl := &Planned{Config: cfg, Stack: st, Store: store}
	if opts.ForApply {
		// From the pull to the push: released by Apply.
		if pl.lock, err = p.state.LockApply(ctx, "zen apply", opts.LockTimeout, lockWaiting(log, opts.LockTimeout)); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				pl.Release()
			}
		}()
	}
	var notes []string
	if remote := p.StateRemote(); remote != "" {
		sync, n, err := p.Pull(ctx, remote)
		switch {
		case err != nil && opts.ForApply:
			return nil, fmt.Errorf("%w (ZEN_REMOTE=none applies against the local state alone)", err)
		case err != nil:
			notes = append(notes, fmt.Sprintf("planned against the local state: %v", err))
		default:
			pl.Remote, pl.remoteHead, pl.ahead = remote, sync.RemoteHead, sync.Ahead > 0
			notes = n
		}
	}
	var previews []state.Records
	if opts.Preview != "" {
		var warn string
		if pl.preview, pl.previewRemoteHead, pl.previewAhead, warn, err = p.pullPreview(ctx, opts.Preview, pl.Remote, opts.ForApply, log); err != nil {
			return nil, err
		}
		if warn != "" {
			notes = append(notes, warn)
		}
		snap, err := pl.preview.Head()
		if err != nil {
			return nil, err
		}
		previews = []state.Records{{Snapshot: snap, Ref: pl.preview.Ref()}}
	} else {
		var warn string
		if previews, warn, err = p.previewRecords(ctx, pl.Remote); err != nil {
			return nil, err
		}
		if warn != "" {
			notes = append(notes, warn)
		}
	}
	if opts.ForApply && opts.Preview == "" {
		// What an apply stopped on the way (killed) had finished is
		// recorded first: those steps are cached for this plan.
		recovered, err := p.RecoverJournals(ctx, log)
		if err != nil {
			return nil, err
		}
		if recovered && pl.Remote != "" {
			pl.ahead = true
		}
		// Runs a detached apply left on the cluster are recorded first:
		// what they produced is then cached for this plan.
		if pl.Collected, err = p.CollectPending(ctx, log); err != nil {
			return nil, err
		}
		for _, c := range pl.Collected {
			if c.Result != nil && c.Result.StateCommit != "" && pl.Remote != "" {
				pl.ahead = true
			}
		}
	}
	snap, err := p.state.Head()
	if err != nil {
		return nil, err
	}
	recs := state.Records{Snapshot: snap, Ref: p.state.Ref()}
	if err := recs.CheckLayout(); err != nil {
		return nil, err
	}
	recs.Previews = previews

	head, err := p.ws.Head()
	if err != nil {
		return nil, err
	}
	changed, dirtyID, err := p.ws.Changes()
	if err != nil {
		return nil, err
	}
	var warning string
	pl.verifier, pl.keyID, warning, err = p.PublicKey(st)
	if err != nil {
		return nil, err
	}
	pl.checker = p.Checker(store, pl.verifier, pl.keyID, recs)
	po := plan.Options{
		Stack:       st.Name,
		Pipelines:   opts.Pipelines,
		NoCache:     opts.NoCache,
		Source:      plan.Source{Commit: head, Dirty: dirtyID != "", DirtyDigest: dirtyID, Changed: changed},
		StateCommit: snap.Commit(),
		Signing:     p.Signing(st),
	}
	if pl.preview != nil {
		po.Preview = &plan.Preview{Branch: opts.Preview, Ref: pl.preview.Ref(), StateCommit: previews[0].Snapshot.Commit()}
	}
	for _, set := range cfg.Sets {
		po.Overrides = append(po.Overrides, plan.Override{Path: set.Path, Value: set.Value})
	}
	if pl.checker != nil {
		po.Verify = pl.checker.Verify
	}
	if ms, ok := store.(registry.ModelStore); ok {
		po.Tags = func(ctx context.Context, model, tag string) (string, bool, error) {
			d, err := ms.Resolve(ctx, model, tag)
			if errors.Is(err, registry.ErrNotFound) {
				return "", false, nil
			}
			return d, err == nil, err
		}
	}
	check, err := p.imageCheck(st)
	if err != nil {
		return nil, err
	}
	if err := p.requirePinned(st, cfg, opts.Pipelines); err != nil {
		return nil, err
	}
	if err := p.requireServeImages(st, cfg); err != nil {
		return nil, err
	}
	po.Images = imageResolver(check)
	d, err := p.deployer(st, nil)
	if err != nil {
		return nil, err
	}
	if d != nil {
		po.Served, po.Deployer, po.DeployerSettings = servedBy(d), st.ModelDeployer.Flavor, st.ModelDeployer.Settings
		if po.Deployer == "" {
			po.Deployer = "local"
		}
	}
	computed, err := plan.Compute(ctx, cfg, recs, p.ws, store, po)
	if err != nil {
		return nil, err
	}
	// Runs still on a cluster, and what stopped applies left.
	subs, err := recs.Submissions()
	if err != nil {
		return nil, err
	}
	for _, sub := range subs {
		notes = append(notes, pendingNote(sub))
	}
	if !opts.ForApply && opts.Preview == "" {
		notes = append(notes, p.journalNotes(ctx)...)
	}
	computed.Warnings = append(computed.Warnings, notes...)
	if warning != "" {
		computed.Warnings = append(computed.Warnings, warning)
	}
	// Caches only: losing them costs a re-read.
	_ = p.ws.Hasher.Save()
	if pl.checker != nil {
		_ = pl.checker.Save()
	}
	pl.Plan, pl.Records = computed, recs
	return pl, nil
}

// lockWaiting says on log that the command waits for the clone's apply
// lock, and how to stop waiting.
func lockWaiting(log io.Writer, timeout time.Duration) func(holder string) {
	return func(holder string) {
		fmt.Fprintf(log, "zen: waiting up to %s for %s to finish (Ctrl-C stops waiting)\n", timeout, holder)
	}
}

// LockApply takes the clone's apply lock for what (a command's name),
// waiting up to timeout for another holder and saying so on log. The
// caller releases it.
func (p *Project) LockApply(ctx context.Context, what string, timeout time.Duration, log io.Writer) (*state.ApplyLock, error) {
	if log == nil {
		log = io.Discard
	}
	return p.state.LockApply(ctx, what, timeout, lockWaiting(log, timeout))
}

// imageResolver pins a step's image to its digest, asking the image's
// registry once per reference for a plan, and checks the pinned image
// with check where it is not nil. Every stack runs the pinned reference:
// the local stack here, a Slurm stack on its nodes (the step's spec
// carries it).
func imageResolver(check func(context.Context, string) error) func(context.Context, string) (string, error) {
	pinned := map[string]string{}
	return func(ctx context.Context, ref string) (string, error) {
		if d, ok := pinned[ref]; ok {
			return d, nil
		}
		d, err := registry.ResolveImage(ctx, ref)
		if err != nil {
			return "", err
		}
		if check != nil {
			if err := check(ctx, d); err != nil {
				return "", err
			}
		}
		pinned[ref] = d
		return d, nil
	}
}
