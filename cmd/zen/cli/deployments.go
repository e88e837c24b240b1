package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen/deploy"
	"github.com/zen-dev/zen/view"
)

func newDeployments(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deployments",
		Short: "List, follow and stop the deployments the stack's model deployer serves",
		Long: `A deployment (deployments: in CUE) serves the version a model's stage
holds. zen apply starts it, once the stages have moved, and moves it when
the stage does; zen plan shows what it would change. These commands read
and stop what the stack's model deployer serves: with the local one, the
processes of this machine (.zen/deployments); with gitops, the manifests
on the deploy repository's branch (stop commits their removal; the logs
are the cluster's). A stopped deployment that is still declared is
started again by the next zen apply.`,
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the deployments: version, digest, URL and whether they answer",
		Example: "  zen deployments list\n  zen deployments list --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := open(g, false)
			if err != nil {
				return err
			}
			rows, err := sess.Deployments(cmd.Context())
			if err != nil {
				return err
			}
			if g.output == "json" {
				if rows == nil {
					rows = []*deploy.Status{}
				}
				return writeJSON(g.stdout, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(g.stderr, "no deployments: declare one in deployments: and zen apply")
				return nil
			}
			return view.Deployments(g.stdout, rows)
		},
	}
	var follow bool
	logs := &cobra.Command{
		Use:     "logs NAME",
		Short:   "Print a deployment's log (its serving process's output)",
		Example: "  zen deployments logs fraud-api\n  zen deployments logs fraud-api -f",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := open(g, false)
			if err != nil {
				return err
			}
			d, err := sess.Deployer(nil)
			if err != nil {
				return err
			}
			return d.Logs(cmd.Context(), args[0], g.stdout, follow)
		},
	}
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "go on printing what it writes, until Ctrl-C or the deployment is stopped or moved")
	stop := &cobra.Command{
		Use:     "stop NAME...",
		Short:   "Stop deployments: their processes, or (gitops) their manifests",
		Example: "  zen deployments stop fraud-api",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sess, err := open(g, false)
			if err != nil {
				return err
			}
			d, err := sess.Deployer(g.stderr)
			if err != nil {
				return err
			}
			for _, name := range args {
				st, err := d.Status(cmd.Context(), name)
				if err != nil {
					return err
				}
				if st == nil {
					return fmt.Errorf("deployment %s serves nothing", name)
				}
				if err := d.Stop(cmd.Context(), name); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "stopped deployment %s (%s %s)\n", name, st.Model, st.Version)
			}
			return nil
		},
	}
	cmd.AddCommand(list, logs, stop)
	return cmd
}
