package registry

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/zen-dev/zen/progress"
)

// The manifest's types are zen's own rather than go-containerregistry's or
// image-spec's: the digest of an artifact is its bytes, so their shape must
// not move with a dependency.

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      v1.Hash           `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"` // a model layer's file path
}

// manifest is the OCI image manifest of an artifact.
type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	ArtifactType  string       `json:"artifactType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
	// Annotations mark a model directory packed as raw layers (see
	// annotationFolder); zen's other manifests have none.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// config is the config blob of an artifact.
type config struct {
	Type   string `json:"type"`
	Format string `json:"format"` // "file" or "dir"
}

// maxManifest bounds what is read as a manifest; zen's are some 500 bytes.
const maxManifest = 1 << 20

// packed is an artifact ready to store.
type packed struct {
	digest   v1.Hash // of the manifest
	manifest []byte
	m        manifest
	config   []byte
	file     string // holds the layer's bytes
	spooled  string // file, if it is a temporary file of ours
}

// pack hashes the regular file or directory at p, a directory into a
// reproducible tar written to a temporary file in tmpDir ("" for the
// system's), and builds the artifact's config and manifest. The bytes
// hashed count on m.
func pack(p, typ, tmpDir string, m *progress.Meter) (*packed, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	a := &packed{file: p}
	var layer descriptor
	var format string
	switch {
	case fi.Mode().IsRegular():
		layer.MediaType, format = fileMediaType, "file"
		layer.Digest, layer.Size, err = hashFile(p, m)
	case fi.IsDir():
		layer.MediaType, format = dirMediaType, "dir"
		a.file, layer.Digest, layer.Size, err = tarDir(p, tmpDir, m)
		a.spooled = a.file
	default:
		return nil, fmt.Errorf("%s is not a regular file or a directory", p)
	}
	if err != nil {
		return nil, err
	}
	if a.config, err = json.Marshal(config{Type: typ, Format: format}); err != nil {
		a.cleanup()
		return nil, err
	}
	a.m = manifest{
		SchemaVersion: 2,
		MediaType:     string(types.OCIManifestSchema1),
		ArtifactType:  artifactType,
		Config:        descriptor{MediaType: configMediaType, Digest: sha256Of(a.config), Size: int64(len(a.config))},
		Layers:        []descriptor{layer},
	}
	if a.manifest, err = json.Marshal(a.m); err != nil {
		a.cleanup()
		return nil, err
	}
	a.digest = sha256Of(a.manifest)
	return a, nil
}

// layer is the descriptor of the artifact's content.
func (a *packed) layer() descriptor { return a.m.Layers[0] }

// descriptor describes the artifact to callers.
func (a *packed) descriptor() Descriptor {
	return Descriptor{Digest: a.digest.String(), Size: a.layer().Size, MediaType: a.layer().MediaType}
}

// open reads the layer's bytes.
func (a *packed) open() (io.ReadCloser, error) { return os.Open(a.file) }

// cleanup removes the temporary tar, if any is left.
func (a *packed) cleanup() {
	if a.spooled != "" {
		os.Remove(a.spooled)
	}
}

// parseManifest decodes an artifact's manifest and checks that zen wrote it.
func parseManifest(raw []byte) (*manifest, error) {
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.ArtifactType != artifactType || m.Config.MediaType != configMediaType || len(m.Layers) != 1 {
		return nil, fmt.Errorf("not a zen artifact (artifactType %q, %d layers)", m.ArtifactType, len(m.Layers))
	}
	if mt := m.Layers[0].MediaType; mt != fileMediaType && mt != dirMediaType {
		return nil, fmt.Errorf("not a zen artifact (layer media type %q)", mt)
	}
	return &m, nil
}

func sha256Of(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// hashFile returns the digest and size of the file p, counting the bytes
// on m (nil for none).
func hashFile(p string, m *progress.Meter) (v1.Hash, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	defer f.Close()
	return v1.SHA256(m.Reader(f, m.Hashed))
}

// hashingWriter counts and hashes what goes through it, counting it on
// meter too when there is one.
type hashingWriter struct {
	w     io.Writer
	h     hash.Hash
	n     int64
	meter *progress.Meter
}

func newHashingWriter(w io.Writer) *hashingWriter {
	return &hashingWriter{w: w, h: sha256.New()}
}

func (w *hashingWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	w.h.Write(b[:n])
	w.n += int64(n)
	w.meter.Hashed(int64(n))
	return n, err
}

func (w *hashingWriter) digest() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(w.h.Sum(nil))}
}

// tarDir writes a reproducible tar of dir to a temporary file in tmpDir:
// entries in path order, directories included, no times, owners or names,
// modes 0644 or 0755, and symlinks only when they stay inside dir.
func tarDir(dir, tmpDir string, m *progress.Meter) (name string, h v1.Hash, n int64, err error) {
	return spool(tmpDir, func(hw *hashingWriter) error {
		hw.meter = m
		return writeTarDir(dir, hw)
	})
}

// spool writes a blob through write into a temporary file in dir, hashing
// it on the way, and returns the file's name, digest and size. On an
// error the file is removed.
func spool(dir string, write func(*hashingWriter) error) (name string, h v1.Hash, n int64, err error) {
	f, err := os.CreateTemp(dir, ".zen-tmp-*.tar")
	if err != nil {
		return "", h, 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	hw := newHashingWriter(bw)
	if err := write(hw); err != nil {
		return "", h, 0, err
	}
	if err := bw.Flush(); err != nil {
		return "", h, 0, err
	}
	return f.Name(), hw.digest(), hw.n, nil
}

// writeTarDir writes the tar of dir that tarDir describes to w.
func writeTarDir(dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	// WalkDir visits a directory's entries in lexical order, and no
	// further than symlinks.
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		hdr, err := tarHeader(dir, p, filepath.ToSlash(rel), d)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		if _, err := io.Copy(tw, src); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err) // tar says "write too long" if it grew
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// tarHeader describes the entry d at p, named name (slash-separated) in a
// tar of dir, reproducibly: no times, owners or user names, modes 0644 or
// 0755, and symlinks only when they stay inside dir.
func tarHeader(dir, p, name string, d fs.DirEntry) (*tar.Header, error) {
	hdr := &tar.Header{Name: name, Mode: 0o644, ModTime: time.Unix(0, 0)}
	switch t := d.Type(); {
	case t.IsDir():
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
	case t&fs.ModeSymlink != 0:
		var err error
		if hdr.Linkname, err = os.Readlink(p); err != nil {
			return nil, err
		}
		if err := checkLink(dir, name); err != nil {
			return nil, fmt.Errorf("symlink %s -> %s: %w", name, hdr.Linkname, err)
		}
		hdr.Typeflag, hdr.Mode = tar.TypeSymlink, 0o777
	case t.IsRegular():
		fi, err := d.Info()
		if err != nil {
			return nil, err
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
		if fi.Mode()&0o111 != 0 {
			hdr.Mode = 0o755
		}
	default:
		return nil, fmt.Errorf("%s is not a regular file, directory or symlink (%s)", name, t)
	}
	return hdr, nil
}

var errLinkOutside = errors.New("leads outside the directory")

// checkLink follows the symlink at rel (slash-separated, under root) through
// every symlink met on the way, and fails if that leaves root. Missing
// components are taken as written, so a dangling link is judged by its text.
// Following the links, rather than cleaning the target's text, catches
// "l -> up/.." next to "up -> .".
func checkLink(root, rel string) error {
	hops := 0
	var follow func(dir []string, target string) ([]string, error)
	follow = func(dir []string, target string) ([]string, error) {
		if path.IsAbs(target) || filepath.IsAbs(target) {
			return nil, errLinkOutside
		}
		cur := slices.Clone(dir)
		for _, c := range strings.Split(target, "/") {
			switch c {
			case "", ".":
				continue
			case "..":
				if len(cur) == 0 {
					return nil, errLinkOutside
				}
				cur = cur[:len(cur)-1]
				continue
			}
			cur = append(cur, c)
			p := filepath.Join(root, filepath.Join(cur...))
			fi, err := os.Lstat(p)
			if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				continue
			}
			if hops++; hops > 255 {
				return nil, errors.New("too many levels of symlinks")
			}
			t, err := os.Readlink(p)
			if err != nil {
				return nil, err
			}
			if cur, err = follow(cur[:len(cur)-1], t); err != nil {
				return nil, err
			}
		}
		return cur, nil
	}
	t, err := os.Readlink(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	var dir []string
	if d := path.Dir(rel); d != "." {
		dir = strings.Split(d, "/")
	}
	_, err = follow(dir, t)
	return err
}

// absent fails unless nothing is at dest.
func absent(dest string) error {
	_, err := os.Lstat(dest)
	switch {
	case err == nil:
		return fmt.Errorf("pull into %s: %w", dest, fs.ErrExist)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return nil
}

// unpack writes the layer read from r to dest, which must not exist: into a
// temporary sibling first, moved to dest once the content matched its digest
// and its symlinks were found to stay inside. A file that would not fit on
// the disk is refused before it is written (see checkRoom).
func unpack(r io.Reader, layer descriptor, dest string) error {
	return install(dest, func(out string) error {
		if layer.MediaType == dirMediaType {
			return readVerified(r, layer, func(vr io.Reader) error { return extract(vr, out) })
		}
		if err := checkRoom(filepath.Dir(out), layer.Size); err != nil {
			return err
		}
		return readVerified(r, layer, func(vr io.Reader) error { return writeFile(vr, out) })
	})
}

// install has fill write the content at out, a path in a temporary sibling
// of dest, and moves it to dest once fill succeeded. dest must not exist.
func install(dest string, fill func(out string) error) error {
	if err := absent(dest); err != nil {
		return err
	}
	parent := filepath.Dir(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, ".zen-pull-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "content")
	if err := fill(out); err != nil {
		return err
	}
	if err := absent(dest); err != nil {
		return err
	}
	return os.Rename(out, dest)
}

// readVerified has consume read the blob layer from r, and fails with
// ErrDigestMismatch unless what r held matches the layer's size and digest.
// What consume left unread is read too, so that its error can be told from
// corrupt content.
func readVerified(r io.Reader, layer descriptor, consume func(io.Reader) error) error {
	// Read one byte past the size so that longer content shows as a mismatch.
	src := &readErr{r: r}
	hw := newHashingWriter(io.Discard)
	vr := io.TeeReader(io.LimitReader(src, layer.Size+1), hw)
	err := consume(vr)
	// A tar that does not parse is most likely corrupt: say so if it is.
	if _, derr := io.Copy(io.Discard, vr); err == nil {
		err = derr
	}
	// A reader that verifies (go-containerregistry's does) fails at the end
	// of content that is whole but wrong: that is a mismatch too.
	mismatch := hw.n != layer.Size || hw.digest() != layer.Digest
	if src.err != nil && (!mismatch || hw.n != layer.Size) {
		return fmt.Errorf("read content: %w", src.err)
	}
	if mismatch {
		return ErrDigestMismatch
	}
	return err
}

// readErr remembers the error of its reader, to tell a failed read from
// content that does not parse.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

func writeFile(r io.Reader, p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// extract unpacks a tar into the new directory root. It never writes through
// a symlink, refuses entries whose path or link leaves root, sparse files,
// and files that would not fit on the disk (see checkRoom).
func extract(r io.Reader, root string) error {
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	links, err := extractInto(r, root)
	if err != nil {
		return err
	}
	return checkLinks(root, links)
}

// extractInto unpacks a tar into the existing directory root, as extract
// does, but leaves the symlinks it made, which it returns, to be judged by
// checkLinks once every layer of a model is in place.
func extractInto(r io.Reader, root string) ([]string, error) {
	var links []string
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w", err)
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if name == "." && hdr.Typeflag == tar.TypeDir {
			continue
		}
		if sparse(hdr) {
			// zen never writes them, and one of a few bytes can stand
			// for a file of any size.
			return nil, fmt.Errorf("tar entry %q: sparse files are not supported", hdr.Name)
		}
		if err := mkParents(root, name); err != nil {
			return nil, fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
		p := filepath.Join(root, filepath.FromSlash(name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
				continue
			}
			err = os.Mkdir(p, 0o755)
		case tar.TypeReg:
			mode := fs.FileMode(0o644)
			if hdr.Mode&0o111 != 0 {
				mode = 0o755
			}
			if err = checkRoom(root, hdr.Size); err != nil {
				break
			}
			var f *os.File
			if f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode); err == nil {
				_, err = io.Copy(f, tr)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		case tar.TypeSymlink:
			if path.IsAbs(hdr.Linkname) {
				return nil, fmt.Errorf("tar entry %q: symlink to %s: %w", hdr.Name, hdr.Linkname, errLinkOutside)
			}
			err = os.Symlink(hdr.Linkname, p)
			links = append(links, name)
		default:
			return nil, fmt.Errorf("tar entry %q: unsupported type %q", hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			return nil, fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
	}
	return links, nil
}

// sparse reports whether hdr is a sparse file, in GNU's old format or in
// its PAX formats (which archive/tar presents as a regular file of the
// full size).
func sparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// checkLinks fails if one of the symlinks at links (slash-separated, under
// root) leads outside root.
func checkLinks(root string, links []string) error {
	// Judge links once all are there: a link leaves through the others.
	for _, l := range links {
		if err := checkLink(root, l); err != nil {
			t, _ := os.Readlink(filepath.Join(root, filepath.FromSlash(l)))
			return fmt.Errorf("tar entry %q: symlink to %s: %w", l, t, err)
		}
	}
	return nil
}

// entryName cleans a tar entry's name, refusing one that leaves the root.
func entryName(name string) (string, error) {
	if name == "" || path.IsAbs(name) || slices.Contains(strings.Split(name, "/"), "..") {
		return "", fmt.Errorf("tar entry %q: path leaves the destination", name)
	}
	return path.Clean(name), nil
}

// mkParents makes sure every parent of name under root is a real directory,
// making missing ones; a symlink in the way is refused, not followed.
func mkParents(root, name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	p := root
	for _, c := range strings.Split(dir, "/") {
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("parent %s is not a directory", c)
		}
	}
	return nil
}

// bytesOpener opens b as a blob.
func bytesOpener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}
