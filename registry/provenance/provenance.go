// Package provenance is the SLSA provenance zen attests for every artifact
// and model version it pushes, and reads back to verify: one typed format,
// written and parsed here only.
//
// The predicate is SLSA provenance v0.2 (in-toto-golang's types), which
// `cosign verify-attestation --type slsaprovenance` checks. What zen puts
// in it, and what verification compares with the state ref's records:
//
//	builder.id                          BuilderID
//	buildType                           BuildType
//	metadata.buildInvocationID          the run id
//	invocation.configSource.digest.sha1 the source commit
//	invocation.configSource.entryPoint  pipeline.step.output (or .log)
//	invocation.parameters               the step's parameters
//	materials                           the commit, the dirty tree's digest
//	                                    for a dirty run, each input
//	                                    ("zen:input/<step>/<name>") and each
//	                                    code file ("git+path:<path>"), and
//	                                    for a step run in an image, that
//	                                    image ("oci://<registry>/<repo>",
//	                                    its manifest digest as sha256)
//
// A model version is built by the apply of the commit that declares it,
// from an output a run made, perhaps a run of another commit, of an
// experiment or of a dirty work tree whose cache key is the one the
// declaring commit gives. Its attestation names both: configSource is the
// declaring commit, buildInvocationID the run, and the material
// "zen:run/<run>" carries, as its sha1, the commit that run ran from, with
// "zen:run/<run>/dirty-tree" the digest of its uncommitted changes, if
// any. Attestations made before these materials have neither, and their
// records name neither, so nothing is compared.
package provenance

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/common"
	slsa "github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/v0.2"
)

const (
	// Type is the predicate type of zen's attestations.
	Type = slsa.PredicateSLSAProvenance
	// BuilderID names zen as the builder: a URI, as SLSA asks.
	BuilderID = "https://zen.dev/builder/v1"
	// BuildType names what the build was: a step of a zen pipeline run.
	BuildType = "https://zen.dev/pipeline-run/v1"
)

// Material URI prefixes.
const (
	commitURI = "git+commit:"
	inputURI  = "zen:input/"
	codeURI   = "git+path:"
	dirtyURI  = "zen:dirty-tree"
	// runURI + run is the run that made a model version's output; with
	// runDirtySuffix, that run's uncommitted changes.
	runURI         = "zen:run/"
	runDirtySuffix = "/dirty-tree"
	// imageURI + repository is the image a step ran in, by its manifest
	// digest.
	imageURI = "oci://"
)

// Build is what an attestation says made an artifact.
type Build struct {
	// Entry is pipeline.step.output, or pipeline.step.log for a log.
	Entry string
	// Run is the id of the run that made it.
	Run string
	// Commit is the source commit the run ran from.
	Commit string
	// Dirty is the digest of the uncommitted changes of a dirty run.
	Dirty string
	// Parameters are the step's parameters.
	Parameters any
	// Inputs maps each input's name to its digest ("sha256:<hex>"); Code
	// each code file's path to its digest.
	Inputs map[string]string
	Code   map[string]string
	// Image is the image the step ran in, pinned
	// (registry/repo@sha256:…, the fingerprint's); "" for a step run on
	// the host, and in attestations and records made before zen kept it.
	Image string
	// RunCommit and RunDirty are, for a model version, the commit the run
	// that made its output ran from and the digest of that run's
	// uncommitted changes ("" for a clean run). Commit is then the commit
	// that declares the version, which may be another one: the output is
	// reused whenever the declaring commit gives the same cache key.
	// Both are "" for a run's own artifacts, and in attestations and
	// records made before zen kept them.
	RunCommit string
	RunDirty  string
}

// namesRun reports whether b says which commit its run ran from.
func (b *Build) namesRun() bool { return b.RunCommit != "" || b.RunDirty != "" }

// Step is the pipeline.step part of Entry.
func (b *Build) Step() string {
	if i := strings.LastIndexByte(b.Entry, '.'); i >= 0 {
		return b.Entry[:i]
	}
	return b.Entry
}

