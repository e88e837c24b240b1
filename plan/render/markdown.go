package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/zen-dev/zen/plan"
)

// Markdown writes the plan as a pull-request comment (GitHub and GitLab
// flavoured markdown): the summary line as a heading, what it was made
// from, then one collapsible section a pipeline, open when it has steps to
// run, with a table of its steps, and the model changes with their gates.
// It has no colour and no terminal codes.
func Markdown(w io.Writer, p *plan.Plan) {
	fmt.Fprintf(w, "### %s\n\n", mdEscape(Summary(p)))
	src := "no commit yet"
	if p.Source.Commit != "" {
		src = "source `" + short(p.Source.Commit) + "`"
	}
	state := "no state recorded yet"
	if p.StateCommit != "" {
		state = "state `" + short(p.StateCommit) + "`"
	}
	fmt.Fprintf(w, "Stack `%s` (%s) · %s · %s\n", p.Stack, mdEscape(p.Store), src, state)
	var notes []string
	if p.Preview != nil {
		notes = append(notes, PreviewNote(p.Preview))
	}
	if p.Source.Dirty {
		notes = append(notes, fmt.Sprintf("the work tree has uncommitted changes (%s): runs will be recorded as dirty", plural(len(p.Source.Changed), "path")))
	}
	for _, o := range p.Overrides {
		b, _ := json.Marshal(o.Value)
		notes = append(notes, fmt.Sprintf("experiment: `%s=%s`", o.Path, b))
	}
	notes = append(notes, p.Warnings...)
	if len(notes) > 0 {
		fmt.Fprintln(w)
	}
	for _, n := range notes {
		fmt.Fprintf(w, "> **!** %s\n", mdEscape(n))
	}
	for _, pl := range p.Pipelines {
		n := pl.ToRun()
		open, what := "", fmt.Sprintf("run %d of %d steps", n, len(pl.Steps))
		switch {
		case n > 0:
			open = " open"
		case len(pl.Steps) == 1:
			what = "1 step cached"
		default:
			what = fmt.Sprintf("all %d steps cached", len(pl.Steps))
		}
		if n == 0 {
			what += mdEscape(BaselineNote(pl.Baseline))
		}
		fmt.Fprintf(w, "\n<details%s><summary>pipeline <b>%s</b>: %s</summary>\n\n", open, pl.Name, what)
		fmt.Fprintln(w, "| | step | why |")
		fmt.Fprintln(w, "|---|---|---|")
		for _, st := range pl.Steps {
			why := Why(st)
			if st.Image != nil && st.Image.Tagged() {
				why += "; image " + st.Image.Declared + " → " + st.Image.Digest()
			}
			fmt.Fprintf(w, "| `%s` | %s | %s |\n", st.Action.Symbol(), st.Name, mdEscape(why))
		}
		fmt.Fprintln(w, "\n</details>")
	}
	if len(p.Models) > 0 {
		fmt.Fprintln(w, "\n**Models**")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| | change |")
		fmt.Fprintln(w, "|---|---|")
		for _, c := range p.Models {
			mark, line, _ := strings.Cut(ModelLine(c, Style{}), " ")
			fmt.Fprintf(w, "| `%s` | %s |\n", mark, mdEscape(line))
		}
	}
	if len(p.Deployments) > 0 && p.Preview == nil {
		fmt.Fprintln(w, "\n**Deployments**")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| | change |")
		fmt.Fprintln(w, "|---|---|")
		for _, c := range p.Deployments {
			mark, line, _ := strings.Cut(DeploymentLine(c, Style{}), " ")
			fmt.Fprintf(w, "| `%s` | %s |\n", mark, mdEscape(line))
		}
	}
}

// mdEscape keeps text from breaking a table cell or turning into markup.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`, "`", "\\`", "\n", " ").Replace(s)
}
