package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/plan/render"
	"github.com/zen-dev/zen/progress"
	"github.com/zen-dev/zen/view"
)

func newApply(g *globals) *cobra.Command {
	var f planFlags
	var jobs int
	var detach bool
	var progressMode string
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

With --preview, apply runs the steps a branch changes for its pull request
and records the runs on refs/zen/preview/BRANCH (--branch, else the work
tree's), pushed beside the state ref: no baseline, model version or stage
moves. zen plan --preview then shows what they gave. The apply after the
merge reuses their outputs (the cache keys are the same), runs nothing
they ran, and records their runs on the state ref.

zen apply PLANFILE applies a plan saved by zen plan -o PLANFILE, with the
stack, pipelines and --set it was made with, and only if it still holds:
the state ref, the source commit and the work tree are as they were, and
planning again gives the same steps to run and the same model changes.
Otherwise nothing runs and zen says to plan again. (An argument with a '.'
or a '/' is a plan file: pipeline names have neither.)

Progress goes to stderr. On a terminal (--progress auto, the default,
when stderr is a terminal and TERM is not "dumb"; or --progress tty) a
status block below the lines is redrawn in place: each step running with
its elapsed time, the steps done, cached, failed, running and waiting,
and the bytes hashed and pushed to the store with a rate. The lines of
steps that end, and the steps' output, scroll above it; at the end the
block gives way to a summary line. Otherwise (--progress plain, or
stderr not a terminal) the lines alone are printed, as a log or CI
keeps them.`,
		Example: `  zen apply
  zen apply training --stack shared -j 4
  zen apply --set training.n_estimators=200
  zen apply get-started --set get-started.train.n_est=50 --set get-started.train.max_depth=8
  zen apply --stack hpc --detach && zen runs watch
  zen plan -o plan.zen && zen apply plan.zen
  zen apply --preview --branch feature/lr   # in a pull request's job`,
		RunE: func(cmd *cobra.Command, args []string) error {
			mode, err := progress.ParseMode(progressMode)
			if err != nil {
				return err
			}
			f.g, f.forApply, f.stderr = g, true, g.stderr
			var sess *session
			var pl *zen.Planned
			if len(args) > 0 && strings.ContainsAny(args[0], "./") {
				sess, pl, err = applySaved(cmd.Context(), &f, args)
			} else {
				sess, pl, err = makePlan(cmd.Context(), &f, args)
			}
			if err != nil {
				return err
			}
			defer pl.Release()
			// Runs collected from an earlier detached apply: reported
			// first, and a failed one fails this apply too.
			var collectedErr error
			for _, c := range pl.Collected {
				if c.Result != nil && g.output == "text" {
					view.Applied(g.stdout, c.Result, sess.state.Ref())
				}
				if c.Result != nil && c.Err != nil {
					collectedErr = errors.Join(collectedErr, c.Err)
				}
			}
			if detach {
				if err := pl.Detachable(); err != nil {
					return err
				}
			}
			err = applyPlan(cmd.Context(), g, sess, pl, zen.ApplyOptions{Jobs: jobs, Detach: detach, Log: g.stderr}, mode)
			return errors.Join(collectedErr, err)
		},
	}
	f.register(cmd)
	cmd.Flags().IntVarP(&jobs, "jobs", "j", 0, "run up to `N` steps at once (default: the number of CPUs)")
	cmd.Flags().DurationVar(&f.lockTimeout, "lock-timeout", 0, "wait up to `DURATION` for another zen apply in this clone to finish (default: refuse at once)")
	cmd.Flags().BoolVar(&detach, "detach", false, "on a slurm stack, submit the jobs and return: zen runs watch RUN, or the next zen apply, records the runs")
	progressFlag(cmd, &progressMode)
	return cmd
}

// progressFlag gives cmd the --progress flag, into mode.
func progressFlag(cmd *cobra.Command, mode *string) {
	cmd.Flags().StringVar(mode, "progress", string(progress.ModeAuto), "show progress on stderr as `MODE`: auto (tty when stderr is a terminal and TERM is not dumb, else plain), tty (a status block redrawn in place: steps running with their elapsed time, bytes hashed and pushed with a rate) or plain (lines only)")
}

// showProgress starts showing progress on stderr in mode: a terminal's
// status block, whose meter ctx then carries, or nil for plain lines.
// The caller closes what it returns.
func showProgress(ctx context.Context, g *globals, mode progress.Mode) (context.Context, *progress.Terminal) {
	t := progress.Open(g.stderr, mode)
	if t == nil {
		return ctx, nil
	}
	return progress.NewContext(ctx, t.Meter()), t
}

// applyPlan carries out a computed plan and reports what it did, showing
// its progress in mode.
func applyPlan(ctx context.Context, g *globals, sess *session, pl *zen.Planned, opts zen.ApplyOptions, mode progress.Mode) error {
	p := pl.Plan
	if !p.Changes() {
		if g.output == "json" {
			refused := zen.Refused(pl)
			if err := writeJSON(g.stdout, map[string]any{"changes": false, "runs": []any{}, "refused": refused}); err != nil {
				return err
			}
		} else {
			fmt.Fprintln(g.stdout, render.Summary(p))
		}
		// Pushes what an earlier apply could not; fails on a
		// declared change that cannot be made.
		_, err := sess.Apply(ctx, pl, opts)
		return err
	}
	if g.output == "text" {
		render.Text(g.stderr, p, styleFor(g.stderr))
		fmt.Fprintln(g.stderr)
	}
	ctx, term := showProgress(ctx, g, mode)
	if term != nil {
		opts.Log, opts.Progress = term, term
	}
	res, err := sess.Apply(ctx, pl, opts)
	if term != nil {
		term.Close()
	}
	ref := sess.state.Ref()
	if p.Preview != nil {
		ref = p.Preview.Ref
	}
	if pl.Pushed && g.output == "text" && res.StateCommit != "" {
		defer fmt.Fprintf(g.stdout, "pushed %s to %s\n", ref, pl.Remote)
	}
	if res != nil {
		if g.output == "json" {
			if jerr := writeJSON(g.stdout, map[string]any{"changes": true, "runs": res.Runs, "baselines": res.Baselines, "models": res.Models, "deployments": res.Deployments, "state_commit": res.StateCommit}); jerr != nil {
				return jerr
			}
		} else if perr := view.Applied(g.stdout, res, ref); perr != nil {
			return perr
		}
	}
	return err
}

// applySaved reads the plan file args[0] and plans again with its request,
// failing unless the plan it gives is the one saved.
func applySaved(ctx context.Context, f *planFlags, args []string) (*session, *zen.Planned, error) {
	name := args[0]
	if len(args) > 1 {
		return nil, nil, fmt.Errorf("a plan file is applied alone: %s was given with %s", name, strings.Join(args[1:], " "))
	}
	if f.preview {
		return nil, nil, fmt.Errorf("%s is a saved plan, and a preview is not saved: zen apply --preview plans it", name)
	}
	if f.stack != "" || f.noCache || len(f.sets) > 0 {
		return nil, nil, fmt.Errorf("%s carries the stack, pipelines, --no-cache and --set it was made with: apply it without them", name)
	}
	// Not blocking on a FIFO: a plan file is a regular file.
	file, err := os.OpenFile(f.g.path(name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("plan file: %w", err)
	}
	if fi, err := file.Stat(); err != nil || !fi.Mode().IsRegular() {
		file.Close()
		return nil, nil, fmt.Errorf("plan file %s: not a regular file", name)
	}
	saved, err := plan.ReadSaved(file, name)
	file.Close()
	if err != nil {
		return nil, nil, err
	}
	req := saved.Request
	sess, pl, err := makePlan(ctx, &planFlags{g: f.g, stack: req.Stack, noCache: req.NoCache, sets: req.Sets, forApply: true, stderr: f.stderr, lockTimeout: f.lockTimeout}, req.Pipelines)
	if err != nil {
		return nil, nil, err
	}
	if why := saved.Stale(pl.Plan); why != "" {
		pl.Release()
		return nil, nil, &codeError{code: exitError, err: fmt.Errorf("%s is stale: %s; nothing was applied: run zen plan -o %s again", name, why, name)}
	}
	return sess, pl, nil
}
