// Package registry stores the outputs of pipeline steps as OCI artifacts, in
// an OCI image layout directory or in any OCI registry.
//
// An artifact is an OCI image manifest with artifactType
// application/vnd.zen.artifact.v1, a config blob {"type":…,"format":…} and
// one layer: the bytes of a file, or a reproducible tar of a directory.
// Nothing in it depends on the time or the run, so the manifest digest is a
// function of the content and the type alone, and the same output is stored
// once.
//
// The package owns zen's stores and what goes in them. store.go is the one
// Store, ModelStore and RawRepository, written over a backend of blobs,
// manifests and tags; layout.go and layout_index.go are the layout
// directory's backend (blobs, and index.json with its tags), remote.go the
// registry's. artifact.go packs and unpacks artifacts, model.go,
// model_push.go, model_pull.go and modelpack.go model versions in the CNCF
// ModelPack format, room.go the free space a pull leaves. Signing and
// verifying what is stored are registry/signature's and registry/verify's.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/zen-dev/zen/registry/errdef"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Descriptor identifies a stored artifact.
type Descriptor struct {
	Digest    string `json:"digest"`    // manifest digest, "sha256:<hex>"
	Size      int64  `json:"size"`      // content size in bytes (sum of layer sizes)
	MediaType string `json:"mediaType"` // media type of the content layer; a model's artifact type
}

// Store is an artifact store. Its methods are safe for concurrent use.
type Store interface {
	// String names the store in messages: "oci-layout .zen/store",
	// "oci 127.0.0.1:5000/ml".
	String() string
	// Check makes sure, before anything runs, that the store can be reached
	// and written; a layout store is created if missing.
	Check(ctx context.Context) error
	// Push stores the regular file or directory at path as an artifact of
	// type typ. Blobs the store already holds are not written again.
	Push(ctx context.Context, path, typ string) (Descriptor, error)
	// Has reports whether the artifact's manifest and all its blobs are
	// stored.
	Has(ctx context.Context, digest string) (bool, error)
	// Pull writes the artifact's content to dest, a file or a directory as
	// it was pushed. dest must not exist; it appears only once the content
	// matched its digest.
	Pull(ctx context.Context, digest, dest string) error
	// ArtifactRepository returns a raw view of the repository artifacts
	// are pushed to ("<repository>/artifacts" in a registry, "artifacts" in
	// a layout), for their signatures and attestations. It does no I/O.
	ArtifactRepository() RawRepository
	// Close writes what Push and PutManifest left pending (a layout's
	// index.json).
	Close() error
}

var (
	// ErrNotFound is wrapped by the errors for an artifact, or a blob of
	// one, that the store does not hold. It is signature.ErrNotFound too:
	// a store's RawRepository is a signature.Repository as it is.
	ErrNotFound = errdef.ErrNotFound
	// ErrDigestMismatch is wrapped by the errors for stored content that
	// does not match its digest.
	ErrDigestMismatch = errdef.ErrDigestMismatch
)

const (
	artifactType      = "application/vnd.zen.artifact.v1"
	configMediaType   = "application/vnd.zen.artifact.config.v1+json"
	fileMediaType     = "application/octet-stream"
	dirMediaType      = string(types.OCIUncompressedLayer)
	refNameAnnotation = "org.opencontainers.image.ref.name"
	// titleAnnotation names the file a layer is: oras pull writes a layer
	// that has one to that path, and skips the others.
	titleAnnotation = "org.opencontainers.image.title"
)

// parseDigest parses an artifact digest given by a caller.
func parseDigest(digest string) (v1.Hash, error) {
	h, err := v1.NewHash(digest)
	if err == nil && h.Algorithm != "sha256" {
		err = fmt.Errorf("unsupported algorithm %q", h.Algorithm)
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("invalid artifact digest %q: %w", digest, err)
	}
	return h, nil
}

// readManifest fetches the manifest h and checks it against its digest.
func readManifest(ctx context.Context, b blobs, h v1.Hash) (*manifest, error) {
	raw, err := b.manifest(ctx, h)
	if err != nil {
		return nil, err
	}
	if got := sha256Of(raw); got != h {
		return nil, fmt.Errorf("manifest: %w", ErrDigestMismatch)
	}
	return parseManifest(raw)
}

func has(ctx context.Context, b blobs, digest string) (bool, error) {
	h, err := parseDigest(digest)
	if err != nil {
		return false, err
	}
	m, err := readManifest(ctx, b, h)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("artifact %s: %w", h, err)
	}
	for _, d := range []descriptor{m.Config, m.Layers[0]} {
		ok, err := b.has(ctx, d)
		if err != nil {
			return false, fmt.Errorf("artifact %s: %w", h, err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func pull(ctx context.Context, b blobs, digest, dest string) error {
	h, err := parseDigest(digest)
	if err != nil {
		return err
	}
	if err := pullLayer(ctx, b, h, dest); err != nil {
		return fmt.Errorf("artifact %s: %w", h, err)
	}
	return nil
}

func pullLayer(ctx context.Context, b blobs, h v1.Hash, dest string) error {
	if err := absent(dest); err != nil {
		return err
	}
	m, err := readManifest(ctx, b, h)
	if err != nil {
		return err
	}
	rc, err := b.open(ctx, m.Layers[0])
	if err != nil {
		return err
	}
	defer rc.Close()
	return unpack(rc, m.Layers[0], dest)
}

// manifestHead is what an index entry or a registry needs of a manifest.
type manifestHead struct {
	MediaType    types.MediaType `json:"mediaType"`
	ArtifactType string          `json:"artifactType"`
}

// headOf decodes the head of the manifest raw; its media type defaults to
// the OCI image manifest's.
func headOf(raw []byte) (manifestHead, error) {
	var h manifestHead
	if err := json.Unmarshal(raw, &h); err != nil {
		return h, fmt.Errorf("manifest is not JSON: %w", err)
	}
	if h.MediaType == "" {
		h.MediaType = types.OCIManifestSchema1
	}
	return h, nil
}

// checkContent fails with ErrDigestMismatch unless content has digest h.
func checkContent(h v1.Hash, content []byte) error {
	if got := sha256Of(content); got != h {
		return fmt.Errorf("content of %s has digest %s: %w", h, got, ErrDigestMismatch)
	}
	return nil
}
