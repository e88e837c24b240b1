package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// A layout holds every repository's blobs together, in blobs/sha256. A tag
// of a model's repository is an index.json entry whose
// org.opencontainers.image.ref.name is "models/<model>:<tag>", written at
// once by Tag. A model version pushed and not tagged is listed without a
// ref name (from Close, or the next Tag), so that it is not taken for
// garbage. Signature tags (PutManifest) of the repositories "models/<model>"
// and "artifacts" ("artifacts:sha256-<hex>.sig") are visible to the store
// at once and written to index.json by Close or the next Tag.

func (s *layoutStore) PushModel(ctx context.Context, p string, meta ModelMeta) (Descriptor, error) {
	fail := func(err error) (Descriptor, error) {
		return Descriptor{}, s.fail(fmt.Errorf("push model %s from %s: %w", meta.Name, p, err))
	}
	if err := meta.check(); err != nil {
		return fail(err)
	}
	if err := s.init(); err != nil {
		return fail(err)
	}
	a, err := packModel(p, meta, s.blobDir(), s.opts.largeFile)
	if err != nil {
		return fail(err)
	}
	defer a.cleanup()
	for _, l := range a.layers {
		if err := s.storeLayer(l); err != nil {
			return fail(err)
		}
	}
	if err := s.writeBytes(a.m.Config, a.config); err != nil {
		return fail(err)
	}
	if err := s.writeBytes(descriptor{Digest: a.digest, Size: int64(len(a.manifest))}, a.manifest); err != nil {
		return fail(err)
	}
	s.mu.Lock()
	s.pending[a.digest] = v1.Descriptor{
		MediaType:    types.OCIManifestSchema1,
		Size:         int64(len(a.manifest)),
		Digest:       a.digest,
		ArtifactType: ArtifactTypeModelManifest,
	}
	s.mu.Unlock()
	return a.descriptor(), nil
}

// storeLayer writes the layer l unless it is stored: a spooled blob (a tar,
// or its gzip) is moved in place, a file copied.
func (s *layoutStore) storeLayer(l *modelLayer) error {
	switch {
	case s.stored(l.d):
		return nil
	case l.spooled != "":
		f, err := os.OpenFile(l.spooled, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		if err := commit(f, s.blobPath(l.d.Digest)); err != nil {
			return err
		}
		l.spooled = ""
		return nil
	}
	rc, err := l.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	return s.writeBlob(l.d, rc)
}

func (s *layoutStore) Tag(ctx context.Context, model, tag, digest string) error {
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
		if err := s.init(); err != nil {
			return err
		}
		raw, err := s.manifest(ctx, h)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", h, err)
		}
		if err := checkContent(h, raw); err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
		return s.setRef(modelRef(model, tag), h, raw)
	}()
	if err != nil {
		return s.fail(fmt.Errorf("tag model %s:%s: %w", model, tag, err))
	}
	return nil
}

