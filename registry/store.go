package registry

import (
	"context"
	"fmt"
	"io"

	"github.com/zen-dev/zen/internal/failpoint"
	"github.com/zen-dev/zen/progress"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A store is written once over a backend: a layout directory (layout.go)
// or a registry (remote.go) holds repositories of manifests, tags and
// blobs, and that is all a backend does. What to pack, what to upload and
// in which order, what to check against its digest, and what the errors
// say are the store's, the same for both.

// backend is one kind of storage for a store. A repository is named by its
// path under the store: "artifacts", or "models/<model>" with a valid
// model name.
type backend interface {
	// String names the store in messages: "oci-layout .zen/store",
	// "oci 127.0.0.1:5000/ml".
	String() string
	// reference names the repository for RawRepository.Reference.
	reference(path string) string
	// check makes sure the storage can be reached and written.
	check(ctx context.Context) error
	// spoolDir readies the storage for writing and returns the directory
	// a push spools its tars to ("" for the system's): a layout's own, so
	// that a tar is moved in place rather than copied.
	spoolDir() (string, error)
	// reader returns what reads the repository's manifests by digest and
	// its blobs, for one operation.
	reader(ctx context.Context, path string) (blobs, error)
	// tagged returns the manifest tag points at in the repository, not
	// checked, or an error wrapping ErrNotFound.
	tagged(ctx context.Context, path, tag string) ([]byte, error)
	// resolve returns the digest tag points at in the repository, or an
	// error wrapping ErrNotFound.
	resolve(ctx context.Context, path, tag string) (v1.Hash, error)
	// putBlobs stores the blobs bs the repository does not hold whole,
	// at most n at once, in their order when n is 1.
	putBlobs(ctx context.Context, path string, bs []*blobLayer, n int) error
	// putManifest stores raw, whose digest is h, in the repository and
	// points tag at it; with tag "", it is stored untagged. With now, the
	// tag is visible to other processes once putManifest returns; else a
	// layout's may be written at close.
	putManifest(ctx context.Context, path, tag string, h v1.Hash, raw []byte, now bool) error
	// reread runs read, and again while it fails because an answer broke
	// off; see remoteBackend.reread.
	reread(ctx context.Context, read func() error) error
	// close writes what the store left pending.
	close() error
}

// blobs is what reading a repository needs: Has, Pull, PullModel, Blob.
type blobs interface {
	// manifest returns the raw manifest stored under h, or an error
	// wrapping ErrNotFound.
	manifest(ctx context.Context, h v1.Hash) ([]byte, error)
	// open opens the blob d, or returns an error wrapping ErrNotFound.
	open(ctx context.Context, d descriptor) (io.ReadCloser, error)
	// has reports whether the blob d is stored whole.
	has(ctx context.Context, d descriptor) (bool, error)
	// size returns the size of the blob h, or an error wrapping
	// ErrNotFound.
	size(ctx context.Context, h v1.Hash) (int64, error)
}

// The repositories of a store.
const artifactsPath = "artifacts"

func modelPath(model string) string { return "models/" + model }

// store is a Store and a ModelStore over a backend.
type store struct {
	b    backend
	opts options
}

var _ ModelStore = (*store)(nil)

func (s *store) String() string { return s.b.String() }

// fail wraps err with the store's name and what was being done.
func (s *store) fail(doing string, err error) error {
	if doing == "" {
		return fmt.Errorf("artifact store %s: %w", s, err)
	}
	return fmt.Errorf("artifact store %s: %s: %w", s, doing, err)
}

func (s *store) Check(ctx context.Context) error {
	if err := s.b.check(ctx); err != nil {
		return s.fail("", err)
	}
	return nil
}

func (s *store) Push(ctx context.Context, path, typ string) (Descriptor, error) {
	spool, err := s.b.spoolDir()
	if err != nil {
		return Descriptor{}, s.fail("", err)
	}
	doing := "push " + path
	a, err := pack(path, typ, spool, progress.FromContext(ctx))
	if err != nil {
		return Descriptor{}, s.fail(doing, err)
	}
	defer a.cleanup()
	bs := []*blobLayer{
		{d: a.m.Config, open: bytesOpener(a.config)},
		{d: a.layer(), open: a.open, spooled: &a.spooled},
	}
	// One at a time, config first, as go-containerregistry's remote.Write.
	if err := s.putBlobs(ctx, artifactsPath, bs, 1); err != nil {
		return Descriptor{}, s.fail(doing, err)
	}
	failpoint.Hit(failpoint.BlobsUploaded)
	// Tagged with its digest's hex, so that a registry's garbage
	// collection keeps it.
	if err := s.b.putManifest(ctx, artifactsPath, a.digest.Hex, a.digest, a.manifest, false); err != nil {
		return Descriptor{}, s.fail(doing, fmt.Errorf("put manifest %s: %w", a.digest, err))
	}
	return a.descriptor(), nil
}

func (s *store) Has(ctx context.Context, digest string) (bool, error) {
	b, err := s.reader(ctx, artifactsPath)
	if err == nil {
		var ok bool
		err = s.b.reread(ctx, func() (err error) {
			ok, err = has(ctx, b, digest)
			return err
		})
		if err == nil {
			return ok, nil
		}
	}
	return false, s.fail("", err)
}

func (s *store) Pull(ctx context.Context, digest, dest string) error {
	b, err := s.reader(ctx, artifactsPath)
	if err == nil {
		err = s.b.reread(ctx, func() error { return pull(ctx, b, digest, dest) })
	}
	if err != nil {
		return s.fail("", err)
	}
	return nil
}

func (s *store) Close() error {
	if err := s.b.close(); err != nil {
		return s.fail("", err)
	}
	return nil
}

func (s *store) PushModel(ctx context.Context, p string, meta ModelMeta) (Descriptor, error) {
	doing := fmt.Sprintf("push model %s from %s", meta.Name, p)
	if err := meta.check(); err != nil {
		return Descriptor{}, s.fail(doing, err)
	}
	spool, err := s.b.spoolDir()
	if err != nil {
		return Descriptor{}, s.fail(doing, err)
	}
	a, err := packModel(p, meta, spool, s.opts.largeFile)
	if err != nil {
		return Descriptor{}, s.fail(doing, err)
	}
	defer a.cleanup()
	bs := []*blobLayer{{d: a.m.Config, open: bytesOpener(a.config)}}
	seen := map[v1.Hash]bool{a.m.Config.Digest: true}
	for _, l := range a.layers {
		// Files of the same content are one blob: store it once.
		if !seen[l.d.Digest] {
			seen[l.d.Digest] = true
			bs = append(bs, &blobLayer{d: l.d, open: l.open, spooled: &l.spooled})
		}
	}
	path := modelPath(meta.Name)
	if err := s.putBlobs(ctx, path, bs, uploadConcurrency); err != nil {
		return Descriptor{}, s.fail(doing, err)
	}
	// Untagged: Tag names it.
	if err := s.b.putManifest(ctx, path, "", a.digest, a.manifest, false); err != nil {
		return Descriptor{}, s.fail(doing, fmt.Errorf("put manifest %s: %w", a.digest, err))
	}
	return a.descriptor(), nil
}

func (s *store) Tag(ctx context.Context, model, tag, digest string) error {
	err := func() error {
		if err := checkModelName(model); err != nil {
			return err
		}
		if err := checkTag(tag); err != nil {
			return err
		}
		h, err := parseDigest(digest)
		if err != nil {
			return err
		}
		raw, err := s.manifest(ctx, modelPath(model), h)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", h, err)
		}
		return s.b.putManifest(ctx, modelPath(model), tag, h, raw, true)
	}()
	if err != nil {
		return s.fail(fmt.Sprintf("tag model %s:%s", model, tag), err)
	}
	return nil
}

