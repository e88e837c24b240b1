package registry

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ModelMeta names a model version.
type ModelMeta struct {
	// Name is the model's name, such as "fraud-detector": OCI-tag-safe,
	// [a-z0-9][a-z0-9._-]*. Its versions live in the repository
	// "models/<Name>" of the store.
	Name string
	// Version is the version's name, such as "1.0.0". Required.
	Version string
	// Revision is the source control revision the version was built from.
	Revision string
	// SourceURL is where that source is.
	SourceURL string
	// Description says what the model is, for people.
	Description string
	// Authors and Licenses (SPDX expressions) go to the config's
	// descriptor as they are, in their order.
	Authors, Licenses []string
	// Card is the model card, free text such as markdown, kept in the
	// config's descriptor (ModelDescriptor.Card), so that it is signed
	// with the version and is no file of the model.
	Card string
	// Format is the model's format, such as "onnx" or "pickle".
	Format string
	// Compress packs the model as gzipped tar layers (media types ending
	// in .tar+gzip): smaller blobs, another digest, and files that oras
	// pull does not write. A file model is then one gzipped tar of that
	// one file, marked as a file so that a pull gives back the file. Off,
	// a file model is one raw layer, and a directory of plain files one
	// raw layer per file.
	Compress bool
}

// ModelStore is a Store that can also hold model versions and tags. Both
// stores OpenLayout and OpenRemote return are ModelStores.
//
// A model version is a CNCF ModelPack artifact (see modelpack.go): an OCI
// image manifest with artifactType ArtifactTypeModelManifest, a Model config
// blob and layers, uncompressed unless ModelMeta.Compress says otherwise.
// PushModel packs a regular file as one
// MediaTypeModelWeightRaw layer, annotated with its base name under
// AnnotationFilepath and under org.opencontainers.image.title (so that
// oras pull writes the file).
//
// A directory of plain files (regular files, none executable, and the
// directories holding them) is one raw layer per file, as modctl --raw
// makes: its media type is the ".raw" one of the file's kind (below), its
// AnnotationFilepath and title the file's slash-separated path in the
// directory, so that oras pull -o out writes out/<path>; the layers are
// in the paths' order, and the manifest is annotated
// "dev.zen.model.folder": "true", so that a directory of one file is
// pulled as a directory. Files of the same content are one blob, stored
// and uploaded once.
//
// A directory that raw layers cannot hold whole (an executable, whose mode
// a raw layer has no room for, a symlink or an empty directory), and any
// directory when ModelMeta.Compress is set, is packed as tar layers, as
// every directory was before, walked in path order:
//
//   - README*, LICENSE*, LICENCE* and *.md files go to MediaTypeModelDoc
//     layers, other *.json, *.yaml, *.yml, *.txt and tokenizer* files to
//     MediaTypeModelWeightConfig layers, everything else to
//     MediaTypeModelWeight layers;
//   - a file of 64 MiB or more (see WithLargeFile) gets a tar layer of its
//     own, annotated with its path under AnnotationFilepath (and no title:
//     the layer is a tar, not that file); the smaller files (and symlinks)
//     of each kind share one tar; empty directories go with the small
//     weights;
//   - layers are ordered weights, weight configs, docs, and by path within.
//
// Tars are written as Push writes a directory's (no times, owners or user
// names; modes 0644 or 0755; symlinks only inside the directory), and the
// config has no createdAt, so the same files and ModelMeta give the same
// digest, in any store.
//
// With ModelMeta.Compress, each tar layer is that same tar gzipped, at
// level gzip.BestSpeed (go-containerregistry's default: weights hardly
// compress, and pushing stays fast) with no name or time in the gzip
// header, under the media type of the uncompressed layer followed by
// "+gzip" (MediaTypeModelWeightGzip and the like); the config's
// modelfs.diffIds still hold the tars' digests, so the config is the one
// the uncompressed version has. The gzip stream is Go's compress/gzip's:
// the same files give the same digest with the same Go release, which
// does not promise the same compressed bytes forever, so a compressed
// version's digest may change with the Go that built zen. The uncompressed
// default does not depend on it.
type ModelStore interface {
	Store
	// PushModel packages the file or directory at path as a ModelPack
	// artifact in the repository "models/<meta.Name>" and returns its
	// descriptor: the manifest's digest, the sum of the layers' sizes, and
	// ArtifactTypeModelManifest as MediaType. Files are streamed, never
	// read whole; blobs the store holds are not written again.
	PushModel(ctx context.Context, path string, meta ModelMeta) (Descriptor, error)
	// Tag points tag (an OCI tag: a version such as "1.0.0", or a stage such
	// as "production") at the manifest digest in the model's repository,
	// moving it if it pointed elsewhere. The manifest must be stored.
	Tag(ctx context.Context, model, tag, digest string) error
	// Resolve returns the digest tag points at in the model's repository, or
	// an error wrapping ErrNotFound.
	Resolve(ctx context.Context, model, tag string) (string, error)
	// PullModel writes the model version's files to dest, which must not
	// exist, checking every blob against its digest: a file if the model is
	// one raw layer (as PushModel makes of a file) and not marked a
	// folder, else a directory. It reads every format PushModel has
	// written, and a mix of raw and tar layers. dest
	// appears only once all of it matched.
	PullModel(ctx context.Context, digest, model, dest string) error
	// ModelRepository returns a raw view of the model's repository, for
	// signatures and attestations. It does no I/O; an invalid model name
	// shows in the errors of its methods.
	ModelRepository(model string) RawRepository
}

