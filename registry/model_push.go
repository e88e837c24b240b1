package registry

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Packing a model version for PushModel: its files sorted into raw or tar
// layers (gzipped with ModelMeta.Compress), hashed, spooled if the backend
// wants them on disk, and the config and manifest that list them. The
// layers are read again, and checked, when stored.

// modelLayer is a layer of a model being pushed: a file, or a tar of some,
// gzipped or not.
type modelLayer struct {
	d       descriptor
	diffID  v1.Hash    // of the uncompressed content: d.Digest unless gzipped
	gzipped bool       // the blob is the tar gzipped
	raw     string     // the file a raw layer is
	entries []tarEntry // what a tar layer holds, in order
	spooled string     // a temporary file holding the blob, if written
}

// tarEntry is an entry of a model's tar layer.
type tarEntry struct {
	hdr  *tar.Header
	path string // on disk
}

// packedModel is a model version ready to store.
type packedModel struct {
	digest   v1.Hash // of the manifest
	manifest []byte
	m        manifest
	config   []byte
	layers   []*modelLayer
	folder   bool   // a directory packed as raw layers, marked as such
	file     string // a file packed as a gzipped tar: its name
}

// packModel hashes the file or directory at p as a model's layers, and
// builds its config and manifest. A tar layer (gzipped if meta.Compress)
// is written to a temporary file in spoolDir if spoolDir is not "", else
// hashed only, to be written again, the same, when uploaded. A file of
// large bytes or more gets a tar layer of its own.
func packModel(p string, meta ModelMeta, spoolDir string, large int64) (_ *packedModel, err error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	a := &packedModel{}
	defer func() {
		if err != nil {
			a.cleanup()
		}
	}()
	switch {
	case fi.Mode().IsRegular() && meta.Compress:
		name := filepath.Base(p)
		hdr, err := tarHeader(filepath.Dir(p), p, name, fs.FileInfoToDirEntry(fi))
		if err != nil {
			return nil, err
		}
		l := &modelLayer{
			d:       descriptor{MediaType: gzipMediaType(modelKind(name)), Annotations: map[string]string{AnnotationFilepath: name}},
			entries: []tarEntry{{hdr: hdr, path: p}},
			gzipped: true,
		}
		if err := l.pack(spoolDir); err != nil {
			return nil, err
		}
		a.layers = []*modelLayer{l}
		a.file = name
	case fi.Mode().IsRegular():
		l := &modelLayer{raw: p, d: descriptor{
			MediaType:   MediaTypeModelWeightRaw,
			Annotations: map[string]string{AnnotationFilepath: filepath.Base(p), titleAnnotation: filepath.Base(p)},
		}}
		if l.d.Digest, l.d.Size, err = hashFile(p, nil); err != nil {
			return nil, err
		}
		l.diffID = l.d.Digest
		a.layers = []*modelLayer{l}
	case fi.IsDir():
		entries, err := modelEntries(p)
		if err != nil {
			return nil, err
		}
		if !meta.Compress && plainFiles(entries) {
			if a.layers, err = rawLayers(entries); err != nil {
				return nil, err
			}
			a.folder = true
			break
		}
		a.layers = tarLayers(entries, large)
		for _, l := range a.layers {
			if meta.Compress {
				l.gzipped = true
				l.d.MediaType = gzipMediaType(l.d.MediaType)
			}
			if err := l.pack(spoolDir); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("%s is not a regular file or a directory", p)
	}

	cfg := Model{
		Descriptor: ModelDescriptor{
			Name:        meta.Name,
			Version:     meta.Version,
			Revision:    meta.Revision,
			SourceURL:   meta.SourceURL,
			Description: meta.Description,
			Authors:     meta.Authors,
			Licenses:    meta.Licenses,
			Card:        meta.Card,
		},
		ModelFS: ModelFS{Type: "layers", DiffIDs: []string{}},
		Config:  ModelConfig{Format: meta.Format},
	}
	a.m = manifest{
		SchemaVersion: 2,
		MediaType:     string(types.OCIManifestSchema1),
		ArtifactType:  ArtifactTypeModelManifest,
	}
	if a.folder {
		a.m.Annotations = map[string]string{annotationFolder: "true"}
	}
	if a.file != "" {
		a.m.Annotations = map[string]string{annotationFile: a.file}
	}
	for _, l := range a.layers {
		cfg.ModelFS.DiffIDs = append(cfg.ModelFS.DiffIDs, l.diffID.String())
		a.m.Layers = append(a.m.Layers, l.d)
	}
	if a.config, err = json.Marshal(cfg); err != nil {
		return nil, err
	}
	a.m.Config = descriptor{MediaType: MediaTypeModelConfig, Digest: sha256Of(a.config), Size: int64(len(a.config))}
	if a.manifest, err = json.Marshal(a.m); err != nil {
		return nil, err
	}
	a.digest = sha256Of(a.manifest)
	return a, nil
}

// modelKind is the media type of the tar layer a file of a model directory
// goes to, judged by its name.
func modelKind(name string) string {
	base := strings.ToLower(path.Base(name))
	switch ext := path.Ext(base); {
	case strings.HasPrefix(base, "readme"), strings.HasPrefix(base, "license"), strings.HasPrefix(base, "licence"), ext == ".md":
		return MediaTypeModelDoc
	case ext == ".json", ext == ".yaml", ext == ".yml", ext == ".txt", strings.HasPrefix(base, "tokenizer"):
		return MediaTypeModelWeightConfig
	}
	return MediaTypeModelWeight
}

// rawMediaType is the media type of one file of the tar layer type
// mediaType: MediaTypeModelWeightRaw for MediaTypeModelWeight, and so on.
func rawMediaType(mediaType string) string { return strings.TrimSuffix(mediaType, ".tar") + ".raw" }

// gzipMediaType is the media type of the tar layer of type mediaType
// gzipped: MediaTypeModelWeightGzip for MediaTypeModelWeight, and so on.
func gzipMediaType(mediaType string) string { return mediaType + "+gzip" }

// modelKinds orders a model's layers.
var modelKinds = []string{MediaTypeModelWeight, MediaTypeModelWeightConfig, MediaTypeModelDoc}

// modelEntry is a file, directory or symlink of a model directory.
type modelEntry struct {
	tarEntry
	rel string // slash-separated, relative to the directory
}

// modelEntries walks the model directory dir, in path order, describing
// each entry as it goes into a tar. A directory with nothing in it is an
// error.
func modelEntries(dir string) ([]modelEntry, error) {
	var all []modelEntry
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
		rel = filepath.ToSlash(rel)
		hdr, err := tarHeader(dir, p, rel, d)
		if err != nil {
			return err
		}
		all = append(all, modelEntry{tarEntry{hdr: hdr, path: p}, rel})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("model directory %s is empty", dir)
	}
	return all, nil
}

