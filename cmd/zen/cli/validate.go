package cli

import (
	"fmt"
	"maps"
	"slices"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/schema"
)

func newValidate(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the repository's CUE against zen's schema",
		Long: `Validate loads the repository's CUE package with zen's embedded schema and
reports every problem as FILE:LINE:COLUMN: FIELD: MESSAGE — syntax errors,
unknown fields, wrong types, references to missing steps or outputs,
cycles between steps, missing input files, unknown stacks and flavors.

Names of pipelines, steps, inputs, outputs, stacks, models and stages are
lowercase letters, digits, '-' and '_', starting with a letter, with no
'-' or '_' at the end or two in a row: snake_case and kebab-case both. A
name that breaks the rule is one error, at the name, with the name to
write instead; zen checks names before anything else.`,
		Example: `  zen validate
  zen validate --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(g)
			if err != nil {
				return err
			}
			steps := 0
			for _, p := range cfg.Pipelines {
				steps += len(p.Steps)
			}
			if g.output == "json" {
				return writeJSON(g.stdout, map[string]any{"valid": true, "pipelines": cfg.PipelineNames(), "steps": steps, "stacks": slices.Sorted(maps.Keys(stacks(cfg)))})
			}
			fmt.Fprintf(g.stdout, "ok: %d pipelines, %d steps, %d stacks\n", len(cfg.Pipelines), steps, len(stacks(cfg)))
			return nil
		},
	}
}

func newSchema(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print zen's CUE schema",
		Long: `Schema prints the CUE schema zen checks repositories against. Save it in
the repository's package to check it with the cue tool itself, names
(#Name) included.`,
		Example: `  zen schema > zen_schema.cue && cue vet . && rm zen_schema.cue`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := g.stdout.Write(schema.Source)
			return err
		},
	}
}
