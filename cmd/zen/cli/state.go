package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/internal/wait"
	"github.com/zen-dev/zen/state"
)

// stateRemote is the git remote the state ref is shared through:
// $ZEN_REMOTE, else the git config zen.remote, else origin if the
// repository has one; "" when there is none (ZEN_REMOTE=none turns sharing
// off).
func (s *session) stateRemote() string {
	name := os.Getenv("ZEN_REMOTE")
	if name == "" {
		if cfg, err := s.ws.Repo.Config(); err == nil {
			name = cfg.Raw.Section("zen").Option("remote")
		}
	}
	explicit := name != ""
	if name == "" {
		name = "origin"
	}
	if name == "none" {
		return ""
	}
	if _, err := s.ws.Repo.Remote(name); err != nil {
		if explicit {
			return name // named on purpose: let the fetch say what is wrong
		}
		return ""
	}
	return name
}

// pullState brings the state ref up to the remote's before a plan. It
// returns the remote's commit, for the push after an apply, and notes for
// the user.
func (s *session) pullState(ctx context.Context, remote string) (*state.Sync, []string, error) {
	sync, err := s.state.Pull(ctx, remote)
	if err != nil {
		return nil, nil, err
	}
	var notes []string
	if sync.Replayed > 0 {
		notes = append(notes, fmt.Sprintf("the state on %s moved: %d local state commits were written again on top of it", remote, sync.Replayed))
	}
	if len(sync.Dropped) > 0 {
		notes = append(notes, fmt.Sprintf("%s changed these records meanwhile; its version is kept: %s", remote, strings.Join(sync.Dropped, ", ")))
	}
	if sync.Ahead > 0 {
		notes = append(notes, fmt.Sprintf("%d local state commits are not on %s yet: zen apply or zen state push sends them", sync.Ahead, remote))
	}
	return sync, notes, nil
}

// pushRetry is the first pause before pushing the state again after a
// network error (then 2×); a variable so that tests can make it small.
var pushRetry = time.Second

// pushPause is how pushState pauses; tests see the pause through it.
var pushPause = wait.Sleep

// pushState pushes the state ref after an apply recorded runs, pulling
// and replaying when another apply pushed first. A record the other apply
// changed too (the same pipeline's baseline, the same model's stage) is
// theirs to keep, and the error then says to plan again.
func (s *session) pushState(ctx context.Context, remote, expected string) error {
	for attempt := range 3 {
		err := s.state.Push(ctx, remote, expected)
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("%w; stopped: %w", err, ctx.Err())
		}
		if errors.Is(err, state.ErrRemote) && attempt < 2 {
			// A network hiccup: a CI job's clone is thrown away, with
			// the records only it holds.
			if werr := pushPause(ctx, time.Duration(attempt+1)*pushRetry); werr != nil {
				return fmt.Errorf("%w; stopped before pushing again: %w", err, werr)
			}
			continue
		}
		if !errors.Is(err, state.ErrStateMoved) {
			return err
		}
		sync, err := s.state.Pull(ctx, remote)
		if err != nil {
			return err
		}
		if len(sync.Dropped) > 0 {
			if perr := s.state.Push(ctx, remote, sync.RemoteHead); perr != nil {
				return perr
			}
			return fmt.Errorf("another apply pushed to %s first and changed %s: %w (the runs were recorded and pushed; their versions of those records are kept)",
				remote, strings.Join(sync.Dropped, ", "), state.ErrStateMoved)
		}
		expected = sync.RemoteHead
	}
	return fmt.Errorf("the state on %s keeps moving: %w", remote, state.ErrStateMoved)
}

