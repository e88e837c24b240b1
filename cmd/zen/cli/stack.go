package cli

import (
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/view"
)

func newStack(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stack",
		Short: "List, show and choose stacks",
		Long: `A stack says where pipelines run (its orchestrator) and where artifacts go
(its artifact store). The stack zen uses is, in order: --stack, $ZEN_STACK,
the clone's choice made with zen stack use, the repository's default_stack.`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "list",
		Short:   "List the repository's stacks",
		Example: "  zen stack list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := open(g, true)
			if err != nil {
				return err
			}
			cur, err := sess.selectStack("")
			if err != nil {
				return err
			}
			all := stacks(sess.cfg)
			if g.output == "json" {
				var out []any
				for _, n := range slices.Sorted(maps.Keys(all)) {
					out = append(out, map[string]any{"name": n, "current": n == cur.Name, "stack": all[n]})
				}
				return writeJSON(g.stdout, out)
			}
			return view.StackList(g.stdout, all, cur.Name)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:     "show [NAME]",
		Short:   "Show a stack's components (default: the current stack)",
		Example: "  zen stack show\n  zen stack show shared --output json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := open(g, true)
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			st, err := sess.selectStack(name)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, st)
			}
			return view.Stack(g.stdout, st)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "use NAME",
		Short: "Choose the stack for this clone (kept in .git/config, not committed)",
		Long: `Use records the stack this clone uses when neither --stack nor $ZEN_STACK
is given. It is kept in the clone's git config (zen.stack) and never
committed, so each clone and CI job chooses its own.`,
		Example: "  zen stack use shared\n  zen stack use local",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := open(g, true)
			if err != nil {
				return err
			}
			if err := sess.UseStack(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "using stack %s in this clone\n", args[0])
			if env := os.Getenv("ZEN_STACK"); env != "" && env != args[0] {
				fmt.Fprintf(g.stderr, "note: ZEN_STACK=%s is set and takes precedence\n", env)
			}
			return nil
		},
	})
	return cmd
}
