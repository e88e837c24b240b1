package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/progress"
)

func newData(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Store data outside git as inputs pinned by digest",
	}
	var opts zen.DataPushOptions
	var progressMode string
	push := &cobra.Command{
		Use:   "push PATH",
		Short: "Store a file or folder in the stack's artifact store, signed, and print the input to declare",
		Long: `Push stores the file or folder PATH as an artifact in the stack's artifact
store, signed with the stack's key as apply signs what steps write, and
prints the input a step declares to read it, pinned by digest:

  inputs: NAME: {data: "NAME@sha256:…"}

The step reads it at $ZEN_INPUTS/<input name>. Its digest is the input's
digest in the cache key: new bytes, pushed again, give a new digest, and
editing the CUE to it makes plan say the input changed. Any clone that
reaches the store pulls it by digest, Slurm nodes too; git need not hold
it (it is what to use for a file git ignores).

NAME defaults to PATH's base name without its extension. zen does not
edit the CUE: paste the input where the step declares its inputs.

On a terminal (see --progress) the bytes hashed and pushed show, with a
rate, while it pushes.`,
		Example: "  zen data push data/train.csv\n  zen data push data/images --name images --stack shared",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mode, err := progress.ParseMode(progressMode)
			if err != nil {
				return err
			}
			sess, err := openRead(cmd, g, true)
			if err != nil {
				return err
			}
			opts.Path = g.path(args[0])
			ctx, term := showProgress(cmd.Context(), g, mode)
			pushed, err := sess.DataPush(ctx, opts)
			if term != nil {
				term.Close()
			}
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, pushed)
			}
			signed := "unsigned"
			if pushed.SignedBy != "" {
				signed = "signed by " + pushed.SignedBy
			}
			fmt.Fprintf(g.stderr, "stored %s (%d bytes) in %s, %s\n", pushed.Ref, pushed.Size, pushed.Store, signed)
			_, err = fmt.Fprintln(g.stdout, pushed.Input())
			return err
		},
	}
	push.Flags().StringVar(&opts.Name, "name", "", "the `NAME` the input calls the data (default: PATH's base name without its extension)")
	push.Flags().StringVar(&opts.Stack, "stack", "", "the `NAME` of the stack whose store receives it (default: $ZEN_STACK, then zen stack use, then the repository's default_stack)")
	progressFlag(push, &progressMode)
	cmd.AddCommand(push)
	return cmd
}
