package apply

import (
	"context"
	"fmt"
	"sync"

	"github.com/zen-dev/zen/internal/failpoint"

	"github.com/zen-dev/zen/registry/provenance"
	"github.com/zen-dev/zen/registry/signature"
	"github.com/zen-dev/zen/state"
)

// signer signs and attests the artifacts a run pushes, one artifact at a
// time: two steps that made the same bytes append their attestations in
// turn rather than racing for the tag.
type signer struct {
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
func (a *applier) signArtifact(ctx context.Context, digest string, b *provenance.Build) error {
	if a.env.Signer == nil {
		return nil
	}
	pred, err := b.Predicate()
	if err != nil {
		return err
	}
	defer a.signer.lock(digest)()
	repo := a.env.Store.ArtifactRepository()
	if err := signature.Sign(ctx, repo, digest, a.env.Signer); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	failpoint.Hit(failpoint.Signed)
	// The same bytes are attested once per key, by the first run that
	// stored them: a thousand steps that write the same file would
	// otherwise pile a thousand attestations on one tag.
	if _, err := signature.VerifyAttestation(ctx, repo, digest, provenance.Type, a.env.Signer.Public()); err == nil {
		return nil
	}
	if err := signature.Attest(ctx, repo, digest, provenance.Type, pred, a.env.Signer); err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	return nil
}

// stepBuild is the build of one of n's artifacts.
func (n *node) build(entry string) *provenance.Build {
	b := &provenance.Build{Entry: n.pr.pipeline.Name + "." + n.step.Name + "." + entry, Run: n.pr.run.ID, Commit: n.pr.run.SourceCommit}
	if n.pr.run.Dirty {
		b.Dirty = n.pr.run.DirtyDigest
	}
	fingerprinted(b, n.fp)
	return b
}

// fingerprinted adds what a step's fingerprint says to b: its parameters,
// inputs, code files and the image it ran in.
func fingerprinted(b *provenance.Build, fp *state.Fingerprint) {
	if fp != nil {
		b.Parameters, b.Inputs, b.Code, b.Image = fp.Parameters, fp.Inputs, fp.Code, fp.Image
	}
}
