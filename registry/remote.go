package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/zen-dev/zen/internal/failpoint"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// checkTimeout bounds Check, whatever the registry does.
const checkTimeout = 30 * time.Second

// checkBackoff retries Check's requests briefly: a registry that is down
// should be reported now, not after defaultBackoff's 7.5 s.
var checkBackoff = remote.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 2}

// remoteStore is a repository in an OCI registry. Artifacts go to
// <repository>/artifacts, tagged with their digest's hex so that the
// registry's garbage collection keeps them.
type remoteStore struct {
	name string // as given, for messages
	base string // the repository, without a trailing slash
	repo name.Repository
	opts options
}

// OpenRemote opens the registry repository named like
// "registry.example.com/ml". Credentials come from authn.DefaultKeychain (the
// docker config); loopback and private registries are spoken to over plain
// HTTP, as go-containerregistry does.
func OpenRemote(repository string, opts ...Option) (Store, error) {
	base := strings.TrimSuffix(repository, "/")
	repo, err := name.NewRepository(base + "/artifacts")
	if err != nil {
		return nil, fmt.Errorf("artifact store oci %s: %w", repository, err)
	}
	return &remoteStore{name: repository, base: base, repo: repo, opts: newOptions(opts)}, nil
}

func (s *remoteStore) String() string { return "oci " + s.name }

func (s *remoteStore) options(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithUserAgent("zen"),
		remote.WithTransport(markBreaks{remote.DefaultTransport}),
		remote.WithRetryBackoff(s.opts.backoff),
	}
}

// errBrokenOff is wrapped by the errors of reading an answer's body that
// the registry cut short or reset.
var errBrokenOff = errors.New("the registry's answer broke off")

// markBreaks is a transport whose answers' bodies fail with errors that
// wrap errBrokenOff.
type markBreaks struct{ rt http.RoundTripper }

func (t markBreaks) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err == nil {
		resp.Body = breakingBody{resp.Body}
	}
	return resp, err
}

type breakingBody struct{ io.ReadCloser }

func (b breakingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %w", errBrokenOff, err)
	}
	return n, err
}

// reread runs read, and again while it fails because an answer broke off,
// as the store's backoff says: go-containerregistry retries requests that
// failed, not the reading of what they answered. What read writes must not
// be there when it fails (a pull writes its destination last).
func (s *remoteStore) reread(ctx context.Context, read func() error) error {
	b := s.opts.backoff
	for {
		err := read()
		if err == nil || !errors.Is(err, errBrokenOff) || ctx.Err() != nil || b.Steps <= 1 {
			return err
		}
		t := time.NewTimer(b.Step())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// fail wraps err with the store's name and what was being done.
func (s *remoteStore) fail(doing string, err error) error {
	if doing == "" {
		return fmt.Errorf("artifact store %s: %w", s, err)
	}
	return fmt.Errorf("artifact store %s: %s: %w", s, doing, err)
}

// reach says so when err is a failure to reach the registry at all, keeping
// only the network error: the URL and retries add nothing to "dial tcp
// 127.0.0.1:5000: connect: connection refused". A request the registry
// closed the connection on, with no answer, is said to be so, named
// without its query (an upload's state).
func reach(err error) error {
	var uerr *url.Error
	switch {
	case unreachable(err):
		var nerr *net.OpError
		if errors.As(err, &nerr) {
			err = nerr
		}
		return fmt.Errorf("cannot reach registry: %w", err)
	case errors.As(err, &uerr) && errors.Is(uerr.Err, io.EOF):
		u, _, _ := strings.Cut(uerr.URL, "?")
		return fmt.Errorf("the registry closed the connection without answering %s %s: %w", strings.ToUpper(uerr.Op), u, uerr.Err)
	}
	return err
}

func unreachable(err error) bool {
	var nerr *net.OpError
	return errors.As(err, &nerr) || errors.Is(err, context.DeadlineExceeded)
}

func (s *remoteStore) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	// CheckPushPermission takes no context: bind its requests to ctx.
	rt := transport.NewRetry(ctxTransport{ctx, remote.DefaultTransport}, transport.WithRetryBackoff(checkBackoff))
	err := remote.CheckPushPermission(s.repo.Tag("zen-check"), authn.DefaultKeychain, rt)
	var terr *transport.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden):
		return s.fail("", fmt.Errorf("not allowed to push to %s (docker login?): %w", s.repo, err))
	case unreachable(err):
		return s.fail("", reach(err))
	}
	return s.fail("check push access to "+s.repo.String(), err)
}

