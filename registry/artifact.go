// Package registry stores step outputs as OCI artifacts: in an OCI image
// layout folder or in any OCI registry. An artifact's digest depends only
// on its content and type, so the same output is stored once.
package registry

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Media types of zen's artifacts.
const (
	ManifestMediaType = "application/vnd.oci.image.manifest.v1+json"
	ArtifactType      = "application/vnd.zen.artifact.v1"
	ConfigMediaType   = "application/vnd.zen.artifact.config.v1+json"
	FileMediaType     = "application/octet-stream"
	DirMediaType      = "application/vnd.oci.image.layer.v1.tar"
)

// ErrNotFound is returned for an artifact the store does not hold.
var ErrNotFound = errors.New("artifact not found")

// Descriptor identifies a stored artifact.
type Descriptor struct {
	Digest    string `json:"digest"`    // the manifest's digest, sha256:<hex>
	Size      int64  `json:"size"`      // the content's size in bytes
	MediaType string `json:"mediaType"` // the content layer's media type
}

// Store is an artifact store.
type Store interface {
	// String names the store in messages: "oci-layout .zen/store".
	String() string
	// Check makes sure the store can be written, before anything runs.
	Check(ctx context.Context) error
	// Push stores the regular file or directory at path as an artifact of
	// the given type.
	Push(ctx context.Context, path, typ string) (Descriptor, error)
	// Has reports whether the artifact and all its blobs are stored.
	Has(ctx context.Context, digest string) (bool, error)
	// Pull writes the artifact's content to dest, which must not exist,
	// checking every digest on the way.
	Pull(ctx context.Context, digest, dest string) error
	// Close finishes pending writes.
	Close() error
}

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// manifest is an OCI image manifest of an artifact.
type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	ArtifactType  string       `json:"artifactType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

// content is what an artifact holds, ready to store: a file on disk with
// its digest (a directory is packed into a temporary tar first).
type content struct {
	path   string
	digest string
	size   int64
	media  string
	format string // file or dir
	temp   bool
}

func (c *content) open() (io.ReadCloser, error) { return os.Open(c.path) }

func (c *content) cleanup() {
	if c.temp {
		os.Remove(c.path)
	}
}

// pack prepares the file or directory at p for storing.
func pack(p string) (*content, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	switch {
	case fi.Mode().IsRegular():
		d, n, err := hashFile(p)
		if err != nil {
			return nil, err
		}
		return &content{path: p, digest: d, size: n, media: FileMediaType, format: "file"}, nil
	case fi.IsDir():
		return packDir(p)
	}
	return nil, fmt.Errorf("%s: not a regular file or a directory", p)
}

// packDir writes a reproducible tar of dir to a temporary file: sorted
// entries, no times, no owners, modes 0644 or 0755.
func packDir(dir string) (_ *content, err error) {
	tmp, err := os.CreateTemp("", "zen-pack-*.tar")
	if err != nil {
		return nil, err
	}
	defer func() {
		tmp.Close()
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	tw := tar.NewWriter(cw)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		name := filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: name, ModTime: time.Unix(0, 0), Mode: 0o644, Format: tar.FormatPAX}
		if info.Mode()&0o111 != 0 {
			hdr.Mode = 0o755
		}
		switch {
		case d.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if !insideLink(name, target) {
				return fmt.Errorf("%s: symbolic link to %s leaves the output", name, target)
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
		case info.Mode().IsRegular():
			hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
		default:
			return fmt.Errorf("%s: not a regular file, directory or symbolic link", name)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &content{path: tmp.Name(), digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), size: cw.n, media: DirMediaType, format: "dir", temp: true}, nil
}

// insideLink reports whether a relative link at name pointing to target
// stays inside the tree.
func insideLink(name, target string) bool {
	if path.IsAbs(target) || filepath.IsAbs(target) {
		return false
	}
	p := path.Join(path.Dir(name), target)
	return p != ".." && !strings.HasPrefix(p, "../")
}

// artifact builds the config and manifest of an artifact holding c.
func artifact(typ string, c *content) (config, raw []byte) {
	config, _ = json.Marshal(struct {
		Type   string `json:"type"`
		Format string `json:"format"`
	}{typ, c.format})
	m := manifest{
		SchemaVersion: 2,
		MediaType:     ManifestMediaType,
		ArtifactType:  ArtifactType,
		Config:        descriptor{MediaType: ConfigMediaType, Digest: digestOf(config), Size: int64(len(config))},
		Layers:        []descriptor{{MediaType: c.media, Digest: c.digest, Size: c.size}},
	}
	raw, _ = json.Marshal(m)
	return config, raw
}

// parseManifest checks raw against its digest and decodes it.
func parseManifest(raw []byte, digest string) (*manifest, error) {
	if got := digestOf(raw); got != digest {
		return nil, fmt.Errorf("artifact %s: manifest does not match its digest (got %s)", digest, got)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("artifact %s: manifest: %w", digest, err)
	}
	if m.ArtifactType != ArtifactType || len(m.Layers) != 1 {
		return nil, fmt.Errorf("artifact %s: not a zen artifact (artifactType %q, %d layers)", digest, m.ArtifactType, len(m.Layers))
	}
	switch m.Layers[0].MediaType {
	case FileMediaType, DirMediaType:
	default:
		return nil, fmt.Errorf("artifact %s: unknown layer media type %q", digest, m.Layers[0].MediaType)
	}
	return &m, nil
}

// unpack writes a layer read from r to dest, checking its digest. dest is
// written under a temporary name and renamed when complete.
func unpack(r io.Reader, layer descriptor, dest string) (err error) {
	if _, err := os.Lstat(dest); err == nil {
		return fmt.Errorf("%s exists", dest)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), ".zen-pull-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	h := sha256.New()
	r = io.TeeReader(r, h)
	out := filepath.Join(tmp, "content")
	if layer.MediaType == DirMediaType {
		err = extract(r, out)
	} else {
		err = writeFile(r, out)
	}
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != layer.Digest {
		return fmt.Errorf("artifact layer %s: content does not match its digest (got %s)", layer.Digest, got)
	}
	return os.Rename(out, dest)
}

func writeFile(r io.Reader, p string) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// extract unpacks a tar into dir, refusing entries that would land
// outside it.
func extract(r io.Reader, dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		clean := path.Clean(name)
		if name == "" || path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") || clean != name {
			return fmt.Errorf("archive entry %q: path leaves the artifact", hdr.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(clean))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fs.FileMode(hdr.Mode)&0o755|0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if !insideLink(clean, hdr.Linkname) {
				return fmt.Errorf("archive entry %q: link to %q leaves the artifact", hdr.Name, hdr.Linkname)
			}
			if err := os.Symlink(hdr.Linkname, p); err != nil {
				return err
			}
		default:
			return fmt.Errorf("archive entry %q: unsupported type %q", hdr.Name, hdr.Typeflag)
		}
	}
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n, nil
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
