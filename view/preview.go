package view

import (
	"fmt"
	"io"
	"strings"

	"github.com/zen-dev/zen"
)

// PreviewReport draws what a preview ran, beside its plan: per pipeline
// the preview's run against the state ref's latest (metrics, and the
// parameters that changed), the steps that failed with their logs' tails,
// then each stage the merge would move, challenger against champion.
func PreviewReport(out io.Writer, rep *zen.PreviewReport) error {
	w := &writer{w: out}
	fmt.Fprintf(w, "\npreview of branch %s:\n", rep.Branch)
	for _, pp := range rep.Pipelines {
		fmt.Fprintf(w, "pipeline %s: %s\n", pp.Pipeline, previewLine(pp, "%s"))
		if pp.Metrics != nil {
			if len(pp.Metrics.Rows) == 0 {
				fmt.Fprintln(w, "  "+noRows(pp.Metrics))
			} else {
				rowsText(indent(w), "metrics", "BASE", "PREVIEW", pp.Metrics.Rows)
			}
		}
		if rows := changedRows(pp.Params); len(rows) > 0 {
			rowsText(indent(w), "parameters", "BASE", "PREVIEW", rows)
		}
		for _, f := range pp.Failures {
			fmt.Fprintf(w, "  ✗ step %s %s: %s\n", f.Step, f.Status, f.Reason)
			if f.LogError != "" {
				fmt.Fprintf(w, "    (no log: %s)\n", f.LogError)
			}
			for _, l := range f.LogTail {
				fmt.Fprintf(w, "    | %s\n", l)
			}
		}
		if pp.PlotError != "" {
			fmt.Fprintf(w, "  plots: %s\n", pp.PlotError)
		}
		for _, p := range pp.Plots {
			fmt.Fprintf(w, "  plot %s: %s (zen plots %s draws it)\n", p.Name, p.Title, pp.Run)
		}
	}
	for _, c := range rep.Challenges {
		fmt.Fprintf(w, "challenger %s %s against champion %s in %s:\n", c.Model, c.Challenger, c.Champion, c.Stage)
		rowsText(indent(w), "metrics", "CHAMPION", "CHALLENGER", c.Rows)
		fmt.Fprintf(w, "  %s\n", challengeVerdict(c))
	}
	return w.err
}

// PreviewReportMarkdown draws a preview's report for a pull-request
// comment, under the plan's markdown.
//
// link gives where a pipeline's plot can be seen (the file zen plan
// --plots wrote, as the forge serves it); nil, or "", lists the plot by
// name, for zen plots RUN to draw.
func PreviewReportMarkdown(out io.Writer, rep *zen.PreviewReport, link func(pipeline string, p *zen.Plot) string) error {
	w := &writer{w: out}
	fmt.Fprintf(w, "\n#### Preview of `%s`\n", rep.Branch)
	for _, pp := range rep.Pipelines {
		open := ""
		if pp.Metrics != nil || len(pp.Failures) > 0 {
			open = " open"
		}
		fmt.Fprintf(w, "\n<details%s><summary>pipeline <b>%s</b>: %s</summary>\n\n", open, pp.Pipeline, previewLine(pp, "<code>%s</code>"))
		for _, f := range pp.Failures {
			fmt.Fprintf(w, "**✗ step `%s` %s**: %s\n\n", f.Step, f.Status, cell(f.Reason))
			if f.LogError != "" {
				fmt.Fprintf(w, "(no log: %s)\n\n", cell(f.LogError))
			}
			if len(f.LogTail) > 0 {
				fence := "```"
				for strings.Contains(strings.Join(f.LogTail, "\n"), fence) {
					fence += "`"
				}
				fmt.Fprintf(w, "%stext\n%s\n%s\n\n", fence, strings.Join(f.LogTail, "\n"), fence)
			}
		}
		if pp.Metrics != nil {
			if len(pp.Metrics.Rows) == 0 {
				fmt.Fprintln(w, noRows(pp.Metrics))
			} else {
				rowsMarkdown(w, "metrics", "Base", "Preview", pp.Metrics.Rows)
			}
		}
		if rows := changedRows(pp.Params); len(rows) > 0 {
			fmt.Fprintln(w)
			rowsMarkdown(w, "parameters", "Base", "Preview", rows)
		}
		if pp.PlotError != "" {
			fmt.Fprintf(w, "\n**Plots**: %s\n", cell(pp.PlotError))
		}
		if len(pp.Plots) > 0 {
			fmt.Fprintln(w, "\n**Plots**")
			fmt.Fprintln(w)
		}
		for _, p := range pp.Plots {
			url := ""
			if link != nil {
				url = link(pp.Pipeline, p)
			}
			if url == "" {
				fmt.Fprintf(w, "- %s (`%s`; zen plots %s draws it)\n", cell(p.Title), p.Name, pp.Run)
				continue
			}
			fmt.Fprintf(w, "- [%s](%s) (`%s`)\n", cell(p.Title), url, p.Name)
		}
		fmt.Fprintln(w, "\n</details>")
	}
	for _, c := range rep.Challenges {
		fmt.Fprintf(w, "\n**Challenger** `%s` %s against **champion** %s in `%s`: %s\n\n", c.Model, c.Challenger, c.Champion, c.Stage, cell(challengeVerdict(c)))
		rowsMarkdown(w, "metrics", "Champion", "Challenger", c.Rows)
	}
	return w.err
}

// previewLine says what a preview did of a pipeline; code formats a run
// id.
func previewLine(pp *zen.PreviewPipeline, code string) string {
	var line string
	switch {
	case pp.Run == "":
		line = "nothing ran in the preview (every step was cached)"
	default:
		line = fmt.Sprintf("preview run "+code+" %s", pp.Run, pp.Status)
	}
	switch {
	case pp.Base == "":
		line += "; no run of it on the state ref to compare with"
	case pp.Run != "":
		line += fmt.Sprintf(", against run "+code+", the state ref's latest", pp.Base)
	}
	return line
}

// challengeVerdict is the gate's result on the challenger, or says there
// is no gate.
func challengeVerdict(c *zen.Challenge) string {
	v := "no gate"
	if len(c.Gate) > 0 {
		v = "gate " + strings.Join(c.Gate, " && ")
	}
	if c.Refused != "" {
		v += ": refused: " + c.Refused
	}
	return v
}

// changedRows are the rows of d that are not unchanged.
func changedRows(d *zen.Diff) []zen.DiffRow {
	if d == nil {
		return nil
	}
	var rows []zen.DiffRow
	for _, r := range d.Rows {
		if r.Change != zen.Unchanged {
			rows = append(rows, r)
		}
	}
	return rows
}

// indent prefixes every line written to w with two spaces.
func indent(w io.Writer) io.Writer { return &indenter{w: w, start: true} }

type indenter struct {
	w     io.Writer
	start bool
}

func (in *indenter) Write(p []byte) (int, error) {
	var b strings.Builder
	for _, c := range string(p) {
		if in.start {
			b.WriteString("  ")
		}
		b.WriteRune(c)
		in.start = c == '\n'
	}
	if _, err := io.WriteString(in.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}
