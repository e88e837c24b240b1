package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// checkTimeout bounds Check, whatever the registry does.
const checkTimeout = 30 * time.Second

// checkBackoff retries Check's requests briefly: a registry that is down
// should be reported now, not after defaultBackoff's 7.5 s.
var checkBackoff = remote.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 2}

// remoteBackend is a repository in an OCI registry, under which a store's
// repositories are: <repository>/artifacts and <repository>/models/<model>.
// Tags are the registry's.
type remoteBackend struct {
	name    string // as given, for messages
	base    string // the repository, without a trailing slash
	repo    name.Repository
	backoff remote.Backoff
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
	o := newOptions(opts)
	return &store{b: &remoteBackend{name: repository, base: base, repo: repo, backoff: o.backoff}, opts: o}, nil
}

func (s *remoteBackend) String() string { return "oci " + s.name }

// reference is the repository's full name, registry included, as
// go-containerregistry names it: "127.0.0.1:5000/ml/models/fraud".
func (s *remoteBackend) reference(path string) string {
	repo, err := s.repository(path)
	if err != nil {
		return s.base + "/" + path
	}
	return repo.Name()
}

// repository returns the registry repository of the path.
func (s *remoteBackend) repository(path string) (name.Repository, error) {
	if path == artifactsPath {
		return s.repo, nil
	}
	return name.NewRepository(s.base + "/" + path)
}

func (s *remoteBackend) options(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithUserAgent("zen"),
		remote.WithTransport(markBreaks{remote.DefaultTransport}),
		remote.WithRetryBackoff(s.backoff),
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
func (s *remoteBackend) reread(ctx context.Context, read func() error) error {
	b := s.backoff
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

func (s *remoteBackend) check(ctx context.Context) error {
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
		return fmt.Errorf("not allowed to push to %s (docker login?): %w", s.repo, err)
	case unreachable(err):
		return reach(err)
	}
	return fmt.Errorf("check push access to %s: %w", s.repo, err)
}

// spoolDir is the system's: a pushed tar is uploaded from there.
func (s *remoteBackend) spoolDir() (string, error) { return "", nil }

// ctxTransport binds every request to a context.
type ctxTransport struct {
	ctx context.Context
	rt  http.RoundTripper
}

func (t ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.rt.RoundTrip(req.WithContext(t.ctx))
}

// close does nothing: a registry holds nothing pending.
func (s *remoteBackend) close() error { return nil }

// reader reads the repository with one puller, which authenticates once.
func (s *remoteBackend) reader(ctx context.Context, path string) (blobs, error) {
	repo, err := s.repository(path)
	if err != nil {
		return nil, err
	}
	p, err := remote.NewPuller(s.options(ctx)...)
	if err != nil {
		return nil, err
	}
	return remoteBlobs{repo: repo, p: p}, nil
}

// remoteBlobs reads a repository with one puller.
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
	n, err := b.size(ctx, d.Digest)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return n < 0 || n == d.Size, nil
}

func (b remoteBlobs) size(ctx context.Context, h v1.Hash) (int64, error) {
	l, err := b.p.Layer(ctx, b.repo.Digest(h.String()))
	var n int64
	if err == nil {
		n, err = l.Size() // a HEAD request
	}
	switch {
	case notFound(err):
		return 0, ErrNotFound
	case err != nil:
		return 0, fmt.Errorf("look up blob %s: %w", h, reach(err))
	}
	return n, nil
}

// putBlobs uploads the blobs, n at a time, each unless the registry has it,
// with one pusher, which authenticates once and is safe for concurrent
// use. The first error cancels the uploads under way; those not started
// do not start.
func (s *remoteBackend) putBlobs(ctx context.Context, path string, bs []*blobLayer, n int) error {
	repo, err := s.repository(path)
	if err != nil {
		return err
	}
	p, err := remote.NewPusher(s.options(ctx)...)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for _, b := range bs {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			// Upload does as remote.WriteLayer: nothing if the blob is there.
			if err := p.Upload(ctx, repo, b); err != nil {
				return fmt.Errorf("upload blob %s: %w", b.d.Digest, reach(err))
			}
			return nil
		})
	}
	return g.Wait()
}

// tagged fetches the manifest tag points at.
func (s *remoteBackend) tagged(ctx context.Context, path, tag string) ([]byte, error) {
	repo, err := s.repository(path)
	if err != nil {
		return nil, err
	}
	d, err := remote.Get(repo.Tag(tag), s.options(ctx)...)
	switch {
	case notFound(err):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("fetch manifest: %w", reach(err))
	}
	return d.Manifest, nil
}

// resolve asks the registry for the tag's digest, with a HEAD request.
func (s *remoteBackend) resolve(ctx context.Context, path, tag string) (v1.Hash, error) {
	repo, err := s.repository(path)
	if err != nil {
		return v1.Hash{}, err
	}
	d, err := remote.Head(repo.Tag(tag), s.options(ctx)...)
	switch {
	case notFound(err):
		return v1.Hash{}, ErrNotFound
	case err != nil:
		return v1.Hash{}, reach(err)
	}
	return d.Digest, nil
}

// putManifest puts raw by tag, or by digest, with the media type raw says
// it has; the registry has it at once.
func (s *remoteBackend) putManifest(ctx context.Context, path, tag string, h v1.Hash, raw []byte, _ bool) error {
	head, err := headOf(raw)
	if err != nil {
		return err
	}
	repo, err := s.repository(path)
	if err != nil {
		return err
	}
	var ref name.Reference = repo.Digest(h.String())
	if tag != "" {
		ref = repo.Tag(tag)
	}
	if err := remote.Put(ref, typedManifest{raw: raw, mediaType: head.MediaType}, s.options(ctx)...); err != nil {
		return reach(err)
	}
	return nil
}

// A blobLayer is what go-containerregistry's Upload needs of a layer.

func (l *blobLayer) Digest() (v1.Hash, error)             { return l.d.Digest, nil }
func (l *blobLayer) DiffID() (v1.Hash, error)             { return l.d.Digest, nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error)   { return l.open() }
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) { return l.open() }
func (l *blobLayer) Size() (int64, error)                 { return l.d.Size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error)  { return types.MediaType(l.d.MediaType), nil }

// typedManifest is a manifest pushed byte for byte, with its media type.
type typedManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (m typedManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m typedManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }
