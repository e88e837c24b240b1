package registry

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// errReadOnly is returned by an image repository's writes: zen checks an
// image's signatures, it never signs images.
var errReadOnly = errors.New("an image's repository is read-only to zen")

// ImageRepository returns the registry repository of an image reference
// ("127.0.0.1:5000/base:1", "python@sha256:…") for reading the image's
// cosign signatures, which cosign keeps beside it under the tag
// "sha256-<hex>.sig". Credentials and the scheme follow ResolveImage's
// rules. Its writes fail: it is for checking only.
func ImageRepository(ref string) (RawRepository, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("not an image reference: %w", err)
	}
	return imageRepository{r.Context()}, nil
}

// imageRepository is an image's repository in its registry.
type imageRepository struct{ repo name.Repository }

func (r imageRepository) Reference() string { return r.repo.Name() }

func (r imageRepository) options(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithUserAgent("zen"),
	}
}

func (r imageRepository) Manifest(ctx context.Context, tag string) ([]byte, error) {
	h, isDigest, err := parseRef(tag)
	if err != nil {
		return nil, err
	}
	var ref name.Reference = r.repo.Tag(tag)
	if isDigest {
		ref = r.repo.Digest(h.String())
	}
	d, err := remote.Get(ref, r.options(ctx)...)
	switch {
	case notFound(err):
		return nil, fmt.Errorf("%s: manifest %s: %w", r.repo.Name(), tag, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("%s: manifest %s: %w", r.repo.Name(), tag, reach(err))
	}
	return d.Manifest, nil
}

func (r imageRepository) Blob(ctx context.Context, digest string) ([]byte, error) {
	h, isDigest, err := parseRef(digest)
	if err != nil || !isDigest {
		return nil, fmt.Errorf("%s: blob %q: not a digest", r.repo.Name(), digest)
	}
	l, err := remote.Layer(r.repo.Digest(h.String()), r.options(ctx)...)
	var rc io.ReadCloser
	if err == nil {
		rc, err = l.Compressed()
	}
	switch {
	case notFound(err):
		return nil, fmt.Errorf("%s: blob %s: %w", r.repo.Name(), digest, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("%s: blob %s: %w", r.repo.Name(), digest, reach(err))
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxRawBlob+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: blob %s: %w", r.repo.Name(), digest, err)
	case len(b) > maxRawBlob:
		return nil, fmt.Errorf("%s: blob %s is over %d MiB", r.repo.Name(), digest, maxRawBlob>>20)
	}
	return b, nil
}

func (r imageRepository) PutManifest(context.Context, string, []byte) error { return errReadOnly }

func (r imageRepository) PutBlob(context.Context, string, []byte) error { return errReadOnly }
