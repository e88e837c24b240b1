package cli

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/progress"
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
	cmd.AddCommand(newStackMigrate(g))
	return cmd
}

func newStackMigrate(g *globals) *cobra.Command {
	var from, to string
	var yes bool
	var progressMode string
	cmd := &cobra.Command{
		Use:   "migrate --from STACK --to STACK [--yes]",
		Short: "Copy what the state ref references from one stack's store to another's",
		Long: `Migrate copies, from stack --from's artifact store to stack --to's, every
artifact of the runs recorded on --from (outputs and logs), every model
version pushed to it with its version tag, the stage tags of those
versions, and the signatures and attestations of all of them. Digests are
kept byte for byte, so signatures verify on --to, and zen plan there
reuses the cache.

Without --yes it only prints the plan: what there is, and what --to lacks.
With --yes it copies. What --to holds already is not copied again: a
migration stopped midway is finished by the next one, and a second
migration copies nothing. The state ref is not changed; verify on the new
stack with zen verify --stack.

On a terminal (see --progress) the bytes copied show, with a rate, while
it copies.`,
		Example: "  zen stack migrate --from local --to shared\n  zen stack migrate --from local --to shared --yes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			mode, err := progress.ParseMode(progressMode)
			if err != nil {
				return err
			}
			sess, err := open(g, true)
			if err != nil {
				return err
			}
			ctx, term := showProgress(cmd.Context(), g, mode)
			m, err := sess.Migrate(ctx, from, to, yes)
			if term != nil {
				term.Close()
			}
			if err != nil {
				return err
			}
			for _, w := range m.Warnings {
				fmt.Fprintf(g.stderr, "warning: %s\n", w)
			}
			if g.output == "json" {
				return writeJSON(g.stdout, m)
			}
			return viewMigration(g.stdout, m)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the stack whose store to copy from")
	cmd.Flags().StringVar(&to, "to", "", "the stack whose store to copy to")
	cmd.Flags().BoolVar(&yes, "yes", false, "copy (without it, only print the plan)")
	progressFlag(cmd, &progressMode)
	return cmd
}

// viewMigration writes a migration's plan, or what it copied.
func viewMigration(w io.Writer, m *zen.Migration) error {
	t := m.Totals()
	fmt.Fprintf(w, "migrate %s (%s) → %s (%s)\n", m.From, m.FromStore, m.To, m.ToStore)
	fmt.Fprintf(w, "  %d artifacts, %d model versions, %d stage tags, %d signatures, %d attestations\n",
		t.Artifacts, t.Models, t.Stages, t.Signatures, t.Attestations)
	for _, s := range m.Missing {
		fmt.Fprintf(w, "  not in %s's store, not copied: %s\n", m.From, s)
	}
	if t.Kept > 0 {
		fmt.Fprintf(w, "  %s has its own signatures of %d of them, kept\n", m.To, t.Kept)
	}
	all := len(m.Items)
	if t.Needed == 0 {
		fmt.Fprintf(w, "%s holds all %d already: nothing to copy\n", m.To, all)
		return nil
	}
	what := fmt.Sprintf("%d manifests, %d blobs (%d bytes), %d tags", t.Manifests, t.Blobs, t.Bytes, t.Tags)
	if m.Applied {
		fmt.Fprintf(w, "copied %s to %s\n", what, m.To)
		return nil
	}
	fmt.Fprintf(w, "  %s holds %d of %d already\n", m.To, all-t.Needed, all)
	fmt.Fprintf(w, "to copy: %s\n", what)
	fmt.Fprintf(w, "Run zen stack migrate --from %s --to %s --yes to copy.\n", m.From, m.To)
	return nil
}
