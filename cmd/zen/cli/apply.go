package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/apply"
	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/plan/render"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/state"
)

func newApply(g *globals) *cobra.Command {
	var f planFlags
	var jobs int
	var detach bool
	cmd := &cobra.Command{
		Use:   "apply [PIPELINE... | PLANFILE]",
		Short: "Run what the plan shows and record the runs",
		Long: `Apply computes the plan, runs the steps that must run on the selected
stack, stores their outputs and logs as OCI artifacts, and records each
pipeline run as one commit on the state ref (refs/zen/state).

Steps run as soon as their inputs are ready, up to -j at once. A failing
step stops the steps that read its outputs; independent steps finish. The
run is recorded whatever happens, so the next apply reuses every step that
completed. Ctrl-C stops the running steps and records the run as
cancelled.

On a slurm stack each step that runs is a Slurm job; apply waits for the
jobs, showing their progress, and Ctrl-C cancels them. With --detach it
returns once they are submitted, recording the runs as submitted: zen runs
watch, or the next zen apply, collects and records them (runs still
submitted are collected before anything is planned).

With --set, the run is an experiment: recorded with its overrides, but the
pipeline's baseline (what plan compares against) stays as it was. --set
PIPELINE.PARAM.FIELD=VALUE sets one field of a struct parameter and keeps
its siblings (see zen plan --help). A run from a work tree with
uncommitted changes is recorded as dirty. Neither makes a model version;
commit what was tried, and that commit's apply makes the version from the
outputs they stored, running nothing again: its cache keys are theirs. A
pipeline whose steps are all cached runs nothing, but its baseline moves
to what was applied, so that the next plan explains itself against it.

zen apply PLANFILE applies a plan saved by zen plan -o PLANFILE, with the
stack, pipelines and --set it was made with, and only if it still holds:
the state ref, the source commit and the work tree are as they were, and
planning again gives the same steps to run and the same model changes.
Otherwise nothing runs and zen says to plan again. (An argument with a '.'
or a '/' is a plan file: pipeline names have neither.)`,
		Example: `  zen apply
  zen apply training --stack shared -j 4
  zen apply --set training.n_estimators=200
  zen apply get-started --set get-started.train.n_est=50 --set get-started.train.max_depth=8
  zen apply --stack hpc --detach && zen runs watch
  zen plan -o plan.zen && zen apply plan.zen`,
		RunE: func(cmd *cobra.Command, args []string) error {
			f.g, f.forApply, f.stderr = g, true, g.stderr
			var pl *planned
			var err error
			if len(args) > 0 && strings.ContainsAny(args[0], "./") {
				pl, err = applySaved(cmd.Context(), &f, args)
			} else {
				pl, err = makePlan(cmd.Context(), &f, args)
			}
			if err != nil {
				return err
			}
			defer pl.lock.Release()
			// Runs collected from an earlier detached apply: reported
			// first, and a failed one fails this apply too.
			var collectedErr error
			for _, c := range pl.collected {
				if c.res != nil && g.output == "text" {
					printApplied(g, c.res, pl.sess.state.Ref())
				}
				if c.res != nil && c.err != nil {
					collectedErr = errors.Join(collectedErr, c.err)
				}
			}
			if detach && pl.stack.Orchestrator.Flavor != "slurm" {
				return fmt.Errorf("--detach: stack %s runs its steps in this process (orchestrator %s); only a slurm stack's jobs run on without zen", pl.stack.Name, pl.stack.Orchestrator.Flavor)
			}
			err = applyPlan(cmd.Context(), g, pl, jobs, detach)
			return errors.Join(collectedErr, err)
		},
	}
	f.register(cmd)
	cmd.Flags().IntVarP(&jobs, "jobs", "j", 0, "run up to `N` steps at once (default: the number of CPUs)")
	cmd.Flags().DurationVar(&f.lockTimeout, "lock-timeout", 0, "wait up to `DURATION` for another zen apply in this clone to finish (default: refuse at once)")
	cmd.Flags().BoolVar(&detach, "detach", false, "on a slurm stack, submit the jobs and return: zen runs watch RUN, or the next zen apply, records the runs")
	return cmd
}