// plainFiles says whether raw layers hold the model directory whole: its
// entries are regular files, none executable, and the directories that
// hold them. A raw layer has no mode, and a symlink or an empty directory
// no layer, so a directory with any of those keeps its tars, and a pull
// still gives back what was pushed.
func plainFiles(all []modelEntry) bool {
	parents := map[string]bool{}
	for _, e := range all {
		parents[path.Dir(e.rel)] = true
	}
	for _, e := range all {
		switch {
		case e.hdr.Typeflag == tar.TypeReg && e.hdr.Mode&0o111 == 0:
		case e.hdr.Typeflag == tar.TypeDir && parents[e.rel]:
		default:
			return false
		}
	}
	return true
}

// rawLayers makes a raw layer of each regular file of a model directory,
// hashed, in the order of their paths; see ModelStore. Directories are
// left out: a pull makes those the files' paths name.
func rawLayers(all []modelEntry) ([]*modelLayer, error) {
	var layers []*modelLayer
	for _, e := range all {
		if e.hdr.Typeflag != tar.TypeReg {
			continue
		}
		l := &modelLayer{raw: e.path, d: descriptor{
			MediaType:   rawMediaType(modelKind(e.rel)),
			Annotations: map[string]string{AnnotationFilepath: e.rel, titleAnnotation: e.rel},
		}}
		var err error
		if l.d.Digest, l.d.Size, err = hashFile(e.path, nil); err != nil {
			return nil, err
		}
		l.diffID = l.d.Digest
		layers = append(layers, l)
	}
	// The walk's order puts "a/b" before "a.txt"; the paths' does not.
	slices.SortFunc(layers, func(a, b *modelLayer) int {
		return strings.Compare(a.d.Annotations[AnnotationFilepath], b.d.Annotations[AnnotationFilepath])
	})
	return layers, nil
}