// manifest reads the manifest h of the repository and checks it against
// its digest.
func (s *store) manifest(ctx context.Context, path string, h v1.Hash) ([]byte, error) {
	b, err := s.reader(ctx, path)
	if err != nil {
		return nil, err
	}
	var raw []byte
	err = s.b.reread(ctx, func() (err error) {
		raw, err = b.manifest(ctx, h)
		return err
	})
	if err != nil {
		return nil, err
	}
	return raw, checkContent(h, raw)
}

func (s *store) Resolve(ctx context.Context, model, tag string) (string, error) {
	err := checkModelName(model)
	if err == nil {
		err = checkTag(tag)
	}
	var h v1.Hash
	if err == nil {
		h, err = s.b.resolve(ctx, modelPath(model), tag)
	}
	if err != nil {
		return "", s.fail(fmt.Sprintf("resolve model %s:%s", model, tag), err)
	}
	return h.String(), nil
}

func (s *store) PullModel(ctx context.Context, digest, model, dest string) error {
	err := func() error {
		if err := checkModelName(model); err != nil {
			return err
		}
		h, err := parseDigest(digest)
		if err != nil {
			return err
		}
		b, err := s.reader(ctx, modelPath(model))
		if err != nil {
			return err
		}
		return s.b.reread(ctx, func() error { return pullModel(ctx, b, h, dest) })
	}()
	if err != nil {
		return s.fail(fmt.Sprintf("pull model %s %s", model, digest), err)
	}
	return nil
}

