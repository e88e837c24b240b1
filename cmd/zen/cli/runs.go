package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/apply"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
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
			_, recs, err := openRecords(cmd, g, false)
			if err != nil {
				return err
			}
			ids, err := recs.RunIDs()
			if err != nil {
				return err
			}
			var runs []*state.Run
			for i := len(ids) - 1; i >= 0 && (limit <= 0 || len(runs) < limit); i-- {
				r, _, err := recs.Run(ids[i])
				if err != nil {
					return err
				}
				if pipeline == "" || r.Pipeline == pipeline {
					runs = append(runs, r)
				}
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
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tPIPELINE\tSTATUS\tSTEPS\tSOURCE\tSTARTED")
			for _, r := range runs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Pipeline, r.Status, stepCounts(r), source(r), r.Started.Local().Format(time.DateTime))
			}
			return tw.Flush()
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
			r, err := findRun(sess, args[0])
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, r)
			}
			printRun(g, r)
			return nil
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
			ctx := cmd.Context()
			sess, err := open(g, false)
			if err != nil {
				return err
			}
			lock, err := sess.state.LockApply(ctx, "zen runs watch", lockTimeout, lockWaiting(g.stderr, lockTimeout))
			if err != nil {
				return err
			}
			defer lock.Release()
			remote := sess.stateRemote()
			var remoteHead string
			if remote != "" {
				sync, notes, err := sess.pullState(ctx, remote)
				if err != nil {
					return fmt.Errorf("%w (ZEN_REMOTE=none watches against the local state alone)", err)
				}
				remoteHead = sync.RemoteHead
				for _, n := range notes {
					fmt.Fprintln(g.stderr, "zen: "+n)
				}
			}
			recs, err := records(sess)
			if err != nil {
				return err
			}
			subs, err := recs.Submissions()
			if err != nil {
				return err
			}
			var todo []*state.Submission
			for _, sub := range subs {
				if len(args) == 0 || slices.ContainsFunc(sub.Runs, func(id string) bool { return strings.HasPrefix(id, args[0]) }) {
					todo = append(todo, sub)
				}
			}
			if len(todo) == 0 {
				if len(args) == 0 {
					fmt.Fprintln(g.stderr, "no submitted runs to watch: zen apply --detach leaves some")
					return nil
				}
				// Collected already: say how it ended.
				r, err := findRun(sess, args[0])
				if err != nil {
					return err
				}
				printRun(g, r)
				if r.Status != state.StatusSucceeded {
					return &codeError{code: exitError}
				}
				return nil
			}
			var errs []error
			recorded := false
			for _, sub := range todo {
				recs, err := records(sess)
				if err != nil {
					return err
				}
				res, err := collect(ctx, g.stderr, sess, recs, sub)
				if errors.Is(err, apply.ErrStopped) {
					return &codeError{code: exitCancelled, err: fmt.Errorf("%w: zen runs watch %s again to record run %s", err, sub.Runs[0], sub.Runs[0])}
				}
				if res != nil {
					printApplied(g, res, sess.state.Ref())
					recorded = recorded || res.StateCommit != ""
				}
				errs = append(errs, err)
			}
			if recorded && remote != "" {
				if err := sess.pushState(ctx, remote, remoteHead); err != nil {
					errs = append(errs, err)
				} else {
					fmt.Fprintf(g.stdout, "pushed %s to %s\n", sess.state.Ref(), remote)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", 0, "wait up to `DURATION` for a zen apply in this clone to finish (default: refuse at once)")
	return cmd
}

// openRead opens the session for a command that reads the state ref
// (loading the CUE with load), after bringing the ref up to the
// remote's, as zen plan does: a fresh clone reads what was applied
// without fetching refs/zen/* by hand. Offline, or without a remote, it
// reads the local state, and says why on stderr.
func openRead(cmd *cobra.Command, g *globals, load bool) (*session, error) {
	sess, err := open(g, load)
	if err != nil {
		return nil, err
	}
	if remote := sess.stateRemote(); remote != "" {
		if _, _, err := sess.pullState(cmd.Context(), remote); err != nil {
			fmt.Fprintf(g.stderr, "zen: reading the local state: %v\n", err)
		}
	}
	return sess, nil
}

// openRecords opens the session with openRead and the records of the
// state ref's current commit.
func openRecords(cmd *cobra.Command, g *globals, load bool) (*session, state.Records, error) {
	sess, err := openRead(cmd, g, load)
	if err != nil {
		return nil, state.Records{}, err
	}
	recs, err := records(sess)
	return sess, recs, err
}

func records(sess *session) (state.Records, error) {
	snap, err := sess.state.Head()
	if err != nil {
		return state.Records{}, err
	}
	return state.Records{Snapshot: snap, Ref: sess.state.Ref()}, nil
}

// findRun resolves a run id, a unique prefix of one, or "latest".
func findRun(sess *session, id string) (*state.Run, error) {
	recs, err := records(sess)
	if err != nil {
		return nil, err
	}
	ids, err := recs.RunIDs()
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no runs recorded on %s yet: zen apply records one", sess.state.Ref())
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
		return nil, fmt.Errorf("no run %q on %s (see zen runs list)", id, sess.state.Ref())
	case len(match) > 1:
		return nil, fmt.Errorf("run %q is ambiguous: %s", id, strings.Join(match, ", "))
	}
	r, _, err := recs.Run(match[0])
	return r, err
}

