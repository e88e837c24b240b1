package view

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/zen-dev/zen"
)

// missing stands for a metric or parameter a run does not have.
const missing = "—"

// Metrics draws a run's metrics as a table, a row per step and metric;
// a run without metrics says so.
func Metrics(out io.Writer, m *zen.RunMetrics) error {
	w := &writer{w: out}
	if len(m.Steps) == 0 {
		fmt.Fprintln(w, noMetrics(m))
		return w.err
	}
	fmt.Fprintf(w, "metrics of run %s (pipeline %s)\n", m.Run, m.Pipeline)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tMETRIC\tVALUE")
	for _, s := range m.Steps {
		step := s.Step
		if s.Status != "" && s.Status != "succeeded" {
			step += " (" + s.Status + ")"
		}
		for _, k := range slices.Sorted(maps.Keys(s.Metrics)) {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", step, k, num(s.Metrics[k]))
		}
	}
	tw.Flush()
	return w.err
}

// MetricsMarkdown draws a run's metrics as a GitHub-flavoured table.
func MetricsMarkdown(out io.Writer, m *zen.RunMetrics) error {
	w := &writer{w: out}
	if len(m.Steps) == 0 {
		fmt.Fprintln(w, noMetrics(m))
		return w.err
	}
	fmt.Fprintf(w, "**Metrics** of run `%s` (pipeline `%s`)\n\n", m.Run, m.Pipeline)
	fmt.Fprintln(w, "| Step | Metric | Value |")
	fmt.Fprintln(w, "| --- | --- | ---: |")
	for _, s := range m.Steps {
		for _, k := range slices.Sorted(maps.Keys(s.Metrics)) {
			fmt.Fprintf(w, "| %s | %s | %s |\n", cell(s.Step), cell(k), num(s.Metrics[k]))
		}
	}
	return w.err
}

func noMetrics(m *zen.RunMetrics) string {
	return fmt.Sprintf("no metrics recorded in run %s of %s: a step records some by writing a JSON object of numbers to $ZEN_METRICS", m.Run, m.Pipeline)
}

// Diff draws a metrics or parameters diff as a table: a row per metric
// (per step) or parameter, marked ~ changed, + only in the new run, -
// only in the old, = unchanged, with both values (— when missing), the
// delta and the percentage of numbers; other values are changed or
// unchanged.
func Diff(out io.Writer, d *zen.Diff) error {
	w := &writer{w: out}
	fmt.Fprintln(w, diffTitle(d, "%s", "run %s", "%s"))
	if len(d.Rows) == 0 {
		fmt.Fprintln(w, noRows(d))
		return w.err
	}
	rowsText(w, d.Kind, "OLD", "NEW", d.Rows)
	return w.err
}

// rowsText draws a diff's rows as a text table whose value columns are
// named old and new.
func rowsText(w io.Writer, kind, old, new string, rows []zen.DiffRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "\tSTEP\tMETRIC"
	if kind != "metrics" {
		head = "\tPARAMETER"
	}
	fmt.Fprintln(tw, head+"\t"+old+"\t"+new+"\tDELTA\t%")
	for _, r := range rows {
		name := r.Name
		if kind == "metrics" {
			name = r.Step + "\t" + r.Name
		}
		delta, pct := deltaText(r)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", mark(r.Change), name, value(r.Old), value(r.New), delta, pct)
	}
	tw.Flush()
}

// DiffMarkdown draws a metrics or parameters diff as a GitHub-flavoured
// table for a pull-request comment, with the new value of a change in
// bold.
func DiffMarkdown(out io.Writer, d *zen.Diff) error {
	w := &writer{w: out}
	fmt.Fprintln(w, diffTitle(d, "**%s**", "run `%s`", "`%s`"))
	fmt.Fprintln(w)
	if len(d.Rows) == 0 {
		fmt.Fprintln(w, noRows(d))
		return w.err
	}
	rowsMarkdown(w, d.Kind, "Old", "New", d.Rows)
	return w.err
}

// rowsMarkdown draws a diff's rows as a GitHub-flavoured table whose value
// columns are named old and new, the new value of a change in bold.
func rowsMarkdown(w io.Writer, kind, old, new string, rows []zen.DiffRow) {
	if kind == "metrics" {
		fmt.Fprintf(w, "| Step | Metric | %s | %s | Δ | %% |\n", old, new)
		fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: |")
	} else {
		fmt.Fprintf(w, "| Parameter | %s | %s | Δ | %% |\n", old, new)
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
	}
	for _, r := range rows {
		name := cell(r.Name)
		if kind == "metrics" {
			name = cell(r.Step) + " | " + name
		}
		nv := cell(value(r.New))
		if (r.Change == zen.Changed || r.Change == zen.Added) && r.New != nil {
			nv = "**" + nv + "**"
		}
		delta, pct := deltaText(r)
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", name, cell(value(r.Old)), nv, delta, pct)
	}
}

// diffTitle is a diff's first line; a diff of two pipelines' runs says so.
func diffTitle(d *zen.Diff, title, run, pipeline string) string {
	title = fmt.Sprintf(title, d.Kind)
	r := func(ref zen.RunRef) string {
		s := fmt.Sprintf(run, ref.ID)
		if ref.Preview != "" {
			s += " (preview of " + ref.Preview + ")"
		}
		return s
	}
	p := func(name string) string { return fmt.Sprintf(pipeline, name) }
	if d.SamePipeline() {
		return fmt.Sprintf("%s of pipeline %s: %s against %s", title, p(d.New.Pipeline), r(d.New), r(d.Old))
	}
	return fmt.Sprintf("%s of %s (pipeline %s) against %s (pipeline %s): runs of different pipelines", title, r(d.New), p(d.New.Pipeline), r(d.Old), p(d.Old.Pipeline))
}

func noRows(d *zen.Diff) string {
	if d.Kind == "metrics" {
		return "no metrics recorded in either run"
	}
	return "no parameters in either run"
}

// mark is a row's change as a plan marks it.
func mark(change string) string {
	switch change {
	case zen.Changed:
		return "~"
	case zen.Added:
		return "+"
	case zen.Removed:
		return "-"
	}
	return "="
}

// deltaText is a row's delta and percentage: signed numbers, "changed" or
// "unchanged" for text, "added" or "removed" for a value one run lacks,
// and — for a percentage of 0 or of text.
func deltaText(r zen.DiffRow) (string, string) {
	switch {
	case r.Change == zen.Added || r.Change == zen.Removed:
		return r.Change, missing
	case r.Delta == nil:
		return r.Change, missing
	case r.Percent == nil:
		return signed(*r.Delta), missing
	}
	return signed(*r.Delta), fmt.Sprintf("%+.1f%%", *r.Percent)
}

func signed(f float64) string {
	s := num(f)
	if f >= 0 {
		s = "+" + s
	}
	return s
}

// value shows a value of a diff: a number as recorded, text as it is, —
// when missing.
func value(v any) string {
	switch v := v.(type) {
	case nil:
		return missing
	case float64:
		return num(v)
	case string:
		return v
	}
	return fmt.Sprint(v)
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// cell escapes a table cell's pipes and line breaks.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.NewReplacer("\r\n", " ", "\n", " ").Replace(s)
}
