package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// go-containerregistry's layout package writes blobs and index.json in
// place, so a crash can leave half a file under its final name; this store
// writes everything under a temporary name and renames it.

const (
	layoutFile = `{"imageLayoutVersion":"1.0.0"}` + "\n"
	emptyIndex = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}` + "\n"
)

// layoutStore is an OCI image layout directory.
type layoutStore struct {
	name string // as given, for messages
	root string // absolute

	mu      sync.Mutex
	ready   bool                      // the layout exists
	pending map[v1.Hash]v1.Descriptor // pushed, not yet in index.json
	refs    map[string]v1.Descriptor  // ref names moved, not yet in index.json

	index indexCache
	opts  options
}

// OpenLayout opens the OCI image layout directory dir. Nothing is written
// until Check or Push, which create the layout if it is missing.
func OpenLayout(dir string, opts ...Option) (Store, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("artifact store oci-layout %s: %w", dir, err)
	}
	return &layoutStore{name: filepath.ToSlash(dir), root: root, pending: map[v1.Hash]v1.Descriptor{}, refs: map[string]v1.Descriptor{}, opts: newOptions(opts)}, nil
}

func (s *layoutStore) String() string { return "oci-layout " + s.name }

func (s *layoutStore) fail(err error) error {
	return fmt.Errorf("artifact store %s: %w", s, err)
}

func (s *layoutStore) blobDir() string { return filepath.Join(s.root, "blobs", "sha256") }

func (s *layoutStore) blobPath(h v1.Hash) string { return filepath.Join(s.blobDir(), h.Hex) }

// init creates the layout if it is missing, and checks it if not.
func (s *layoutStore) init() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil
	}
	if err := os.MkdirAll(s.blobDir(), 0o755); err != nil {
		return err
	}
	for _, f := range []struct{ name, data string }{{"oci-layout", layoutFile}, {"index.json", emptyIndex}} {
		if err := createFile(filepath.Join(s.root, f.name), []byte(f.data)); err != nil {
			return err
		}
	}
	b, err := readRegular(filepath.Join(s.root, "oci-layout"))
	if err != nil {
		return fmt.Errorf("oci-layout: %w", err)
	}
	var l struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(b, &l); err != nil || l.Version != "1.0.0" {
		return fmt.Errorf("not an OCI image layout version 1.0.0 (oci-layout: %q)", b)
	}
	s.ready = true
	return nil
}

func (s *layoutStore) Check(ctx context.Context) error {
	if err := s.init(); err != nil {
		return s.fail(err)
	}
	f, err := os.CreateTemp(s.blobDir(), ".zen-tmp-*")
	if err != nil {
		return s.fail(fmt.Errorf("cannot write: %w", err))
	}
	f.Close()
	return os.Remove(f.Name())
}

func (s *layoutStore) Push(ctx context.Context, path, typ string) (Descriptor, error) {
	if err := s.init(); err != nil {
		return Descriptor{}, s.fail(err)
	}
	a, err := pack(path, typ, s.blobDir())
	if err != nil {
		return Descriptor{}, s.fail(fmt.Errorf("push %s: %w", path, err))
	}
	defer a.cleanup()
	if err := s.store(a); err != nil {
		return Descriptor{}, s.fail(fmt.Errorf("push %s: %w", path, err))
	}
	s.mu.Lock()
	s.pending[a.digest] = v1.Descriptor{
		MediaType:    types.OCIManifestSchema1,
		Size:         int64(len(a.manifest)),
		Digest:       a.digest,
		ArtifactType: artifactType,
		Annotations:  map[string]string{refNameAnnotation: a.digest.Hex},
	}
	s.mu.Unlock()
	return a.descriptor(), nil
}

// store writes the artifact's blobs, the manifest last.
func (s *layoutStore) store(a *packed) error {
	layer := a.layer()
	switch {
	case s.stored(layer):
	case a.temp:
		// The tar was written in the blob directory: move it in place.
		f, err := os.OpenFile(a.file, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		if err := commit(f, s.blobPath(layer.Digest)); err != nil {
			return err
		}
		a.temp = false
	default:
		f, err := os.Open(a.file)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := s.writeBlob(layer, f); err != nil {
			return err
		}
	}
	if err := s.writeBytes(a.m.Config, a.config); err != nil {
		return err
	}
	return s.writeBytes(descriptor{Digest: a.digest, Size: int64(len(a.manifest))}, a.manifest)
}

// stored reports whether the blob d is in place, judging by its size.
func (s *layoutStore) stored(d descriptor) bool {
	fi, err := os.Stat(s.blobPath(d.Digest))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == d.Size
}

func (s *layoutStore) writeBytes(d descriptor, b []byte) error {
	if s.stored(d) {
		return nil
	}
	return replaceFile(s.blobDir(), s.blobPath(d.Digest), b)
}

// replaceFile writes b to name through a temporary file in dir (the folder
// name is in): name holds either what it held or b, never part of b.
func replaceFile(dir, name string, b []byte) error {
	f, err := os.CreateTemp(dir, ".zen-tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	return commit(f, name)
}

// writeBlob copies the blob d from r, checking that r holds what d says: a
// file changed since it was hashed is not stored under the old digest.
func (s *layoutStore) writeBlob(d descriptor, r io.Reader) error {
	if s.stored(d) {
		return nil
	}
	f, err := os.CreateTemp(s.blobDir(), ".zen-tmp-*")
	if err != nil {
		return err
	}
	hw := newHashingWriter(f)
	_, err = io.CopyBuffer(hw, r, make([]byte, 1<<20))
	if err == nil && (hw.n != d.Size || hw.digest() != d.Digest) {
		err = errors.New("content changed while it was being stored")
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	return commit(f, s.blobPath(d.Digest))
}

// commit syncs and closes the temporary file f and renames it to name, so
// that a crash never leaves a partial file under name.
func commit(f *os.File, name string) error {
	err := f.Chmod(0o644)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// createFile writes name with data unless it exists, atomically: two
// processes creating it at once both succeed, and the first one wins.
func createFile(name string, data []byte) error {
	if _, err := os.Lstat(name); err == nil {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".zen-tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(f.Name(), name); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

func (s *layoutStore) Has(ctx context.Context, digest string) (bool, error) {
	ok, err := has(ctx, s, digest)
	if err != nil {
		return false, s.fail(err)
	}
	return ok, nil
}

func (s *layoutStore) Pull(ctx context.Context, digest, dest string) error {
	if err := pull(ctx, s, digest, dest); err != nil {
		return s.fail(err)
	}
	return nil
}

func (s *layoutStore) manifest(_ context.Context, h v1.Hash) ([]byte, error) {
	f, err := openRegular(s.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, err)
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxManifest))
}

func (s *layoutStore) open(_ context.Context, d descriptor) (io.ReadCloser, error) {
	f, err := openRegular(s.blobPath(d.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return f, nil
}

// errNotRegular is the error for a file of a layout that is not a regular
// file.
var errNotRegular = errors.New("not a regular file")

// openRegular opens the layout's file p for reading, refusing anything but
// a regular file (symlinks followed). A FIFO planted in a shared layout
// would otherwise block zen in open(2), where not even a signal reaches
// it: the file is opened without blocking and checked before it is read.
func openRegular(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errNotRegular
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// readRegular reads the layout's regular file p whole; see openRegular.
func readRegular(p string) ([]byte, error) {
	f, err := openRegular(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (s *layoutStore) has(_ context.Context, d descriptor) (bool, error) {
	return s.stored(d), nil
}

// Close adds the artifacts pushed since the last Close to index.json, under
// a lock that other zen processes honour too, keeping what is listed there.
func (s *layoutStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 && len(s.refs) == 0 {
		return nil
	}
	if err := s.writeIndex(nil); err != nil {
		return s.fail(fmt.Errorf("update index.json: %w", err))
	}
	return nil
}

// writeIndex adds the pending artifacts and ref moves to index.json and, if
// edit is not nil, has it change the index too, under the lock other
// processes honour; the caller holds s.mu. index.json is replaced whole,
// never half written. Once it is, nothing is pending.
func (s *layoutStore) writeIndex(edit func(*v1.IndexManifest)) error {
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
