package cli

import (
	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/view"
)

func newMetrics(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "metrics",
		Short: "Show and compare the metrics runs recorded",
		Long: `Metrics reads the metrics recorded with runs: a step records some by writing
a JSON object of numbers to $ZEN_METRICS (nested objects become dotted
names), and a cached step carries those of the run that made its outputs.
RUN is a run id, a unique prefix of one, or "latest", as zen runs show
takes them. --output markdown writes a GitHub-flavoured table for a
pull-request comment.`,
	}
	show := &cobra.Command{
		Use:   "show [RUN]",
		Short: "Show every step's metrics in a run (default: the latest)",
		Long: `Show prints the metrics every step of RUN recorded (default: the latest run),
a row per step and metric. A run whose steps recorded none says so, and
exits 0.`,
		Example: "  zen metrics show\n  zen metrics show 20261123-101500 --output json\n  zen metrics show latest --output markdown >> comment.md",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := openRead(cmd, g, false)
			if err != nil {
				return err
			}
			run := "latest"
			if len(args) > 0 {
				run = args[0]
			}
			m, err := sess.Metrics(run)
			if err != nil {
				return err
			}
			switch g.output {
			case "json":
				return writeJSON(g.stdout, m)
			case "markdown":
				return view.MetricsMarkdown(g.stdout, m)
			}
			return view.Metrics(g.stdout, m)
		},
	}
	diff := &cobra.Command{
		Use:   "diff [A [B]]",
		Short: "Compare the metrics of run A against run B",
		Long: `Diff compares the metrics of run A (the old) against run B (the new), a row
per step and metric: both values, the delta B - A and its percentage of A.
Without B, B is the latest run; without A, A is the run before B of the
same pipeline. Rows are marked ~ changed, + only in B, - only in A,
= unchanged; a metric one run lacks shows — on that side. Runs of two
pipelines can be compared: the first line says so.`,
		Example: "  zen apply --set training.lr=0.01\n  zen metrics diff\n  zen metrics diff 20261123-101500 latest --output markdown >> comment.md",
		Args:    cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd, g, args, (*zen.Project).MetricsDiff)
		},
	}
	cmd.AddCommand(show, diff)
	return cmd
}

func newParams(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "params",
		Short: "Compare the parameters runs were recorded with",
		Long: `Params reads the parameters recorded with runs: the pipeline's, with an
experiment's --set overrides applied. RUN is a run id, a unique prefix of
one, or "latest", as zen runs show takes them.`,
	}
	diff := &cobra.Command{
		Use:   "diff [A [B]]",
		Short: "Compare the parameters of run A against run B",
		Long: `Diff compares the parameters of run A (the old) against run B (the new), a
row per parameter (a struct parameter's fields as PARAM.FIELD): both
values, and for numbers the delta B - A and its percentage of A; other
values are changed or unchanged. Without B, B is the latest run; without
A, A is the run before B of the same pipeline. Rows are marked as zen
metrics diff marks them.`,
		Example: "  zen apply --set training.lr=0.01\n  zen params diff\n  zen params diff 20261123-101500 latest --output json",
		Args:    cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd, g, args, (*zen.Project).ParamsDiff)
		},
	}
	cmd.AddCommand(diff)
	return cmd
}

// runDiff reads the runs args name (A, B) and draws what diff makes of
// them in the --output format.
func runDiff(cmd *cobra.Command, g *globals, args []string, diff func(*zen.Project, string, string) (*zen.Diff, error)) error {
	sess, err := openRead(cmd, g, false)
	if err != nil {
		return err
	}
	var a, b string
	if len(args) > 0 {
		a = args[0]
	}
	if len(args) > 1 {
		b = args[1]
	}
	d, err := diff(sess.Project, a, b)
	if err != nil {
		return err
	}
	switch g.output {
	case "json":
		return writeJSON(g.stdout, d)
	case "markdown":
		return view.DiffMarkdown(g.stdout, d)
	}
	return view.Diff(g.stdout, d)
}

// markdownOK says whether cmd writes --output markdown: zen plan, and the
// metrics and params commands.
func markdownOK(cmd *cobra.Command) bool {
	if cmd.Name() == "plan" {
		return true
	}
	p := cmd.Parent()
	return p != nil && p.Parent() != nil && !p.Parent().HasParent() && (p.Name() == "metrics" || p.Name() == "params")
}
