package registry

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// A model's versions go to <repository>/models/<model>, pushed by digest;
// its tags are the registry's. Artifacts keep their own repository and tags.

// modelRepo is the registry repository of a model.
func (s *remoteStore) modelRepo(model string) (name.Repository, error) {
	if err := checkModelName(model); err != nil {
		return name.Repository{}, err
	}
	return name.NewRepository(s.base + "/models/" + model)
}

func (s *remoteStore) PushModel(ctx context.Context, p string, meta ModelMeta) (Descriptor, error) {
	doing := fmt.Sprintf("push model %s from %s", meta.Name, p)
	if err := meta.check(); err != nil {
		return Descriptor{}, s.fail(doing, err)
	}
	repo, err := s.modelRepo(meta.Name)
	if err != nil {
		return Descriptor{}, s.fail(doing, err)
	}
	a, err := packModel(p, meta, "", s.opts.largeFile)
	if err != nil {
		return Descriptor{}, s.fail(doing, err)
	}
	defer a.cleanup()
	// One pusher for all requests: it authenticates once, and is safe for
	// concurrent use.
	pusher, err := remote.NewPusher(s.options(ctx)...)
	if err != nil {
		return Descriptor{}, s.fail(doing, err)
	}
	ls := []*blobLayer{{d: a.m.Config, open: bytesOpener(a.config)}}
	seen := map[v1.Hash]bool{a.m.Config.Digest: true}
	for _, l := range a.layers {
		// Files of the same content are one blob: upload it once.
		if !seen[l.d.Digest] {
			seen[l.d.Digest] = true
			ls = append(ls, &blobLayer{d: l.d, open: l.open})
		}
	}
	if err := uploadAll(ctx, pusher, repo, ls); err != nil {
		return Descriptor{}, s.fail(doing, err)
	}
	if err := pusher.Put(ctx, repo.Digest(a.digest.String()), rawManifest(a.manifest)); err != nil {
		return Descriptor{}, s.fail(doing, fmt.Errorf("put manifest %s: %w", a.digest, reach(err)))
	}
	return a.descriptor(), nil
}

// uploadAll uploads the blobs ls, uploadConcurrency at a time, each unless
// the registry has it, and returns the first error. The first error cancels
// the uploads under way; those not started do not start.
func uploadAll(ctx context.Context, p *remote.Pusher, repo name.Repository, ls []*blobLayer) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(uploadConcurrency)
	for _, l := range ls {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := p.Upload(ctx, repo, l); err != nil {
				return fmt.Errorf("upload blob %s: %w", l.d.Digest, reach(err))
			}
			return nil
		})
	}
	return g.Wait()
}

func (s *remoteStore) Tag(ctx context.Context, model, tag, digest string) error {
	err := func() error {
		repo, err := s.modelRepo(model)
		if err != nil {
			return err
		}
		if err := checkTag(tag); err != nil {
			return err
		}
		h, err := parseDigest(digest)
		if err != nil {
			return err
		}
		raw, err := s.getManifest(ctx, repo.Digest(h.String()))
		if err != nil {
			return fmt.Errorf("manifest %s: %w", h, err)
		}
		return s.putManifest(ctx, repo.Tag(tag), raw)
	}()
	if err != nil {
		return s.fail(fmt.Sprintf("tag model %s:%s", model, tag), err)
	}
	return nil
}

// getManifest fetches the manifest ref, or fails with an error wrapping
// ErrNotFound.
func (s *remoteStore) getManifest(ctx context.Context, ref name.Reference) ([]byte, error) {
	var d *remote.Descriptor
	err := s.reread(ctx, func() (err error) {
		d, err = remote.Get(ref, s.options(ctx)...)
		return err
	})
	switch {
	case notFound(err):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("fetch manifest: %w", reach(err))
	}
	if ref, ok := ref.(name.Digest); ok {
		h, err := v1.NewHash(ref.DigestStr())
		if err == nil {
			err = checkContent(h, d.Manifest)
		}
		if err != nil {
			return nil, err
		}
	}
	return d.Manifest, nil
}

// putManifest stores the manifest raw under ref, with the media type raw
// says it has.
func (s *remoteStore) putManifest(ctx context.Context, ref name.Reference, raw []byte) error {
	head, err := headOf(raw)
	if err != nil {
		return err
	}
	if err := remote.Put(ref, typedManifest{raw: raw, mediaType: head.MediaType}, s.options(ctx)...); err != nil {
		return fmt.Errorf("put manifest: %w", reach(err))
	}
	return nil
}

func (s *remoteStore) Resolve(ctx context.Context, model, tag string) (string, error) {
	digest, err := func() (string, error) {
		repo, err := s.modelRepo(model)
		if err != nil {
			return "", err
		}
		if err := checkTag(tag); err != nil {
			return "", err
		}
		d, err := remote.Head(repo.Tag(tag), s.options(ctx)...)
		switch {
		case notFound(err):
			return "", ErrNotFound
		case err != nil:
			return "", reach(err)
		}
		return d.Digest.String(), nil
	}()
	if err != nil {
		return "", s.fail(fmt.Sprintf("resolve model %s:%s", model, tag), err)
	}
	return digest, nil
}

