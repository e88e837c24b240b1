package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/zen-dev/zen/internal/trust"
	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/plan/render"
	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// planFlags are shared by plan and apply.
type planFlags struct {
	g       *globals
	stack   string
	noCache bool
	sets    []string
	// forApply: the state must be fetched from the remote, not merely
	// tried, and detached runs are collected first, their progress
	// written to stderr.
	forApply bool
	stderr   io.Writer
	// lockTimeout is how long apply waits for another apply in the clone.
	lockTimeout time.Duration
}

func (f *planFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.stack, "stack", "", "the `NAME` of the stack to use (default: $ZEN_STACK, then zen stack use, then the repository's default_stack)")
	cmd.Flags().BoolVar(&f.noCache, "no-cache", false, "run every step, reusing nothing")
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "override a parameter for one experiment: `PIPELINE.PARAM=VALUE`, a field of a struct parameter (PIPELINE.PARAM.FIELD=VALUE), or a step's own (PIPELINE.STEP.PARAM=VALUE); repeatable")
}

// planned is a computed plan with what it was computed against.
type planned struct {
	sess  *session
	stack *schema.Stack
	store registry.Store
	plan  *plan.Plan
	recs  state.Records

	// The git remote the state ref was pulled from ("" for none), its
	// commit then, and whether local commits are not on it yet.
	remote     string
	remoteHead string
	ahead      bool

	// The stack's public key, its id, and what checks cached artifacts
	// against it (nil for a stack that does not sign).
	keyID    string
	verifier *signature.Verifier
	checker  *trust.Checker

	// Detached runs collected before the plan, and the clone's apply
	// lock (apply only).
	collected []collected
	lock      *state.ApplyLock
}

// makePlan loads the repository and computes the plan for pipelines,
// checking cached outputs' signatures with the stack's public key.
func makePlan(ctx context.Context, f *planFlags, pipelines []string) (_ *planned, err error) {
	overrides, err := schema.ParseOverrides(f.sets)
	if err != nil {
		return nil, err
	}
	sess, err := open(f.g, true, overrides...)
	if err != nil {
		return nil, err
	}
	st, err := sess.selectStack(f.stack)
	if err != nil {
		return nil, err
	}
	store, err := sess.openStore(st)
	if err != nil {
		return nil, err
	}
	pl := &planned{sess: sess, stack: st, store: store}
	if f.forApply {
		// From the pull to the push: released by the caller.
		if pl.lock, err = sess.state.LockApply(ctx, "zen apply", f.lockTimeout, lockWaiting(f.stderr, f.lockTimeout)); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				pl.lock.Release()
			}
		}()
	}
	var notes []string
	if remote := sess.stateRemote(); remote != "" {
		sync, n, err := sess.pullState(ctx, remote)
		switch {
		case err != nil && f.forApply:
			return nil, fmt.Errorf("%w (ZEN_REMOTE=none applies against the local state alone)", err)
		case err != nil:
			notes = append(notes, fmt.Sprintf("planned against the local state: %v", err))
		default:
			pl.remote, pl.remoteHead, pl.ahead = remote, sync.RemoteHead, sync.Ahead > 0
			notes = n
		}
	}
	if f.forApply {
		// What an apply stopped on the way (killed) had finished is
		// recorded first: those steps are cached for this plan.
		recovered, err := recoverJournals(ctx, sess, f.stderr)
		if err != nil {
			return nil, err
		}
		if recovered && pl.remote != "" {
			pl.ahead = true
		}
		// Runs a detached apply left on the cluster are recorded first:
		// what they produced is then cached for this plan.
		if pl.collected, err = collectPending(ctx, f.stderr, sess); err != nil {
			return nil, err
		}
		for _, c := range pl.collected {
			if c.res != nil && c.res.StateCommit != "" && pl.remote != "" {
				pl.ahead = true
			}
		}
	}
	snap, err := sess.state.Head()
	if err != nil {
		return nil, err
	}
	recs := state.Records{Snapshot: snap, Ref: sess.state.Ref()}
	if err := recs.CheckLayout(); err != nil {
		return nil, err
	}

	head, err := sess.ws.Head()
	if err != nil {
		return nil, err
	}
	changed, dirtyID, err := sess.ws.Changes()
	if err != nil {
		return nil, err
	}
	var warning string
	pl.verifier, pl.keyID, warning, err = sess.publicKey(st)
	if err != nil {
		return nil, err
	}
	pl.checker = sess.Checker(store, pl.verifier, pl.keyID, recs)
	opts := plan.Options{
		Stack:       st.Name,
		Pipelines:   pipelines,
		NoCache:     f.noCache,
		Source:      plan.Source{Commit: head, Dirty: dirtyID != "", DirtyDigest: dirtyID, Changed: changed},
		StateCommit: snap.Commit(),
		Signing:     sess.Signing(st),
	}
	for _, set := range sess.cfg.Sets {
		opts.Overrides = append(opts.Overrides, plan.Override{Path: set.Path, Value: set.Value})
	}
	if pl.checker != nil {
		opts.Verify = pl.checker.Verify
	}
	if ms, ok := store.(registry.ModelStore); ok {
		opts.Tags = func(ctx context.Context, model, tag string) (string, bool, error) {
			d, err := ms.Resolve(ctx, model, tag)
			if errors.Is(err, registry.ErrNotFound) {
				return "", false, nil
			}
			return d, err == nil, err
		}
	}
	p, err := plan.Compute(ctx, sess.cfg, recs, sess.ws, store, opts)
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
	if !f.forApply {
		notes = append(notes, journalNotes(ctx, sess)...)
	}
	p.Warnings = append(p.Warnings, notes...)
	if warning != "" {
		p.Warnings = append(p.Warnings, warning)
	}
	// Caches only: losing them costs a re-read.
	_ = sess.ws.Hasher.Save()
	if pl.checker != nil {
		_ = pl.checker.Save()
	}
	pl.plan, pl.recs = p, recs
	return pl, nil
}