// Predicate returns b as a SLSA v0.2 provenance predicate, in JSON.
func (b *Build) Predicate() (json.RawMessage, error) {
	if b.Entry == "" || b.Run == "" {
		return nil, errors.New("provenance: a build needs an entry point and a run")
	}
	sha256 := func(d string) common.DigestSet {
		return common.DigestSet{"sha256": strings.TrimPrefix(d, "sha256:")}
	}
	materials := []common.ProvenanceMaterial{{URI: commitURI + b.Commit, Digest: common.DigestSet{"sha1": b.Commit}}}
	if b.Dirty != "" {
		materials = append(materials, common.ProvenanceMaterial{URI: dirtyURI, Digest: sha256(b.Dirty)})
	}
	step := b.Step()
	for _, name := range slices.Sorted(maps.Keys(b.Inputs)) {
		materials = append(materials, common.ProvenanceMaterial{URI: inputURI + step + "/" + name, Digest: sha256(b.Inputs[name])})
	}
	for _, name := range slices.Sorted(maps.Keys(b.Code)) {
		materials = append(materials, common.ProvenanceMaterial{URI: codeURI + name, Digest: sha256(b.Code[name])})
	}
	if repo, digest, ok := strings.Cut(b.Image, "@"); ok {
		materials = append(materials, common.ProvenanceMaterial{URI: imageURI + repo, Digest: sha256(digest)})
	} else if b.Image != "" {
		return nil, fmt.Errorf("provenance: image %s is not pinned by digest", b.Image)
	}
	if b.namesRun() {
		materials = append(materials, common.ProvenanceMaterial{URI: runURI + b.Run, Digest: common.DigestSet{"sha1": b.RunCommit}})
		if b.RunDirty != "" {
			materials = append(materials, common.ProvenanceMaterial{URI: runURI + b.Run + runDirtySuffix, Digest: sha256(b.RunDirty)})
		}
	}
	p := slsa.ProvenancePredicate{
		Builder:   common.ProvenanceBuilder{ID: BuilderID},
		BuildType: BuildType,
		Invocation: slsa.ProvenanceInvocation{
			ConfigSource: slsa.ConfigSource{URI: commitURI + b.Commit, Digest: common.DigestSet{"sha1": b.Commit}, EntryPoint: b.Entry},
			Parameters:   b.Parameters,
		},
		Metadata:  &slsa.ProvenanceMetadata{BuildInvocationID: b.Run, Completeness: slsa.ProvenanceComplete{Parameters: true, Materials: true}},
		Materials: materials,
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	return raw, nil
}

// Parse reads a predicate Predicate wrote. One that is not zen's (another
// builder or build type, no run or entry point) is an error: it says
// nothing a record can be compared with.
func Parse(raw json.RawMessage) (*Build, error) {
	var p slsa.ProvenancePredicate
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("not a SLSA v0.2 provenance predicate: %v", err)
	}
	// Attestations made before the builder id became a URI name "zen".
	if p.Builder.ID != BuilderID && p.Builder.ID != "zen" {
		return nil, fmt.Errorf("builder %q is not zen", p.Builder.ID)
	}
	if p.BuildType != BuildType {
		return nil, fmt.Errorf("build type %q is not a zen pipeline run", p.BuildType)
	}
	b := &Build{Entry: p.Invocation.ConfigSource.EntryPoint, Commit: p.Invocation.ConfigSource.Digest["sha1"], Parameters: p.Invocation.Parameters}
	if p.Metadata != nil {
		b.Run = p.Metadata.BuildInvocationID
	}
	if b.Run == "" || b.Entry == "" {
		return nil, errors.New("names no run or no entry point")
	}
	prefix := inputURI + b.Step() + "/"
	for _, m := range p.Materials {
		d := "sha256:" + m.Digest["sha256"]
		switch {
		case strings.HasPrefix(m.URI, prefix):
			if b.Inputs == nil {
				b.Inputs = map[string]string{}
			}
			b.Inputs[strings.TrimPrefix(m.URI, prefix)] = d
		case strings.HasPrefix(m.URI, codeURI):
			if b.Code == nil {
				b.Code = map[string]string{}
			}
			b.Code[strings.TrimPrefix(m.URI, codeURI)] = d
		case m.URI == dirtyURI:
			b.Dirty = d
		case strings.HasPrefix(m.URI, imageURI):
			b.Image = strings.TrimPrefix(m.URI, imageURI) + "@" + d
		case strings.HasPrefix(m.URI, runURI):
			run, dirty := strings.CutSuffix(strings.TrimPrefix(m.URI, runURI), runDirtySuffix)
			if run != b.Run {
				return nil, fmt.Errorf("names run %s as its material but run %s as the build", run, b.Run)
			}
			if dirty {
				b.RunDirty = d
			} else {
				b.RunCommit = m.Digest["sha1"]
			}
		}
	}
	return b, nil
}

// Mismatch says how got differs from want in what a record can vouch for:
// the run, the source commit, the entry point and, where want has them,
// the image and the input digests. It returns "" when they agree.
func Mismatch(got, want *Build) string {
	switch {
	case got.Entry != want.Entry:
		return fmt.Sprintf("names entry point %s, the record %s", got.Entry, want.Entry)
	case got.Run != want.Run:
		return fmt.Sprintf("names run %s, the record %s", got.Run, want.Run)
	case want.Commit != "" && got.Commit != want.Commit:
		return fmt.Sprintf("names commit %s, the record %s", got.Commit, want.Commit)
	case want.namesRun() && got.RunCommit != want.RunCommit:
		if got.RunCommit == "" {
			return fmt.Sprintf("does not name the commit run %s ran from, the record %s", want.Run, want.RunCommit)
		}
		return fmt.Sprintf("names run %s from commit %s, the record from %s", got.Run, got.RunCommit, cmp.Or(want.RunCommit, "none"))
	case want.Image != "" && got.Image != want.Image:
		if got.Image == "" {
			return fmt.Sprintf("names no image, the record %s", want.Image)
		}
		return fmt.Sprintf("names image %s, the record %s", got.Image, want.Image)
	case want.namesRun() && got.RunDirty != want.RunDirty:
		return fmt.Sprintf("names run %s's uncommitted changes as %s, the record %s", got.Run, cmp.Or(got.RunDirty, "none"), cmp.Or(want.RunDirty, "none"))
	}
	if want.Inputs == nil {
		return ""
	}
	for _, name := range slices.Sorted(maps.Keys(want.Inputs)) {
		if g, ok := got.Inputs[name]; !ok {
			return fmt.Sprintf("does not name input %s", name)
		} else if g != want.Inputs[name] {
			return fmt.Sprintf("names input %s as %s, the record %s", name, g, want.Inputs[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got.Inputs)) {
		if _, ok := want.Inputs[name]; !ok {
			return fmt.Sprintf("names input %s, which the record does not", name)
		}
	}
	return ""
}