// applyPlan carries out a computed plan and reports what it did.
func applyPlan(ctx context.Context, g *globals, pl *planned, jobs int, detach bool) error {
	p := pl.plan
	if !p.Changes() {
		var refused []string
		for _, c := range p.Models {
			if c.Refused != "" {
				refused = append(refused, render.ModelLine(c, render.Style{}))
			}
		}
		if g.output == "json" {
			if err := writeJSON(g.stdout, map[string]any{"changes": false, "runs": []any{}, "refused": refused}); err != nil {
				return err
			}
		} else {
			fmt.Fprintln(g.stdout, render.Summary(p))
		}
		if pl.remote != "" && pl.ahead {
			// Records an earlier apply could not push.
			if err := pl.sess.pushState(ctx, pl.remote, pl.remoteHead); err != nil {
				return err
			}
		}
		if len(refused) > 0 {
			// Nothing to do, but a declared change cannot be made:
			// that is worth a failing CI job.
			return &apply.RefusedError{Reasons: refused}
		}
		return nil
	}
	if g.output == "text" {
		render.Text(g.stderr, p, styleFor(g.stderr))
		fmt.Fprintln(g.stderr)
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
	if sum := p.Summary(); sum.Run > 0 || sum.Versions > 0 || sum.Promotions > 0 || sum.Repairs > 0 {
		var err error
		if signer, keyID, verifier, err = pl.sess.Signer(pl.stack); err != nil {
			return err
		}
	}
	if pl.checker == nil && verifier != nil {
		pl.checker = pl.sess.Checker(pl.store, verifier, keyID, pl.recs)
	}
	env := &apply.Env{
		Signer:   signer,
		KeyID:    keyID,
		Verifier: verifier,
		Config:   pl.sess.cfg,
		Stack:    pl.stack,
		Store:    pl.store,
		Sources:  pl.sess.ws,
		Records:  pl.recs,
		State:    pl.sess.state,
		Jobs:     jobs,
		Stream:   g.stderr,
	}
	if pl.checker != nil {
		env.Verify = pl.checker.Verify
	}
	if pl.stack.Orchestrator.Flavor == "slurm" {
		env.StoreRef = zen.StoreRef(pl.store)
		if st := pl.stack.ArtifactStore; st.Flavor == "oci-layout" {
			// The nodes are given the folder by its full path.
			abs, _ := filepath.Abs(st.String("path"))
			if !filepath.IsAbs(st.String("path")) {
				abs = filepath.Join(pl.sess.ws.Root, st.String("path"))
			}
			env.StoreRef = "oci-layout:" + abs
		}
		env.SourceTree = pl.sess.ws.Snapshot
		env.Detach = detach
	}
	res, err := apply.Apply(ctx, env, p)
	if pl.checker != nil {
		_ = pl.checker.Save()
	}
	var re *apply.RunError
	var refused *apply.RefusedError
	if err != nil && !errors.As(err, &re) && !errors.As(err, &refused) && !errors.Is(err, state.ErrStateMoved) {
		return err
	}
	if pl.remote != "" && res != nil && (res.StateCommit != "" || pl.ahead) {
		if perr := pl.sess.pushState(ctx, pl.remote, pl.remoteHead); perr != nil {
			err = errors.Join(err, perr)
		} else if g.output == "text" && res.StateCommit != "" {
			defer fmt.Fprintf(g.stdout, "pushed %s to %s\n", pl.sess.state.Ref(), pl.remote)
		}
		// A push after another apply's writes the records again on
		// top of theirs: report the commit that holds them now.
		if head, herr := pl.sess.state.Head(); herr == nil && res.StateCommit != "" {
			res.StateCommit = head.Commit()
		}
	}
	if res != nil {
		if g.output == "json" {
			if jerr := writeJSON(g.stdout, map[string]any{"changes": true, "runs": res.Runs, "baselines": res.Baselines, "models": res.Models, "state_commit": res.StateCommit}); jerr != nil {
				return jerr
			}
		} else {
			printApplied(g, res, pl.sess.state.Ref())
		}
	}
	return err
}

func printApplied(g *globals, res *apply.Result, ref string) {
	fmt.Fprintln(g.stdout)
	for _, r := range res.Runs {
		ran, cached, failed, submitted := 0, 0, 0, 0
		for _, s := range r.Steps {
			switch s.Status {
			case state.StatusSucceeded:
				ran++
			case state.StatusCached:
				cached++
			case state.StatusSubmitted:
				submitted++
			default:
				failed++
			}
		}
		line := fmt.Sprintf("run %s of %s %s: %d ran, %d cached", r.ID, r.Pipeline, r.Status, ran, cached)
		if r.Status == state.StatusSubmitted {
			line = fmt.Sprintf("run %s of %s submitted: %d jobs, %d cached", r.ID, r.Pipeline, submitted, cached)
		}
		if failed > 0 {
			line += fmt.Sprintf(", %d did not complete", failed)
		}
		var tags []string
		if r.Dirty {
			tags = append(tags, "dirty")
		}
		if r.Experiment {
			tags = append(tags, "experiment")
		}
		if len(tags) > 0 {
			line += " (" + strings.Join(tags, ", ") + ")"
		}
		fmt.Fprintln(g.stdout, line)
		if r.Error != "" {
			fmt.Fprintf(g.stdout, "  %s\n", r.Error)
		}
	}
	for _, name := range res.Baselines {
		fmt.Fprintf(g.stdout, "baseline of %s moved: every step cached, none ran\n", name)
	}
	for _, m := range res.Models {
		fmt.Fprintln(g.stdout, m)
	}
	if res.StateCommit != "" {
		fmt.Fprintf(g.stdout, "recorded on %s at %s\n", ref, short(res.StateCommit))
	}
	if sub := res.Submission; sub != nil && sub.Jobs > 0 && res.Runs[0].Status == state.StatusSubmitted {
		fmt.Fprintf(g.stdout, "the jobs run on without zen: zen runs watch %s waits for them and records the run, as does the next zen apply\n", sub.Runs[0])
	}
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// applySaved reads the plan file args[0] and plans again with its request,
// failing unless the plan it gives is the one saved.
func applySaved(ctx context.Context, f *planFlags, args []string) (*planned, error) {
	name := args[0]
	if len(args) > 1 {
		return nil, fmt.Errorf("a plan file is applied alone: %s was given with %s", name, strings.Join(args[1:], " "))
	}
	if f.stack != "" || f.noCache || len(f.sets) > 0 {
		return nil, fmt.Errorf("%s carries the stack, pipelines, --no-cache and --set it was made with: apply it without them", name)
	}
	// Not blocking on a FIFO: a plan file is a regular file.
	file, err := os.OpenFile(f.g.path(name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("plan file: %w", err)
	}
	if fi, err := file.Stat(); err != nil || !fi.Mode().IsRegular() {
		file.Close()
		return nil, fmt.Errorf("plan file %s: not a regular file", name)
	}
	saved, err := plan.ReadSaved(file, name)
	file.Close()
	if err != nil {
		return nil, err
	}
	req := saved.Request
	pl, err := makePlan(ctx, &planFlags{g: f.g, stack: req.Stack, noCache: req.NoCache, sets: req.Sets, forApply: true}, req.Pipelines)
	if err != nil {
		return nil, err
	}
	if why := saved.Stale(pl.plan); why != "" {
		return nil, &codeError{code: exitError, err: fmt.Errorf("%s is stale: %s; nothing was applied: run zen plan -o %s again", name, why, name)}
	}
	return pl, nil
}