func newPlan(g *globals) *cobra.Command {
	var f planFlags
	var detailed bool
	var out string
	cmd := &cobra.Command{
		Use:   "plan [PIPELINE...]",
		Short: "Show which steps would run and why, and which are cached",
		Long: `Plan compares the pipelines the repository declares with what the state
ref recorded, and shows for every step what zen apply would do:

  + step   runs for the first time
  ~ step   runs, with the reason: code changed (which file), parameter
           changed (old → new), input changed (which input), upstream re-runs
  = step   cached: its recorded outputs are reused (with its cache key)

Reasons compare against the pipeline's baseline: the declaration the
last apply applied (experiments aside), whether it ran steps or reused
them all. A pipeline whose steps are all cached but whose baseline holds
other keys (after a git revert, say) says "baseline moves": apply then
records it, and runs nothing.

--set PIPELINE.PARAM=VALUE plans an experiment with one parameter changed;
PIPELINE.PARAM.FIELD=VALUE changes one field of a struct parameter (as a
nested params.yaml has them) and keeps the others. The value must be of
the declared value's kind (a parameter declared a string takes the text
as typed); a path to no parameter names the ones there are.

Plan never runs anything. It fetches the state ref from the git remote
first (see zen state) and brings the local one up to it; it records
nothing of its own.

--output json writes the plan as data (docs/plan-format.md); --output
markdown writes it as a pull-request comment. -o FILE also saves it for
zen apply FILE.

Exit status: 0 when the plan succeeds, 1 on error. With --detailed-exitcode:
0 nothing to do, 1 error, 2 there are changes (steps to run, versions to
make, stages or baselines to move).`,
		Example: `  zen plan
  zen plan training --stack shared
  zen plan --set training.n_estimators=200
  zen plan --set get-started.train.n_est=50   # a field of the struct parameter train
  zen plan --detailed-exitcode --output json > plan.json
  zen plan -o plan.zen     # then: zen apply plan.zen
  zen plan --output markdown > comment.md`,
		RunE: func(cmd *cobra.Command, args []string) error {
			f.g = g
			pl, err := makePlan(cmd.Context(), &f, args)
			if err != nil {
				return err
			}
			switch g.output {
			case "json":
				err = render.JSON(g.stdout, pl.plan)
			case "markdown":
				render.Markdown(g.stdout, pl.plan)
			default:
				render.Text(g.stdout, pl.plan, styleFor(g.stdout))
			}
			if err != nil {
				return err
			}
			if out != "" {
				if out == "text" || out == "json" || out == "markdown" {
					return fmt.Errorf("-o %s saves the plan to a file named %q: for the format, use --output %s", out, out, out)
				}
				req := plan.Request{Stack: pl.stack.Name, Pipelines: args, NoCache: f.noCache, Sets: f.sets}
				if err := saveFile(g.path(out), func(w io.Writer) error { return plan.WriteSaved(w, version, req, pl.plan) }); err != nil {
					return fmt.Errorf("save the plan: %w", err)
				}
				if g.output == "text" {
					fmt.Fprintf(g.stdout, "\nSaved the plan to %s: zen apply %s applies exactly it.\n", out, out)
				}
				// A plan file in the work tree, not ignored, makes the
				// tree dirty: the plan it holds is stale at once.
				if abs, err := filepath.Abs(g.path(out)); err == nil {
					if rel, err := filepath.Rel(pl.sess.ws.Root, abs); err == nil && filepath.IsLocal(rel) {
						if changed, _, err := pl.sess.ws.Changes(); err == nil && slices.Contains(changed, filepath.ToSlash(rel)) {
							fmt.Fprintf(g.stderr, "zen: %s is in the work tree and not ignored by git: it makes the tree dirty, so the plan it holds no longer applies. Add it to .gitignore (zen init ignores *.zen), or save the plan outside the work tree.\n", out)
						}
					}
				}
			}
			if detailed && pl.plan.Changes() {
				return &codeError{code: exitChanges}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when there is something to apply, 0 when there is nothing")
	cmd.Flags().StringVarP(&out, "out", "o", "", "also save the plan to `FILE`, for zen apply FILE")
	return cmd
}

// styleFor colours output on a terminal, unless NO_COLOR is set.
func styleFor(w io.Writer) render.Style {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return render.Style{}
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return render.Style{Color: err == nil}
}

// saveFile writes a file through write, whole or not at all: into a
// temporary file beside it, renamed into place.
func saveFile(name string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
