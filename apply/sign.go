package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/zen-dev/zen/internal/failpoint"

	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/state"
)

// build is what a provenance attestation says of an artifact: which run of
// which step made it, from which commit, parameters and inputs.
type build struct {
	entry      string // pipeline.step.output, or pipeline.step.log
	runID      string
	commit     string
	dirty      string // the dirty tree's digest, for a dirty run
	parameters any
	fp         *state.Fingerprint
}

// predicate is the SLSA v0.2 provenance of b. The materials are the source
// commit, the step's inputs and its code files, each with its digest.
func (b build) predicate() (json.RawMessage, error) {
	type digestSet map[string]string
	type material struct {
		URI    string    `json:"uri"`
		Digest digestSet `json:"digest"`
	}
	materials := []material{{URI: "git+commit:" + b.commit, Digest: digestSet{"sha1": b.commit}}}
	if b.dirty != "" {
		materials = append(materials, material{URI: "zen:dirty-tree", Digest: digestSet{"sha256": strings.TrimPrefix(b.dirty, "sha256:")}})
	}
	step := b.entry[:strings.LastIndexByte(b.entry, '.')]
	if b.fp != nil {
		for _, name := range slices.Sorted(maps.Keys(b.fp.Inputs)) {
			materials = append(materials, material{URI: "zen:input/" + step + "/" + name, Digest: digestSet{"sha256": strings.TrimPrefix(b.fp.Inputs[name], "sha256:")}})
		}
		for _, name := range slices.Sorted(maps.Keys(b.fp.Code)) {
			materials = append(materials, material{URI: "git+path:" + name, Digest: digestSet{"sha256": strings.TrimPrefix(b.fp.Code[name], "sha256:")}})
		}
	}
	pred := map[string]any{
		"builder":   map[string]any{"id": "zen"},
		"buildType": "https://zen.dev/pipeline-run/v1",
		"invocation": map[string]any{
			"configSource": map[string]any{"uri": "git+commit:" + b.commit, "digest": digestSet{"sha1": b.commit}, "entryPoint": b.entry},
			"parameters":   b.parameters,
		},
		"metadata":  map[string]any{"buildInvocationId": b.runID, "reproducible": false},
		"materials": materials,
	}
	raw, err := json.Marshal(pred)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	return raw, nil
}

// signer signs and attests the artifacts a run pushes, one artifact at a
// time: two steps that made the same bytes append their attestations in
// turn rather than racing for the tag.
type signer struct {
	s     *signature.Signer
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (g *signer) lock(digest string) func() {
	g.mu.Lock()
	if g.locks == nil {
		g.locks = map[string]*sync.Mutex{}
	}
	l := g.locks[digest]
	if l == nil {
		l = &sync.Mutex{}
		g.locks[digest] = l
	}
	g.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// signArtifact signs the stored artifact digest and, unless it carries a
// provenance attestation by the key already, attests its provenance,
// beside it in the store's artifacts repository. Without a signer it does
// nothing.
func (a *applier) signArtifact(ctx context.Context, digest string, b build) error {
	if a.env.Signer == nil {
		return nil
	}
	pred, err := b.predicate()
	if err != nil {
		return err
	}
	defer a.signer.lock(digest)()
	repo := SignatureRepository(a.env.Store.ArtifactRepository())
	if err := signature.Sign(ctx, repo, digest, a.env.Signer); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	failpoint.Hit(failpoint.Signed)
	// The same bytes are attested once per key, by the first run that
	// stored them: a thousand steps that write the same file would
	// otherwise pile a thousand attestations on one tag.
	if _, err := signature.VerifyAttestation(ctx, repo, digest, ProvenanceType, a.env.Signer.Public()); err == nil {
		return nil
	}
	if err := signature.Attest(ctx, repo, digest, ProvenanceType, pred, a.env.Signer); err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	return nil
}

// stepBuild is the build of one of n's artifacts.
func (n *node) build(entry string) build {
	b := build{entry: n.pr.pipeline.Name + "." + n.step.Name + "." + entry, runID: n.pr.run.ID, commit: n.pr.run.SourceCommit, fp: n.fp}
	if n.pr.run.Dirty {
		b.dirty = n.pr.run.DirtyDigest
	}
	if n.fp != nil {
		b.parameters = n.fp.Parameters
	}
	return b
}