// setRef points the ref name ref at the manifest raw, whose digest is h, in
// index.json, dropping what ref named before, and writes the pending
// artifacts too.
func (s *layoutStore) setRef(ref string, h v1.Hash, raw []byte) error {
	head, err := headOf(raw)
	if err != nil {
		return err
	}
	d := v1.Descriptor{
		MediaType:    head.MediaType,
		Size:         int64(len(raw)),
		Digest:       h,
		ArtifactType: head.ArtifactType,
		Annotations:  map[string]string{refNameAnnotation: ref},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.writeIndex(func(index *v1.IndexManifest) {
		index.Manifests = slices.DeleteFunc(index.Manifests, func(d v1.Descriptor) bool {
			r := d.Annotations[refNameAnnotation]
			return r == ref || r == "" && d.Digest == h
		})
		index.Manifests = append(index.Manifests, d)
	})
	if err != nil {
		return fmt.Errorf("update index.json: %w", err)
	}
	return nil
}

// lookup returns the digest the ref name ref points at: a tag moved by
// this store and not yet written, else index.json's entry.
func (s *layoutStore) lookup(ref string) (v1.Hash, error) {
	s.mu.Lock()
	d, ok := s.refs[ref]
	s.mu.Unlock()
	if ok {
		return d.Digest, nil
	}
	refs, err := s.index.refs(filepath.Join(s.root, "index.json"))
	if err != nil {
		return v1.Hash{}, err
	}
	h, ok := refs[ref]
	if !ok {
		return v1.Hash{}, ErrNotFound
	}
	return h, nil
}

func (s *layoutStore) Resolve(ctx context.Context, model, tag string) (string, error) {
	err := checkModelName(model)
	if err == nil {
		err = checkTag(tag)
	}
	var h v1.Hash
	if err == nil {
		h, err = s.lookup(modelRef(model, tag))
	}
	if err != nil {
		return "", s.fail(fmt.Errorf("resolve model %s:%s: %w", model, tag, err))
	}
	return h.String(), nil
}

func (s *layoutStore) PullModel(ctx context.Context, digest, model, dest string) error {
	// The layout's blobs are shared: the model's name is only checked.
	err := checkModelName(model)
	var h v1.Hash
	if err == nil {
		h, err = parseDigest(digest)
	}
	if err == nil {
		err = pullModel(ctx, s, h, dest)
	}
	if err != nil {
		return s.fail(fmt.Errorf("pull model %s %s: %w", model, digest, err))
	}
	return nil
}

func (s *layoutStore) ModelRepository(model string) RawRepository {
	return &layoutRepo{s: s, path: "models/" + model, check: func() error { return checkModelName(model) }}
}

func (s *layoutStore) ArtifactRepository() RawRepository {
	return &layoutRepo{s: s, path: "artifacts", check: func() error { return nil }}
}

// layoutRepo is one repository of a layout: "models/<model>" or
// "artifacts".
type layoutRepo struct {
	s     *layoutStore
	path  string
	check func() error // of the repository's name
}

func (r *layoutRepo) Reference() string { return path.Join(r.s.name, r.path) }

// ref is the org.opencontainers.image.ref.name of the repository's tag.
func (r *layoutRepo) ref(tag string) string { return r.path + ":" + tag }

// fail wraps err with the store, the repository and what was being done.
func (r *layoutRepo) fail(doing string, err error) error {
	return r.s.fail(fmt.Errorf("%s: %s: %w", r.Reference(), doing, err))
}

func (r *layoutRepo) Manifest(ctx context.Context, tag string) ([]byte, error) {
	raw, err := func() ([]byte, error) {
		if err := r.check(); err != nil {
			return nil, err
		}
		h, isDigest, err := parseRef(tag)
		if err != nil {
			return nil, err
		}
		if !isDigest {
			if h, err = r.s.lookup(r.ref(tag)); err != nil {
				return nil, err
			}
		}
		raw, err := r.s.manifest(ctx, h)
		if err != nil {
			return nil, err
		}
		return raw, checkContent(h, raw)
	}()
	if err != nil {
		return nil, r.fail("manifest "+tag, err)
	}
	return raw, nil
}

func (r *layoutRepo) PutManifest(ctx context.Context, tag string, raw []byte) error {
	err := func() error {
		if err := r.check(); err != nil {
			return err
		}
		h, isDigest, err := parseRef(tag)
		if err != nil {
			return err
		}
		if isDigest {
			err = checkContent(h, raw)
		} else {
			h = sha256Of(raw)
		}
		if err != nil {
			return err
		}
		head, err := headOf(raw)
		if err != nil {
			return err
		}
		if err := r.s.init(); err != nil {
			return err
		}
		if err := r.s.writeBytes(descriptor{Digest: h, Size: int64(len(raw))}, raw); err != nil {
			return err
		}
		d := v1.Descriptor{MediaType: head.MediaType, Size: int64(len(raw)), Digest: h, ArtifactType: head.ArtifactType}
		r.s.mu.Lock()
		defer r.s.mu.Unlock()
		if isDigest {
			r.s.pending[h] = d
			return nil
		}
		// Written to index.json with the rest at Close: a run signs each
		// of its artifacts, and index.json is not rewritten for each.
		d.Annotations = map[string]string{refNameAnnotation: r.ref(tag)}
		r.s.refs[r.ref(tag)] = d
		return nil
	}()
	if err != nil {
		return r.fail("put manifest "+tag, err)
	}
	return nil
}

func (r *layoutRepo) Blob(ctx context.Context, digest string) ([]byte, error) {
	b, err := func() ([]byte, error) {
		h, err := parseDigest(digest)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(r.s.blobPath(h))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, ErrNotFound
		case err != nil:
			return nil, err
		case fi.Size() > maxRawBlob:
			return nil, fmt.Errorf("%d bytes: too large to read whole", fi.Size())
		}
		return fetchBlob(ctx, r.s, descriptor{Digest: h, Size: fi.Size()})
	}()
	if err != nil {
		return nil, r.fail("blob "+digest, err)
	}
	return b, nil
}

