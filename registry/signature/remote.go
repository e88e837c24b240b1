package signature

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// remoteRepo is a Repository in an OCI registry.
type remoteRepo struct {
	repo   name.Repository
	puller *remote.Puller
	pusher *remote.Pusher
}

// Remote is the Repository repository ("host[:port]/path") in an OCI
// registry, reached with go-containerregistry: credentials from
// authn.DefaultKeychain (the docker config), plain HTTP for loopback and
// private addresses and HTTPS elsewhere.
func Remote(repository string) (Repository, error) {
	repo, err := name.NewRepository(repository)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", repository, err)
	}
	auth := remote.WithAuthFromKeychain(authn.DefaultKeychain)
	puller, err := remote.NewPuller(auth)
	if err != nil {
		return nil, err
	}
	pusher, err := remote.NewPusher(auth)
	if err != nil {
		return nil, err
	}
	return &remoteRepo{repo: repo, puller: puller, pusher: pusher}, nil
}

// Reference returns the repository's full name, registry included, as
// cosign writes it.
func (r *remoteRepo) Reference() string { return r.repo.Name() }

// Manifest implements Repository.
func (r *remoteRepo) Manifest(ctx context.Context, tag string) ([]byte, error) {
	d, err := r.puller.Get(ctx, r.repo.Tag(tag))
	if err != nil {
		return nil, r.fail(tag, err)
	}
	return d.Manifest, nil
}

// PutManifest implements Repository.
func (r *remoteRepo) PutManifest(ctx context.Context, tag string, raw []byte) error {
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%s:%s: %w", r.repo, tag, err)
	}
	if err := r.pusher.Put(ctx, r.repo.Tag(tag), rawManifest{raw, m.MediaType}); err != nil {
		return r.fail(tag, err)
	}
	return nil
}

// Blob implements Repository. It reads at most maxPayload bytes; the
// content is checked against digest.
func (r *remoteRepo) Blob(ctx context.Context, digest string) ([]byte, error) {
	l, err := r.puller.Layer(ctx, r.repo.Digest(digest))
	if err != nil {
		return nil, r.fail(digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, r.fail(digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxPayload+1))
	if err != nil {
		return nil, r.fail(digest, err)
	}
	if len(b) > maxPayload {
		return nil, fmt.Errorf("%s@%s: larger than %d bytes", r.repo, digest, maxPayload)
	}
	return b, nil
}

// PutBlob implements Repository.
func (r *remoteRepo) PutBlob(ctx context.Context, digest string, content []byte) error {
	if h := sha256Hash(content); h.String() != digest {
		return fmt.Errorf("%s@%s: content has digest %s", r.repo, digest, h)
	}
	if err := r.pusher.Upload(ctx, r.repo, static.NewLayer(content, types.OCIUncompressedLayer)); err != nil {
		return r.fail(digest, err)
	}
	return nil
}

// fail names the tag or digest in err, wrapping ErrNotFound for a 404.
func (r *remoteRepo) fail(what string, err error) error {
	sep := ":"
	if _, herr := v1.NewHash(what); herr == nil {
		sep = "@"
	}
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s%s%s: %w (%v)", r.repo, sep, what, ErrNotFound, err)
	}
	return fmt.Errorf("%s%s%s: %w", r.repo, sep, what, err)
}

// rawManifest lets go-containerregistry put a manifest as it is.
type rawManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }
