package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// layout is an OCI image layout folder.
type layout struct {
	dir  string
	name string

	mu      sync.Mutex
	pending map[string]descriptor // manifests to add to index.json
}

// OpenLayout opens the OCI image layout at dir; Check creates it.
func OpenLayout(dir string) (Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	name := dir
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, abs); err == nil && !strings.HasPrefix(rel, "..") {
			name = rel
		}
	}
	return &layout{dir: abs, name: "oci-layout " + filepath.ToSlash(name), pending: map[string]descriptor{}}, nil
}

func (l *layout) String() string { return l.name }

func (l *layout) blobPath(digest string) (string, error) {
	alg, hex, ok := strings.Cut(digest, ":")
	if !ok || alg != "sha256" || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", fmt.Errorf("invalid digest %q", digest)
	}
	return filepath.Join(l.dir, "blobs", alg, hex), nil
}

func (l *layout) Check(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(l.dir, "blobs", "sha256"), 0o755); err != nil {
		return fmt.Errorf("artifact store %s: %w", l, err)
	}
	files := map[string]string{
		"oci-layout": `{"imageLayoutVersion":"1.0.0"}`,
		"index.json": `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`,
	}
	for name, content := range files {
		p := filepath.Join(l.dir, name)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if err := writeAtomic(p, strings.NewReader(content+"\n")); err != nil {
			return fmt.Errorf("artifact store %s: %w", l, err)
		}
	}
	return nil
}

// writeBlob stores the content of r under digest, unless it is there.
func (l *layout) writeBlob(digest string, r io.Reader) error {
	p, err := l.blobPath(digest)
	if err != nil {
		return err
	}
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return writeAtomic(p, r)
}

// writeAtomic writes a file under a temporary name, syncs it and renames
// it, so that a crash never leaves half a file under the final name.
func writeAtomic(p string, r io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

func (l *layout) Push(ctx context.Context, p, typ string) (Descriptor, error) {
	c, err := pack(p)
	if err != nil {
		return Descriptor{}, fmt.Errorf("artifact store %s: pack %s: %w", l, filepath.Base(p), err)
	}
	defer c.cleanup()
	config, raw := artifact(typ, c)
	digest := digestOf(raw)
	f, err := c.open()
	if err != nil {
		return Descriptor{}, err
	}
	err = l.writeBlob(c.digest, f)
	f.Close()
	if err == nil {
		err = l.writeBlob(digestOf(config), bytes.NewReader(config))
	}
	if err == nil {
		err = l.writeBlob(digest, bytes.NewReader(raw))
	}
	if err != nil {
		return Descriptor{}, fmt.Errorf("artifact store %s: %w", l, err)
	}
	l.mu.Lock()
	l.pending[digest] = descriptor{MediaType: ManifestMediaType, Digest: digest, Size: int64(len(raw)),
		Annotations: map[string]string{"org.opencontainers.image.ref.name": strings.TrimPrefix(digest, "sha256:")}}
	l.mu.Unlock()
	return Descriptor{Digest: digest, Size: c.size, MediaType: c.media}, nil
}

func (l *layout) readManifest(digest string) (*manifest, error) {
	p, err := l.blobPath(digest)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("artifact store %s: %s: %w", l, digest, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return parseManifest(raw, digest)
}

func (l *layout) Has(ctx context.Context, digest string) (bool, error) {
	m, err := l.readManifest(digest)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, d := range append([]descriptor{m.Config}, m.Layers...) {
		p, err := l.blobPath(d.Digest)
		if err != nil {
			return false, err
		}
		if _, err := os.Stat(p); err != nil {
			return false, nil
		}
	}
	return true, nil
}

func (l *layout) Pull(ctx context.Context, digest, dest string) error {
	m, err := l.readManifest(digest)
	if err != nil {
		return err
	}
	layer := m.Layers[0]
	p, err := l.blobPath(layer.Digest)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("artifact store %s: %s: layer %s: %w", l, digest, layer.Digest, ErrNotFound)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unpack(f, layer, dest); err != nil {
		return fmt.Errorf("artifact store %s: %w", l, err)
	}
	return nil
}

// Close adds the pushed artifacts to index.json, under a lock shared with
// other zen processes, so that layout tools can list them.
func (l *layout) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) == 0 {
		return nil
	}
	lock, err := os.OpenFile(filepath.Join(l.dir, "index.json.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	var index struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}
	p := filepath.Join(l.dir, "index.json")
	if b, err := os.ReadFile(p); err == nil {
		if err := json.Unmarshal(b, &index); err != nil {
			return fmt.Errorf("artifact store %s: index.json: %w", l, err)
		}
	}
	index.SchemaVersion, index.MediaType = 2, "application/vnd.oci.image.index.v1+json"
	seen := map[string]bool{}
	for _, d := range index.Manifests {
		seen[d.Digest] = true
	}
	for _, d := range l.pending {
		if !seen[d.Digest] {
			index.Manifests = append(index.Manifests, d)
		}
	}
	sort.SliceStable(index.Manifests, func(i, j int) bool { return index.Manifests[i].Digest < index.Manifests[j].Digest })
	b, err := json.Marshal(index)
	if err != nil {
		return err
	}
	if err := writeAtomic(p, bytes.NewReader(append(b, '\n'))); err != nil {
		return fmt.Errorf("artifact store %s: %w", l, err)
	}
	l.pending = map[string]descriptor{}
	return nil
}
