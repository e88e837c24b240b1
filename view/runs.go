package view

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/schema"
	"github.com/zen-dev/zen/state"
)

// RunTable draws runs as a table, a row each: id, pipeline, status, how
// many steps ended how, the source commit, and when it started.
func RunTable(w io.Writer, runs []*state.Run) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tPIPELINE\tSTATUS\tSTEPS\tSOURCE\tSTARTED")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Pipeline, r.Status, stepCounts(r), runSource(r), r.Started.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// stepCounts says how many of a run's steps ended how: "2 ran, 1 cached".
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

// runSource is a run's source commit in the table, marked when dirty or
// an experiment.
func runSource(r *state.Run) string {
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

// Run draws a run in detail: its source, experiment, stack, timing and
// parameters, then every step's result with its outputs and metrics.
func Run(out io.Writer, r *state.Run) error {
	w := &writer{w: out}
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
		fmt.Fprintf(w, "  experiment: %s\n", setsText(r.Overrides))
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
			fmt.Fprintf(w, "    %s = %s\n", schema.QuoteKey(k), zen.ValueText(r.Parameters[k]))
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
	return w.err
}
