package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/zen-dev/zen/progress"
)

// go-containerregistry's layout package writes blobs and index.json in
// place, so a crash can leave half a file under its final name; this store
// writes everything under a temporary name and renames it.

const (
	layoutFile = `{"imageLayoutVersion":"1.0.0"}` + "\n"
	emptyIndex = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}` + "\n"
)

// layoutBackend is an OCI image layout directory. Its repositories share
// the blobs in blobs/sha256; a tag is an index.json entry whose
// org.opencontainers.image.ref.name is "<path>:<tag>", but for an
// artifact, listed under its digest's hex alone (see putManifest).
type layoutBackend struct {
	name string // as given, for messages
	root string // absolute

	mu      sync.Mutex
	ready   bool                      // the layout exists
	pending map[v1.Hash]v1.Descriptor // pushed, not yet in index.json
	refs    map[string]v1.Descriptor  // ref names moved, not yet in index.json

	index indexCache
}

// OpenLayout opens the OCI image layout directory dir. Nothing is written
// until Check or Push, which create the layout if it is missing.
func OpenLayout(dir string, opts ...Option) (Store, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("artifact store oci-layout %s: %w", dir, err)
	}
	b := &layoutBackend{name: filepath.ToSlash(dir), root: root, pending: map[v1.Hash]v1.Descriptor{}, refs: map[string]v1.Descriptor{}}
	return &store{b: b, opts: newOptions(opts)}, nil
}

func (s *layoutBackend) String() string { return "oci-layout " + s.name }

// reference is the directory as given to OpenLayout followed by the
// path: ".zen/store/models/fraud".
func (s *layoutBackend) reference(p string) string { return path.Join(s.name, p) }

func (s *layoutBackend) blobDir() string { return filepath.Join(s.root, "blobs", "sha256") }

func (s *layoutBackend) blobPath(h v1.Hash) string { return filepath.Join(s.blobDir(), h.Hex) }

// init creates the layout if it is missing, and checks it if not.
func (s *layoutBackend) init() error {
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

func (s *layoutBackend) check(ctx context.Context) error {
	if err := s.init(); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.blobDir(), ".zen-tmp-*")
	if err != nil {
		return fmt.Errorf("cannot write: %w", err)
	}
	f.Close()
	return os.Remove(f.Name())
}

func (s *layoutBackend) spoolDir() (string, error) {
	if err := s.init(); err != nil {
		return "", err
	}
	return s.blobDir(), nil
}

// stored reports whether the blob d is in place, judging by its size.
func (s *layoutBackend) stored(d descriptor) bool {
	fi, err := os.Stat(s.blobPath(d.Digest))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == d.Size
}

// putBlobs stores each blob not in place: a spooled one is moved in
// place, another copied and checked.
func (s *layoutBackend) putBlobs(ctx context.Context, _ string, bs []*blobLayer, _ int) error {
	if err := s.init(); err != nil {
		return err
	}
	m := progress.FromContext(ctx)
	for _, b := range bs {
		if err := s.putBlob(b, m); err != nil {
			return err
		}
	}
	return nil
}

// putBlob stores b unless it is in place. A spooled blob moved in place
// counts on m as pushed at once; one copied counts as it is read (see
// store.putBlobs).
func (s *layoutBackend) putBlob(b *blobLayer, m *progress.Meter) error {
	switch {
	case s.stored(b.d):
		return nil
	case b.spooled != nil && *b.spooled != "":
		f, err := os.OpenFile(*b.spooled, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		if err := commit(f, s.blobPath(b.d.Digest)); err != nil {
			return err
		}
		*b.spooled = ""
		m.ToPush(b.d.Size)
		m.Pushed(b.d.Size)
		return nil
	}
	rc, err := b.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	return s.writeBlob(b.d, rc)
}

func (s *layoutBackend) writeBytes(d descriptor, b []byte) error {
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
func (s *layoutBackend) writeBlob(d descriptor, r io.Reader) error {
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

func (s *layoutBackend) manifest(_ context.Context, h v1.Hash) ([]byte, error) {
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

func (s *layoutBackend) open(_ context.Context, d descriptor) (io.ReadCloser, error) {
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

func (s *layoutBackend) has(_ context.Context, d descriptor) (bool, error) {
	return s.stored(d), nil
}

func (s *layoutBackend) size(_ context.Context, h v1.Hash) (int64, error) {
	fi, err := os.Stat(s.blobPath(h))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, ErrNotFound
	case err != nil:
		return 0, err
	}
	return fi.Size(), nil
}

// reader is the layout itself: its blobs are shared by its repositories.
func (s *layoutBackend) reader(context.Context, string) (blobs, error) { return s, nil }

// reread runs read once: a file does not break off.
func (s *layoutBackend) reread(_ context.Context, read func() error) error { return read() }
