package view

import (
	"fmt"
	"io"
	"strings"

	"github.com/zen-dev/zen/apply"
	"github.com/zen-dev/zen/state"
)

// Applied draws what an apply did, after a blank line: a line per run
// with how its steps ended, the baselines that moved, the model changes,
// the state commit recorded on ref, and for a detached apply how its
// runs get recorded.
func Applied(out io.Writer, res *apply.Result, ref string) error {
	w := &writer{w: out}
	fmt.Fprintln(w)
	for _, r := range res.Runs {
		ran, cached, failed, submitted := 0, 0, 0, 0
		for _, s := range r.Steps {
			switch s.Status {
			case state.StatusSucceeded:
				ran++
			case state.StatusCached:
				cached++
			case state.StatusSubmitted:
				submitted++
			default:
				failed++
			}
		}
		line := fmt.Sprintf("run %s of %s %s: %d ran, %d cached", r.ID, r.Pipeline, r.Status, ran, cached)
		if r.Status == state.StatusSubmitted {
			line = fmt.Sprintf("run %s of %s submitted: %d jobs, %d cached", r.ID, r.Pipeline, submitted, cached)
		}
		if failed > 0 {
			line += fmt.Sprintf(", %d did not complete", failed)
		}
		var tags []string
		if r.Dirty {
			tags = append(tags, "dirty")
		}
		if r.Experiment {
			tags = append(tags, "experiment")
		}
		if len(tags) > 0 {
			line += " (" + strings.Join(tags, ", ") + ")"
		}
		fmt.Fprintln(w, line)
		if r.Error != "" {
			fmt.Fprintf(w, "  %s\n", r.Error)
		}
	}
	for _, name := range res.Baselines {
		fmt.Fprintf(w, "baseline of %s moved: every step cached, none ran\n", name)
	}
	for _, m := range res.Models {
		fmt.Fprintln(w, m)
	}
	if res.StateCommit != "" {
		fmt.Fprintf(w, "recorded on %s at %s\n", ref, Short(res.StateCommit))
	}
	for _, d := range res.Deployments {
		fmt.Fprintln(w, d)
	}
	if sub := res.Submission; sub != nil && sub.Jobs > 0 && res.Runs[0].Status == state.StatusSubmitted {
		fmt.Fprintf(w, "the jobs run on without zen: zen runs watch %s waits for them and records the run, as does the next zen apply\n", sub.Runs[0])
	}
	return w.err
}
