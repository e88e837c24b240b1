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
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// A layout holds every repository's blobs together, in blobs/sha256. A tag
// of a model's repository is an index.json entry whose
// org.opencontainers.image.ref.name is "models/<model>:<tag>", written at
// once by Tag. A model version pushed and not tagged is listed without a
// ref name (from Close, or the next Tag), so that it is not taken for
// garbage. Signature tags (PutManifest) of the repositories "models/<model>"
// and "artifacts" ("artifacts:sha256-<hex>.sig") are visible to the store
// at once and written to index.json by Close or the next Tag.

// tagged reads the manifest tag points at and checks it against its
// digest: index.json says which.
func (s *layoutBackend) tagged(ctx context.Context, path, tag string) ([]byte, error) {
	h, err := s.lookup(path + ":" + tag)
	if err != nil {
		return nil, err
	}
	raw, err := s.manifest(ctx, h)
	if err != nil {
		return nil, err
	}
	return raw, checkContent(h, raw)
}

func (s *layoutBackend) resolve(_ context.Context, path, tag string) (v1.Hash, error) {
	return s.lookup(path + ":" + tag)
}

// putManifest writes the manifest's blob. With now, index.json is written
// at once (Tag); else the manifest and its tag are written to it at close,
// with the others: a run signs each of its artifacts, and index.json is
// not rewritten for each. An artifact, tagged with its digest's hex, is
// listed under that hex alone, as zen has always listed it.
func (s *layoutBackend) putManifest(_ context.Context, path, tag string, h v1.Hash, raw []byte, now bool) error {
	head, err := headOf(raw)
	if err != nil {
		return err
	}
	if err := s.init(); err != nil {
		return err
	}
	if err := s.writeBytes(descriptor{Digest: h, Size: int64(len(raw))}, raw); err != nil {
		return err
	}
	ref := path + ":" + tag
	if now {
		return s.setRef(ref, h, raw)
	}
	d := v1.Descriptor{MediaType: head.MediaType, Size: int64(len(raw)), Digest: h, ArtifactType: head.ArtifactType}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case tag == "":
		s.pending[h] = d
	case path == artifactsPath && tag == h.Hex:
		d.Annotations = map[string]string{refNameAnnotation: tag}
		s.pending[h] = d
	default:
		d.Annotations = map[string]string{refNameAnnotation: ref}
		s.refs[ref] = d
	}
	return nil
}

// setRef points the ref name ref at the manifest raw, whose digest is h, in
// index.json, dropping what ref named before, and writes the pending
// artifacts too.
func (s *layoutBackend) setRef(ref string, h v1.Hash, raw []byte) error {
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
func (s *layoutBackend) lookup(ref string) (v1.Hash, error) {
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
func (s *layoutBackend) modelLayoutDir(model string) string {
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
func (s *layoutBackend) writeModelLayouts(index v1.IndexManifest) error {
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

// close adds the manifests and tags put since the last close to
// index.json, under a lock that other zen processes honour too, keeping
// what is listed there.
func (s *layoutBackend) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 && len(s.refs) == 0 {
		return nil
	}
	if err := s.writeIndex(nil); err != nil {
		return fmt.Errorf("update index.json: %w", err)
	}
	return nil
}

// writeIndex adds the pending artifacts and ref moves to index.json and, if
// edit is not nil, has it change the index too, under the lock other
// processes honour; the caller holds s.mu. index.json is replaced whole,
// never half written. Once it is, nothing is pending.
func (s *layoutBackend) writeIndex(edit func(*v1.IndexManifest)) error {
	lock, err := os.OpenFile(filepath.Join(s.root, "index.json.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close() // releases the lock
	for {
		err = unix.Flock(int(lock.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}

	name := filepath.Join(s.root, "index.json")
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	switch b, err := readRegular(name); {
	case err == nil:
		if err := json.Unmarshal(b, &index); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	type key struct{ digest, ref string }
	seen := map[key]bool{}
	for _, d := range index.Manifests {
		seen[key{d.Digest.String(), d.Annotations[refNameAnnotation]}] = true
		seen[key{d.Digest.String(), ""}] = true // listed: no need to list it untagged
	}
	for _, d := range s.pending {
		if k := (key{d.Digest.String(), d.Annotations[refNameAnnotation]}); !seen[k] {
			seen[k] = true
			seen[key{d.Digest.String(), ""}] = true
			index.Manifests = append(index.Manifests, d)
		}
	}
	if len(s.refs) > 0 {
		index.Manifests = slices.DeleteFunc(index.Manifests, func(d v1.Descriptor) bool {
			_, moved := s.refs[d.Annotations[refNameAnnotation]]
			return moved
		})
		for _, ref := range slices.Sorted(maps.Keys(s.refs)) {
			index.Manifests = append(index.Manifests, s.refs[ref])
		}
	}
	if edit != nil {
		edit(&index)
	}
	sort.SliceStable(index.Manifests, func(i, j int) bool {
		a, b := index.Manifests[i], index.Manifests[j]
		if ra, rb := a.Annotations[refNameAnnotation], b.Annotations[refNameAnnotation]; ra != rb {
			return ra < rb
		}
		return a.Digest.String() < b.Digest.String()
	})
	b, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.root, ".zen-tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := commit(f, name); err != nil {
		return err
	}
	clear(s.pending)
	clear(s.refs)
	if err := s.writeModelLayouts(index); err != nil {
		return fmt.Errorf("model layouts: %w", err)
	}
	return nil
}

// indexCache keeps index.json's ref names while the file is unchanged: a
// plan looks up a signature tag for each cached artifact, and a big layout's
// index.json is megabytes.
type indexCache struct {
	mu    sync.Mutex
	fi    os.FileInfo
	names map[string]v1.Hash
}

// refs returns the ref names of the index.json at name; an index that does
// not exist has none.
func (c *indexCache) refs(name string) (map[string]v1.Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fi, err := os.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if c.fi != nil && os.SameFile(c.fi, fi) && c.fi.ModTime().Equal(fi.ModTime()) && c.fi.Size() == fi.Size() {
		return c.names, nil
	}
	b, err := readRegular(name)
	if err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	var index v1.IndexManifest
	if err := json.Unmarshal(b, &index); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	refs := make(map[string]v1.Hash, len(index.Manifests))
	for _, d := range index.Manifests {
		if r := d.Annotations[refNameAnnotation]; r != "" {
			refs[r] = d.Digest
		}
	}
	c.fi, c.names = fi, refs
	return refs, nil
}