// RawRepository gives raw access to one OCI repository of a store, for
// cosign-style signatures kept under tags such as "sha256-<hex>.sig".
//
// Where a tag is asked for, a digest "sha256:<hex>" is taken too: Manifest
// then reads the manifest by digest, and PutManifest stores it untagged.
// Blob reads a blob whole, so it refuses blobs over 64 MiB.
type RawRepository interface {
	// Reference names the repository: "127.0.0.1:5000/ml/models/fraud" for
	// a remote store opened on "127.0.0.1:5000/ml", and, for a layout store,
	// the directory as given to OpenLayout followed by "/models/fraud"
	// (".zen/store/models/fraud"), whose tags are the index.json entries
	// whose org.opencontainers.image.ref.name is "models/fraud:<tag>".
	Reference() string
	// Manifest returns the raw manifest tag points at, or an error wrapping
	// ErrNotFound.
	Manifest(ctx context.Context, tag string) ([]byte, error)
	// PutManifest stores raw, a manifest in JSON whose mediaType field (OCI
	// image manifest if absent) it is served with, and points tag at it. A
	// layout's tag is seen by its store at once and by others after Close.
	PutManifest(ctx context.Context, tag string, raw []byte) error
	// Blob returns the blob's content, checked against its digest, or an
	// error wrapping ErrNotFound.
	Blob(ctx context.Context, digest string) ([]byte, error)
	// PutBlob stores content, which must match digest (else the error wraps
	// ErrDigestMismatch). A blob already stored is not written again.
	PutBlob(ctx context.Context, digest string, content []byte) error
}

const (
	// maxRawBlob bounds what RawRepository.Blob reads whole.
	maxRawBlob = 64 << 20
	// uploadConcurrency bounds the blobs a remote PushModel uploads at once.
	uploadConcurrency = 4
	// gzipLevel is the compression level of gzipped layers; see ModelStore.
	gzipLevel = gzip.BestSpeed
)

var (
	// A model's repository is <store>/models/<model>: a model name is one
	// OCI repository path component, as the distribution spec has it.
	// zen's names (schema.ValidName) are a part of these; a store may
	// hold others, made by older zens.
	modelNameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)
	tagRE       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

func checkModelName(model string) error {
	if !modelNameRE.MatchString(model) {
		return fmt.Errorf("invalid model name %q: want an OCI repository path component: lowercase letters and digits, joined by '.', '_', '__' or dashes", model)
	}
	return nil
}

func checkTag(tag string) error {
	if !tagRE.MatchString(tag) {
		return fmt.Errorf("invalid tag %q: want at most 128 letters, digits, '.', '_' and '-', not starting with '.' or '-'", tag)
	}
	return nil
}

// modelRef is the org.opencontainers.image.ref.name of a model's tag in a
// layout.
func modelRef(model, tag string) string { return "models/" + model + ":" + tag }

// parseRef tells a digest "sha256:<hex>" from a tag: it returns the digest,
// or ok false for a valid tag.
func parseRef(ref string) (h v1.Hash, ok bool, err error) {
	if strings.Contains(ref, ":") {
		h, err = parseDigest(ref)
		return h, err == nil, err
	}
	return v1.Hash{}, false, checkTag(ref)
}

func (m ModelMeta) check() error {
	if err := checkModelName(m.Name); err != nil {
		return err
	}
	if m.Version == "" {
		return errors.New("model version has no name")
	}
	return nil
}

// annotationFile marks the manifest of a file model packed as a gzipped
// tar (ModelMeta.Compress) with the file's name: a pull unpacks the tar
// and gives back the file, not a directory holding it.
const annotationFile = "dev.zen.model.file"