func (s *store) ModelRepository(model string) RawRepository {
	return &repository{s: s, path: modelPath(model), err: checkModelName(model)}
}

func (s *store) ArtifactRepository() RawRepository {
	return &repository{s: s, path: artifactsPath}
}

// repository is a RawRepository of a store: a model's, or the artifacts'.
type repository struct {
	s    *store
	path string
	err  error // of an invalid model name
}

func (r *repository) Reference() string { return r.s.b.reference(r.path) }

// fail wraps err with the store, the repository and what was being done.
func (r *repository) fail(doing string, err error) error {
	return r.s.fail(r.Reference()+": "+doing, err)
}

func (r *repository) Manifest(ctx context.Context, tag string) ([]byte, error) {
	raw, err := func() ([]byte, error) {
		if r.err != nil {
			return nil, r.err
		}
		h, isDigest, err := parseRef(tag)
		switch {
		case err != nil:
			return nil, err
		case isDigest:
			return r.s.manifest(ctx, r.path, h)
		}
		var raw []byte
		err = r.s.b.reread(ctx, func() (err error) {
			raw, err = r.s.b.tagged(ctx, r.path, tag)
			return err
		})
		return raw, err
	}()
	if err != nil {
		return nil, r.fail("manifest "+tag, err)
	}
	return raw, nil
}

func (r *repository) PutManifest(ctx context.Context, tag string, raw []byte) error {
	err := func() error {
		if r.err != nil {
			return r.err
		}
		h, isDigest, err := parseRef(tag)
		switch {
		case err != nil:
			return err
		case isDigest:
			if err := checkContent(h, raw); err != nil {
				return err
			}
			tag = ""
		default:
			h = sha256Of(raw)
		}
		if _, err := headOf(raw); err != nil {
			return err
		}
		return r.s.b.putManifest(ctx, r.path, tag, h, raw, false)
	}()
	if err != nil {
		return r.fail("put manifest "+tag, err)
	}
	return nil
}

func (r *repository) Blob(ctx context.Context, digest string) ([]byte, error) {
	b, err := func() ([]byte, error) {
		if r.err != nil {
			return nil, r.err
		}
		h, err := parseDigest(digest)
		if err != nil {
			return nil, err
		}
		bl, err := r.s.reader(ctx, r.path)
		if err != nil {
			return nil, err
		}
		n, err := bl.size(ctx, h)
		switch {
		case err != nil:
			return nil, err
		case n > maxRawBlob:
			return nil, fmt.Errorf("%d bytes: too large to read whole", n)
		}
		var b []byte
		err = r.s.b.reread(ctx, func() (err error) {
			b, err = fetchBlob(ctx, bl, descriptor{Digest: h, Size: n})
			return err
		})
		return b, err
	}()
	if err != nil {
		return nil, r.fail("blob "+digest, err)
	}
	return b, nil
}

func (r *repository) PutBlob(ctx context.Context, digest string, content []byte) error {
	err := func() error {
		if r.err != nil {
			return r.err
		}
		h, err := parseDigest(digest)
		if err != nil {
			return err
		}
		if err := checkContent(h, content); err != nil {
			return err
		}
		d := descriptor{Digest: h, Size: int64(len(content))}
		return r.s.putBlobs(ctx, r.path, []*blobLayer{{d: d, open: bytesOpener(content)}}, 1)
	}()
	if err != nil {
		return r.fail("put blob "+digest, err)
	}
	return nil
}

// blobLayer is a blob of known digest and size, read when stored.
type blobLayer struct {
	d    descriptor
	open func() (io.ReadCloser, error)
	// spooled, if not nil, holds the name of a temporary file of the
	// push's holding the blob: a backend that can may take it, and
	// then sets it to "".
	spooled *string
}
