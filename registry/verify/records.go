package verify

import (
	"strings"

	"github.com/zen-dev/zen/registry/provenance"
	"github.com/zen-dev/zen/state"
)

// Runs is what the verifier reads of the state ref: run records.
type Runs interface {
	Run(id string) (*state.Run, bool, error)
}

// ModelBuild is what a model version's attestation must name: the run and
// commit its record names (the run that made the output, and the commit
// that declares the version), the commit that run ran from and its
// uncommitted changes where the record names them, the output it was made
// from, and, when the producing run's record is at hand, that step's
// input digests. A version record that names the run's commit otherwise
// than the run's own record is a provenance mismatch: one of them was
// edited.
func ModelBuild(runs Runs, mv *state.ModelVersion) (*provenance.Build, error) {
	b := &provenance.Build{Entry: mv.Pipeline + "." + mv.Step + "." + mv.Output, Run: mv.RunID, Commit: mv.SourceCommit, RunCommit: mv.RunCommit, RunDirty: mv.RunDirty}
	if runs == nil {
		return b, nil
	}
	run, ok, err := runs.Run(mv.RunID)
	if err != nil || !ok {
		return b, err
	}
	if mv.RunCommit != "" || mv.RunDirty != "" {
		if run.SourceCommit != mv.RunCommit || run.DirtyDigest != mv.RunDirty {
			return nil, fail(ProvenanceMismatch, "the version's record names run %s from commit %s%s, the run's record from %s%s", mv.RunID, mv.RunCommit, dirtyNote(mv.RunDirty), run.SourceCommit, dirtyNote(run.DirtyDigest))
		}
	}
	if res := run.Steps[mv.Step]; res != nil && res.Fingerprint != nil {
		b.Inputs, b.Image = nonNil(res.Fingerprint.Inputs), res.Fingerprint.Image
	}
	return b, nil
}

func dirtyNote(d string) string {
	if d == "" {
		return ""
	}
	return " with uncommitted changes " + d
}

// ArtifactBuild is what the attestation of an artifact of a step must name:
// the run that made it (for a cached step, the run it was reused from,
// whose record is made), its commit, the entry point, the step's input
// digests and the image it ran in. artifact is an output's name, or "log".
func ArtifactBuild(runs Runs, run *state.Run, step, artifact string) (*provenance.Build, error) {
	res := run.Steps[step]
	b := &provenance.Build{Entry: run.Pipeline + "." + step + "." + artifact, Run: run.ID, Commit: run.SourceCommit}
	if res != nil && res.Fingerprint != nil {
		b.Inputs, b.Image = nonNil(res.Fingerprint.Inputs), res.Fingerprint.Image
	}
	if res == nil || res.CachedFrom == "" {
		return b, nil
	}
	b.Run, b.Commit = res.CachedFrom, ""
	if runs == nil {
		return b, nil
	}
	made, ok, err := runs.Run(res.CachedFrom)
	if err != nil {
		return nil, err
	}
	if ok {
		b.Commit = made.SourceCommit
	}
	return b, nil
}

// CacheBuild is what the attestation of output of a cache entry must name:
// the run the entry records and the step's entry point, with inputs, the
// digests the cache key was made from. The commit is not known from the
// entry alone, and is not compared.
func CacheBuild(hit *state.Cache, output string, inputs map[string]string) *provenance.Build {
	return &provenance.Build{Entry: hit.Pipeline + "." + hit.Step + "." + output, Run: hit.RunID, Inputs: nonNil(inputs)}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// MadeBy returns a Verifier.Made that reads run records: run made digest
// as entry (pipeline.step.output, or pipeline.step.log) from commit if its
// record says that the step ran there (was not reused) and stored exactly
// that digest.
func MadeBy(runs Runs) func(run, entry, commit, digest string) (bool, error) {
	return func(id, entry, commit, digest string) (bool, error) {
		run, ok, err := runs.Run(id)
		if err != nil || !ok {
			return false, err
		}
		rest, ok := strings.CutPrefix(entry, run.Pipeline+".")
		if !ok || run.SourceCommit != commit {
			return false, nil
		}
		step, artifact, ok := strings.Cut(rest, ".")
		res := run.Steps[step]
		if !ok || res == nil || res.CachedFrom != "" {
			return false, nil
		}
		if a, ok := res.Outputs[artifact]; ok {
			return a.Digest == digest, nil
		}
		return artifact == "log" && res.Log != nil && res.Log.Digest == digest, nil
	}
}
