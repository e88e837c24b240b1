package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/view/chart"
)

func newPlots(g *globals) *cobra.Command {
	var (
		q             zen.PlotsQuery
		run, out      string
		format, stack string
		size          = chart.DefaultSize
	)
	cmd := &cobra.Command{
		Use:   "plots [RUN]",
		Short: "Draw metrics across runs or model versions, or a run's plot outputs, as SVG or PNG",
		Long: `Plots draws charts with what runs recorded.

With --metric, it draws metrics across the runs of a pipeline (--pipeline;
default: the latest run's), a line per metric, x the run's number in its
pipeline, oldest first; or across the versions of a model (--model), from
the metrics each version record keeps. A metric is named as zen metrics
show prints it: STEP.METRIC, or METRIC alone where one step records it. A
run or version without a metric has no point on its line. -o FILE.svg or
FILE.png writes it there (default: plots/PIPELINE.svg, plots/models/MODEL.svg).

With RUN (or --run), it draws every output of type plot that RUN recorded,
fetched from the artifact store as zen artifacts get fetches it, into the
folder -o DIR (default: plots/RUN), a file STEP.OUTPUT.svg each. A plot
output is a CSV file with a header, or a JSON list of objects; the CUE's
x, y and title say how to draw it.

zen plots prints each path it wrote, and overwrites the files it draws.
--output json prints the points instead, and writes nothing. RUN is a run
id, a unique prefix of one, or "latest", as zen runs show takes them.`,
		Example: `  zen plots --metric train.accuracy --metric loss.train
  zen plots --model iris-classifier --metric accuracy -o accuracy.png
  zen plots latest -o plots/latest --format png`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				if run != "" && run != args[0] {
					return fmt.Errorf("two runs, %s and --run %s: name one", args[0], run)
				}
				run = args[0]
			}
			f, err := plotFormat(format, out, run == "")
			if err != nil {
				return err
			}
			if run != "" {
				for _, flag := range []string{"metric", "pipeline", "model", "last"} {
					if cmd.Flags().Changed(flag) {
						return fmt.Errorf("--%s is for metrics across runs; RUN draws the run's plot outputs", flag)
					}
				}
				return plotRun(cmd, g, run, stack, out, f, size)
			}
			if cmd.Flags().Changed("stack") {
				return errors.New("--stack is for RUN's plot outputs, which are fetched from an artifact store; metrics are read from the state ref")
			}
			return plotMetrics(cmd, g, q, out, f, size)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&q.Pipeline, "pipeline", "", "draw across this pipeline's runs (default: the latest run's pipeline)")
	fl.StringVar(&q.Model, "model", "", "draw across this model's versions")
	fl.StringArrayVar(&q.Metrics, "metric", nil, "a metric to draw, `STEP.METRIC` or METRIC (repeat for more lines)")
	fl.IntVar(&q.Last, "last", 0, "draw the newest `N` runs or versions (default: all)")
	fl.StringVar(&run, "run", "", "draw the plot outputs of `RUN`, as RUN does")
	fl.StringVarP(&out, "out", "o", "", "write to `PATH`: FILE.svg or FILE.png; for RUN, a folder")
	fl.StringVar(&format, "format", "", "svg or png (default: -o's extension, else svg)")
	fl.IntVar(&size.Width, "width", size.Width, "the image's width in `PIXELS`")
	fl.IntVar(&size.Height, "height", size.Height, "the image's height in `PIXELS`")
	fl.StringVar(&stack, "stack", "", "read RUN's plot outputs from this stack's artifact store (default: the run's stack)")
	completeArgs(cmd, cobra.ShellCompDirectiveNoFileComp, recordedRuns, nothing)
	_ = cmd.RegisterFlagCompletionFunc("run", func(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return recordedRuns(nil), cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("model", func(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return modelNames(nil), cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("format", func(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return []string{string(chart.SVG), string(chart.PNG)}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// plotFormat is the format --format names, else -o's extension where -o
// names a file, else SVG; a --format that -o's extension contradicts is
// refused.
func plotFormat(format, out string, file bool) (chart.Format, error) {
	var f chart.Format
	if format != "" {
		var err error
		if f, err = chart.ParseFormat(format); err != nil {
			return "", fmt.Errorf("--format: %w", err)
		}
	}
	if out == "" {
		return orSVG(f), nil
	}
	ext, err := chart.FormatOf(out)
	switch {
	case !file && err == nil:
		return "", fmt.Errorf("-o %s: RUN's plots are written into a folder, a file each; name the folder, and the format with --format", out)
	case !file:
		return orSVG(f), nil
	case err != nil:
		return "", fmt.Errorf("-o %w", err)
	case f != "" && f != ext:
		return "", fmt.Errorf("-o %s is a .%s file, but --format says %s", out, ext, f)
	}
	return ext, nil
}

// orSVG is f, or SVG where f is "".
func orSVG(f chart.Format) chart.Format {
	if f == "" {
		return chart.SVG
	}
	return f
}

// plotMetrics draws the metrics q names and writes the chart to out, or
// to plots/NAME.FORMAT.
func plotMetrics(cmd *cobra.Command, g *globals, q zen.PlotsQuery, out string, f chart.Format, size chart.Size) error {
	sess, err := openRead(cmd, g, false)
	if err != nil {
		return err
	}
	p, err := sess.Plots(q)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return writeJSON(g.stdout, p)
	}
	b, err := chart.Draw(p, f, size)
	if err != nil {
		return err
	}
	if out == "" {
		out = filepath.Join("plots", p.Name+"."+string(f))
		if q.Model != "" {
			out = filepath.Join("plots", "models", p.Name+"."+string(f))
		}
	}
	return writePlots(g, []string{out}, [][]byte{b})
}

// plotRun draws the plot outputs of run into the folder out, or
// plots/RUN.
func plotRun(cmd *cobra.Command, g *globals, run, stack, out string, f chart.Format, size chart.Size) error {
	sess, err := openRead(cmd, g, true)
	if err != nil {
		return err
	}
	r, plots, err := sess.PlotOutputs(cmd.Context(), run, stack)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return writeJSON(g.stdout, map[string]any{"run": r.ID, "pipeline": r.Pipeline, "plots": plots})
	}
	if out == "" {
		out = filepath.Join("plots", r.ID)
	}
	var paths []string
	var images [][]byte
	for _, p := range plots {
		b, err := chart.Draw(p, f, size)
		if err != nil {
			return err
		}
		paths = append(paths, filepath.Join(out, p.Name+"."+string(f)))
		images = append(images, b)
	}
	return writePlots(g, paths, images)
}

// writePlots writes each image to its path (as -C resolves it), making
// the folders it needs, and prints the paths. Everything is drawn before
// anything is written, so that a plot that cannot be drawn leaves no
// files behind.
func writePlots(g *globals, paths []string, images [][]byte) error {
	for i, p := range paths {
		dest := g.path(p)
		if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
			return fmt.Errorf("%s is a folder: name a file with -o", p)
		}
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return err
		}
		// Through a temporary file: a reader never sees half an image.
		tmp := dest + ".tmp"
		if err := os.WriteFile(tmp, images[i], 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, dest); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	fmt.Fprintln(g.stdout, strings.Join(paths, "\n"))
	return nil
}
