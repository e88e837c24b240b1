package view

import (
	"fmt"
	"io"
	"strings"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/plan/render"
)

// History draws a model's events a line each, oldest first as given:
// when, what changed, the state commit, who applied it and the source
// commit with its subject. Under a stage move is the gate it passed, or
// for a rollback the tenure it went back to, indented so that the event
// lines stay greppable by stage.
func History(out io.Writer, events []zen.ModelEvent) error {
	w := &writer{w: out}
	for _, e := range events {
		var what string
		switch {
		case e.Kind == zen.EventVersion:
			what = fmt.Sprintf("+ version %s %s", e.Version, Short(strings.TrimPrefix(e.Digest, "sha256:")))
		case e.Version == "":
			what = fmt.Sprintf("- stage %s (was %s)", e.Stage, e.From)
		default:
			from := e.From
			if from == "" {
				from = "(none)"
			}
			what = fmt.Sprintf("~ stage %s %s → %s", e.Stage, from, e.Version)
			if e.Rollback != nil {
				what += " (rollback)"
			}
		}
		src := Short(e.SourceCommit)
		if e.Source != "" {
			src += fmt.Sprintf(" %q", e.Source)
		}
		fmt.Fprintf(w, "%s  %-36s  state %s by %s, source %s\n", e.When.Local().Format("2006-01-02 15:04"), what, Short(e.StateCommit), e.AppliedBy, src)
		switch {
		case e.Rollback != nil:
			fmt.Fprintf(w, "%18s%s\n", "", render.RollbackNote(e.Rollback))
		case e.Gate != nil:
			fmt.Fprintf(w, "%18sgate %s\n", "", e.Gate.String())
		}
	}
	return w.err
}
