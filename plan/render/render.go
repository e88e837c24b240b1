// Package render draws a plan for people (text) and machines (JSON).
package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/zen-dev/zen/plan"
	"github.com/zen-dev/zen/state"
)

// JSON writes the plan in its documented JSON form, with its summary.
func JSON(w io.Writer, p *plan.Plan) error {
	out := struct {
		*plan.Plan
		Summary plan.Summary `json:"summary"`
		Changes bool         `json:"changes"`
	}{p, p.Summary(), p.Changes()}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// Style colours text on a terminal; the zero Style draws plain text.
type Style struct{ Color bool }

func (s Style) paint(code, text string) string {
	if !s.Color {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s Style) action(a plan.Action) string {
	switch a {
	case plan.Create:
		return s.paint("32", a.Symbol())
	case plan.Run:
		return s.paint("33", a.Symbol())
	}
	return s.paint("2", a.Symbol())
}

// Text writes the plan for people, like:
//
//	pipeline training: run 2 of 3 steps
//	  = load       cached (key 3f2a9c1d7e4b)
//	  ~ train      code changed: steps/train.py
//	  ~ evaluate   upstream re-runs: train
//	Plan: 1 pipeline to run, 2 steps to run, 1 cached.
func Text(w io.Writer, p *plan.Plan, s Style) {
	Header(w, p, s)
	for _, pl := range p.Pipelines {
		n := pl.ToRun()
		switch {
		case len(pl.Steps) == 0:
			fmt.Fprintf(w, "pipeline %s: no steps\n", pl.Name)
		case n == 0 && len(pl.Steps) == 1:
			fmt.Fprintf(w, "pipeline %s: 1 step cached%s\n", pl.Name, BaselineNote(pl.Baseline))
		case n == 0:
			fmt.Fprintf(w, "pipeline %s: all %d steps cached%s\n", pl.Name, len(pl.Steps), BaselineNote(pl.Baseline))
		default:
			fmt.Fprintf(w, "pipeline %s: run %d of %d steps\n", pl.Name, n, len(pl.Steps))
		}
		width := 0
		for _, st := range pl.Steps {
			width = max(width, len(st.Name))
		}
		for _, st := range pl.Steps {
			fmt.Fprintf(w, "  %s %-*s  %s%s\n", s.action(st.Action), width, st.Name, Why(st), resources(st))
			if st.Image != nil && st.Image.Tagged() {
				fmt.Fprintf(w, "    %-*s  image %s → %s\n", width, "", st.Image.Declared, st.Image.Digest())
			}
		}
	}
	if len(p.Models) > 0 {
		fmt.Fprintln(w, "models:")
	}
	for _, c := range p.Models {
		fmt.Fprintln(w, "  "+ModelLine(c, s))
	}
	if len(p.Deployments) > 0 && p.Preview == nil {
		fmt.Fprintln(w, "deployments:")
		for _, c := range p.Deployments {
			fmt.Fprintln(w, "  "+DeploymentLine(c, s))
		}
	}
	fmt.Fprintln(w, Summary(p))
}

// ModelLine renders a model change:
//
//   - model fraud-detector 1.1.0 from training.train.model
//     ~ stage fraud-detector/production 1.0.0 → 1.1.0, gate roc_auc >= 0.85: 0.91 ✓
//     ~ stage fraud-detector/production 1.1.0 → 1.0.0: rollback to a version this stage held from …
func ModelLine(c *plan.ModelChange, s Style) string {
	mark := s.action(c.Action)
	if c.Action == plan.Delete {
		mark = s.paint("31", "-")
	}
	if c.Refused != "" {
		mark = s.paint("31", "!")
	}
	var line string
	switch {
	case c.Action == plan.Repair:
		got := "is gone from the store"
		if c.Drift != "" {
			got = "points at " + c.Drift + " in the store"
		}
		line = fmt.Sprintf("%s repair stage %s/%s → %s: its tag %s, the record says %s (moved outside zen)", s.paint("33", "~"), c.Model, c.Stage, c.Version, got, c.Digest)
	case c.IsVersion():
		line = fmt.Sprintf("%s model %s %s from %s", mark, c.Model, c.Version, c.From)
	case c.Action == plan.Delete:
		line = fmt.Sprintf("%s stage %s/%s (was %s) is no longer declared", mark, c.Model, c.Stage, c.Version)
	default:
		from := c.From
		if from == "" {
			from = "(none)"
		}
		line = fmt.Sprintf("%s stage %s/%s %s → %s", mark, c.Model, c.Stage, from, c.Version)
	}
	switch {
	case c.Rollback != nil:
		line += ": " + RollbackNote(c.Rollback)
	case len(c.GateResults) > 0:
		line += ", gate " + strings.Join(c.GateResults, " && ")
	case c.GatePending:
		line += ", gate " + c.Gate + " (checked after the run)"
	}
	if c.Unsigned != "" {
		line += " " + s.paint("31", "UNSIGNED") + " (" + c.Unsigned + ")"
	}
	if c.Refused != "" {
		line += ": refused: " + c.Refused
	}
	return line
}

// RollbackNote says which earlier tenure a rollback returns to and what
// its gate gave then: "rollback to a version this stage held from
// 2026-11-23 10:15 UTC to 2026-11-24 09:00 UTC; gate passed then: score
// >= 0.5: 0.8 ✓".
func RollbackNote(t *state.Tenure) string {
	note := fmt.Sprintf("rollback to a version this stage held from %s to %s", When(t.From), When(t.To))
	switch {
	case t.Gate == nil:
		return note + "; no gate result recorded then"
	case t.Gate.Passed:
		return note + "; gate passed then: " + t.Gate.String()
	}
	return note + "; gate then: " + t.Gate.String()
}

// BaselineNote says, after a pipeline whose steps are all cached, that
// apply moves its baseline and why: "; baseline moves from 1a2b3c4d5e6f
// (other keys: train, evaluate)". It is "" for nil.
func BaselineNote(b *plan.Baseline) string {
	if b == nil {
		return ""
	}
	from := "none recorded"
	if b.From != "" {
		from = "from " + short(b.From)
	}
	return fmt.Sprintf("; baseline moves (%s; other keys: %s)", from, strings.Join(b.Steps, ", "))
}

// When is a recorded time as plan and history print it, in UTC to the
// minute, so that the same plan reads the same on every machine.
func When(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// Header writes what the plan was made from and warnings about it.
func Header(w io.Writer, p *plan.Plan, s Style) {
	src := "no commit yet"
	if p.Source.Commit != "" {
		src = "source " + short(p.Source.Commit)
	}
	fmt.Fprintf(w, "stack %s (artifact store %s), %s\n", p.Stack, p.Store, src)
	if p.Source.Dirty {
		fmt.Fprintf(w, "%s the work tree has uncommitted changes (%s): runs will be recorded as dirty (%s)\n",
			s.paint("33", "!"), plural(len(p.Source.Changed), "path"), short(strings.TrimPrefix(p.Source.DirtyDigest, "sha256:")))
	}
	if p.Preview != nil {
		fmt.Fprintf(w, "%s %s\n", s.paint("33", "!"), PreviewNote(p.Preview))
	}
	if len(p.Overrides) > 0 {
		var sets []string
		for _, o := range p.Overrides {
			b, _ := json.Marshal(o.Value)
			sets = append(sets, o.Path+"="+string(b))
		}
		fmt.Fprintf(w, "%s experiment: %s (recorded as an experiment; the pipeline's baseline is not updated)\n", s.paint("33", "!"), strings.Join(sets, ", "))
	}
	for _, warning := range p.Warnings {
		fmt.Fprintf(w, "%s %s\n", s.paint("33", "!"), warning)
	}
	fmt.Fprintln(w)
}

// PreviewNote says what a preview's apply records, and what it leaves
// to the apply after the merge.
func PreviewNote(pv *plan.Preview) string {
	return fmt.Sprintf("preview of branch %s: runs are recorded on %s only; the model versions and stage moves below are what the apply after the merge makes", pv.Branch, pv.Ref)
}

// Why explains a step's action in one line.
func Why(st *plan.Step) string {
	if st.Action == plan.Cached {
		if st.Preview != "" {
			return fmt.Sprintf("cached (key %s, from run %s, preview of %s)", short(st.Key), st.CachedFrom, st.Preview)
		}
		return fmt.Sprintf("cached (key %s, from run %s)", short(st.Key), st.CachedFrom)
	}
	parts := make([]string, len(st.Reasons))
	for i, r := range st.Reasons {
		parts[i] = r.String()
	}
	return strings.Join(parts, "; ")
}

// Summary is the plan's last line.
func Summary(p *plan.Plan) string {
	sum := p.Summary()
	var models string
	if sum.Versions > 0 {
		models += ", " + plural(sum.Versions, "new version")
	}
	if sum.Promotions > 0 {
		models += ", " + plural(sum.Promotions, "stage change")
	}
	if sum.Refused > 0 {
		models += fmt.Sprintf(", %d refused", sum.Refused)
	}
	if sum.Repairs > 0 {
		models += ", " + plural(sum.Repairs, "drifted tag") + " to repair"
	}
	if sum.Baselines > 0 {
		models += ", " + plural(sum.Baselines, "baseline") + " to move"
	}
	if sum.Deployments > 0 && p.Preview == nil {
		models += ", " + plural(sum.Deployments, "deployment") + " to change"
	}
	if p.Preview != nil {
		if sum.Run == 0 {
			return fmt.Sprintf("Preview: %s cached, nothing to run; after the merge%s.", plural(sum.Cached, "step"), afterMerge(models))
		}
		return fmt.Sprintf("Preview: %s to run, %s to run, %d cached; after the merge%s.", plural(sum.Pipelines, "pipeline"), plural(sum.Run, "step"), sum.Cached, afterMerge(models))
	}
	if !p.Changes() {
		return fmt.Sprintf("No changes. %s cached; nothing to run%s.", plural(sum.Cached, "step"), models)
	}
	if sum.Run == 0 {
		return fmt.Sprintf("Plan: %s; %s cached, none to run.", strings.TrimPrefix(models, ", "), plural(sum.Cached, "step"))
	}
	return fmt.Sprintf("Plan: %s to run, %s to run, %d cached%s.", plural(sum.Pipelines, "pipeline"), plural(sum.Run, "step"), sum.Cached, models)
}

// afterMerge is what a preview's model changes come to: ": 1 new
// version, 1 stage change", or ": no model changes".
func afterMerge(models string) string {
	if models == "" {
		return ": no model changes"
	}
	return ":" + strings.TrimPrefix(models, ",")
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// resources describes what a step that runs asks for: " [cpus 4, memory
// 8G, gpus 1, time 2h, partition gpu]", or "".
func resources(st *plan.Step) string {
	r := st.Resources
	if r == nil || !st.Runs() {
		return ""
	}
	var parts []string
	if r.CPUs > 0 {
		parts = append(parts, fmt.Sprintf("cpus %d", r.CPUs))
	}
	if r.Memory != "" {
		parts = append(parts, "memory "+r.Memory)
	}
	if r.GPUs > 0 {
		parts = append(parts, fmt.Sprintf("gpus %d", r.GPUs))
	}
	if r.Time != "" {
		parts = append(parts, "time "+r.Time)
	}
	if r.Partition != "" {
		parts = append(parts, "partition "+r.Partition)
	}
	if len(r.Sbatch) > 0 {
		parts = append(parts, "sbatch "+strings.Join(r.Sbatch, " "))
	}
	if len(parts) == 0 {
		return ""
	}
	return " [" + strings.Join(parts, ", ") + "]"
}
