package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/apply"
	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/plan/render"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/view"
	"github.com/zen-dev/zen/view/chart"
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
	// preview plans (and applies) a pull-request preview of branch ("":
	// the work tree's branch).
	preview bool
	branch  string
}

func (f *planFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.stack, "stack", "", "the `NAME` of the stack to use (default: $ZEN_STACK, then zen stack use, then the repository's default_stack)")
	cmd.Flags().BoolVar(&f.noCache, "no-cache", false, "run every step, reusing nothing")
	cmd.Flags().BoolVar(&f.preview, "preview", false, "a pull-request preview: plan against the state ref, record the runs on refs/zen/preview/BRANCH only (no baseline, model version or stage moves)")
	cmd.Flags().StringVar(&f.branch, "branch", "", "with --preview, the `BRANCH` previewed (default: the work tree's branch; a CI job names the pull request's source branch)")
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "override a parameter for one experiment: `PIPELINE.PARAM=VALUE`, a field of a struct parameter (PIPELINE.PARAM.FIELD=VALUE), or a step's own (PIPELINE.STEP.PARAM=VALUE); repeatable")
}

// makePlan opens the project and computes the plan for pipelines (see
// zen.Project.Plan).
func makePlan(ctx context.Context, f *planFlags, pipelines []string) (*session, *zen.Planned, error) {
	// A bad --set is named before anything is opened.
	if _, err := schema.ParseOverrides(f.sets); err != nil {
		return nil, nil, err
	}
	if f.branch != "" && !f.preview {
		return nil, nil, errors.New("--branch names the branch of a preview: add --preview")
	}
	sess, err := open(f.g, false)
	if err != nil {
		return nil, nil, err
	}
	var branch string
	if f.preview {
		if branch, err = sess.PreviewBranch(f.branch); err != nil {
			return nil, nil, err
		}
	}
	pl, err := sess.Plan(ctx, zen.PlanOptions{
		Preview:     branch,
		Stack:       f.stack,
		Pipelines:   pipelines,
		NoCache:     f.noCache,
		Sets:        f.sets,
		ForApply:    f.forApply,
		LockTimeout: f.lockTimeout,
		Log:         f.stderr,
	})
	if errors.Is(err, apply.ErrStopped) {
		// Ctrl-C while a detached run was collected.
		err = &codeError{code: exitCancelled, err: err}
	}
	return sess, pl, err
}

