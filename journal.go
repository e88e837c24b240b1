package zen

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/zen-dev/zen/state"
)

// RecoverJournals records what applies stopped on the way (killed, or
// ended by a crash) had finished, from the journals they left in the
// clone, saying so on log. The caller holds the apply lock. It reports
// whether anything was recorded.
func (p *Project) RecoverJournals(ctx context.Context, log io.Writer) (bool, error) {
	return recoverJournals(ctx, p.state, log)
}

// recoverJournals records what the stopped applies to st's ref had
// finished (see RecoverJournals).
func recoverJournals(ctx context.Context, st *state.Store, log io.Writer) (bool, error) {
	left, err := st.LeftJournals()
	if err != nil {
		return false, err
	}
	recorded := false
	for _, l := range left {
		commit, err := st.Recover(ctx, l)
		if err != nil {
			return recorded, err
		}
		if commit != "" {
			recorded = true
			fmt.Fprintf(log, "zen: an apply was stopped before it recorded run %s: recorded the %d steps it had finished, as cancelled (zen runs show %s)\n", runIDs(l), l.Steps(), l.Runs[0].ID)
		}
	}
	return recorded, nil
}

// journalNotes are plan's warnings about journals stopped applies left:
// none while an apply runs in the clone, whose journal it is.
func (p *Project) journalNotes(ctx context.Context) []string {
	lock, err := p.state.LockApply(ctx, "zen plan", 0, nil)
	if err != nil {
		return nil
	}
	defer lock.Release()
	left, err := p.state.LeftJournals()
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