// annotationFolder marks the manifest of a model directory packed as raw
// layers with "true": without it, a directory of one file would be pulled
// as that file, as a file model is.
const annotationFolder = "dev.zen.model.folder"

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
		if l.d.Digest, l.d.Size, err = hashFile(p); err != nil {
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
		if l.d.Digest, l.d.Size, err = hashFile(e.path); err != nil {
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
	f, err := os.CreateTemp(spoolDir, ".zen-tmp-*.tar")
	if err != nil {
		return err
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
	diffID, err := l.writeBlob(hw)
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	l.spooled, l.d.Digest, l.d.Size, l.diffID = f.Name(), hw.digest(), hw.n, diffID
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

// modelLayerType says whether mediaType is a ModelPack layer PullModel can
// unpack, and whether it is raw or a gzipped tar (else a tar).
func modelLayerType(mediaType string) (raw, gzipped, ok bool) {
	rest, found := strings.CutPrefix(mediaType, "application/vnd.cncf.model.")
	if !found {
		return false, false, false
	}
	switch {
	case strings.HasSuffix(rest, ".v1.raw"):
		return true, false, true
	case strings.HasSuffix(rest, ".v1.tar"):
		return false, false, true
	case strings.HasSuffix(rest, ".v1.tar+gzip"):
		return false, true, true
	}
	return false, false, false
}

// parseModelManifest decodes a ModelPack manifest.
func parseModelManifest(raw []byte) (*manifest, error) {
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.Config.MediaType != MediaTypeModelConfig || (m.ArtifactType != "" && m.ArtifactType != ArtifactTypeModelManifest) {
		return nil, fmt.Errorf("not a ModelPack model (artifactType %q, config %q)", m.ArtifactType, m.Config.MediaType)
	}
	if len(m.Layers) == 0 {
		return nil, errors.New("model has no layers")
	}
	for _, l := range m.Layers {
		if _, _, ok := modelLayerType(l.MediaType); !ok {
			return nil, fmt.Errorf("layer %s: media type %q not supported (compressed?)", l.Digest, l.MediaType)
		}
	}
	return &m, nil
}

// readBlob reads the blob d from r whole, checking it.
func readBlob(r io.Reader, d descriptor) ([]byte, error) {
	var b []byte
	err := readVerified(r, d, func(r io.Reader) (err error) {
		b, err = io.ReadAll(r)
		return err
	})
	return b, err
}

// fetchBlob reads the small blob d whole from b, checking it.
func fetchBlob(ctx context.Context, b blobs, d descriptor) ([]byte, error) {
	rc, err := b.open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readBlob(rc, d)
}

// pullModel writes the model h to dest; see ModelStore.PullModel.
func pullModel(ctx context.Context, b blobs, h v1.Hash, dest string) error {
	if err := absent(dest); err != nil {
		return err
	}
	raw, err := b.manifest(ctx, h)
	if err != nil {
		return err
	}
	if sha256Of(raw) != h {
		return fmt.Errorf("manifest: %w", ErrDigestMismatch)
	}
	m, err := parseModelManifest(raw)
	if err != nil {
		return err
	}
	if m.Config.Size > maxManifest {
		return fmt.Errorf("config of %d bytes: too large", m.Config.Size)
	}
	cfgBytes, err := fetchBlob(ctx, b, m.Config)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var cfg Model
	if err := json.Unmarshal(cfgBytes, &cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	diffIDs, err := layerDiffIDs(cfg.ModelFS.DiffIDs, m.Layers)
	if err != nil {
		return err
	}

	layer := func(l descriptor, consume func(io.Reader) error) error {
		rc, err := b.open(ctx, l)
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := readVerified(rc, l, consume); err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		return nil
	}
	if raw, _, _ := modelLayerType(m.Layers[0].MediaType); raw && len(m.Layers) == 1 && m.Annotations[annotationFolder] != "true" {
		return install(dest, func(out string) error {
			if err := checkRoom(filepath.Dir(out), m.Layers[0].Size); err != nil {
				return fmt.Errorf("layer %s: %w", m.Layers[0].Digest, err)
			}
			return layer(m.Layers[0], func(r io.Reader) error { return writeFile(r, out) })
		})
	}
	if name := m.Annotations[annotationFile]; name != "" {
		return install(dest, func(out string) error {
			return pullFileTar(m.Layers, diffIDs, name, out, layer)
		})
	}
	return install(dest, func(out string) error {
		if err := os.Mkdir(out, 0o755); err != nil {
			return err
		}
		var links []string
		for i, l := range m.Layers {
			err := layer(l, func(r io.Reader) error {
				raw, gzipped, _ := modelLayerType(l.MediaType)
				if raw {
					return writeRaw(r, out, l)
				}
				var ls []string
				var err error
				if gzipped {
					ls, err = extractGzip(r, out, diffIDs[i])
				} else {
					ls, err = extractInto(r, out)
				}
				links = append(links, ls...)
				return err
			})
			if err != nil {
				return err
			}
		}
		return checkLinks(out, links)
	})
}

// pullFileTar writes to out the file model that layers hold as one
// gzipped tar of the file named name (see annotationFile). Anything else
// in the tar, or a layer that is not such a tar, is an error.
func pullFileTar(layers []descriptor, diffIDs []v1.Hash, name, out string, layer func(descriptor, func(io.Reader) error) error) error {
	if len(layers) != 1 {
		return fmt.Errorf("file model %q: %d layers, want 1", name, len(layers))
	}
	if _, gzipped, _ := modelLayerType(layers[0].MediaType); !gzipped {
		return fmt.Errorf("file model %q: layer %s: media type %q, want a gzipped tar", name, layers[0].Digest, layers[0].MediaType)
	}
	if name != path.Base(name) || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("file model: name %q is not a file name", name)
	}
	dir := out + ".d"
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	err := layer(layers[0], func(r io.Reader) error {
		links, err := extractGzip(r, dir, diffIDs[0])
		if err == nil && len(links) > 0 {
			err = fmt.Errorf("file model %q: the layer holds a link", name)
		}
		return err
	})
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) != 1 || entries[0].Name() != name || !entries[0].Type().IsRegular() {
		return fmt.Errorf("file model %q: layer %s holds more or other than the file", name, layers[0].Digest)
	}
	return os.Rename(filepath.Join(dir, name), out)
}

// errDiffIDs is the error for a config whose modelfs.diffIds are not the
// layers'.
var errDiffIDs = errors.New("config: modelfs.diffIds do not match the layers")

// layerDiffIDs checks the config's diffIDs against the layers: an
// uncompressed layer is its own diff ID; a gzipped layer's, returned, is
// checked once it is uncompressed, by extractGzip.
func layerDiffIDs(ids []string, layers []descriptor) ([]v1.Hash, error) {
	if len(ids) != len(layers) {
		return nil, errDiffIDs
	}
	hs := make([]v1.Hash, len(layers))
	for i, l := range layers {
		if _, gzipped, _ := modelLayerType(l.MediaType); !gzipped {
			if ids[i] != l.Digest.String() {
				return nil, errDiffIDs
			}
			hs[i] = l.Digest
			continue
		}
		h, err := parseDigest(ids[i])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errDiffIDs, err)
		}
		hs[i] = h
	}
	return hs, nil
}