// tarLayers sorts the entries of a model directory into tar layers, not
// yet hashed, each file of large bytes or more alone; see ModelStore.
func tarLayers(all []modelEntry, large int64) []*modelLayer {
	parents := map[string]bool{} // directories that hold something
	for _, e := range all {
		parents[path.Dir(e.rel)] = true
	}
	byKind := map[string][]*modelLayer{}
	small := map[string]*modelLayer{}
	for _, e := range all {
		kind := MediaTypeModelWeight
		switch {
		case e.hdr.Typeflag == tar.TypeDir:
			if parents[e.rel] {
				continue // made when its content is unpacked
			}
		case e.hdr.Typeflag == tar.TypeReg && e.hdr.Size >= large:
			kind = modelKind(e.rel)
			byKind[kind] = append(byKind[kind], &modelLayer{
				d:       descriptor{MediaType: kind, Annotations: map[string]string{AnnotationFilepath: e.rel}},
				entries: []tarEntry{e.tarEntry},
			})
			continue
		default:
			kind = modelKind(e.rel)
		}
		l := small[kind]
		if l == nil {
			l = &modelLayer{d: descriptor{MediaType: kind}}
			small[kind] = l
			byKind[kind] = append(byKind[kind], l)
		}
		l.entries = append(l.entries, e.tarEntry)
	}
	var layers []*modelLayer
	for _, kind := range modelKinds {
		ls := byKind[kind]
		slices.SortStableFunc(ls, func(a, b *modelLayer) int {
			return strings.Compare(a.entries[0].hdr.Name, b.entries[0].hdr.Name)
		})
		layers = append(layers, ls...)
	}
	return layers
}

// pack hashes the tar layer l, writing its blob to a temporary file in
// spoolDir unless spoolDir is "".
func (l *modelLayer) pack(spoolDir string) (err error) {
	if spoolDir == "" {
		hw := newHashingWriter(io.Discard)
		if l.diffID, err = l.writeBlob(hw); err != nil {
			return err
		}
		l.d.Digest, l.d.Size = hw.digest(), hw.n
		return nil
	}
	var diffID v1.Hash
	name, h, n, err := spool(spoolDir, func(hw *hashingWriter) (err error) {
		diffID, err = l.writeBlob(hw)
		return err
	})
	if err != nil {
		return err
	}
	l.spooled, l.d.Digest, l.d.Size, l.diffID = name, h, n, diffID
	return nil
}

// writeBlob writes the blob of the tar layer l, the tar or its gzip, to w
// and returns the tar's digest: w's, unless l is gzipped.
func (l *modelLayer) writeBlob(w *hashingWriter) (diffID v1.Hash, err error) {
	if !l.gzipped {
		if err := l.writeTar(w); err != nil {
			return v1.Hash{}, err
		}
		return w.digest(), nil
	}
	// gzip writes a few hundred bytes at a time: buffer them.
	bw := bufio.NewWriterSize(w, 1<<20)
	// No name, no time (0), OS "unknown": the header depends on the
	// level only.
	zw, err := gzip.NewWriterLevel(bw, gzipLevel)
	if err != nil {
		return v1.Hash{}, err
	}
	tw := newHashingWriter(zw)
	if err := l.writeTar(tw); err != nil {
		return v1.Hash{}, err
	}
	if err := zw.Close(); err != nil {
		return v1.Hash{}, err
	}
	return tw.digest(), bw.Flush()
}

// writeTar writes the tar layer l to w.
func (l *modelLayer) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	buf := make([]byte, 1<<20)
	for _, e := range l.entries {
		if err := tw.WriteHeader(e.hdr); err != nil {
			return err
		}
		if e.hdr.Typeflag != tar.TypeReg {
			continue
		}
		src, err := os.Open(e.path)
		if err != nil {
			return err
		}
		// Hide WriterTo, which would ignore buf.
		_, err = io.CopyBuffer(tw, struct{ io.Reader }{src}, buf)
		src.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", e.hdr.Name, err) // tar says "write too long" if it grew
		}
	}
	return tw.Close()
}

// open reads the layer's blob: the file, the spooled blob, or the blob
// written again, checked against the digests (the blob's, and the tar's
// if gzipped) it had when packed.
func (l *modelLayer) open() (io.ReadCloser, error) {
	switch {
	case l.raw != "":
		return os.Open(l.raw)
	case l.spooled != "":
		return os.Open(l.spooled)
	}
	pr, pw := io.Pipe()
	go func() {
		hw := newHashingWriter(pw)
		diffID, err := l.writeBlob(hw)
		if err == nil && (hw.n != l.d.Size || hw.digest() != l.d.Digest || diffID != l.diffID) {
			err = errors.New("content changed while it was being stored")
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// cleanup removes the temporary tars, if any.
func (a *packedModel) cleanup() {
	for _, l := range a.layers {
		if l.spooled != "" {
			os.Remove(l.spooled)
			l.spooled = ""
		}
	}
}

// descriptor describes the model version to callers.
func (a *packedModel) descriptor() Descriptor {
	var n int64
	for _, l := range a.layers {
		n += l.d.Size
	}
	return Descriptor{Digest: a.digest.String(), Size: n, MediaType: ArtifactTypeModelManifest}
}
