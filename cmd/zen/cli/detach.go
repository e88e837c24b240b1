package cli

import (
	"context"
	"io"

	"github.com/zen-dev/zen/apply"
	"github.com/zen-dev/zen/state"
)

// collect waits for the jobs of a detached apply and records its runs (see
// zen.Project.Collect), for zen runs watch; the records are read again.
func collect(ctx context.Context, stderr io.Writer, sess *session, _ state.Records, sub *state.Submission) (*apply.Result, error) {
	return sess.Collect(ctx, sub, stderr)
}