func (r *layoutRepo) PutBlob(ctx context.Context, digest string, content []byte) error {
	h, err := parseDigest(digest)
	if err == nil {
		err = checkContent(h, content)
	}
	if err == nil {
		err = r.s.init()
	}
	if err == nil {
		err = r.s.writeBytes(descriptor{Digest: h, Size: int64(len(content))}, content)
	}
	if err != nil {
		return r.fail("put blob "+digest, err)
	}
	return nil
}

// Tools name an image in a layout as DIR:REF, and most split at a colon:
// skopeo's oci:DIR:REF at the first, oras's --oci-layout DIR:REF at the
// last. The ref name "models/fraud:1.0.0" of the store's index.json works
// with neither, so each model also has a layout of its own,
// models/<model> under the store's directory (the directory
// ModelRepository's Reference names), whose index.json lists the model's
// tags under their bare names: versions, stages and signature tags, as
// "1.0.0", "production", "sha256-<hex>.sig". Its blobs directory is a
// symlink to the store's, ../../blobs. The store's index.json stays what
// zen reads; the models' are written from it each time it is written, so
// an older store gets them at its next write.

// modelLayoutDir is the directory of the model's own layout.
func (s *layoutStore) modelLayoutDir(model string) string {
	return filepath.Join(s.root, "models", model)
}

// modelIndexes splits the store's index into the models' index.json files,
// by model: each entry whose ref name is "models/<model>:<tag>", under the
// ref name "<tag>", in tag order.
func modelIndexes(index v1.IndexManifest) map[string]*v1.IndexManifest {
	out := map[string]*v1.IndexManifest{}
	for _, d := range index.Manifests {
		rest, ok := strings.CutPrefix(d.Annotations[refNameAnnotation], "models/")
		if !ok {
			continue
		}
		model, tag, ok := strings.Cut(rest, ":")
		if !ok || checkModelName(model) != nil || checkTag(tag) != nil {
			continue
		}
		mi := out[model]
		if mi == nil {
			mi = &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
			out[model] = mi
		}
		d.Annotations = map[string]string{refNameAnnotation: tag}
		mi.Manifests = append(mi.Manifests, d)
	}
	for _, mi := range out {
		slices.SortFunc(mi.Manifests, func(a, b v1.Descriptor) int {
			return strings.Compare(a.Annotations[refNameAnnotation], b.Annotations[refNameAnnotation])
		})
	}
	return out
}

// writeModelLayouts writes each model's layout from the store's index;
// the caller holds index.json's lock. An index.json that says the same is
// not written again.
func (s *layoutStore) writeModelLayouts(index v1.IndexManifest) error {
	indexes := modelIndexes(index)
	for _, model := range slices.Sorted(maps.Keys(indexes)) {
		dir := s.modelLayoutDir(model)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := createFile(filepath.Join(dir, "oci-layout"), []byte(layoutFile)); err != nil {
			return err
		}
		if _, err := os.Lstat(filepath.Join(dir, "blobs")); errors.Is(err, fs.ErrNotExist) {
			err = os.Symlink(filepath.Join("..", "..", "blobs"), filepath.Join(dir, "blobs"))
			if err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		} else if err != nil {
			return err
		}
		b, err := json.MarshalIndent(indexes[model], "", "  ")
		if err != nil {
			return err
		}
		b = append(b, '\n')
		name := filepath.Join(dir, "index.json")
		if old, err := readRegular(name); err == nil && bytes.Equal(old, b) {
			continue
		}
		if err := replaceFile(dir, name, b); err != nil {
			return err
		}
	}
	return nil
}
