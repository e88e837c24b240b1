package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/apply"
	"github.com/zen-dev/zen/state"
	"github.com/zen-dev/zen/view"
)

func newRuns(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List and show recorded pipeline runs",
		Long: `Runs reads the runs recorded on the state ref. RUN is a run id, a unique
prefix of one, or "latest".`,
	}
	var pipeline string
	var limit int
	list := &cobra.Command{
		Use:     "list",
		Short:   "List recorded runs, newest first",
		Example: "  zen runs list\n  zen runs list --pipeline training --limit 5",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := openRead(cmd, g, false)
			if err != nil {
				return err
			}
			runs, err := sess.Runs(zen.RunsQuery{Pipeline: pipeline, Limit: limit})
			if err != nil {
				return err
			}
			if g.output == "json" {
				if runs == nil {
					runs = []*state.Run{}
				}
				return writeJSON(g.stdout, runs)
			}
			if len(runs) == 0 {
				fmt.Fprintln(g.stderr, "no runs recorded yet: zen apply records one")
				return nil
			}
			return view.RunTable(g.stdout, runs)
		},
	}
	list.Flags().StringVar(&pipeline, "pipeline", "", "only runs of this pipeline")
	list.Flags().IntVar(&limit, "limit", 20, "show at most `N` runs (0: all)")
	show := &cobra.Command{
		Use:     "show RUN",
		Short:   "Show a run: its source, parameters, and every step's result",
		Example: "  zen runs show latest\n  zen runs show 20261123-101500-3fa2c1 --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := openRead(cmd, g, false)
			if err != nil {
				return err
			}
			r, err := sess.Run(args[0])
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, r)
			}
			return view.Run(g.stdout, r)
		},
	}
	cmd.AddCommand(list, show, newWatch(g))
	return cmd
}

func newWatch(g *globals) *cobra.Command {
	var lockTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "watch [RUN]",
		Short: "Wait for a detached run's Slurm jobs and record the run",
		Long: `Watch follows a run that zen apply --detach left on a Slurm cluster: it
shows its jobs' progress (queued, running on which node, done), collects
their results from the artifact store once they end, signs what they
pushed, and records the run on the state ref as an attached apply would,
with its model changes. The next zen apply does the same for every run
still submitted; whichever comes first records the run, once.

Without RUN, watch collects every submitted run. Ctrl-C stops watching and
leaves the jobs running. A run that is already recorded is shown, and the
exit status says how it ended: 0 succeeded, 1 otherwise.`,
		Example: "  zen apply --stack hpc --detach\n  zen runs watch 20261123-101500.123-3fa2c1",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := open(g, false)
			if err != nil {
				return err
			}
			var run string
			if len(args) > 0 {
				run = args[0]
			}
			w, err := sess.Watch(cmd.Context(), zen.WatchOptions{
				Run: run, LockTimeout: lockTimeout, Log: g.stderr,
				Recorded: func(res *apply.Result) { view.Applied(g.stdout, res, sess.state.Ref()) },
			})
			if errors.Is(err, apply.ErrStopped) {
				return &codeError{code: exitCancelled, err: err}
			}
			if w == nil {
				return err
			}
			if w.Pushed {
				fmt.Fprintf(g.stdout, "pushed %s to %s\n", sess.state.Ref(), w.Remote)
			}
			if err != nil || w.Pending > 0 {
				return err
			}
			if run == "" {
				fmt.Fprintln(g.stderr, "no submitted runs to watch: zen apply --detach leaves some")
				return nil
			}
			// Collected already: say how it ended.
			r, err := sess.Run(run)
			if err != nil {
				return err
			}
			if err := view.Run(g.stdout, r); err != nil {
				return err
			}
			if r.Status != state.StatusSucceeded {
				return &codeError{code: exitError}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", 0, "wait up to `DURATION` for a zen apply in this clone to finish (default: refuse at once)")
	return cmd
}

// openRead opens the session for a command that reads the state ref
// (loading the CUE with load), after bringing the ref up to the
// remote's (see zen.Project.Refresh). Offline, or without a remote, it
// reads the local state, and says why on stderr.
func openRead(cmd *cobra.Command, g *globals, load bool) (*session, error) {
	sess, err := open(g, load)
	if err != nil {
		return nil, err
	}
	if err := sess.Refresh(cmd.Context()); err != nil {
		fmt.Fprintf(g.stderr, "zen: reading the local state: %v\n", err)
	}
	return sess, nil
}

// records are the records of the state ref's current commit.
func records(sess *session) (state.Records, error) { return sess.Records() }

func newLogs(g *globals) *cobra.Command {
	var stack string
	cmd := &cobra.Command{
		Use:   "logs RUN STEP",
		Short: "Print a step's log (its stdout and stderr) from the artifact store",
		Long: `Logs prints what a step wrote to stdout and stderr in a run, read from the
artifact store of the run's stack (or --stack). For a cached step, that is
the log of the run that produced its outputs.`,
		Example: "  zen logs latest train",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := openRead(cmd, g, true)
			if err != nil {
				return err
			}
			b, err := sess.StepLog(cmd.Context(), args[0], args[1], stack)
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(b)
			return err
		},
	}
	cmd.Flags().StringVar(&stack, "stack", "", "read from this stack's artifact store (default: the run's stack)")
	return cmd
}

func newArtifacts(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "artifacts",
		Short: "Fetch the artifacts runs stored",
	}
	var out, stack string
	get := &cobra.Command{
		Use:   "get RUN STEP OUTPUT",
		Short: "Write a step's output to a file or folder",
		Long: `Get fetches a step's output from the artifact store of the run's stack (or
--stack), checks it against its recorded digest, and writes it to -o PATH
(default: ./OUTPUT). It never overwrites an existing path.`,
		Example: "  zen artifacts get latest train model -o model.json",
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := openRead(cmd, g, true)
			if err != nil {
				return err
			}
			r, a, err := sess.StepOutput(args[0], args[1], args[2])
			if err != nil {
				return err
			}
			dest := out
			if dest == "" {
				dest = args[2]
			}
			if _, err := os.Lstat(g.path(dest)); err == nil {
				return fmt.Errorf("%s exists: choose another path with -o", dest)
			}
			if err := sess.PullArtifact(cmd.Context(), r, stack, a.Digest, g.path(dest)); err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, map[string]any{"path": dest, "artifact": a})
			}
			fmt.Fprintf(g.stdout, "wrote %s (%s, %d bytes, %s)\n", dest, a.Type, a.Size, a.Digest)
			return nil
		},
	}
	get.Flags().StringVarP(&out, "out", "o", "", "write to `PATH` (default: ./OUTPUT)")
	get.Flags().StringVar(&stack, "stack", "", "read from this stack's artifact store (default: the run's stack)")
	cmd.AddCommand(get)
	return cmd
}