func newState(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Share the state ref through the git remote",
		Long: `The state ref (refs/zen/state) is shared through a git remote: $ZEN_REMOTE,
else the git config zen.remote, else origin. zen plan and zen apply fetch
it first, and zen apply pushes it back, as git push --force-with-lease
does: if another apply pushed first, zen writes its records again on top
of theirs, or, where both changed the same pipeline's baseline or model
stage, keeps theirs and says to plan again. Nothing recorded is lost.

Fetching and pushing run git, so ssh agents, keys and credential helpers
work as they do for git. ZEN_REMOTE=none keeps the state local.`,
		Example: "  zen state pull\n  zen state push\n  zen state log -n 5",
	}
	remoteOf := func() (*session, string, error) {
		sess, err := open(false)
		if err != nil {
			return nil, "", err
		}
		r := sess.stateRemote()
		if r == "" && os.Getenv("ZEN_REMOTE") == "none" {
			return nil, "", errors.New("ZEN_REMOTE=none keeps the state local: unset it, or set it to the name of a git remote, to share the state")
		}
		if r == "" {
			return nil, "", errors.New("no git remote to share the state through: add one (git remote add origin URL), or set ZEN_REMOTE to a remote's name")
		}
		return sess, r, nil
	}
	pull := &cobra.Command{
		Use:   "pull",
		Short: "Fetch the state ref from the remote and bring the local one up to it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, remote, err := remoteOf()
			if err != nil {
				return err
			}
			sync, notes, err := sess.pullState(cmd.Context(), remote)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, sync)
			}
			switch {
			case sync.RemoteHead == "":
				fmt.Fprintf(g.stdout, "%s has no state yet\n", remote)
			case sync.Head == sync.RemoteHead:
				if sync.Before == sync.Head {
					fmt.Fprintf(g.stdout, "%s is at %s, as %s is\n", sess.state.Ref(), short(sync.Head), remote)
				} else {
					fmt.Fprintf(g.stdout, "%s: %s → %s\n", sess.state.Ref(), shortOr(sync.Before), short(sync.Head))
				}
			case sync.Before == sync.Head:
				fmt.Fprintf(g.stdout, "%s is at %s, ahead of %s (at %s)\n", sess.state.Ref(), short(sync.Head), remote, short(sync.RemoteHead))
			default:
				fmt.Fprintf(g.stdout, "%s: %s → %s\n", sess.state.Ref(), shortOr(sync.Before), short(sync.Head))
			}
			for _, n := range notes {
				fmt.Fprintln(g.stdout, n)
			}
			return nil
		},
	}
	push := &cobra.Command{
		Use:   "push",
		Short: "Push the local state ref to the remote, if the remote has not moved",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, remote, err := remoteOf()
			if err != nil {
				return err
			}
			sync, _, err := sess.pullState(cmd.Context(), remote)
			if err != nil {
				return err
			}
			if err := sess.pushState(cmd.Context(), remote, sync.RemoteHead); err != nil {
				return err
			}
			head, err := sess.state.Head()
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s on %s is at %s\n", sess.state.Ref(), remote, shortOr(head.Commit()))
			return nil
		},
	}
	var n int
	log := &cobra.Command{
		Use:   "log",
		Short: "List the state ref's commits, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := open(false)
			if err != nil {
				return err
			}
			entries, err := sess.state.Log(n)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, entries)
			}
			for _, e := range entries {
				subject, _, _ := strings.Cut(e.Message, "\n")
				fmt.Fprintf(g.stdout, "%s %s %s\n", short(e.Commit), e.When.UTC().Format("2006-01-02 15:04"), subject)
			}
			return nil
		},
	}
	log.Flags().IntVarP(&n, "max-count", "n", 20, "list at most `N` commits (0: all)")
	check := &cobra.Command{
		Use:   "check",
		Short: "Read every record on the state ref and report those that do not parse",
		Long: `Check reads every record of the state ref's current commit (runs, cache
entries, pipeline baselines, model versions, stages, submissions) and
reports each that does not parse, with its commit and path. It exits 1 when
one does not. It changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := open(false)
			if err != nil {
				return err
			}
			recs, err := records(sess)
			if err != nil {
				return err
			}
			n, errs := recs.Check()
			for _, e := range errs {
				fmt.Fprintln(g.stderr, "zen: "+e.Error())
			}
			if len(errs) > 0 {
				return &codeError{code: exitError, err: fmt.Errorf("%d of %d records on %s do not parse", len(errs), n, recs.Ref)}
			}
			fmt.Fprintf(g.stdout, "%d records on %s at %s parse\n", n, recs.Ref, shortOr(recs.Snapshot.Commit()))
			return nil
		},
	}
	cmd.AddCommand(pull, push, log, check)
	return cmd
}

func shortOr(s string) string {
	if s == "" {
		return "(none)"
	}
	return short(s)
}