func (s *remoteStore) PullModel(ctx context.Context, digest, model, dest string) error {
	err := func() error {
		repo, err := s.modelRepo(model)
		if err != nil {
			return err
		}
		h, err := parseDigest(digest)
		if err != nil {
			return err
		}
		p, err := remote.NewPuller(s.options(ctx)...)
		if err != nil {
			return err
		}
		return s.reread(ctx, func() error { return pullModel(ctx, remoteBlobs{repo: repo, p: p}, h, dest) })
	}()
	if err != nil {
		return s.fail(fmt.Sprintf("pull model %s %s", model, digest), err)
	}
	return nil
}

func (s *remoteStore) ModelRepository(model string) RawRepository {
	r := &remoteRepo{s: s, path: "models/" + model}
	r.repo, r.err = s.modelRepo(model)
	return r
}

func (s *remoteStore) ArtifactRepository() RawRepository {
	return &remoteRepo{s: s, path: "artifacts", repo: s.repo}
}

// remoteRepo is a registry repository of the store: a model's, or the
// artifacts'.
type remoteRepo struct {
	s    *remoteStore
	path string // under the store's repository
	repo name.Repository
	err  error // of an invalid model name
}

func (r *remoteRepo) Reference() string {
	if r.err != nil {
		return r.s.base + "/" + r.path
	}
	return r.repo.Name()
}

// ref parses a tag or a digest of the repository.
func (r *remoteRepo) ref(tag string) (name.Reference, error) {
	if r.err != nil {
		return nil, r.err
	}
	h, isDigest, err := parseRef(tag)
	switch {
	case err != nil:
		return nil, err
	case isDigest:
		return r.repo.Digest(h.String()), nil
	}
	return r.repo.Tag(tag), nil
}

func (r *remoteRepo) fail(doing string, err error) error {
	return r.s.fail(r.Reference()+": "+doing, err)
}

func (r *remoteRepo) Manifest(ctx context.Context, tag string) ([]byte, error) {
	ref, err := r.ref(tag)
	var raw []byte
	if err == nil {
		raw, err = r.s.getManifest(ctx, ref)
	}
	if err != nil {
		return nil, r.fail("manifest "+tag, err)
	}
	return raw, nil
}

func (r *remoteRepo) PutManifest(ctx context.Context, tag string, raw []byte) error {
	ref, err := r.ref(tag)
	if d, ok := ref.(name.Digest); ok && err == nil {
		var h v1.Hash
		if h, err = v1.NewHash(d.DigestStr()); err == nil {
			err = checkContent(h, raw)
		}
	}
	if err == nil {
		err = r.s.putManifest(ctx, ref, raw)
	}
	if err != nil {
		return r.fail("put manifest "+tag, err)
	}
	return nil
}

func (r *remoteRepo) Blob(ctx context.Context, digest string) ([]byte, error) {
	b, err := func() ([]byte, error) {
		if r.err != nil {
			return nil, r.err
		}
		h, err := parseDigest(digest)
		if err != nil {
			return nil, err
		}
		l, err := remote.Layer(r.repo.Digest(h.String()), r.s.options(ctx)...)
		if err != nil {
			return nil, err
		}
		n, err := l.Size() // a HEAD request
		switch {
		case notFound(err):
			return nil, ErrNotFound
		case err != nil:
			return nil, fmt.Errorf("look up blob: %w", reach(err))
		case n > maxRawBlob:
			return nil, fmt.Errorf("%d bytes: too large to read whole", n)
		}
		rb := remoteBlobs{repo: r.repo}
		if rb.p, err = remote.NewPuller(r.s.options(ctx)...); err != nil {
			return nil, err
		}
		var b []byte
		err = r.s.reread(ctx, func() (err error) {
			b, err = fetchBlob(ctx, rb, descriptor{Digest: h, Size: n})
			return err
		})
		return b, err
	}()
	if err != nil {
		return nil, r.fail("blob "+digest, err)
	}
	return b, nil
}

func (r *remoteRepo) PutBlob(ctx context.Context, digest string, content []byte) error {
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
		l := &blobLayer{d: descriptor{Digest: h, Size: int64(len(content))}, open: bytesOpener(content)}
		if err := remote.WriteLayer(r.repo, l, r.s.options(ctx)...); err != nil {
			return reach(err)
		}
		return nil
	}()
	if err != nil {
		return r.fail("put blob "+digest, err)
	}
	return nil
}

// typedManifest is a manifest pushed byte for byte, with its media type.
type typedManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (m typedManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m typedManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }
