package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
)

func newPin(g *globals) *cobra.Command {
	var opts zen.PinOptions
	cmd := &cobra.Command{
		Use:   "pin",
		Short: "Pin the steps' image tags to their digests in the CUE files",
		Long: `Pin rewrites each step's image tag written as a string literal in the
repository's CUE files to the same tag with the digest the registry
serves for it now:

  image: "registry.example/base:1"
  image: "registry.example/base:1@sha256:…"

so that a pull request shows an image bump as a one-line diff, and a tag
that moves changes nothing until the CUE does. Only the literal changes:
the rest of each file, comments and layout included, is kept byte for
byte. A reference already pinned is left as it is.

An image written otherwise (a reference to another field, an
interpolation, a file outside the package's folder) is listed as not
pinned, with where it is written: pin it there.

Exit status: 0 when every step's image is pinned, 1 otherwise. With
--check, zen pin resolves and writes nothing and lists every tag not
pinned: for CI.`,
		Example: "  zen pin\n  zen pin --check",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := open(g, false)
			if err != nil {
				return err
			}
			res, err := sess.Pin(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if g.output == "json" {
				if err := writeJSON(g.stdout, res); err != nil {
					return err
				}
			} else {
				for _, p := range res.Pinned {
					if opts.Check {
						fmt.Fprintf(g.stdout, "%s: %s is not pinned (%s)\n", p.Pos, p.Declared, strings.Join(p.Steps, ", "))
					} else {
						fmt.Fprintf(g.stdout, "%s: %s → %s\n", p.Pos, p.Declared, p.Pinned)
					}
				}
				for _, p := range res.NotPinned {
					fmt.Fprintf(g.stdout, "%s: %s is not pinned (%s): %s; pin it where it is written\n", p.Pos, p.Ref, strings.Join(p.Steps, ", "), p.Why)
				}
			}
			if !opts.Check {
				fmt.Fprintf(g.stderr, "pinned %d, %d already pinned, %d not pinned\n", len(res.Pinned), res.Already, len(res.NotPinned))
			}
			if res.Unpinned(opts.Check) {
				if opts.Check {
					return fmt.Errorf("%d image tags are not pinned: run zen pin", len(res.Pinned)+len(res.NotPinned))
				}
				return fmt.Errorf("%d image tags are left unpinned: pin each where it is written", len(res.NotPinned))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.Check, "check", false, "list the tags not pinned and exit 1 if there is one; resolve and write nothing")
	return cmd
}
