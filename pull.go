package zen

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/zen-dev/zen/registry"
	"github.com/zen-dev/zen/registry/verify"
)

// PullModelRef writes the model version that ref names by digest
// (REGISTRY/REPOSITORY/models/NAME@sha256:…, as a gitops deployment's
// manifests name it) at dest, which must not exist: with keyPath (a
// cosign.pub), only once its signature by that key verifies; every blob
// is checked against its digest as it is pulled. It needs no repository:
// it is what a gitops deployment's init container runs.
func PullModelRef(ctx context.Context, ref, keyPath, dest string) error {
	repo, digest, ok := strings.Cut(ref, "@")
	base, model, found := cutLast(repo, "/models/")
	if !ok || !found || !strings.HasPrefix(digest, "sha256:") || model == "" || strings.Contains(model, "/") {
		return fmt.Errorf("%q is not a model version by digest: want REGISTRY/REPOSITORY/models/NAME@sha256:…", ref)
	}
	store, err := registry.OpenRemote(base)
	if err != nil {
		return err
	}
	ms := store.(registry.ModelStore)
	if keyPath != "" {
		key, _, err := LoadPublicKey(keyPath)
		if err != nil {
			return err
		}
		if err := (&verify.Verifier{Key: key}).Signature(ctx, ms.ModelRepository(model), digest); err != nil {
			return fmt.Errorf("%s does not verify: %w; nothing pulled", ref, err)
		}
	}
	if err := ms.PullModel(ctx, digest, model, dest); err != nil {
		if errors.Is(err, registry.ErrDigestMismatch) {
			return fmt.Errorf("%s: stored content was altered: %w; nothing pulled", ref, err)
		}
		return err
	}
	return nil
}

// cutLast is strings.Cut at the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