func stepCounts(r *state.Run) string {
	counts := map[string]int{}
	for _, s := range r.Steps {
		counts[s.Status]++
	}
	var parts []string
	for _, st := range []string{state.StatusSucceeded, state.StatusCached, state.StatusSubmitted, state.StatusFailed, state.StatusSkipped, state.StatusCancelled} {
		if n := counts[st]; n > 0 {
			word := st
			if st == state.StatusSucceeded {
				word = "ran"
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, word))
		}
	}
	return strings.Join(parts, ", ")
}

func source(r *state.Run) string {
	s := "-"
	if r.SourceCommit != "" {
		s = r.SourceCommit[:min(12, len(r.SourceCommit))]
	}
	if r.Dirty {
		s += "+dirty"
	}
	if r.Experiment {
		s += " (experiment)"
	}
	return s
}

func printRun(g *globals, r *state.Run) {
	w := g.stdout
	fmt.Fprintf(w, "run %s\n", r.ID)
	fmt.Fprintf(w, "  pipeline:  %s\n", r.Pipeline)
	fmt.Fprintf(w, "  status:    %s\n", r.Status)
	if r.Error != "" {
		fmt.Fprintf(w, "  error:     %s\n", r.Error)
	}
	src := r.SourceCommit
	if src == "" {
		src = "(no commit)"
	}
	if r.Dirty {
		src += " with uncommitted changes " + r.DirtyDigest
	}
	fmt.Fprintf(w, "  source:    %s\n", src)
	if r.Experiment {
		var sets []string
		for _, k := range slices.Sorted(maps.Keys(r.Overrides)) {
			v, _ := json.Marshal(r.Overrides[k])
			sets = append(sets, fmt.Sprintf("%s=%s", k, v))
		}
		fmt.Fprintf(w, "  experiment: %s\n", strings.Join(sets, ", "))
	}
	fmt.Fprintf(w, "  stack:     %s (orchestrator %s, artifact store %s)\n", r.Stack, r.Orchestrator, r.Store)
	if r.Status == state.StatusSubmitted {
		fmt.Fprintf(w, "  started:   %s (on the cluster, not collected yet: zen runs watch %s)\n", r.Started.Local().Format(time.DateTime), r.ID)
	} else {
		fmt.Fprintf(w, "  started:   %s (%s)\n", r.Started.Local().Format(time.DateTime), r.Finished.Sub(r.Started).Round(time.Millisecond))
	}
	if len(r.Parameters) > 0 {
		fmt.Fprintln(w, "  parameters:")
		for _, k := range slices.Sorted(maps.Keys(r.Parameters)) {
			fmt.Fprintf(w, "    %s = %s\n", schema.QuoteKey(k), showParam(r.Parameters[k]))
		}
	}
	fmt.Fprintln(w, "  steps:")
	order := r.Order
	if len(order) != len(r.Steps) {
		order = slices.Sorted(maps.Keys(r.Steps))
	}
	for _, name := range order {
		s := r.Steps[name]
		line := fmt.Sprintf("    %s: %s", name, s.Status)
		if s.CachedFrom != "" {
			line += " (from run " + s.CachedFrom + ")"
		}
		if s.Started != nil && s.Finished != nil {
			line += " in " + s.Finished.Sub(*s.Started).Round(time.Millisecond).String()
		}
		if s.Attempts > 1 {
			line += fmt.Sprintf(" after %d attempts", s.Attempts)
		}
		switch {
		case s.Job != "" && s.Node != "":
			line += fmt.Sprintf(" on %s (job %s)", s.Node, s.Job)
		case s.Job != "":
			line += fmt.Sprintf(" (job %s)", s.Job)
		}
		if s.Reason != "" {
			line += ": " + s.Reason
		}
		fmt.Fprintln(w, line)
		for _, o := range slices.Sorted(maps.Keys(s.Outputs)) {
			a := s.Outputs[o]
			fmt.Fprintf(w, "      output %s (%s, %d bytes) %s\n", o, a.Type, a.Size, a.Digest)
		}
		for _, m := range slices.Sorted(maps.Keys(s.Metrics)) {
			fmt.Fprintf(w, "      metric %s = %g\n", m, s.Metrics[m])
		}
	}
}

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
			sess, r, step, err := runStep(cmd, g, args[0], args[1])
			if err != nil {
				return err
			}
			if step.Log == nil {
				return fmt.Errorf("run %s: step %s has no log (%s)", r.ID, args[1], step.Status)
			}
			dir, err := os.MkdirTemp("", "zen-logs-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			p := filepath.Join(dir, "log")
			if err := pullArtifact(cmd, sess, r, stack, step.Log.Digest, p); err != nil {
				return err
			}
			b, err := os.ReadFile(p)
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
			sess, r, step, err := runStep(cmd, g, args[0], args[1])
			if err != nil {
				return err
			}
			a, ok := step.Outputs[args[2]]
			if !ok {
				return fmt.Errorf("run %s: step %s has no output %q (outputs: %s)", r.ID, args[1], args[2], strings.Join(slices.Sorted(maps.Keys(step.Outputs)), ", "))
			}
			dest := out
			if dest == "" {
				dest = args[2]
			}
			if _, err := os.Lstat(g.path(dest)); err == nil {
				return fmt.Errorf("%s exists: choose another path with -o", dest)
			}
			if err := pullArtifact(cmd, sess, r, stack, a.Digest, g.path(dest)); err != nil {
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

// runStep finds a run and one of its steps.
func runStep(cmd *cobra.Command, g *globals, runID, stepName string) (*session, *state.Run, *state.StepResult, error) {
	sess, err := openRead(cmd, g, true)
	if err != nil {
		return nil, nil, nil, err
	}
	r, err := findRun(sess, runID)
	if err != nil {
		return nil, nil, nil, err
	}
	s, ok := r.Steps[stepName]
	if !ok {
		return nil, nil, nil, fmt.Errorf("run %s of %s has no step %q (steps: %s)", r.ID, r.Pipeline, stepName, strings.Join(slices.Sorted(maps.Keys(r.Steps)), ", "))
	}
	return sess, r, s, nil
}

// pullArtifact fetches an artifact from the store of the run's stack, or
// of --stack.
func pullArtifact(cmd *cobra.Command, sess *session, r *state.Run, stackFlag, digest, dest string) error {
	name := stackFlag
	if name == "" {
		if _, ok := stacks(sess.cfg)[r.Stack]; ok {
			name = r.Stack
		}
	}
	st, err := sess.selectStack(name)
	if err != nil {
		return err
	}
	store, err := sess.openStore(st)
	if err != nil {
		return err
	}
	defer store.Close()
	return store.Pull(cmd.Context(), digest, dest)
}

// showParam shows a parameter's value: a string as it is, anything else
// (a nested struct from params.yaml) as JSON.
func showParam(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
