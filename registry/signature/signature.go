// Package signature signs, attests and verifies artifacts the way cosign
// does with a key pair, offline: no transparency log, no certificates.
//
// Signatures and attestations live beside the artifact, in the same OCI
// repository, under cosign's tags "sha256-<hex>.sig" and "sha256-<hex>.att".
// Each tag holds an OCI image manifest with an ordinary image config and one
// uncompressed layer per signature: a simple-signing payload with its
// signature in a layer annotation, or a DSSE envelope around an in-toto
// statement. Adding one appends a layer; nothing is overwritten. What this
// package writes, `cosign verify` and `cosign verify-attestation` accept,
// and what `cosign sign` writes, Verify accepts.
//
// Two writers appending to the same tag at the same moment can lose one of
// the appends, as with cosign itself: the registry has no compare-and-swap
// for tags.
package signature

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/zen-dev/zen/registry/errdef"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Repository is where an artifact and its signatures live: one OCI
// repository. zen's artifact stores implement it.
type Repository interface {
	// Reference names the repository as cosign writes it in a signed
	// payload's docker-reference, e.g. "127.0.0.1:5000/ml/models/fraud".
	Reference() string
	// Manifest returns the manifest tagged tag, or an error wrapping
	// ErrNotFound.
	Manifest(ctx context.Context, tag string) ([]byte, error)
	// PutManifest stores raw, an OCI image manifest, under tag.
	PutManifest(ctx context.Context, tag string, raw []byte) error
	// Blob returns the content of a blob (only small ones are asked for),
	// or an error wrapping ErrNotFound.
	Blob(ctx context.Context, digest string) ([]byte, error)
	// PutBlob stores a blob unless it is present.
	PutBlob(ctx context.Context, digest string, content []byte) error
}

var (
	// ErrNotFound is wrapped by a Repository's errors for a tag or a blob
	// it does not hold. It is registry.ErrNotFound: one error, defined in
	// errdef, so that a store's repository needs no adapter.
	ErrNotFound = errdef.ErrNotFound
	// ErrUnsigned is wrapped by the verification errors when there is no
	// signature, or no attestation of the asked type, at all.
	ErrUnsigned = errors.New("not signed")
	// ErrBadSignature is wrapped by the verification errors when a stored
	// signature is forged, tampered with or replayed: by this key but not
	// over its payload, over a payload naming another digest, or with
	// content that does not match its digest.
	ErrBadSignature = errors.New("bad signature")
	// ErrOtherKey is wrapped by the verification errors when signatures
	// exist and are intact but none is by the key asked for.
	ErrOtherKey = errors.New("not signed by this key")
)

// cosign's media types, annotations and payload type.
const (
	simpleSigningMediaType  = "application/vnd.dev.cosign.simplesigning.v1+json"
	dsseMediaType           = "application/vnd.dsse.envelope.v1+json"
	signatureAnnotation     = "dev.cosignproject.cosign/signature"
	predicateTypeAnnotation = "predicateType"
)

// maxPayload bounds what verification reads of one signature layer.
const maxPayload = 32 << 20

// Sign adds a signature by s of the manifest digest ("sha256:<hex>") to the
// repository's "sha256-<hex>.sig" tag, in cosign's simple-signing format.
// An existing signature manifest is extended by a layer, never replaced; a
// signature by the same key of the same payload is not added twice.
func Sign(ctx context.Context, repo Repository, digest string, s *Signer) error {
	h, err := parseDigest(digest)
	if err != nil {
		return err
	}
	// Not payload.Cosign: it wants the reference parsed, and a local
	// store's is a name, not a registry's. Optional stays null, as cosign
	// writes it.
	content, err := json.Marshal(payload.SimpleContainerImage{Critical: payload.Critical{
		Identity: payload.Identity{DockerReference: repo.Reference()},
		Image:    payload.Image{DockerManifestDigest: h.String()},
		Type:     payload.CosignSignatureType,
	}})
	if err != nil {
		return err
	}
	tag := tagOf(h, "sig")
	m, err := readSigned(ctx, repo, tag)
	if err != nil {
		return fmt.Errorf("sign %s@%s: %w", repo.Reference(), digest, err)
	}
	payloadDigest := sha256Hash(content)
	pub := s.Public()
	for _, l := range m.manifest.Layers {
		sig, err := base64.StdEncoding.DecodeString(l.Annotations[signatureAnnotation])
		if l.Digest == payloadDigest && err == nil && verify(pub, sig, content) {
			return nil
		}
	}
	sig, err := s.sign(content)
	if err != nil {
		return err
	}
	layer := v1.Descriptor{
		MediaType:   simpleSigningMediaType,
		Size:        int64(len(content)),
		Digest:      payloadDigest,
		Annotations: map[string]string{signatureAnnotation: base64.StdEncoding.EncodeToString(sig)},
	}
	if err := m.append(ctx, repo, layer, content); err != nil {
		return fmt.Errorf("sign %s@%s: %w", repo.Reference(), digest, err)
	}
	return nil
}

