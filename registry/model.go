package registry

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// What a model store is (ModelStore, RawRepository, ModelMeta) and the
// names it takes; packing is in model_push.go, unpacking in model_pull.go.

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
