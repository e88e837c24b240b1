package view

import (
	"cmp"
	"fmt"
	"io"

	"github.com/zen-dev/zen"
)

// VerifiedModel says that a model version verified, and what its
// provenance attestation was checked to name: the run that made the
// output, the commit it ran from when the record names another (or
// uncommitted changes), and the commit that declares the version.
func VerifiedModel(w io.Writer, res *zen.ModelVerification) error {
	mv := res.Version
	made := fmt.Sprintf("run %s, commit %s", mv.RunID, Short(mv.SourceCommit))
	if mv.RunCommit != mv.SourceCommit && mv.RunCommit != "" || mv.RunDirty != "" {
		from := Short(cmp.Or(mv.RunCommit, "(none)"))
		if mv.RunDirty != "" {
			from += " with uncommitted changes"
		}
		made = fmt.Sprintf("run %s from commit %s, declared by commit %s", mv.RunID, from, Short(mv.SourceCommit))
	}
	_, err := fmt.Fprintf(w, "verified model %s %s %s: signature and provenance (%s) by %s\n", mv.Model, mv.ModelVersion, mv.Digest, made, res.Key)
	return err
}

// ArtifactChecks draws a line per artifact of a run's verification, ✓ or
// ✗, with the run and bytes it was reused from, and under a failure why.
func ArtifactChecks(out io.Writer, res *zen.RunVerification) error {
	w := &writer{w: out}
	for _, c := range res.Artifacts {
		mark := "✓"
		if !c.OK {
			mark = "✗"
		}
		fmt.Fprintf(w, "%s %s.%s %s", mark, c.Step, c.Artifact, c.Digest)
		if c.Run != res.Run.ID {
			fmt.Fprintf(w, " (from run %s)", c.Run)
		}
		if c.SameAs != "" {
			fmt.Fprintf(w, " (same bytes as %s)", c.SameAs)
		}
		fmt.Fprintln(w)
		if !c.OK {
			fmt.Fprintf(w, "    %s\n", c.Error)
		}
	}
	return w.err
}

// VerifiedRun says that every artifact of a run verified.
func VerifiedRun(w io.Writer, res *zen.RunVerification) error {
	_, err := fmt.Fprintf(w, "verified run %s of %s: %d artifacts, signature and provenance by %s\n", res.Run.ID, res.Run.Pipeline, len(res.Artifacts), res.Key)
	return err
}
