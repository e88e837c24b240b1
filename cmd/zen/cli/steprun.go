package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zen-dev/zen"
	"github.com/zen-dev/zen/apply"
	"github.com/zen-dev/zen/state"
)

// newStepRun is the step runner a Slurm job runs on its node: not for
// people, so hidden from help.
func newStepRun(g *globals) *cobra.Command {
	var storeRef string
	cmd := &cobra.Command{
		Use:    "step-run --store STORE SPEC",
		Short:  "Run one step of an apply on this machine (what a Slurm job runs)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := zen.OpenStoreRef(storeRef)
			if err != nil {
				apply.NoteJob(err.Error())
				return &codeError{code: 2, err: err}
			}
			res, err := apply.RunRemoteStep(cmd.Context(), store, args[0], g.stderr)
			if err != nil {
				apply.NoteJob(err.Error())
				return &codeError{code: 2, err: err}
			}
			if res.Status != state.StatusSucceeded {
				// A failed job: Slurm cancels the steps after it.
				return &codeError{code: exitError, err: fmt.Errorf("step %s: %s", res.Status, res.Reason)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&storeRef, "store", "", "the artifact store: oci:REPOSITORY or oci-layout:PATH")
	return cmd
}