// extractGzip unpacks the gzipped tar read from r under root, as
// extractInto, and checks that the tar has the digest diffID.
func extractGzip(r io.Reader, root string, diffID v1.Hash) ([]string, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	hw := newHashingWriter(io.Discard)
	tr := io.TeeReader(zr, hw)
	links, err := extractInto(tr, root)
	if err != nil {
		return links, err
	}
	// The rest of the tar (its end, whatever follows), and gzip's
	// checksum, read at its end.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return links, fmt.Errorf("gunzip: %w", err)
	}
	if got := hw.digest(); got != diffID {
		return links, fmt.Errorf("%w: uncompressed, the layer has digest %s, not %s", errDiffIDs, got, diffID)
	}
	return links, nil
}

// writeRaw writes the raw layer l, read from r, to the path it is annotated
// with under root.
func writeRaw(r io.Reader, root string, l descriptor) error {
	p := l.Annotations[AnnotationFilepath]
	if p == "" {
		return fmt.Errorf("raw layer without a %s annotation", AnnotationFilepath)
	}
	name, err := entryName(p)
	if err != nil || name == "." {
		return fmt.Errorf("raw layer file path %q: path leaves the destination", p)
	}
	if err := mkParents(root, name); err != nil {
		return fmt.Errorf("raw layer file path %q: %w", p, err)
	}
	if err := checkRoom(root, l.Size); err != nil {
		return fmt.Errorf("raw layer file path %q: %w", p, err)
	}
	// O_EXCL: a second layer of the path, or one of a folder a layer has
	// made, is refused, and no symlink is written through.
	if err := writeFile(r, filepath.Join(root, filepath.FromSlash(name))); err != nil {
		return fmt.Errorf("raw layer file path %q: %w", p, err)
	}
	return nil
}

// manifestHead is what an index entry or a registry needs of a manifest.
type manifestHead struct {
	MediaType    types.MediaType `json:"mediaType"`
	ArtifactType string          `json:"artifactType"`
}

// headOf decodes the head of the manifest raw; its media type defaults to
// the OCI image manifest's.
func headOf(raw []byte) (manifestHead, error) {
	var h manifestHead
	if err := json.Unmarshal(raw, &h); err != nil {
		return h, fmt.Errorf("manifest is not JSON: %w", err)
	}
	if h.MediaType == "" {
		h.MediaType = types.OCIManifestSchema1
	}
	return h, nil
}

// checkContent fails with ErrDigestMismatch unless content has digest h.
func checkContent(h v1.Hash, content []byte) error {
	if got := sha256Of(content); got != h {
		return fmt.Errorf("content of %s has digest %s: %w", h, got, ErrDigestMismatch)
	}
	return nil
}
