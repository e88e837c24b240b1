package view

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/schema"
)

// commitText is the commit as lineage prints it: its hash, subject, author and
// time, or that this clone lacks it.
func commitText(c zen.Commit) string {
	if c.Missing {
		return c.Commit + " (not in this clone: git fetch it)"
	}
	return fmt.Sprintf("%s %q by %s, %s", c.Commit, c.Subject, c.Author, c.When.Local().Format(time.DateTime))
}

// LineageText draws a model version's lineage as a tree: the version, its
// signature, the run and commits it came from, and every step upstream
// of its output with the step's command, parameters, code and inputs.
func LineageText(out io.Writer, l *zen.Lineage) error {
	w := &writer{w: out}
	fmt.Fprintf(w, "model %s %s %s\n", l.Model, l.Version, l.Digest)
	signed := "unsigned"
	if l.SignedBy != "" {
		signed = "signed by key " + l.SignedBy
	}
	fmt.Fprintf(w, "├─ %s\n", signed)
	fmt.Fprintf(w, "├─ from %s in run %s (%s, stack %s, %s)\n", l.Output, l.Run.ID, l.Run.Status, l.Run.Stack, l.Run.Started.Local().Format(time.DateTime))
	if !l.SameSource() {
		// The output was reused from a run of another commit, an
		// experiment or a dirty tree, with the keys the version's commit
		// gives.
		from := "run " + l.Run.ID + " ran from commit " + commitText(l.Run.Source)
		if l.Run.DirtyDigest != "" {
			from += ", with uncommitted changes " + l.Run.DirtyDigest
		}
		if len(l.Run.Overrides) > 0 {
			from += ", an experiment: " + setsText(l.Run.Overrides)
		}
		fmt.Fprintf(w, "├─ %s\n", from)
	}
	fmt.Fprintf(w, "├─ source commit %s (declares the version)\n", commitText(l.Source))
	for i, st := range l.Steps {
		branch, indent := "├─", "│  "
		if i == len(l.Steps)-1 {
			branch, indent = "└─", "   "
		}
		line := "step " + st.Name
		if st.RunID != "" {
			line += " (reused from run " + st.RunID + ")"
		}
		fmt.Fprintf(w, "%s %s\n", branch, line)
		var items []string
		if len(st.Command) > 0 {
			items = append(items, "command: "+strings.Join(st.Command, " "))
		}
		for _, k := range slices.Sorted(maps.Keys(st.Parameters)) {
			items = append(items, fmt.Sprintf("parameter %s = %s", schema.QuoteKey(k), st.Parameters[k]))
		}
		for _, k := range slices.Sorted(maps.Keys(st.Code)) {
			items = append(items, fmt.Sprintf("code %s %s", k, st.Code[k]))
		}
		for _, in := range st.Inputs {
			items = append(items, fmt.Sprintf("input %s ← %s %s", in.Name, in.Source, in.Digest))
		}
		for _, k := range slices.Sorted(maps.Keys(st.Outputs)) {
			items = append(items, fmt.Sprintf("output %s %s", k, st.Outputs[k].Digest))
		}
		for j, it := range items {
			b := "├─"
			if j == len(items)-1 {
				b = "└─"
			}
			fmt.Fprintf(w, "%s%s %s\n", indent, b, it)
		}
	}
	return w.err
}

// lineageEdges lists the lineage graph: from → to, with a label.
func lineageEdges(l *zen.Lineage) [][3]string {
	model := "model " + l.Model + " " + l.Version
	var out [][3]string
	out = append(out, [3]string{"step " + strings.SplitN(strings.TrimPrefix(l.Output, l.Run.Pipeline+"."), ".", 2)[0], model, strings.SplitN(l.Output, ".", 3)[2]})
	for _, st := range l.Steps {
		for _, in := range st.Inputs {
			from := in.Source
			if in.Step != "" {
				from = "step " + in.Step
			}
			out = append(out, [3]string{from, "step " + st.Name, in.Name})
		}
	}
	out = append(out, [3]string{"commit " + Short(l.Run.Source.Commit), "run " + l.Run.ID, "source"}, [3]string{"run " + l.Run.ID, model, "produced"})
	if l.Run.Source.Commit != l.Source.Commit {
		out = append(out, [3]string{"commit " + Short(l.Source.Commit), model, "declared"})
	}
	return out
}

// LineageDot draws a model version's lineage for Graphviz: steps, inputs,
// the run and the commits, with an edge for each input and output.
func LineageDot(out io.Writer, l *zen.Lineage) error {
	w := &writer{w: out}
	fmt.Fprintln(w, "digraph lineage {")
	fmt.Fprintln(w, "  rankdir=LR;")
	for _, e := range lineageEdges(l) {
		fmt.Fprintf(w, "  %q -> %q [label=%q];\n", e[0], e[1], e[2])
	}
	fmt.Fprintln(w, "}")
	return w.err
}

// LineageMermaid draws the graph LineageDot draws, for Mermaid.
func LineageMermaid(out io.Writer, l *zen.Lineage) error {
	w := &writer{w: out}
	fmt.Fprintln(w, "flowchart LR")
	ids := map[string]string{}
	id := func(n string) string {
		if _, ok := ids[n]; !ok {
			ids[n] = fmt.Sprintf("n%d", len(ids))
		}
		return ids[n]
	}
	for _, e := range lineageEdges(l) {
		fmt.Fprintf(w, "  %s[%q] -->|%s| %s[%q]\n", id(e[0]), e[0], e[2], id(e[1]), e[1])
	}
	return w.err
}