func newPlan(g *globals) *cobra.Command {
	var f planFlags
	var detailed bool
	var out, plotsDir, plotsURL string
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

--preview plans a pull-request preview of the branch (--branch, else the
work tree's): what zen apply --preview would run and record on
refs/zen/preview/BRANCH, then a report of what the preview ran: metrics
and parameters against the state ref's latest run, failed steps with
their logs' tails, each stage move's challenger against its champion and
gate, and plot outputs (--plots DIR draws them). Model versions and stage
moves are shown as the apply after the merge will make them.

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
  zen plan --output markdown > comment.md
  zen plan --preview --branch feature/lr --output markdown --plots "$RUNNER_TEMP/plots"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			f.g = g
			if plotsDir != "" && !f.preview || plotsURL != "" && plotsDir == "" {
				return errors.New("--plots draws a preview's plots (add --preview), and --plots-url says where --plots DIR is served")
			}
			sess, pl, err := makePlan(cmd.Context(), &f, args)
			if err != nil {
				return err
			}
			switch g.output {
			case "json":
				err = render.JSON(g.stdout, pl.Plan)
			case "markdown":
				render.Markdown(g.stdout, pl.Plan)
			default:
				render.Text(g.stdout, pl.Plan, styleFor(g.stdout))
			}
			if err != nil {
				return err
			}
			if pl.Plan.Preview != nil && g.output != "json" {
				// What the preview ran, for the pull request's comment.
				rep, err := sess.PreviewReport(cmd.Context(), pl)
				if err != nil {
					return err
				}
				links, err := writePreviewPlots(g, sess, rep, plotsDir, plotsURL)
				if err != nil {
					return err
				}
				if g.output == "markdown" {
					err = view.PreviewReportMarkdown(g.stdout, rep, func(pipeline string, p *zen.Plot) string { return links[pipeline+"."+p.Name] })
				} else {
					err = view.PreviewReport(g.stdout, rep)
				}
				if err != nil {
					return err
				}
			}
			if out != "" {
				if out == "text" || out == "json" || out == "markdown" {
					return fmt.Errorf("-o %s saves the plan to a file named %q: for the format, use --output %s", out, out, out)
				}
				req := plan.Request{Stack: pl.Stack.Name, Pipelines: args, NoCache: f.noCache, Sets: f.sets}
				if err := saveFile(g.path(out), func(w io.Writer) error { return plan.WriteSaved(w, version, req, pl.Plan) }); err != nil {
					return fmt.Errorf("save the plan: %w", err)
				}
				if g.output == "text" {
					fmt.Fprintf(g.stdout, "\nSaved the plan to %s: zen apply %s applies exactly it.\n", out, out)
				}
				// A plan file in the work tree, not ignored, makes the
				// tree dirty: the plan it holds is stale at once.
				if dirties(sess, g.path(out)) {
					fmt.Fprintf(g.stderr, "zen: %s is in the work tree and not ignored by git: it makes the tree dirty, so the plan it holds no longer applies. Add it to .gitignore (zen init ignores *.zen), or save the plan outside the work tree.\n", out)
				}
			}
			if detailed && pl.Plan.Changes() {
				return &codeError{code: exitChanges}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when there is something to apply, 0 when there is nothing")
	cmd.Flags().StringVarP(&out, "out", "o", "", "also save the plan to `FILE`, for zen apply FILE")
	cmd.Flags().StringVar(&plotsDir, "plots", "", "with --preview, draw the preview runs' plot outputs as SVG files in `DIR` (PIPELINE.STEP.OUTPUT.svg), linked from the markdown")
	cmd.Flags().StringVar(&plotsURL, "plots-url", "", "with --plots, the `URL` the folder is served at (the CI job's artifacts): the markdown links URL/FILE instead of DIR/FILE")
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

// writePreviewPlots draws the plots of a preview's report into dir (none
// when dir is ""), and returns each one's link by PIPELINE.STEP.OUTPUT:
// url/FILE, else the file's path as given.
func writePreviewPlots(g *globals, sess *session, rep *zen.PreviewReport, dir, url string) (map[string]string, error) {
	links := map[string]string{}
	if dir == "" {
		return links, nil
	}
	if err := os.MkdirAll(g.path(dir), 0o755); err != nil {
		return nil, fmt.Errorf("--plots: %w", err)
	}
	for _, pp := range rep.Pipelines {
		for _, p := range pp.Plots {
			svg, err := chart.DrawSVG(p)
			if err != nil {
				return nil, fmt.Errorf("plot %s of run %s: %w", p.Name, pp.Run, err)
			}
			name := pp.Pipeline + "." + p.Name + ".svg"
			if err := saveFile(filepath.Join(g.path(dir), name), func(w io.Writer) error { _, err := w.Write(svg); return err }); err != nil {
				return nil, fmt.Errorf("--plots: %w", err)
			}
			link := filepath.ToSlash(filepath.Join(dir, name))
			if url != "" {
				link = strings.TrimSuffix(url, "/") + "/" + name
			}
			links[pp.Pipeline+"."+p.Name] = link
		}
	}
	if dirties(sess, g.path(dir)) {
		fmt.Fprintf(g.stderr, "zen: %s is in the work tree and not ignored by git: it makes the tree dirty, and a dirty tree makes no model version. Draw the plots outside the work tree (in CI, a temporary folder), or add it to .gitignore.\n", dir)
	}
	return links, nil
}

// dirties says whether the file or folder at path, just written, is in
// sess's work tree and not ignored by git: it makes the tree dirty.
func dirties(sess *session, path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(sess.ws.Root, abs)
	if err != nil || !filepath.IsLocal(rel) {
		return false
	}
	changed, _, err := sess.ws.Changes()
	if err != nil {
		return false
	}
	rel = filepath.ToSlash(rel)
	return slices.ContainsFunc(changed, func(c string) bool { return c == rel || strings.HasPrefix(c, rel+"/") })
}
