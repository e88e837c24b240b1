package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/state"
	"github.com/zen-dev/zen/view"
)

// pullState brings the state ref up to the remote's (see zen.Project.Pull).
func (s *session) pullState(ctx context.Context, remote string) (*state.Sync, []string, error) {
	return s.Pull(ctx, remote)
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
		sess, err := open(g, false)
		if err != nil {
			return nil, "", err
		}
		r, err := sess.SharingRemote()
		return sess, r, err
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
					fmt.Fprintf(g.stdout, "%s is at %s, as %s is\n", sess.state.Ref(), view.Short(sync.Head), remote)
				} else {
					fmt.Fprintf(g.stdout, "%s: %s → %s\n", sess.state.Ref(), shortOr(sync.Before), view.Short(sync.Head))
				}
			case sync.Before == sync.Head:
				fmt.Fprintf(g.stdout, "%s is at %s, ahead of %s (at %s)\n", sess.state.Ref(), view.Short(sync.Head), remote, view.Short(sync.RemoteHead))
			default:
				fmt.Fprintf(g.stdout, "%s: %s → %s\n", sess.state.Ref(), shortOr(sync.Before), view.Short(sync.Head))
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
			head, err := sess.PushState(cmd.Context(), remote)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s on %s is at %s\n", sess.state.Ref(), remote, shortOr(head))
			return nil
		},
	}
	var n int
	log := &cobra.Command{
		Use:   "log",
		Short: "List the state ref's commits, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := open(g, false)
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
				fmt.Fprintf(g.stdout, "%s %s %s\n", view.Short(e.Commit), e.When.UTC().Format("2006-01-02 15:04"), subject)
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
			sess, err := open(g, false)
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
	return view.Short(s)
}
