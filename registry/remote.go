package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// remoteStore is an OCI registry repository; artifacts go to
// <repository>/artifacts, tagged with their digest's hex so that a
// registry's garbage collection keeps them.
type remoteStore struct {
	name string
	repo name.Repository
}

// OpenRemote opens the registry repository named like
// "registry.example.com/ml". Credentials come from the docker config
// keychain; loopback registries are spoken to over plain HTTP.
func OpenRemote(repository string) (Store, error) {
	repo, err := name.NewRepository(strings.TrimSuffix(repository, "/") + "/artifacts")
	if err != nil {
		return nil, fmt.Errorf("artifact store oci %s: %w", repository, err)
	}
	return &remoteStore{name: "oci " + repository, repo: repo}, nil
}

func (r *remoteStore) String() string { return r.name }

func (r *remoteStore) options(ctx context.Context, extra ...remote.Option) []remote.Option {
	return append([]remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithUserAgent("zen"),
		remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}),
	}, extra...)
}

// fail wraps a registry error with the store's name and what was done.
func (r *remoteStore) fail(doing string, err error) error {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return fmt.Errorf("artifact store %s: %s: cannot reach registry: %w", r, doing, err)
	}
	return fmt.Errorf("artifact store %s: %s: %w", r, doing, err)
}

func (r *remoteStore) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	req := r.repo.Tag("zen-check")
	if err := remote.CheckPushPermission(req, authn.DefaultKeychain, &ctxTransport{ctx: ctx, rt: tr}); err != nil {
		return r.fail("check push access", err)
	}
	return nil
}

// ctxTransport binds requests to a context.
type ctxTransport struct {
	ctx context.Context
	rt  http.RoundTripper
}

func (t *ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.rt.RoundTrip(req.WithContext(t.ctx))
}

func (r *remoteStore) Push(ctx context.Context, p, typ string) (Descriptor, error) {
	c, err := pack(p)
	if err != nil {
		return Descriptor{}, fmt.Errorf("artifact store %s: pack %s: %w", r, p, err)
	}
	defer c.cleanup()
	config, raw := artifact(typ, c)
	digest := digestOf(raw)
	opts := r.options(ctx)
	for _, l := range []v1.Layer{
		&blobLayer{digest: c.digest, size: c.size, media: c.media, open: c.open},
		&blobLayer{digest: digestOf(config), size: int64(len(config)), media: ConfigMediaType, open: bytesOpener(config)},
	} {
		if err := remote.WriteLayer(r.repo, l, opts...); err != nil {
			return Descriptor{}, r.fail("push blob", err)
		}
	}
	tag := r.repo.Tag(strings.TrimPrefix(digest, "sha256:"))
	if err := remote.Put(tag, rawManifest(raw), opts...); err != nil {
		return Descriptor{}, r.fail("push manifest", err)
	}
	return Descriptor{Digest: digest, Size: c.size, MediaType: c.media}, nil
}

func (r *remoteStore) Has(ctx context.Context, digest string) (bool, error) {
	ref := r.repo.Digest(digest)
	if _, err := remote.Head(ref, r.options(ctx)...); err != nil {
		if notFound(err) {
			return false, nil
		}
		return false, r.fail("look up "+digest, err)
	}
	return true, nil
}

func notFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && (terr.StatusCode == http.StatusNotFound)
}

func (r *remoteStore) Pull(ctx context.Context, digest, dest string) error {
	opts := r.options(ctx)
	desc, err := remote.Get(r.repo.Digest(digest), opts...)
	if notFound(err) {
		return fmt.Errorf("artifact store %s: %s: %w", r, digest, ErrNotFound)
	}
	if err != nil {
		return r.fail("fetch "+digest, err)
	}
	m, err := parseManifest(desc.Manifest, digest)
	if err != nil {
		return err
	}
	layer := m.Layers[0]
	l, err := remote.Layer(r.repo.Digest(layer.Digest), opts...)
	if err != nil {
		return r.fail("fetch "+layer.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return r.fail("fetch "+layer.Digest, err)
	}
	defer rc.Close()
	if err := unpack(rc, layer, dest); err != nil {
		return fmt.Errorf("artifact store %s: %w", r, err)
	}
	return nil
}

func (r *remoteStore) Close() error { return nil }

// blobLayer is a blob whose digest is known, read from disk when uploaded.
type blobLayer struct {
	digest string
	size   int64
	media  string
	open   func() (io.ReadCloser, error)
}

func (b *blobLayer) Digest() (v1.Hash, error)             { return v1.NewHash(b.digest) }
func (b *blobLayer) DiffID() (v1.Hash, error)             { return v1.NewHash(b.digest) }
func (b *blobLayer) Compressed() (io.ReadCloser, error)   { return b.open() }
func (b *blobLayer) Uncompressed() (io.ReadCloser, error) { return b.open() }
func (b *blobLayer) Size() (int64, error)                 { return b.size, nil }
func (b *blobLayer) MediaType() (types.MediaType, error)  { return types.MediaType(b.media), nil }

func bytesOpener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// rawManifest is a manifest pushed as it is.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return ManifestMediaType, nil }