// Verify checks that a signature by v of the manifest digest is stored. Its
// errors wrap ErrUnsigned when there is no signature, ErrBadSignature when
// a signature is forged, tampered with or replayed, and ErrOtherKey when
// the signatures are intact but by other keys. One good signature is
// enough, as for cosign; the payload's docker-reference is not compared,
// so an artifact copied to another repository with its signatures still
// verifies.
func Verify(ctx context.Context, repo Repository, digest string, v Checker) error {
	h, err := parseDigest(digest)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		return fmt.Errorf("verify %s@%s: %w", repo.Reference(), digest, err)
	}
	m, err := readSigned(ctx, repo, tagOf(h, "sig"))
	if err != nil {
		return fail(err)
	}
	var bad error
	n := 0
	for _, l := range m.manifest.Layers {
		b64, ok := l.Annotations[signatureAnnotation]
		if !ok {
			continue
		}
		n++
		content, err := readLayer(ctx, repo, l)
		if errors.Is(err, ErrBadSignature) {
			bad = cmp.Or(bad, err)
			continue
		} else if err != nil {
			return fail(err)
		}
		var p payload.SimpleContainerImage
		if err := json.Unmarshal(content, &p); err != nil {
			bad = cmp.Or(bad, fmt.Errorf("%w: layer %s: payload is not cosign's: %v", ErrBadSignature, l.Digest, err))
			continue
		}
		if t := p.Critical.Type; t != payload.CosignSignatureType {
			bad = cmp.Or(bad, fmt.Errorf("%w: layer %s: payload is not cosign's: type %q", ErrBadSignature, l.Digest, t))
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		valid := err == nil && verify(v, sig, content)
		named := p.Critical.Image.DockerManifestDigest
		switch {
		case valid && named == h.String():
			return nil
		case valid:
			bad = cmp.Or(bad, fmt.Errorf("%w: layer %s: a signature by this key of %s (replayed)", ErrBadSignature, l.Digest, named))
		case named != h.String():
			bad = cmp.Or(bad, fmt.Errorf("%w: layer %s: payload names %s (tampered with or replayed)", ErrBadSignature, l.Digest, named))
		}
	}
	switch {
	case bad != nil:
		return fail(bad)
	case n == 0:
		return fail(ErrUnsigned)
	default:
		return fail(fmt.Errorf("%w: none of %d signatures verifies with it", ErrOtherKey, n))
	}
}

// signed is a signature manifest being read or extended.
type signed struct {
	tag      string
	manifest v1.Manifest
	config   v1.ConfigFile // read by append, for a manifest that has one
}

// readSigned reads the signature manifest tagged tag, or starts the one
// cosign would: an OCI image manifest with an empty image config.
func readSigned(ctx context.Context, repo Repository, tag string) (*signed, error) {
	m := &signed{
		tag: tag,
		manifest: v1.Manifest{
			SchemaVersion: 2,
			MediaType:     types.OCIManifestSchema1,
			Config:        v1.Descriptor{MediaType: types.OCIConfigJSON},
		},
		config: v1.ConfigFile{RootFS: v1.RootFS{Type: "layers"}},
	}
	raw, err := repo.Manifest(ctx, tag)
	if errors.Is(err, ErrNotFound) {
		return m, nil
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", tag, err)
	}
	m.manifest = v1.Manifest{}
	if err := json.Unmarshal(raw, &m.manifest); err != nil {
		return nil, fmt.Errorf("read %s: %w", tag, err)
	}
	if mt := m.manifest.MediaType; mt != types.OCIManifestSchema1 && mt != types.DockerManifestSchema2 {
		return nil, fmt.Errorf("read %s: media type %q is not an image manifest", tag, mt)
	}
	if mt := m.manifest.Config.MediaType; mt != types.OCIConfigJSON && mt != types.DockerConfigJSON {
		return nil, fmt.Errorf("read %s: config media type %q is not an image config", tag, mt)
	}
	m.config = v1.ConfigFile{}
	return m, nil
}

// append stores content as a new last layer described by layer, and the
// manifest and config that list it, the way go-containerregistry's
// mutate.Append (which cosign uses) does.
func (m *signed) append(ctx context.Context, repo Repository, layer v1.Descriptor, content []byte) error {
	if m.manifest.Config.Digest != (v1.Hash{}) {
		// Verification needs no config; only extending a manifest does.
		cfg, err := readBlob(ctx, repo, m.manifest.Config)
		if err != nil {
			return fmt.Errorf("read %s: config: %w", m.tag, err)
		}
		if err := json.Unmarshal(cfg, &m.config); err != nil {
			return fmt.Errorf("read %s: config: %w", m.tag, err)
		}
	}
	m.manifest.Layers = append(m.manifest.Layers, layer)
	// The layers are stored uncompressed: diff ID and digest are one.
	m.config.RootFS.DiffIDs = append(m.config.RootFS.DiffIDs, layer.Digest)
	m.config.History = append(m.config.History, v1.History{})
	cfg, err := json.Marshal(m.config)
	if err != nil {
		return err
	}
	m.manifest.Config.Digest = sha256Hash(cfg)
	m.manifest.Config.Size = int64(len(cfg))
	raw, err := json.Marshal(m.manifest)
	if err != nil {
		return err
	}
	if err := repo.PutBlob(ctx, layer.Digest.String(), content); err != nil {
		return fmt.Errorf("write layer: %w", err)
	}
	if err := repo.PutBlob(ctx, m.manifest.Config.Digest.String(), cfg); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := repo.PutManifest(ctx, m.tag, raw); err != nil {
		return fmt.Errorf("write %s: %w", m.tag, err)
	}
	return nil
}

// readLayer returns a signature layer's content. Content that is missing,
// too large or does not match its digest is an error wrapping
// ErrBadSignature; other errors (the network) are returned as they are.
func readLayer(ctx context.Context, repo Repository, l v1.Descriptor) ([]byte, error) {
	if l.Size > maxPayload {
		return nil, fmt.Errorf("%w: layer %s: %d bytes, more than %d", ErrBadSignature, l.Digest, l.Size, maxPayload)
	}
	b, err := readBlob(ctx, repo, l)
	if errors.Is(err, ErrNotFound) || errors.Is(err, errMismatch) {
		return nil, fmt.Errorf("%w: layer %s: %v", ErrBadSignature, l.Digest, err)
	}
	return b, err
}

var errMismatch = errors.New("content does not match its digest")

// readBlob reads the blob d describes and checks it against its digest: the
// Repository is not trusted to.
func readBlob(ctx context.Context, repo Repository, d v1.Descriptor) ([]byte, error) {
	if d.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("digest %q: only sha256 is supported", d.Digest)
	}
	b, err := repo.Blob(ctx, d.Digest.String())
	if err != nil {
		return nil, err
	}
	if sha256Hash(b) != d.Digest || int64(len(b)) != d.Size {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, errMismatch)
	}
	return b, nil
}

// parseDigest reads a manifest digest, "sha256:<64 hex digits>".
func parseDigest(digest string) (v1.Hash, error) {
	h, err := v1.NewHash(digest)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("digest %q: %w", digest, err)
	}
	if h.Algorithm != "sha256" {
		return v1.Hash{}, fmt.Errorf("digest %q: only sha256 is supported", digest)
	}
	return h, nil
}

// tagOf is cosign's tag for the signatures ("sig") or attestations ("att")
// of the manifest h.
func tagOf(h v1.Hash, suffix string) string {
	return h.Algorithm + "-" + h.Hex + "." + suffix
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}
