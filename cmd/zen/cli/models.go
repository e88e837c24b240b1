package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/view"
)

func newModels(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List, show and pull model versions and stages",
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List recorded model versions and the stages they hold",
		Example: "  zen models list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := openRead(cmd, g, true)
			if err != nil {
				return err
			}
			rows, err := sess.Models()
			if err != nil {
				return err
			}
			if g.output == "json" {
				if rows == nil {
					rows = []zen.ModelListing{}
				}
				return writeJSON(g.stdout, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(g.stderr, "no model versions recorded yet: declare one in models: and zen apply")
				return nil
			}
			return view.ModelTable(g.stdout, rows)
		},
	}
	var key string
	pull := &cobra.Command{
		Use:   "pull REF@sha256:DIGEST DEST",
		Short: "Pull a model version by digest from its registry, verifying its signature",
		Long: `Pull writes the model version that REF names by digest
(REGISTRY/REPOSITORY/models/NAME@sha256:…) at DEST, which must not
exist: a file, or a folder. With --key (a cosign.pub) it first checks
that the version is signed by that key, and pulls nothing otherwise;
every blob is checked against its digest as it is pulled. It needs no
repository: a gitops deployment's init container runs it to fetch the
version its manifests name.`,
		Example: "  zen models pull registry.example.com/ml/models/scorer@sha256:3f2a… /model/model --key cosign.pub",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k := ""
			if key != "" {
				k = g.path(key)
			}
			if err := zen.PullModelRef(cmd.Context(), args[0], k, g.path(args[1])); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "pulled %s to %s\n", args[0], args[1])
			return nil
		},
	}
	pull.Flags().StringVar(&key, "key", "", "the public key its signature must verify with (cosign.pub's format)")
	show := &cobra.Command{
		Use:     "show MODEL[:VERSION|@STAGE]",
		Short:   "Show a model version: digest, stages, run, metrics, signature",
		Example: "  zen models show fraud-detector@production\n  zen models show fraud-detector:1.0.0 --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := openRead(cmd, g, false)
			if err != nil {
				return err
			}
			mv, err := sess.ModelVersion(zen.ParseModelRef(args[0]))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return writeJSON(g.stdout, mv)
			}
			run, err := sess.RecordedRun(mv.RunID)
			if err != nil {
				return err
			}
			return view.ModelVersion(g.stdout, mv, sess.VersionStages(mv), run)
		},
	}
	cmd.AddCommand(list, show, pull)
	return cmd
}