// ctxTransport binds every request to a context.
type ctxTransport struct {
	ctx context.Context
	rt  http.RoundTripper
}

func (t ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.rt.RoundTrip(req.WithContext(t.ctx))
}

func (s *remoteStore) Push(ctx context.Context, path, typ string) (Descriptor, error) {
	a, err := pack(path, typ, "")
	if err != nil {
		return Descriptor{}, s.fail("", fmt.Errorf("push %s: %w", path, err))
	}
	defer a.cleanup()
	// One pusher per push: it authenticates once for all requests, and
	// remembers the blobs it wrote only as long as it lives.
	p, err := remote.NewPusher(s.options(ctx)...)
	if err != nil {
		return Descriptor{}, s.fail("", err)
	}
	layer := a.layer()
	for _, l := range []*blobLayer{
		{d: a.m.Config, open: bytesOpener(a.config)},
		{d: layer, open: func() (io.ReadCloser, error) { return os.Open(a.file) }},
	} {
		// Upload does as remote.WriteLayer: nothing if the blob is there.
		if err := p.Upload(ctx, s.repo, l); err != nil {
			return Descriptor{}, s.fail(fmt.Sprintf("push %s: upload blob %s", path, l.d.Digest), reach(err))
		}
	}
	failpoint.Hit(failpoint.BlobsUploaded)
	if err := p.Put(ctx, s.repo.Tag(a.digest.Hex), rawManifest(a.manifest)); err != nil {
		return Descriptor{}, s.fail(fmt.Sprintf("push %s: put manifest %s", path, a.digest), reach(err))
	}
	return a.descriptor(), nil
}

func (s *remoteStore) Has(ctx context.Context, digest string) (bool, error) {
	b, err := s.blobs(ctx)
	if err == nil {
		var ok bool
		err = s.reread(ctx, func() (err error) {
			ok, err = has(ctx, b, digest)
			return err
		})
		if err == nil {
			return ok, nil
		}
	}
	return false, s.fail("", err)
}

func (s *remoteStore) Pull(ctx context.Context, digest, dest string) error {
	b, err := s.blobs(ctx)
	if err == nil {
		err = s.reread(ctx, func() error { return pull(ctx, b, digest, dest) })
	}
	if err != nil {
		return s.fail("", err)
	}
	return nil
}

// Close does nothing: a registry holds nothing pending.
func (s *remoteStore) Close() error { return nil }

func (s *remoteStore) blobs(ctx context.Context) (remoteBlobs, error) {
	p, err := remote.NewPuller(s.options(ctx)...)
	return remoteBlobs{repo: s.repo, p: p}, err
}

// remoteBlobs reads a repository with one puller, which authenticates once.
type remoteBlobs struct {
	repo name.Repository
	p    *remote.Puller
}

func notFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

func (b remoteBlobs) manifest(ctx context.Context, h v1.Hash) ([]byte, error) {
	d, err := b.p.Get(ctx, b.repo.Digest(h.String()))
	switch {
	case notFound(err):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("fetch manifest: %w", reach(err))
	}
	return d.Manifest, nil
}

func (b remoteBlobs) open(ctx context.Context, d descriptor) (io.ReadCloser, error) {
	l, err := b.p.Layer(ctx, b.repo.Digest(d.Digest.String()))
	var rc io.ReadCloser
	if err == nil {
		rc, err = l.Compressed()
	}
	switch {
	case notFound(err):
		return nil, fmt.Errorf("blob %s: %w", d.Digest, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("fetch blob %s: %w", d.Digest, reach(err))
	}
	return rc, nil
}

func (b remoteBlobs) has(ctx context.Context, d descriptor) (bool, error) {
	l, err := b.p.Layer(ctx, b.repo.Digest(d.Digest.String()))
	var n int64
	if err == nil {
		n, err = l.Size() // a HEAD request
	}
	switch {
	case notFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up blob %s: %w", d.Digest, reach(err))
	}
	return n < 0 || n == d.Size, nil
}

// blobLayer is a blob of known digest and size, read when uploaded.
type blobLayer struct {
	d    descriptor
	open func() (io.ReadCloser, error)
}

func (l *blobLayer) Digest() (v1.Hash, error)             { return l.d.Digest, nil }
func (l *blobLayer) DiffID() (v1.Hash, error)             { return l.d.Digest, nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error)   { return l.open() }
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) { return l.open() }
func (l *blobLayer) Size() (int64, error)                 { return l.d.Size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error)  { return types.MediaType(l.d.MediaType), nil }

// rawManifest is a manifest pushed byte for byte.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
