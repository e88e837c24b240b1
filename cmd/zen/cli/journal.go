package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/zen-dev/zen/state"
)

// recoverJournals records what applies stopped on the way (killed, or
// ended by a crash) had finished, from the journals they left in the
// clone. The caller holds the apply lock. It reports whether anything was
// recorded.
func recoverJournals(ctx context.Context, sess *session, stderr io.Writer) (bool, error) {
	left, err := sess.state.LeftJournals()
	if err != nil {
		return false, err
	}
	recorded := false
	for _, l := range left {
		commit, err := sess.state.Recover(ctx, l)
		if err != nil {
			return recorded, err
		}
		if commit != "" {
			recorded = true
			fmt.Fprintf(stderr, "zen: an apply was stopped before it recorded run %s: recorded the %d steps it had finished, as cancelled (zen runs show %s)\n", runIDs(l), l.Steps(), l.Runs[0].ID)
		}
	}
	return recorded, nil
}

// journalNotes are plan's warnings about journals stopped applies left:
// none while an apply runs in the clone, whose journal it is.
func journalNotes(ctx context.Context, sess *session) []string {
	lock, err := sess.state.LockApply(ctx, "zen plan", 0, nil)
	if err != nil {
		return nil
	}
	defer lock.Release()
	left, err := sess.state.LeftJournals()
	if err != nil {
		return []string{err.Error()}
	}
	var notes []string
	for _, l := range left {
		if n := l.Steps(); n > 0 {
			notes = append(notes, fmt.Sprintf("an apply was stopped before it recorded run %s: the next zen apply records the %d steps it had finished", runIDs(l), n))
		}
	}
	return notes
}

func runIDs(l *state.LeftJournal) string {
	var ids []string
	for _, r := range l.Runs {
		ids = append(ids, r.ID)
	}
	return strings.Join(ids, ", ")
}

// lockWaiting says on stderr that the command waits for the clone's apply
// lock, and how to stop waiting.
func lockWaiting(stderr io.Writer, timeout time.Duration) func(holder string) {
	return func(holder string) {
		fmt.Fprintf(stderr, "zen: waiting up to %s for %s to finish (Ctrl-C stops waiting)\n", timeout, holder)
	}
}
